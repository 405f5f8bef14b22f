//! `Backend` for `GpuBackend`: allocation, host transfers, fill and copy.

use super::buffer::check_outputs;
use super::{GPU_BACKEND_NAME, GpuBackend};
use crate::backend::Backend;
use crate::check::expect_f32;
use crate::error::{KernelError, Result};
use crate::tensor::{DType, Shape, Tensor};

fn check_length(op: &'static str, shape: &Shape, len: usize) -> Result<()> {
    if shape.numel() != len {
        return Err(KernelError::LengthMismatch {
            op,
            shape: shape.clone(),
            expected: shape.numel(),
            actual: len,
        });
    }
    Ok(())
}

impl Backend for GpuBackend {
    fn name(&self) -> &'static str {
        GPU_BACKEND_NAME
    }

    fn device_name(&self) -> String {
        let adapter = self.adapter();
        format!(
            "{} ({}, {})",
            adapter.name, adapter.backend, adapter.device_type
        )
    }

    fn zeros(&self, dims: &[usize]) -> Result<Tensor> {
        // wgpu zero-initializes every new buffer.
        self.allocate("zeros", Shape::new(dims), DType::F32, None, None)
    }

    fn zeros_u32(&self, dims: &[usize]) -> Result<Tensor> {
        let shape = Shape::new(dims);
        let indices = vec![0; shape.numel()];
        self.allocate("zeros_u32", shape, DType::U32, None, Some(indices))
    }

    fn upload(&self, data: &[f32], dims: &[usize]) -> Result<Tensor> {
        let shape = Shape::new(dims);
        check_length("upload", &shape, data.len())?;
        let bytes = bytemuck::cast_slice(data);
        self.allocate("upload", shape, DType::F32, Some(bytes), None)
    }

    fn upload_u32(&self, data: &[u32], dims: &[usize]) -> Result<Tensor> {
        let shape = Shape::new(dims);
        check_length("upload_u32", &shape, data.len())?;
        let bytes = bytemuck::cast_slice(data);
        self.allocate(
            "upload_u32",
            shape,
            DType::U32,
            Some(bytes),
            Some(data.to_vec()),
        )
    }

    fn write(&self, tensor: &mut Tensor, data: &[f32]) -> Result<()> {
        check_length("write", tensor.shape(), data.len())?;
        let buffer = self.f32_buffer("write", "tensor", tensor)?;
        self.record_write(buffer, bytemuck::cast_slice(data));
        Ok(())
    }

    fn write_u32(&self, tensor: &mut Tensor, data: &[u32]) -> Result<()> {
        check_length("write_u32", tensor.shape(), data.len())?;
        let buffer = self.u32_device_buffer("write_u32", "tensor", tensor)?;
        self.record_write(buffer, bytemuck::cast_slice(data));
        Self::set_indices(tensor, data);
        Ok(())
    }

    fn download(&self, tensor: &Tensor) -> Result<Vec<f32>> {
        let buffer = self.f32_buffer("download", "tensor", tensor)?;
        let bytes = self.read_back(buffer, tensor.numel() as u64 * 4);
        Ok(bytemuck::pod_collect_to_vec(&bytes))
    }

    fn download_u32(&self, tensor: &Tensor) -> Result<Vec<u32>> {
        let buffer = self.u32_device_buffer("download_u32", "tensor", tensor)?;
        let bytes = self.read_back(buffer, tensor.numel() as u64 * 4);
        Ok(bytemuck::pod_collect_to_vec(&bytes))
    }

    fn fill(&self, tensor: &mut Tensor, value: f32) -> Result<()> {
        let buffer = self.f32_buffer("fill", "tensor", tensor)?;
        self.fill_buffer("fill", buffer, tensor.numel(), value)
    }

    fn copy(&self, src: &Tensor, dst: &mut Tensor) -> Result<()> {
        const OP: &str = "copy";
        expect_f32(OP, "src", src, src.dims())?;
        expect_f32(OP, "dst", dst, src.dims())?;
        let src_buffer = self.f32_buffer(OP, "src", src)?;
        let dst_buffer = self.f32_buffer(OP, "dst", dst)?;
        check_outputs(OP, &[("dst", dst)], &[src])?;
        self.record_copy(src_buffer, dst_buffer, src.numel() as u64 * 4);
        Ok(())
    }
}
