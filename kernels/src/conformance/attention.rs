//! Checks of `attention` and `attention_backward`, with padded keys and a
//! sequence whose keys are all padding.
//!
//! Bound: a score is a `D`-term dot product, off by `(D + 2)·u·|S|abs` where
//! `|S|abs = Σ|q·k|/sqrt(D)`. The softmax turns absolute score errors into
//! relative probability errors, including that of the row maximum and the
//! `T`-term sum, so every probability is within `E·P` with
//! `E = (D + T + ATTENTION_ROUNDINGS)·u·(1 + 3·max|S|abs)`. Outputs and
//! gradients are sums of products of such values, and each is bounded by `E`
//! times its sum of absolute terms, which `magnitudes` computes.

use super::harness::{
    Rng, UNIT_ROUNDOFF, assert_gradient, assert_rejected, assert_within, dot, download, f64s,
    poisoned, upload, upload_u32,
};
use super::reference::{self, AttentionDims};
use crate::backend::Backend;

/// Roundings beyond the `D`- and `T`-term sums: the scale, `exp`, the
/// reciprocal of the sum, and the products in the backward.
const ATTENTION_ROUNDINGS: f64 = 16.0;

/// (B, T, C, H).
const CASES: &[(usize, usize, usize, usize)] =
    &[(1, 1, 4, 1), (2, 5, 8, 2), (3, 17, 24, 3), (2, 40, 64, 4)];

/// Padding mask with the last sequence fully padded when the batch has
/// more than two sequences, and the others padded at a random tail.
fn make_mask(rng: &mut Rng, batch: usize, seq: usize) -> Vec<u32> {
    let mut mask = Vec::with_capacity(batch * seq);
    for b in 0..batch {
        let real = if batch > 2 && b == batch - 1 {
            0
        } else {
            1 + rng.below(seq)
        };
        mask.extend((0..seq).map(|t| u32::from(t < real)));
    }
    mask
}

/// Sums of absolute terms for each output, and the score factor `E`.
struct Magnitudes {
    error_factor: f64,
    out: Vec<f64>,
    dq: Vec<f64>,
    dk: Vec<f64>,
    dv: Vec<f64>,
}

fn magnitudes(
    dout: &[f64],
    q: &[f64],
    k: &[f64],
    v: &[f64],
    probs: &[f64],
    dims: AttentionDims,
) -> Magnitudes {
    let AttentionDims {
        batch,
        seq,
        channels,
        heads,
    } = dims;
    let head_dim = channels / heads;
    let scale = 1.0 / (head_dim as f64).sqrt();
    let at = |b: usize, t: usize, h: usize, d: usize| (b * seq + t) * channels + h * head_dim + d;
    let prob =
        |b: usize, h: usize, i: usize, j: usize| probs[((b * heads + h) * seq + i) * seq + j];
    let mut max_score = 0.0f64;
    let (mut out, mut dq, mut dk, mut dv) = (
        vec![0.0; q.len()],
        vec![0.0; q.len()],
        vec![0.0; q.len()],
        vec![0.0; q.len()],
    );
    for b in 0..batch {
        for h in 0..heads {
            for i in 0..seq {
                let dp: Vec<f64> = (0..seq)
                    .map(|j| {
                        (0..head_dim)
                            .map(|d| (dout[at(b, i, h, d)] * v[at(b, j, h, d)]).abs())
                            .sum()
                    })
                    .collect();
                let row_dot: f64 = (0..seq).map(|j| prob(b, h, i, j) * dp[j]).sum();
                for j in 0..seq {
                    let score: f64 = (0..head_dim)
                        .map(|d| (q[at(b, i, h, d)] * k[at(b, j, h, d)]).abs())
                        .sum::<f64>()
                        * scale;
                    max_score = max_score.max(score);
                    let p = prob(b, h, i, j);
                    let ds = p * (dp[j] + row_dot);
                    for d in 0..head_dim {
                        out[at(b, i, h, d)] += p * v[at(b, j, h, d)].abs();
                        dq[at(b, i, h, d)] += ds * k[at(b, j, h, d)].abs() * scale;
                        dk[at(b, j, h, d)] += ds * q[at(b, i, h, d)].abs() * scale;
                        dv[at(b, j, h, d)] += p * dout[at(b, i, h, d)].abs();
                    }
                }
            }
        }
    }
    let error_factor = (head_dim as f64 + seq as f64 + ATTENTION_ROUNDINGS)
        * UNIT_ROUNDOFF
        * (1.0 + 3.0 * max_score);
    Magnitudes {
        error_factor,
        out,
        dq,
        dk,
        dv,
    }
}

fn scaled(magnitude: &[f64], factor: f64) -> Vec<f64> {
    magnitude.iter().map(|m| m * factor).collect()
}

