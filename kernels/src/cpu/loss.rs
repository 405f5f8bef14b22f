//! CPU `LossOps`. Row and element sums are computed in fixed chunks and
//! combined in chunk order in f64; pair losses are summed in pair order.

use rayon::prelude::*;

use super::CpuBackend;
use super::embedding::check_indices;
use super::parallel::{chunked_sum2, rows_per_task};
use super::simd::{dispatch, max, sum_by, sum_by2};
use super::storage::{read, write};
use crate::backend::{LossOps, check_cross_entropy, check_pairwise, check_same_shape};
use crate::check::expect_f32;
use crate::error::{KernelError, Result};
use crate::math;
use crate::tensor::Tensor;

/// `ln(1 + exp(z))` without overflow.
#[inline(always)]
fn softplus(z: f32) -> f32 {
    z.max(0.0) + math::exp(-z.abs()).ln_1p()
}

#[inline(always)]
fn sigmoid(z: f32) -> f32 {
    1.0 / (1.0 + math::exp(-z))
}

/// Mean of `total` over `count` terms, 0 when there are none.
fn mean_or_zero(total: f64, count: usize) -> f32 {
    if count == 0 {
        0.0
    } else {
        (total / count as f64) as f32
    }
}

/// Reads the single element of a `(1)` tensor.
fn read_scalar(op: &'static str, argument: &'static str, tensor: &Tensor) -> Result<f32> {
    expect_f32(op, argument, tensor, &[1])?;
    Ok(read::<f32>(op, argument, tensor)?[0])
}

/// Returns an error for the first target that is neither `ignore_index` nor below `vocab`.
fn check_targets(op: &'static str, targets: &[u32], ignore_index: u32, vocab: usize) -> Result<()> {
    match targets
        .iter()
        .position(|&target| target != ignore_index && target as usize >= vocab)
    {
        Some(position) => Err(KernelError::IndexOutOfRange {
            op,
            argument: "targets",
            index: targets[position],
            position,
            limit: vocab,
        }),
        None => Ok(()),
    }
}

/// Writes `ln Σ exp(row)` for each row and returns the sum of `lse - row[target]`
/// over kept rows of the block.
// logits: (rows, V), targets: (rows), logsumexp: (rows)
#[inline(always)]
fn cross_entropy_block(
    logits: &[f32],
    targets: &[u32],
    ignore_index: u32,
    logsumexp: &mut [f32],
    vocab: usize,
) -> f32 {
    let mut total = 0.0f32;
    for ((row, &target), lse) in logits
        .chunks_exact(vocab)
        .zip(targets)
        .zip(logsumexp.iter_mut())
    {
        let row_max = max(row);
        let sum = sum_by(row, |value| math::exp(value - row_max));
        *lse = row_max + sum.ln();
        if target != ignore_index {
            total += *lse - row[target as usize];
        }
    }
    total
}

impl LossOps for CpuBackend {
    fn cross_entropy(
        &self,
        logits: &Tensor,
        targets: &Tensor,
        ignore_index: u32,
        loss: &mut Tensor,
        logsumexp: &mut Tensor,
    ) -> Result<()> {
        const OP: &str = "cross_entropy";
        let (rows, vocab) = check_cross_entropy(
            OP,
            logits,
            targets,
            &[],
            &[("logsumexp", logsumexp)],
            &[("loss", loss)],
        )?;
        let logits = read::<f32>(OP, "logits", logits)?;
        let targets = read::<u32>(OP, "targets", targets)?;
        let mut loss = write::<f32>(OP, "loss", loss)?;
        let mut logsumexp = write::<f32>(OP, "logsumexp", logsumexp)?;
        let (logits, targets, logsumexp): (&[f32], &[u32], &mut [f32]) =
            (&logits, &targets, &mut logsumexp);
        check_targets(OP, targets, ignore_index, vocab)?;
        let kept_rows = targets
            .iter()
            .filter(|&&target| target != ignore_index)
            .count();
        if rows == 0 || vocab == 0 {
            logsumexp.fill(f32::NEG_INFINITY);
            loss[0] = 0.0;
            return Ok(());
        }

        let block = rows_per_task(vocab);
        let partials: Vec<f32> = self.install(|| {
            logits
                .par_chunks(block * vocab)
                .zip(
                    targets
                        .par_chunks(block)
                        .zip(logsumexp.par_chunks_mut(block)),
                )
                .map(|(logits, (targets, logsumexp))| {
                    dispatch(
                        #[inline(always)]
                        || cross_entropy_block(logits, targets, ignore_index, logsumexp, vocab),
                    )
                })
                .collect()
        });
        let total: f64 = partials.iter().map(|&partial| partial as f64).sum();
        loss[0] = mean_or_zero(total, kept_rows);
        Ok(())
    }

