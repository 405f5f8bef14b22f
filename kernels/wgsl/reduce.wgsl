// Whole-tensor reductions in a fixed order, and the second pass of column
// sums. Host launcher: src/wgpu/reduce.rs.
//
// A reduction runs in two passes without float atomics, so the sum order
// depends only on the element count and repeated calls give identical bits:
//   1. partial_sum: workgroup g sums elements [g·4096, (g+1)·4096) into
//      partials[offset + g];
//   2. finish: one workgroup sums the partials in index order and writes
//      the sum, mean, L2 norm or ratio to out[0].
//
// Bindings (group 0):
//   0 params  uniform             `ReduceParams`
//   1 input   storage, read       x (partial_sum) or partials (finish,
//                                 add_column_partials)
//   2 out     storage, read_write partials (partial_sum), the (1) result
//                                 (finish) or the (C) destination
//                                 (add_column_partials)
//
// Workgroup size: 256 invocations, WebGPU's default maximum and a multiple of
// every subgroup size in use. partial_sum gives each invocation 16 elements
// strided by 256, so a workgroup reads 4096 consecutive elements coalesced.

struct ReduceParams {
    // Elements (partial_sum), partials (finish) or row blocks (add_column_partials).
    n: u32,
    // partial_sum: a TERM_* value; finish: a FINISH_* value.
    mode: u32,
    // partial_sum: first output slot; add_column_partials: first partial element.
    offset: u32,
    // add_column_partials: columns C and the distance between block rows.
    channels: u32,
    stride: u32,
    // finish with FINISH_MEAN: the element count, as f32.
    divisor: f32,
}

@group(0) @binding(0) var<uniform> params: ReduceParams;
@group(0) @binding(1) var<storage, read> input: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

const WORKGROUP: u32 = 256u;
const ELEMENTS_PER_THREAD: u32 = 16u;

const TERM_VALUE: u32 = 0u;
const TERM_SQUARE: u32 = 1u;

const FINISH_SUM: u32 = 0u;
const FINISH_MEAN: u32 = 1u;
const FINISH_NORM: u32 = 2u;
// Sum of partials [0, n) divided by the sum of partials [n, 2n), or 0 when
// the divisor is 0 (the pairwise loss: weighted costs over weights).
const FINISH_RATIO: u32 = 3u;

@compute @workgroup_size(256)
fn partial_sum(@builtin(workgroup_id) group: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
               @builtin(local_invocation_index) local: u32) {
    let flat = flat_group(group, groups);
    let first = flat * WORKGROUP * ELEMENTS_PER_THREAD;
    var sum = 0.0;
    for (var j = 0u; j < ELEMENTS_PER_THREAD; j++) {
        let i = first + j * WORKGROUP + local;
        if i < params.n {
            let x = input[i];
            sum += select(x, x * x, params.mode == TERM_SQUARE);
        }
    }
    let total = workgroup_sum(local, sum, WORKGROUP);
    // Extra workgroups of the 2-D grid's last row have first >= n.
    if local == 0u && first < params.n {
        out[params.offset + flat] = total;
    }
}

// Sums input[start .. start + count) with invocation `local` taking every
// 256th element, then across the workgroup.
fn strided_sum(local: u32, start: u32, count: u32) -> f32 {
    var sum = 0.0;
    for (var i = local; i < count; i += WORKGROUP) {
        sum += input[start + i];
    }
    return workgroup_sum(local, sum, WORKGROUP);
}

// Dispatched as a single workgroup.
@compute @workgroup_size(256)
fn finish(@builtin(local_invocation_index) local: u32) {
    let total = strided_sum(local, 0u, params.n);
    var divisor = 0.0;
    if params.mode == FINISH_RATIO {
        divisor = strided_sum(local, params.n, params.n);
    }
    if local != 0u {
        return;
    }
    switch params.mode {
        case FINISH_MEAN: {
            out[0] = select(div_rn(total, params.divisor), 0.0, params.divisor == 0.0);
        }
        case FINISH_NORM: {
            out[0] = sqrt_rn(total);
        }
        case FINISH_RATIO: {
            out[0] = select(div_rn(total, divisor), 0.0, divisor == 0.0);
        }
        default: {
            out[0] = total;
        }
    }
}

// dst[c] += Σ_b partials[offset + b·stride + c] over the n row blocks in
// order, one invocation per column.
@compute @workgroup_size(256)
fn add_column_partials(@builtin(workgroup_id) group: vec3<u32>,
                       @builtin(num_workgroups) groups: vec3<u32>,
                       @builtin(local_invocation_index) local: u32) {
    let column = flat_group(group, groups) * WORKGROUP + local;
    if column >= params.channels {
        return;
    }
    var value = out[column];
    for (var block = 0u; block < params.n; block++) {
        value += input[params.offset + block * params.stride + column];
    }
    out[column] = value;
}
