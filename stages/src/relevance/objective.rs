//! The relevance losses on the logits of one batch: targets and pairs built on the host, losses
//! and their gradients run with the kernels' loss ops.
//!
//! - [`Regression`]: MSE on the logit, or sigmoid cross-entropy against `label / max_label`.
//! - [`preference_pairs`]: same-query pairs with different labels, higher label first, for the
//!   kernels' pairwise logistic loss `ln(1 + exp(s_lower - s_higher))`.
//! - [`margin_triples`] and [`margin_mse`]: Margin-MSE of distillation on (query, positive,
//!   negative) triples, `((s_pos - s_neg) - (t_pos - t_neg))²`, computed on the host.
//! - [`RelevanceLoss`]: the weighted sum `w_reg·regression + w_pair·pairwise` and its gradient
//!   with respect to the logits `(B, 1)`, ready for `Bert::relevance_backward`.

use flywheel_kernels::prelude::{Backend, Tensor};
use flywheel_stage_api::StageError;

use crate::model::kernel_error;

/// The pointwise loss towards a label.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Regression {
    /// `mean((logit - label)²)`.
    Mse,
    /// `mean(BCE(sigmoid(logit), clamp(label / max_label, 0, 1)))`.
    SigmoidCrossEntropy { max_label: f32 },
}

impl Regression {
    /// Reads the `regression` param (`mse` or `sigmoid-ce`); `max_label` scales labels to [0, 1]
    /// for sigmoid cross-entropy.
    pub fn from_param(name: &str, max_label: f32) -> Result<Regression, StageError> {
        match name {
            "mse" => Ok(Regression::Mse),
            "sigmoid-ce" if max_label > 0.0 => Ok(Regression::SigmoidCrossEntropy { max_label }),
            "sigmoid-ce" => Err(StageError::failed(format!("sigmoid cross-entropy divides labels by the max label, which is {max_label}; set `max_label` to a positive value or use `regression: mse`"))),
            other => Err(StageError::InvalidParam { name: "regression".into(), message: format!("`{other}` is not a regression loss; use `mse` or `sigmoid-ce`") }),
        }
    }

    /// Returns the regression target of each label.
    pub fn targets(self, labels: &[f32]) -> Vec<f32> {
        match self {
            Regression::Mse => labels.to_vec(),
            Regression::SigmoidCrossEntropy { max_label } => labels.iter().map(|l| (l / max_label).clamp(0.0, 1.0)).collect(),
        }
    }
}

/// Returns `[i, j]` for every two batch rows of the same query with `labels[i] > labels[j]`, so
/// the pairwise loss raises row `i` above row `j`. Rows are compared in batch order, which keeps
/// the pair list, and so the summed gradient, deterministic.
pub fn preference_pairs(qids: &[&str], labels: &[f32]) -> Vec<[u32; 2]> {
    let mut pairs = Vec::new();
    for i in 0..qids.len() {
        for j in i + 1..qids.len() {
            if qids[i] != qids[j] || labels[i] == labels[j] {
                continue;
            }
            let (higher, lower) = if labels[i] > labels[j] { (i, j) } else { (j, i) };
            pairs.push([higher as u32, lower as u32]);
        }
    }
    pairs
}

/// One Margin-MSE triple: rows `positive` and `negative` of one query, and the teacher's margin
/// `t_pos - t_neg`, positive.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Triple {
    pub positive: usize,
    pub negative: usize,
    pub margin: f32,
}

/// Forms a triple from every two rows of the same query whose teacher scores differ, the higher
/// score as the positive.
pub fn margin_triples(qids: &[&str], teacher: &[f32]) -> Vec<Triple> {
    preference_pairs(qids, teacher)
        .into_iter()
        .map(|[i, j]| {
            let (positive, negative) = (i as usize, j as usize);
            Triple { positive, negative, margin: teacher[positive] - teacher[negative] }
        })
        .collect()
}

/// Returns the Margin-MSE loss `mean over triples of ((s_pos - s_neg) - margin)²` and its
/// gradient with respect to `scores` (B). Without triples the loss and gradient are 0.
pub fn margin_mse(scores: &[f32], triples: &[Triple]) -> (f64, Vec<f32>) {
    let mut dscores = vec![0.0f32; scores.len()];
    if triples.is_empty() {
        return (0.0, dscores);
    }
    let count = triples.len() as f64;
    let mut loss = 0.0f64;
    for triple in triples {
        let error = f64::from(scores[triple.positive] - scores[triple.negative] - triple.margin);
        loss += error * error;
        // d/ds_pos of error² / P is 2·error / P, and minus that for s_neg.
        let gradient = (2.0 * error / count) as f32;
        dscores[triple.positive] += gradient;
        dscores[triple.negative] -= gradient;
    }
    (loss / count, dscores)
}

