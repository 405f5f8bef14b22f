//! `DropoutOps`: inverted dropout with a counter-based mask.
//!
//! Element `i` is kept when the Philox4x32-10 word for `(seed, i)` is at
//! least `dropout_threshold(p)` (see `crate::philox`), and kept elements are
//! scaled by `1/(1 - p)`. The mask depends only on the seed, `p` and the
//! element index, so every backend drops the same elements, and the backward
//! regenerates the mask instead of storing it. Use a distinct seed for every
//! dropout site and step.

use crate::backend::check_same_shape;
use crate::error::{KernelError, Result};
use crate::tensor::Tensor;

pub trait DropoutOps {
    /// Computes `out = x·keep/(1 - p)`, with `keep` from `(seed, element index)`.
    // x: any shape, out: same shape
    fn dropout(&self, x: &Tensor, p: f32, seed: u64, out: &mut Tensor) -> Result<()>;

    /// Computes `dx = dout·keep/(1 - p)` with the same mask as the forward call
    /// that used this `p` and `seed`.
    // dout: any shape, dx: same shape
    fn dropout_backward(&self, dout: &Tensor, p: f32, seed: u64, dx: &mut Tensor) -> Result<()>;
}

/// Checks dropout arguments and returns the element count.
pub fn check_dropout(
    op: &'static str,
    input: (&'static str, &Tensor),
    output: (&'static str, &Tensor),
    p: f32,
) -> Result<usize> {
    let numel = check_same_shape(op, &[input, output])?;
    if !(0.0..1.0).contains(&p) {
        return Err(KernelError::InvalidArgument {
            op,
            argument: "p",
            value: p.to_string(),
            expected: "a probability in [0, 1)".to_string(),
        });
    }
    Ok(numel)
}
