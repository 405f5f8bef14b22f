//! [`Session`]: what every neural relevance training stage shares. It loads the init model,
//! builds the [`Trainer`], resumes from the node's checkpoint directory, applies one optimizer
//! step after a finite-loss check, records curves and progress, and saves the trained model.
//!
//! A stage's loop reads:
//!
//! ```text
//! while session.trainer.step < session.steps {
//!     ctx.check_cancelled()?;
//!     session.trainer.zero_grads(be)?;
//!     // forward and backward of the stage's losses
//!     session.apply(be, &[("loss", total), ("regression", r), …])?;
//!     session.checkpoint_if_due(be, stage_state)?;
//! }
//! ```

use std::path::{Path, PathBuf};
use std::time::Instant;

use flywheel_kernels::prelude::{AdamWConfig, Backend};
use flywheel_kernels::{CpuBackend, select_backend};
use flywheel_stage_api::*;
use serde_json::{Map, Value, json};

use crate::mlm::schedule::learning_rate;
use crate::model::init::complete_weights;
use crate::model::trainer::list_checkpoints;
use crate::model::{Bert, Dropout, ModelDir, Trainer, TrainerConfig, Weights};
use crate::random::{mix, seed_param};
use crate::tokenizer::{self, PairEncoder};

/// Opens the backend that the request's device names. The CPU backend gets the request's
/// thread count, so a fixed seed and thread count give bit-identical results.
pub fn open_backend(ctx: &StageContext<'_>) -> Result<Box<dyn Backend>, StageError> {
    let cpu = || -> Result<Box<dyn Backend>, StageError> {
        let threads = ctx.request.threads.max(1);
        let backend = CpuBackend::with_threads(threads).map_err(|e| StageError::failed(format!("cannot start {threads} CPU threads: {e}")))?;
        Ok(Box::new(backend))
    };
    match ctx.request.device.as_str() {
        "cpu" => cpu(),
        device => {
            let backend = select_backend(device).map_err(|e| StageError::failed(format!("cannot open device `{device}`: {e}")))?;
            if backend.name() == CpuBackend::new().name() { cpu() } else { Ok(backend) }
        }
    }
}

/// Params of every training stage, with defaults for a small fine-tuning run.
pub fn training_params(steps: i64, lr: f64) -> Vec<ParamSpec> {
    let int = |name: &str, default: i64, doc: &str| ParamSpec::new(name, ParamType::Int).default(default).doc(doc);
    let float = |name: &str, default: f64, doc: &str| ParamSpec::new(name, ParamType::Float).default(default).doc(doc);
    vec![
        int("max_len", 128, "tokens per query-document pair, [CLS] and both [SEP] included; the document is cut first"),
        int("batch_size", 32, "pairs per optimizer step"),
        int("steps", steps, "optimizer steps"),
        float("lr", lr, "peak learning rate"),
        int("warmup_steps", 0, "steps of linear warm-up, then linear decay to 0"),
        float("weight_decay", 0.01, "AdamW weight decay (not on biases and layer norms)"),
        float("max_grad_norm", 1.0, "clip the global gradient norm to this; 0 turns clipping off"),
        float("dropout", -1.0, "hidden dropout probability while training; negative keeps the model's own"),
        int("checkpoint_every", 100, "write a resume checkpoint every N steps; 0 turns them off"),
        int("log_every", 10, "steps between curve points and log lines"),
        int("seed", 0, "seed of data order, masking and dropout"),
    ]
}

/// A model loaded from a `model` artifact, with the pair encoder of its own tokenizer.
pub struct LoadedModel {
    pub bert: Bert,
    pub encoder: PairEncoder,
    pub dir: PathBuf,
}

/// Loads the model in `dir`: `config.json`, `model.safetensors` and `tokenizer.json`. Tensors a
/// checkpoint lacks (a `BertModel` has no classifier) start from random values seeded by `seed`.
pub fn load_model(ctx: &StageContext<'_>, be: &dyn Backend, dir: &Path, seed: u64) -> Result<LoadedModel, StageError> {
    let (config, mut weights) = ModelDir::load(dir)?;
    let added = complete_weights(&config, &mut weights, seed);
    if !added.is_empty() {
        ctx.info(&format!("model lacks {} tensors (such as `{}`); they start from random values", added.len(), added[0]));
    }
    let max_len = ctx.param_usize("max_len")?;
    if max_len > config.max_position_embeddings {
        return Err(StageError::InvalidParam { name: "max_len".into(), message: format!("{max_len} exceeds the model's max_position_embeddings {}", config.max_position_embeddings) });
    }
    let encoder = PairEncoder::new(tokenizer::load(dir)?, max_len, true)?;
    if encoder.vocab_size() > config.vocab_size {
        return Err(StageError::failed(format!("{}: the tokenizer has {} tokens but the model only {}; the tokenizer does not belong to this model", dir.display(), encoder.vocab_size(), config.vocab_size)));
    }
    let bert = Bert::new(be, config, &weights)?;
    Ok(LoadedModel { bert, encoder, dir: dir.to_path_buf() })
}

