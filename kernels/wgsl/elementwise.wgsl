// Element-wise kernels: bias add and the first pass of its backward, GELU,
// tanh, residual add, accumulate and fill, each with its backward where it
// has one. Host launcher: src/wgpu/elementwise.rs.
//
// Bindings (group 0); an entry point uses only the ones it names:
//   0 params  uniform             sizes and scalars, `ElementwiseParams`
//   1 a       storage, read       first input: x, dout
//   2 b       storage, read       second input: bias, x (GELU backward),
//                                 out (tanh backward), b (add)
//   3 out     storage, read_write output; the destination of `accumulate`
//
// Workgroup size: 256 invocations, WebGPU's default maximum and a multiple of
// every subgroup size in use (8 to 64). Each invocation handles
// ELEMENTS_PER_THREAD elements strided by 256, so a workgroup covers 1024
// consecutive elements with coalesced loads. The host dispatches
// ceil(n / 1024) workgroups, split over a 2-D grid, and every kernel guards
// `index < n` for the ragged last workgroup.

struct ElementwiseParams {
    // Elements of the output.
    n: u32,
    // Row length C and rows N for bias_add and bias_backward_partials.
    channels: u32,
    rows: u32,
    // Rows per workgroup for bias_backward_partials.
    rows_per_block: u32,
    // Fill value for fill.
    value: f32,
}

@group(0) @binding(0) var<uniform> params: ElementwiseParams;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

const WORKGROUP: u32 = 256u;
const ELEMENTS_PER_THREAD: u32 = 4u;

// Index of element `j` (0..ELEMENTS_PER_THREAD) of this invocation.
fn element(group: vec3<u32>, groups: vec3<u32>, local: u32, j: u32) -> u32 {
    return flat_group(group, groups) * WORKGROUP * ELEMENTS_PER_THREAD + j * WORKGROUP + local;
}

// Constants of the CPU backend's Φ (src/math.rs): p/√2 and the halved
// Abramowitz-Stegun 7.1.26 coefficients, as the same f32 values.
const PHI_P: f32 = 2.3164187e-1;
const PHI_A1: f32 = 1.274148e-1;
const PHI_A2: f32 = -1.4224836e-1;
const PHI_A3: f32 = 7.107069e-1;
const PHI_A4: f32 = -7.2657603e-1;
const PHI_A5: f32 = 5.307027e-1;
const FRAC_1_SQRT_2PI: f32 = 3.989423e-1;

// Returns (Φ(x), exp(-x²/2)) with the CPU backend's steps:
// t = 1/(1 + PHI_P·|x|), q = t·poly(t)·exp(-x²/2), Φ = 1 - q for x >= 0, else q.
fn normal_cdf_and_gauss(x: f32) -> vec2<f32> {
    let t = 1.0 / fma(abs(x), PHI_P, 1.0);
    let poly = t * fma(t, fma(t, fma(t, fma(t, PHI_A5, PHI_A4), PHI_A3), PHI_A2), PHI_A1);
    let gauss = exp_f32((-0.5 * x) * x);
    let q = poly * gauss;
    return vec2<f32>(select(q, 1.0 - q, x >= 0.0), gauss);
}

// out = x + bias, bias broadcast over rows of `channels`. One workgroup per
// (block of ELEMENTS_PER_THREAD rows, block of 256 columns), so each
// invocation loads its bias element once and no invocation divides by C.
// a: x (N, C), b: bias (C), out: (N, C)
@compute @workgroup_size(256)
fn bias_add(@builtin(workgroup_id) group: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
            @builtin(local_invocation_index) local: u32) {
    let column_blocks = (params.channels + WORKGROUP - 1u) / WORKGROUP;
    let flat = flat_group(group, groups);
    let first_row = (flat / column_blocks) * ELEMENTS_PER_THREAD;
    let column = (flat % column_blocks) * WORKGROUP + local;
    if column >= params.channels {
        return;
    }
    let bias = b[column];
    let last_row = min(first_row + ELEMENTS_PER_THREAD, params.rows);
    for (var row = first_row; row < last_row; row++) {
        let i = row * params.channels + column;
        out[i] = a[i] + bias;
    }
}

