//! `ReduceOps`: whole-tensor sum, mean and L2 norm into a `(1)` tensor.
//!
//! Backends sum in a fixed order that does not depend on the thread count or
//! scheduling, so repeated calls give identical bits. A mean of zero
//! elements is 0.

use crate::check::expect_f32;
use crate::error::Result;
use crate::tensor::Tensor;

pub trait ReduceOps {
    /// Writes `Σx` to `out`.
    // x: any shape, out: (1)
    fn sum(&self, x: &Tensor, out: &mut Tensor) -> Result<()>;

    /// Writes `Σx / numel` to `out`.
    // x: any shape, out: (1)
    fn mean(&self, x: &Tensor, out: &mut Tensor) -> Result<()>;

    /// Writes the L2 norm `sqrt(Σx²)` to `out`.
    // x: any shape, out: (1)
    fn norm(&self, x: &Tensor, out: &mut Tensor) -> Result<()>;
}

/// Checks reduction arguments and returns the element count of `x`.
pub fn check_reduce(op: &'static str, x: &Tensor, out: &Tensor) -> Result<usize> {
    expect_f32(op, "x", x, x.dims())?;
    expect_f32(op, "out", out, &[1])?;
    Ok(x.numel())
}
