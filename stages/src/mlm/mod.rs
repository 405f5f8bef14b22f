//! The `pretrain-mlm` stage: masked-language-model pretraining of BERT from scratch or from an
//! init model, with in-node resume.
//!
//! - `masking.rs`: BERT's 15 % masking with the 80/10/10 split, optional whole-word masking.
//! - `data.rs`: tokenization, sequence packing, the train/evaluation split and batch order.
//! - `schedule.rs`: learning rate with linear warm-up and linear decay.
//! - `stage.rs`: the stage itself.

pub mod data;
pub mod masking;
pub mod schedule;
mod stage;

pub use stage::PretrainMlm;
