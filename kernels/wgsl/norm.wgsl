// Layer normalization over the last dimension and its backward. Host
// launcher: src/wgpu/norm.rs.
//
// Forward, per row of C: mean = Σx/C, rstd = 1/sqrt(Σ(x - mean)²/C + eps),
// out = (x - mean)·rstd·gamma + beta, as in the CPU backend.
// Backward, with xhat = (x - mean)·rstd and g = dout·gamma:
//   dx = rstd·(g - mean(g) - xhat·mean(g·xhat))              (overwritten)
//   partials[block] = Σ_rows of block (dout·xhat, dout)      (then added to
//   dgamma and dbeta in block order by reduce.wgsl's add_column_partials)
//
// Bindings (group 0):
//   0  params    uniform             `NormParams`
//   1  x         storage, read       (N, C)
//   2  gamma     storage, read       (C)
//   3  beta      storage, read       (C), forward only
//   4  out       storage, read_write out (forward) or dx (backward), (N, C)
//   5  mean_out  storage, read_write (N), forward only
//   6  rstd_out  storage, read_write (N), forward only
//   7  dout      storage, read       (N, C), backward only
//   8  mean      storage, read       (N), backward only
//   9  rstd      storage, read       (N), backward only
//   10 partials  storage, read_write (ceil(N / rows_per_block), 2, C), backward only
//
// Workgroup size: 64 invocations, each taking channels c, c + 64, ...
// (12 of BERT-base's 768); 64 is a multiple of every subgroup size in use,
// and a narrower tree needs fewer barriers per row sum. Row sums go through
// a fixed binary tree, so results do not depend on scheduling. The forward runs one workgroup per row; the backward one per
// block of rows_per_block rows, and each invocation accumulates its own
// columns of the block's partials, so no two invocations write one element.

struct NormParams {
    rows: u32,
    channels: u32,
    rows_per_block: u32,
    eps: f32,
}

@group(0) @binding(0) var<uniform> params: NormParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> gamma: array<f32>;
@group(0) @binding(3) var<storage, read> beta: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read_write> mean_out: array<f32>;
@group(0) @binding(6) var<storage, read_write> rstd_out: array<f32>;
@group(0) @binding(7) var<storage, read> dout: array<f32>;
@group(0) @binding(8) var<storage, read> mean: array<f32>;
@group(0) @binding(9) var<storage, read> rstd: array<f32>;
@group(0) @binding(10) var<storage, read_write> partials: array<f32>;

const WORKGROUP: u32 = 64u;

@compute @workgroup_size(64)
fn layer_norm(@builtin(workgroup_id) group: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
              @builtin(local_invocation_index) local: u32) {
    let row = flat_group(group, groups);
    // Extra workgroups of the 2-D grid's last row: uniform per workgroup.
    if row >= params.rows {
        return;
    }
    let channels = params.channels;
    let base = row * channels;
    let count = f32(channels);

    var sum = 0.0;
    for (var c = local; c < channels; c += WORKGROUP) {
        sum += x[base + c];
    }
    let row_mean = workgroup_sum(local, sum, WORKGROUP) / count;
    var squares = 0.0;
    for (var c = local; c < channels; c += WORKGROUP) {
        let centered = x[base + c] - row_mean;
        squares += centered * centered;
    }
    let variance = workgroup_sum(local, squares, WORKGROUP) / count;
    let row_rstd = div_rn(1.0, sqrt_rn(variance + params.eps));
    for (var c = local; c < channels; c += WORKGROUP) {
        out[base + c] = (x[base + c] - row_mean) * row_rstd * gamma[c] + beta[c];
    }
    if local == 0u {
        mean_out[row] = row_mean;
        rstd_out[row] = row_rstd;
    }
}

@compute @workgroup_size(64)
fn layer_norm_backward(@builtin(workgroup_id) group: vec3<u32>,
                       @builtin(num_workgroups) groups: vec3<u32>,
                       @builtin(local_invocation_index) local: u32) {
    let block = flat_group(group, groups);
    let first_row = block * params.rows_per_block;
    if first_row >= params.rows {
        return;
    }
    let last_row = min(first_row + params.rows_per_block, params.rows);
    let channels = params.channels;
    let count = f32(channels);
    let gamma_partials = block * 2u * channels;
    let beta_partials = gamma_partials + channels;

    for (var row = first_row; row < last_row; row++) {
        let base = row * channels;
        let row_mean = mean[row];
        let row_rstd = rstd[row];
        var sum_g = 0.0;
        var sum_g_xhat = 0.0;
        for (var c = local; c < channels; c += WORKGROUP) {
            let g = dout[base + c] * gamma[c];
            sum_g += g;
            sum_g_xhat += g * ((x[base + c] - row_mean) * row_rstd);
        }
        let mean_g = workgroup_sum(local, sum_g, WORKGROUP) / count;
        let mean_g_xhat = workgroup_sum(local, sum_g_xhat, WORKGROUP) / count;
        for (var c = local; c < channels; c += WORKGROUP) {
            let d = dout[base + c];
            let xhat = (x[base + c] - row_mean) * row_rstd;
            out[base + c] = row_rstd * (d * gamma[c] - mean_g - xhat * mean_g_xhat);
            if row == first_row {
                partials[gamma_partials + c] = d * xhat;
                partials[beta_partials + c] = d;
            } else {
                partials[gamma_partials + c] += d * xhat;
                partials[beta_partials + c] += d;
            }
        }
    }
}
