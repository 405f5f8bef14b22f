//! [`Trainer`]: a [`Bert`] with its AdamW moments and step counter, one optimizer step
//! (global-norm clipping, then AdamW), and resume checkpoints.
//!
//! A resume checkpoint is a directory `step-NNNNNNNNN/` under the node's checkpoint directory
//! holding `model.safetensors` (parameters), `optimizer.safetensors` (`m.` and `v.` moments)
//! and `state.json` (`{"step": N, "files": {NAME: "b3:<hex>"}, "extra": …}`, where `files` has
//! the blake3 of the two tensor files and `extra` is the stage's own state such as its data
//! position). It is written into a temporary directory, synced and renamed, so a kill at any
//! point leaves either the previous checkpoint or the new one. A checkpoint whose files do not
//! match their digests (truncated or damaged on disk) is rejected, never resumed from;
//! `flywheel verify` checks the same digests.

use std::fs;
use std::path::{Path, PathBuf};

use flywheel_kernels::prelude::*;
use std::result::Result;
use flywheel_stage_api::StageError;
use serde_json::{Value, json};

use super::checkpoint::{HostTensor, Weights};
use super::encoder::Bert;
use super::kernel_error;
use super::params::BertParams;

/// Optimizer settings. `adamw.lr` is replaced by the learning rate of each step.
#[derive(Clone, Copy, Debug)]
pub struct TrainerConfig {
    pub adamw: AdamWConfig,
    /// Clip the global gradient norm to this value; 0 turns clipping off.
    pub max_grad_norm: f32,
}

pub struct Trainer {
    pub model: Bert,
    m: BertParams,
    v: BertParams,
    /// Optimizer steps taken so far.
    pub step: u64,
    pub config: TrainerConfig,
    grad_norm: Tensor, // (1)
}

/// Whether a parameter is left out of weight decay: biases and layer-norm weights, as in the
/// BERT reference recipe.
fn skips_weight_decay(name: &str) -> bool {
    name.ends_with(".bias") || name.contains("LayerNorm")
}

impl Trainer {
    pub fn new(be: &dyn Backend, model: Bert, config: TrainerConfig) -> Result<Trainer, StageError> {
        let m = BertParams::zeros(be, &model.config)?;
        let v = BertParams::zeros(be, &model.config)?;
        let grad_norm = be.zeros(&[1]).map_err(kernel_error)?;
        Ok(Trainer { model, m, v, step: 0, config, grad_norm })
    }

    /// Zeroes the gradients before the first micro-batch of a step.
    pub fn zero_grads(&mut self, be: &dyn Backend) -> Result<(), StageError> {
        self.model.grads.fill_zero(be)
    }

    /// Clips the gradients, applies AdamW with learning rate `lr` and counts the step. Returns
    /// the global gradient norm before clipping as a (1) tensor, read only when logged.
    pub fn apply(&mut self, be: &dyn Backend, lr: f32) -> Result<Tensor, StageError> {
        if self.config.max_grad_norm > 0.0 {
            let mut grads: Vec<&mut Tensor> = self.model.grads.named_mut().into_iter().map(|(_, t)| t).collect();
            be.clip_grad_norm(&mut grads, self.config.max_grad_norm, &mut self.grad_norm).map_err(kernel_error)?;
        }
        self.step += 1;
        let step = u32::try_from(self.step).map_err(|_| StageError::failed(format!("step {} exceeds the AdamW step counter's range", self.step)))?;
        let decayed = AdamWConfig { lr, ..self.config.adamw };
        let undecayed = AdamWConfig { weight_decay: 0.0, ..decayed };
        let grads = self.model.grads.named();
        let params = self.model.params.named_mut();
        let moments = self.m.named_mut().into_iter().zip(self.v.named_mut());
        for (((name, param), (_, grad)), ((_, m), (_, v))) in params.into_iter().zip(grads).zip(moments) {
            let config = if skips_weight_decay(&name) { &undecayed } else { &decayed };
            be.adamw_step(param, grad, m, v, config, step).map_err(kernel_error)?;
        }
        Ok(self.grad_norm.clone())
    }

