//! Checks of the losses and their gradients.
//!
//! Bounds, with `u = 2⁻²⁴`:
//! - cross-entropy: each row's log-sum-exp sums `V` exponentials, off by
//!   `(V + LOSS_ROUNDINGS)·u·(1 + |lse|)`; the loss adds the `N`-row mean;
//!   each gradient element is a probability with that relative error.
//! - MSE, BCE and pairwise losses: sums of `N` (or `P`) terms, off by
//!   `(N + LOSS_ROUNDINGS)·u·mean|term|`. Their gradients are a few
//!   roundings of each element's own terms.

use super::harness::{
    Rng, UNIT_ROUNDOFF, assert_gradient, assert_rejected, assert_within, download, f64s, poisoned,
    upload, upload_u32,
};
use super::reference;
use crate::backend::Backend;
use crate::tensor::Tensor;

/// Roundings beyond the long sums: `exp`, `ln`, the subtraction of the
/// target logit, the division by the count, and the factor `dloss`.
const LOSS_ROUNDINGS: f64 = 16.0;

/// Upstream gradient used by every backward check.
const DLOSS: f32 = 0.75;

fn scalar(backend: &dyn Backend, tensor: &Tensor) -> f32 {
    download(backend, tensor)[0]
}

/// (logits shape, ignore_index, fraction of targets ignored).
const CROSS_ENTROPY_CASES: &[(&[usize], u32, f64)] = &[
    (&[1, 1], u32::MAX, 0.0),
    (&[4, 11], u32::MAX, 0.25),
    (&[2, 3, 37], 3, 0.3),
    (&[70, 300], u32::MAX, 0.2),
    (&[5, 9], u32::MAX, 1.0),
];

/// Checks `cross_entropy` and its backward, including rows that are all ignored.
pub fn check_cross_entropy(backend: &dyn Backend) {
    let mut rng = Rng::new(0xce);
    for &(dims, ignore_index, ignored) in CROSS_ENTROPY_CASES {
        let vocab = *dims.last().expect("rank >= 1");
        let row_dims = &dims[..dims.len() - 1];
        let rows: usize = row_dims.iter().product();
        let logits = rng.normal_vec(rows * vocab, 3.0);
        let targets: Vec<u32> = (0..rows)
            .map(|_| {
                if rng.uniform() < ignored {
                    ignore_index
                } else {
                    rng.below(vocab) as u32
                }
            })
            .collect();
        let case = format!("{dims:?} ignore_index={ignore_index}");
        let (logits_t, targets_t) = (
            upload(backend, &logits, dims),
            upload_u32(backend, &targets, row_dims),
        );
        let logits64 = f64s(&logits);

        let mut loss = poisoned(backend, &[1]);
        let mut lse = poisoned(backend, row_dims);
        backend
            .cross_entropy(&logits_t, &targets_t, ignore_index, &mut loss, &mut lse)
            .expect("cross_entropy");
        let (want_loss, want_lse) =
            reference::cross_entropy(&logits64, &targets, ignore_index, vocab);
        let lse_error: Vec<f64> = want_lse
            .iter()
            .map(|lse| (vocab as f64 + LOSS_ROUNDINGS) * UNIT_ROUNDOFF * (1.0 + lse.abs()))
            .collect();
        assert_within(
            &format!("cross_entropy logsumexp {case}"),
            &download(backend, &lse),
            &want_lse,
            &lse_error,
        );
        let kept_rows: Vec<usize> = (0..rows).filter(|&r| targets[r] != ignore_index).collect();
        let loss_bound = if kept_rows.is_empty() {
            0.0
        } else {
            let mean_terms = kept_rows
                .iter()
                .map(|&r| {
                    lse_error[r] + UNIT_ROUNDOFF * logits64[r * vocab + targets[r] as usize].abs()
                })
                .sum::<f64>();
            let mean_abs = kept_rows
                .iter()
                .map(|&r| want_lse[r].abs() + logits64[r * vocab + targets[r] as usize].abs())
                .sum::<f64>();
            (mean_terms + (kept_rows.len() as f64 + 2.0) * UNIT_ROUNDOFF * mean_abs)
                / kept_rows.len() as f64
        };
        assert_within(
            &format!("cross_entropy loss {case}"),
            &[scalar(backend, &loss)],
            &[want_loss],
            &[loss_bound],
        );

        let mut dlogits = poisoned(backend, dims);
        backend
            .cross_entropy_backward(
                &upload(backend, &[DLOSS], &[1]),
                &logits_t,
                &targets_t,
                ignore_index,
                &lse,
                &mut dlogits,
            )
            .expect("cross_entropy_backward");
        let want = reference::cross_entropy_backward(
            DLOSS as f64,
            &logits64,
            &targets,
            ignore_index,
            vocab,
        );
        let factor = if kept_rows.is_empty() {
            0.0
        } else {
            DLOSS as f64 / kept_rows.len() as f64
        };
        let bound: Vec<f64> = (0..rows * vocab)
            .map(|i| {
                let row = i / vocab;
                let probability = (logits64[i] - want_lse[row]).exp();
                // The f32 factor and the subtraction of the one-hot term add two roundings of |factor|.
                let probability_error = probability
                    * (lse_error[row] + LOSS_ROUNDINGS * UNIT_ROUNDOFF * (1.0 + logits64[i].abs()));
                factor * (probability_error + 2.0 * UNIT_ROUNDOFF)
            })
            .collect();
        let got = download(backend, &dlogits);
        assert_within(
            &format!("cross_entropy_backward {case}"),
            &got,
            &want,
            &bound,
        );

        if dims == [4, 11] {
            let loss = |logits: &[f64]| {
                DLOSS as f64 * reference::cross_entropy(logits, &targets, ignore_index, vocab).0
            };
            assert_gradient(
                "cross_entropy_backward",
                &logits64,
                loss,
                &want,
                &got,
                &bound,
            );
        }
    }

    let logits = upload(backend, &[0.0; 6], &[2, 3]);
    let mut loss = poisoned(backend, &[1]);
    let mut lse = poisoned(backend, &[2]);
    let result = backend.cross_entropy(
        &logits,
        &upload_u32(backend, &[0, 1, 2], &[3]),
        u32::MAX,
        &mut loss,
        &mut lse,
    );
    assert_rejected(backend, result, "cross_entropy", &loss);
}

