//! Test plumbing for the conformance suite: a seeded random generator,
//! sentinel-filled outputs, error-bound assertions and central finite
//! differences.
//!
//! # Error model
//!
//! `UNIT_ROUNDOFF` is `u = 2⁻²⁴`, the largest relative error of one rounded
//! f32 operation. A sum of `n` rounded terms, added in any order, is within
//! `(n - 1)·u·Σ|term|` of the exact sum to first order in `u` (the standard
//! worst-case bound for floating-point summation). So the bounds below scale
//! with the number of terms in the longest sum that produces an element (the
//! matmul inner dimension, the row length, the number of rows) times the
//! magnitude of its terms. Every op's bound is that rule plus a small count
//! of extra roundings, and the check files name and justify each one.

use crate::backend::Backend;
use crate::error::KernelError;
use crate::tensor::Tensor;

/// Largest relative rounding error of one f32 operation, 2⁻²⁴.
pub const UNIT_ROUNDOFF: f64 = 1.0 / 16_777_216.0;

/// Relative step for central differences. With f64 the truncation error
/// `h²·|f'''|/6` and the cancellation error `2⁻⁵³·|f|/h` are both near 1e-11
/// for the O(1) functions used here.
const FD_STEP: f64 = 1e-5;

/// Allowed gap between an f64 analytic gradient and its finite-difference
/// estimate, well above the 1e-11-scale error of the estimate and far below
/// the O(1e-2) errors that a wrong gradient formula gives.
pub const FD_TOLERANCE: f64 = 1e-6;

/// SplitMix64 generator, so that every backend gets the same inputs without
/// an extra dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1) with 53 random bits.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform integer in `0..limit`.
    pub fn below(&mut self, limit: usize) -> usize {
        (self.uniform() * limit as f64) as usize
    }

    /// Standard normal sample (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let radius = (-2.0 * (1.0 - self.uniform()).ln()).sqrt();
        radius * (std::f64::consts::TAU * self.uniform()).cos()
    }

    /// `len` normal samples with standard deviation `std`, rounded to f32.
    pub fn normal_vec(&mut self, len: usize, std: f64) -> Vec<f32> {
        (0..len).map(|_| (self.normal() * std) as f32).collect()
    }

    /// `len` uniform samples in `[low, high)`, rounded to f32.
    pub fn uniform_vec(&mut self, len: usize, low: f64, high: f64) -> Vec<f32> {
        (0..len)
            .map(|_| (low + (high - low) * self.uniform()) as f32)
            .collect()
    }

    /// `len` integers in `-range..=range` as f32, so that sums of them are exact.
    pub fn small_ints(&mut self, len: usize, range: i32) -> Vec<f32> {
        (0..len)
            .map(|_| (self.below((2 * range + 1) as usize) as i32 - range) as f32)
            .collect()
    }
}

/// Widens f32 values to f64 exactly.
pub fn f64s(values: &[f32]) -> Vec<f64> {
    values.iter().map(|&value| value as f64).collect()
}

/// Uploads f32 data, panicking with the op name on failure.
pub fn upload(backend: &dyn Backend, data: &[f32], dims: &[usize]) -> Tensor {
    backend
        .upload(data, dims)
        .unwrap_or_else(|error| panic!("upload {dims:?}: {error}"))
}

/// Uploads u32 data.
pub fn upload_u32(backend: &dyn Backend, data: &[u32], dims: &[usize]) -> Tensor {
    backend
        .upload_u32(data, dims)
        .unwrap_or_else(|error| panic!("upload_u32 {dims:?}: {error}"))
}

/// Allocates an output filled with NaN, so that an element the op fails to
/// write cannot pass as a correct zero.
pub fn poisoned(backend: &dyn Backend, dims: &[usize]) -> Tensor {
    let len = dims.iter().product();
    upload(backend, &vec![f32::NAN; len], dims)
}

/// Downloads f32 data.
pub fn download(backend: &dyn Backend, tensor: &Tensor) -> Vec<f32> {
    backend
        .download(tensor)
        .unwrap_or_else(|error| panic!("download: {error}"))
}