// First pass of bias_add_backward: column sums of blocks of
// `rows_per_block` rows, one workgroup per (row block, column block of 256). reduce.wgsl's add_column_partials then adds the blocks in
// order into dbias, so the sum order is fixed.
// a: dout (N, C), out: partials (ceil(N / rows_per_block), C)
@compute @workgroup_size(256)
fn bias_backward_partials(@builtin(workgroup_id) group: vec3<u32>,
                          @builtin(num_workgroups) groups: vec3<u32>,
                          @builtin(local_invocation_index) local: u32) {
    let width = params.channels;
    let rows_per_block = params.rows_per_block;
    let column_blocks = (width + WORKGROUP - 1u) / WORKGROUP;
    let flat = flat_group(group, groups);
    let block = flat / column_blocks;
    let column = (flat % column_blocks) * WORKGROUP + local;
    let first_row = block * rows_per_block;
    if column >= width || first_row >= params.rows {
        return;
    }
    let last_row = min(first_row + rows_per_block, params.rows);
    var sum = 0.0;
    for (var row = first_row; row < last_row; row++) {
        sum += a[row * width + column];
    }
    out[block * width + column] = sum;
}

// out = gelu(x) = x·Φ(x).
// a: x, out: same shape
@compute @workgroup_size(256)
fn gelu(@builtin(workgroup_id) group: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_index) local: u32) {
    for (var j = 0u; j < ELEMENTS_PER_THREAD; j++) {
        let i = element(group, groups, local, j);
        if i < params.n {
            let x = a[i];
            out[i] = x * normal_cdf_and_gauss(x).x;
        }
    }
}

// dx = dout·gelu'(x), gelu'(x) = Φ(x) + x·φ(x).
// a: dout, b: x, out: dx, all the same shape
@compute @workgroup_size(256)
fn gelu_backward(@builtin(workgroup_id) group: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
                 @builtin(local_invocation_index) local: u32) {
    for (var j = 0u; j < ELEMENTS_PER_THREAD; j++) {
        let i = element(group, groups, local, j);
        if i < params.n {
            let x = b[i];
            let phi = normal_cdf_and_gauss(x);
            out[i] = a[i] * fma(x, FRAC_1_SQRT_2PI * phi.y, phi.x);
        }
    }
}

// out = tanh(x).
// a: x, out: same shape
@compute @workgroup_size(256)
fn tanh_forward(@builtin(workgroup_id) group: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
                @builtin(local_invocation_index) local: u32) {
    for (var j = 0u; j < ELEMENTS_PER_THREAD; j++) {
        let i = element(group, groups, local, j);
        if i < params.n {
            out[i] = tanh_f32(a[i]);
        }
    }
}

// dx = dout·(1 - out²) from the forward output.
// a: dout, b: out of tanh, out: dx
@compute @workgroup_size(256)
fn tanh_backward(@builtin(workgroup_id) group: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
                 @builtin(local_invocation_index) local: u32) {
    for (var j = 0u; j < ELEMENTS_PER_THREAD; j++) {
        let i = element(group, groups, local, j);
        if i < params.n {
            let y = b[i];
            out[i] = a[i] * (1.0 - y * y);
        }
    }
}

// out = a + b.
@compute @workgroup_size(256)
fn add(@builtin(workgroup_id) group: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
       @builtin(local_invocation_index) local: u32) {
    for (var j = 0u; j < ELEMENTS_PER_THREAD; j++) {
        let i = element(group, groups, local, j);
        if i < params.n {
            out[i] = a[i] + b[i];
        }
    }
}

// out += a.
@compute @workgroup_size(256)
fn accumulate(@builtin(workgroup_id) group: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
              @builtin(local_invocation_index) local: u32) {
    for (var j = 0u; j < ELEMENTS_PER_THREAD; j++) {
        let i = element(group, groups, local, j);
        if i < params.n {
            out[i] = out[i] + a[i];
        }
    }
}

// out = value.
@compute @workgroup_size(256)
fn fill(@builtin(workgroup_id) group: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_index) local: u32) {
    for (var j = 0u; j < ELEMENTS_PER_THREAD; j++) {
        let i = element(group, groups, local, j);
        if i < params.n {
            out[i] = params.value;
        }
    }
}
