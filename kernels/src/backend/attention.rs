//! `AttentionOps`: multi-head scaled dot-product attention with a key padding
//! mask, and its backward.
//!
//! `q`, `k` and `v` are `(B, T, C)` with `H` heads of `D = C/H` channels: head
//! `h` uses channels `h·D .. (h+1)·D`. For batch `b` and head `h`:
//!
//! ```text
//! S = Q·Kᵀ / sqrt(D)                         // (T, T)
//! S[i, j] = -inf where mask[b, j] == 0       // padded keys get no weight
//! P = softmax(S) along j, subtracting the row maximum first
//! O = P·V                                    // (T, D), written into out's head slice
//! ```
//!
//! The mask covers keys only: padded query rows still attend to the real
//! keys, and the caller ignores their outputs. When every key of a sequence
//! is masked, `P` and `O` are all zeros for that sequence (not NaN).
//!
//! The backward recomputes nothing; it uses the saved `P`:
//!
//! ```text
//! dV = Pᵀ·dO
//! dP = dO·Vᵀ
//! dS = P ⊙ (dP - rowsum(dP ⊙ P))
//! dQ = dS·K / sqrt(D)
//! dK = dSᵀ·Q / sqrt(D)
//! ```
//!
//! All three gradients are activations, so they are overwritten.

use crate::check::{expect_f32, expect_u32};
use crate::error::{KernelError, Result};
use crate::tensor::Tensor;

pub trait AttentionOps {
    /// Runs attention over `heads` heads and saves the probabilities for the backward.
    // q, k, v: (B, T, C), mask: (B, T) u32 with 1 = real token, 0 = padding,
    // out: (B, T, C), probs: (B, H, T, T)
    #[allow(clippy::too_many_arguments)]
    fn attention(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        mask: &Tensor,
        heads: usize,
        out: &mut Tensor,
        probs: &mut Tensor,
    ) -> Result<()>;

    /// Backward of `attention`. Overwrites `dq`, `dk` and `dv`.
    // dout: (B, T, C), q, k, v: (B, T, C), probs: (B, H, T, T),
    // dq, dk, dv: (B, T, C)
    #[allow(clippy::too_many_arguments)]
    fn attention_backward(
        &self,
        dout: &Tensor,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        probs: &Tensor,
        heads: usize,
        dq: &mut Tensor,
        dk: &mut Tensor,
        dv: &mut Tensor,
    ) -> Result<()>;
}

/// Sizes of one attention call after its shapes were checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttentionDims {
    pub batch: usize,
    pub seq: usize,
    pub channels: usize,
    pub heads: usize,
    pub head_dim: usize,
}

impl AttentionDims {
    /// `1/sqrt(D)`, the score scale.
    pub fn scale(&self) -> f32 {
        (1.0 / (self.head_dim as f64).sqrt()) as f32
    }
}

/// Checks attention arguments and returns the sizes. `btc` are the
/// `(B, T, C)` tensors after `q`; `mask` is absent in the backward.
pub fn attention_dims(
    op: &'static str,
    q: &Tensor,
    btc: &[(&'static str, &Tensor)],
    mask: Option<&Tensor>,
    probs: &Tensor,
    heads: usize,
) -> Result<AttentionDims> {
    let [batch, seq, channels] = *q.dims() else {
        return Err(KernelError::RankMismatch {
            op,
            argument: "q",
            expected: "3 (B, T, C)",
            actual: q.shape().clone(),
        });
    };
    expect_f32(op, "q", q, q.dims())?;
    if channels == 0 || heads == 0 || channels % heads != 0 {
        return Err(KernelError::InvalidArgument {
            op,
            argument: "heads",
            value: heads.to_string(),
            expected: format!(
                "a positive divisor of the hidden size C = {channels} (C must be positive)"
            ),
        });
    }
    for &(argument, tensor) in btc {
        expect_f32(op, argument, tensor, q.dims())?;
    }
    if let Some(mask) = mask {
        expect_u32(op, "mask", mask, &[batch, seq])?;
    }
    expect_f32(op, "probs", probs, &[batch, heads, seq, seq])?;
    Ok(AttentionDims {
        batch,
        seq,
        channels,
        heads,
        head_dim: channels / heads,
    })
}
