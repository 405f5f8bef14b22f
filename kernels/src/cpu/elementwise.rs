//! CPU `ElementwiseOps`: bias add, GELU, tanh, residual sums, plus the `fill`
//! and `copy` kernels behind `Backend`.
//!
//! Each kernel maps fixed-size chunks (`parallel::ELEMENT_CHUNK`) on rayon
//! and runs one fused loop per chunk inside `simd::dispatch`.

use rayon::prelude::*;

use super::CpuBackend;
use super::parallel::{ELEMENT_CHUNK, add_partials, rows_per_task};
use super::simd::dispatch;
use super::storage::{read, write};
use crate::backend::{ElementwiseOps, check_bias, check_same_shape};
use crate::error::Result;
use crate::math;
use crate::tensor::Tensor;

/// Applies `f` to each element of `x`, writing `out`, in parallel chunks.
fn map_unary(x: &[f32], out: &mut [f32], f: impl Fn(f32) -> f32 + Sync) {
    out.par_chunks_mut(ELEMENT_CHUNK)
        .zip(x.par_chunks(ELEMENT_CHUNK))
        .for_each(|(out, x)| {
            dispatch(
                #[inline(always)]
                || {
                    for (out, &x) in out.iter_mut().zip(x) {
                        *out = f(x);
                    }
                },
            )
        });
}

/// Applies `f` to each pair `(a[i], b[i])`, writing `out`, in parallel chunks.
fn map_binary(a: &[f32], b: &[f32], out: &mut [f32], f: impl Fn(f32, f32) -> f32 + Sync) {
    out.par_chunks_mut(ELEMENT_CHUNK)
        .zip(a.par_chunks(ELEMENT_CHUNK).zip(b.par_chunks(ELEMENT_CHUNK)))
        .for_each(|(out, (a, b))| {
            dispatch(
                #[inline(always)]
                || {
                    for ((out, &a), &b) in out.iter_mut().zip(a).zip(b) {
                        *out = f(a, b);
                    }
                },
            )
        });
}

pub(crate) fn fill(out: &mut [f32], value: f32) {
    out.par_chunks_mut(ELEMENT_CHUNK)
        .for_each(|out| out.fill(value));
}

pub(crate) fn copy(src: &[f32], dst: &mut [f32]) {
    dst.par_chunks_mut(ELEMENT_CHUNK)
        .zip(src.par_chunks(ELEMENT_CHUNK))
        .for_each(|(dst, src)| dst.copy_from_slice(src));
}

/// `out[r, c] = x[r, c] + bias[c]`.
// x: (N, C), bias: (C), out: (N, C)
fn bias_add(x: &[f32], bias: &[f32], out: &mut [f32], channels: usize) {
    let task = rows_per_task(channels) * channels;
    out.par_chunks_mut(task)
        .zip(x.par_chunks(task))
        .for_each(|(out, x)| {
            dispatch(
                #[inline(always)]
                || {
                    for (out, x) in out.chunks_exact_mut(channels).zip(x.chunks_exact(channels)) {
                        for ((out, &x), &bias) in out.iter_mut().zip(x).zip(bias) {
                            *out = x + bias;
                        }
                    }
                },
            )
        });
}

/// `dbias[c] += Σ_r dout[r, c]`, summing rows in blocks and the blocks in order.
// dout: (N, C), dbias: (C)
fn bias_add_backward(dout: &[f32], dbias: &mut [f32], channels: usize) {
    let task = rows_per_task(channels) * channels;
    let partials: Vec<Vec<f32>> = dout
        .par_chunks(task)
        .map(|dout| {
            let mut partial = vec![0.0f32; channels];
            dispatch(
                #[inline(always)]
                || {
                    for row in dout.chunks_exact(channels) {
                        for (sum, &value) in partial.iter_mut().zip(row) {
                            *sum += value;
                        }
                    }
                },
            );
            partial
        })
        .collect();
    add_partials(dbias, &partials);
}

impl ElementwiseOps for CpuBackend {
    fn bias_add(&self, x: &Tensor, bias: &Tensor, out: &mut Tensor) -> Result<()> {
        const OP: &str = "bias_add";
        let (_, channels) = check_bias(OP, x, bias, Some(out))?;
        let x = read::<f32>(OP, "x", x)?;
        let bias = read::<f32>(OP, "bias", bias)?;
        let mut out = write::<f32>(OP, "out", out)?;
        let (x, bias, out): (&[f32], &[f32], &mut [f32]) = (&x, &bias, &mut out);
        self.install(|| bias_add(x, bias, out, channels));
        Ok(())
    }