/// Training state shared by the relevance training stages.
pub struct Session<'a> {
    ctx: &'a StageContext<'a>,
    pub trainer: Trainer,
    pub encoder: PairEncoder,
    /// The init model's directory, whose tokenizer files the output model copies.
    model_dir: PathBuf,
    pub seed: u64,
    pub steps: u64,
    pub batch_size: usize,
    pub dropout: f32,
    peak_lr: f32,
    warmup: u64,
    log_every: u64,
    checkpoint_every: u64,
    /// Curves by name, each a list of `[step, value]`.
    pub curves: Map<String, Value>,
    started: Instant,
    first_step: u64,
}

impl<'a> Session<'a> {
    /// Loads the model of input `port` and sets up AdamW from the params.
    ///
    /// `loss_scale` lets a stage train on `loss / loss_scale`. The trainer's clipping norm and
    /// AdamW epsilon are divided by the same factor, so every update equals one of training on
    /// `loss` itself. The reason is that AdamW's step `m / (sqrt(v) + eps)` and the clipping
    /// test `norm > max` do not change when the gradient, `eps` and `max` scale together.
    pub fn start(ctx: &'a StageContext<'a>, be: &dyn Backend, port: &str, loss_scale: f32) -> Result<Session<'a>, StageError> {
        let seed = seed_param(ctx)?;
        let model = load_model(ctx, be, ctx.input(port)?, seed)?;
        let dropout = match ctx.param_f64("dropout")? {
            p if p < 0.0 => model.bert.config.hidden_dropout_prob,
            p if p < 1.0 => p as f32,
            p => return Err(StageError::InvalidParam { name: "dropout".into(), message: format!("{p} is not a probability below 1") }),
        };
        let defaults = AdamWConfig::default();
        let adamw = AdamWConfig { weight_decay: ctx.param_f64("weight_decay")? as f32, eps: defaults.eps / loss_scale, ..defaults };
        let max_grad_norm = ctx.param_f64("max_grad_norm")? as f32 / loss_scale;
        let trainer = Trainer::new(be, model.bert, TrainerConfig { adamw, max_grad_norm })?;
        let batch_size = ctx.param_usize("batch_size")?;
        if batch_size == 0 {
            return Err(StageError::InvalidParam { name: "batch_size".into(), message: "must be at least 1".into() });
        }
        Ok(Session {
            ctx,
            trainer,
            encoder: model.encoder,
            model_dir: model.dir,
            seed,
            steps: ctx.param_usize("steps")? as u64,
            batch_size,
            dropout,
            peak_lr: ctx.param_f64("lr")? as f32,
            warmup: ctx.param_usize("warmup_steps")? as u64,
            log_every: ctx.param_usize("log_every")?.max(1) as u64,
            checkpoint_every: ctx.param_usize("checkpoint_every")? as u64,
            curves: Map::new(),
            started: Instant::now(),
            first_step: 0,
        })
    }

    /// Loads the newest resume checkpoint, if any, and returns the stage's own saved state.
    pub fn resume(&mut self, be: &dyn Backend) -> Result<Option<Value>, StageError> {
        let Some(extra) = self.trainer.load_resume(be, self.ctx.checkpoint_dir())? else { return Ok(None) };
        self.ctx.info(&format!("resuming at step {} from {}", self.trainer.step, self.ctx.checkpoint_dir().display()));
        self.curves = extra["curves"].as_object().cloned().unwrap_or_default();
        self.first_step = self.trainer.step;
        Ok(Some(extra["stage"].clone()))
    }

    /// Returns the dropout of forward pass `pass` (0, 1, …) of the current step, seeded by the
    /// seed, the step and the pass.
    pub fn dropout_for(&self, pass: u64) -> Option<Dropout> {
        let seed = mix(self.seed ^ mix(self.trainer.step.wrapping_mul(4).wrapping_add(pass)));
        Some(Dropout { p: self.dropout, seed })
    }

    /// Appends `[step, value]` to curve `name`.
    pub fn record(&mut self, name: &str, step: u64, value: f64) {
        let curve = self.curves.entry(name).or_insert_with(|| json!([]));
        curve.as_array_mut().expect("curves are arrays").push(json!([step, round(value)]));
    }

    /// Checks that every loss term is finite, then clips, applies AdamW at the scheduled learning
    /// rate, and logs the terms every `log_every` steps. `terms[0]` is the total loss.
    pub fn apply(&mut self, be: &dyn Backend, terms: &[(&str, f64)]) -> Result<(), StageError> {
        let step = self.trainer.step;
        if let Some((name, value)) = terms.iter().find(|(_, value)| !value.is_finite()) {
            let checkpoint_note = list_checkpoints(self.ctx.checkpoint_dir())?
                .last()
                .map(|(s, _)| format!("the last good checkpoint (step {s}) is kept in {}", self.ctx.checkpoint_dir().display()))
                .unwrap_or_else(|| "no checkpoint was written yet".into());
            return Err(StageError::failed(format!(
                "{name} loss is {value} at step {step}; training stopped before updating the weights, and {checkpoint_note}. Lower `lr` or `max_grad_norm`, or raise `warmup_steps`"
            )));
        }
        self.trainer.apply(be, learning_rate(self.peak_lr, step, self.warmup, self.steps))?;
        let done = self.trainer.step;
        if done.is_multiple_of(self.log_every) || done == self.steps {
            for &(name, value) in terms {
                self.record(name, done, value);
                self.ctx.metric(name, done, value);
            }
            let elapsed = self.started.elapsed().as_secs_f64();
            let rate = (done - self.first_step) as f64 * self.batch_size as f64 / elapsed.max(1e-9);
            let line = format!("step {done}/{} loss {:.4} {rate:.0} pairs/s", self.steps, terms[0].1);
            self.ctx.progress(done, self.steps, &line);
            self.ctx.info(&line);
        }
        Ok(())
    }

    /// Returns whether the current step is a multiple of `checkpoint_every` before the last step.
    pub fn checkpoint_due(&self) -> bool {
        let step = self.trainer.step;
        self.checkpoint_every > 0 && step.is_multiple_of(self.checkpoint_every) && step < self.steps
    }

    /// Writes a resume checkpoint when [`Session::checkpoint_due`]; `stage` is the stage's own
    /// state, returned by [`Session::resume`].
    pub fn checkpoint_if_due(&self, be: &dyn Backend, stage: Value) -> Result<bool, StageError> {
        if !self.checkpoint_due() {
            return Ok(false);
        }
        self.trainer.save_resume(be, self.ctx.checkpoint_dir(), json!({"curves": self.curves, "stage": stage}))?;
        Ok(true)
    }

    /// Training pairs per second since this run started (or resumed).
    pub fn pairs_per_second(&self) -> f64 {
        let pairs = (self.trainer.step - self.first_step) as f64 * self.batch_size as f64;
        (pairs / self.started.elapsed().as_secs_f64().max(1e-9)).round()
    }

    /// Writes `weights` as the output `model` with the init model's tokenizer, and the output
    /// `metrics` with `metrics`, `curves` and `pairs_per_second` added.
    pub fn save(&self, weights: &Weights, mut metrics: Map<String, Value>) -> Result<(), StageError> {
        ModelDir::save(self.ctx.output("model")?, &self.trainer.model.config, weights, Some(&self.model_dir))?;
        metrics.insert("steps".into(), json!(self.trainer.step));
        metrics.insert("pairs_per_second".into(), json!(self.pairs_per_second()));
        metrics.insert("curves".into(), Value::Object(self.curves.clone()));
        crate::artifact::write_json(self.ctx.output("metrics")?, "metrics.json", &Value::Object(metrics))
    }
}

/// Rounds to 6 decimals so metrics files stay readable.
pub fn round(value: f64) -> f64 {
    (value * 1e6).round() / 1e6
}

/// Reads a loss weight param, which must be finite and not negative.
pub fn weight_param(ctx: &StageContext<'_>, name: &str) -> Result<f32, StageError> {
    let value = ctx.param_f64(name)?;
    if !value.is_finite() || value < 0.0 {
        return Err(StageError::InvalidParam { name: name.into(), message: format!("{value} is not a loss weight; use 0 or more (0 turns the loss off)") });
    }
    Ok(value as f32)
}
