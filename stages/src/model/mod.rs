//! The BERT relevance model: configuration and checkpoints.

pub mod checkpoint;
pub mod config;

pub use checkpoint::{HostTensor, Weights};
pub use config::BertConfig;
