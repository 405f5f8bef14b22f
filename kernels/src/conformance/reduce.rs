//! Checks of `sum`, `mean` and `norm`.
//!
//! Bound: f32 represents every partial sum of small integers exactly, so
//! their sums must be exact in any order. For random data a sum of `n` terms
//! is within `(n + 2)·u·Σ|x|`, and the mean and norm add one more rounding.

use super::harness::{
    Rng, UNIT_ROUNDOFF, assert_close, assert_exact, assert_rejected, download, poisoned, upload,
};
use crate::backend::Backend;
use crate::tensor::Tensor;

const SHAPES: &[&[usize]] = &[&[0], &[], &[1], &[7], &[3, 5], &[4, 4100], &[100_003]];

fn reduce(
    backend: &dyn Backend,
    op: fn(&dyn Backend, &Tensor, &mut Tensor) -> crate::error::Result<()>,
    x: &Tensor,
) -> Vec<f32> {
    let mut out = poisoned(backend, &[1]);
    op(backend, x, &mut out).expect("reduction");
    download(backend, &out)
}

/// Checks the three reductions on exact and random data.
pub fn check_reductions(backend: &dyn Backend) {
    let mut rng = Rng::new(0x5e3);
    let sum = |b: &dyn Backend, x: &Tensor, out: &mut Tensor| b.sum(x, out);
    let mean = |b: &dyn Backend, x: &Tensor, out: &mut Tensor| b.mean(x, out);
    let norm = |b: &dyn Backend, x: &Tensor, out: &mut Tensor| b.norm(x, out);
    for &dims in SHAPES {
        let len: usize = dims.iter().product();
        for exact in [true, false] {
            let x = if exact {
                rng.small_ints(len, 8)
            } else {
                rng.normal_vec(len, 1.0)
            };
            let tensor = upload(backend, &x, dims);
            let total: f64 = x.iter().map(|&v| v as f64).sum();
            let abs_total: f64 = x.iter().map(|&v| (v as f64).abs()).sum();
            let squares: f64 = x.iter().map(|&v| v as f64 * v as f64).sum();
            let want_mean = if len == 0 { 0.0 } else { total / len as f64 };
            let case = format!("{dims:?} {}", if exact { "integers" } else { "normal" });

            let got = [
                reduce(backend, sum, &tensor),
                reduce(backend, mean, &tensor),
                reduce(backend, norm, &tensor),
            ];
            if exact {
                assert_exact(&format!("sum {case}"), &got[0], &[total]);
                assert_close(
                    &format!("mean {case}"),
                    &got[1],
                    &[want_mean],
                    0.0,
                    UNIT_ROUNDOFF,
                );
                assert_close(
                    &format!("norm {case}"),
                    &got[2],
                    &[squares.sqrt()],
                    0.0,
                    UNIT_ROUNDOFF,
                );
            } else {
                let depth = (len as f64 + 2.0) * UNIT_ROUNDOFF;
                assert_close(
                    &format!("sum {case}"),
                    &got[0],
                    &[total],
                    depth * abs_total,
                    0.0,
                );
                let mean_bound = if len == 0 {
                    0.0
                } else {
                    depth * abs_total / len as f64
                };
                assert_close(
                    &format!("mean {case}"),
                    &got[1],
                    &[want_mean],
                    mean_bound,
                    UNIT_ROUNDOFF,
                );
                assert_close(
                    &format!("norm {case}"),
                    &got[2],
                    &[squares.sqrt()],
                    0.0,
                    depth + UNIT_ROUNDOFF,
                );
            }
        }
    }

    let x = upload(backend, &[1.0; 4], &[4]);
    let mut out = poisoned(backend, &[2]);
    assert_rejected(backend, backend.sum(&x, &mut out), "sum", &out);
}
