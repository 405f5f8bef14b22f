//! The `pretrain-mlm` stage.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use flywheel_kernels::prelude::*;
use std::result::Result;
use flywheel_stage_api::*;
use serde_json::{Value, json};

use super::data::{Packed, draw_sequence, masked_batch, pack};
use super::masking::MaskingConfig;
use super::schedule::learning_rate;
use crate::model::init::{complete_weights, init_weights};
use crate::model::{Bert, BertConfig, Dropout, ModelDir, Trainer, TrainerConfig, kernel_error};
use crate::random::{mix, seed_param};
use crate::tokenizer::{self, PairEncoder};

pub struct PretrainMlm;

impl Stage for PretrainMlm {
    fn descriptor(&self) -> StageDescriptor {
        let int = |name: &str, default: i64, doc: &str| ParamSpec::new(name, ParamType::Int).default(default).doc(doc);
        let float = |name: &str, default: f64, doc: &str| ParamSpec::new(name, ParamType::Float).default(default).doc(doc);
        StageDescriptor::new("pretrain-mlm", "1")
            .summary("pretrain BERT with masked language modelling, from scratch or from an init model")
            .input(PortSpec::new("corpus", "corpus"))
            .input(PortSpec::new("tokenizer", "tokenizer").optional().doc("required without `init`; ignored with it, which brings its own"))
            .input(PortSpec::new("init", "model").optional().doc("a model to continue from; without it the model starts from random weights"))
            .output(PortSpec::new("model", "model"))
            .output(PortSpec::new("metrics", "metrics"))
            .param(int("layers", 4, "encoder layers of a new model"))
            .param(int("hidden", 256, "hidden size of a new model"))
            .param(int("heads", 4, "attention heads of a new model"))
            .param(int("intermediate", 0, "feed-forward size of a new model; 0 means 4 x hidden"))
            .param(float("dropout", 0.1, "hidden dropout probability of a new model"))
            .param(int("max_len", 128, "tokens per packed sequence, [CLS] and [SEP] included"))
            .param(int("batch_size", 32, "sequences per optimizer step"))
            .param(int("steps", 1000, "optimizer steps"))
            .param(float("lr", 5e-4, "peak learning rate"))
            .param(int("warmup_steps", 100, "steps of linear warm-up, then linear decay to 0"))
            .param(float("weight_decay", 0.01, "AdamW weight decay (not on biases and layer norms)"))
            .param(float("max_grad_norm", 1.0, "clip the global gradient norm to this; 0 turns clipping off"))
            .param(float("mask_probability", 0.15, "share of non-special tokens chosen as targets"))
            .param(ParamSpec::new("whole_word_masking", ParamType::Bool).default(false).doc("choose whole words (a token and its ## pieces) together"))
            .param(float("eval_fraction", 0.05, "share of packed sequences held out for evaluation"))
            .param(int("eval_every", 0, "evaluate every N steps as well as at the end; 0 evaluates at the end only"))
            .param(int("checkpoint_every", 200, "write a resume checkpoint every N steps; 0 turns them off"))
            .param(int("log_every", 10, "steps between log lines"))
            .param(int("seed", 0, "seed of initialisation, data order, masking and dropout"))
    }

    fn run(&self, ctx: &StageContext<'_>) -> Result<StageOutcome, StageError> {
        Run::start(ctx)?.train()
    }
}

/// Reads the `text` of every document of a corpus.
fn read_texts(dir: &Path) -> Result<Vec<String>, StageError> {
    let path = dir.join("docs.jsonl");
    let reader = BufReader::new(fs::File::open(&path).map_err(|e| StageError::file(&path, e))?);
    let mut texts = Vec::new();
    for (number, line) in reader.lines().enumerate() {
        let line = line.map_err(|e| StageError::file(&path, e))?;
        if line.trim().is_empty() {
            continue;
        }
        let doc: Value = serde_json::from_str(&line).map_err(|e| StageError::failed(format!("docs.jsonl:{}: {e}", number + 1)))?;
        texts.push(doc["text"].as_str().unwrap_or_default().to_string());
    }
    Ok(texts)
}