    fn cross_entropy_backward(
        &self,
        dloss: &Tensor,
        logits: &Tensor,
        targets: &Tensor,
        ignore_index: u32,
        logsumexp: &Tensor,
        dlogits: &mut Tensor,
    ) -> Result<()> {
        const OP: &str = "cross_entropy_backward";
        let (_, vocab) = check_cross_entropy(
            OP,
            logits,
            targets,
            &[("dlogits", dlogits)],
            &[("logsumexp", logsumexp)],
            &[("dloss", dloss)],
        )?;
        let dloss = read_scalar(OP, "dloss", dloss)?;
        let logits = read::<f32>(OP, "logits", logits)?;
        let targets = read::<u32>(OP, "targets", targets)?;
        let logsumexp = read::<f32>(OP, "logsumexp", logsumexp)?;
        let mut dlogits = write::<f32>(OP, "dlogits", dlogits)?;
        let (logits, targets, logsumexp, dlogits): (&[f32], &[u32], &[f32], &mut [f32]) =
            (&logits, &targets, &logsumexp, &mut dlogits);
        check_targets(OP, targets, ignore_index, vocab)?;
        if vocab == 0 {
            return Ok(());
        }
        let kept_rows = targets
            .iter()
            .filter(|&&target| target != ignore_index)
            .count();
        let factor = if kept_rows == 0 {
            0.0
        } else {
            (dloss as f64 / kept_rows as f64) as f32
        };

        let block = rows_per_task(vocab);
        self.install(|| {
            dlogits
                .par_chunks_mut(block * vocab)
                .zip(logits.par_chunks(block * vocab))
                .zip(targets.par_chunks(block).zip(logsumexp.par_chunks(block)))
                .for_each(|((dlogits, logits), (targets, logsumexp))| {
                    let rows = dlogits
                        .chunks_exact_mut(vocab)
                        .zip(logits.chunks_exact(vocab));
                    for ((drow, row), (&target, &lse)) in rows.zip(targets.iter().zip(logsumexp)) {
                        if target == ignore_index {
                            drow.fill(0.0);
                            continue;
                        }
                        dispatch(
                            #[inline(always)]
                            || {
                                for (d, &value) in drow.iter_mut().zip(row) {
                                    *d = math::exp(value - lse) * factor;
                                }
                            },
                        );
                        drow[target as usize] -= factor;
                    }
                })
        });
        Ok(())
    }

    fn mse(&self, pred: &Tensor, target: &Tensor, loss: &mut Tensor) -> Result<()> {
        const OP: &str = "mse";
        let count = check_same_shape(OP, &[("pred", pred), ("target", target)])?;
        expect_f32(OP, "loss", loss, &[1])?;
        let pred = read::<f32>(OP, "pred", pred)?;
        let target = read::<f32>(OP, "target", target)?;
        let mut loss = write::<f32>(OP, "loss", loss)?;
        let (pred, target): (&[f32], &[f32]) = (&pred, &target);
        let total = self.install(|| {
            chunked_sum2(pred, target, |pred, target| {
                dispatch(
                    #[inline(always)]
                    || sum_by2(pred, target, |p, t| (p - t) * (p - t)),
                )
            })
        });
        loss[0] = mean_or_zero(total, count);
        Ok(())
    }

    fn mse_backward(
        &self,
        dloss: &Tensor,
        pred: &Tensor,
        target: &Tensor,
        dpred: &mut Tensor,
    ) -> Result<()> {
        const OP: &str = "mse_backward";
        let count = check_same_shape(OP, &[("pred", pred), ("target", target), ("dpred", dpred)])?;
        let dloss = read_scalar(OP, "dloss", dloss)?;
        let factor = if count == 0 {
            0.0
        } else {
            (2.0 * dloss as f64 / count as f64) as f32
        };
        self.binary(
            OP,
            ("pred", pred),
            ("target", target),
            ("dpred", dpred),
            move |p, t| factor * (p - t),
        )
    }

