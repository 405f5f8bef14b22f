//! `GpuBuffer`, the storage behind wgpu tensors, with allocation against the
//! adapter's limits and the argument access that every op uses.
//!
//! Buffers are STORAGE | COPY_SRC | COPY_DST and stay on the device; data
//! crosses to the host only in `upload`, `write` and `download`. A u32
//! tensor also keeps a host copy of its contents: no kernel writes u32
//! tensors, so that copy is always current, and index checks (token ids,
//! targets, pairs) and index-dependent launch plans need no read-back.

use std::sync::{RwLock, RwLockReadGuard};

use super::{GPU_BACKEND_NAME, GpuBackend};
use crate::error::{KernelError, Result};
use crate::tensor::{DType, Shape, Tensor};

/// Device memory of one tensor.
pub(crate) struct GpuBuffer {
    pub buffer: ::wgpu::Buffer,
    /// `GpuBackend::id` of the backend (device) that owns the buffer.
    backend_id: u64,
    /// Host copy of a u32 tensor's elements; `None` for f32 tensors.
    indices: Option<RwLock<Vec<u32>>>,
}

/// Bytes allocated for `elements` f32 or u32 values: at least 16 and a
/// multiple of 16, so that every buffer can also be bound as `array<vec4<f32>>`.
fn allocation_size(elements: usize) -> u64 {
    ((elements.max(1) * 4).div_ceil(16) * 16) as u64
}

impl GpuBackend {
    /// Allocates a tensor, optionally with initial contents of `shape.numel()` elements.
    pub(crate) fn allocate(
        &self,
        op: &'static str,
        shape: Shape,
        dtype: DType,
        contents: Option<&[u8]>,
        indices: Option<Vec<u32>>,
    ) -> Result<Tensor> {
        let buffer = self.create_buffer(op, &shape, contents)?;
        let storage = GpuBuffer {
            buffer,
            backend_id: self.id,
            indices: indices.map(RwLock::new),
        };
        Ok(Tensor::from_storage(
            std::sync::Arc::new(storage),
            shape,
            dtype,
        ))
    }

    /// Creates a device buffer for a tensor of `shape`, rejecting sizes over
    /// the adapter's storage-binding limit, because every op binds whole tensors.
    pub(crate) fn create_buffer(
        &self,
        op: &'static str,
        shape: &Shape,
        contents: Option<&[u8]>,
    ) -> Result<::wgpu::Buffer> {
        let bytes = shape.numel() as u64 * 4;
        let limit = self
            .limits
            .max_storage_buffer_binding_size
            .min(self.limits.max_buffer_size);
        if bytes > limit {
            return Err(KernelError::InvalidArgument {
                op,
                argument: "dims",
                value: format!("{shape} ({bytes} bytes)"),
                expected: format!(
                    "a tensor of at most {limit} bytes, the storage binding limit of adapter \
                     `{}`; split the tensor or use the cpu backend",
                    self.info.name
                ),
            });
        }
        let scope = self
            .device
            .push_error_scope(::wgpu::ErrorFilter::OutOfMemory);
        let buffer = self.device.create_buffer(&::wgpu::BufferDescriptor {
            label: None,
            size: allocation_size(shape.numel()),
            usage: ::wgpu::BufferUsages::STORAGE
                | ::wgpu::BufferUsages::COPY_SRC
                | ::wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: contents.is_some(),
        });
        if let Some(error) = pollster::block_on(scope.pop()) {
            return Err(KernelError::InvalidArgument {
                op,
                argument: "dims",
                value: format!("{shape} ({bytes} bytes)"),
                expected: format!(
                    "a tensor that fits in the free memory of adapter `{}` ({error}); \
                     free other tensors or use smaller batches",
                    self.info.name
                ),
            });
        }
        if let Some(contents) = contents {
            write_mapped(&buffer, contents);
        }
        Ok(buffer)
    }

