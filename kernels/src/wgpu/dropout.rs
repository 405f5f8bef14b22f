//! `DropoutOps` on wgpu, launching `wgsl/dropout.wgsl` with the threshold,
//! scale and key that `crate::philox` computes on the host.

use super::GpuBackend;
use super::buffer::check_outputs;
use super::pipelines::Shader;
use super::recorder::{Dispatch, read, write};
use crate::backend::{DropoutOps, check_dropout};
use crate::error::Result;
use crate::philox::{dropout_scale, dropout_threshold, seed_key};
use crate::tensor::Tensor;

/// Elements per workgroup: 256 invocations × one Philox call of 4 words.
const ELEMENTS_PER_WORKGROUP: u64 = 1024;

impl GpuBackend {
    fn apply_mask(
        &self,
        op: &'static str,
        input: (&'static str, &Tensor),
        output: (&'static str, &Tensor),
        p: f32,
        seed: u64,
    ) -> Result<()> {
        let n = check_dropout(op, input, output, p)?;
        check_outputs(op, &[output], &[input.1])?;
        let [key_low, key_high] = seed_key(seed);
        let params = [
            n as u32,
            dropout_threshold(p),
            dropout_scale(p).to_bits(),
            key_low,
            key_high,
        ];
        self.dispatch(
            op,
            Dispatch {
                shader: Shader::Dropout,
                entry: "dropout",
                constants: &[],
                params: &params,
                bindings: &[
                    read(1, self.f32_buffer(op, input.0, input.1)?),
                    write(2, self.f32_buffer(op, output.0, output.1)?),
                ],
                workgroups: (n as u64).div_ceil(ELEMENTS_PER_WORKGROUP),
            },
        )
    }
}

impl DropoutOps for GpuBackend {
    fn dropout(&self, x: &Tensor, p: f32, seed: u64, out: &mut Tensor) -> Result<()> {
        self.apply_mask("dropout", ("x", x), ("out", out), p, seed)
    }

    fn dropout_backward(&self, dout: &Tensor, p: f32, seed: u64, dx: &mut Tensor) -> Result<()> {
        self.apply_mask("dropout_backward", ("dout", dout), ("dx", dx), p, seed)
    }
}