/// Asserts `|got[i] - want[i]| <= bound[i]` for every element, treating NaN
/// as a failure, and reports the worst element.
pub fn assert_within(case: &str, got: &[f32], want: &[f64], bound: &[f64]) {
    assert_eq!(
        got.len(),
        want.len(),
        "{case}: got {} elements, expected {}",
        got.len(),
        want.len()
    );
    let mut worst: Option<(usize, f64)> = None;
    for index in 0..got.len() {
        let error = (got[index] as f64 - want[index]).abs();
        // An unwritten NaN sentinel makes the error NaN, which fails here.
        if error.is_nan() || error > bound[index] {
            let ratio = if error.is_nan() {
                f64::INFINITY
            } else {
                error / bound[index]
            };
            if worst.is_none_or(|(_, worst_ratio)| ratio > worst_ratio) {
                worst = Some((index, ratio));
            }
        }
    }
    if let Some((index, _)) = worst {
        panic!(
            "{case}: element {index} is {}, expected {} within {:e} (error {:e})",
            got[index],
            want[index],
            bound[index],
            (got[index] as f64 - want[index]).abs()
        );
    }
}

/// Asserts that each element is within `abs + rel·|want|`.
pub fn assert_close(case: &str, got: &[f32], want: &[f64], abs: f64, rel: f64) {
    let bound: Vec<f64> = want.iter().map(|want| abs + rel * want.abs()).collect();
    assert_within(case, got, want, &bound);
}

/// Asserts bit equality, for results that every summation order gets exactly.
pub fn assert_exact(case: &str, got: &[f32], want: &[f64]) {
    assert_within(case, got, want, &vec![0.0; want.len()]);
}

/// Checks a gradient against central differences of `loss` at `x`: the f64
/// analytic gradient within `FD_TOLERANCE·(1 + |numeric|)`, and the
/// backend's gradient within its op bound `bound` widened by the same amount.
pub fn assert_gradient(
    case: &str,
    x: &[f64],
    loss: impl Fn(&[f64]) -> f64,
    analytic: &[f64],
    got: &[f32],
    bound: &[f64],
) {
    let numeric = numerical_gradient(x, loss);
    let fd_bound: Vec<f64> = numeric
        .iter()
        .map(|numeric| FD_TOLERANCE * (1.0 + numeric.abs()))
        .collect();
    for (index, ((&analytic, &numeric), &allowed)) in
        analytic.iter().zip(&numeric).zip(&fd_bound).enumerate()
    {
        assert!(
            (analytic - numeric).abs() <= allowed,
            "{case}: element {index}: f64 analytic gradient {analytic}, finite difference {numeric}"
        );
    }
    let widened: Vec<f64> = bound
        .iter()
        .zip(&fd_bound)
        .map(|(bound, fd)| bound + fd)
        .collect();
    assert_within(
        &format!("{case} against finite differences"),
        got,
        &numeric,
        &widened,
    );
}

/// Central-difference gradient of `loss` at `x`.
pub fn numerical_gradient(x: &[f64], loss: impl Fn(&[f64]) -> f64) -> Vec<f64> {
    let mut point = x.to_vec();
    (0..x.len())
        .map(|index| {
            let step = FD_STEP * x[index].abs().max(1.0);
            point[index] = x[index] + step;
            let above = loss(&point);
            point[index] = x[index] - step;
            let below = loss(&point);
            point[index] = x[index];
            (above - below) / (2.0 * step)
        })
        .collect()
}

/// `Σ a[i]·b[i]`, the scalar loss whose gradient with respect to the
/// forward output `b` is the upstream gradient `a`.
pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(a, b)| a * b).sum()
}

/// Asserts that an op call failed with a shape or rank mismatch from `op`
/// and left `output` untouched (still all NaN).
pub fn assert_rejected(
    backend: &dyn Backend,
    result: crate::error::Result<()>,
    op: &str,
    output: &Tensor,
) {
    match result {
        Err(KernelError::ShapeMismatch { op: failed, .. })
        | Err(KernelError::RankMismatch { op: failed, .. }) => {
            assert_eq!(failed, op, "error names the wrong op")
        }
        Err(other) => panic!("{op}: expected a shape mismatch, got {other}"),
        Ok(()) => panic!("{op}: accepted a mismatched shape"),
    }
    let data = download(backend, output);
    assert!(
        data.iter().all(|value| value.is_nan()),
        "{op}: wrote its output before rejecting the call"
    );
}
