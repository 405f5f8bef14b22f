//! The `distill` stage: a student model fits a teacher's scores on (usually unlabeled) pairs.
//!
//! The targets are the teacher's logits from the `teacher_scores` artifact, looked up by
//! (qid, docid) in [`teacher_label`]; grades and pseudo labels of the pairs are never read.
//! Losses: MSE between student and teacher logits, or Margin-MSE on every two same-query pairs
//! of a batch whose teacher scores differ (see `objective.rs`).

use std::collections::HashMap;

use flywheel_stage_api::*;
use serde_json::{Map, json};

use super::data::{BatchOrder, host_batch, load_examples, read_corpus, sequence_length};
use super::objective::{Regression, RelevanceLoss, margin_mse, margin_triples};
use super::session::{Session, open_backend, training_params};
use crate::artifact::{self, Line, Pair, Score};
use crate::model::kernel_error;

pub struct Distill;

impl Stage for Distill {
    fn descriptor(&self) -> StageDescriptor {
        let mut descriptor = StageDescriptor::new("distill", "1")
            .summary("train a student BERT to reproduce a teacher's relevance scores (MSE on logits or Margin-MSE)")
            .input(PortSpec::new("student", "model").doc("the student to start from, warmed through its own pretraining and fine-tuning"))
            .input(PortSpec::new("teacher_scores", "scores").doc("the teacher's logits for the pairs, from `score`"))
            .input(PortSpec::new("pairs", "pairs").doc("the distillation pairs; their labels are ignored"))
            .input(PortSpec::new("corpus", "corpus").doc("docs.jsonl with the text of every document the pairs name"))
            .output(PortSpec::new("model", "model"))
            .output(PortSpec::new("metrics", "metrics"));
        for param in training_params(500, 1e-4) {
            descriptor = descriptor.param(param);
        }
        descriptor
            .param(ParamSpec::new("loss", ParamType::String).default("mse").choices(&["mse", "margin-mse"]).doc("MSE on logits, or Margin-MSE on same-query score differences"))
            .param(ParamSpec::new("missing_scores", ParamType::String).default("error").choices(&["error", "skip"]).doc("what to do with a pair the teacher did not score: fail, or leave the pair out"))
    }

    fn run(&self, ctx: &StageContext<'_>) -> Result<StageOutcome, StageError> {
        let be = open_backend(ctx)?;
        let be = be.as_ref();
        let mut session = Session::start(ctx, be, "student", 1.0)?;
        let teacher = teacher_index(ctx.input("teacher_scores")?)?;
        let skip_missing = ctx.param_str("missing_scores")? == "skip";
        let corpus = read_corpus(ctx.input("corpus")?)?;
        let loaded = load_examples(ctx.input("pairs")?, &corpus, &session.encoder, |line| teacher_label(&teacher, line, skip_missing))?;
        if loaded.examples.is_empty() {
            return Err(StageError::failed("pairs: no pair has a teacher score; score the distillation pairs with the teacher model (`score`) and connect its `scores`"));
        }
        if loaded.skipped > 0 {
            ctx.log(LogLevel::Warn, &format!("left out {} pairs without a teacher score", loaded.skipped));
        }
        let examples = loaded.examples;
        ctx.info(&format!("distilling on {} teacher-scored pairs", examples.len()));

        let margin = ctx.param_str("loss")? == "margin-mse";
        let mut loss = RelevanceLoss::new(be, session.batch_size, Regression::Mse, 1.0, 0.0)?;
        let seq = sequence_length(&examples);
        session.resume(be)?;
        let mut order = BatchOrder::new(&examples, session.seed);
        let mut last = f64::NAN;
        while session.trainer.step < session.steps {
            ctx.check_cancelled()?;
            let rows = order.batch(session.trainer.step, session.batch_size);
            let qids: Vec<&str> = rows.iter().map(|&i| examples[i].qid.as_str()).collect();
            let targets: Vec<f32> = rows.iter().map(|&i| examples[i].label).collect();
            let dropout = session.dropout_for(0);
            session.trainer.zero_grads(be)?;
            let bert = &mut session.trainer.model;
            bert.encode(be, &host_batch(&examples, &rows, seq, session.encoder.pad), dropout)?;
            let logits = bert.relevance_forward(be)?;
            let (value, dlogits) = if margin {
                let scores = be.download(&logits).map_err(kernel_error)?;
                let (value, gradient) = margin_mse(&scores, &margin_triples(&qids, &targets));
                (value, loss.host_gradient(be, &gradient)?)
            } else {
                let (terms, dlogits) = loss.forward_backward(be, &logits, &qids, &targets)?;
                (terms.regression, dlogits)
            };
            bert.relevance_backward(be, &dlogits)?;
            bert.encode_backward(be)?;
            session.apply(be, &[("loss", value)])?;
            session.checkpoint_if_due(be, json!(null))?;
            last = value;
        }
        let mut metrics = Map::new();
        metrics.insert("loss".into(), json!(super::session::round(last)));
        metrics.insert("distill_loss".into(), json!(ctx.param_str("loss")?));
        metrics.insert("pairs".into(), json!(examples.len()));
        let weights = session.trainer.model.weights(be)?;
        session.save(&weights, metrics)?;
        Ok(StageOutcome::default().metric("loss", super::session::round(last)))
    }
}

