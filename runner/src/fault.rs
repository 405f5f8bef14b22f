//! Fault injection for crash tests. One implementation serves the runner and the stages, so it
//! lives in `flywheel-stage-api`: see [`flywheel_stage_api::fault`] for the `FLYWHEEL_FAULT`
//! variable, its `NAME@N` form and the list of points.

pub use flywheel_stage_api::fault::{FAULT_ENV, point};
