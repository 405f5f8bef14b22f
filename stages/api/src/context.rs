//! What a stage receives when it runs: [`StageRequest`] (data) and [`Host`] (callbacks), joined
//! in [`StageContext`]; and what it returns: [`StageOutcome`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::StageError;

/// One input artifact as a stage receives it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InputArtifact {
    /// Read-only directory holding the artifact's files.
    pub path: PathBuf,
    pub kind: String,
    /// Content id of the artifact (`b3:` + hex).
    pub id: String,
}

/// Everything a stage run needs, as plain data that can cross a process or library boundary.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StageRequest {
    pub protocol: u32,
    /// The workflow node being run; used in messages.
    pub node: String,
    pub stage: String,
    /// Resolved params: every declared param, defaults filled in, types checked.
    pub params: Map<String, Value>,
    /// Connected inputs by port name.
    pub inputs: BTreeMap<String, InputArtifact>,
    /// Output directories by port name; each exists and is empty when the run starts.
    pub outputs: BTreeMap<String, PathBuf>,
    /// Directory kept across attempts of this node (same key) for in-node resume state.
    pub checkpoint_dir: PathBuf,
    /// Device the stage should compute on: `cpu`, `gpu`, `auto` or an adapter name.
    pub device: String,
    pub seed: u64,
    /// Number of CPU threads the stage may use.
    pub threads: usize,
}

/// Severity of a log line sent by a stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

/// Callbacks from a running stage to the runner.
pub trait Host: Send + Sync {
    /// Records a log line under the running node.
    fn log(&self, level: LogLevel, message: &str);
    /// Reports progress: `done` of `total` units (`total` is 0 when unknown).
    fn progress(&self, done: u64, total: u64, message: &str);
    /// Records one point of a training curve or other series.
    fn metric(&self, name: &str, step: u64, value: f64);
    /// Returns true once the user has asked the run to stop; the stage should return
    /// [`StageError::Cancelled`] soon after.
    fn is_cancelled(&self) -> bool;
}

/// A [`Host`] that drops everything; useful in stage unit tests.
pub struct NullHost;

impl Host for NullHost {
    fn log(&self, _level: LogLevel, _message: &str) {}
    fn progress(&self, _done: u64, _total: u64, _message: &str) {}
    fn metric(&self, _name: &str, _step: u64, _value: f64) {}
    fn is_cancelled(&self) -> bool {
        false
    }
}

/// A shared cancellation flag.
#[derive(Clone, Debug, Default)]
pub struct CancelFlag(Arc<AtomicBool>);

impl CancelFlag {
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// A request plus the host it reports to; what [`crate::Stage::run`] receives.
pub struct StageContext<'a> {
    pub request: &'a StageRequest,
    pub host: &'a dyn Host,
}

impl<'a> StageContext<'a> {
    pub fn new(request: &'a StageRequest, host: &'a dyn Host) -> Self {
        StageContext { request, host }
    }

    /// Returns the directory of a connected input.
    pub fn input(&self, port: &str) -> Result<&Path, StageError> {
        self.request
            .inputs
            .get(port)
            .map(|a| a.path.as_path())
            .ok_or_else(|| StageError::UnknownPort { direction: "input", port: port.to_string() })
    }

    /// Returns the directory of an optional input, or `None` when it is not connected.
    pub fn optional_input(&self, port: &str) -> Option<&Path> {
        self.request.inputs.get(port).map(|a| a.path.as_path())
    }

    /// Returns the directory to fill for an output.
    pub fn output(&self, port: &str) -> Result<&Path, StageError> {
        self.request
            .outputs
            .get(port)
            .map(PathBuf::as_path)
            .ok_or_else(|| StageError::UnknownPort { direction: "output", port: port.to_string() })
    }

    pub fn checkpoint_dir(&self) -> &Path {
        &self.request.checkpoint_dir
    }

    pub fn param(&self, name: &str) -> Result<&Value, StageError> {
        self.request.params.get(name).ok_or_else(|| StageError::InvalidParam {
            name: name.to_string(),
            message: "missing from the request".to_string(),
        })
    }

    pub fn param_f64(&self, name: &str) -> Result<f64, StageError> {
        let value = self.param(name)?;
        value.as_f64().ok_or_else(|| wrong_type(name, "a number", value))
    }

    pub fn param_i64(&self, name: &str) -> Result<i64, StageError> {
        let value = self.param(name)?;
        value.as_i64().ok_or_else(|| wrong_type(name, "an integer", value))
    }

    /// Reads an integer param that must be zero or more.
    pub fn param_usize(&self, name: &str) -> Result<usize, StageError> {
        let value = self.param_i64(name)?;
        usize::try_from(value).map_err(|_| StageError::InvalidParam {
            name: name.to_string(),
            message: format!("must be 0 or more, got {value}"),
        })
    }

    pub fn param_bool(&self, name: &str) -> Result<bool, StageError> {
        let value = self.param(name)?;
        value.as_bool().ok_or_else(|| wrong_type(name, "true or false", value))
    }

    pub fn param_str(&self, name: &str) -> Result<&str, StageError> {
        let value = self.param(name)?;
        value.as_str().ok_or_else(|| wrong_type(name, "a string", value))
    }

    pub fn log(&self, level: LogLevel, message: &str) {
        self.host.log(level, message);
    }

    pub fn info(&self, message: &str) {
        self.host.log(LogLevel::Info, message);
    }

    pub fn progress(&self, done: u64, total: u64, message: &str) {
        self.host.progress(done, total, message);
    }

    pub fn metric(&self, name: &str, step: u64, value: f64) {
        self.host.metric(name, step, value);
    }

    /// Returns `Err(StageError::Cancelled)` once the run has been cancelled.
    pub fn check_cancelled(&self) -> Result<(), StageError> {
        if self.host.is_cancelled() { Err(StageError::Cancelled) } else { Ok(()) }
    }
}

fn wrong_type(name: &str, expected: &str, value: &Value) -> StageError {
    StageError::InvalidParam { name: name.to_string(), message: format!("expected {expected}, got {value}") }
}

/// Report of a finished stage besides its output files.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StageOutcome {
    /// Summary metrics (loss, accuracy, counts), stored in the action record and shown by
    /// `flywheel show`.
    #[serde(default)]
    pub metrics: Map<String, Value>,
    /// Free metadata per output port, stored in that artifact's manifest.
    #[serde(default)]
    pub metadata: BTreeMap<String, Value>,
}

impl StageOutcome {
    pub fn metric(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.metrics.insert(name.into(), value.into());
        self
    }
}
