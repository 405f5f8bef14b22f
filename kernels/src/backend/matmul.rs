//! `MatmulOps`: batched matrix multiplication with either operand transposed.
//!
//! Backward of a matmul is two matmuls. For `out = a·b` with `a (M, K)` and
//! `b (K, N)`:
//!
//! ```text
//! da = dout·bᵀ   matmul(dout, b, da, transpose_b)                 // activation: =
//! db = aᵀ·dout   matmul(a, dout, db, transpose_a + accumulate)    // parameter: +=
//! ```
//!
//! For a linear layer on `(B, T, C)` activations, reshape them to
//! `(B*T, C)` with `Tensor::reshape` so that the weight gradient is one
//! rank-2 matmul over all rows.

use crate::check::expect_dtype;
use crate::error::{KernelError, Result};
use crate::tensor::{DType, Shape, Tensor};

/// Operand layout and output mode of a `matmul` call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MatmulOptions {
    /// `a` is stored as `(K, M)` and used transposed.
    pub transpose_a: bool,
    /// `b` is stored as `(N, K)` and used transposed.
    pub transpose_b: bool,
    /// Add the product into `out` (`+=`) instead of overwriting it (`=`).
    pub accumulate: bool,
}

pub trait MatmulOps {
    /// Computes `out = op(a)·op(b)`, or `out += op(a)·op(b)` with
    /// `options.accumulate`, where `op` transposes an operand whose
    /// `transpose_*` option is set.
    ///
    /// Each operand is rank 2 or rank 3. A rank-3 operand's first dimension
    /// is the batch, and a rank-2 operand is shared by every batch entry.
    /// `out` is rank 3 when either operand is.
    // a:   (M, K) or (batch, M, K); (K, M) or (batch, K, M) with transpose_a
    // b:   (K, N) or (batch, K, N); (N, K) or (batch, N, K) with transpose_b
    // out: (M, N) or (batch, M, N)
    fn matmul(
        &self,
        a: &Tensor,
        b: &Tensor,
        out: &mut Tensor,
        options: MatmulOptions,
    ) -> Result<()>;
}

/// Sizes of one `matmul` call after its shapes were checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MatmulDims {
    pub batch: usize,
    pub m: usize,
    pub k: usize,
    pub n: usize,
    /// Whether `a` has a batch dimension (otherwise it is shared).
    pub a_batched: bool,
    /// Whether `b` has a batch dimension (otherwise it is shared).
    pub b_batched: bool,
}

/// Splits a rank-2 or rank-3 operand into (batch, rows, cols).
fn batch_rows_cols(
    argument: &'static str,
    tensor: &Tensor,
) -> Result<(Option<usize>, usize, usize)> {
    match *tensor.dims() {
        [rows, cols] => Ok((None, rows, cols)),
        [batch, rows, cols] => Ok((Some(batch), rows, cols)),
        _ => Err(KernelError::RankMismatch {
            op: "matmul",
            argument,
            expected: "2 or 3",
            actual: tensor.shape().clone(),
        }),
    }
}

/// Checks the arguments of `matmul` and returns its sizes.
pub fn matmul_dims(
    a: &Tensor,
    b: &Tensor,
    out: &Tensor,
    options: MatmulOptions,
) -> Result<MatmulDims> {
    const OP: &str = "matmul";
    expect_dtype(OP, "a", a, DType::F32)?;
    expect_dtype(OP, "b", b, DType::F32)?;
    expect_dtype(OP, "out", out, DType::F32)?;

    let (a_batch, a_rows, a_cols) = batch_rows_cols("a", a)?;
    let (b_batch, b_rows, b_cols) = batch_rows_cols("b", b)?;
    let (m, k) = if options.transpose_a {
        (a_cols, a_rows)
    } else {
        (a_rows, a_cols)
    };
    let (b_k, n) = if options.transpose_b {
        (b_cols, b_rows)
    } else {
        (b_rows, b_cols)
    };

    let batch = match (a_batch, b_batch) {
        (Some(a_batch), Some(b_batch)) if a_batch != b_batch => {
            return Err(shape_error(
                "b",
                expected_b(Some(a_batch), k, n, options),
                b,
            ));
        }
        (Some(batch), _) | (None, Some(batch)) => Some(batch),
        (None, None) => None,
    };
    if b_k != k {
        return Err(shape_error("b", expected_b(b_batch, k, n, options), b));
    }

    let expected_out = match batch {
        Some(batch) => vec![batch, m, n],
        None => vec![m, n],
    };
    if out.dims() != expected_out.as_slice() {
        return Err(shape_error("out", expected_out, out));
    }

    Ok(MatmulDims {
        batch: batch.unwrap_or(1),
        m,
        k,
        n,
        a_batched: a_batch.is_some(),
        b_batched: b_batch.is_some(),
    })
}

/// Shape that `b` needs to match `a`.
fn expected_b(batch: Option<usize>, k: usize, n: usize, options: MatmulOptions) -> Vec<usize> {
    let (rows, cols) = if options.transpose_b { (n, k) } else { (k, n) };
    match batch {
        Some(batch) => vec![batch, rows, cols],
        None => vec![rows, cols],
    }
}

fn shape_error(argument: &'static str, expected: Vec<usize>, actual: &Tensor) -> KernelError {
    KernelError::ShapeMismatch {
        op: "matmul",
        argument,
        expected: Shape::from(expected),
        actual: actual.shape().clone(),
    }
}
