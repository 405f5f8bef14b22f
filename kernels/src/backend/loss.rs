//! `LossOps`: the training losses and their gradients.
//!
//! Every loss writes a mean into a `(1)` tensor, and every backward takes the
//! upstream gradient `dloss` as a `(1)` tensor. So a GPU backend never has to
//! read a value back to the host in the middle of a step. A mean over zero
//! terms (an empty batch, all targets ignored, zero total pair weight) is 0,
//! and its gradient is 0.
//!
//! | loss | value | gradient |
//! |---|---|---|
//! | cross-entropy | `mean over kept rows of lse(x) - x[target]` | `(softmax(x) - onehot(target))/count` |
//! | MSE | `mean((pred - target)²)` | `2·(pred - target)/N` |
//! | BCE with logits | `mean(max(x, 0) - x·y + ln(1 + exp(-abs(x))))` | `(sigmoid(x) - y)/N` |
//! | pairwise logistic | `Σ w·ln(1 + exp(s_j - s_i)) / Σ w` | see `pairwise_logistic_backward` |
//!
//! Each gradient is also multiplied by `dloss` and overwrites its output.

use crate::check::{expect_dtype, expect_f32, expect_u32, split_rows};
use crate::error::{KernelError, Result};
use crate::tensor::{DType, Tensor};

pub trait LossOps {
    /// Softmax cross-entropy over the last dimension, averaged over the rows
    /// whose target is not `ignore_index` (masked-language-model loss).
    /// Writes each row's log-sum-exp for the backward, also for ignored rows.
    /// Targets other than `ignore_index` must be below `V`, and the CPU
    /// backend returns `KernelError::IndexOutOfRange` otherwise.
    // logits: (N, V), targets: (N) u32, loss: (1), logsumexp: (N)
    // where (N) is logits' shape without its last dimension.
    fn cross_entropy(
        &self,
        logits: &Tensor,
        targets: &Tensor,
        ignore_index: u32,
        loss: &mut Tensor,
        logsumexp: &mut Tensor,
    ) -> Result<()>;

    /// Gradient of `cross_entropy`: `dloss·(softmax(logits) - onehot)/count`
    /// for kept rows and 0 for ignored rows.
    // dloss: (1), logits: (N, V), targets: (N) u32, logsumexp: (N), dlogits: (N, V)
    #[allow(clippy::too_many_arguments)]
    fn cross_entropy_backward(
        &self,
        dloss: &Tensor,
        logits: &Tensor,
        targets: &Tensor,
        ignore_index: u32,
        logsumexp: &Tensor,
        dlogits: &mut Tensor,
    ) -> Result<()>;

    /// Mean squared error.
    // pred: any shape, target: same shape, loss: (1)
    fn mse(&self, pred: &Tensor, target: &Tensor, loss: &mut Tensor) -> Result<()>;

    /// Gradient of `mse`: `dpred = dloss·2·(pred - target)/N`.
    // dloss: (1), pred, target, dpred: same shape
    fn mse_backward(
        &self,
        dloss: &Tensor,
        pred: &Tensor,
        target: &Tensor,
        dpred: &mut Tensor,
    ) -> Result<()>;

    /// Binary cross-entropy of `sigmoid(logits)` against targets in [0, 1],
    /// computed from the logits without overflow.
    // logits: any shape, targets: same shape, loss: (1)
    fn bce_with_logits(&self, logits: &Tensor, targets: &Tensor, loss: &mut Tensor) -> Result<()>;

    /// Gradient of `bce_with_logits`: `dlogits = dloss·(sigmoid(logits) - targets)/N`.
    // dloss: (1), logits, targets, dlogits: same shape
    fn bce_with_logits_backward(
        &self,
        dloss: &Tensor,
        logits: &Tensor,
        targets: &Tensor,
        dlogits: &mut Tensor,
    ) -> Result<()>;

    /// Weighted pairwise logistic (RankNet) loss. Pair `p = (i, j)` means that
    /// item `i` should score above item `j`, and costs
    /// `weights[p]·ln(1 + exp(scores[j] - scores[i]))`. The loss is the sum of
    /// the costs divided by the sum of the weights. Weights should be
    /// non-negative. Indices must be below `N`, and the CPU backend returns
    /// `KernelError::IndexOutOfRange` otherwise.
    // scores: (N), pairs: (P, 2) u32, weights: (P), loss: (1)
    fn pairwise_logistic(
        &self,
        scores: &Tensor,
        pairs: &Tensor,
        weights: &Tensor,
        loss: &mut Tensor,
    ) -> Result<()>;

    /// Gradient of `pairwise_logistic`. With `g = dloss·w·sigmoid(s_j - s_i)/Σw`
    /// per pair, `dscores[i] -= g` and `dscores[j] += g`, summed over pairs in
    /// order into a zeroed `dscores` (the output is overwritten).
    // dloss: (1), scores: (N), pairs: (P, 2) u32, weights: (P), dscores: (N)
    fn pairwise_logistic_backward(
        &self,
        dloss: &Tensor,
        scores: &Tensor,
        pairs: &Tensor,
        weights: &Tensor,
        dscores: &mut Tensor,
    ) -> Result<()>;
}

/// Checks cross-entropy arguments and returns `(N, V)`. `rows` are the
/// `(N, V)` tensors after `logits`, `stats` the `(N)` f32 tensors.
pub fn check_cross_entropy(
    op: &'static str,
    logits: &Tensor,
    targets: &Tensor,
    rows: &[(&'static str, &Tensor)],
    stats: &[(&'static str, &Tensor)],
    scalars: &[(&'static str, &Tensor)],
) -> Result<(usize, usize)> {
    expect_dtype(op, "logits", logits, DType::F32)?;
    let (leading, vocab) = split_rows(op, "logits", logits, 1, "at least 1 (N, V)")?;
    expect_u32(op, "targets", targets, leading)?;
    for &(argument, tensor) in rows {
        expect_f32(op, argument, tensor, logits.dims())?;
    }
    for &(argument, tensor) in stats {
        expect_f32(op, argument, tensor, leading)?;
    }
    for &(argument, tensor) in scalars {
        expect_f32(op, argument, tensor, &[1])?;
    }
    Ok((leading.iter().product(), vocab))
}

/// Checks pairwise-loss arguments and returns `(N, P)`.
pub fn check_pairwise(
    op: &'static str,
    scores: &Tensor,
    pairs: &Tensor,
    weights: &Tensor,
    outputs: &[(&'static str, &Tensor)],
) -> Result<(usize, usize)> {
    let [items] = *scores.dims() else {
        return Err(KernelError::RankMismatch {
            op,
            argument: "scores",
            expected: "1 (N)",
            actual: scores.shape().clone(),
        });
    };
    expect_f32(op, "scores", scores, &[items])?;
    let [pair_count, 2] = *pairs.dims() else {
        return Err(KernelError::RankMismatch {
            op,
            argument: "pairs",
            expected: "2 (P, 2)",
            actual: pairs.shape().clone(),
        });
    };
    expect_u32(op, "pairs", pairs, &[pair_count, 2])?;
    expect_f32(op, "weights", weights, &[pair_count])?;
    for &(argument, tensor) in outputs {
        let dims: &[usize] = if argument == "dscores" {
            &[items]
        } else {
            &[1]
        };
        expect_f32(op, argument, tensor, dims)?;
    }
    Ok((items, pair_count))
}
