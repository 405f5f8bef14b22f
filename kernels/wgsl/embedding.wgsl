// Embedding row lookup and its deterministic backward. Host launcher:
// src/wgpu/embedding.rs.
//
// The backward never uses atomics: the host sorts positions by id (the ids
// live on the host too) and passes one segment per distinct id, and each
// workgroup adds its segment's dout rows into one table row in increasing
// position order, like the CPU backend.
//
// Bindings (group 0):
//   0 params    uniform             `EmbeddingParams`
//   1 ids       storage, read       (N) u32, forward only
//   2 table     storage, read       (V, C), forward only
//   3 out       storage, read_write out (N, C) (forward) or dtable (V, C) (backward)
//   4 dout      storage, read       (N, C), backward only
//   5 order     storage, read       (N) u32 positions sorted by (id, position), backward only
//   6 segments  storage, read       (S, 3) u32 (id, start, end) into order, backward only
//
// Forward: 256 invocations per workgroup, 4 elements each strided by 256
// (a 1024-element span, coalesced), guarded for the ragged last workgroup.
// Backward: one workgroup of 64 invocations per segment, taking channels
// c, c + 64, ...; 64 is a multiple of every subgroup size in use and covers
// BERT's 768 channels in 12 steps.

struct EmbeddingParams {
    // Output elements N·C (forward) or segments S (backward).
    n: u32,
    channels: u32,
}

@group(0) @binding(0) var<uniform> params: EmbeddingParams;
@group(0) @binding(1) var<storage, read> ids: array<u32>;
@group(0) @binding(2) var<storage, read> table: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<storage, read> dout: array<f32>;
@group(0) @binding(5) var<storage, read> order: array<u32>;
@group(0) @binding(6) var<storage, read> segments: array<u32>;

const FORWARD_WORKGROUP: u32 = 256u;
const ELEMENTS_PER_THREAD: u32 = 4u;
const BACKWARD_WORKGROUP: u32 = 64u;

@compute @workgroup_size(256)
fn embedding_forward(@builtin(workgroup_id) group: vec3<u32>,
                     @builtin(num_workgroups) groups: vec3<u32>,
                     @builtin(local_invocation_index) local: u32) {
    let first = flat_group(group, groups) * FORWARD_WORKGROUP * ELEMENTS_PER_THREAD;
    for (var j = 0u; j < ELEMENTS_PER_THREAD; j++) {
        let i = first + j * FORWARD_WORKGROUP + local;
        if i < params.n {
            let row = i / params.channels;
            let column = i % params.channels;
            out[i] = table[ids[row] * params.channels + column];
        }
    }
}

@compute @workgroup_size(64)
fn embedding_backward(@builtin(workgroup_id) group: vec3<u32>,
                      @builtin(num_workgroups) groups: vec3<u32>,
                      @builtin(local_invocation_index) local: u32) {
    let segment = flat_group(group, groups);
    if segment >= params.n {
        return;
    }
    let id = segments[3u * segment];
    let start = segments[3u * segment + 1u];
    let end = segments[3u * segment + 2u];
    let channels = params.channels;
    for (var column = local; column < channels; column += BACKWARD_WORKGROUP) {
        var value = out[id * channels + column];
        for (var p = start; p < end; p++) {
            value += dout[order[p] * channels + column];
        }
        out[id * channels + column] = value;
    }
}
