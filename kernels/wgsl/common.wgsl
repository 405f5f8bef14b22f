// Helpers shared by every kernel file: grid indexing, f32 math that matches
// the CPU backend, and workgroup reductions. The host appends this file to
// each kernel file before compiling it (WGSL has no includes, and
// module-scope declarations may come in any order), so a file's own line
// numbers stay correct in compiler messages.
//
// Numerics: `exp_f32`, `tanh_f32` and `log1p_f32` follow the CPU backend's
// formulas (src/math.rs, src/cpu/elementwise.rs), because the WGSL builtins
// `exp` and `tanh` may be several ulp off and behave differently per vendor.
// `div_rn` and `sqrt_rn` add one correction step so that final scalar
// results are correctly rounded even where a driver's division or square
// root is not.

// Workgroups are launched on a 2-D grid because one dimension holds at most
// 65535 workgroups; the host splits a flat count into (x, y) and every kernel
// guards against the extra workgroups of the last row.
fn flat_group(group: vec3<u32>, groups: vec3<u32>) -> u32 {
    return group.x + groups.x * (group.y + groups.y * group.z);
}

// Cody-Waite constants of the CPU backend's `math::exp`.
const EXP_LOG2_E: f32 = 1.442695e0;
const EXP_LN2_HI: f32 = 6.933594e-1;
const EXP_LN2_LO: f32 = -2.1219444e-4;
const EXP_LOW: f32 = -87.0;
const EXP_HIGH: f32 = 88.0;

// exp(x) = 2^n·exp(r) with n = round(x/ln 2) and a degree-7 Taylor
// polynomial for exp(r), relative error within 2 ulp. Returns 0 below -87
// and +inf above 88, like the CPU backend.
fn exp_f32(x: f32) -> f32 {
    let clamped = clamp(x, EXP_LOW, EXP_HIGH);
    let n = round(clamped * EXP_LOG2_E);
    let r = fma(n, -EXP_LN2_LO, fma(n, -EXP_LN2_HI, clamped));
    var poly = 1.984127e-4;
    poly = fma(poly, r, 1.3888889e-3);
    poly = fma(poly, r, 8.333334e-3);
    poly = fma(poly, r, 4.1666668e-2);
    poly = fma(poly, r, 1.6666667e-1);
    poly = fma(poly, r, 0.5);
    poly = fma(poly, r, 1.0);
    poly = fma(poly, r, 1.0);
    // n is in [-126, 127], so 2^n is a normal f32 built from its exponent bits.
    let scale = bitcast<f32>(u32(i32(n) + 127) << 23u);
    if x < EXP_LOW {
        return 0.0;
    }
    if x > EXP_HIGH {
        return bitcast<f32>(0x7f800000u);
    }
    return poly * scale;
}

// tanh(x) = sign(x)·(1 - 2/(exp(2|x|) + 1)), absolute error within a few ulp
// of 1; exp_f32 saturates to +inf for large |x|, which gives exactly ±1.
fn tanh_f32(x: f32) -> f32 {
    let e = exp_f32(2.0 * abs(x));
    let magnitude = 1.0 - 2.0 / (e + 1.0);
    return select(magnitude, -magnitude, x < 0.0);
}

// ln(1 + x) for x >= 0 without losing the low digits of small x: with
// w = 1 + x rounded, ln(w)·x/(w - 1) cancels the rounding of w.
fn log1p_f32(x: f32) -> f32 {
    let w = 1.0 + x;
    if w == 1.0 {
        return x;
    }
    return log(w) * x / (w - 1.0);
}

// ln(1 + exp(z)) without overflow.
fn softplus_f32(z: f32) -> f32 {
    return max(z, 0.0) + log1p_f32(exp_f32(-abs(z)));
}

fn sigmoid_f32(z: f32) -> f32 {
    return 1.0 / (1.0 + exp_f32(-z));
}

// a / b, correctly rounded when the driver's division is within a few ulp:
// the residual a - q·b is exact with a fused multiply-add.
fn div_rn(a: f32, b: f32) -> f32 {
    let q = a / b;
    let residual = fma(-q, b, a);
    return q + residual / b;
}

// sqrt(x), corrected like div_rn from the exact residual x - s².
fn sqrt_rn(x: f32) -> f32 {
    let s = sqrt(x);
    if s == 0.0 {
        return s;
    }
    let residual = fma(-s, s, x);
    return s + residual * 0.5 / s;
}

// Workgroup reductions over the first `width` invocations, where `width`
// is the kernel's workgroup size: a power of two of at most
// REDUCTION_LANES. Each combines the values with a fixed binary tree, so the
// result does not depend on scheduling, and returns it to every invocation.
// Call them from uniform control flow, because they contain barriers.
const REDUCTION_LANES: u32 = 256u;

var<workgroup> reduction_lanes: array<f32, REDUCTION_LANES>;

fn workgroup_sum(local: u32, value: f32, width: u32) -> f32 {
    reduction_lanes[local] = value;
    workgroupBarrier();
    for (var half = width / 2u; half > 0u; half /= 2u) {
        if local < half {
            reduction_lanes[local] += reduction_lanes[local + half];
        }
        workgroupBarrier();
    }
    let total = reduction_lanes[0];
    workgroupBarrier();
    return total;
}

fn workgroup_max(local: u32, value: f32, width: u32) -> f32 {
    reduction_lanes[local] = value;
    workgroupBarrier();
    for (var half = width / 2u; half > 0u; half /= 2u) {
        if local < half {
            reduction_lanes[local] = max(reduction_lanes[local], reduction_lanes[local + half]);
        }
        workgroupBarrier();
    }
    let total = reduction_lanes[0];
    workgroupBarrier();
    return total;
}
