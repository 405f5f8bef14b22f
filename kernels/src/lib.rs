//! Tensors, the `Backend` trait and its backends for flywheel's BERT training.
//!
//! - `Tensor` is an opaque handle to backend-owned storage with a `Shape`
//!   and a `DType`; data moves only through `Backend::upload`, `write` and
//!   `download`.
//! - `Backend` is an object-safe trait made of one trait per op family
//!   (`MatmulOps`, `ElementwiseOps`, `NormOps`, `AttentionOps`,
//!   `EmbeddingOps`, `DropoutOps`, `LossOps`, `OptimOps`, `ReduceOps`),
//!   each with forward and backward ops that write into caller-provided
//!   outputs. The module docs of `backend` state the contract every op keeps.
//! - `CpuBackend` implements it with the `gemm` crate and rayon, and returns
//!   bit-identical results for the same inputs and thread count.
//! - With the `conformance` feature, `conformance` holds the test suite and
//!   f64 reference that every backend must pass.
//!
//! ```
//! use flywheel_kernels::CpuBackend;
//! use flywheel_kernels::prelude::*;
//!
//! let backend: Box<dyn Backend> = Box::new(CpuBackend::new());
//! let a = backend.upload(&[1.0, 2.0, 3.0, 4.0], &[2, 2])?;
//! let b = backend.upload(&[1.0, 0.0, 0.0, 1.0], &[2, 2])?;
//! let mut out = backend.zeros(&[2, 2])?;
//! backend.matmul(&a, &b, &mut out, MatmulOptions::default())?;
//! assert_eq!(backend.download(&out)?, [1.0, 2.0, 3.0, 4.0]);
//! # Ok::<(), flywheel_kernels::KernelError>(())
//! ```

pub mod backend;
mod check;
pub mod cpu;
mod error;
pub mod math;
pub mod philox;
mod select;
mod tensor;
#[cfg(feature = "wgpu")]
pub mod wgpu;

#[cfg(feature = "conformance")]
pub mod conformance;

/// The `Backend` trait with all its op-family supertraits, whose methods
/// need the traits in scope, and the types their signatures use.
pub mod prelude {
    pub use crate::backend::{
        AdamWConfig, AttentionOps, Backend, DropoutOps, ElementwiseOps, EmbeddingOps, LossOps,
        MatmulOps, MatmulOptions, NormOps, OptimOps, ReduceOps,
    };
    pub use crate::error::{KernelError, Result};
    pub use crate::tensor::{DType, Shape, Tensor};
}

pub use backend::{
    AdamWConfig, AttentionOps, Backend, DropoutOps, ElementwiseOps, EmbeddingOps, LossOps,
    MatmulOps, MatmulOptions, NormOps, OptimOps, ReduceOps,
};
pub use cpu::CpuBackend;
pub use error::{KernelError, Result};
pub use select::{DeviceError, select_backend};
pub use tensor::{DType, Shape, Storage, Tensor};
#[cfg(feature = "wgpu")]
pub use wgpu::{GpuBackend, list_adapters};
