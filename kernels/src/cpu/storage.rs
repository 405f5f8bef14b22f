//! `CpuBuffer`, the storage behind CPU tensors, and the guarded access that
//! ops use to read inputs and write outputs.
//!
//! Each buffer sits behind an `RwLock`. An op takes read locks on its inputs
//! and then write locks on its outputs, all with `try_*`, so an output that
//! shares storage with another argument of the same call fails with
//! `KernelError::Aliased` instead of deadlocking.

use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard, TryLockError};

use crate::error::{KernelError, Result};
use crate::tensor::{DType, Shape, Tensor};

use super::CPU_BACKEND_NAME;

/// Host memory of one CPU tensor.
pub(crate) struct CpuBuffer<T> {
    data: RwLock<Vec<T>>,
}

/// Element types that CPU tensors store.
pub(crate) trait Element: Copy + Send + Sync + 'static {
    const DTYPE: DType;
}

impl Element for f32 {
    const DTYPE: DType = DType::F32;
}

impl Element for u32 {
    const DTYPE: DType = DType::U32;
}

/// Wraps host data in a new CPU tensor.
pub(crate) fn new_tensor<T: Element>(data: Vec<T>, shape: Shape) -> Tensor {
    let buffer = CpuBuffer {
        data: RwLock::new(data),
    };
    Tensor::from_storage(Arc::new(buffer), shape, T::DTYPE)
}

fn buffer<'t, T: Element>(
    op: &'static str,
    argument: &'static str,
    tensor: &'t Tensor,
) -> Result<&'t CpuBuffer<T>> {
    if tensor.dtype() != T::DTYPE {
        return Err(KernelError::DTypeMismatch {
            op,
            argument,
            expected: T::DTYPE,
            actual: tensor.dtype(),
        });
    }
    tensor
        .storage()
        .as_ref()
        .downcast_ref::<CpuBuffer<T>>()
        .ok_or(KernelError::ForeignTensor {
            op,
            argument,
            backend: CPU_BACKEND_NAME,
        })
}

/// Locks an input tensor for reading.
pub(crate) fn read<'t, T: Element>(
    op: &'static str,
    argument: &'static str,
    tensor: &'t Tensor,
) -> Result<RwLockReadGuard<'t, Vec<T>>> {
    match buffer::<T>(op, argument, tensor)?.data.try_read() {
        Ok(guard) => Ok(guard),
        // A panic in an earlier op cannot leave a Vec<f32> or Vec<u32> invalid.
        Err(TryLockError::Poisoned(poisoned)) => Ok(poisoned.into_inner()),
        Err(TryLockError::WouldBlock) => Err(KernelError::Aliased { op, argument }),
    }
}

/// Locks an output tensor for writing.
pub(crate) fn write<'t, T: Element>(
    op: &'static str,
    argument: &'static str,
    tensor: &'t mut Tensor,
) -> Result<RwLockWriteGuard<'t, Vec<T>>> {
    match buffer::<T>(op, argument, tensor)?.data.try_write() {
        Ok(guard) => Ok(guard),
        Err(TryLockError::Poisoned(poisoned)) => Ok(poisoned.into_inner()),
        Err(TryLockError::WouldBlock) => Err(KernelError::Aliased { op, argument }),
    }
}
