//! The `Backend` trait: tensor storage plus the ops that BERT training needs,
//! split into one trait per op family.
//!
//! `Backend` is object-safe, so a program picks its backend at run time and
//! passes `&dyn Backend` or `Box<dyn Backend>` around. Each family trait lives
//! in its own file, with forward and backward ops side by side and their
//! argument checks beside them, so that every backend rejects the same calls.
//!
//! # Contract for every op
//!
//! - **Order.** Ops on one backend take effect in the order they are called.
//!   A GPU backend may queue them and wait only in `download`, which returns
//!   the data after every earlier op.
//! - **Outputs.** Ops write into output tensors that the caller allocated
//!   with `zeros` or `upload`, so a training loop reuses its buffers. Outputs
//!   are `&mut Tensor`, and an output must not share storage with any other
//!   argument of the same call; the CPU backend returns
//!   `KernelError::Aliased` for that.
//! - **Checks.** Every op checks the shape and dtype of each argument and
//!   returns a `KernelError` naming the op, the argument, and the expected and
//!   actual shapes before it writes anything.
//! - **Gradient rule.** Backward ops overwrite (`=`) gradients of activations
//!   and add (`+=`) into gradients of parameters: `bias_add_backward`'s dbias,
//!   `layer_norm_backward`'s dgamma and dbeta, `embedding_backward`'s dtable,
//!   and `matmul` when `MatmulOptions::accumulate` is set. Zero parameter
//!   gradients with `fill(grad, 0.0)` before the first micro-batch. Where an
//!   activation feeds two branches, sum their gradients with `accumulate`.
//! - **Layout.** Tensors are dense and row-major. `(N, C)` in a comment means
//!   any leading dimensions flattened into `N` rows of `C` elements.
//!
//! # Dimension names
//!
//! `B` batch, `T` sequence length, `C` hidden size (channels), `H` attention
//! heads, `D = C/H` head size, `V` vocabulary size, `N` rows, `P` pairs,
//! `M, K` matmul rows and inner dimension.

mod attention;
mod dropout;
mod elementwise;
mod embedding;
mod loss;
mod matmul;
mod norm;
mod optim;
mod reduce;

pub use attention::{AttentionDims, AttentionOps, attention_dims};
pub use dropout::{DropoutOps, check_dropout};
pub use elementwise::{ElementwiseOps, check_bias, check_same_shape};
pub use embedding::{EmbeddingOps, check_embedding};
pub use loss::{LossOps, check_cross_entropy, check_pairwise};
pub use matmul::{MatmulDims, MatmulOps, MatmulOptions, matmul_dims};
pub use norm::{NormOps, check_layer_norm};
pub use optim::{AdamWConfig, OptimOps, check_adamw, check_clip};
pub use reduce::{ReduceOps, check_reduce};

use crate::error::Result;
use crate::tensor::Tensor;

/// A compute device with its own tensor storage and kernels.
///
/// Methods here move data between host and device; the op families are the
/// supertraits. All methods take `&self`, so one backend can be shared by
/// reference.
pub trait Backend:
    MatmulOps
    + ElementwiseOps
    + NormOps
    + AttentionOps
    + EmbeddingOps
    + DropoutOps
    + LossOps
    + OptimOps
    + ReduceOps
    + Send
    + Sync
{
    /// Short backend name for `--device` flags and tables, such as `cpu`.
    fn name(&self) -> &'static str;

    /// Human-readable device description, such as the CPU model and thread count.
    fn device_name(&self) -> String;

    /// Allocates an f32 tensor filled with zeros.
    fn zeros(&self, dims: &[usize]) -> Result<Tensor>;

    /// Allocates a u32 tensor filled with zeros.
    fn zeros_u32(&self, dims: &[usize]) -> Result<Tensor>;

    /// Allocates an f32 tensor holding `data`, which must have one element per
    /// entry of `dims`.
    fn upload(&self, data: &[f32], dims: &[usize]) -> Result<Tensor>;

    /// Allocates a u32 tensor holding `data` (token ids, masks, pair indices).
    fn upload_u32(&self, data: &[u32], dims: &[usize]) -> Result<Tensor>;

    /// Overwrites an existing f32 tensor with host data of the same length.
    fn write(&self, tensor: &mut Tensor, data: &[f32]) -> Result<()>;

    /// Overwrites an existing u32 tensor with host data of the same length.
    fn write_u32(&self, tensor: &mut Tensor, data: &[u32]) -> Result<()>;

    /// Copies an f32 tensor to the host after every earlier op has finished.
    fn download(&self, tensor: &Tensor) -> Result<Vec<f32>>;

    /// Copies a u32 tensor to the host after every earlier op has finished.
    fn download_u32(&self, tensor: &Tensor) -> Result<Vec<u32>>;

    /// Sets every element of an f32 tensor to `value`.
    // tensor: any shape
    fn fill(&self, tensor: &mut Tensor, value: f32) -> Result<()>;

    /// Copies `src` into `dst`, which must have the same shape.
    // src: any shape, dst: same shape as src
    fn copy(&self, src: &Tensor, dst: &mut Tensor) -> Result<()>;
}
