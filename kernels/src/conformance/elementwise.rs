//! Checks of bias add, GELU, tanh and the residual sums.
//!
//! Bounds, with `u = 2⁻²⁴`:
//! - bias add, add, accumulate: one rounding, `u·|want|`.
//! - bias gradient: a sum over `N` rows into the old value,
//!   `(N + 2)·u·(Σ|dout| + |dbias|)`. Small integers must match exactly.
//! - GELU: `GELU_POLYNOMIAL_ERROR·|x|` from Abramowitz and Stegun 7.1.26 plus
//!   `GELU_ROUNDINGS` roundings; its gradient likewise, times `|dout|`.
//! - tanh: `TANH_ROUNDINGS` roundings of a value near 1, as an absolute bound.

use super::harness::{
    Rng, UNIT_ROUNDOFF, assert_close, assert_exact, assert_gradient, assert_rejected,
    assert_within, dot, download, f64s, poisoned, upload,
};
use super::reference;
use crate::backend::Backend;

/// Largest error of `Φ(x)` from the erf polynomial: half of its 1.5e-7 erf bound.
const GELU_POLYNOMIAL_ERROR: f64 = 7.5e-8;

/// Roundings in evaluating `Φ(x)` relative to 1: the polynomial and `exp`
/// each contribute a few relative errors to the tail `q <= 1/2`.
const GELU_ROUNDINGS: f64 = 8.0;

/// Roundings in `tanh(x) = 1 - 2/(exp(2|x|) + 1)`, relative to 1.
const TANH_ROUNDINGS: f64 = 6.0;

/// Shapes for element-wise ops; the last one crosses the CPU chunk size.
const SHAPES: &[&[usize]] = &[&[1], &[7], &[3, 5], &[2, 3, 17], &[4, 4100]];

/// Row shapes `(N, C)` for row-wise ops, with leading dimensions flattened into N.
const ROW_SHAPES: &[&[usize]] = &[&[1, 1], &[3, 7], &[5, 33], &[2, 3, 64], &[300, 65]];

/// Checks `bias_add` and `bias_add_backward`.
pub fn check_bias_add(backend: &dyn Backend) {
    let mut rng = Rng::new(0xb1a5);
    for &dims in ROW_SHAPES {
        let channels = *dims.last().expect("row shapes have rank >= 1");
        let rows = dims.iter().product::<usize>() / channels;
        let x = rng.normal_vec(rows * channels, 1.0);
        let bias = rng.normal_vec(channels, 1.0);
        let mut out = poisoned(backend, dims);
        backend
            .bias_add(
                &upload(backend, &x, dims),
                &upload(backend, &bias, &[channels]),
                &mut out,
            )
            .expect("bias_add");
        let want: Vec<f64> = x
            .iter()
            .enumerate()
            .map(|(i, &x)| x as f64 + bias[i % channels] as f64)
            .collect();
        assert_close(
            &format!("bias_add {dims:?}"),
            &download(backend, &out),
            &want,
            0.0,
            UNIT_ROUNDOFF,
        );

        for exact in [false, true] {
            let (dout, initial) = if exact {
                (
                    rng.small_ints(rows * channels, 8),
                    rng.small_ints(channels, 8),
                )
            } else {
                (
                    rng.normal_vec(rows * channels, 1.0),
                    rng.normal_vec(channels, 1.0),
                )
            };
            let mut dbias = upload(backend, &initial, &[channels]);
            backend
                .bias_add_backward(&upload(backend, &dout, dims), &mut dbias)
                .expect("bias_add_backward");
            let (sums, magnitudes) = reference::column_sums(&f64s(&dout), channels);
            let want: Vec<f64> = sums
                .iter()
                .zip(&initial)
                .map(|(sum, &initial)| sum + initial as f64)
                .collect();
            let got = download(backend, &dbias);
            let case = format!("bias_add_backward {dims:?}");
            if exact {
                assert_exact(&case, &got, &want);
            } else {
                let bound: Vec<f64> = magnitudes
                    .iter()
                    .zip(&initial)
                    .map(|(mag, &initial)| {
                        (rows as f64 + 2.0) * UNIT_ROUNDOFF * (mag + (initial as f64).abs())
                    })
                    .collect();
                assert_within(&case, &got, &want, &bound);
            }
        }
    }

    // Finite differences of Σ dout·(x + bias) with respect to bias.
    let (rows, channels) = (3, 4);
    let x = f64s(&rng.normal_vec(rows * channels, 1.0));
    let dout = rng.normal_vec(rows * channels, 1.0);
    let bias = f64s(&rng.normal_vec(channels, 1.0));
    let mut dbias = backend.zeros(&[channels]).expect("zeros");
    backend
        .bias_add_backward(&upload(backend, &dout, &[rows, channels]), &mut dbias)
        .expect("bias_add_backward");
    let dout64 = f64s(&dout);
    let loss = |bias: &[f64]| {
        let out: Vec<f64> = x
            .iter()
            .enumerate()
            .map(|(i, x)| x + bias[i % channels])
            .collect();
        dot(&dout64, &out)
    };
    let (sums, magnitudes) = reference::column_sums(&dout64, channels);
    let bound: Vec<f64> = magnitudes
        .iter()
        .map(|mag| (rows as f64 + 2.0) * UNIT_ROUNDOFF * mag)
        .collect();
    assert_gradient(
        "bias_add_backward",
        &bias,
        loss,
        &sums,
        &download(backend, &dbias),
        &bound,
    );

    let x = upload(backend, &[0.0; 6], &[2, 3]);
    let mut out = poisoned(backend, &[2, 3]);
    let result = backend.bias_add(&x, &upload(backend, &[0.0; 2], &[2]), &mut out);
    assert_rejected(backend, result, "bias_add", &out);
}

