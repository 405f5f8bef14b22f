//! Checks of `layer_norm` and `layer_norm_backward`.
//!
//! Bound: each row's mean and variance are sums of `C` terms, so with
//! `K = C + LAYER_NORM_ROUNDINGS` the normalized value `xhat` is off by at
//! most `K·u·(|xhat| + A)`, where `A = mean|x|·rstd` grows when the row mean
//! is large against its spread and `x - mean` cancels. The outputs inherit
//! that error through `gamma`, and the gradients through sums over `C`
//! channels or `N` rows. The bound functions below spell out each magnitude.

use super::harness::{
    Rng, UNIT_ROUNDOFF, assert_gradient, assert_rejected, assert_within, dot, download, f64s,
    poisoned, upload,
};
use super::reference;
use crate::backend::Backend;
use crate::tensor::Tensor;

/// Roundings beyond the `C`-term sums: the divisions, the square root, the
/// reciprocal, and the scale and shift.
const LAYER_NORM_ROUNDINGS: f64 = 12.0;

/// `(N, C)` shapes with leading dimensions flattened into N; the last one
/// crosses the CPU row-block size.
const SHAPES: &[&[usize]] = &[&[1, 1], &[3, 7], &[5, 33], &[2, 3, 64], &[130, 300]];

/// Per-row statistics the bounds need.
struct RowStats {
    xhat: Vec<f64>,
    /// `mean|x|·rstd` per row.
    cancellation: Vec<f64>,
    rstd: Vec<f64>,
}

fn row_stats(x: &[f64], channels: usize, eps: f64) -> RowStats {
    // With gamma = 1 and beta = 0 the output is xhat itself.
    let (xhat, _, rstd) = reference::layer_norm(x, &vec![1.0; channels], &vec![0.0; channels], eps);
    let cancellation = x
        .chunks_exact(channels)
        .zip(&rstd)
        .map(|(row, rstd)| row.iter().map(|v| v.abs()).sum::<f64>() / channels as f64 * rstd)
        .collect();
    RowStats {
        xhat,
        cancellation,
        rstd,
    }
}

/// Runs the forward on the backend and returns `(out, mean, rstd)`.
fn run_forward(
    backend: &dyn Backend,
    x: &Tensor,
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
    dims: &[usize],
) -> [Tensor; 3] {
    let channels = gamma.len();
    let rows_dims = &dims[..dims.len() - 1];
    let mut out = poisoned(backend, dims);
    let mut mean = poisoned(backend, rows_dims);
    let mut rstd = poisoned(backend, rows_dims);
    let (gamma, beta) = (
        upload(backend, gamma, &[channels]),
        upload(backend, beta, &[channels]),
    );
    backend
        .layer_norm(x, &gamma, &beta, eps, &mut out, &mut mean, &mut rstd)
        .expect("layer_norm");
    [out, mean, rstd]
}

/// Checks `layer_norm` and its backward against the reference, with a small
/// and a large `eps`, on rows whose mean is large against their spread.
pub fn check_layer_norm(backend: &dyn Backend) {
    let mut rng = Rng::new(0x1a7e);
    for &dims in SHAPES {
        for eps in [1e-5f32, 0.5] {
            check_case(backend, &mut rng, dims, eps);
        }
    }
    check_gradients(backend, &mut rng);

    let x = upload(backend, &[0.0; 6], &[2, 3]);
    let (gamma, beta) = (
        upload(backend, &[1.0; 3], &[3]),
        upload(backend, &[0.0; 3], &[3]),
    );
    let mut out = poisoned(backend, &[2, 3]);
    let (mut mean, mut rstd) = (poisoned(backend, &[3]), poisoned(backend, &[2]));
    let result = backend.layer_norm(&x, &gamma, &beta, 1e-5, &mut out, &mut mean, &mut rstd);
    assert_rejected(backend, result, "layer_norm", &out);
}

