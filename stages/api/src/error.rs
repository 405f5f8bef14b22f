//! The error a stage returns.

use std::path::PathBuf;

/// Why a stage failed. The runner prints the message under the node's name.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    /// The stage's own failure, with a message for the user.
    #[error("{0}")]
    Failed(String),
    /// A parameter is missing or has a value the stage cannot use.
    #[error("invalid param `{name}`: {message}")]
    InvalidParam { name: String, message: String },
    /// The request names no input or output with this port name.
    #[error("no {direction} port `{port}` in this request")]
    UnknownPort { direction: &'static str, port: String },
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    File { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The run was cancelled through the host.
    #[error("cancelled")]
    Cancelled,
}

impl StageError {
    pub fn failed(message: impl Into<String>) -> Self {
        StageError::Failed(message.into())
    }

    /// Wraps an I/O error with the path it happened on.
    pub fn file(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        StageError::File { path: path.into(), source }
    }
}
