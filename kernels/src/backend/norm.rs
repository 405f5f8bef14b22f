//! `NormOps`: layer normalization over the last dimension and its backward.
//!
//! Forward, per row of `C` elements (two passes over the row):
//!
//! ```text
//! mean = Σx / C
//! rstd = 1 / sqrt(Σ(x - mean)² / C + eps)
//! out  = (x - mean)·rstd·gamma + beta
//! ```
//!
//! `mean` and `rstd` are saved for the backward, which with
//! `xhat = (x - mean)·rstd` and `g = dout·gamma` computes
//!
//! ```text
//! dx      = rstd·(g - mean(g) - xhat·mean(g·xhat))   // activation: =
//! dgamma += Σ_rows dout·xhat                         // parameter: +=
//! dbeta  += Σ_rows dout                              // parameter: +=
//! ```

use crate::check::{expect_f32, expect_finite, split_rows};
use crate::error::{KernelError, Result};
use crate::tensor::Tensor;

pub trait NormOps {
    /// Normalizes each row of `x` to zero mean and unit variance, then scales
    /// by `gamma` and shifts by `beta`. Writes the row means and reciprocal
    /// standard deviations for the backward.
    // x: (N, C), gamma: (C), beta: (C), out: (N, C), mean: (N), rstd: (N)
    // where (N) is x's shape without its last dimension.
    #[allow(clippy::too_many_arguments)]
    fn layer_norm(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        beta: &Tensor,
        eps: f32,
        out: &mut Tensor,
        mean: &mut Tensor,
        rstd: &mut Tensor,
    ) -> Result<()>;

    /// Backward of `layer_norm`: overwrites `dx`, adds into `dgamma` and `dbeta`.
    // dout: (N, C), x: (N, C), gamma: (C), mean: (N), rstd: (N),
    // dx: (N, C), dgamma: (C), dbeta: (C)
    #[allow(clippy::too_many_arguments)]
    fn layer_norm_backward(
        &self,
        dout: &Tensor,
        x: &Tensor,
        gamma: &Tensor,
        mean: &Tensor,
        rstd: &Tensor,
        dx: &mut Tensor,
        dgamma: &mut Tensor,
        dbeta: &mut Tensor,
    ) -> Result<()>;
}

/// Checks layer-norm arguments and returns `(N, C)`. `row_stats` are the
/// `(N)`-shaped tensors (mean, rstd), `row_tensors` the `(N, C)`-shaped ones
/// after `x`, `channel_tensors` the `(C)`-shaped ones.
pub fn check_layer_norm(
    op: &'static str,
    x: &Tensor,
    row_tensors: &[(&'static str, &Tensor)],
    channel_tensors: &[(&'static str, &Tensor)],
    row_stats: &[(&'static str, &Tensor)],
    eps: Option<f32>,
) -> Result<(usize, usize)> {
    expect_f32(op, "x", x, x.dims())?;
    let (leading, channels) = split_rows(op, "x", x, 1, "at least 1")?;
    for &(argument, tensor) in row_tensors {
        expect_f32(op, argument, tensor, x.dims())?;
    }
    for &(argument, tensor) in channel_tensors {
        expect_f32(op, argument, tensor, &[channels])?;
    }
    for &(argument, tensor) in row_stats {
        expect_f32(op, argument, tensor, leading)?;
    }
    if let Some(eps) = eps {
        expect_finite(op, "eps", eps)?;
        if eps <= 0.0 {
            return Err(KernelError::InvalidArgument {
                op,
                argument: "eps",
                value: eps.to_string(),
                expected: "a positive number".to_string(),
            });
        }
    }
    Ok((leading.iter().product(), channels))
}