fn check_case(backend: &dyn Backend, rng: &mut Rng, dims: &[usize], eps: f32) {
    let channels = *dims.last().expect("rank >= 1");
    let len: usize = dims.iter().product();
    let rows = len / channels;
    let x: Vec<f32> = rng.normal_vec(len, 3.0).iter().map(|v| v + 2.0).collect();
    let gamma = rng.normal_vec(channels, 1.0);
    let beta = rng.normal_vec(channels, 1.0);
    let dout = rng.normal_vec(len, 1.0);
    let (dgamma_initial, dbeta_initial) =
        (rng.normal_vec(channels, 1.0), rng.normal_vec(channels, 1.0));
    let case = format!("{dims:?} eps={eps}");
    let k = channels as f64 + LAYER_NORM_ROUNDINGS;

    let (x64, gamma64, beta64, dout64) = (f64s(&x), f64s(&gamma), f64s(&beta), f64s(&dout));
    let stats = row_stats(&x64, channels, eps as f64);
    let (want_out, want_mean, want_rstd) =
        reference::layer_norm(&x64, &gamma64, &beta64, eps as f64);

    let x_tensor = upload(backend, &x, dims);
    let [out, mean, rstd] = run_forward(backend, &x_tensor, &gamma, &beta, eps, dims);
    let out_bound: Vec<f64> = (0..len)
        .map(|i| {
            let (row, col) = (i / channels, i % channels);
            k * UNIT_ROUNDOFF
                * (gamma64[col].abs() * (stats.xhat[i].abs() + stats.cancellation[row])
                    + beta64[col].abs())
        })
        .collect();
    assert_within(
        &format!("layer_norm out {case}"),
        &download(backend, &out),
        &want_out,
        &out_bound,
    );
    let mean_bound: Vec<f64> = (0..rows)
        .map(|r| k * UNIT_ROUNDOFF * stats.cancellation[r] / stats.rstd[r])
        .collect();
    assert_within(
        &format!("layer_norm mean {case}"),
        &download(backend, &mean),
        &want_mean,
        &mean_bound,
    );
    let rstd_bound: Vec<f64> = (0..rows)
        .map(|r| k * UNIT_ROUNDOFF * stats.rstd[r] * (1.0 + 2.0 * stats.cancellation[r]))
        .collect();
    assert_within(
        &format!("layer_norm rstd {case}"),
        &download(backend, &rstd),
        &want_rstd,
        &rstd_bound,
    );

    let mut dx = poisoned(backend, dims);
    let mut dgamma = upload(backend, &dgamma_initial, &[channels]);
    let mut dbeta = upload(backend, &dbeta_initial, &[channels]);
    let gamma_tensor = upload(backend, &gamma, &[channels]);
    backend
        .layer_norm_backward(
            &upload(backend, &dout, dims),
            &x_tensor,
            &gamma_tensor,
            &mean,
            &rstd,
            &mut dx,
            &mut dgamma,
            &mut dbeta,
        )
        .expect("layer_norm_backward");
    let (want_dx, want_dgamma, want_dbeta) =
        reference::layer_norm_backward(&dout64, &x64, &gamma64, eps as f64);
    let bounds = backward_bounds(&dout64, &gamma64, &stats, channels);
    assert_within(
        &format!("layer_norm_backward dx {case}"),
        &download(backend, &dx),
        &want_dx,
        &bounds.dx,
    );

    let add = |want: &[f64], initial: &[f32]| -> Vec<f64> {
        want.iter()
            .zip(initial)
            .map(|(w, &i)| w + i as f64)
            .collect()
    };
    let with_initial = |bound: &[f64], initial: &[f32]| -> Vec<f64> {
        bound
            .iter()
            .zip(initial)
            .map(|(b, &i)| b + 2.0 * UNIT_ROUNDOFF * (i as f64).abs())
            .collect()
    };
    assert_within(
        &format!("layer_norm_backward dgamma {case}"),
        &download(backend, &dgamma),
        &add(&want_dgamma, &dgamma_initial),
        &with_initial(&bounds.dgamma, &dgamma_initial),
    );
    assert_within(
        &format!("layer_norm_backward dbeta {case}"),
        &download(backend, &dbeta),
        &add(&want_dbeta, &dbeta_initial),
        &with_initial(&bounds.dbeta, &dbeta_initial),
    );
}

struct BackwardBounds {
    dx: Vec<f64>,
    dgamma: Vec<f64>,
    dbeta: Vec<f64>,
}

