//! f64 reference implementations of every op, written for clarity rather
//! than speed, with the magnitudes that the error bounds need.
//!
//! Each function takes and returns row-major `f64` data with the same shapes
//! as the op it mirrors. The reference computes GELU with an erf accurate to
//! about 1e-15, not with the polynomial that backends use, so that the
//! suite also measures the polynomial's error.

mod attention;
mod elementwise;
mod loss;
mod matmul;
mod norm;
mod optim;

pub use attention::{Dims as AttentionDims, attention, attention_backward};
pub use elementwise::{erf, gelu, gelu_grad, normal_cdf};
pub use loss::{
    bce_with_logits, bce_with_logits_backward, cross_entropy, cross_entropy_backward, mse,
    mse_backward, pairwise_logistic, pairwise_logistic_backward,
};
pub use matmul::{Matmul, matmul};
pub use norm::{layer_norm, layer_norm_backward};
pub use optim::{AdamWState, adamw_step};

/// Column sums of a `(rows, cols)` matrix, and the sums of absolute values.
pub fn column_sums(x: &[f64], cols: usize) -> (Vec<f64>, Vec<f64>) {
    let mut sums = vec![0.0; cols];
    let mut magnitudes = vec![0.0; cols];
    for row in x.chunks_exact(cols.max(1)) {
        for (col, &value) in row.iter().enumerate() {
            sums[col] += value;
            magnitudes[col] += value.abs();
        }
    }
    (sums, magnitudes)
}

/// Rows of `table` picked by `ids`.
// ids: (N), table: (V, C) -> (N, C)
pub fn embedding(ids: &[u32], table: &[f64], channels: usize) -> Vec<f64> {
    ids.iter()
        .flat_map(|&id| {
            table[id as usize * channels..(id as usize + 1) * channels]
                .iter()
                .copied()
        })
        .collect()
}

/// `dtable` with each `dout` row added into the row of its id.
// dout: (N, C), ids: (N), dtable: (V, C)
pub fn embedding_backward(dout: &[f64], ids: &[u32], dtable: &[f64], channels: usize) -> Vec<f64> {
    let mut result = dtable.to_vec();
    for (row, &id) in dout.chunks_exact(channels.max(1)).zip(ids) {
        for (col, &value) in row.iter().enumerate() {
            result[id as usize * channels + col] += value;
        }
    }
    result
}