/// Picks the backend named by the request's device.
pub fn backend_for(ctx: &StageContext<'_>) -> Result<Arc<dyn Backend>, StageError> {
    crate::relevance::session::open_backend(ctx).map(Arc::from)
}

struct Run<'a> {
    ctx: &'a StageContext<'a>,
    be: Arc<dyn Backend>,
    trainer: Trainer,
    packed: Packed,
    train: Vec<usize>,
    eval: Vec<usize>,
    masking: MaskingConfig,
    tokenizer_dir: std::path::PathBuf,
    seed: u64,
    curves: Value,
}

impl<'a> Run<'a> {
    fn start(ctx: &'a StageContext<'a>) -> Result<Run<'a>, StageError> {
        let seed = seed_param(ctx)?;
        let be = backend_for(ctx)?;
        // 1. The model and its tokenizer.
        let (config, weights, tokenizer_dir) = match ctx.optional_input("init") {
            Some(dir) => {
                let (config, mut weights) = ModelDir::load(dir)?;
                let added = complete_weights(&config, &mut weights, seed);
                if !added.is_empty() {
                    ctx.info(&format!("init model lacks {} tensors (such as `{}`); they start from random values", added.len(), added[0]));
                }
                (config, weights, dir.to_path_buf())
            }
            None => {
                let dir = ctx.optional_input("tokenizer").ok_or_else(|| StageError::failed("pretrain-mlm needs a `tokenizer` input when it has no `init` model; connect one"))?;
                let vocab = tokenizer::load(dir)?.get_vocab_size(true);
                let hidden = ctx.param_usize("hidden")?;
                let intermediate = match ctx.param_usize("intermediate")? { 0 => 4 * hidden, n => n };
                let mut config = BertConfig::new(vocab, hidden, ctx.param_usize("layers")?, ctx.param_usize("heads")?, intermediate);
                let dropout = ctx.param_f64("dropout")? as f32;
                config.hidden_dropout_prob = dropout;
                config.attention_probs_dropout_prob = dropout;
                config.validate()?;
                let weights = init_weights(&config, seed);
                (config, weights, dir.to_path_buf())
            }
        };
        let encoder = PairEncoder::new(tokenizer::load(&tokenizer_dir)?, ctx.param_usize("max_len")?, true)?;
        let max_len = encoder.max_len;
        if max_len > config.max_position_embeddings {
            return Err(StageError::InvalidParam { name: "max_len".into(), message: format!("{max_len} exceeds the model's max_position_embeddings {}", config.max_position_embeddings) });
        }

        // 2. Data.
        let texts = read_texts(ctx.input("corpus")?)?;
        let packed = pack(texts.into_iter(), &encoder, max_len)?;
        let count = packed.ids.len();
        let eval_count = if count >= 2 { ((count as f64 * ctx.param_f64("eval_fraction")?).round() as usize).min(count - 1) } else { 0 };
        let train: Vec<usize> = (0..count - eval_count).collect();
        let eval: Vec<usize> = (count - eval_count..count).collect();
        ctx.info(&format!("packed the corpus into {count} sequences of {max_len} tokens: {} for training, {eval_count} held out", train.len()));
        let probability = ctx.param_f64("mask_probability")?;
        let special_ids = tokenizer::SPECIAL_TOKENS.iter().filter_map(|t| encoder.tokenizer().token_to_id(t)).collect();
        let masking = MaskingConfig {
            probability,
            whole_word: ctx.param_bool("whole_word_masking")?,
            mask_id: encoder.mask,
            vocab_size: config.vocab_size as u32,
            special_ids,
            max_predictions: ((max_len as f64 * probability).ceil() as usize).max(1),
        };

