// The AdamW update and the scaling step of global-norm gradient clipping.
// Host launcher: src/wgpu/optim.rs.
//
// AdamW at step t, per element, as in the CPU backend:
//   m = beta1·m + (1 - beta1)·g
//   v = beta2·v + (1 - beta2)·g²
//   param -= lr·((m / bias1) / (sqrt(v / bias2) + eps) + weight_decay·param)
// with bias1 = 1 - beta1ᵗ and bias2 = 1 - beta2ᵗ computed in f64 on the host.
//
// Bindings (group 0):
//   0 params  uniform             `OptimParams`
//   1 input   storage, read       grad (adamw) or the (1) global norm (clip_scale)
//   2 destination  storage, read_write param (adamw) or one gradient (clip_scale)
//   3 m       storage, read_write first moment, adamw only
//   4 v       storage, read_write second moment, adamw only
//
// Workgroup size: 256 invocations, one element each, a multiple of every
// subgroup size in use; the kernels guard the ragged last workgroup.

struct OptimParams {
    n: u32,
    lr: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    weight_decay: f32,
    bias1: f32,
    bias2: f32,
    // clip_scale: gradients are scaled when the norm exceeds max_norm.
    max_norm: f32,
}

@group(0) @binding(0) var<uniform> params: OptimParams;
@group(0) @binding(1) var<storage, read> input: array<f32>;
@group(0) @binding(2) var<storage, read_write> destination: array<f32>;
@group(0) @binding(3) var<storage, read_write> m: array<f32>;
@group(0) @binding(4) var<storage, read_write> v: array<f32>;

const WORKGROUP: u32 = 256u;

@compute @workgroup_size(256)
fn adamw(@builtin(workgroup_id) group: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
         @builtin(local_invocation_index) local: u32) {
    let i = flat_group(group, groups) * WORKGROUP + local;
    if i >= params.n {
        return;
    }
    let g = input[i];
    let m_new = params.beta1 * m[i] + (1.0 - params.beta1) * g;
    let v_new = params.beta2 * v[i] + (1.0 - params.beta2) * g * g;
    m[i] = m_new;
    v[i] = v_new;
    let m_hat = m_new / params.bias1;
    let v_hat = v_new / params.bias2;
    let p = destination[i];
    destination[i] = p - params.lr * (m_hat / (sqrt(v_hat) + params.eps) + params.weight_decay * p);
}

// grad *= max_norm / (norm + 1e-6) when norm > max_norm.
@compute @workgroup_size(256)
fn clip_scale(@builtin(workgroup_id) group: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
              @builtin(local_invocation_index) local: u32) {
    let i = flat_group(group, groups) * WORKGROUP + local;
    let norm = input[0];
    if i >= params.n || !(norm > params.max_norm) {
        return;
    }
    destination[i] *= div_rn(params.max_norm, norm + 1e-6);
}
