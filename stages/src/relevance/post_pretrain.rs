//! The `post-pretrain` stage: a BERT model trained on mined pairs with the teacher's pseudo
//! labels, with three losses together:
//!
//! ```text
//! loss = regression_weight·regression(logit, pseudo_label)
//!      + pairwise_weight·pairwise(same-query pairs ordered by pseudo_label)
//!      + mlm_weight·MLM(masked copy of the same pairs)
//! ```
//!
//! MLM stays in the mix so the model keeps its language knowledge while it learns relevance.
//! Each step runs two forward passes over the batch. The first reads the clean pairs for the
//! relevance head, and the second a masked copy (BERT's 15 % masking with the 80/10/10 split)
//! for the MLM head. The parameter gradients of both add up before the optimizer step.

use flywheel_stage_api::*;
use serde_json::{Map, json};

use super::data::{BatchOrder, Example, host_batch, load_examples, read_corpus, sequence_length};
use super::objective::{Regression, RelevanceLoss};
use super::session::{Session, open_backend, round, training_params, weight_param};
use crate::artifact::{Line, Pair};
use crate::mlm::masking::{MaskingConfig, mask_sequence};
use crate::model::{HostBatch, IGNORE_INDEX, kernel_error};
use crate::random::{Rng, mix};
use crate::tokenizer::SPECIAL_TOKENS;

pub struct PostPretrain;

impl Stage for PostPretrain {
    fn descriptor(&self) -> StageDescriptor {
        let mut descriptor = StageDescriptor::new("post-pretrain", "1")
            .summary("train BERT on mined pairs with pseudo labels: regression + pairwise ranking + MLM against forgetting")
            .input(PortSpec::new("model", "model").doc("the pretrained model to start from"))
            .input(PortSpec::new("pairs", "pairs").doc("mined pairs, every one with a `pseudo_label` (from `pseudo-label`)"))
            .input(PortSpec::new("corpus", "corpus").doc("docs.jsonl with the text of every document the pairs name"))
            .output(PortSpec::new("model", "model"))
            .output(PortSpec::new("metrics", "metrics"));
        for param in training_params(1000, 1e-4) {
            descriptor = descriptor.param(param);
        }
        descriptor
            .param(ParamSpec::new("regression", ParamType::String).default("mse").choices(&["mse", "sigmoid-ce"]).doc("pointwise loss: MSE on the logit, or sigmoid cross-entropy on pseudo_label / max_label"))
            .param(ParamSpec::new("regression_weight", ParamType::Float).default(1.0).doc("weight of the pointwise loss; 0 turns it off"))
            .param(ParamSpec::new("pairwise_weight", ParamType::Float).default(1.0).doc("weight of the pairwise logistic loss over same-query pairs ordered by pseudo label; 0 turns it off"))
            .param(ParamSpec::new("mlm_weight", ParamType::Float).default(0.5).doc("weight of the MLM loss on masked pairs; 0 turns it off"))
            .param(ParamSpec::new("max_label", ParamType::Float).default(0.0).doc("pseudo label that sigmoid cross-entropy maps to 1; 0 takes the highest pseudo label"))
            .param(ParamSpec::new("mask_probability", ParamType::Float).default(0.15).doc("share of non-special tokens chosen as MLM targets"))
    }