/// Bound on `|gelu(x) error|`.
fn gelu_bound(x: f64, want: f64) -> f64 {
    x.abs() * (GELU_POLYNOMIAL_ERROR + GELU_ROUNDINGS * UNIT_ROUNDOFF) + UNIT_ROUNDOFF * want.abs()
}

/// Bound on `|dout·gelu'(x) error|`.
fn gelu_grad_bound(dout: f64, x: f64, want: f64) -> f64 {
    dout.abs() * (GELU_POLYNOMIAL_ERROR + GELU_ROUNDINGS * UNIT_ROUNDOFF * (1.0 + x.abs()))
        + UNIT_ROUNDOFF * want.abs()
}

/// Checks `gelu` and `gelu_backward`, including the 1e-6 accuracy that
/// `crate::math` documents.
pub fn check_gelu(backend: &dyn Backend) {
    let mut rng = Rng::new(0x6e1);
    for &dims in SHAPES {
        let len = dims.iter().product();
        let x = rng.normal_vec(len, 3.0);
        let dout = rng.normal_vec(len, 1.0);
        let x_tensor = upload(backend, &x, dims);
        let mut out = poisoned(backend, dims);
        backend.gelu(&x_tensor, &mut out).expect("gelu");
        let want: Vec<f64> = x.iter().map(|&x| reference::gelu(x as f64)).collect();
        let bound: Vec<f64> = x
            .iter()
            .zip(&want)
            .map(|(&x, &want)| gelu_bound(x as f64, want))
            .collect();
        assert_within(
            &format!("gelu {dims:?}"),
            &download(backend, &out),
            &want,
            &bound,
        );

        let mut dx = poisoned(backend, dims);
        backend
            .gelu_backward(&upload(backend, &dout, dims), &x_tensor, &mut dx)
            .expect("gelu_backward");
        let want: Vec<f64> = x
            .iter()
            .zip(&dout)
            .map(|(&x, &d)| d as f64 * reference::gelu_grad(x as f64))
            .collect();
        let bound: Vec<f64> = x
            .iter()
            .zip(&dout)
            .zip(&want)
            .map(|((&x, &d), &want)| gelu_grad_bound(d as f64, x as f64, want))
            .collect();
        assert_within(
            &format!("gelu_backward {dims:?}"),
            &download(backend, &dx),
            &want,
            &bound,
        );
    }

    // Absolute accuracy over a dense grid: within 1e-6 for |x| <= 8.
    let grid: Vec<f32> = (0..=16_000).map(|i| -8.0 + i as f32 * 1e-3).collect();
    let mut out = poisoned(backend, &[grid.len()]);
    backend
        .gelu(&upload(backend, &grid, &[grid.len()]), &mut out)
        .expect("gelu");
    let want: Vec<f64> = grid.iter().map(|&x| reference::gelu(x as f64)).collect();
    assert_close(
        "gelu on [-8, 8]",
        &download(backend, &out),
        &want,
        1e-6,
        0.0,
    );

    // Finite differences of Σ dout·gelu(x).
    let x = rng.normal_vec(9, 2.0);
    let dout = rng.normal_vec(9, 1.0);
    let mut dx = poisoned(backend, &[9]);
    backend
        .gelu_backward(
            &upload(backend, &dout, &[9]),
            &upload(backend, &x, &[9]),
            &mut dx,
        )
        .expect("gelu_backward");
    let (x64, dout64) = (f64s(&x), f64s(&dout));
    let analytic: Vec<f64> = x64
        .iter()
        .zip(&dout64)
        .map(|(&x, &d)| d * reference::gelu_grad(x))
        .collect();
    let bound: Vec<f64> = x64
        .iter()
        .zip(&dout64)
        .zip(&analytic)
        .map(|((&x, &d), &want)| gelu_grad_bound(d, x, want))
        .collect();
    let loss = |x: &[f64]| {
        dot(
            &dout64,
            &x.iter().map(|&x| reference::gelu(x)).collect::<Vec<_>>(),
        )
    };
    assert_gradient(
        "gelu_backward",
        &x64,
        loss,
        &analytic,
        &download(backend, &dx),
        &bound,
    );

    let mut out = poisoned(backend, &[4]);
    let result = backend.gelu(&upload(backend, &[0.0; 5], &[5]), &mut out);
    assert_rejected(backend, result, "gelu", &out);
}

