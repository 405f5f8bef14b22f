//! `AttentionOps` on wgpu: the fused softmax kernels of
//! `wgsl/attention.wgsl` plus per-head matmuls on strided views.
//!
//! Forward: `attention_softmax` writes P from Q, K and the mask in one pass
//! (scores never round-trip through memory on their own), then O = P·V.
//! Backward: dV = Pᵀ·dO, then `attention_softmax_backward` writes dS from
//! dO, V and P in one pass, then dQ = dS·K/sqrt(D) and dK = dSᵀ·Q/sqrt(D).

use super::GpuBackend;
use super::buffer::check_outputs;
use super::matmul::{StridedMatmul, View};
use super::pipelines::Shader;
use super::recorder::{Binding, Dispatch, read, write};
use crate::backend::{AttentionDims, AttentionOps, attention_dims};
use crate::error::Result;
use crate::tensor::Tensor;

impl AttentionDims {
    /// View of head h's `(T, D)` slice of a `(B, T, C)` tensor.
    fn head_view(&self) -> View {
        View {
            offset: 0,
            batch_stride: self.seq * self.channels,
            head_stride: self.head_dim,
            row_stride: self.channels,
            col_stride: 1,
        }
    }

    /// View of the `(T, T)` matrix of (b, h) in a `(B, H, T, T)` tensor,
    /// transposed when `transposed`.
    fn square_view(&self, transposed: bool) -> View {
        let (row_stride, col_stride) = if transposed {
            (1, self.seq)
        } else {
            (self.seq, 1)
        };
        View {
            offset: 0,
            batch_stride: self.heads * self.seq * self.seq,
            head_stride: self.seq * self.seq,
            row_stride,
            col_stride,
        }
    }

    /// `AttentionParams` of attention.wgsl.
    fn params(&self) -> [u32; 6] {
        [
            (self.batch * self.heads * self.seq) as u32,
            self.seq as u32,
            self.heads as u32,
            self.channels as u32,
            self.head_dim as u32,
            self.scale().to_bits(),
        ]
    }
}

impl GpuBackend {
    /// Launches one attention.wgsl kernel, one workgroup per query row.
    fn attention_rows(
        &self,
        op: &'static str,
        entry: &'static str,
        dims: &AttentionDims,
        bindings: &[Binding<'_>],
    ) -> Result<()> {
        self.dispatch(
            op,
            Dispatch {
                shader: Shader::Attention,
                entry,
                constants: &[],
                params: &dims.params(),
                bindings,
                workgroups: (dims.batch * dims.heads * dims.seq) as u64,
            },
        )
    }

    /// Records `out = alpha·A·B` for every (batch, head) with `(T, ·)` operands.
    #[allow(clippy::too_many_arguments)]
    fn head_matmul(
        &self,
        op: &'static str,
        dims: &AttentionDims,
        a: (&::wgpu::Buffer, View),
        b: (&::wgpu::Buffer, View),
        out: &::wgpu::Buffer,
        n: usize,
        alpha: f32,
    ) -> Result<()> {
        self.strided_matmul(
            op,
            &StridedMatmul {
                a: a.0,
                a_view: a.1,
                b: b.0,
                b_view: b.1,
                out,
                out_view: dims.head_view(),
                m: dims.seq,
                n,
                k: dims.seq,
                batches: dims.batch * dims.heads,
                heads: dims.heads,
                alpha,
                accumulate: false,
            },
        )
    }
}

impl AttentionOps for GpuBackend {
    fn attention(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        mask: &Tensor,
        heads: usize,
        out: &mut Tensor,
        probs: &mut Tensor,
    ) -> Result<()> {
        const OP: &str = "attention";
        let dims = attention_dims(
            OP,
            q,
            &[("k", k), ("v", v), ("out", out)],
            Some(mask),
            probs,
            heads,
        )?;
        check_outputs(OP, &[("out", out), ("probs", probs)], &[q, k, v, mask])?;
        let (q_buffer, k_buffer, v_buffer) = (
            self.f32_buffer(OP, "q", q)?,
            self.f32_buffer(OP, "k", k)?,
            self.f32_buffer(OP, "v", v)?,
        );
        let mask_buffer = self.u32_device_buffer(OP, "mask", mask)?;
        let out_buffer = self.f32_buffer(OP, "out", out)?;
        let probs_buffer = self.f32_buffer(OP, "probs", probs)?;
        if dims.batch == 0 || dims.seq == 0 {
            return Ok(());
        }

        self.attention_rows(
            OP,
            "attention_softmax",
            &dims,
            &[
                read(1, q_buffer),
                read(2, k_buffer),
                read(3, mask_buffer),
                write(4, probs_buffer),
            ],
        )?;
        // O = P·V
        self.head_matmul(
            OP,
            &dims,
            (probs_buffer, dims.square_view(false)),
            (v_buffer, dims.head_view()),
            out_buffer,
            dims.head_dim,
            1.0,
        )
    }

    fn attention_backward(
        &self,
        dout: &Tensor,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        probs: &Tensor,
        heads: usize,
        dq: &mut Tensor,
        dk: &mut Tensor,
        dv: &mut Tensor,
    ) -> Result<()> {
        const OP: &str = "attention_backward";
        let btc = [
            ("dout", dout),
            ("k", k),
            ("v", v),
            ("dq", &*dq),
            ("dk", &*dk),
            ("dv", &*dv),
        ];
        let dims = attention_dims(OP, q, &btc, None, probs, heads)?;
        check_outputs(
            OP,
            &[("dq", dq), ("dk", dk), ("dv", dv)],
            &[dout, q, k, v, probs],
        )?;
        let (dout_buffer, q_buffer, k_buffer, v_buffer, probs_buffer) = (
            self.f32_buffer(OP, "dout", dout)?,
            self.f32_buffer(OP, "q", q)?,
            self.f32_buffer(OP, "k", k)?,
            self.f32_buffer(OP, "v", v)?,
            self.f32_buffer(OP, "probs", probs)?,
        );
        let (dq_buffer, dk_buffer, dv_buffer) = (
            self.f32_buffer(OP, "dq", dq)?,
            self.f32_buffer(OP, "dk", dk)?,
            self.f32_buffer(OP, "dv", dv)?,
        );
        if dims.batch == 0 || dims.seq == 0 {
            return Ok(());
        }

        // dV = Pᵀ·dO
        self.head_matmul(
            OP,
            &dims,
            (probs_buffer, dims.square_view(true)),
            (dout_buffer, dims.head_view()),
            dv_buffer,
            dims.head_dim,
            1.0,
        )?;
        // dS = P ⊙ (dO·Vᵀ - rowsum(dO·Vᵀ ⊙ P))
        let dscores = self.scratch(OP, dims.batch * dims.heads * dims.seq * dims.seq)?;
        self.attention_rows(
            OP,
            "attention_softmax_backward",
            &dims,
            &[
                read(1, dout_buffer),
                read(2, v_buffer),
                write(4, &dscores),
                read(5, probs_buffer),
            ],
        )?;
        // dQ = dS·K/sqrt(D), dK = dSᵀ·Q/sqrt(D)
        self.head_matmul(
            OP,
            &dims,
            (&dscores, dims.square_view(false)),
            (k_buffer, dims.head_view()),
            dq_buffer,
            dims.head_dim,
            dims.scale(),
        )?;
        self.head_matmul(
            OP,
            &dims,
            (&dscores, dims.square_view(true)),
            (q_buffer, dims.head_view()),
            dk_buffer,
            dims.head_dim,
            dims.scale(),
        )
    }
}
