// Batched matrix multiplication on strided operands,
//   out = alpha·A·B          or   out += alpha·A·B   (accumulate),
// with A (M, K), B (K, N) and out (M, N) per batch entry. Every operand is a
// strided view, element (i, j) at offset + i·row_stride + j·col_stride, so
// one kernel serves transposed operands, shared (unbatched) operands and
// the per-head slices of attention. Host launcher: src/wgpu/matmul.rs.
//
// Bindings (group 0):
//   0 params  uniform             `MatmulParams`
//   1 a       storage, read       A as scalars
//   2 b       storage, read       B as scalars
//   3 out     storage, read_write out
//   4 a4      storage, read       the same buffer as `a`, as vec4 (used when A_VEC4)
//   5 b4      storage, read       the same buffer as `b`, as vec4 (used when B_VEC4)
//
// Tiling: a workgroup computes a 64x64 output tile and walks K in steps of
// 16, staging a 64x16 tile of A and a 16x64 tile of B in workgroup memory
// (8 KiB, under WebGPU's 16 KiB default). Each of its 256 invocations (16x16)
// loads one vec4 of each tile and accumulates a 4x4 register tile, so each
// pair of vec4 reads from workgroup memory feeds 16 fused multiply-adds.
// 256 invocations is WebGPU's default maximum and a multiple of every
// subgroup size in use. Loads past M, N or K read as 0 and stores past M or
// N are skipped, so any shape works.
//
// One workgroup per (batch entry, tile row, tile column), flattened:
// workgroups = batches·ceil(M/64)·ceil(N/64), split over a 2-D grid by the host.

struct MatmulParams {
    m: u32,
    n: u32,
    k: u32,
    // Batch entries; entry z uses batch index z / heads and head index z % heads.
    batches: u32,
    heads: u32,
    // A: element (i, l) of entry (b, h) is a[a_offset + b·a_batch_stride +
    // h·a_head_stride + i·a_row_stride + l·a_col_stride].
    a_offset: u32,
    a_batch_stride: u32,
    a_head_stride: u32,
    a_row_stride: u32,
    a_col_stride: u32,
    // B: element (l, j) likewise, with l along K and j along N.
    b_offset: u32,
    b_batch_stride: u32,
    b_head_stride: u32,
    b_row_stride: u32,
    b_col_stride: u32,
    // out: element (i, j) at out_offset + b·out_batch_stride + h·out_head_stride
    // + i·out_row_stride + j.
    out_offset: u32,
    out_batch_stride: u32,
    out_head_stride: u32,
    out_row_stride: u32,
    alpha: f32,
    // 1 to add into out, 0 to overwrite it without reading it.
    accumulate: u32,
}

// Set per pipeline by the host. A_ALONG_K: A's contiguous axis is K
// (a_col_stride == 1), else M (a_row_stride == 1) or neither. A_VEC4: A's
// contiguous axis has stride 1, its extent and every other stride and offset
// are multiples of 4, so a vec4 never straddles a row end. B likewise, with
// B_ALONG_N for b_col_stride == 1.
override A_ALONG_K: bool = true;
override A_VEC4: bool = false;
override B_ALONG_N: bool = true;
override B_VEC4: bool = false;

@group(0) @binding(0) var<uniform> params: MatmulParams;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<storage, read> a4: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> b4: array<vec4<f32>>;

const TILE_M: u32 = 64u;
const TILE_N: u32 = 64u;
const TILE_K: u32 = 16u;

// a_tile[k·16 + i/4][i % 4] is A(i, k) of the tile: rows of 4 consecutive i,
// so an invocation reads its 4 rows at one k as one vec4. b_tile likewise
// with 4 consecutive columns j.
var<workgroup> a_tile: array<vec4<f32>, 256>;
var<workgroup> b_tile: array<vec4<f32>, 256>;

// Stages A(m0 .. m0+64, k0 .. k0+16) in a_tile; each invocation loads 4
// consecutive elements along A's contiguous axis.
fn load_a_tile(local: u32, base: u32, m0: u32, k0: u32) {
    var v = vec4<f32>(0.0);
    if A_ALONG_K {
        let i = local / 4u;
        let l = (local % 4u) * 4u;
        let row = m0 + i;
        let col = k0 + l;
        if A_VEC4 {
            if row < params.m && col < params.k {
                v = a4[(base + row * params.a_row_stride + col) / 4u];
            }
        } else {
            for (var c = 0u; c < 4u; c++) {
                if row < params.m && col + c < params.k {
                    v[c] = a[base + row * params.a_row_stride + (col + c) * params.a_col_stride];
                }
            }
        }
        for (var c = 0u; c < 4u; c++) {
            a_tile[(l + c) * 16u + i / 4u][i % 4u] = v[c];
        }
    } else {
        let l = local / 16u;
        let i = (local % 16u) * 4u;
        let row = m0 + i;
        let col = k0 + l;
        if A_VEC4 {
            if row < params.m && col < params.k {
                v = a4[(base + row + col * params.a_col_stride) / 4u];
            }
        } else {
            for (var c = 0u; c < 4u; c++) {
                if row + c < params.m && col < params.k {
                    v[c] = a[base + (row + c) * params.a_row_stride + col * params.a_col_stride];
                }
            }
        }
        a_tile[l * 16u + i / 4u] = v;
    }
}

