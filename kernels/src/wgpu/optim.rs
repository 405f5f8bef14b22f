//! `OptimOps` on wgpu, launching `wgsl/optim.wgsl`.
//!
//! `clip_grad_norm` never reads the norm back: the partial sums of squares
//! of every gradient go into one buffer in argument order, reduce.wgsl's
//! `finish` writes the norm, and `clip_scale` compares it on the device.

use super::GpuBackend;
use super::buffer::check_outputs;
use super::pipelines::Shader;
use super::recorder::{Binding, Dispatch, read, write};
use super::reduce::{Finish, Term, partial_count};
use crate::backend::{AdamWConfig, OptimOps, check_adamw, check_clip};
use crate::error::Result;
use crate::tensor::Tensor;

/// Invocations per workgroup, one element each.
const WORKGROUP: u64 = 256;

impl GpuBackend {
    fn optim_kernel(
        &self,
        op: &'static str,
        entry: &'static str,
        params: &[u32; 9],
        bindings: &[Binding<'_>],
        elements: usize,
    ) -> Result<()> {
        self.dispatch(
            op,
            Dispatch {
                shader: Shader::Optim,
                entry,
                constants: &[],
                params,
                bindings,
                workgroups: (elements as u64).div_ceil(WORKGROUP),
            },
        )
    }
}

impl OptimOps for GpuBackend {
    fn adamw_step(
        &self,
        param: &mut Tensor,
        grad: &Tensor,
        m: &mut Tensor,
        v: &mut Tensor,
        config: &AdamWConfig,
        step: u32,
    ) -> Result<()> {
        const OP: &str = "adamw_step";
        let count = check_adamw(param, grad, m, v, config, step)?;
        check_outputs(OP, &[("param", param), ("m", m), ("v", v)], &[grad])?;
        // Bias corrections 1 - betaᵗ in f64, as on the CPU, so that large
        // steps do not lose digits.
        let bias1 = (1.0 - (config.beta1 as f64).powi(step as i32)) as f32;
        let bias2 = (1.0 - (config.beta2 as f64).powi(step as i32)) as f32;
        let params = [
            count as u32,
            config.lr.to_bits(),
            config.beta1.to_bits(),
            config.beta2.to_bits(),
            config.eps.to_bits(),
            config.weight_decay.to_bits(),
            bias1.to_bits(),
            bias2.to_bits(),
            0,
        ];
        let bindings = [
            read(1, self.f32_buffer(OP, "grad", grad)?),
            write(2, self.f32_buffer(OP, "param", param)?),
            write(3, self.f32_buffer(OP, "m", m)?),
            write(4, self.f32_buffer(OP, "v", v)?),
        ];
        self.optim_kernel(OP, "adamw", &params, &bindings, count)
    }

    fn clip_grad_norm(
        &self,
        grads: &mut [&mut Tensor],
        max_norm: f32,
        norm: &mut Tensor,
    ) -> Result<()> {
        const OP: &str = "clip_grad_norm";
        check_clip(grads, max_norm, norm)?;
        let grad_tensors: Vec<&Tensor> = grads.iter().map(|grad| &**grad).collect();
        check_outputs(OP, &[("norm", norm)], &grad_tensors)?;
        let norm_buffer = self.f32_buffer(OP, "norm", norm)?;
        let grad_buffers = grad_tensors
            .iter()
            .map(|grad| self.f32_buffer(OP, "grads", grad))
            .collect::<Result<Vec<_>>>()?;

        let total_partials: usize = grad_tensors
            .iter()
            .map(|grad| partial_count(grad.numel()))
            .sum();
        let partials = self.scratch(OP, total_partials)?;
        let mut offset = 0;
        for (grad, buffer) in grad_tensors.iter().zip(&grad_buffers) {
            self.partial_sums(OP, buffer, grad.numel(), Term::Square, &partials, offset)?;
            offset += partial_count(grad.numel());
        }
        self.finish_sum(OP, &partials, total_partials, Finish::Norm, norm_buffer)?;

        for (grad, buffer) in grad_tensors.iter().zip(&grad_buffers) {
            let mut params = [0u32; 9];
            params[0] = grad.numel() as u32;
            params[8] = max_norm.to_bits();
            let bindings = [read(1, norm_buffer), write(2, buffer)];
            self.optim_kernel(OP, "clip_scale", &params, &bindings, grad.numel())?;
        }
        Ok(())
    }
}
