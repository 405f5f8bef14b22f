//! CPU `NormOps`: layer norm with two passes over each row, and its backward
//! with gamma and beta gradients summed over row blocks in a fixed order.

use rayon::prelude::*;

use super::CpuBackend;
use super::parallel::{add_partials, rows_per_task};
use super::simd::{LANES, dispatch, sum_by};
use super::storage::{read, write};
use crate::backend::{NormOps, check_layer_norm};
use crate::error::Result;
use crate::tensor::Tensor;

/// Normalizes one row and returns `(mean, rstd)`.
// x: (C), gamma: (C), beta: (C), out: (C)
#[inline(always)]
fn normalize_row(x: &[f32], gamma: &[f32], beta: &[f32], eps: f32, out: &mut [f32]) -> (f32, f32) {
    let channels = x.len() as f32;
    let mean = sum_by(x, |v| v) / channels;
    let variance = sum_by(x, |v| (v - mean) * (v - mean)) / channels;
    let rstd = 1.0 / (variance + eps).sqrt();
    for (((out, &x), &gamma), &beta) in out.iter_mut().zip(x).zip(gamma).zip(beta) {
        *out = (x - mean) * rstd * gamma + beta;
    }
    (mean, rstd)
}

/// Backward of one row: overwrites `dx` and adds into the block partials
/// `dgamma` and `dbeta`.
// dout, x: (C), gamma: (C), dx: (C), dgamma, dbeta: (C)
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn normalize_row_backward(
    dout: &[f32],
    x: &[f32],
    gamma: &[f32],
    mean: f32,
    rstd: f32,
    dx: &mut [f32],
    dgamma: &mut [f32],
    dbeta: &mut [f32],
) {
    // mean(g) and mean(g·xhat) with g = dout·gamma, in 16 fixed lanes.
    let mut sum_g = [0.0f32; LANES];
    let mut sum_g_xhat = [0.0f32; LANES];
    let mut dout_chunks = dout.chunks_exact(LANES);
    let mut x_chunks = x.chunks_exact(LANES);
    let mut gamma_chunks = gamma.chunks_exact(LANES);
    for ((dout, x), gamma) in (&mut dout_chunks).zip(&mut x_chunks).zip(&mut gamma_chunks) {
        for lane in 0..LANES {
            let g = dout[lane] * gamma[lane];
            sum_g[lane] += g;
            sum_g_xhat[lane] += g * ((x[lane] - mean) * rstd);
        }
    }
    let rest = dout_chunks
        .remainder()
        .iter()
        .zip(x_chunks.remainder())
        .zip(gamma_chunks.remainder());
    for (lane, ((&dout, &x), &gamma)) in rest.enumerate() {
        let g = dout * gamma;
        sum_g[lane] += g;
        sum_g_xhat[lane] += g * ((x - mean) * rstd);
    }
    let channels = x.len() as f32;
    let mean_g = sum_by(&sum_g, |v| v) / channels;
    let mean_g_xhat = sum_by(&sum_g_xhat, |v| v) / channels;

    let inputs = dout.iter().zip(x).zip(gamma);
    let outputs = dx.iter_mut().zip(dgamma.iter_mut()).zip(dbeta.iter_mut());
    for (((&dout, &x), &gamma), ((dx, dgamma), dbeta)) in inputs.zip(outputs) {
        let xhat = (x - mean) * rstd;
        *dx = rstd * (dout * gamma - mean_g - xhat * mean_g_xhat);
        *dgamma += dout * xhat;
        *dbeta += dout;
    }
}

