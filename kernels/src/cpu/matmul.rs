//! CPU `MatmulOps` on the `gemm` crate, plus `gemm_view`, the bounds-checked
//! wrapper that attention also uses for strided per-head matrices.
//!
//! A batched matmul with at least as many batch entries as threads runs the
//! entries in parallel with single-threaded `gemm` calls. Smaller batches run
//! their entries one after another, each on all threads. Either way each
//! output element is summed in a fixed order (see the determinism note in
//! `cpu`).

use gemm::Parallelism;
use rayon::prelude::*;

use super::CpuBackend;
use super::storage::{read, write};
use crate::backend::{MatmulDims, MatmulOps, MatmulOptions, matmul_dims};
use crate::error::Result;
use crate::tensor::Tensor;

/// A strided matrix inside a slice: element `(i, j)` is
/// `data[offset + i·row_stride + j·col_stride]`.
#[derive(Clone, Copy)]
pub(crate) struct MatrixView<'a> {
    pub data: &'a [f32],
    pub offset: usize,
    pub rows: usize,
    pub cols: usize,
    pub row_stride: usize,
    pub col_stride: usize,
}

impl<'a> MatrixView<'a> {
    /// Row-major `(rows, cols)` matrix starting at `offset`, or its transpose
    /// when `transposed` (then the slice stores `(cols, rows)`).
    pub fn dense(
        data: &'a [f32],
        offset: usize,
        rows: usize,
        cols: usize,
        transposed: bool,
    ) -> Self {
        if transposed {
            MatrixView {
                data,
                offset,
                rows,
                cols,
                row_stride: 1,
                col_stride: rows,
            }
        } else {
            MatrixView {
                data,
                offset,
                rows,
                cols,
                row_stride: cols,
                col_stride: 1,
            }
        }
    }

    /// Returns whether every element lies inside `data`.
    fn in_bounds(&self) -> bool {
        if self.offset > self.data.len() {
            return false;
        }
        self.rows == 0 || self.cols == 0 || {
            let last =
                self.offset + (self.rows - 1) * self.row_stride + (self.cols - 1) * self.col_stride;
            last < self.data.len()
        }
    }
}

/// A row-major output matrix inside a mutable slice: element `(i, j)` is
/// `data[offset + i·row_stride + j]`, with `row_stride >= cols` so rows do not overlap.
pub(crate) struct OutputView<'a> {
    pub data: &'a mut [f32],
    pub offset: usize,
    pub rows: usize,
    pub cols: usize,
    pub row_stride: usize,
}

/// Computes `out = scale·a·b`, or `out += scale·a·b` when `accumulate`.
///
/// Panics when a view reaches outside its slice, when `out` rows overlap, or
/// when the dimensions do not chain. Callers check shapes first, so such a
/// panic is a bug in the caller.
pub(crate) fn gemm_view(
    out: OutputView<'_>,
    a: MatrixView<'_>,
    b: MatrixView<'_>,
    scale: f32,
    accumulate: bool,
    threads: usize,
) {
    assert!(
        a.rows == out.rows && b.cols == out.cols && a.cols == b.rows,
        "gemm_view: dimensions do not chain"
    );
    assert!(
        a.in_bounds() && b.in_bounds(),
        "gemm_view: operand outside its slice"
    );
    assert!(out.row_stride >= out.cols, "gemm_view: output rows overlap");
    let out_in_bounds = out.rows == 0
        || out.cols == 0
        || out.offset + (out.rows - 1) * out.row_stride + out.cols <= out.data.len();
    assert!(out_in_bounds, "gemm_view: output outside its slice");
    if out.rows == 0 || out.cols == 0 {
        return;
    }
    let parallelism = if threads > 1 {
        Parallelism::Rayon(threads)
    } else {
        Parallelism::None
    };

    // SAFETY: the asserts above keep every element that gemm reads inside
    // `a.data` and `b.data` and every element it writes inside `out.data`.
    // `out.data` is a unique borrow, so it does not overlap the inputs, and
    // distinct (i, j) map to distinct output elements because
    // row_stride >= cols. With `accumulate` false gemm ignores the old
    // output (its alpha is set to zero and dst is not read), so NaN
    // sentinels in `out` do not leak into the result.
    unsafe {
        gemm::gemm(
            out.rows,
            out.cols,
            a.cols,
            out.data.as_mut_ptr().add(out.offset),
            1,
            out.row_stride as isize,
            accumulate,
            a.data.as_ptr().add(a.offset),
            a.col_stride as isize,
            a.row_stride as isize,
            b.data.as_ptr().add(b.offset),
            b.col_stride as isize,
            b.row_stride as isize,
            1.0,
            scale,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// Runs every batch entry of a checked matmul.
// a: (batch?, M, K), b: (batch?, K, N), out: (batch?, M, N), transposes per options
fn matmul(
    a: &[f32],
    b: &[f32],
    out: &mut [f32],
    dims: MatmulDims,
    options: MatmulOptions,
    threads: usize,
) {
    let MatmulDims {
        batch,
        m,
        k,
        n,
        a_batched,
        b_batched,
    } = dims;
    let entry = |index: usize, out: &mut [f32], threads: usize| {
        let a_offset = if a_batched { index * m * k } else { 0 };
        let b_offset = if b_batched { index * k * n } else { 0 };
        gemm_view(
            OutputView {
                data: out,
                offset: 0,
                rows: m,
                cols: n,
                row_stride: n,
            },
            MatrixView::dense(a, a_offset, m, k, options.transpose_a),
            MatrixView::dense(b, b_offset, k, n, options.transpose_b),
            1.0,
            options.accumulate,
            threads,
        );
    };
    let entry_len = (m * n).max(1);
    if batch >= threads && batch > 1 {
        out.par_chunks_mut(entry_len)
            .enumerate()
            .for_each(|(index, out)| entry(index, out, 1));
    } else {
        for (index, out) in out.chunks_mut(entry_len).enumerate() {
            entry(index, out, threads);
        }
    }
}

impl MatmulOps for CpuBackend {
    fn matmul(
        &self,
        a: &Tensor,
        b: &Tensor,
        out: &mut Tensor,
        options: MatmulOptions,
    ) -> Result<()> {
        const OP: &str = "matmul";
        let dims = matmul_dims(a, b, out, options)?;
        let a = read::<f32>(OP, "a", a)?;
        let b = read::<f32>(OP, "b", b)?;
        let mut out = write::<f32>(OP, "out", out)?;
        let (a, b, out): (&[f32], &[f32], &mut [f32]) = (&a, &b, &mut out);
        let threads = self.threads;
        self.install(|| matmul(a, b, out, dims, options, threads));
        Ok(())
    }
}