/// Device buffers of the weighted relevance loss for batches of `B` rows.
pub struct RelevanceLoss {
    regression: Regression,
    /// Loss weights; a zero weight skips its term.
    regression_weight: f32,
    pairwise_weight: f32,
    targets: Tensor,          // (B, 1)
    dlogits: Tensor,          // (B, 1), the summed gradient
    dpairwise: Tensor,        // (B)
    regression_loss: Tensor,  // (1)
    pairwise_loss: Tensor,    // (1)
    regression_dloss: Tensor, // (1), contains regression_weight
    pairwise_dloss: Tensor,   // (1), contains pairwise_weight
}

/// The unweighted loss terms of one batch, read back to the host.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LossTerms {
    pub regression: f64,
    pub pairwise: f64,
    /// Preference pairs in the batch.
    pub pairs: usize,
}

impl RelevanceLoss {
    pub fn new(be: &dyn Backend, batch: usize, regression: Regression, regression_weight: f32, pairwise_weight: f32) -> Result<RelevanceLoss, StageError> {
        let run = || -> flywheel_kernels::Result<RelevanceLoss> {
            Ok(RelevanceLoss {
                regression,
                regression_weight,
                pairwise_weight,
                targets: be.zeros(&[batch, 1])?,
                dlogits: be.zeros(&[batch, 1])?,
                dpairwise: be.zeros(&[batch])?,
                regression_loss: be.zeros(&[1])?,
                pairwise_loss: be.zeros(&[1])?,
                regression_dloss: be.upload(&[regression_weight], &[1])?,
                pairwise_dloss: be.upload(&[pairwise_weight], &[1])?,
            })
        };
        run().map_err(kernel_error)
    }

    /// Computes both terms on `logits` (B, 1) and returns them with the weighted gradient
    /// `dlogits` (B, 1). `labels` are the rows' labels, `qids` their queries.
    pub fn forward_backward(&mut self, be: &dyn Backend, logits: &Tensor, qids: &[&str], labels: &[f32]) -> Result<(LossTerms, Tensor), StageError> {
        let mut terms = LossTerms::default();
        let batch = labels.len();
        let mut run = |terms: &mut LossTerms| -> flywheel_kernels::Result<()> {
            be.fill(&mut self.dlogits, 0.0)?;
            if self.regression_weight > 0.0 {
                be.write(&mut self.targets, &self.regression.targets(labels))?;
                match self.regression {
                    Regression::Mse => {
                        be.mse(logits, &self.targets, &mut self.regression_loss)?;
                        be.mse_backward(&self.regression_dloss, logits, &self.targets, &mut self.dlogits)?;
                    }
                    Regression::SigmoidCrossEntropy { .. } => {
                        be.bce_with_logits(logits, &self.targets, &mut self.regression_loss)?;
                        be.bce_with_logits_backward(&self.regression_dloss, logits, &self.targets, &mut self.dlogits)?;
                    }
                }
                terms.regression = f64::from(be.download(&self.regression_loss)?[0]);
            }
            let pairs = preference_pairs(qids, labels);
            terms.pairs = pairs.len();
            if self.pairwise_weight > 0.0 && !pairs.is_empty() {
                let flat: Vec<u32> = pairs.iter().flatten().copied().collect();
                let pair_tensor = be.upload_u32(&flat, &[pairs.len(), 2])?;
                let weights = be.upload(&vec![1.0; pairs.len()], &[pairs.len()])?;
                let scores = logits.reshape(&[batch])?;
                be.pairwise_logistic(&scores, &pair_tensor, &weights, &mut self.pairwise_loss)?;
                be.pairwise_logistic_backward(&self.pairwise_dloss, &scores, &pair_tensor, &weights, &mut self.dpairwise)?;
                be.accumulate(&self.dpairwise.reshape(&[batch, 1])?, &mut self.dlogits)?;
                terms.pairwise = f64::from(be.download(&self.pairwise_loss)?[0]);
            }
            Ok(())
        };
        run(&mut terms).map_err(kernel_error)?;
        Ok((terms, self.dlogits.clone()))
    }

