//! `EmbeddingOps`: row lookup in an embedding table and its deterministic
//! backward.
//!
//! The backward adds each `dout` row into the table row of its id. It never
//! uses float atomics: rows with the same id are summed in increasing
//! position order, so the result does not depend on threads or scheduling.

use crate::check::{expect_dtype, expect_f32, with_last};
use crate::error::{KernelError, Result};
use crate::tensor::{DType, Tensor};

pub trait EmbeddingOps {
    /// Copies row `ids[i]` of `table` to row `i` of `out`. Every id must be
    /// below `V`, and the CPU backend returns `KernelError::IndexOutOfRange`
    /// otherwise.
    // ids: (N) u32 (any shape), table: (V, C), out: (N, C) (ids' shape plus C)
    fn embedding(&self, ids: &Tensor, table: &Tensor, out: &mut Tensor) -> Result<()>;

    /// Adds row `i` of `dout` into row `ids[i]` of `dtable` (`+=`, a parameter
    /// gradient), in increasing `i` for rows that share an id.
    // dout: (N, C), ids: (N) u32, dtable: (V, C)
    fn embedding_backward(&self, dout: &Tensor, ids: &Tensor, dtable: &mut Tensor) -> Result<()>;
}

/// Checks embedding arguments and returns `(N, V, C)`. `rows` is `out` in the
/// forward and `dout` in the backward; `table` is `table` or `dtable`.
pub fn check_embedding(
    op: &'static str,
    ids: &Tensor,
    table: (&'static str, &Tensor),
    rows: (&'static str, &Tensor),
) -> Result<(usize, usize, usize)> {
    expect_dtype(op, "ids", ids, DType::U32)?;
    let (table_argument, table) = table;
    let [vocab, channels] = *table.dims() else {
        return Err(KernelError::RankMismatch {
            op,
            argument: table_argument,
            expected: "2 (V, C)",
            actual: table.shape().clone(),
        });
    };
    expect_f32(op, table_argument, table, table.dims())?;
    let (rows_argument, rows) = rows;
    expect_f32(op, rows_argument, rows, &with_last(ids.dims(), channels))?;
    Ok((ids.numel(), vocab, channels))
}
