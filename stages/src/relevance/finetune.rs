//! The `finetune` stage: a relevance model trained on human grades with
//! `regression_weight·regression + pairwise_weight·pairwise`, where the checkpoint with the best
//! validation NDCG@10 or PNR becomes the output.
//!
//! Relevance is never treated as multi-class classification: softmax cross-entropy over grades
//! would ignore their order, which both losses here keep.
//!
//! The best weights so far stay in memory. At each resume checkpoint they are also written to
//! `best-step-NNNNNNNNN.safetensors` in the node's checkpoint directory, and the checkpoint's
//! stage state names that file, so a resumed run continues the selection where it stopped.

use std::fs;
use std::path::Path;

use flywheel_kernels::prelude::Backend;
use flywheel_stage_api::*;
use serde_json::{Map, Value, json};

use super::data::{BatchOrder, Example, host_batch, load_examples, read_corpus, sequence_length};
use super::inference::{BatchShape, score_examples, validation_measures};
use super::objective::{Regression, RelevanceLoss};
use super::session::{Session, open_backend, round, training_params, weight_param};
use crate::model::Weights;

pub struct Finetune;

impl Stage for Finetune {
    fn descriptor(&self) -> StageDescriptor {
        let mut descriptor = StageDescriptor::new("finetune", "1")
            .summary("fine-tune a BERT relevance model on graded pairs (regression + pairwise loss), keeping the best validation checkpoint")
            .input(PortSpec::new("model", "model").doc("the model to start from, usually post-pretrained"))
            .input(PortSpec::new("pairs", "pairs").doc("training pairs; pairs without `grade` are left out"))
            .input(PortSpec::new("validation", "pairs").doc("graded pairs of other queries; they pick the best checkpoint"))
            .input(PortSpec::new("corpus", "corpus").doc("docs.jsonl with the text of every document the pairs name"))
            .output(PortSpec::new("model", "model"))
            .output(PortSpec::new("metrics", "metrics"));
        for param in training_params(200, 5e-5) {
            descriptor = descriptor.param(param);
        }
        descriptor
            .param(ParamSpec::new("regression", ParamType::String).default("mse").choices(&["mse", "sigmoid-ce"]).doc("pointwise loss: MSE on the logit, or sigmoid cross-entropy on grade / max_label"))
            .param(ParamSpec::new("regression_weight", ParamType::Float).default(1.0).doc("weight of the pointwise loss; 0 turns it off"))
            .param(ParamSpec::new("pairwise_weight", ParamType::Float).default(1.0).doc("weight of the pairwise logistic loss over same-query pairs with different grades; 0 turns it off"))
            .param(ParamSpec::new("max_label", ParamType::Float).default(0.0).doc("grade that sigmoid cross-entropy maps to 1; 0 takes the highest training grade"))
            .param(ParamSpec::new("eval_every", ParamType::Int).default(50).doc("validate every N steps as well as at the end; 0 validates at the end only"))
            .param(ParamSpec::new("select_metric", ParamType::String).default("ndcg@10").choices(&["ndcg@10", "pnr"]).doc("validation measure that picks the best checkpoint"))
    }

    fn run(&self, ctx: &StageContext<'_>) -> Result<StageOutcome, StageError> {
        let be = open_backend(ctx)?;
        let be = be.as_ref();
        let mut session = Session::start(ctx, be, "model", 1.0)?;
        let (regression_weight, pairwise_weight) = (weight_param(ctx, "regression_weight")?, weight_param(ctx, "pairwise_weight")?);
        if regression_weight == 0.0 && pairwise_weight == 0.0 {
            return Err(StageError::InvalidParam { name: "regression_weight".into(), message: "and `pairwise_weight` are both 0, so nothing would be trained; set at least one above 0".into() });
        }

        let corpus = read_corpus(ctx.input("corpus")?)?;
        let graded = |line: &crate::artifact::Line<crate::artifact::Pair>| Ok(line.record.grade.map(|g| g as f32));
        let train = load_examples(ctx.input("pairs")?, &corpus, &session.encoder, graded)?;
        if train.examples.is_empty() {
            return Err(StageError::failed("pairs: no training pair has a `grade`; connect human-graded pairs, such as the train split of `split-queries`"));
        }
        let validation = load_examples(ctx.input("validation")?, &corpus, &session.encoder, graded)?;
        if validation.examples.is_empty() {
            return Err(StageError::failed("validation: no pair has a `grade`, so no checkpoint can be selected; connect graded pairs, such as the validation split of `split-queries`"));
        }
        ctx.info(&format!(
            "fine-tuning on {} graded pairs ({} ungraded left out), validating on {}",
            train.examples.len(),
            train.skipped,
            validation.examples.len()
        ));
        let max_label = match ctx.param_f64("max_label")? as f32 {
            0.0 => train.examples.iter().map(|e| e.label).fold(0.0, f32::max),
            given => given,
        };
        let regression = Regression::from_param(ctx.param_str("regression")?, max_label)?;
        let loss = RelevanceLoss::new(be, session.batch_size, regression, regression_weight, pairwise_weight)?;
        let seq = sequence_length(&train.examples).max(sequence_length(&validation.examples));
        let mut run = Run { session: &mut session, loss, train: train.examples, validation: validation.examples, seq, best: None, persisted: None, metric: ctx.param_str("select_metric")?.to_string() };
        run.train(ctx, be)
    }
}