    /// Returns `w_reg·regression + w_pair·pairwise`.
    pub fn weighted_total(&self, terms: &LossTerms) -> f64 {
        f64::from(self.regression_weight) * terms.regression + f64::from(self.pairwise_weight) * terms.pairwise
    }

    /// Writes a gradient computed on the host (Margin-MSE) as the batch's `dlogits` (B, 1).
    pub fn host_gradient(&mut self, be: &dyn Backend, dlogits: &[f32]) -> Result<Tensor, StageError> {
        be.write(&mut self.dlogits, dlogits).map_err(kernel_error)?;
        Ok(self.dlogits.clone())
    }
}

#[cfg(test)]
mod tests {
    use flywheel_kernels::CpuBackend;
    use flywheel_kernels::prelude::LossOps;

    use super::*;

    #[test]
    fn pairs_put_higher_label_first() {
        let pairs = preference_pairs(&["q1", "q1", "q2", "q1", "q2"], &[1.0, 3.0, 2.0, 1.0, 0.0]);
        assert_eq!(pairs, [[1, 0], [1, 3], [2, 4]], "equal labels and other queries make no pair");
    }

    #[test]
    fn pairwise_gradient_raises_higher_grade() {
        // The higher-graded document scores lower; gradient descent must push it up.
        let be = CpuBackend::new();
        let (qids, grades, scores) = (["q", "q", "q"], [0.0f32, 3.0, 1.0], [0.5f32, 0.2, 0.9]);
        let pairs = preference_pairs(&qids, &grades);
        let flat: Vec<u32> = pairs.iter().flatten().copied().collect();
        let pair_tensor = be.upload_u32(&flat, &[pairs.len(), 2]).unwrap();
        let weights = be.upload(&vec![1.0; pairs.len()], &[pairs.len()]).unwrap();
        let scores_tensor = be.upload(&scores, &[3]).unwrap();
        let dloss = be.upload(&[1.0], &[1]).unwrap();
        let mut dscores = be.zeros(&[3]).unwrap();
        be.pairwise_logistic_backward(&dloss, &scores_tensor, &pair_tensor, &weights, &mut dscores).unwrap();
        let dscores = be.download(&dscores).unwrap();
        assert!(dscores[1] < 0.0, "grade 3 must get a negative gradient (score goes up), got {dscores:?}");
        assert!(dscores[0] > 0.0, "grade 0 must get a positive gradient (score goes down), got {dscores:?}");
    }

    #[test]
    fn relevance_loss_sums_weighted_terms() {
        let be = CpuBackend::new();
        let logits = be.upload(&[0.0, 1.0], &[2, 1]).unwrap();
        let mut loss = RelevanceLoss::new(&be, 2, Regression::Mse, 2.0, 0.0).unwrap();
        let (terms, dlogits) = loss.forward_backward(&be, &logits, &["q", "q"], &[1.0, 1.0]).unwrap();
        assert!((terms.regression - 0.5).abs() < 1e-6, "{terms:?}");
        // 2·(logit - label)/N times the weight 2.
        assert_eq!(be.download(&dlogits).unwrap(), [-2.0, 0.0]);
    }

    #[test]
    fn sigmoid_targets_scale_by_max_label() {
        let regression = Regression::from_param("sigmoid-ce", 3.0).unwrap();
        assert_eq!(regression.targets(&[0.0, 1.5, 3.0, 4.0]), [0.0, 0.5, 1.0, 1.0]);
        assert!(Regression::from_param("sigmoid-ce", 0.0).is_err());
        assert!(Regression::from_param("softmax", 3.0).is_err());
    }

    #[test]
    fn margin_mse_gradient_matches_difference_quotient() {
        let triples = margin_triples(&["q", "q", "q"], &[2.0, 0.5, 1.0]);
        assert_eq!(triples.len(), 3);
        assert!(triples.iter().all(|t| t.margin > 0.0));
        let scores = [0.3f32, 0.1, -0.4];
        let (_, gradient) = margin_mse(&scores, &triples);
        let step = 1e-3f32;
        for row in 0..3 {
            let mut up = scores;
            up[row] += step;
            let mut down = scores;
            down[row] -= step;
            let numeric = (margin_mse(&up, &triples).0 - margin_mse(&down, &triples).0) / f64::from(2.0 * step);
            assert!((numeric - f64::from(gradient[row])).abs() < 1e-3, "row {row}: {numeric} vs {}", gradient[row]);
        }
    }
}
