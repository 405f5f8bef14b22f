//! The built-in stages of flywheel.
//!
//! [`builtin`] lists them; the runner registers each under its descriptor's name.

mod corpus;

use std::sync::Arc;

use flywheel_stage_api::Stage;

pub use corpus::{CorpusStats, ImportCorpus};

/// Returns every built-in stage.
pub fn builtin() -> Vec<Arc<dyn Stage>> {
    vec![Arc::new(ImportCorpus), Arc::new(CorpusStats)]
}