    /// Writes a resume checkpoint for the current step and removes older ones.
    pub fn save_resume(&self, be: &dyn Backend, dir: &Path, extra: Value) -> Result<PathBuf, StageError> {
        fs::create_dir_all(dir).map_err(|e| StageError::file(dir, e))?;
        let final_dir = dir.join(format!("step-{:09}", self.step));
        let tmp = dir.join(format!(".tmp-step-{:09}", self.step));
        if tmp.exists() {
            fs::remove_dir_all(&tmp).map_err(|e| StageError::file(&tmp, e))?;
        }
        fs::create_dir_all(&tmp).map_err(|e| StageError::file(&tmp, e))?;
        self.model.params.download(be)?.save(&tmp.join("model.safetensors"))?;
        flywheel_stage_api::fault::point("checkpoint-partial");
        let mut moments = Weights::default();
        for (prefix, set) in [("m.", &self.m), ("v.", &self.v)] {
            for (name, tensor) in set.named() {
                let data = be.download(tensor).map_err(kernel_error)?;
                moments.insert(format!("{prefix}{name}"), HostTensor::new(tensor.dims().to_vec(), data));
            }
        }
        moments.save(&tmp.join("optimizer.safetensors"))?;
        let mut files = serde_json::Map::new();
        for name in CHECKPOINT_FILES {
            files.insert(name.to_string(), file_digest(&tmp.join(name))?.into());
        }
        let state = serde_json::to_vec_pretty(&json!({"step": self.step, "files": files, "extra": extra})).expect("state serializes");
        fs::write(tmp.join("state.json"), state).map_err(|e| StageError::file(&tmp, e))?;
        for name in ["model.safetensors", "optimizer.safetensors", "state.json"] {
            sync_path(&tmp.join(name))?;
        }
        sync_path(&tmp)?;
        if final_dir.exists() {
            fs::remove_dir_all(&final_dir).map_err(|e| StageError::file(&final_dir, e))?;
        }
        flywheel_stage_api::fault::point("checkpoint-before-rename");
        fs::rename(&tmp, &final_dir).map_err(|e| StageError::file(&final_dir, e))?;
        sync_path(dir)?;
        flywheel_stage_api::fault::point("checkpoint-after-rename");
        for (step, old) in list_checkpoints(dir)? {
            if step < self.step {
                fs::remove_dir_all(&old).map_err(|e| StageError::file(&old, e))?;
            }
        }
        Ok(final_dir)
    }

    /// Loads the newest resume checkpoint under `dir`, if any, and returns its `extra` state.
    pub fn load_resume(&mut self, be: &dyn Backend, dir: &Path) -> Result<Option<Value>, StageError> {
        let Some((_, newest)) = list_checkpoints(dir)?.into_iter().last() else { return Ok(None) };
        let state_path = newest.join("state.json");
        let start_over = format!("delete {} to start the node over, or run `flywheel verify`, which moves it aside", newest.display());
        let state: Value = serde_json::from_slice(&fs::read(&state_path).map_err(|e| StageError::file(&state_path, e))?)
            .map_err(|e| StageError::failed(format!("{}: invalid resume state: {e}; {start_over}", state_path.display())))?;
        for name in CHECKPOINT_FILES {
            let path = newest.join(name);
            let actual = file_digest(&path).map_err(|e| StageError::failed(format!("{e}; {start_over}")))?;
            if state["files"][name].as_str() != Some(actual.as_str()) {
                return Err(StageError::failed(format!(
                    "{}: resume checkpoint file does not match its digest in state.json (truncated or damaged); {start_over}",
                    path.display()
                )));
            }
        }
        let weights = Weights::load(&newest.join("model.safetensors"))?;
        write_set(be, &mut self.model.params, &weights, "")?;
        let moments = Weights::load(&newest.join("optimizer.safetensors"))?;
        write_set(be, &mut self.m, &moments, "m.")?;
        write_set(be, &mut self.v, &moments, "v.")?;
        self.step = state["step"].as_u64().ok_or_else(|| StageError::failed(format!("{}: `step` is missing", state_path.display())))?;
        Ok(Some(state["extra"].clone()))
    }
}

/// Files of a resume checkpoint whose digests `state.json` lists.
const CHECKPOINT_FILES: [&str; 2] = ["model.safetensors", "optimizer.safetensors"];

/// Returns `b3:<hex>`, the blake3 of a file's content.
fn file_digest(path: &Path) -> Result<String, StageError> {
    let bytes = fs::read(path).map_err(|e| StageError::file(path, e))?;
    Ok(format!("b3:{}", blake3::hash(&bytes).to_hex()))
}

/// Overwrites every tensor of `set` with the host tensor named `prefix + name`.
fn write_set(be: &dyn Backend, set: &mut BertParams, weights: &Weights, prefix: &str) -> Result<(), StageError> {
    for (name, tensor) in set.named_mut() {
        let key = format!("{prefix}{name}");
        let host = weights.get(&key).ok_or_else(|| StageError::failed(format!("resume checkpoint lacks `{key}`; delete the checkpoint directory to start over")))?;
        if host.shape != tensor.dims() {
            return Err(StageError::failed(format!("resume checkpoint tensor `{key}` has shape {:?}, the model needs {:?}", host.shape, tensor.dims())));
        }
        be.write(tensor, &host.data).map_err(kernel_error)?;
    }
    Ok(())
}

/// Returns the complete checkpoints under `dir` (those with `state.json`), oldest first.
pub fn list_checkpoints(dir: &Path) -> Result<Vec<(u64, PathBuf)>, StageError> {
    let mut found = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else { return Ok(found) };
    for entry in entries {
        let entry = entry.map_err(|e| StageError::file(dir, e))?;
        let name = entry.file_name().to_string_lossy().to_string();
        if let Some(step) = name.strip_prefix("step-").and_then(|s| s.parse::<u64>().ok())
            && entry.path().join("state.json").exists()
        {
            found.push((step, entry.path()));
        }
    }
    found.sort();
    Ok(found)
}

fn sync_path(path: &Path) -> Result<(), StageError> {
    fs::File::open(path).and_then(|f| f.sync_all()).map_err(|e| StageError::file(path, e))
}