/// The best validation result so far.
struct Best {
    step: u64,
    value: f64,
    weights: Weights,
}

struct Run<'s, 'a> {
    session: &'s mut Session<'a>,
    loss: RelevanceLoss,
    train: Vec<Example>,
    validation: Vec<Example>,
    seq: usize,
    best: Option<Best>,
    /// Step of the best weights last written to the checkpoint directory.
    persisted: Option<u64>,
    metric: String,
}

impl Run<'_, '_> {
    fn train(&mut self, ctx: &StageContext<'_>, be: &dyn Backend) -> Result<StageOutcome, StageError> {
        if let Some(state) = self.session.resume(be)? {
            self.restore_best(ctx.checkpoint_dir(), &state)?;
        }
        let eval_every = ctx.param_usize("eval_every")? as u64;
        let mut order = BatchOrder::new(&self.train, self.session.seed);
        let (pad, batch_size) = (self.session.encoder.pad, self.session.batch_size);
        while self.session.trainer.step < self.session.steps {
            ctx.check_cancelled()?;
            let rows = order.batch(self.session.trainer.step, batch_size);
            let qids: Vec<&str> = rows.iter().map(|&i| self.train[i].qid.as_str()).collect();
            let labels: Vec<f32> = rows.iter().map(|&i| self.train[i].label).collect();
            let dropout = self.session.dropout_for(0);
            self.session.trainer.zero_grads(be)?;
            let bert = &mut self.session.trainer.model;
            bert.encode(be, &host_batch(&self.train, &rows, self.seq, pad), dropout)?;
            let logits = bert.relevance_forward(be)?;
            let (terms, dlogits) = self.loss.forward_backward(be, &logits, &qids, &labels)?;
            bert.relevance_backward(be, &dlogits)?;
            bert.encode_backward(be)?;
            let total = self.loss.weighted_total(&terms);
            self.session.apply(be, &[("loss", total), ("regression", terms.regression), ("pairwise", terms.pairwise)])?;

            let done = self.session.trainer.step;
            if eval_every > 0 && done.is_multiple_of(eval_every) && done < self.session.steps {
                self.validate(ctx, be, done)?;
            }
            if self.session.checkpoint_due() {
                self.persist_best(ctx.checkpoint_dir())?;
                // JSON has no infinity, so an infinite PNR is stored as null.
                let state = json!({"best_step": self.best.as_ref().map(|b| b.step), "best_value": self.best.as_ref().map(|b| b.value)});
                self.session.checkpoint_if_due(be, state)?;
                remove_best_files(ctx.checkpoint_dir(), self.persisted)?;
            }
        }
        let last_step = self.session.trainer.step;
        self.validate(ctx, be, last_step)?;
        self.finish(ctx, be)
    }

