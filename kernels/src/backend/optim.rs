//! `OptimOps`: the AdamW update and global-norm gradient clipping.
//!
//! AdamW (Adam with decoupled weight decay) at step `t` (1-based), per element:
//!
//! ```text
//! m = beta1·m + (1 - beta1)·g
//! v = beta2·v + (1 - beta2)·g²
//! param -= lr·((m / (1 - beta1ᵗ)) / (sqrt(v / (1 - beta2ᵗ)) + eps) + weight_decay·param)
//! ```
//!
//! The weight decay uses the parameter before the update and is not scaled
//! by the adaptive term, which is what "decoupled" means.

use crate::backend::check_same_shape;
use crate::check::expect_f32;
use crate::error::{KernelError, Result};
use crate::tensor::Tensor;

/// AdamW hyperparameters for one step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamWConfig {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub weight_decay: f32,
}

impl Default for AdamWConfig {
    /// lr 1e-4, betas (0.9, 0.999), eps 1e-6, weight decay 0.01.
    fn default() -> Self {
        AdamWConfig {
            lr: 1e-4,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-6,
            weight_decay: 0.01,
        }
    }
}

pub trait OptimOps {
    /// Applies one AdamW step at `step` (1-based) to `param`, updating the
    /// moment estimates `m` and `v` in place.
    // param, grad, m, v: same shape
    fn adamw_step(
        &self,
        param: &mut Tensor,
        grad: &Tensor,
        m: &mut Tensor,
        v: &mut Tensor,
        config: &AdamWConfig,
        step: u32,
    ) -> Result<()>;

    /// Computes the L2 norm of all `grads` together, writes it to `norm`, and
    /// when it exceeds `max_norm` scales every gradient by
    /// `max_norm / (norm + 1e-6)`.
    // grads: any shapes, norm: (1)
    fn clip_grad_norm(
        &self,
        grads: &mut [&mut Tensor],
        max_norm: f32,
        norm: &mut Tensor,
    ) -> Result<()>;
}

/// Checks AdamW arguments and returns the element count.
pub fn check_adamw(
    param: &Tensor,
    grad: &Tensor,
    m: &Tensor,
    v: &Tensor,
    config: &AdamWConfig,
    step: u32,
) -> Result<usize> {
    const OP: &str = "adamw_step";
    let numel = check_same_shape(OP, &[("param", param), ("grad", grad), ("m", m), ("v", v)])?;
    let invalid =
        |argument: &'static str, value: String, expected: &str| KernelError::InvalidArgument {
            op: OP,
            argument,
            value,
            expected: expected.to_string(),
        };
    if step == 0 {
        return Err(invalid(
            "step",
            "0".to_string(),
            "a step count starting at 1",
        ));
    }
    for (argument, beta) in [("beta1", config.beta1), ("beta2", config.beta2)] {
        if !(0.0..1.0).contains(&beta) {
            return Err(invalid(argument, beta.to_string(), "a value in [0, 1)"));
        }
    }
    for (argument, value) in [
        ("lr", config.lr),
        ("eps", config.eps),
        ("weight_decay", config.weight_decay),
    ] {
        if !(value.is_finite() && value >= 0.0) {
            return Err(invalid(
                argument,
                value.to_string(),
                "a finite non-negative number",
            ));
        }
    }
    Ok(numel)
}

/// Checks `clip_grad_norm` arguments.
pub fn check_clip(grads: &[&mut Tensor], max_norm: f32, norm: &Tensor) -> Result<()> {
    const OP: &str = "clip_grad_norm";
    for grad in grads {
        expect_f32(OP, "grads", grad, grad.dims())?;
    }
    expect_f32(OP, "norm", norm, &[1])?;
    if !(max_norm.is_finite() && max_norm > 0.0) {
        return Err(KernelError::InvalidArgument {
            op: OP,
            argument: "max_norm",
            value: max_norm.to_string(),
            expected: "a finite positive number".to_string(),
        });
    }
    Ok(())
}