/// Shapes for MSE and BCE; the last one crosses the CPU chunk size.
const SHAPES: &[&[usize]] = &[&[1], &[7], &[3, 5], &[4, 4100]];

/// Checks `mse` and its backward.
pub fn check_mse(backend: &dyn Backend) {
    let mut rng = Rng::new(0x35e);
    for &dims in SHAPES {
        let len: usize = dims.iter().product();
        let (pred, target) = (rng.normal_vec(len, 1.0), rng.normal_vec(len, 1.0));
        let (pred64, target64) = (f64s(&pred), f64s(&target));
        let (pred_t, target_t) = (upload(backend, &pred, dims), upload(backend, &target, dims));
        let case = format!("{dims:?}");

        let mut loss = poisoned(backend, &[1]);
        backend.mse(&pred_t, &target_t, &mut loss).expect("mse");
        let want = reference::mse(&pred64, &target64);
        // Every term is non-negative, so the sum of absolute terms is the sum itself.
        let bound = (len as f64 + LOSS_ROUNDINGS) * UNIT_ROUNDOFF * want;
        assert_within(
            &format!("mse {case}"),
            &[scalar(backend, &loss)],
            &[want],
            &[bound],
        );

        let mut dpred = poisoned(backend, dims);
        backend
            .mse_backward(
                &upload(backend, &[DLOSS], &[1]),
                &pred_t,
                &target_t,
                &mut dpred,
            )
            .expect("mse_backward");
        let want = reference::mse_backward(DLOSS as f64, &pred64, &target64);
        let bound: Vec<f64> = want.iter().map(|g| 4.0 * UNIT_ROUNDOFF * g.abs()).collect();
        let got = download(backend, &dpred);
        assert_within(&format!("mse_backward {case}"), &got, &want, &bound);
        if len == 7 {
            let loss = |pred: &[f64]| DLOSS as f64 * reference::mse(pred, &target64);
            assert_gradient("mse_backward", &pred64, loss, &want, &got, &bound);
        }
    }

    let mut loss = poisoned(backend, &[1]);
    let result = backend.mse(
        &upload(backend, &[0.0; 3], &[3]),
        &upload(backend, &[0.0; 4], &[4]),
        &mut loss,
    );
    assert_rejected(backend, result, "mse", &loss);
}

/// Checks `bce_with_logits` and its backward with soft and hard targets.
pub fn check_bce_with_logits(backend: &dyn Backend) {
    let mut rng = Rng::new(0xbce);
    for &dims in SHAPES {
        let len: usize = dims.iter().product();
        let logits = rng.normal_vec(len, 4.0);
        let targets: Vec<f32> = (0..len)
            .map(|i| {
                if i % 3 == 0 {
                    (i % 2) as f32
                } else {
                    rng.uniform() as f32
                }
            })
            .collect();
        let (logits64, targets64) = (f64s(&logits), f64s(&targets));
        let (logits_t, targets_t) = (
            upload(backend, &logits, dims),
            upload(backend, &targets, dims),
        );
        let case = format!("{dims:?}");

        let mut loss = poisoned(backend, &[1]);
        backend
            .bce_with_logits(&logits_t, &targets_t, &mut loss)
            .expect("bce_with_logits");
        let want = reference::bce_with_logits(&logits64, &targets64);
        let mean_abs = logits64
            .iter()
            .zip(&targets64)
            .map(|(&x, &y)| x.abs() + (x * y).abs() + 1.0)
            .sum::<f64>()
            / len as f64;
        let bound = (len as f64 + LOSS_ROUNDINGS) * UNIT_ROUNDOFF * mean_abs;
        assert_within(
            &format!("bce_with_logits {case}"),
            &[scalar(backend, &loss)],
            &[want],
            &[bound],
        );

        let mut dlogits = poisoned(backend, dims);
        backend
            .bce_with_logits_backward(
                &upload(backend, &[DLOSS], &[1]),
                &logits_t,
                &targets_t,
                &mut dlogits,
            )
            .expect("bce_with_logits_backward");
        let want = reference::bce_with_logits_backward(DLOSS as f64, &logits64, &targets64);
        // sigmoid costs exp, an add and a division; the difference and the factor two more.
        let bound: Vec<f64> = vec![8.0 * UNIT_ROUNDOFF * DLOSS as f64 / len as f64; len];
        let got = download(backend, &dlogits);
        assert_within(
            &format!("bce_with_logits_backward {case}"),
            &got,
            &want,
            &bound,
        );
        if len == 7 {
            let loss =
                |logits: &[f64]| DLOSS as f64 * reference::bce_with_logits(logits, &targets64);
            assert_gradient(
                "bce_with_logits_backward",
                &logits64,
                loss,
                &want,
                &got,
                &bound,
            );
        }
    }

    let mut loss = poisoned(backend, &[1]);
    let result = backend.bce_with_logits(
        &upload(backend, &[0.0; 3], &[3]),
        &upload(backend, &[0.0; 2], &[2]),
        &mut loss,
    );
    assert_rejected(backend, result, "bce_with_logits", &loss);
}