    /// Scores the validation pairs, records the measures, and keeps the weights when the
    /// selection measure improved.
    fn validate(&mut self, ctx: &StageContext<'_>, be: &dyn Backend, step: u64) -> Result<(), StageError> {
        let (batch_size, pad) = (self.session.batch_size, self.session.encoder.pad);
        let shape = BatchShape { size: batch_size, seq: self.seq, pad };
        let scores = score_examples(ctx, be, &mut self.session.trainer.model, &self.validation, shape, |_| {})?;
        let measures = validation_measures(&self.validation, &scores);
        if let Some(value) = measures.ndcg10 {
            self.session.record("validation_ndcg@10", step, value);
        }
        if let Some(value) = measures.pnr {
            self.session.record("validation_pnr", step, value);
        }
        let value = measures.selection_value(&self.metric);
        let show = |value: Option<f64>| value.map_or_else(|| "undefined".to_string(), |v| format!("{v:.4}"));
        ctx.info(&format!(
            "validation at step {step}: NDCG@10 {}, PNR {} ({} concordant, {} discordant)",
            show(measures.ndcg10),
            show(measures.pnr),
            measures.concordant,
            measures.discordant
        ));
        let Some(value) = value else {
            ctx.log(LogLevel::Warn, &format!("validation {} is undefined at step {step} (no query has both higher and lower grades); this step cannot be selected", self.metric));
            return Ok(());
        };
        if self.best.as_ref().is_none_or(|best| value > best.value) {
            let weights = self.session.trainer.model.weights(be)?;
            self.best = Some(Best { step, value, weights });
        }
        Ok(())
    }

    fn finish(&mut self, ctx: &StageContext<'_>, be: &dyn Backend) -> Result<StageOutcome, StageError> {
        let mut metrics = Map::new();
        let weights = match self.best.take() {
            Some(best) => {
                ctx.info(&format!("keeping the weights of step {} (validation {} {})", best.step, self.metric, best.value));
                metrics.insert("best_step".into(), json!(best.step));
                metrics.insert(format!("best_{}", self.metric), json!(finite_or_null(best.value)));
                best.weights
            }
            None => {
                ctx.log(LogLevel::Warn, "no validation step had a defined measure; keeping the final weights");
                self.session.trainer.model.weights(be)?
            }
        };
        metrics.insert("select_metric".into(), json!(self.metric));
        metrics.insert("train_pairs".into(), json!(self.train.len()));
        metrics.insert("validation_pairs".into(), json!(self.validation.len()));
        let best_step = metrics.get("best_step").cloned().unwrap_or(Value::Null);
        self.session.save(&weights, metrics)?;
        Ok(StageOutcome::default().metric("best_step", best_step))
    }

    /// Writes the best weights into the checkpoint directory when they are newer than the last
    /// written ones. The file is renamed into place, so it is either whole or absent.
    fn persist_best(&mut self, dir: &Path) -> Result<(), StageError> {
        let Some(best) = &self.best else { return Ok(()) };
        if self.persisted == Some(best.step) {
            return Ok(());
        }
        fs::create_dir_all(dir).map_err(|e| StageError::file(dir, e))?;
        let path = best_path(dir, best.step);
        let tmp = dir.join(".best.tmp");
        best.weights.save(&tmp)?;
        fs::rename(&tmp, &path).map_err(|e| StageError::file(&path, e))?;
        self.persisted = Some(best.step);
        Ok(())
    }

    fn restore_best(&mut self, dir: &Path, state: &Value) -> Result<(), StageError> {
        let Some(step) = state["best_step"].as_u64() else { return Ok(()) };
        let value = state["best_value"].as_f64().unwrap_or(f64::INFINITY);
        let weights = Weights::load(&best_path(dir, step))?;
        self.best = Some(Best { step, value, weights });
        self.persisted = Some(step);
        Ok(())
    }
}

fn best_path(dir: &Path, step: u64) -> std::path::PathBuf {
    dir.join(format!("best-step-{step:09}.safetensors"))
}

/// Removes best-weight files other than the one of step `keep`.
fn remove_best_files(dir: &Path, keep: Option<u64>) -> Result<(), StageError> {
    let Ok(entries) = fs::read_dir(dir) else { return Ok(()) };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let step = name.strip_prefix("best-step-").and_then(|rest| rest.strip_suffix(".safetensors")).and_then(|s| s.parse::<u64>().ok());
        if step.is_some() && step != keep {
            fs::remove_file(entry.path()).map_err(|e| StageError::file(entry.path(), e))?;
        }
    }
    Ok(())
}

/// JSON has no infinity: an infinite PNR (no discordant pair) is written as `null`.
fn finite_or_null(value: f64) -> Value {
    if value.is_finite() { json!(round(value)) } else { Value::Null }
}