/// Checks `tanh` and `tanh_backward`.
pub fn check_tanh(backend: &dyn Backend) {
    let mut rng = Rng::new(0x7a);
    for &dims in SHAPES {
        let len = dims.iter().product();
        let x = rng.normal_vec(len, 2.0);
        let dout = rng.normal_vec(len, 1.0);
        let mut out = poisoned(backend, dims);
        backend
            .tanh(&upload(backend, &x, dims), &mut out)
            .expect("tanh");
        let got_out = download(backend, &out);
        let want: Vec<f64> = x.iter().map(|&x| (x as f64).tanh()).collect();
        assert_close(
            &format!("tanh {dims:?}"),
            &got_out,
            &want,
            TANH_ROUNDINGS * UNIT_ROUNDOFF,
            0.0,
        );

        // The backward reads the f32 forward output, so compare against the formula on that output.
        let mut dx = poisoned(backend, dims);
        backend
            .tanh_backward(&upload(backend, &dout, dims), &out, &mut dx)
            .expect("tanh_backward");
        let want: Vec<f64> = dout
            .iter()
            .zip(&got_out)
            .map(|(&d, &y)| d as f64 * (1.0 - y as f64 * y as f64))
            .collect();
        let bound: Vec<f64> = dout
            .iter()
            .map(|&d| 4.0 * UNIT_ROUNDOFF * (d as f64).abs())
            .collect();
        assert_within(
            &format!("tanh_backward {dims:?}"),
            &download(backend, &dx),
            &want,
            &bound,
        );
    }

    // Finite differences of Σ dout·tanh(x); the f32 forward output adds
    // TANH_ROUNDINGS·u of error to 1 - out², times 2|out|.
    let x = rng.normal_vec(9, 1.5);
    let dout = rng.normal_vec(9, 1.0);
    let mut out = poisoned(backend, &[9]);
    backend
        .tanh(&upload(backend, &x, &[9]), &mut out)
        .expect("tanh");
    let mut dx = poisoned(backend, &[9]);
    backend
        .tanh_backward(&upload(backend, &dout, &[9]), &out, &mut dx)
        .expect("tanh_backward");
    let (x64, dout64) = (f64s(&x), f64s(&dout));
    let analytic: Vec<f64> = x64
        .iter()
        .zip(&dout64)
        .map(|(&x, &d)| d * (1.0 - x.tanh() * x.tanh()))
        .collect();
    let bound: Vec<f64> = dout64
        .iter()
        .map(|&d| (2.0 * TANH_ROUNDINGS + 4.0) * UNIT_ROUNDOFF * d.abs())
        .collect();
    let loss = |x: &[f64]| dot(&dout64, &x.iter().map(|x| x.tanh()).collect::<Vec<_>>());
    assert_gradient(
        "tanh_backward",
        &x64,
        loss,
        &analytic,
        &download(backend, &dx),
        &bound,
    );

    let mut out = poisoned(backend, &[2, 2]);
    let result = backend.tanh(&upload(backend, &[0.0; 4], &[4]), &mut out);
    assert_rejected(backend, result, "tanh", &out);
}

/// Checks `add` and `accumulate`.
pub fn check_residual(backend: &dyn Backend) {
    let mut rng = Rng::new(0xadd);
    for &dims in SHAPES {
        let len = dims.iter().product();
        let a = rng.normal_vec(len, 1.0);
        let b = rng.normal_vec(len, 1.0);
        let want: Vec<f64> = a
            .iter()
            .zip(&b)
            .map(|(&a, &b)| a as f64 + b as f64)
            .collect();

        let mut out = poisoned(backend, dims);
        backend
            .add(
                &upload(backend, &a, dims),
                &upload(backend, &b, dims),
                &mut out,
            )
            .expect("add");
        assert_close(
            &format!("add {dims:?}"),
            &download(backend, &out),
            &want,
            0.0,
            UNIT_ROUNDOFF,
        );

        let mut dst = upload(backend, &b, dims);
        backend
            .accumulate(&upload(backend, &a, dims), &mut dst)
            .expect("accumulate");
        assert_close(
            &format!("accumulate {dims:?}"),
            &download(backend, &dst),
            &want,
            0.0,
            UNIT_ROUNDOFF,
        );
    }

    let a = upload(backend, &[0.0; 6], &[2, 3]);
    let mut out = poisoned(backend, &[3, 2]);
    let result = backend.add(&a, &a, &mut out);
    assert_rejected(backend, result, "add", &out);
    let mut dst = poisoned(backend, &[6]);
    let result = backend.accumulate(&a, &mut dst);
    assert_rejected(backend, result, "accumulate", &dst);
}
