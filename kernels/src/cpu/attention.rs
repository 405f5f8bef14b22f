//! CPU `AttentionOps`: one rayon task per sequence, looping over heads with
//! single-threaded `gemm` calls on strided per-head views of `(T, C)` rows.
//!
//! NOTE: parallelism is over the batch only, so a batch smaller than the
//! thread count leaves threads idle.

use rayon::prelude::*;

use super::CpuBackend;
use super::matmul::{MatrixView, OutputView, gemm_view};
use super::simd::{dispatch, max, sum_by, sum_by2};
use super::storage::{read, write};
use crate::backend::{AttentionDims, AttentionOps, attention_dims};
use crate::error::Result;
use crate::math;
use crate::tensor::Tensor;

/// Per-head matrix `(T, D)` inside a sequence's `(T, C)` rows.
fn head<'a>(data: &'a [f32], dims: &AttentionDims, h: usize) -> MatrixView<'a> {
    MatrixView {
        data,
        offset: h * dims.head_dim,
        rows: dims.seq,
        cols: dims.head_dim,
        row_stride: dims.channels,
        col_stride: 1,
    }
}

/// Transpose `(D, T)` of a per-head matrix.
fn head_transposed<'a>(data: &'a [f32], dims: &AttentionDims, h: usize) -> MatrixView<'a> {
    MatrixView {
        data,
        offset: h * dims.head_dim,
        rows: dims.head_dim,
        cols: dims.seq,
        row_stride: 1,
        col_stride: dims.channels,
    }
}

/// Output view of head `h` inside a sequence's `(T, C)` rows.
fn head_out<'a>(data: &'a mut [f32], dims: &AttentionDims, h: usize) -> OutputView<'a> {
    OutputView {
        data,
        offset: h * dims.head_dim,
        rows: dims.seq,
        cols: dims.head_dim,
        row_stride: dims.channels,
    }
}

/// Square `(T, T)` matrix, transposed when `transposed`.
fn square(data: &[f32], seq: usize, transposed: bool) -> MatrixView<'_> {
    MatrixView::dense(data, 0, seq, seq, transposed)
}

fn square_out(data: &mut [f32], seq: usize) -> OutputView<'_> {
    OutputView {
        data,
        offset: 0,
        rows: seq,
        cols: seq,
        row_stride: seq,
    }
}

/// Replaces each row of scaled scores with its masked softmax. `key_bias` is
/// 0 for real keys and -inf for padded keys; a sequence without real keys
/// gets all-zero probabilities.
// scores: (T, T), key_bias: (T)
#[inline(always)]
fn masked_softmax(scores: &mut [f32], key_bias: &[f32], has_keys: bool) {
    if !has_keys {
        scores.fill(0.0);
        return;
    }
    for row in scores.chunks_exact_mut(key_bias.len()) {
        for (score, &bias) in row.iter_mut().zip(key_bias) {
            *score += bias;
        }
        let row_max = max(row);
        for score in row.iter_mut() {
            *score = math::exp(*score - row_max);
        }
        let inverse_sum = 1.0 / sum_by(row, |value| value);
        for score in row.iter_mut() {
            *score *= inverse_sum;
        }
    }
}

/// Forward for one sequence.
// q, k, v: (T, C), mask: (T), out: (T, C), probs: (H, T, T)
#[allow(clippy::too_many_arguments)]
fn attention_sequence(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    mask: &[u32],
    dims: &AttentionDims,
    out: &mut [f32],
    probs: &mut [f32],
) {
    let seq = dims.seq;
    let key_bias: Vec<f32> = mask
        .iter()
        .map(|&real| if real != 0 { 0.0 } else { f32::NEG_INFINITY })
        .collect();
    let has_keys = mask.iter().any(|&real| real != 0);
    for (h, probs) in probs.chunks_exact_mut(seq * seq).enumerate() {
        gemm_view(
            square_out(probs, seq),
            head(q, dims, h),
            head_transposed(k, dims, h),
            dims.scale(),
            false,
            1,
        );
        dispatch(
            #[inline(always)]
            || masked_softmax(probs, &key_bias, has_keys),
        );
        gemm_view(
            head_out(out, dims, h),
            square(probs, seq, false),
            head(v, dims, h),
            1.0,
            false,
            1,
        );
    }
}

/// Turns `dP` into `dS = P ⊙ (dP - rowsum(dP ⊙ P))` in place.
// dprobs: (T, T), probs: (T, T)
#[inline(always)]
fn softmax_backward(dprobs: &mut [f32], probs: &[f32], seq: usize) {
    for (drow, row) in dprobs.chunks_exact_mut(seq).zip(probs.chunks_exact(seq)) {
        let dot = sum_by2(drow, row, |dp, p| dp * p);
        for (dp, &p) in drow.iter_mut().zip(row) {
            *dp = p * (*dp - dot);
        }
    }
}

