//! Runtime SIMD dispatch and fixed-order lane sums for the CPU kernels.
//!
//! `dispatch` runs a kernel inside a function compiled for AVX-512
//! (x86-64-v4) or AVX2 with FMA (x86-64-v3) when the CPU has them, so that
//! the kernels' plain loops vectorize to 16 or 8 lanes. The kernels use only
//! correctly rounded IEEE-754 operations, which give the same bits at every
//! vector width, and the compiler never reassociates them. `sum_by` fixes the
//! order of every sum. So all dispatch paths return identical results.
//! `f32::mul_add` in `crate::math` is a fused multiply-add on every path: one
//! instruction with FMA, and a slower but equally rounded libm `fmaf` call on
//! x86-64 CPUs without it.

use std::sync::OnceLock;

/// Accumulators in `sum_by`; 16 f32 fill one AVX-512 register.
pub(crate) const LANES: usize = 16;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Level {
    Baseline,
    #[cfg(target_arch = "x86_64")]
    V3,
    #[cfg(target_arch = "x86_64")]
    V4,
}

fn level() -> Level {
    static LEVEL: OnceLock<Level> = OnceLock::new();
    *LEVEL.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            let v3 = has!("avx2") && has!("fma") && has!("bmi1") && has!("bmi2") && has!("lzcnt");
            let v4 =
                v3 && has!("avx512f") && has!("avx512bw") && has!("avx512dq") && has!("avx512vl");
            if v4 {
                return Level::V4;
            }
            if v3 {
                return Level::V3;
            }
        }
        Level::Baseline
    })
}

/// Name of the instruction set that `dispatch` uses on this CPU.
pub(crate) fn level_name() -> &'static str {
    match level() {
        Level::Baseline => "baseline",
        #[cfg(target_arch = "x86_64")]
        Level::V3 => "AVX2",
        #[cfg(target_arch = "x86_64")]
        Level::V4 => "AVX-512",
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,bmi1,bmi2,lzcnt")]
fn run_v4<R>(kernel: impl FnOnce() -> R) -> R {
    kernel()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,bmi1,bmi2,lzcnt")]
fn run_v3<R>(kernel: impl FnOnce() -> R) -> R {
    kernel()
}

/// Runs `kernel` compiled for the widest instruction set this CPU supports.
/// Mark the closure `#[inline(always)]` so that its loops are compiled inside
/// the target-feature function.
#[inline(always)]
pub(crate) fn dispatch<R>(kernel: impl FnOnce() -> R) -> R {
    match level() {
        // SAFETY: `level()` returned V4 only after detecting every feature that
        // `run_v4` enables.
        #[cfg(target_arch = "x86_64")]
        Level::V4 => unsafe { run_v4(kernel) },
        // SAFETY: as above, for the features of `run_v3`.
        #[cfg(target_arch = "x86_64")]
        Level::V3 => unsafe { run_v3(kernel) },
        Level::Baseline => kernel(),
    }
}

/// Returns `Σ f(x[i])`, adding element `i` into accumulator `i % 16` in
/// index order and combining the accumulators as a fixed binary tree.
#[inline(always)]
pub(crate) fn sum_by(x: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut acc = [0.0f32; LANES];
    let mut chunks = x.chunks_exact(LANES);
    for chunk in &mut chunks {
        let chunk: &[f32; LANES] = chunk
            .try_into()
            .expect("chunks_exact yields LANES elements");
        for lane in 0..LANES {
            acc[lane] += f(chunk[lane]);
        }
    }
    for (lane, &value) in chunks.remainder().iter().enumerate() {
        acc[lane] += f(value);
    }
    combine_lanes(acc)
}

/// Returns `Σ f(a[i], b[i])` in the same order as `sum_by`.
#[inline(always)]
pub(crate) fn sum_by2(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) -> f32 {
    assert_eq!(a.len(), b.len());
    let mut acc = [0.0f32; LANES];
    let mut a_chunks = a.chunks_exact(LANES);
    let mut b_chunks = b.chunks_exact(LANES);
    for (a_chunk, b_chunk) in (&mut a_chunks).zip(&mut b_chunks) {
        let a_chunk: &[f32; LANES] = a_chunk
            .try_into()
            .expect("chunks_exact yields LANES elements");
        let b_chunk: &[f32; LANES] = b_chunk
            .try_into()
            .expect("chunks_exact yields LANES elements");
        for lane in 0..LANES {
            acc[lane] += f(a_chunk[lane], b_chunk[lane]);
        }
    }
    let a_rest = a_chunks.remainder();
    let b_rest = b_chunks.remainder();
    for lane in 0..a_rest.len() {
        acc[lane] += f(a_rest[lane], b_rest[lane]);
    }
    combine_lanes(acc)
}

#[inline(always)]
fn combine_lanes(mut acc: [f32; LANES]) -> f32 {
    let mut width = LANES / 2;
    while width > 0 {
        for lane in 0..width {
            acc[lane] += acc[lane + width];
        }
        width /= 2;
    }
    acc[0]
}

/// Returns the maximum of `x`, or negative infinity for an empty slice.
/// NaN elements are skipped.
#[inline(always)]
pub(crate) fn max(x: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let mut chunks = x.chunks_exact(LANES);
    for chunk in &mut chunks {
        let chunk: &[f32; LANES] = chunk
            .try_into()
            .expect("chunks_exact yields LANES elements");
        for lane in 0..LANES {
            acc[lane] = acc[lane].max(chunk[lane]);
        }
    }
    for (lane, &value) in chunks.remainder().iter().enumerate() {
        acc[lane] = acc[lane].max(value);
    }
    acc.iter()
        .fold(f32::NEG_INFINITY, |max, &value| max.max(value))
}
