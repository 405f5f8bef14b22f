//! The neural relevance stages, trained on a BERT `model` artifact:
//!
//! - `post-pretrain` ([`PostPretrain`]): mined pairs with pseudo labels, regression + pairwise +
//!   MLM, so the model learns the behaviour signal without forgetting language.
//! - `finetune` ([`Finetune`]): human grades, regression + pairwise, best validation checkpoint.
//! - `distill` ([`Distill`]): a student fits a teacher's scores (MSE or Margin-MSE).
//! - `score` ([`ScorePairs`]): a model's logit for every pair of a `pairs` artifact.
//!
//! Shared pieces: `data.rs` (pairs joined with the corpus, batch order), `objective.rs` (loss
//! targets, preference pairs, the weighted loss), `session.rs` (model loading, optimizer steps,
//! resume, curves) and `inference.rs` (batched scoring and validation measures).

mod data;
mod distill;
mod finetune;
mod inference;
mod objective;
mod post_pretrain;
mod score;
pub(crate) mod session;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use flywheel_stage_api::Stage;

pub use distill::Distill;
pub use finetune::Finetune;
pub use post_pretrain::PostPretrain;
pub use score::ScorePairs;

/// Returns the neural relevance stages.
pub fn stages() -> Vec<Arc<dyn Stage>> {
    vec![Arc::new(PostPretrain), Arc::new(Finetune), Arc::new(Distill), Arc::new(ScorePairs)]
}
