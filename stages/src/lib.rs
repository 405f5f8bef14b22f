//! The built-in stages of flywheel.
//!
//! [`builtin`] lists them; the runner registers each under its descriptor's name.

mod corpus;
mod pairs;
pub mod mlm;
pub mod model;
pub mod tokenizer;

mod artifact;
mod behaviour;
mod evaluate;
pub mod import;
mod random;
mod ranking;
mod relevance;
mod report;
mod simulate;
mod split;
mod teacher;

use std::sync::Arc;

use flywheel_stage_api::Stage;

pub use corpus::{CorpusStats, ImportCorpus, import_corpus, terms};
pub use pairs::{ImportPairs, import_pairs};

/// Returns every built-in stage.
pub fn builtin() -> Vec<Arc<dyn Stage>> {
    let mut stages: Vec<Arc<dyn Stage>> = vec![Arc::new(ImportCorpus), Arc::new(CorpusStats), Arc::new(ImportPairs), Arc::new(tokenizer::TrainTokenizer), Arc::new(tokenizer::ImportTokenizer), Arc::new(mlm::PretrainMlm), Arc::new(model::student::MakeStudent)];
    stages.extend(relevance_stages());
    stages.extend(relevance::stages());
    stages
}

/// The relevance stages: data import and split, simulated clicks, behaviour features, the GBDT
/// teacher, evaluation and the report.
fn relevance_stages() -> Vec<Arc<dyn Stage>> {
    vec![
        Arc::new(import::ImportQueries),
        Arc::new(import::ImportDocuments),
        Arc::new(import::ImportQrels),
        Arc::new(import::ImportClicks),
        Arc::new(split::SplitQueries),
        Arc::new(simulate::SimulateClicks),
        Arc::new(behaviour::BehaviourFeatures),
        Arc::new(teacher::TeacherGbdt),
        Arc::new(teacher::PseudoLabel),
        Arc::new(evaluate::Evaluate),
        Arc::new(report::ReportStage),
    ]
}
