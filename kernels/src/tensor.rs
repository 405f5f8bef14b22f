//! `Shape`, `DType` and `Tensor`, the opaque handle to backend-owned storage.
//!
//! A `Tensor` is a cheap-to-clone handle: an `Arc` to storage that only the
//! backend that created it can read, plus the shape and element type. Data
//! moves between host and device only through `Backend::upload`, `write` and
//! `download`. Clones and reshapes share storage, so writing through one is
//! visible through the others.
//!
//! All tensors are dense and row-major: the last dimension is contiguous.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use crate::error::{KernelError, Result};

/// Dimensions of a tensor, outermost first. A rank-0 shape has one element.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Shape(Vec<usize>);

impl Shape {
    pub fn new(dims: &[usize]) -> Self {
        Shape(dims.to_vec())
    }

    pub fn dims(&self) -> &[usize] {
        &self.0
    }

    pub fn rank(&self) -> usize {
        self.0.len()
    }

    /// Number of elements, the product of the dimensions.
    pub fn numel(&self) -> usize {
        self.0.iter().product()
    }

    /// Size of the last dimension, or 1 for a rank-0 shape.
    pub fn last_dim(&self) -> usize {
        self.0.last().copied().unwrap_or(1)
    }
}

impl From<&[usize]> for Shape {
    fn from(dims: &[usize]) -> Self {
        Shape::new(dims)
    }
}

impl<const N: usize> From<[usize; N]> for Shape {
    fn from(dims: [usize; N]) -> Self {
        Shape(dims.to_vec())
    }
}

impl From<Vec<usize>> for Shape {
    fn from(dims: Vec<usize>) -> Self {
        Shape(dims)
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "(")?;
        for (i, dim) in self.0.iter().enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            write!(f, "{dim}")?;
        }
        write!(f, ")")
    }
}

impl fmt::Debug for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Element type of a tensor. Token ids, masks and pair indices are `U32`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    F32,
    U32,
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DType::F32 => write!(f, "f32"),
            DType::U32 => write!(f, "u32"),
        }
    }
}

/// Storage that a backend puts behind a `Tensor`. Each backend downcasts it
/// to its own concrete type.
pub type Storage = Arc<dyn Any + Send + Sync>;

/// Handle to a dense row-major tensor in backend-owned storage.
#[derive(Clone)]
pub struct Tensor {
    storage: Storage,
    shape: Shape,
    dtype: DType,
}

impl Tensor {
    /// Wraps backend storage. Backends call this, callers get tensors from
    /// `Backend::zeros` and `Backend::upload`.
    pub fn from_storage(storage: Storage, shape: Shape, dtype: DType) -> Self {
        Tensor {
            storage,
            shape,
            dtype,
        }
    }

    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    pub fn shape(&self) -> &Shape {
        &self.shape
    }

    pub fn dims(&self) -> &[usize] {
        self.shape.dims()
    }

    pub fn numel(&self) -> usize {
        self.shape.numel()
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Returns a handle with another shape of the same element count that
    /// shares this tensor's storage, for example `(B, T, C)` as `(B*T, C)`.
    pub fn reshape(&self, dims: &[usize]) -> Result<Tensor> {
        let shape = Shape::new(dims);
        if shape.numel() != self.numel() {
            return Err(KernelError::InvalidArgument {
                op: "reshape",
                argument: "dims",
                value: shape.to_string(),
                expected: format!(
                    "{} elements like the tensor's shape {}",
                    self.numel(),
                    self.shape
                ),
            });
        }
        Ok(Tensor {
            storage: Arc::clone(&self.storage),
            shape,
            dtype: self.dtype,
        })
    }

    /// Returns whether both handles point at the same storage.
    pub fn shares_storage(&self, other: &Tensor) -> bool {
        Arc::ptr_eq(&self.storage, &other.storage)
    }
}

impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tensor")
            .field("shape", &self.shape)
            .field("dtype", &self.dtype)
            .finish()
    }
}
