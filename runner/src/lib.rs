//! flywheel: a declarative, content-addressed workflow runner for training search-relevance
//! BERT models.
//!
//! - [`workflow`] parses YAML workflows into a validated [`workflow::Plan`].
//! - [`key`] turns a node's stage, params and input artifact ids into its cache key.
//! - [`store`] keeps artifacts (objects), action records, refs, checkpoints and run logs.
//! - [`exec`] schedules and runs nodes; [`status`] explains what a run would do.
//! - [`registry`] maps stage names to implementations.

pub mod canonical;
pub mod cli;
pub mod digest;
pub mod exec;
pub mod fault;
pub mod fixtures;
pub mod key;
pub mod plugin;
pub mod registry;
pub mod runlog;
pub mod status;
pub mod store;
pub mod workflow;
