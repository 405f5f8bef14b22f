// Inverted dropout with the counter-based Philox4x32-10 mask of
// src/philox.rs, ported line for line, so that the CPU and GPU backends
// drop the same elements. Host launcher: src/wgpu/dropout.rs.
//
// Element i uses word i % 4 of philox4x32_10([i/4, 0, 0, 0], [seed low,
// seed high]) and is kept when that word is >= threshold; kept elements are
// multiplied by scale = 1/(1 - p). threshold and scale come from the host's
// dropout_threshold and dropout_scale, so every backend compares the same
// integer and multiplies by the same f32.
//
// Bindings (group 0):
//   0 params  uniform             `DropoutParams`
//   1 x       storage, read       x (forward) or dout (backward)
//   2 out     storage, read_write out or dx, same shape
//
// Workgroup size: 256 invocations, a multiple of every subgroup size in use.
// Each invocation runs one Philox call for 4 consecutive elements; the host
// dispatches ceil(n / 1024) workgroups and the kernel guards the last ones.
// Group indices stay below 2³² because a tensor's binding is at most 4 GiB,
// so the counter's second word is always 0 here.

struct DropoutParams {
    n: u32,
    threshold: u32,
    scale: f32,
    key_low: u32,
    key_high: u32,
}

@group(0) @binding(0) var<uniform> params: DropoutParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

const WORKGROUP: u32 = 256u;

// Philox4x32 round multipliers and key schedule increments (Weyl sequence).
const PHILOX_M0: u32 = 0xD2511F53u;
const PHILOX_M1: u32 = 0xCD9E8D57u;
const PHILOX_W0: u32 = 0x9E3779B9u;
const PHILOX_W1: u32 = 0xBB67AE85u;

// High and low 32 bits of the 64-bit product a·b from 16-bit halves, since
// WGSL has no 64-bit integers.
fn mul_hi_lo(a: u32, b: u32) -> vec2<u32> {
    let a_hi = a >> 16u;
    let a_lo = a & 0xFFFFu;
    let b_hi = b >> 16u;
    let b_lo = b & 0xFFFFu;
    let lo_lo = a_lo * b_lo;
    let lo_hi = a_lo * b_hi;
    let hi_lo = a_hi * b_lo;
    let hi_hi = a_hi * b_hi;
    // Carries out of the low word: each summand is below 2¹⁷, so no overflow.
    let middle = (lo_lo >> 16u) + (lo_hi & 0xFFFFu) + (hi_lo & 0xFFFFu);
    let hi = hi_hi + (lo_hi >> 16u) + (hi_lo >> 16u) + (middle >> 16u);
    return vec2<u32>(hi, a * b);
}

fn philox4x32_10(counter: vec4<u32>, key: vec2<u32>) -> vec4<u32> {
    var x = counter;
    var k = key;
    for (var round = 0u; round < 10u; round++) {
        if round > 0u {
            k += vec2<u32>(PHILOX_W0, PHILOX_W1);
        }
        let p0 = mul_hi_lo(PHILOX_M0, x.x);
        let p1 = mul_hi_lo(PHILOX_M1, x.z);
        x = vec4<u32>(p1.x ^ x.y ^ k.x, p1.y, p0.x ^ x.w ^ k.y, p0.y);
    }
    return x;
}

@compute @workgroup_size(256)
fn dropout(@builtin(workgroup_id) group: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
           @builtin(local_invocation_index) local: u32) {
    let philox_group = flat_group(group, groups) * WORKGROUP + local;
    let first = philox_group * 4u;
    if first >= params.n {
        return;
    }
    let words = philox4x32_10(vec4<u32>(philox_group, 0u, 0u, 0u),
                              vec2<u32>(params.key_low, params.key_high));
    for (var j = 0u; j < 4u; j++) {
        let i = first + j;
        if i < params.n {
            out[i] = select(0.0, x[i] * params.scale, words[j] >= params.threshold);
        }
    }
}
