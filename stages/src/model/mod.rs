//! The BERT relevance model on the kernels' `Backend` trait.
//!
//! - [`BertConfig`] (`config.rs`): hyper-parameters, a Hugging Face `config.json`.
//! - [`Weights`] (`checkpoint.rs`): host tensors by canonical name, read from and written to
//!   `model.safetensors`; [`ModelDir`] (`artifact.rs`) is a whole `model` artifact.
//! - [`BertParams`] (`params.rs`): the same tensors on a backend, also used for gradients and
//!   AdamW moments.
//! - [`Bert`] (`encoder.rs`): forward and backward entry points over `embeddings.rs`,
//!   `layer.rs` and `heads.rs`.
//! - [`Trainer`] (`trainer.rs`): a `Bert` with AdamW state, a step counter and resume files.
//! - `init.rs` (random initialisation) and `student.rs` (a smaller model from a teacher).
//!
//! Dimension legend in shape comments: `B` batch, `T` sequence length, `N = B·T` rows, `C`
//! hidden size, `H` heads, `I` intermediate size, `V` vocabulary, `P` MLM prediction rows.

pub mod artifact;
pub mod checkpoint;
pub mod config;
mod embeddings;
pub mod encoder;
pub mod heads;
pub mod init;
mod layer;
pub mod params;
pub mod student;
pub mod trainer;

use flywheel_kernels::prelude::*;
use std::result::Result;
use flywheel_stage_api::StageError;

pub use artifact::ModelDir;
pub use checkpoint::{HostTensor, Weights};
pub use config::BertConfig;
pub use encoder::Bert;
pub use heads::IGNORE_INDEX;
pub use params::BertParams;
pub use trainer::{Trainer, TrainerConfig};

pub(crate) type KResult<T> = flywheel_kernels::Result<T>;

/// Wraps a kernel error (an op rejected its arguments or the device failed).
pub fn kernel_error(error: KernelError) -> StageError {
    StageError::failed(format!("kernel error: {error}"))
}

/// Sizes of one pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dims {
    pub batch: usize,
    pub seq: usize,
    pub hidden: usize,
    pub heads: usize,
    pub intermediate: usize,
}

impl Dims {
    /// `N = B·T`, the row count of flattened activations.
    pub fn rows(&self) -> usize {
        self.batch * self.seq
    }
}

/// Hidden dropout of one training pass: probability and the pass's seed. Each dropout site
/// derives its own seed from it, so every site and step draws an independent mask.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Dropout {
    pub p: f32,
    pub seed: u64,
}

impl Dropout {
    pub fn site_seed(&self, site: u64) -> u64 {
        crate::random::mix(self.seed ^ site.wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }
}

/// One batch of token sequences on the host, row-major `(B, T)`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostBatch {
    pub batch: usize,
    pub seq: usize,
    pub ids: Vec<u32>,
    pub type_ids: Vec<u32>,
    /// 1 for a real token, 0 for padding.
    pub mask: Vec<u32>,
}

impl HostBatch {
    /// Checks sizes and id ranges against the model configuration.
    pub fn check(&self, config: &BertConfig) -> Result<(), StageError> {
        let n = self.batch * self.seq;
        if n == 0 || self.ids.len() != n || self.type_ids.len() != n || self.mask.len() != n {
            return Err(StageError::failed(format!(
                "batch of {} x {} needs {n} ids, type ids and mask values, got {}, {} and {}",
                self.batch,
                self.seq,
                self.ids.len(),
                self.type_ids.len(),
                self.mask.len()
            )));
        }
        if self.seq > config.max_position_embeddings {
            return Err(StageError::failed(format!("sequence length {} exceeds max_position_embeddings {}; lower max_len", self.seq, config.max_position_embeddings)));
        }
        if let Some(id) = self.ids.iter().find(|&&id| id as usize >= config.vocab_size) {
            return Err(StageError::failed(format!("token id {id} is outside the vocabulary of {} tokens; the tokenizer and the model do not match", config.vocab_size)));
        }
        if let Some(id) = self.type_ids.iter().find(|&&id| id as usize >= config.type_vocab_size) {
            return Err(StageError::failed(format!("token type {id} is outside type_vocab_size {}", config.type_vocab_size)));
        }
        Ok(())
    }
}

/// A batch on the device.
pub struct Batch {
    pub ids: Tensor,       // (B, T) u32
    pub type_ids: Tensor,  // (B, T) u32
    pub positions: Tensor, // (B, T) u32, 0..T in every row
    pub mask: Tensor,      // (B, T) u32
}

impl Batch {
    pub fn new(be: &dyn Backend, batch: usize, seq: usize) -> KResult<Batch> {
        let positions: Vec<u32> = (0..batch).flat_map(|_| 0..seq as u32).collect();
        Ok(Batch {
            ids: be.zeros_u32(&[batch, seq])?,
            type_ids: be.zeros_u32(&[batch, seq])?,
            positions: be.upload_u32(&positions, &[batch, seq])?,
            mask: be.zeros_u32(&[batch, seq])?,
        })
    }

    pub fn write(&mut self, be: &dyn Backend, host: &HostBatch) -> KResult<()> {
        be.write_u32(&mut self.ids, &host.ids)?;
        be.write_u32(&mut self.type_ids, &host.type_ids)?;
        be.write_u32(&mut self.mask, &host.mask)
    }
}
