//! `MatmulOps` on wgpu, and `StridedMatmul`, the launcher of
//! `wgsl/matmul.wgsl` that attention also uses for per-head slices.

use super::GpuBackend;
use super::buffer::check_outputs;
use super::pipelines::Shader;
use super::recorder::{Dispatch, read, write};
use crate::backend::{MatmulOps, MatmulOptions, matmul_dims};
use crate::error::Result;
use crate::tensor::Tensor;

/// Output tile of one workgroup (`TILE_M`, `TILE_N` in matmul.wgsl).
const TILE: usize = 64;

/// Layout of one matrix operand in its buffer, in elements: element (i, j)
/// of entry (b, h) is at
/// `offset + b·batch_stride + h·head_stride + i·row_stride + j·col_stride`.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct View {
    pub offset: usize,
    pub batch_stride: usize,
    pub head_stride: usize,
    pub row_stride: usize,
    pub col_stride: usize,
}

impl View {
    /// Returns the view of a dense row-major `(rows, cols)` matrix, or of its
    /// transpose when `transposed` (then the buffer stores `(cols, rows)`),
    /// with entries `batch_stride` apart (0 for an operand shared by every entry).
    pub fn dense(rows: usize, cols: usize, transposed: bool, batch_stride: usize) -> View {
        let (row_stride, col_stride) = if transposed { (1, rows) } else { (cols, 1) };
        View {
            offset: 0,
            batch_stride,
            head_stride: 0,
            row_stride,
            col_stride,
        }
    }

    /// Returns whether vec4 loads along the contiguous axis are aligned: the
    /// offset, the batch and head strides, the other axis's stride and the
    /// contiguous axis's `extent` are all multiples of 4.
    fn vec4_aligned(&self, other_stride: usize, extent: usize) -> bool {
        [
            self.offset,
            self.batch_stride,
            self.head_stride,
            other_stride,
            extent,
        ]
        .iter()
        .all(|value| value % 4 == 0)
    }
}

/// One launch of matmul.wgsl: `out = alpha·A·B`, or `out += alpha·A·B`,
/// for `batches` entries, where entry `z` uses batch `z / heads` and head
/// `z % heads` of each view. `out`'s column stride must be 1.
pub(crate) struct StridedMatmul<'a> {
    pub a: &'a ::wgpu::Buffer,
    pub a_view: View,
    pub b: &'a ::wgpu::Buffer,
    pub b_view: View,
    pub out: &'a ::wgpu::Buffer,
    pub out_view: View,
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub batches: usize,
    pub heads: usize,
    pub alpha: f32,
    pub accumulate: bool,
}

impl GpuBackend {
    /// Records one matmul.wgsl launch, choosing the pipeline variant that
    /// loads each operand along its contiguous axis, as vec4 where aligned.
    pub(crate) fn strided_matmul(&self, op: &'static str, spec: &StridedMatmul<'_>) -> Result<()> {
        let StridedMatmul {
            a_view,
            b_view,
            out_view,
            m,
            n,
            k,
            ..
        } = *spec;
        assert_eq!(
            out_view.col_stride, 1,
            "{op}: matmul output rows must be contiguous"
        );
        let a_along_k = a_view.col_stride == 1;
        let a_vec4 = if a_along_k {
            a_view.vec4_aligned(a_view.row_stride, k)
        } else {
            a_view.row_stride == 1 && a_view.vec4_aligned(a_view.col_stride, m)
        };
        let b_along_n = b_view.col_stride == 1;
        let b_vec4 = if b_along_n {
            b_view.vec4_aligned(b_view.row_stride, n)
        } else {
            b_view.row_stride == 1 && b_view.vec4_aligned(b_view.col_stride, k)
        };

        let constants = [
            ("A_ALONG_K", f64::from(u8::from(a_along_k))),
            ("A_VEC4", f64::from(u8::from(a_vec4))),
            ("B_ALONG_N", f64::from(u8::from(b_along_n))),
            ("B_VEC4", f64::from(u8::from(b_vec4))),
        ];
        let params = [
            m,
            n,
            k,
            spec.batches,
            spec.heads,
            a_view.offset,
            a_view.batch_stride,
            a_view.head_stride,
            a_view.row_stride,
            a_view.col_stride,
            b_view.offset,
            b_view.batch_stride,
            b_view.head_stride,
            b_view.row_stride,
            b_view.col_stride,
            out_view.offset,
            out_view.batch_stride,
            out_view.head_stride,
            out_view.row_stride,
        ]
        .map(|value| value as u32);
        let mut words = params.to_vec();
        words.push(spec.alpha.to_bits());
        words.push(u32::from(spec.accumulate));

        let tiles = m.div_ceil(TILE) * n.div_ceil(TILE);
        self.dispatch(
            op,
            Dispatch {
                shader: Shader::Matmul,
                entry: "matmul",
                constants: &constants,
                params: &words,
                bindings: &[
                    read(1, spec.a),
                    read(2, spec.b),
                    write(3, spec.out),
                    read(4, spec.a),
                    read(5, spec.b),
                ],
                workgroups: (spec.batches * tiles) as u64,
            },
        )
    }
}

impl MatmulOps for GpuBackend {
    fn matmul(
        &self,
        a: &Tensor,
        b: &Tensor,
        out: &mut Tensor,
        options: MatmulOptions,
    ) -> Result<()> {
        const OP: &str = "matmul";
        let dims = matmul_dims(a, b, out, options)?;
        let a_buffer = self.f32_buffer(OP, "a", a)?;
        let b_buffer = self.f32_buffer(OP, "b", b)?;
        let out_buffer = self.f32_buffer(OP, "out", out)?;
        check_outputs(OP, &[("out", out)], &[a, b])?;
        let (m, k, n) = (dims.m, dims.k, dims.n);
        let a_batch = if dims.a_batched { m * k } else { 0 };
        let b_batch = if dims.b_batched { k * n } else { 0 };
        self.strided_matmul(
            OP,
            &StridedMatmul {
                a: a_buffer,
                a_view: View::dense(m, k, options.transpose_a, a_batch),
                b: b_buffer,
                b_view: View::dense(k, n, options.transpose_b, b_batch),
                out: out_buffer,
                out_view: View::dense(m, n, false, m * n),
                m,
                n,
                k,
                batches: dims.batch,
                heads: 1,
                alpha: 1.0,
                accumulate: options.accumulate,
            },
        )
    }
}