        // 3. Optimizer, and the newest resume checkpoint if one exists.
        let adamw = AdamWConfig { weight_decay: ctx.param_f64("weight_decay")? as f32, ..AdamWConfig::default() };
        let bert = Bert::new(be.as_ref(), config, &weights)?;
        let mut trainer = Trainer::new(be.as_ref(), bert, TrainerConfig { adamw, max_grad_norm: ctx.param_f64("max_grad_norm")? as f32 })?;
        let mut curves = json!({"loss": [], "eval_loss": [], "eval_accuracy": []});
        if let Some(extra) = trainer.load_resume(be.as_ref(), ctx.checkpoint_dir())? {
            ctx.info(&format!("resuming at step {} from {}", trainer.step, ctx.checkpoint_dir().display()));
            curves = extra["curves"].clone();
        }
        Ok(Run { ctx, be, trainer, packed, train, eval, masking, tokenizer_dir, seed, curves })
    }

    fn train(mut self) -> Result<StageOutcome, StageError> {
        let ctx = self.ctx;
        let backend = Arc::clone(&self.be);
        let be = backend.as_ref();
        let steps = ctx.param_usize("steps")? as u64;
        let batch_size = ctx.param_usize("batch_size")?.max(1);
        let warmup = ctx.param_usize("warmup_steps")? as u64;
        let peak = ctx.param_f64("lr")? as f32;
        let (eval_every, checkpoint_every, log_every) = (ctx.param_usize("eval_every")? as u64, ctx.param_usize("checkpoint_every")? as u64, ctx.param_usize("log_every")?.max(1) as u64);
        let dropout_p = self.trainer.model.config.hidden_dropout_prob;
        let mut order_cache = None;
        let (started, first_step) = (Instant::now(), self.trainer.step);
        let mut tokens = 0u64;
        let mut last_loss = f64::NAN;
        while self.trainer.step < steps {
            ctx.check_cancelled()?;
            let step = self.trainer.step;
            let draws: Vec<u64> = (0..batch_size as u64).map(|i| step * batch_size as u64 + i).collect();
            let indices: Vec<usize> = draws.iter().map(|&d| draw_sequence(&self.train, self.seed, d, &mut order_cache)).collect();
            let batch = masked_batch(&self.packed, &indices, &draws, self.seed, &self.masking);
            tokens += batch.input.mask.iter().map(|&m| u64::from(m)).sum::<u64>();

            self.trainer.zero_grads(be)?;
            let bert = &mut self.trainer.model;
            bert.encode(be, &batch.input, Some(Dropout { p: dropout_p, seed: mix(self.seed ^ mix(step)) }))?;
            let loss = bert.mlm_forward(be, &batch.positions, &batch.targets)?;
            let loss = f64::from(be.download(&loss).map_err(kernel_error)?[0]);
            if !loss.is_finite() {
                let kept = super::super::model::trainer::list_checkpoints(ctx.checkpoint_dir())?.last().map(|(s, _)| format!("the last good checkpoint (step {s}) is kept in {}", ctx.checkpoint_dir().display())).unwrap_or_else(|| "no checkpoint was written yet".into());
                return Err(StageError::failed(format!("MLM loss is {loss} at step {step}; training stopped before updating the weights, and {kept}. Lower `lr` or `max_grad_norm`, or raise `warmup_steps`")));
            }
            bert.mlm_backward(be)?;
            bert.encode_backward(be)?;
            self.trainer.apply(be, learning_rate(peak, step, warmup, steps))?;
            let done = self.trainer.step;
            last_loss = loss;

            if done % log_every == 0 || done == steps {
                self.curves["loss"].as_array_mut().expect("curve").push(json!([done, round(loss)]));
                ctx.metric("loss", done, loss);
                let elapsed = started.elapsed().as_secs_f64();
                let rate = tokens as f64 / elapsed.max(1e-9);
                let eta = elapsed / (done - first_step) as f64 * (steps - done) as f64;
                let line = format!("step {done}/{steps} loss {loss:.4} {rate:.0} tokens/s ETA {eta:.0}s");
                ctx.progress(done, steps, &line);
                ctx.info(&line);
            }
            if eval_every > 0 && done % eval_every == 0 && done < steps {
                self.evaluate(done)?;
            }
            if checkpoint_every > 0 && done % checkpoint_every == 0 && done < steps {
                self.trainer.save_resume(be, ctx.checkpoint_dir(), json!({"curves": self.curves}))?;
            }
        }
        let (eval_loss, eval_accuracy) = self.evaluate(steps)?;
        let elapsed = started.elapsed().as_secs_f64();
        self.finish(last_loss, eval_loss, eval_accuracy, tokens as f64 / elapsed.max(1e-9))
    }

    /// Streams the held-out sequences through the model in batches and returns the mean loss
    /// and accuracy over masked tokens. Only one batch's logits exist at a time.
    fn evaluate(&mut self, step: u64) -> Result<(Option<f64>, Option<f64>), StageError> {
        if self.eval.is_empty() {
            return Ok((None, None));
        }
        let backend = Arc::clone(&self.be);
        let be = backend.as_ref();
        let batch_size = self.ctx.param_usize("batch_size")?.max(1);
        let vocab = self.trainer.model.config.vocab_size;
        let (mut loss_sum, mut correct, mut count) = (0.0f64, 0usize, 0usize);
        for chunk in self.eval.chunks(batch_size) {
            // Fixed masks: evaluation draws are numbered from u64::MAX down, apart from training.
            let draws: Vec<u64> = chunk.iter().map(|&i| u64::MAX - i as u64).collect();
            let batch = masked_batch(&self.packed, chunk, &draws, self.seed, &self.masking);
            let bert = &mut self.trainer.model;
            bert.encode(be, &batch.input, None)?;
            let loss = bert.mlm_forward(be, &batch.positions, &batch.targets)?;
            loss_sum += f64::from(be.download(&loss).map_err(kernel_error)?[0]) * batch.target_count as f64;
            // NOTE: the kernels have no argmax op, so accuracy downloads this batch's logits.
            let logits = be.download(&bert.mlm_logits().expect("forward ran")).map_err(kernel_error)?;
            for (row, &target) in batch.targets.iter().enumerate() {
                if target == crate::model::IGNORE_INDEX {
                    continue;
                }
                let scores = &logits[row * vocab..(row + 1) * vocab];
                let best = (0..vocab).max_by(|&a, &b| scores[a].total_cmp(&scores[b]).then(b.cmp(&a))).expect("vocabulary is not empty");
                correct += usize::from(best as u32 == target);
            }
            count += batch.target_count;
        }
        let (loss, accuracy) = (loss_sum / count.max(1) as f64, correct as f64 / count.max(1) as f64);
        self.curves["eval_loss"].as_array_mut().expect("curve").push(json!([step, round(loss)]));
        self.curves["eval_accuracy"].as_array_mut().expect("curve").push(json!([step, round(accuracy)]));
        self.ctx.info(&format!("evaluation at step {step}: loss {loss:.4}, masked-token accuracy {accuracy:.4} over {count} tokens"));
        Ok((Some(loss), Some(accuracy)))
    }

    fn finish(self, loss: f64, eval_loss: Option<f64>, eval_accuracy: Option<f64>, tokens_per_second: f64) -> Result<StageOutcome, StageError> {
        let be = self.be.as_ref();
        let weights = self.trainer.model.weights(be)?;
        ModelDir::save(self.ctx.output("model")?, &self.trainer.model.config, &weights, Some(&self.tokenizer_dir))?;
        let metrics = json!({
            "loss": round(loss),
            "eval_loss": eval_loss.map(round),
            "eval_accuracy": eval_accuracy.map(round),
            "steps": self.trainer.step,
            "tokens_per_second": tokens_per_second.round(),
            "curves": self.curves,
        });
        crate::artifact::write_json(self.ctx.output("metrics")?, "metrics.json", &metrics)?;
        Ok(StageOutcome::default().metric("loss", round(loss)).metric("eval_loss", eval_loss.map(round)).metric("eval_accuracy", eval_accuracy.map(round)))
    }
}

/// Rounds to 6 decimals so metrics files stay readable.
fn round(value: f64) -> f64 {
    (value * 1e6).round() / 1e6
}