impl NormOps for CpuBackend {
    fn layer_norm(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        beta: &Tensor,
        eps: f32,
        out: &mut Tensor,
        mean: &mut Tensor,
        rstd: &mut Tensor,
    ) -> Result<()> {
        const OP: &str = "layer_norm";
        let (_, channels) = check_layer_norm(
            OP,
            x,
            &[("out", out)],
            &[("gamma", gamma), ("beta", beta)],
            &[("mean", mean), ("rstd", rstd)],
            Some(eps),
        )?;
        let x = read::<f32>(OP, "x", x)?;
        let gamma = read::<f32>(OP, "gamma", gamma)?;
        let beta = read::<f32>(OP, "beta", beta)?;
        let mut out = write::<f32>(OP, "out", out)?;
        let mut mean = write::<f32>(OP, "mean", mean)?;
        let mut rstd = write::<f32>(OP, "rstd", rstd)?;
        let (x, gamma, beta): (&[f32], &[f32], &[f32]) = (&x, &gamma, &beta);
        let (out, mean, rstd): (&mut [f32], &mut [f32], &mut [f32]) =
            (&mut out, &mut mean, &mut rstd);
        if channels == 0 {
            return Ok(());
        }

        let rows = rows_per_task(channels);
        self.install(|| {
            out.par_chunks_mut(rows * channels)
                .zip(x.par_chunks(rows * channels))
                .zip(mean.par_chunks_mut(rows).zip(rstd.par_chunks_mut(rows)))
                .for_each(|((out, x), (mean, rstd))| {
                    dispatch(
                        #[inline(always)]
                        || {
                            let rows = out.chunks_exact_mut(channels).zip(x.chunks_exact(channels));
                            for ((out, x), (mean, rstd)) in
                                rows.zip(mean.iter_mut().zip(rstd.iter_mut()))
                            {
                                (*mean, *rstd) = normalize_row(x, gamma, beta, eps, out);
                            }
                        },
                    )
                })
        });
        Ok(())
    }

    fn layer_norm_backward(
        &self,
        dout: &Tensor,
        x: &Tensor,
        gamma: &Tensor,
        mean: &Tensor,
        rstd: &Tensor,
        dx: &mut Tensor,
        dgamma: &mut Tensor,
        dbeta: &mut Tensor,
    ) -> Result<()> {
        const OP: &str = "layer_norm_backward";
        let (_, channels) = check_layer_norm(
            OP,
            x,
            &[("dout", dout), ("dx", dx)],
            &[("gamma", gamma), ("dgamma", dgamma), ("dbeta", dbeta)],
            &[("mean", mean), ("rstd", rstd)],
            None,
        )?;
        let dout = read::<f32>(OP, "dout", dout)?;
        let x = read::<f32>(OP, "x", x)?;
        let gamma = read::<f32>(OP, "gamma", gamma)?;
        let mean = read::<f32>(OP, "mean", mean)?;
        let rstd = read::<f32>(OP, "rstd", rstd)?;
        let mut dx = write::<f32>(OP, "dx", dx)?;
        let mut dgamma = write::<f32>(OP, "dgamma", dgamma)?;
        let mut dbeta = write::<f32>(OP, "dbeta", dbeta)?;
        let (dout, x, gamma): (&[f32], &[f32], &[f32]) = (&dout, &x, &gamma);
        let (mean, rstd): (&[f32], &[f32]) = (&mean, &rstd);
        let (dx, dgamma, dbeta): (&mut [f32], &mut [f32], &mut [f32]) =
            (&mut dx, &mut dgamma, &mut dbeta);
        if channels == 0 {
            return Ok(());
        }

        let rows = rows_per_task(channels);
        let block = rows * channels;
        // Each block of rows returns its dgamma and dbeta partials, one (2·C) vector.
        let partials: Vec<Vec<f32>> = self.install(|| {
            dx.par_chunks_mut(block)
                .zip(dout.par_chunks(block).zip(x.par_chunks(block)))
                .zip(mean.par_chunks(rows).zip(rstd.par_chunks(rows)))
                .map(|((dx, (dout, x)), (mean, rstd))| {
                    let mut partial = vec![0.0f32; 2 * channels];
                    let (dgamma, dbeta) = partial.split_at_mut(channels);
                    dispatch(
                        #[inline(always)]
                        || {
                            let rows = dx
                                .chunks_exact_mut(channels)
                                .zip(dout.chunks_exact(channels).zip(x.chunks_exact(channels)));
                            for ((dx, (dout, x)), (&mean, &rstd)) in rows.zip(mean.iter().zip(rstd))
                            {
                                normalize_row_backward(
                                    dout, x, gamma, mean, rstd, dx, dgamma, dbeta,
                                );
                            }
                        },
                    );
                    partial
                })
                .collect()
        });
        let (dgamma_partials, dbeta_partials): (Vec<Vec<f32>>, Vec<Vec<f32>>) = partials
            .into_iter()
            .map(|mut partial| {
                let dbeta = partial.split_off(channels);
                (partial, dbeta)
            })
            .unzip();
        add_partials(dgamma, &dgamma_partials);
        add_partials(dbeta, &dbeta_partials);
        Ok(())
    }
}
