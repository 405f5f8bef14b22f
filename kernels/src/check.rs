//! Argument checks shared by every backend, so that all backends reject the
//! same calls with the same `KernelError`.

use crate::error::{KernelError, Result};
use crate::tensor::{DType, Shape, Tensor};

/// Checks that `tensor` has element type `dtype`.
pub fn expect_dtype(
    op: &'static str,
    argument: &'static str,
    tensor: &Tensor,
    dtype: DType,
) -> Result<()> {
    if tensor.dtype() != dtype {
        return Err(KernelError::DTypeMismatch {
            op,
            argument,
            expected: dtype,
            actual: tensor.dtype(),
        });
    }
    Ok(())
}

/// Checks that `tensor` has shape `dims` and element type `dtype`.
pub fn expect_tensor(
    op: &'static str,
    argument: &'static str,
    tensor: &Tensor,
    dtype: DType,
    dims: &[usize],
) -> Result<()> {
    expect_dtype(op, argument, tensor, dtype)?;
    if tensor.dims() != dims {
        return Err(KernelError::ShapeMismatch {
            op,
            argument,
            expected: Shape::new(dims),
            actual: tensor.shape().clone(),
        });
    }
    Ok(())
}

/// Checks an f32 tensor's shape.
pub fn expect_f32(
    op: &'static str,
    argument: &'static str,
    tensor: &Tensor,
    dims: &[usize],
) -> Result<()> {
    expect_tensor(op, argument, tensor, DType::F32, dims)
}

/// Checks a u32 tensor's shape.
pub fn expect_u32(
    op: &'static str,
    argument: &'static str,
    tensor: &Tensor,
    dims: &[usize],
) -> Result<()> {
    expect_tensor(op, argument, tensor, DType::U32, dims)
}

/// Checks that `tensor` has rank at least `min_rank` and returns its shape
/// split into the leading dimensions and the last one, `(N..., C)`.
pub fn split_rows<'t>(
    op: &'static str,
    argument: &'static str,
    tensor: &'t Tensor,
    min_rank: usize,
    expected: &'static str,
) -> Result<(&'t [usize], usize)> {
    let dims = tensor.dims();
    if dims.len() < min_rank.max(1) {
        return Err(KernelError::RankMismatch {
            op,
            argument,
            expected,
            actual: tensor.shape().clone(),
        });
    }
    let (last, leading) = dims.split_last().expect("rank checked above");
    Ok((leading, *last))
}

/// Appends `last` to `leading`, for example `(B, T)` and `C` to `(B, T, C)`.
pub fn with_last(leading: &[usize], last: usize) -> Vec<usize> {
    let mut dims = leading.to_vec();
    dims.push(last);
    dims
}

/// Checks that a scalar argument is finite.
pub fn expect_finite(op: &'static str, argument: &'static str, value: f32) -> Result<()> {
    if !value.is_finite() {
        return Err(KernelError::InvalidArgument {
            op,
            argument,
            value: value.to_string(),
            expected: "a finite number".to_string(),
        });
    }
    Ok(())
}
