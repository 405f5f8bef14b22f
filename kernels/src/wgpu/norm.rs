//! `NormOps` on wgpu, launching `wgsl/norm.wgsl`.

use super::GpuBackend;
use super::buffer::check_outputs;
use super::pipelines::Shader;
use super::recorder::{Binding, Dispatch, read, write};
use super::reduce::ColumnPartials;
use crate::backend::{NormOps, check_layer_norm};
use crate::error::Result;
use crate::tensor::Tensor;

/// Rows per workgroup of the backward: small enough that a BERT batch
/// (4096 rows) gives hundreds of workgroups, large enough that the partials
/// stay a fraction of `dout`.
const ROWS_PER_BLOCK: usize = 8;

impl GpuBackend {
    fn norm_kernel(
        &self,
        op: &'static str,
        entry: &'static str,
        params: [u32; 4],
        bindings: &[Binding<'_>],
        workgroups: usize,
    ) -> Result<()> {
        self.dispatch(
            op,
            Dispatch {
                shader: Shader::Norm,
                entry,
                constants: &[],
                params: &params,
                bindings,
                workgroups: workgroups as u64,
            },
        )
    }
}

impl NormOps for GpuBackend {
    fn layer_norm(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        beta: &Tensor,
        eps: f32,
        out: &mut Tensor,
        mean: &mut Tensor,
        rstd: &mut Tensor,
    ) -> Result<()> {
        const OP: &str = "layer_norm";
        let (rows, channels) = check_layer_norm(
            OP,
            x,
            &[("out", out)],
            &[("gamma", gamma), ("beta", beta)],
            &[("mean", mean), ("rstd", rstd)],
            Some(eps),
        )?;
        check_outputs(
            OP,
            &[("out", out), ("mean", mean), ("rstd", rstd)],
            &[x, gamma, beta],
        )?;
        let bindings = [
            read(1, self.f32_buffer(OP, "x", x)?),
            read(2, self.f32_buffer(OP, "gamma", gamma)?),
            read(3, self.f32_buffer(OP, "beta", beta)?),
            write(4, self.f32_buffer(OP, "out", out)?),
            write(5, self.f32_buffer(OP, "mean", mean)?),
            write(6, self.f32_buffer(OP, "rstd", rstd)?),
        ];
        if channels == 0 {
            return Ok(());
        }
        let params = [rows as u32, channels as u32, 0, eps.to_bits()];
        self.norm_kernel(OP, "layer_norm", params, &bindings, rows)
    }

    fn layer_norm_backward(
        &self,
        dout: &Tensor,
        x: &Tensor,
        gamma: &Tensor,
        mean: &Tensor,
        rstd: &Tensor,
        dx: &mut Tensor,
        dgamma: &mut Tensor,
        dbeta: &mut Tensor,
    ) -> Result<()> {
        const OP: &str = "layer_norm_backward";
        let (rows, channels) = check_layer_norm(
            OP,
            x,
            &[("dout", dout), ("dx", dx)],
            &[("gamma", gamma), ("dgamma", dgamma), ("dbeta", dbeta)],
            &[("mean", mean), ("rstd", rstd)],
            None,
        )?;
        check_outputs(
            OP,
            &[("dx", dx), ("dgamma", dgamma), ("dbeta", dbeta)],
            &[dout, x, gamma, mean, rstd],
        )?;

        let dgamma_buffer = self.f32_buffer(OP, "dgamma", dgamma)?;
        let dbeta_buffer = self.f32_buffer(OP, "dbeta", dbeta)?;
        let blocks = rows.div_ceil(ROWS_PER_BLOCK);
        let partials = self.scratch(OP, blocks * 2 * channels)?;
        let bindings = [
            read(1, self.f32_buffer(OP, "x", x)?),
            read(2, self.f32_buffer(OP, "gamma", gamma)?),
            write(4, self.f32_buffer(OP, "dx", dx)?),
            read(7, self.f32_buffer(OP, "dout", dout)?),
            read(8, self.f32_buffer(OP, "mean", mean)?),
            read(9, self.f32_buffer(OP, "rstd", rstd)?),
            write(10, &partials),
        ];
        if channels == 0 || rows == 0 {
            return Ok(());
        }

        let params = [rows as u32, channels as u32, ROWS_PER_BLOCK as u32, 0];
        self.norm_kernel(OP, "layer_norm_backward", params, &bindings, blocks)?;

        // Block b holds (dgamma, dbeta) partials at b·2C and b·2C + C.
        for (offset, dst) in [(0, dgamma_buffer), (channels, dbeta_buffer)] {
            let partials = ColumnPartials {
                buffer: &partials,
                offset,
                stride: 2 * channels,
                blocks,
            };
            self.add_column_partials(OP, partials, channels, dst)?;
        }
        Ok(())
    }
}