/// Reads the teacher's scores by (qid, docid), rejecting a pair scored twice or a non-finite
/// score.
fn teacher_index(dir: &std::path::Path) -> Result<HashMap<(String, String), f32>, StageError> {
    let mut index = HashMap::new();
    for line in artifact::read::<Score>(dir)? {
        let Score { qid, docid, score } = line.record;
        if !score.is_finite() {
            return Err(StageError::failed(format!("scores.jsonl:{}: the teacher score of query `{qid}` and document `{docid}` is {score}; rescore with a working teacher", line.number)));
        }
        if index.insert((qid.clone(), docid.clone()), score as f32).is_some() {
            return Err(StageError::failed(format!("scores.jsonl:{}: query `{qid}` and document `{docid}` are scored twice; keep one teacher score per pair", line.number)));
        }
    }
    Ok(index)
}

/// Returns the distillation target of a pair: the teacher's score, whatever grade or pseudo
/// label the pair carries. A pair without a teacher score is left out with `skip_missing` and
/// is an error otherwise.
pub fn teacher_label(teacher: &HashMap<(String, String), f32>, line: &Line<Pair>, skip_missing: bool) -> Result<Option<f32>, StageError> {
    let key = (line.record.qid.clone(), line.record.docid.clone());
    match teacher.get(&key) {
        Some(&score) => Ok(Some(score)),
        None if skip_missing => Ok(None),
        None => Err(StageError::failed(format!(
            "pairs.jsonl:{}: query `{}` and document `{}` have no teacher score; score these pairs with the teacher, or set `missing_scores: skip`",
            line.number, line.record.qid, line.record.docid
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distillation_targets_are_teacher_scores() {
        // Grades and pseudo labels rank d1 above d2, and the teacher ranks d2 above d1.
        let teacher: HashMap<(String, String), f32> = [(("q".to_string(), "d1".to_string()), -1.5), (("q".to_string(), "d2".to_string()), 2.25)].into_iter().collect();
        let mut pairs = Vec::new();
        for (docid, grade) in [("d1", 3.0), ("d2", 0.0)] {
            let mut pair = Pair::new("q", "query", docid);
            pair.grade = Some(grade);
            pair.pseudo_label = Some(grade);
            pairs.push(Line { number: pairs.len() + 1, record: pair });
        }
        let targets: Vec<Option<f32>> = pairs.iter().map(|line| teacher_label(&teacher, line, false).unwrap()).collect();
        assert_eq!(targets, [Some(-1.5), Some(2.25)]);
        let triples = margin_triples(&["q", "q"], &[-1.5, 2.25]);
        assert_eq!((triples[0].positive, triples[0].negative), (1, 0), "the teacher's higher score is the positive");
        assert_eq!(triples[0].margin, 3.75);
    }

    #[test]
    fn missing_teacher_score_fails_or_skips() {
        let line = Line { number: 4, record: Pair::new("q", "query", "d9") };
        let error = teacher_label(&HashMap::new(), &line, false).unwrap_err().to_string();
        assert!(error.contains("pairs.jsonl:4"), "{error}");
        assert!(error.contains("d9"), "{error}");
        assert_eq!(teacher_label(&HashMap::new(), &line, true).unwrap(), None);
    }
}