    /// Allocates an internal f32 buffer of `elements` values, such as the
    /// partial sums of a reduction. Its contents start as zeros.
    pub(crate) fn scratch(&self, op: &'static str, elements: usize) -> Result<::wgpu::Buffer> {
        self.create_buffer(op, &Shape::new(&[elements]), None)
    }

    /// Returns the buffer behind `tensor`, checking its dtype and owner.
    pub(crate) fn buffer<'t>(
        &self,
        op: &'static str,
        argument: &'static str,
        tensor: &'t Tensor,
        dtype: DType,
    ) -> Result<&'t GpuBuffer> {
        if tensor.dtype() != dtype {
            return Err(KernelError::DTypeMismatch {
                op,
                argument,
                expected: dtype,
                actual: tensor.dtype(),
            });
        }
        match tensor.storage().as_ref().downcast_ref::<GpuBuffer>() {
            Some(buffer) if buffer.backend_id == self.id => Ok(buffer),
            _ => Err(KernelError::ForeignTensor {
                op,
                argument,
                backend: GPU_BACKEND_NAME,
            }),
        }
    }

    /// Device buffer of an f32 argument.
    pub(crate) fn f32_buffer<'t>(
        &self,
        op: &'static str,
        argument: &'static str,
        tensor: &'t Tensor,
    ) -> Result<&'t ::wgpu::Buffer> {
        Ok(&self.buffer(op, argument, tensor, DType::F32)?.buffer)
    }

    /// Device buffer of a u32 argument.
    pub(crate) fn u32_device_buffer<'t>(
        &self,
        op: &'static str,
        argument: &'static str,
        tensor: &'t Tensor,
    ) -> Result<&'t ::wgpu::Buffer> {
        Ok(&self.buffer(op, argument, tensor, DType::U32)?.buffer)
    }

    /// Device buffer and host copy of a u32 argument.
    pub(crate) fn u32_buffer<'t>(
        &self,
        op: &'static str,
        argument: &'static str,
        tensor: &'t Tensor,
    ) -> Result<(&'t ::wgpu::Buffer, RwLockReadGuard<'t, Vec<u32>>)> {
        let buffer = self.buffer(op, argument, tensor, DType::U32)?;
        let indices = buffer
            .indices
            .as_ref()
            .expect("u32 tensors keep a host copy")
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Ok((&buffer.buffer, indices))
    }

    /// Replaces the host copy of a u32 tensor after a write.
    pub(crate) fn set_indices(tensor: &Tensor, data: &[u32]) {
        if let Some(buffer) = tensor.storage().as_ref().downcast_ref::<GpuBuffer>()
            && let Some(indices) = &buffer.indices
        {
            let mut indices = indices
                .write()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            indices.clear();
            indices.extend_from_slice(data);
        }
    }
}

/// Copies `contents` into a buffer created with `mapped_at_creation` and unmaps it.
pub(crate) fn write_mapped(buffer: &::wgpu::Buffer, contents: &[u8]) {
    if !contents.is_empty() {
        let mut view = buffer
            .slice(..contents.len() as u64)
            .get_mapped_range_mut()
            .expect("a buffer created mapped can be viewed");
        view.copy_from_slice(contents);
    }
    buffer.unmap();
}

/// Returns `Aliased` for the first output that shares storage with another
/// argument of the same call. Inputs may share storage with each other,
/// because several read-only bindings of one buffer are valid. An output
/// bound read-write next to another binding of its buffer is a wgpu
/// validation error.
pub(crate) fn check_outputs(
    op: &'static str,
    outputs: &[(&'static str, &Tensor)],
    inputs: &[&Tensor],
) -> Result<()> {
    for (index, &(argument, output)) in outputs.iter().enumerate() {
        let other_outputs = outputs
            .iter()
            .enumerate()
            .filter(|&(other, _)| other != index)
            .map(|(_, &(_, tensor))| tensor);
        if inputs
            .iter()
            .copied()
            .chain(other_outputs)
            .any(|other| output.shares_storage(other))
        {
            return Err(KernelError::Aliased { op, argument });
        }
    }
    Ok(())
}
