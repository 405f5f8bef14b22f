//! Fixed-size work splitting for the CPU kernels.
//!
//! Work is split into chunks whose size depends only on the tensor shape,
//! never on the thread count, and partial results are combined in chunk
//! order. Rayon may run the chunks on any thread in any order. Every output
//! element and every sum still comes from the same operations in the same
//! order, so results are bit-identical from run to run and across thread
//! counts.

use rayon::prelude::*;

/// Elements per task for element-wise kernels: 64 KiB of f32, enough to
/// amortize rayon's per-task overhead of about a microsecond and small enough
/// to balance a few dozen threads on BERT-sized tensors.
pub(crate) const ELEMENT_CHUNK: usize = 1 << 14;

/// Rows per task for a row-wise kernel on rows of `cols` elements, about
/// `ELEMENT_CHUNK` elements per task.
pub(crate) fn rows_per_task(cols: usize) -> usize {
    (ELEMENT_CHUNK / cols.max(1)).max(1)
}

/// Returns `Σ chunk_sum(chunk)` over `ELEMENT_CHUNK`-sized chunks of `x`,
/// computing chunks in parallel and adding their sums in chunk order in f64.
pub(crate) fn chunked_sum(x: &[f32], chunk_sum: impl Fn(&[f32]) -> f32 + Sync + Send) -> f64 {
    let partials: Vec<f32> = x.par_chunks(ELEMENT_CHUNK).map(chunk_sum).collect();
    partials.iter().map(|&partial| partial as f64).sum()
}

/// Like `chunked_sum` for two slices of the same length, chunked alike.
pub(crate) fn chunked_sum2(
    a: &[f32],
    b: &[f32],
    chunk_sum: impl Fn(&[f32], &[f32]) -> f32 + Sync + Send,
) -> f64 {
    let partials: Vec<f32> = a
        .par_chunks(ELEMENT_CHUNK)
        .zip(b.par_chunks(ELEMENT_CHUNK))
        .map(|(a, b)| chunk_sum(a, b))
        .collect();
    partials.iter().map(|&partial| partial as f64).sum()
}

/// Adds per-block column partials into `dst` in block order. Each partial
/// has `dst.len()` elements.
pub(crate) fn add_partials(dst: &mut [f32], partials: &[Vec<f32>]) {
    for partial in partials {
        for (dst, &value) in dst.iter_mut().zip(partial) {
            *dst += value;
        }
    }
}