// Stages B(k0 .. k0+16, n0 .. n0+64) in b_tile, like load_a_tile.
fn load_b_tile(local: u32, base: u32, k0: u32, n0: u32) {
    var v = vec4<f32>(0.0);
    if B_ALONG_N {
        let l = local / 16u;
        let j = (local % 16u) * 4u;
        let row = k0 + l;
        let col = n0 + j;
        if B_VEC4 {
            if row < params.k && col < params.n {
                v = b4[(base + row * params.b_row_stride + col) / 4u];
            }
        } else {
            for (var c = 0u; c < 4u; c++) {
                if row < params.k && col + c < params.n {
                    v[c] = b[base + row * params.b_row_stride + (col + c) * params.b_col_stride];
                }
            }
        }
        b_tile[l * 16u + j / 4u] = v;
    } else {
        let j = local / 4u;
        let l = (local % 4u) * 4u;
        let row = k0 + l;
        let col = n0 + j;
        if B_VEC4 {
            if row < params.k && col < params.n {
                v = b4[(base + row + col * params.b_col_stride) / 4u];
            }
        } else {
            for (var c = 0u; c < 4u; c++) {
                if row + c < params.k && col < params.n {
                    v[c] = b[base + (row + c) * params.b_row_stride + col * params.b_col_stride];
                }
            }
        }
        for (var c = 0u; c < 4u; c++) {
            b_tile[(l + c) * 16u + j / 4u][j % 4u] = v[c];
        }
    }
}

@compute @workgroup_size(256)
fn matmul(@builtin(workgroup_id) group: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
          @builtin(local_invocation_index) local: u32) {
    let tiles_m = (params.m + TILE_M - 1u) / TILE_M;
    let tiles_n = (params.n + TILE_N - 1u) / TILE_N;
    let flat = flat_group(group, groups);
    let entry = flat / (tiles_m * tiles_n);
    // Extra workgroups of the 2-D grid's last row: uniform per workgroup.
    if entry >= params.batches {
        return;
    }
    let tile = flat % (tiles_m * tiles_n);
    let m0 = (tile / tiles_n) * TILE_M;
    let n0 = (tile % tiles_n) * TILE_N;
    let batch = entry / params.heads;
    let head = entry % params.heads;
    let a_base = params.a_offset + batch * params.a_batch_stride + head * params.a_head_stride;
    let b_base = params.b_offset + batch * params.b_batch_stride + head * params.b_head_stride;

    // This invocation's 4x4 block: rows ty·4 .. ty·4+3, columns tx·4 .. tx·4+3.
    let tx = local % 16u;
    let ty = local / 16u;
    var acc: array<vec4<f32>, 4>;
    for (var i = 0u; i < 4u; i++) {
        acc[i] = vec4<f32>(0.0);
    }

    for (var k0 = 0u; k0 < params.k; k0 += TILE_K) {
        load_a_tile(local, a_base, m0, k0);
        load_b_tile(local, b_base, k0, n0);
        workgroupBarrier();
        for (var l = 0u; l < TILE_K; l++) {
            let av = a_tile[l * 16u + ty];
            let bv = b_tile[l * 16u + tx];
            acc[0] = fma(vec4<f32>(av.x), bv, acc[0]);
            acc[1] = fma(vec4<f32>(av.y), bv, acc[1]);
            acc[2] = fma(vec4<f32>(av.z), bv, acc[2]);
            acc[3] = fma(vec4<f32>(av.w), bv, acc[3]);
        }
        workgroupBarrier();
    }

    let out_base = params.out_offset + batch * params.out_batch_stride + head * params.out_head_stride;
    for (var i = 0u; i < 4u; i++) {
        let row = m0 + ty * 4u + i;
        for (var j = 0u; j < 4u; j++) {
            let col = n0 + tx * 4u + j;
            if row < params.m && col < params.n {
                let index = out_base + row * params.out_row_stride + col;
                var value = params.alpha * acc[i][j];
                if params.accumulate != 0u {
                    value = out[index] + value;
                }
                out[index] = value;
            }
        }
    }
}
