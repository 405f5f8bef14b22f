// Losses and their gradients. Host launcher: src/wgpu/loss.rs.
//
// Every loss writes per-row or per-chunk partial terms here, and
// reduce.wgsl's `finish` sums them in index order into the (1) loss, so
// the loss never travels to the host in the middle of a step. Backward
// kernels read the upstream gradient dloss from its (1) tensor. Counts that
// the host knows (kept rows, element counts) arrive as parameters.
//
// Bindings (group 0); an entry point uses only the ones it names:
//   0  params      uniform             `LossParams`
//   1  a           storage, read       logits, pred or scores
//   2  targets     storage, read       (N) u32 target_class targets (cross-entropy)
//   3  lse_out     storage, read_write (N) log-sum-exp (cross-entropy forward)
//   4  terms       storage, read_write per-row terms or per-chunk partials
//   5  dloss       storage, read       (1) upstream gradient
//   6  grad        storage, read_write the gradient output
//   7  lse         storage, read       (N) log-sum-exp (cross-entropy backward)
//   8  b           storage, read       targets of MSE and BCE (f32)
//   9  pairs       storage, read       (P, 2) u32 (better, worse) items
//   10 weights     storage, read       (P) pair weights
//   11 weight_sum  storage, read       (1) Σ weights (pairwise backward)
//   12 item_start  storage, read       (N + 1) u32 offsets into item_pairs
//   13 item_pairs  storage, read       u32 entries 2·pair + (1 if the item is
//                                      the worse one), per item in pair order
//
// Workgroup size: 256 invocations, a multiple of every subgroup size in
// use. Row kernels run one workgroup per row and stride over its V
// columns; chunk kernels give each workgroup 4096 consecutive elements (16
// per invocation, strided by 256); element-wise kernels one element per
// invocation. Every kernel guards the ragged last workgroup.

struct LossParams {
    // Rows N (row kernels), elements (chunk and element-wise kernels), pairs
    // P (pairwise_partials) or items N (pairwise_backward).
    n: u32,
    // Columns V of cross-entropy.
    vocab: u32,
    ignore_index: u32,
    // Kept rows (cross-entropy) or elements (MSE, BCE): the mean's divisor.
    count: u32,
    // A TERM_* value for element_partials and element_backward.
    mode: u32,
}

@group(0) @binding(0) var<uniform> params: LossParams;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> targets: array<u32>;
@group(0) @binding(3) var<storage, read_write> lse_out: array<f32>;
@group(0) @binding(4) var<storage, read_write> terms: array<f32>;
@group(0) @binding(5) var<storage, read> dloss: array<f32>;
@group(0) @binding(6) var<storage, read_write> grad: array<f32>;
@group(0) @binding(7) var<storage, read> lse: array<f32>;
@group(0) @binding(8) var<storage, read> b: array<f32>;
@group(0) @binding(9) var<storage, read> pairs: array<u32>;
@group(0) @binding(10) var<storage, read> weights: array<f32>;
@group(0) @binding(11) var<storage, read> weight_sum: array<f32>;
@group(0) @binding(12) var<storage, read> item_start: array<u32>;
@group(0) @binding(13) var<storage, read> item_pairs: array<u32>;

const WORKGROUP: u32 = 256u;
const ELEMENTS_PER_THREAD: u32 = 16u;
const LOWEST_F32: f32 = -3.4028235e38;

const TERM_MSE: u32 = 0u;
const TERM_BCE: u32 = 1u;

// dloss / count, or 0 without terms.
fn mean_factor(scale: f32) -> f32 {
    return select(div_rn(scale * dloss[0], f32(params.count)), 0.0, params.count == 0u);
}

// lse_out[r] = ln Σ exp(logits[r, :]), terms[r] = lse - logits[r, target]
// for kept rows and 0 for rows whose target is ignore_index.
// a: logits (N, V), targets, lse_out, terms: (N)
@compute @workgroup_size(256)
fn cross_entropy_rows(@builtin(workgroup_id) group: vec3<u32>,
                      @builtin(num_workgroups) groups: vec3<u32>,
                      @builtin(local_invocation_index) local: u32) {
    let row = flat_group(group, groups);
    // Extra workgroups of the 2-D grid's last row: uniform per workgroup.
    if row >= params.n {
        return;
    }
    let base = row * params.vocab;
    var local_max = LOWEST_F32;
    for (var j = local; j < params.vocab; j += WORKGROUP) {
        local_max = max(local_max, a[base + j]);
    }
    let row_max = workgroup_max(local, local_max, WORKGROUP);
    var local_sum = 0.0;
    for (var j = local; j < params.vocab; j += WORKGROUP) {
        local_sum += exp_f32(a[base + j] - row_max);
    }
    let row_lse = row_max + log(workgroup_sum(local, local_sum, WORKGROUP));
    if local == 0u {
        lse_out[row] = row_lse;
        let target_class = targets[row];
        terms[row] = select(row_lse - a[base + target_class], 0.0, target_class == params.ignore_index);
    }
}

