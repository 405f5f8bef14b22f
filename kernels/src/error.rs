//! `KernelError`, the error every backend op returns, and the `Result` alias.
//!
//! Messages name the op, the argument and the observed value, so a caller can
//! see which call to fix without a debugger.

use crate::tensor::{DType, Shape};

/// Result of a backend op.
pub type Result<T> = std::result::Result<T, KernelError>;

/// Failure of a backend op. Ops check every argument before they write any
/// output, so an error leaves all outputs unchanged.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KernelError {
    /// An argument's shape does not match what the op expects from its other
    /// arguments.
    #[error("{op}: `{argument}` has shape {actual}, expected {expected}")]
    ShapeMismatch {
        op: &'static str,
        argument: &'static str,
        expected: Shape,
        actual: Shape,
    },

    /// An argument has the wrong rank, so no single expected shape exists.
    #[error("{op}: `{argument}` has shape {actual}, expected rank {expected}")]
    RankMismatch {
        op: &'static str,
        argument: &'static str,
        expected: &'static str,
        actual: Shape,
    },

    /// An argument has the wrong element type.
    #[error("{op}: `{argument}` has dtype {actual}, expected {expected}")]
    DTypeMismatch {
        op: &'static str,
        argument: &'static str,
        expected: DType,
        actual: DType,
    },

    /// Host data passed to `upload` or `write` has a different length than the shape.
    #[error("{op}: data has {actual} elements but shape {shape} has {expected}")]
    LengthMismatch {
        op: &'static str,
        shape: Shape,
        expected: usize,
        actual: usize,
    },

    /// A tensor was created by another backend, so this backend cannot read its storage.
    #[error("{op}: `{argument}` belongs to another backend, expected a tensor from `{backend}`")]
    ForeignTensor {
        op: &'static str,
        argument: &'static str,
        backend: &'static str,
    },

    /// An output shares storage with another argument of the same op (for
    /// example a clone or reshape of an input). Pass a separate output tensor.
    #[error(
        "{op}: `{argument}` shares storage with another argument; pass a separate output tensor"
    )]
    Aliased {
        op: &'static str,
        argument: &'static str,
    },

    /// An index tensor (token ids, targets, pairs) contains a value past the
    /// end of the dimension it indexes.
    #[error("{op}: `{argument}` contains index {index} at position {position}, expected < {limit}")]
    IndexOutOfRange {
        op: &'static str,
        argument: &'static str,
        index: u32,
        position: usize,
        limit: usize,
    },

    /// A scalar argument is outside its valid range.
    #[error("{op}: invalid `{argument}` = {value}, expected {expected}")]
    InvalidArgument {
        op: &'static str,
        argument: &'static str,
        value: String,
        expected: String,
    },
}