/// Checks `pairwise_logistic` and its backward, including zero total weight.
pub fn check_pairwise_logistic(backend: &dyn Backend) {
    let mut rng = Rng::new(0x9a1);
    for (items, pair_count, zero_weights) in [
        (2, 1, false),
        (9, 20, false),
        (50, 400, false),
        (4, 3, true),
    ] {
        let scores = rng.normal_vec(items, 2.0);
        let pairs: Vec<u32> = (0..2 * pair_count)
            .map(|_| rng.below(items) as u32)
            .collect();
        let weights: Vec<f32> = if zero_weights {
            vec![0.0; pair_count]
        } else {
            rng.uniform_vec(pair_count, 0.0, 2.0)
        };
        let (scores64, weights64) = (f64s(&scores), f64s(&weights));
        let scores_t = upload(backend, &scores, &[items]);
        let pairs_t = upload_u32(backend, &pairs, &[pair_count, 2]);
        let weights_t = upload(backend, &weights, &[pair_count]);
        let case = format!("N={items} P={pair_count}");

        let mut loss = poisoned(backend, &[1]);
        backend
            .pairwise_logistic(&scores_t, &pairs_t, &weights_t, &mut loss)
            .expect("pairwise_logistic");
        let want = reference::pairwise_logistic(&scores64, &pairs, &weights64);
        let weight_sum: f64 = weights64.iter().sum();
        let mean_abs = if weight_sum == 0.0 {
            0.0
        } else {
            let terms: f64 = pairs
                .chunks_exact(2)
                .zip(&weights64)
                .map(|(pair, w)| {
                    w * ((scores64[pair[1] as usize] - scores64[pair[0] as usize]).abs() + 1.0)
                })
                .sum();
            terms / weight_sum
        };
        let bound = (pair_count as f64 + LOSS_ROUNDINGS) * UNIT_ROUNDOFF * mean_abs;
        assert_within(
            &format!("pairwise_logistic {case}"),
            &[scalar(backend, &loss)],
            &[want],
            &[bound],
        );

        let mut dscores = poisoned(backend, &[items]);
        backend
            .pairwise_logistic_backward(
                &upload(backend, &[DLOSS], &[1]),
                &scores_t,
                &pairs_t,
                &weights_t,
                &mut dscores,
            )
            .expect("pairwise_logistic_backward");
        let want =
            reference::pairwise_logistic_backward(DLOSS as f64, &scores64, &pairs, &weights64);
        // Each element sums the gradients of the pairs that touch it.
        let mut magnitude = vec![0.0; items];
        if weight_sum != 0.0 {
            for (pair, w) in pairs.chunks_exact(2).zip(&weights64) {
                for &item in pair {
                    magnitude[item as usize] += DLOSS as f64 * w / weight_sum;
                }
            }
        }
        let bound: Vec<f64> = magnitude
            .iter()
            .map(|mag| (pair_count as f64 + LOSS_ROUNDINGS) * UNIT_ROUNDOFF * mag)
            .collect();
        let got = download(backend, &dscores);
        assert_within(
            &format!("pairwise_logistic_backward {case}"),
            &got,
            &want,
            &bound,
        );
        if items == 9 {
            let loss = |scores: &[f64]| {
                DLOSS as f64 * reference::pairwise_logistic(scores, &pairs, &weights64)
            };
            assert_gradient(
                "pairwise_logistic_backward",
                &scores64,
                loss,
                &want,
                &got,
                &bound,
            );
        }
    }

    let mut loss = poisoned(backend, &[1]);
    let scores = upload(backend, &[0.0; 3], &[3]);
    let result = backend.pairwise_logistic(
        &scores,
        &upload_u32(backend, &[0, 1], &[1, 2]),
        &upload(backend, &[1.0; 2], &[2]),
        &mut loss,
    );
    assert_rejected(backend, result, "pairwise_logistic", &loss);
}