/// Backward for one sequence; `scratch` is `(T, T)` working memory.
// dout, q, k, v: (T, C), probs: (H, T, T), dq, dk, dv: (T, C)
#[allow(clippy::too_many_arguments)]
fn attention_sequence_backward(
    dout: &[f32],
    q: &[f32],
    k: &[f32],
    v: &[f32],
    probs: &[f32],
    dims: &AttentionDims,
    dq: &mut [f32],
    dk: &mut [f32],
    dv: &mut [f32],
    scratch: &mut [f32],
) {
    let seq = dims.seq;
    for (h, probs) in probs.chunks_exact(seq * seq).enumerate() {
        // dV = Pᵀ·dO
        gemm_view(
            head_out(dv, dims, h),
            square(probs, seq, true),
            head(dout, dims, h),
            1.0,
            false,
            1,
        );
        // dP = dO·Vᵀ, then dS in place.
        gemm_view(
            square_out(scratch, seq),
            head(dout, dims, h),
            head_transposed(v, dims, h),
            1.0,
            false,
            1,
        );
        dispatch(
            #[inline(always)]
            || softmax_backward(scratch, probs, seq),
        );
        // dQ = dS·K/sqrt(D), dK = dSᵀ·Q/sqrt(D)
        gemm_view(
            head_out(dq, dims, h),
            square(scratch, seq, false),
            head(k, dims, h),
            dims.scale(),
            false,
            1,
        );
        gemm_view(
            head_out(dk, dims, h),
            square(scratch, seq, true),
            head(q, dims, h),
            dims.scale(),
            false,
            1,
        );
    }
}

impl AttentionOps for CpuBackend {
    fn attention(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        mask: &Tensor,
        heads: usize,
        out: &mut Tensor,
        probs: &mut Tensor,
    ) -> Result<()> {
        const OP: &str = "attention";
        let dims = attention_dims(
            OP,
            q,
            &[("k", k), ("v", v), ("out", out)],
            Some(mask),
            probs,
            heads,
        )?;
        let q = read::<f32>(OP, "q", q)?;
        let k = read::<f32>(OP, "k", k)?;
        let v = read::<f32>(OP, "v", v)?;
        let mask = read::<u32>(OP, "mask", mask)?;
        let mut out = write::<f32>(OP, "out", out)?;
        let mut probs = write::<f32>(OP, "probs", probs)?;
        let (q, k, v, mask): (&[f32], &[f32], &[f32], &[u32]) = (&q, &k, &v, &mask);
        let (out, probs): (&mut [f32], &mut [f32]) = (&mut out, &mut probs);
        if dims.batch == 0 || dims.seq == 0 {
            return Ok(());
        }

        let rows = dims.seq * dims.channels;
        let squares = dims.heads * dims.seq * dims.seq;
        self.install(|| {
            out.par_chunks_mut(rows)
                .zip(probs.par_chunks_mut(squares))
                .zip(q.par_chunks(rows).zip(k.par_chunks(rows)))
                .zip(v.par_chunks(rows).zip(mask.par_chunks(dims.seq)))
                .for_each(|(((out, probs), (q, k)), (v, mask))| {
                    attention_sequence(q, k, v, mask, &dims, out, probs)
                })
        });
        Ok(())
    }

    fn attention_backward(
        &self,
        dout: &Tensor,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        probs: &Tensor,
        heads: usize,
        dq: &mut Tensor,
        dk: &mut Tensor,
        dv: &mut Tensor,
    ) -> Result<()> {
        const OP: &str = "attention_backward";
        let btc = [
            ("dout", dout),
            ("k", k),
            ("v", v),
            ("dq", &*dq),
            ("dk", &*dk),
            ("dv", &*dv),
        ];
        let dims = attention_dims(OP, q, &btc, None, probs, heads)?;
        let dout = read::<f32>(OP, "dout", dout)?;
        let q = read::<f32>(OP, "q", q)?;
        let k = read::<f32>(OP, "k", k)?;
        let v = read::<f32>(OP, "v", v)?;
        let probs = read::<f32>(OP, "probs", probs)?;
        let mut dq = write::<f32>(OP, "dq", dq)?;
        let mut dk = write::<f32>(OP, "dk", dk)?;
        let mut dv = write::<f32>(OP, "dv", dv)?;
        let (dout, probs): (&[f32], &[f32]) = (&dout, &probs);
        let (q, k, v): (&[f32], &[f32], &[f32]) = (&q, &k, &v);
        let (dq, dk, dv): (&mut [f32], &mut [f32], &mut [f32]) = (&mut dq, &mut dk, &mut dv);
        if dims.batch == 0 || dims.seq == 0 {
            return Ok(());
        }

        let rows = dims.seq * dims.channels;
        let squares = dims.heads * dims.seq * dims.seq;
        self.install(|| {
            dq.par_chunks_mut(rows)
                .zip(dk.par_chunks_mut(rows).zip(dv.par_chunks_mut(rows)))
                .zip(dout.par_chunks(rows).zip(probs.par_chunks(squares)))
                .zip(
                    q.par_chunks(rows)
                        .zip(k.par_chunks(rows).zip(v.par_chunks(rows))),
                )
                .for_each(|(((dq, (dk, dv)), (dout, probs)), (q, (k, v)))| {
                    let mut scratch = vec![0.0f32; dims.seq * dims.seq];
                    attention_sequence_backward(
                        dout,
                        q,
                        k,
                        v,
                        probs,
                        &dims,
                        dq,
                        dk,
                        dv,
                        &mut scratch,
                    );
                })
        });
        Ok(())
    }
}
