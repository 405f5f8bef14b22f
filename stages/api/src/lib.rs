//! The stable interface between the flywheel runner and every stage.
//!
//! A stage is a unit of work that reads typed input artifacts (directories) and fills typed
//! output artifact directories. The runner treats every stage, built in or plugged in, as a
//! [`Stage`] trait object:
//!
//! - [`StageDescriptor`] names the stage, its version, its input and output [`PortSpec`]s, its
//!   [`ParamSpec`]s and its [`Resources`]. Descriptors serialize to JSON so plugins can send them.
//! - [`StageRequest`] is everything a run needs: resolved params, input paths, output directories,
//!   the checkpoint directory, device, seed and thread count. It also serializes to JSON.
//! - [`Host`] is the callback side: log lines, progress and cancellation.
//! - [`StageContext`] joins a request and a host and is what [`Stage::run`] receives.
//! - [`fault`] is the crash-test switch (`FLYWHEEL_FAULT`) shared by the runner and the stages.
//!
//! ```
//! use flywheel_stage_api::*;
//!
//! struct Upper;
//! impl Stage for Upper {
//!     fn descriptor(&self) -> StageDescriptor {
//!         StageDescriptor::new("upper", "1")
//!             .input(PortSpec::new("text", "text"))
//!             .output(PortSpec::new("text", "text"))
//!     }
//!     fn run(&self, ctx: &StageContext<'_>) -> Result<StageOutcome, StageError> {
//!         let text = std::fs::read_to_string(ctx.input("text")?.join("text.txt"))?;
//!         std::fs::write(ctx.output("text")?.join("text.txt"), text.to_uppercase())?;
//!         Ok(StageOutcome::default())
//!     }
//! }
//! ```

pub mod abi;
mod context;
mod descriptor;
mod error;
pub mod fault;

pub use context::{
    CancelFlag, Host, InputArtifact, LogLevel, NullHost, StageContext, StageOutcome, StageRequest,
};
pub use descriptor::{ParamSpec, ParamType, PortSpec, Resources, StageDescriptor};
pub use error::StageError;

/// Version of the JSON envelope ([`StageDescriptor`], [`StageRequest`], [`StageOutcome`]) shared
/// with plugins. Bump it when a field changes meaning or a required field is added.
pub const PROTOCOL_VERSION: u32 = 1;

/// A unit of work in a workflow.
///
/// Implementations must be deterministic for a given request (same params, same input bytes,
/// same seed, same backend and thread count), because the runner caches outputs by those inputs.
pub trait Stage: Send + Sync {
    /// Describes the stage: name, version, ports, params and resources.
    fn descriptor(&self) -> StageDescriptor;

    /// Runs the stage, writing every declared output into `ctx.output(port)`.
    ///
    /// The output directories exist and are empty when `run` starts. Returning `Ok` without
    /// writing a declared output is an error that the runner reports.
    fn run(&self, ctx: &StageContext<'_>) -> Result<StageOutcome, StageError>;
}
