//! Scalar formulas shared by the backends: GELU, its derivative and the
//! CPU backend's `exp`.
//!
//! # GELU
//!
//! `gelu(x) = x·Φ(x)`, where `Φ(x) = 0.5·(1 + erf(x/√2))` is the standard
//! normal CDF. WGSL has no `erf`, so every backend evaluates `erf` with the
//! same polynomial, Abramowitz and Stegun (1964) formula 7.1.26:
//!
//! ```text
//! erf(z) = 1 - (a1·t + a2·t² + a3·t³ + a4·t⁴ + a5·t⁵)·exp(-z²),  t = 1/(1 + p·z),  z >= 0
//! ```
//!
//! with absolute error at most 1.5e-7 for all `z >= 0`, and `erf(-z) = -erf(z)`.
//! The tail `q = 1 - erf(|z|)` is formed directly, so `Φ(x) = q/2` for
//! negative `x` keeps its relative precision instead of cancelling
//! `1 + erf(x/√2)`. The error of `Φ` is at most 7.5e-8, so the error of
//! `gelu(x)` is at most `7.5e-8·|x|` plus f32 rounding.
//!
//! The derivative is the exact one of `x·Φ(x)` with the same `Φ`:
//! `gelu'(x) = Φ(x) + x·φ(x)`, where `φ(x) = exp(-x²/2)/√(2π)`.
//!
//! A GPU backend uses its own `exp` builtin, so results agree with the CPU
//! backend to within the `exp` error of both, a few ulp.

use std::f32::consts::FRAC_1_SQRT_2;

/// Abramowitz and Stegun 7.1.26 constants, with the digits as published.
#[allow(clippy::excessive_precision)]
mod abramowitz_stegun {
    pub const P: f32 = 0.327_591_1;
    pub const A: [f32; 5] = [
        0.254_829_592,
        -0.284_496_736,
        1.421_413_741,
        -1.453_152_027,
        1.061_405_429,
    ];
}

/// The constants as `Φ` uses them: `p/√2` takes `x` instead of `z = x/√2`,
/// and the halved `a_i` give `q = (1 - erf(z))/2` directly (halving is exact).
const PHI_P: f32 = abramowitz_stegun::P * FRAC_1_SQRT_2;
const PHI_A: [f32; 5] = {
    let a = abramowitz_stegun::A;
    [a[0] / 2.0, a[1] / 2.0, a[2] / 2.0, a[3] / 2.0, a[4] / 2.0]
};

/// `1/√(2π)`.
const FRAC_1_SQRT_2PI: f32 = 0.398_942_3;

/// Returns `(Φ(x), exp(-x²/2))`; the second value lets the derivative reuse
/// the `exp`. Every backend evaluates these same steps:
///
/// ```text
/// t = 1 / (1 + PHI_P·|x|)
/// q = t·(A1 + t·(A2 + t·(A3 + t·(A4 + t·A5))))·exp(-x²/2)   // A = PHI_A
/// Φ = 1 - q if x >= 0, else q
/// ```
#[inline(always)]
fn normal_cdf_and_gauss(x: f32) -> (f32, f32) {
    let [a1, a2, a3, a4, a5] = PHI_A;
    let t = 1.0 / x.abs().mul_add(PHI_P, 1.0);
    let poly = t * t.mul_add(t.mul_add(t.mul_add(t.mul_add(a5, a4), a3), a2), a1);
    let gauss = exp((-0.5 * x) * x);
    // q is the normal tail beyond |x|.
    let q = poly * gauss;
    let cdf = if x >= 0.0 { 1.0 - q } else { q };
    (cdf, gauss)
}

/// Standard normal CDF `Φ(x)` from Abramowitz and Stegun 7.1.26, absolute error <= 7.5e-8.
#[inline(always)]
pub fn normal_cdf(x: f32) -> f32 {
    normal_cdf_and_gauss(x).0
}