    fn run(&self, ctx: &StageContext<'_>) -> Result<StageOutcome, StageError> {
        let weights = [weight_param(ctx, "regression_weight")?, weight_param(ctx, "pairwise_weight")?, weight_param(ctx, "mlm_weight")?];
        let [regression_weight, pairwise_weight, mlm_weight] = weights;
        if regression_weight == 0.0 && pairwise_weight == 0.0 {
            return Err(StageError::InvalidParam { name: "regression_weight".into(), message: "and `pairwise_weight` are both 0, so no relevance loss is trained; set at least one above 0".into() });
        }
        let be = open_backend(ctx)?;
        let be = be.as_ref();
        // Training on loss / mlm_weight leaves MLM's gradient at weight 1, which is the only
        // weight `Bert::mlm_backward` applies; `Session::start` makes the updates equal.
        let loss_scale = if mlm_weight > 0.0 { mlm_weight } else { 1.0 };
        let mut session = Session::start(ctx, be, "model", loss_scale)?;

        let corpus = read_corpus(ctx.input("corpus")?)?;
        let examples = load_examples(ctx.input("pairs")?, &corpus, &session.encoder, pseudo_label)?.examples;
        if examples.is_empty() {
            return Err(StageError::failed("pairs: the artifact is empty; connect mined pairs labelled by `pseudo-label`"));
        }
        let max_label = match ctx.param_f64("max_label")? as f32 {
            0.0 => examples.iter().map(|e| e.label).fold(0.0, f32::max),
            given => given,
        };
        let regression = Regression::from_param(ctx.param_str("regression")?, max_label)?;
        let mut loss = RelevanceLoss::new(be, session.batch_size, regression, regression_weight / loss_scale, pairwise_weight / loss_scale)?;
        let seq = sequence_length(&examples);
        let masking = masking_config(ctx, &session, seq)?;
        ctx.info(&format!("post-pretraining on {} pairs of {} tokens at most", examples.len(), seq));

        session.resume(be)?;
        let mut order = BatchOrder::new(&examples, session.seed);
        let mut last = [f64::NAN; 4];
        while session.trainer.step < session.steps {
            ctx.check_cancelled()?;
            let step = session.trainer.step;
            let rows = order.batch(step, session.batch_size);
            let qids: Vec<&str> = rows.iter().map(|&i| examples[i].qid.as_str()).collect();
            let labels: Vec<f32> = rows.iter().map(|&i| examples[i].label).collect();
            let (relevance_dropout, mlm_dropout) = (session.dropout_for(0), session.dropout_for(1));
            session.trainer.zero_grads(be)?;
            let bert = &mut session.trainer.model;

            // 1. Relevance losses on the clean pairs.
            bert.encode(be, &host_batch(&examples, &rows, seq, session.encoder.pad), relevance_dropout)?;
            let logits = bert.relevance_forward(be)?;
            let (terms, dlogits) = loss.forward_backward(be, &logits, &qids, &labels)?;
            bert.relevance_backward(be, &dlogits)?;
            bert.encode_backward(be)?;

            // 2. MLM on a masked copy of the same pairs.
            let mut mlm = 0.0;
            if mlm_weight > 0.0 {
                let masked = masked_batch(&examples, &rows, seq, session.encoder.pad, session.seed, step, &masking);
                bert.encode(be, &masked.input, mlm_dropout)?;
                let value = bert.mlm_forward(be, &masked.positions, &masked.targets)?;
                mlm = f64::from(be.download(&value).map_err(kernel_error)?[0]);
                bert.mlm_backward(be)?;
                bert.encode_backward(be)?;
            }

            let total = f64::from(regression_weight) * terms.regression + f64::from(pairwise_weight) * terms.pairwise + f64::from(mlm_weight) * mlm;
            last = [total, terms.regression, terms.pairwise, mlm];
            session.apply(be, &[("loss", total), ("regression", terms.regression), ("pairwise", terms.pairwise), ("mlm", mlm)])?;
            session.checkpoint_if_due(be, json!(null))?;
        }

        let mut metrics = Map::new();
        for (name, value) in ["loss", "regression", "pairwise", "mlm"].into_iter().zip(last) {
            metrics.insert(name.into(), json!(round(value)));
        }
        metrics.insert("pairs".into(), json!(examples.len()));
        let trained = session.trainer.model.weights(be)?;
        session.save(&trained, metrics)?;
        Ok(StageOutcome::default().metric("loss", round(last[0])).metric("mlm", round(last[3])))
    }
}

/// Returns a pair's pseudo label; a pair without one makes the input invalid.
fn pseudo_label(line: &Line<Pair>) -> Result<Option<f32>, StageError> {
    match line.record.pseudo_label {
        Some(label) if label.is_finite() => Ok(Some(label as f32)),
        Some(label) => Err(StageError::failed(format!("pairs.jsonl:{}: the pseudo label of query `{}` and document `{}` is {label}; rerun `pseudo-label`", line.number, line.record.qid, line.record.docid))),
        None => Err(StageError::failed(format!(
            "pairs.jsonl:{}: query `{}` and document `{}` have no `pseudo_label`; label the mined pairs with the `pseudo-label` stage first",
            line.number, line.record.qid, line.record.docid
        ))),
    }
}