// grad[r, :] = dloss·(softmax(logits[r, :]) - onehot(target))/count for kept
// rows, 0 for ignored rows.
// a: logits (N, V), targets, lse, dloss, grad: dlogits (N, V)
@compute @workgroup_size(256)
fn cross_entropy_backward(@builtin(workgroup_id) group: vec3<u32>,
                          @builtin(num_workgroups) groups: vec3<u32>,
                          @builtin(local_invocation_index) local: u32) {
    let row = flat_group(group, groups);
    if row >= params.n {
        return;
    }
    let base = row * params.vocab;
    let target_class = targets[row];
    let factor = mean_factor(1.0);
    let row_lse = lse[row];
    for (var j = local; j < params.vocab; j += WORKGROUP) {
        var value = 0.0;
        if target_class != params.ignore_index {
            value = exp_f32(a[base + j] - row_lse) * factor;
            if j == target_class {
                value -= factor;
            }
        }
        grad[base + j] = value;
    }
}

fn element_term(x: f32, y: f32) -> f32 {
    if params.mode == TERM_BCE {
        return softplus_f32(x) - x * y;
    }
    return (x - y) * (x - y);
}

// terms[g] = Σ term(a[i], b[i]) over the 4096 elements of workgroup g.
// a: pred or logits, b: targets, terms: partials
@compute @workgroup_size(256)
fn element_partials(@builtin(workgroup_id) group: vec3<u32>,
                    @builtin(num_workgroups) groups: vec3<u32>,
                    @builtin(local_invocation_index) local: u32) {
    let flat = flat_group(group, groups);
    let first = flat * WORKGROUP * ELEMENTS_PER_THREAD;
    var sum = 0.0;
    for (var j = 0u; j < ELEMENTS_PER_THREAD; j++) {
        let i = first + j * WORKGROUP + local;
        if i < params.n {
            sum += element_term(a[i], b[i]);
        }
    }
    let total = workgroup_sum(local, sum, WORKGROUP);
    if local == 0u && first < params.n {
        terms[flat] = total;
    }
}

// MSE: grad = (2·dloss/N)·(pred - target); BCE: grad = (dloss/N)·(sigmoid(x) - y).
// a: pred or logits, b: targets, dloss, grad
@compute @workgroup_size(256)
fn element_backward(@builtin(workgroup_id) group: vec3<u32>,
                    @builtin(num_workgroups) groups: vec3<u32>,
                    @builtin(local_invocation_index) local: u32) {
    let i = flat_group(group, groups) * WORKGROUP + local;
    if i >= params.n {
        return;
    }
    if params.mode == TERM_BCE {
        grad[i] = mean_factor(1.0) * (sigmoid_f32(a[i]) - b[i]);
    } else {
        grad[i] = mean_factor(2.0) * (a[i] - b[i]);
    }
}

// terms[g] = Σ w·softplus(s_worse - s_better) and terms[groups + g] = Σ w
// over the 4096 pairs of workgroup g; `count` is the number of workgroups.
// a: scores (N), pairs, weights, terms: partials (2·groups)
@compute @workgroup_size(256)
fn pairwise_partials(@builtin(workgroup_id) group: vec3<u32>,
                     @builtin(num_workgroups) groups: vec3<u32>,
                     @builtin(local_invocation_index) local: u32) {
    let flat = flat_group(group, groups);
    let first = flat * WORKGROUP * ELEMENTS_PER_THREAD;
    var cost = 0.0;
    var weight = 0.0;
    for (var j = 0u; j < ELEMENTS_PER_THREAD; j++) {
        let p = first + j * WORKGROUP + local;
        if p < params.n {
            let margin = a[pairs[2u * p + 1u]] - a[pairs[2u * p]];
            cost += weights[p] * softplus_f32(margin);
            weight += weights[p];
        }
    }
    let total_cost = workgroup_sum(local, cost, WORKGROUP);
    let total_weight = workgroup_sum(local, weight, WORKGROUP);
    if local == 0u && first < params.n {
        terms[flat] = total_cost;
        terms[params.count + flat] = total_weight;
    }
}

// dscores[i] = Σ over the pairs touching item i, in pair order, of -g (i is
// the better item) or +g (i is the worse item), with
// g = (dloss/Σw)·w·sigmoid(s_worse - s_better); 0 when Σw = 0.
// a: scores (N), pairs, weights, weight_sum, dloss, item_start, item_pairs, grad: dscores (N)
@compute @workgroup_size(256)
fn pairwise_backward(@builtin(workgroup_id) group: vec3<u32>,
                     @builtin(num_workgroups) groups: vec3<u32>,
                     @builtin(local_invocation_index) local: u32) {
    let item = flat_group(group, groups) * WORKGROUP + local;
    if item >= params.n {
        return;
    }
    let total_weight = weight_sum[0];
    var value = 0.0;
    if total_weight != 0.0 {
        let factor = div_rn(dloss[0], total_weight);
        for (var e = item_start[item]; e < item_start[item + 1u]; e++) {
            let entry = item_pairs[e];
            let p = entry / 2u;
            let gradient = factor * weights[p]
                * sigmoid_f32(a[pairs[2u * p + 1u]] - a[pairs[2u * p]]);
            value = select(value - gradient, value + gradient, (entry & 1u) == 1u);
        }
    }
    grad[item] = value;
}