    fn bce_with_logits(&self, logits: &Tensor, targets: &Tensor, loss: &mut Tensor) -> Result<()> {
        const OP: &str = "bce_with_logits";
        let count = check_same_shape(OP, &[("logits", logits), ("targets", targets)])?;
        expect_f32(OP, "loss", loss, &[1])?;
        let logits = read::<f32>(OP, "logits", logits)?;
        let targets = read::<f32>(OP, "targets", targets)?;
        let mut loss = write::<f32>(OP, "loss", loss)?;
        let (logits, targets): (&[f32], &[f32]) = (&logits, &targets);
        let total = self.install(|| {
            chunked_sum2(logits, targets, |logits, targets| {
                sum_by2(logits, targets, |x, y| softplus(x) - x * y)
            })
        });
        loss[0] = mean_or_zero(total, count);
        Ok(())
    }

    fn bce_with_logits_backward(
        &self,
        dloss: &Tensor,
        logits: &Tensor,
        targets: &Tensor,
        dlogits: &mut Tensor,
    ) -> Result<()> {
        const OP: &str = "bce_with_logits_backward";
        let count = check_same_shape(
            OP,
            &[
                ("logits", logits),
                ("targets", targets),
                ("dlogits", dlogits),
            ],
        )?;
        let dloss = read_scalar(OP, "dloss", dloss)?;
        let factor = if count == 0 {
            0.0
        } else {
            (dloss as f64 / count as f64) as f32
        };
        self.binary(
            OP,
            ("logits", logits),
            ("targets", targets),
            ("dlogits", dlogits),
            move |x, y| factor * (sigmoid(x) - y),
        )
    }

    fn pairwise_logistic(
        &self,
        scores: &Tensor,
        pairs: &Tensor,
        weights: &Tensor,
        loss: &mut Tensor,
    ) -> Result<()> {
        const OP: &str = "pairwise_logistic";
        let (items, _) = check_pairwise(OP, scores, pairs, weights, &[("loss", loss)])?;
        let scores = read::<f32>(OP, "scores", scores)?;
        let pairs = read::<u32>(OP, "pairs", pairs)?;
        let weights = read::<f32>(OP, "weights", weights)?;
        let mut loss = write::<f32>(OP, "loss", loss)?;
        check_indices(OP, "pairs", &pairs, items)?;

        let mut total = 0.0f64;
        let mut weight_sum = 0.0f64;
        for (pair, &weight) in pairs.chunks_exact(2).zip(weights.iter()) {
            let margin = scores[pair[1] as usize] - scores[pair[0] as usize];
            total += (weight * softplus(margin)) as f64;
            weight_sum += weight as f64;
        }
        loss[0] = if weight_sum == 0.0 {
            0.0
        } else {
            (total / weight_sum) as f32
        };
        Ok(())
    }

    fn pairwise_logistic_backward(
        &self,
        dloss: &Tensor,
        scores: &Tensor,
        pairs: &Tensor,
        weights: &Tensor,
        dscores: &mut Tensor,
    ) -> Result<()> {
        const OP: &str = "pairwise_logistic_backward";
        let (items, _) = check_pairwise(
            OP,
            scores,
            pairs,
            weights,
            &[("dloss", dloss), ("dscores", dscores)],
        )?;
        let dloss = read_scalar(OP, "dloss", dloss)?;
        let scores = read::<f32>(OP, "scores", scores)?;
        let pairs = read::<u32>(OP, "pairs", pairs)?;
        let weights = read::<f32>(OP, "weights", weights)?;
        let mut dscores = write::<f32>(OP, "dscores", dscores)?;
        check_indices(OP, "pairs", &pairs, items)?;

        dscores.fill(0.0);
        let weight_sum: f64 = weights.iter().map(|&weight| weight as f64).sum();
        if weight_sum == 0.0 {
            return Ok(());
        }
        let factor = (dloss as f64 / weight_sum) as f32;
        for (pair, &weight) in pairs.chunks_exact(2).zip(weights.iter()) {
            let (better, worse) = (pair[0] as usize, pair[1] as usize);
            let gradient = factor * weight * sigmoid(scores[worse] - scores[better]);
            dscores[better] -= gradient;
            dscores[worse] += gradient;
        }
        Ok(())
    }
}