/// Error bounds for the backward, with `g = dout·gamma`:
/// `dx` error <= `K·u·rstd·(1 + A)·(|g| + mean|g| + (1 + |xhat|)·(mean|g·xhat| + mean|g|))`,
/// `dgamma` <= `(N + K)·u·(1 + A)·Σ_rows |dout|·(1 + |xhat|)`, `dbeta` <= `(N + 2)·u·Σ_rows |dout|`.
fn backward_bounds(
    dout: &[f64],
    gamma: &[f64],
    stats: &RowStats,
    channels: usize,
) -> BackwardBounds {
    let rows = dout.len() / channels;
    let k = channels as f64 + LAYER_NORM_ROUNDINGS;
    let mut dx = Vec::with_capacity(dout.len());
    let mut dgamma = vec![0.0; channels];
    let mut dbeta = vec![0.0; channels];
    for r in 0..rows {
        let row = r * channels..(r + 1) * channels;
        let g: Vec<f64> = dout[row.clone()]
            .iter()
            .zip(gamma)
            .map(|(d, g)| (d * g).abs())
            .collect();
        let xhat = &stats.xhat[row.clone()];
        let mean_g = g.iter().sum::<f64>() / channels as f64;
        let mean_g_xhat =
            g.iter().zip(xhat).map(|(g, h)| g * h.abs()).sum::<f64>() / channels as f64;
        let amplification = 1.0 + stats.cancellation[r];
        for c in 0..channels {
            let magnitude = g[c] + mean_g + (1.0 + xhat[c].abs()) * (mean_g_xhat + mean_g);
            dx.push(k * UNIT_ROUNDOFF * stats.rstd[r] * amplification * magnitude);
            dgamma[c] += amplification * dout[r * channels + c].abs() * (1.0 + xhat[c].abs());
            dbeta[c] += dout[r * channels + c].abs();
        }
    }
    let dgamma = dgamma
        .iter()
        .map(|mag| (rows as f64 + k) * UNIT_ROUNDOFF * mag)
        .collect();
    let dbeta = dbeta
        .iter()
        .map(|mag| (rows as f64 + 2.0) * UNIT_ROUNDOFF * mag)
        .collect();
    BackwardBounds { dx, dgamma, dbeta }
}

/// Checks dx, dgamma and dbeta against finite differences of
/// `Σ dout·layer_norm(x, gamma, beta)`.
fn check_gradients(backend: &dyn Backend, rng: &mut Rng) {
    let (rows, channels, eps) = (3, 5, 1e-5f32);
    let dims = [rows, channels];
    let x: Vec<f32> = rng
        .normal_vec(rows * channels, 2.0)
        .iter()
        .map(|v| v + 1.0)
        .collect();
    let gamma = rng.normal_vec(channels, 1.0);
    let beta = rng.normal_vec(channels, 1.0);
    let dout = rng.normal_vec(rows * channels, 1.0);
    let (x64, gamma64, beta64, dout64) = (f64s(&x), f64s(&gamma), f64s(&beta), f64s(&dout));
    let eps64 = eps as f64;

    let x_tensor = upload(backend, &x, &dims);
    let [_, mean, rstd] = run_forward(backend, &x_tensor, &gamma, &beta, eps, &dims);
    let mut dx = poisoned(backend, &dims);
    let mut dgamma = backend.zeros(&[channels]).expect("zeros");
    let mut dbeta = backend.zeros(&[channels]).expect("zeros");
    let gamma_tensor = upload(backend, &gamma, &[channels]);
    backend
        .layer_norm_backward(
            &upload(backend, &dout, &dims),
            &x_tensor,
            &gamma_tensor,
            &mean,
            &rstd,
            &mut dx,
            &mut dgamma,
            &mut dbeta,
        )
        .expect("layer_norm_backward");

    let (want_dx, want_dgamma, want_dbeta) =
        reference::layer_norm_backward(&dout64, &x64, &gamma64, eps64);
    let bounds = backward_bounds(
        &dout64,
        &gamma64,
        &row_stats(&x64, channels, eps64),
        channels,
    );
    let loss_x = |x: &[f64]| {
        dot(
            &dout64,
            &reference::layer_norm(x, &gamma64, &beta64, eps64).0,
        )
    };
    assert_gradient(
        "layer_norm_backward dx",
        &x64,
        loss_x,
        &want_dx,
        &download(backend, &dx),
        &bounds.dx,
    );
    let loss_gamma = |gamma: &[f64]| {
        dot(
            &dout64,
            &reference::layer_norm(&x64, gamma, &beta64, eps64).0,
        )
    };
    assert_gradient(
        "layer_norm_backward dgamma",
        &gamma64,
        loss_gamma,
        &want_dgamma,
        &download(backend, &dgamma),
        &bounds.dgamma,
    );
    let loss_beta = |beta: &[f64]| {
        dot(
            &dout64,
            &reference::layer_norm(&x64, &gamma64, beta, eps64).0,
        )
    };
    assert_gradient(
        "layer_norm_backward dbeta",
        &beta64,
        loss_beta,
        &want_dbeta,
        &download(backend, &dbeta),
        &bounds.dbeta,
    );
}
