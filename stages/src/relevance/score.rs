//! The `score` stage: a relevance model's logit for every pair of a `pairs` artifact.

use std::time::Instant;

use flywheel_stage_api::*;
use serde_json::json;

use super::data::{load_examples, read_corpus, sequence_length};
use super::inference::{BatchShape, score_examples};
use super::session::{load_model, open_backend, round};
use crate::artifact::{self, Score};

pub struct ScorePairs;

impl Stage for ScorePairs {
    fn descriptor(&self) -> StageDescriptor {
        StageDescriptor::new("score", "1")
            .summary("score every query-document pair with a BERT relevance model (the pooled [CLS] logit)")
            .input(PortSpec::new("model", "model"))
            .input(PortSpec::new("pairs", "pairs").doc("pairs.jsonl; labels are ignored"))
            .input(PortSpec::new("corpus", "corpus").doc("docs.jsonl with the text of every document the pairs name"))
            .output(PortSpec::new("scores", "scores").doc("scores.jsonl: {\"qid\", \"docid\", \"score\"} in the order of the pairs"))
            .output(PortSpec::new("metrics", "metrics").doc("metrics.json: pairs, pairs_per_second, parameters, model_bytes"))
            .param(ParamSpec::new("max_len", ParamType::Int).default(128).doc("tokens per pair, [CLS] and both [SEP] included; the document is cut first"))
            .param(ParamSpec::new("batch_size", ParamType::Int).default(64).doc("pairs per forward pass"))
    }

    fn run(&self, ctx: &StageContext<'_>) -> Result<StageOutcome, StageError> {
        let be = open_backend(ctx)?;
        let be = be.as_ref();
        let model_dir = ctx.input("model")?;
        let mut model = load_model(ctx, be, model_dir, 0)?;
        let batch_size = ctx.param_usize("batch_size")?;
        if batch_size == 0 {
            return Err(StageError::InvalidParam { name: "batch_size".into(), message: "must be at least 1".into() });
        }
        let corpus = read_corpus(ctx.input("corpus")?)?;
        let examples = load_examples(ctx.input("pairs")?, &corpus, &model.encoder, |_| Ok(Some(0.0)))?.examples;
        if examples.is_empty() {
            return Err(StageError::failed("pairs.jsonl: the artifact is empty; connect a pairs artifact with at least one pair"));
        }
        let seq = sequence_length(&examples);
        let total = examples.len() as u64;
        ctx.info(&format!("scoring {total} pairs in batches of {batch_size}, {seq} tokens each, on {}", be.name()));

        let started = Instant::now();
        let shape = BatchShape { size: batch_size, seq, pad: model.encoder.pad };
        let scores = score_examples(ctx, be, &mut model.bert, &examples, shape, |done| {
            let rate = done as f64 / started.elapsed().as_secs_f64().max(1e-9);
            ctx.progress(done as u64, total, &format!("scored {done}/{total} pairs, {rate:.0} pairs/s"));
        })?;
        let pairs_per_second = (total as f64 / started.elapsed().as_secs_f64().max(1e-9)).round();
        if let Some((example, score)) = examples.iter().zip(&scores).find(|(_, s)| !s.is_finite()) {
            return Err(StageError::failed(format!("pairs.jsonl:{}: the model scored query `{}` and document `{}` as {score}; the model weights are broken, retrain or re-import them", example.line, example.qid, example.docid)));
        }

        let records: Vec<Score> = examples.iter().zip(&scores).map(|(e, &s)| Score { qid: e.qid.clone(), docid: e.docid.clone(), score: f64::from(s) }).collect();
        artifact::write(ctx.output("scores")?, &records)?;
        let parameters: usize = model.bert.weights(be)?.0.values().map(|t| t.data.len()).sum();
        let model_bytes = std::fs::metadata(model_dir.join("model.safetensors")).map(|m| m.len()).unwrap_or(0);
        let config = &model.bert.config;
        let metrics = json!({
            "pairs": total,
            "pairs_per_second": pairs_per_second,
            "parameters": parameters,
            "model_bytes": model_bytes,
            "layers": config.num_hidden_layers,
            "hidden": config.hidden_size,
            "sequence_length": seq,
            "batch_size": batch_size,
            "backend": be.name(),
        });
        artifact::write_json(ctx.output("metrics")?, "metrics.json", &metrics)?;
        ctx.info(&format!("scored {total} pairs at {pairs_per_second} pairs/s with a model of {parameters} parameters"));
        Ok(StageOutcome::default().metric("pairs", total).metric("pairs_per_second", round(pairs_per_second)).metric("parameters", parameters))
    }
}
