//! Checks of `dropout` and `dropout_backward` against the Philox mask that
//! `crate::philox` specifies, so every backend drops the same elements.
//!
//! Bound: exact. A kept element is `x·scale` with the f32 `scale` from
//! `dropout_scale`, one correctly rounded product on every backend.

use super::harness::{Rng, assert_gradient, dot, download, f64s, poisoned, upload};
use crate::backend::Backend;
use crate::error::KernelError;
use crate::philox::{dropout_keep, dropout_scale, dropout_threshold};

/// Shapes; the last one crosses the CPU chunk size.
const SHAPES: &[&[usize]] = &[&[1], &[7], &[3, 5], &[2, 3, 17], &[4, 4100]];

/// Returns the expected output: `x·scale` where the specified mask keeps an element, else 0.
fn expected(x: &[f32], p: f32, seed: u64) -> Vec<f32> {
    let (threshold, scale) = (dropout_threshold(p), dropout_scale(p));
    x.iter()
        .enumerate()
        .map(|(i, &x)| {
            if dropout_keep(seed, threshold, i as u64) {
                x * scale
            } else {
                0.0
            }
        })
        .collect()
}

fn assert_bits(case: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{case}: length");
    for (index, (got, want)) in got.iter().zip(want).enumerate() {
        assert_eq!(
            got.to_bits(),
            want.to_bits(),
            "{case}: element {index} is {got}, expected {want}"
        );
    }
}

/// Checks the forward and backward masks, the keep rate, seeds and argument checks.
pub fn check_dropout(backend: &dyn Backend) {
    let mut rng = Rng::new(0xd20);
    for &dims in SHAPES {
        let len: usize = dims.iter().product();
        for (p, seed) in [
            (0.0, 1u64),
            (0.1, 2),
            (0.5, 0xFFFF_FFFF_0000_0001),
            (0.9, 4),
        ] {
            let x = rng.normal_vec(len, 1.0);
            let x_tensor = upload(backend, &x, dims);
            let mut out = poisoned(backend, dims);
            backend
                .dropout(&x_tensor, p, seed, &mut out)
                .expect("dropout");
            let want = expected(&x, p, seed);
            assert_bits(
                &format!("dropout {dims:?} p={p} seed={seed:#x}"),
                &download(backend, &out),
                &want,
            );

            let mut dx = poisoned(backend, dims);
            backend
                .dropout_backward(&x_tensor, p, seed, &mut dx)
                .expect("dropout_backward");
            assert_bits(
                &format!("dropout_backward {dims:?} p={p} seed={seed:#x}"),
                &download(backend, &dx),
                &want,
            );
        }
    }

    // Keep rate of the specified mask over 16400 elements: within 5 standard deviations of 1 - p.
    let len = 16_400;
    let ones = upload(backend, &vec![1.0; len], &[len]);
    let mut out = poisoned(backend, &[len]);
    for p in [0.1f32, 0.5] {
        backend.dropout(&ones, p, 77, &mut out).expect("dropout");
        let kept = download(backend, &out)
            .iter()
            .filter(|&&value| value != 0.0)
            .count() as f64
            / len as f64;
        let std = ((p * (1.0 - p)) as f64 / len as f64).sqrt();
        assert!(
            (kept - (1.0 - p as f64)).abs() < 5.0 * std,
            "dropout p={p} kept {kept} of the elements"
        );
    }

    // Different seeds give different masks.
    let mut other = poisoned(backend, &[len]);
    backend
        .dropout(&ones, 0.5, 78, &mut other)
        .expect("dropout");
    backend.dropout(&ones, 0.5, 77, &mut out).expect("dropout");
    assert_ne!(
        download(backend, &out),
        download(backend, &other),
        "seeds 77 and 78 gave the same mask"
    );

    // Finite differences of Σ dout·dropout(x), which is linear in x.
    let (p, seed) = (0.3f32, 9u64);
    let x = f64s(&rng.normal_vec(8, 1.0));
    let dout = rng.normal_vec(8, 1.0);
    let mut dx = poisoned(backend, &[8]);
    backend
        .dropout_backward(&upload(backend, &dout, &[8]), p, seed, &mut dx)
        .expect("dropout_backward");
    let (threshold, scale) = (dropout_threshold(p), dropout_scale(p) as f64);
    let keep: Vec<f64> = (0..8)
        .map(|i| {
            if dropout_keep(seed, threshold, i) {
                scale
            } else {
                0.0
            }
        })
        .collect();
    let dout64 = f64s(&dout);
    let analytic: Vec<f64> = dout64.iter().zip(&keep).map(|(d, k)| d * k).collect();
    let loss = |x: &[f64]| {
        dot(
            &dout64,
            &x.iter().zip(&keep).map(|(x, k)| x * k).collect::<Vec<_>>(),
        )
    };
    let bound: Vec<f64> = analytic
        .iter()
        .map(|g| g.abs() * super::harness::UNIT_ROUNDOFF)
        .collect();
    assert_gradient(
        "dropout_backward",
        &x,
        loss,
        &analytic,
        &download(backend, &dx),
        &bound,
    );

    for p in [1.0f32, -0.1, f32::NAN] {
        let result = backend.dropout(&ones, p, 1, &mut out);
        assert!(
            matches!(
                result,
                Err(KernelError::InvalidArgument {
                    op: "dropout",
                    argument: "p",
                    ..
                })
            ),
            "dropout accepted p={p}"
        );
    }
}