/// GELU in the erf form, `x·Φ(x)`.
#[inline(always)]
pub fn gelu(x: f32) -> f32 {
    x * normal_cdf(x)
}

/// Derivative of `gelu`: `Φ(x) + x·φ(x)`.
#[inline(always)]
pub fn gelu_grad(x: f32) -> f32 {
    let (cdf, gauss) = normal_cdf_and_gauss(x);
    x.mul_add(FRAC_1_SQRT_2PI * gauss, cdf)
}

/// `exp(x)` in f32 arithmetic that compilers vectorize, with relative error
/// within 2 ulp (checked against f64 in this module's tests). Uses fused
/// multiply-adds, which are single instructions on CPUs with FMA.
///
/// Uses `exp(x) = 2ⁿ·exp(r)` with `n = round(x/ln 2)` and `|r| <= ln(2)/2`,
/// and a degree-7 Taylor polynomial for `exp(r)` (truncation error below
/// 6e-9). Inputs below -87 return 0 and inputs above 88 return infinity,
/// so subnormal results are flushed to zero. NaN returns NaN.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2_E: f32 = std::f32::consts::LOG2_E;
    // ln 2 split in two so that n·LN2_HI is exact for |n| <= 128 (Cody and Waite).
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding 1.5·2²³ rounds any |v| < 2²² to the nearest integer.
    const ROUND: f32 = 12_582_912.0;
    const LOW: f32 = -87.0;
    const HIGH: f32 = 88.0;

    let clamped = x.clamp(LOW, HIGH);
    let shifted = clamped * LOG2_E + ROUND;
    let n = shifted - ROUND;
    let r = n.mul_add(-LN2_LO, n.mul_add(-LN2_HI, clamped));
    let mut poly: f32 = 1.0 / 5040.0;
    for coefficient in [
        1.0 / 720.0,
        1.0 / 120.0,
        1.0 / 24.0,
        1.0 / 6.0,
        1.0 / 2.0,
        1.0,
        1.0,
    ] {
        poly = poly.mul_add(r, coefficient);
    }
    // The low bits of `shifted` contain n in two's complement, so n is read
    // without a float-to-int conversion, which rustc 1.95 turned into scalar
    // code on x86-64.
    // n is in [-126, 127], so 2ⁿ is a normal f32 built from its exponent bits.
    let n_bits = shifted.to_bits().wrapping_sub(ROUND.to_bits());
    let scale = f32::from_bits(n_bits.wrapping_add(127) << 23);
    let y = poly * scale;
    if x < LOW {
        0.0
    } else if x > HIGH {
        f32::INFINITY
    } else {
        y
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ulp_distance(got: f32, want: f64) -> f64 {
        let ulp = (want.abs() as f32).max(f32::MIN_POSITIVE);
        let ulp = f32::from_bits(ulp.to_bits() + 1) - ulp;
        (got as f64 - want).abs() / ulp as f64
    }

    #[test]
    fn exp_within_two_ulp() {
        let mut worst = 0.0f64;
        let mut x = -86.9f32;
        while x < 87.9 {
            worst = worst.max(ulp_distance(exp(x), (x as f64).exp()));
            x += 0.0137;
        }
        assert!(worst <= 2.0, "exp error {worst} ulp exceeds 2 ulp");
    }

    #[test]
    fn exp_handles_range_ends() {
        assert_eq!(exp(-100.0), 0.0);
        assert_eq!(exp(100.0), f32::INFINITY);
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
        assert!(exp(f32::NAN).is_nan());
        assert_eq!(exp(0.0), 1.0);
    }

    #[test]
    fn normal_cdf_symmetric() {
        for i in 0..200 {
            let x = i as f32 * 0.05;
            let sum = normal_cdf(x) + normal_cdf(-x);
            assert!((sum - 1.0).abs() <= 1.2e-7, "Φ({x}) + Φ(-{x}) = {sum}");
        }
    }
}
