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
    #[error("{path}: {source}{}", out_of_space_hint(source))]
    File { path: PathBuf, source: std::io::Error },
    #[error("{source}{hint}", source = .0, hint = out_of_space_hint(.0))]
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

/// Returns the fix for an error that a full disk, a quota or a file size limit causes, and
/// nothing for other errors.
fn out_of_space_hint(error: &std::io::Error) -> &'static str {
    use std::io::ErrorKind;
    match error.kind() {
        ErrorKind::StorageFull | ErrorKind::QuotaExceeded => "; the disk is full: free space or point --store elsewhere",
        ErrorKind::FileTooLarge => {
            "; a file size limit was reached (`ulimit -f`, or the file system's maximum): raise it or point --store elsewhere"
        }
        _ => "",
    }
}
