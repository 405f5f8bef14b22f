// Attention probabilities with the softmax fused in, and their backward.
// The matrix products P·V, Pᵀ·dO, dS·K and dSᵀ·Q run on matmul.wgsl over
// per-head strided views. Host launcher: src/wgpu/attention.rs.
//
// Shapes: q, k, v, dout (B, T, C) with H heads of D = C/H channels, head h
// at channels h·D .. (h+1)·D; mask (B, T) u32; probs and dS (B, H, T, T).
//
// Bindings (group 0):
//   0 params   uniform             `AttentionParams`
//   1 left     storage, read       q (forward) or dout (backward)
//   2 right    storage, read       k (forward) or v (backward)
//   3 mask     storage, read       key padding mask, 1 = real (forward only)
//   4 scores   storage, read_write probs (forward) or dS (backward)
//   5 probs    storage, read       probs (backward only)
//
// One workgroup per query row (b, h, i), flattened as (b·H + h)·T + i and
// split over a 2-D grid by the host. Its 64 invocations take keys j, j + 64,
// ...: 64 is a multiple of every subgroup size in use and leaves few idle
// invocations at BERT's sequence lengths (128 to 512). Each invocation
// reads back only the elements it wrote itself, and the row maximum and
// sums go through a fixed binary tree, so results do not depend on
// scheduling.

struct AttentionParams {
    // Query rows B·H·T.
    rows: u32,
    seq: u32,
    heads: u32,
    channels: u32,
    head_dim: u32,
    // 1/sqrt(D).
    scale: f32,
}

@group(0) @binding(0) var<uniform> params: AttentionParams;
@group(0) @binding(1) var<storage, read> left: array<f32>;
@group(0) @binding(2) var<storage, read> right: array<f32>;
@group(0) @binding(3) var<storage, read> mask: array<u32>;
@group(0) @binding(4) var<storage, read_write> scores: array<f32>;
@group(0) @binding(5) var<storage, read> probs: array<f32>;

const WORKGROUP: u32 = 64u;
const LOWEST_F32: f32 = -3.4028235e38;

// Query row of this workgroup: (batch, head, query index, flat row).
fn query_row(group: vec3<u32>, groups: vec3<u32>) -> vec4<u32> {
    let row = flat_group(group, groups);
    let i = row % params.seq;
    let batch_head = row / params.seq;
    return vec4<u32>(batch_head / params.heads, batch_head % params.heads, i, row);
}

// Dot product over the D channels of head `head` of rows `x` of left and
// `y` of right, both (B·T, C).
fn head_dot(x: u32, y: u32, head: u32) -> f32 {
    let x_base = x * params.channels + head * params.head_dim;
    let y_base = y * params.channels + head * params.head_dim;
    var sum = 0.0;
    for (var d = 0u; d < params.head_dim; d++) {
        sum += left[x_base + d] * right[y_base + d];
    }
    return sum;
}

// probs[b, h, i, :] = softmax over real keys j of q_i·k_j/sqrt(D); padded
// keys get 0, and a row without real keys is all zeros.
// left: q, right: k, mask, scores: probs
@compute @workgroup_size(64)
fn attention_softmax(@builtin(workgroup_id) group: vec3<u32>,
                     @builtin(num_workgroups) groups: vec3<u32>,
                     @builtin(local_invocation_index) local: u32) {
    let at = query_row(group, groups);
    let batch = at.x;
    let head = at.y;
    let query = at.z;
    let row = at.w;
    // Extra workgroups of the 2-D grid's last row: uniform per workgroup.
    if row >= params.rows {
        return;
    }
    let seq = params.seq;
    let out_base = row * seq;

    var local_max = LOWEST_F32;
    for (var j = local; j < seq; j += WORKGROUP) {
        var score = 0.0;
        if mask[batch * seq + j] != 0u {
            score = head_dot(batch * seq + query, batch * seq + j, head) * params.scale;
            local_max = max(local_max, score);
        }
        scores[out_base + j] = score;
    }
    let row_max = workgroup_max(local, local_max, WORKGROUP);

    var local_sum = 0.0;
    for (var j = local; j < seq; j += WORKGROUP) {
        if mask[batch * seq + j] != 0u {
            let e = exp_f32(scores[out_base + j] - row_max);
            scores[out_base + j] = e;
            local_sum += e;
        }
    }
    // Without real keys no invocation reaches the division's result.
    let inverse_sum = 1.0 / workgroup_sum(local, local_sum, WORKGROUP);
    for (var j = local; j < seq; j += WORKGROUP) {
        if mask[batch * seq + j] != 0u {
            scores[out_base + j] *= inverse_sum;
        }
    }
}

// dS[b, h, i, :] = P ⊙ (dP - rowsum(dP ⊙ P)) with dP = dO_i·V_jᵀ.
// left: dout, right: v, probs, scores: dS
@compute @workgroup_size(64)
fn attention_softmax_backward(@builtin(workgroup_id) group: vec3<u32>,
                              @builtin(num_workgroups) groups: vec3<u32>,
                              @builtin(local_invocation_index) local: u32) {
    let at = query_row(group, groups);
    let batch = at.x;
    let head = at.y;
    let query = at.z;
    let row = at.w;
    if row >= params.rows {
        return;
    }
    let seq = params.seq;
    let out_base = row * seq;

    var local_dot = 0.0;
    for (var j = local; j < seq; j += WORKGROUP) {
        let dp = head_dot(batch * seq + query, batch * seq + j, head);
        scores[out_base + j] = dp;
        local_dot += dp * probs[out_base + j];
    }
    let dot = workgroup_sum(local, local_dot, WORKGROUP);
    for (var j = local; j < seq; j += WORKGROUP) {
        let p = probs[out_base + j];
        scores[out_base + j] = p * (scores[out_base + j] - dot);
    }
}
