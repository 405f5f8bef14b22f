//! Reference multi-head attention with a key padding mask, and its backward.

/// Sizes of a reference attention call.
#[derive(Clone, Copy, Debug)]
pub struct Dims {
    pub batch: usize,
    pub seq: usize,
    pub channels: usize,
    pub heads: usize,
}

impl Dims {
    fn head_dim(&self) -> usize {
        self.channels / self.heads
    }

    /// Index of channel `d` of head `h` at position `t` of sequence `b` in `(B, T, C)`.
    fn at(&self, b: usize, t: usize, h: usize, d: usize) -> usize {
        (b * self.seq + t) * self.channels + h * self.head_dim() + d
    }

    /// Index of `P[b, h, i, j]` in `(B, H, T, T)`.
    fn prob(&self, b: usize, h: usize, i: usize, j: usize) -> usize {
        ((b * self.heads + h) * self.seq + i) * self.seq + j
    }
}

/// Returns `(out (B, T, C), probs (B, H, T, T))`. Masked keys get probability
/// 0, and a sequence without any real key gets all-zero rows.
// q, k, v: (B, T, C), mask: (B, T)
pub fn attention(
    q: &[f64],
    k: &[f64],
    v: &[f64],
    mask: &[u32],
    dims: Dims,
) -> (Vec<f64>, Vec<f64>) {
    let Dims {
        batch,
        seq,
        channels,
        heads,
    } = dims;
    let head_dim = dims.head_dim();
    let scale = 1.0 / (head_dim as f64).sqrt();
    let mut out = vec![0.0; batch * seq * channels];
    let mut probs = vec![0.0; batch * heads * seq * seq];
    for b in 0..batch {
        let real: Vec<bool> = (0..seq).map(|j| mask[b * seq + j] != 0).collect();
        for h in 0..heads {
            for i in 0..seq {
                let scores: Vec<f64> = (0..seq)
                    .map(|j| {
                        (0..head_dim)
                            .map(|d| q[dims.at(b, i, h, d)] * k[dims.at(b, j, h, d)])
                            .sum::<f64>()
                            * scale
                    })
                    .collect();
                let max = (0..seq)
                    .filter(|&j| real[j])
                    .map(|j| scores[j])
                    .fold(f64::NEG_INFINITY, f64::max);
                let weights: Vec<f64> = (0..seq)
                    .map(|j| {
                        if real[j] {
                            (scores[j] - max).exp()
                        } else {
                            0.0
                        }
                    })
                    .collect();
                let total: f64 = weights.iter().sum();
                for j in 0..seq {
                    probs[dims.prob(b, h, i, j)] =
                        if total > 0.0 { weights[j] / total } else { 0.0 };
                }
                for d in 0..head_dim {
                    out[dims.at(b, i, h, d)] = (0..seq)
                        .map(|j| probs[dims.prob(b, h, i, j)] * v[dims.at(b, j, h, d)])
                        .sum();
                }
            }
        }
    }
    (out, probs)
}

/// Returns `(dq, dk, dv)`, each `(B, T, C)`.
// dout: (B, T, C), q, k, v: (B, T, C), mask: (B, T)
pub fn attention_backward(
    dout: &[f64],
    q: &[f64],
    k: &[f64],
    v: &[f64],
    mask: &[u32],
    dims: Dims,
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let Dims {
        batch, seq, heads, ..
    } = dims;
    let head_dim = dims.head_dim();
    let scale = 1.0 / (head_dim as f64).sqrt();
    let (_, probs) = attention(q, k, v, mask, dims);
    let mut dq = vec![0.0; q.len()];
    let mut dk = vec![0.0; k.len()];
    let mut dv = vec![0.0; v.len()];
    for b in 0..batch {
        for h in 0..heads {
            for i in 0..seq {
                // dP[i, j] = dO[i]·V[j]; dS = P ⊙ (dP - Σ_j dP·P)
                let dp: Vec<f64> = (0..seq)
                    .map(|j| {
                        (0..head_dim)
                            .map(|d| dout[dims.at(b, i, h, d)] * v[dims.at(b, j, h, d)])
                            .sum()
                    })
                    .collect();
                let p: Vec<f64> = (0..seq).map(|j| probs[dims.prob(b, h, i, j)]).collect();
                let row_dot: f64 = dp.iter().zip(&p).map(|(a, b)| a * b).sum();
                for j in 0..seq {
                    let ds = p[j] * (dp[j] - row_dot);
                    for d in 0..head_dim {
                        dq[dims.at(b, i, h, d)] += ds * k[dims.at(b, j, h, d)] * scale;
                        dk[dims.at(b, j, h, d)] += ds * q[dims.at(b, i, h, d)] * scale;
                        dv[dims.at(b, j, h, d)] += p[j] * dout[dims.at(b, i, h, d)];
                    }
                }
            }
        }
    }
    (dq, dk, dv)
}