/// Checks attention and its backward against the reference at every case,
/// and against finite differences at the smallest multi-head case.
pub fn check_attention(backend: &dyn Backend) {
    let mut rng = Rng::new(0xa77);
    for &(batch, seq, channels, heads) in CASES {
        let dims = AttentionDims {
            batch,
            seq,
            channels,
            heads,
        };
        let btc = [batch, seq, channels];
        let len = batch * seq * channels;
        let (q, k, v, dout) = (
            rng.normal_vec(len, 1.0),
            rng.normal_vec(len, 1.0),
            rng.normal_vec(len, 1.0),
            rng.normal_vec(len, 1.0),
        );
        let mask = make_mask(&mut rng, batch, seq);
        let (q64, k64, v64, dout64) = (f64s(&q), f64s(&k), f64s(&v), f64s(&dout));
        let case = format!("(B, T, C, H) = ({batch}, {seq}, {channels}, {heads})");

        let (q_t, k_t, v_t) = (
            upload(backend, &q, &btc),
            upload(backend, &k, &btc),
            upload(backend, &v, &btc),
        );
        let mut out = poisoned(backend, &btc);
        let mut probs = poisoned(backend, &[batch, heads, seq, seq]);
        backend
            .attention(
                &q_t,
                &k_t,
                &v_t,
                &upload_u32(backend, &mask, &[batch, seq]),
                heads,
                &mut out,
                &mut probs,
            )
            .expect("attention");

        let (want_out, want_probs) = reference::attention(&q64, &k64, &v64, &mask, dims);
        let mags = magnitudes(&dout64, &q64, &k64, &v64, &want_probs, dims);
        let e = mags.error_factor;
        assert_within(
            &format!("attention probs {case}"),
            &download(backend, &probs),
            &want_probs,
            &scaled(&want_probs, e),
        );
        assert_within(
            &format!("attention out {case}"),
            &download(backend, &out),
            &want_out,
            &scaled(&mags.out, e),
        );

        let (mut dq, mut dk, mut dv) = (
            poisoned(backend, &btc),
            poisoned(backend, &btc),
            poisoned(backend, &btc),
        );
        backend
            .attention_backward(
                &upload(backend, &dout, &btc),
                &q_t,
                &k_t,
                &v_t,
                &probs,
                heads,
                &mut dq,
                &mut dk,
                &mut dv,
            )
            .expect("attention_backward");
        let (want_dq, want_dk, want_dv) =
            reference::attention_backward(&dout64, &q64, &k64, &v64, &mask, dims);
        let (got_dq, got_dk, got_dv) = (
            download(backend, &dq),
            download(backend, &dk),
            download(backend, &dv),
        );
        assert_within(
            &format!("attention_backward dq {case}"),
            &got_dq,
            &want_dq,
            &scaled(&mags.dq, e),
        );
        assert_within(
            &format!("attention_backward dk {case}"),
            &got_dk,
            &want_dk,
            &scaled(&mags.dk, e),
        );
        assert_within(
            &format!("attention_backward dv {case}"),
            &got_dv,
            &want_dv,
            &scaled(&mags.dv, e),
        );

        if (batch, seq, channels, heads) == (2, 5, 8, 2) {
            let forward = |q: &[f64], k: &[f64], v: &[f64]| {
                dot(&dout64, &reference::attention(q, k, v, &mask, dims).0)
            };
            assert_gradient(
                "attention_backward dq",
                &q64,
                |q| forward(q, &k64, &v64),
                &want_dq,
                &got_dq,
                &scaled(&mags.dq, e),
            );
            assert_gradient(
                "attention_backward dk",
                &k64,
                |k| forward(&q64, k, &v64),
                &want_dk,
                &got_dk,
                &scaled(&mags.dk, e),
            );
            assert_gradient(
                "attention_backward dv",
                &v64,
                |v| forward(&q64, &k64, v),
                &want_dv,
                &got_dv,
                &scaled(&mags.dv, e),
            );
        }
    }
    check_rejects(backend);
}

fn check_rejects(backend: &dyn Backend) {
    let btc = [2, 3, 4];
    let x = upload(backend, &[0.0; 24], &btc);
    let mut out = poisoned(backend, &btc);
    let mut probs = poisoned(backend, &[2, 2, 3, 3]);
    let wrong_mask = upload_u32(backend, &[1; 3], &[1, 3]);
    let result = backend.attention(&x, &x, &x, &wrong_mask, 2, &mut out, &mut probs);
    assert_rejected(backend, result, "attention", &out);
    let mask = upload_u32(backend, &[1; 6], &[2, 3]);
    let mut wrong_probs = poisoned(backend, &[2, 1, 3, 3]);
    let result = backend.attention(&x, &x, &x, &mask, 2, &mut out, &mut wrong_probs);
    assert_rejected(backend, result, "attention", &out);
}