    fn bias_add_backward(&self, dout: &Tensor, dbias: &mut Tensor) -> Result<()> {
        const OP: &str = "bias_add_backward";
        let (_, channels) = check_bias(OP, dout, dbias, None)?;
        let dout = read::<f32>(OP, "dout", dout)?;
        let mut dbias = write::<f32>(OP, "dbias", dbias)?;
        let (dout, dbias): (&[f32], &mut [f32]) = (&dout, &mut dbias);
        self.install(|| bias_add_backward(dout, dbias, channels));
        Ok(())
    }

    fn gelu(&self, x: &Tensor, out: &mut Tensor) -> Result<()> {
        self.unary("gelu", ("x", x), ("out", out), math::gelu)
    }

    fn gelu_backward(&self, dout: &Tensor, x: &Tensor, dx: &mut Tensor) -> Result<()> {
        self.binary(
            "gelu_backward",
            ("dout", dout),
            ("x", x),
            ("dx", dx),
            |dout, x| dout * math::gelu_grad(x),
        )
    }

    fn tanh(&self, x: &Tensor, out: &mut Tensor) -> Result<()> {
        self.unary("tanh", ("x", x), ("out", out), tanh)
    }

    fn tanh_backward(&self, dout: &Tensor, out: &Tensor, dx: &mut Tensor) -> Result<()> {
        self.binary(
            "tanh_backward",
            ("dout", dout),
            ("out", out),
            ("dx", dx),
            |dout, out| dout * (1.0 - out * out),
        )
    }

    fn add(&self, a: &Tensor, b: &Tensor, out: &mut Tensor) -> Result<()> {
        self.binary("add", ("a", a), ("b", b), ("out", out), |a, b| a + b)
    }

    fn accumulate(&self, x: &Tensor, dst: &mut Tensor) -> Result<()> {
        const OP: &str = "accumulate";
        check_same_shape(OP, &[("x", x), ("dst", dst)])?;
        let x = read::<f32>(OP, "x", x)?;
        let mut dst = write::<f32>(OP, "dst", dst)?;
        let (x, dst): (&[f32], &mut [f32]) = (&x, &mut dst);
        self.install(|| {
            dst.par_chunks_mut(ELEMENT_CHUNK)
                .zip(x.par_chunks(ELEMENT_CHUNK))
                .for_each(|(dst, x)| {
                    dispatch(
                        #[inline(always)]
                        || {
                            for (dst, &x) in dst.iter_mut().zip(x) {
                                *dst += x;
                            }
                        },
                    )
                })
        });
        Ok(())
    }
}

impl CpuBackend {
    /// Checks, locks and runs an element-wise map with one input.
    pub(super) fn unary(
        &self,
        op: &'static str,
        input: (&'static str, &Tensor),
        output: (&'static str, &mut Tensor),
        f: impl Fn(f32) -> f32 + Sync + Send,
    ) -> Result<()> {
        check_same_shape(op, &[input, (output.0, &*output.1)])?;
        let x = read::<f32>(op, input.0, input.1)?;
        let mut out = write::<f32>(op, output.0, output.1)?;
        let (x, out): (&[f32], &mut [f32]) = (&x, &mut out);
        self.install(|| map_unary(x, out, f));
        Ok(())
    }

    /// Checks, locks and runs an element-wise map with two inputs.
    pub(super) fn binary(
        &self,
        op: &'static str,
        first: (&'static str, &Tensor),
        second: (&'static str, &Tensor),
        output: (&'static str, &mut Tensor),
        f: impl Fn(f32, f32) -> f32 + Sync + Send,
    ) -> Result<()> {
        check_same_shape(op, &[first, second, (output.0, &*output.1)])?;
        let a = read::<f32>(op, first.0, first.1)?;
        let b = read::<f32>(op, second.0, second.1)?;
        let mut out = write::<f32>(op, output.0, output.1)?;
        let (a, b, out): (&[f32], &[f32], &mut [f32]) = (&a, &b, &mut out);
        self.install(|| map_binary(a, b, out, f));
        Ok(())
    }
}

/// `tanh(x) = sign(x)·(1 - 2/(exp(2·|x|) + 1))`, absolute error within a few
/// f32 ulp of 1, using the vectorizable `math::exp`.
#[inline(always)]
fn tanh(x: f32) -> f32 {
    let e = math::exp(2.0 * x.abs());
    (1.0 - 2.0 / (e + 1.0)).copysign(x)
}