fn masking_config(ctx: &StageContext<'_>, session: &Session<'_>, seq: usize) -> Result<MaskingConfig, StageError> {
    let probability = ctx.param_f64("mask_probability")?;
    if !(probability > 0.0 && probability < 1.0) {
        return Err(StageError::InvalidParam { name: "mask_probability".into(), message: format!("{probability} is not a share between 0 and 1") });
    }
    let tokenizer = session.encoder.tokenizer();
    Ok(MaskingConfig {
        probability,
        whole_word: false,
        mask_id: session.encoder.mask,
        vocab_size: session.trainer.model.config.vocab_size as u32,
        special_ids: SPECIAL_TOKENS.iter().filter_map(|t| tokenizer.token_to_id(t)).collect(),
        max_predictions: ((seq as f64 * probability).ceil() as usize).max(1),
    })
}

/// A masked copy of a batch with its MLM targets, `max_predictions` rows per sequence.
struct Masked {
    input: HostBatch,
    /// Row indices `b·T + t` into the encoder output.
    positions: Vec<u32>,
    /// Original tokens, or `IGNORE_INDEX` on unused rows.
    targets: Vec<u32>,
}

/// Masks `examples[rows]`. Each sequence draws from its own stream seeded by (seed, step, row),
/// so the masks of a step do not depend on earlier steps.
fn masked_batch(examples: &[Example], rows: &[usize], seq: usize, pad: u32, seed: u64, step: u64, masking: &MaskingConfig) -> Masked {
    let mut input = host_batch(examples, rows, seq, pad);
    let mut positions = Vec::with_capacity(rows.len() * masking.max_predictions);
    let mut targets = Vec::with_capacity(rows.len() * masking.max_predictions);
    for (b, &index) in rows.iter().enumerate() {
        let length = examples[index].tokens.ids.len();
        let ids = &mut input.ids[b * seq..b * seq + length];
        let mut rng = Rng::new(mix(seed ^ mix(0x3A5C ^ mix(step.wrapping_mul(rows.len() as u64).wrapping_add(b as u64)))));
        let chosen = mask_sequence(ids, &vec![true; length], &mut rng, masking);
        for slot in 0..masking.max_predictions {
            let (position, target) = chosen.get(slot).map_or((0, IGNORE_INDEX), |&(p, t)| (p, t));
            positions.push((b * seq + position) as u32);
            targets.push(target);
        }
    }
    Masked { input, positions, targets }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenizer::PairEncoding;

    #[test]
    fn masked_batch_targets_original_tokens() {
        let ids: Vec<u32> = vec![2, 10, 11, 12, 3, 13, 14, 15, 16, 3];
        let example = Example { qid: "q".into(), docid: "d".into(), line: 1, label: 1.0, tokens: PairEncoding { type_ids: vec![0; ids.len()], ids: ids.clone() } };
        let masking = MaskingConfig { probability: 0.3, whole_word: false, mask_id: 4, vocab_size: 20, special_ids: vec![0, 1, 2, 3, 4], max_predictions: 4 };
        let masked = masked_batch(&[example], &[0], 12, 0, 9, 3, &masking);
        assert_eq!(masked.positions.len(), 4);
        let used: Vec<(u32, u32)> = masked.positions.iter().zip(&masked.targets).filter(|(_, t)| **t != IGNORE_INDEX).map(|(p, t)| (*p, *t)).collect();
        assert_eq!(used.len(), 2, "30 % of 7 maskable tokens");
        for (position, target) in used {
            assert_eq!(ids[position as usize], target, "target is the original token");
            assert!(target > 4, "special tokens are never targets");
        }
        assert_eq!(&masked.input.ids[10..], [0, 0], "padding stays");
    }

    #[test]
    fn missing_pseudo_label_is_an_error() {
        let line = Line { number: 3, record: Pair::new("q7", "query", "d1") };
        let error = pseudo_label(&line).unwrap_err().to_string();
        assert!(error.contains("pairs.jsonl:3"), "{error}");
        assert!(error.contains("pseudo_label"), "{error}");
    }
}
