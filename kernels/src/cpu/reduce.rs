//! CPU `ReduceOps`: chunked lane sums combined in chunk order in f64.

use super::CpuBackend;
use super::parallel::chunked_sum;
use super::simd::{dispatch, sum_by};
use super::storage::{read, write};
use crate::backend::{ReduceOps, check_reduce};
use crate::error::Result;
use crate::tensor::Tensor;

impl CpuBackend {
    /// Computes `total = Σ term(x)` in f64 from f32 chunk sums and writes
    /// `finish(total, numel)` to `out`.
    fn reduce(
        &self,
        op: &'static str,
        x: &Tensor,
        out: &mut Tensor,
        term: impl Fn(f32) -> f32 + Sync + Send,
        finish: impl Fn(f64, usize) -> f64,
    ) -> Result<()> {
        let count = check_reduce(op, x, out)?;
        let x = read::<f32>(op, "x", x)?;
        let mut out = write::<f32>(op, "out", out)?;
        let x: &[f32] = &x;
        let total = self.install(|| {
            chunked_sum(x, |chunk| {
                dispatch(
                    #[inline(always)]
                    || sum_by(chunk, &term),
                )
            })
        });
        out[0] = finish(total, count) as f32;
        Ok(())
    }
}

impl ReduceOps for CpuBackend {
    fn sum(&self, x: &Tensor, out: &mut Tensor) -> Result<()> {
        self.reduce("sum", x, out, |value| value, |total, _| total)
    }

    fn mean(&self, x: &Tensor, out: &mut Tensor) -> Result<()> {
        self.reduce(
            "mean",
            x,
            out,
            |value| value,
            |total, count| {
                if count == 0 {
                    0.0
                } else {
                    total / count as f64
                }
            },
        )
    }

    fn norm(&self, x: &Tensor, out: &mut Tensor) -> Result<()> {
        self.reduce(
            "norm",
            x,
            out,
            |value| value * value,
            |total, _| total.sqrt(),
        )
    }
}
