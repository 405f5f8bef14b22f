//! `ReduceOps` on wgpu, launching `wgsl/reduce.wgsl`, plus the reduction
//! passes that losses, clipping and the column-sum backwards share.

use super::GpuBackend;
use super::buffer::check_outputs;
use super::pipelines::Shader;
use super::recorder::{Dispatch, read, write};
use crate::backend::{ReduceOps, check_reduce};
use crate::error::Result;
use crate::tensor::Tensor;

/// Elements per workgroup of `partial_sum`: 256 invocations × 16 elements.
pub(crate) const ELEMENTS_PER_PARTIAL: usize = 4096;

/// Columns per workgroup of `add_column_partials` (its workgroup size).
const COLUMNS_PER_WORKGROUP: usize = 256;

/// Per-element term of `partial_sum` (`TERM_*` in reduce.wgsl).
#[derive(Clone, Copy)]
pub(crate) enum Term {
    Value = 0,
    Square = 1,
}

/// Result that `finish` writes (`FINISH_*` in reduce.wgsl).
#[derive(Clone, Copy)]
pub(crate) enum Finish {
    Sum,
    /// The sum divided by this count, or 0 for a count of 0.
    Mean(usize),
    Norm,
    /// The sum of the first half of the partials over the sum of the second half.
    Ratio,
}

/// Per-block column sums: block `b`, column `c` is at
/// `buffer[offset + b·stride + c]`.
pub(crate) struct ColumnPartials<'a> {
    pub buffer: &'a ::wgpu::Buffer,
    pub offset: usize,
    pub stride: usize,
    pub blocks: usize,
}

/// Number of partial sums for `elements` elements.
pub(crate) fn partial_count(elements: usize) -> usize {
    elements.div_ceil(ELEMENTS_PER_PARTIAL)
}

/// `ReduceParams` of reduce.wgsl.
fn params(
    n: usize,
    mode: u32,
    offset: usize,
    channels: usize,
    stride: usize,
    divisor: f32,
) -> [u32; 6] {
    [
        n as u32,
        mode,
        offset as u32,
        channels as u32,
        stride as u32,
        divisor.to_bits(),
    ]
}

impl GpuBackend {
    /// Writes the partial sums of `term(x)` over the first `elements`
    /// values of `x` into `partials[offset ..]`.
    pub(crate) fn partial_sums(
        &self,
        op: &'static str,
        x: &::wgpu::Buffer,
        elements: usize,
        term: Term,
        partials: &::wgpu::Buffer,
        offset: usize,
    ) -> Result<()> {
        self.dispatch(
            op,
            Dispatch {
                shader: Shader::Reduce,
                entry: "partial_sum",
                constants: &[],
                params: &params(elements, term as u32, offset, 0, 0, 0.0),
                bindings: &[read(1, x), write(2, partials)],
                workgroups: partial_count(elements) as u64,
            },
        )
    }

    /// Sums `count` partials in order (`2·count` for `Finish::Ratio`) and
    /// writes the result to `out[0]`.
    pub(crate) fn finish_sum(
        &self,
        op: &'static str,
        partials: &::wgpu::Buffer,
        count: usize,
        finish: Finish,
        out: &::wgpu::Buffer,
    ) -> Result<()> {
        let (mode, divisor) = match finish {
            Finish::Sum => (0, 0.0),
            Finish::Mean(count) => (1, count as f32),
            Finish::Norm => (2, 0.0),
            Finish::Ratio => (3, 0.0),
        };
        self.dispatch(
            op,
            Dispatch {
                shader: Shader::Reduce,
                entry: "finish",
                constants: &[],
                params: &params(count, mode, 0, 0, 0, divisor),
                bindings: &[read(1, partials), write(2, out)],
                workgroups: 1,
            },
        )
    }

    /// Adds the column partials into `dst[c]` in block order.
    pub(crate) fn add_column_partials(
        &self,
        op: &'static str,
        partials: ColumnPartials<'_>,
        channels: usize,
        dst: &::wgpu::Buffer,
    ) -> Result<()> {
        let ColumnPartials {
            buffer,
            offset,
            stride,
            blocks,
        } = partials;
        self.dispatch(
            op,
            Dispatch {
                shader: Shader::Reduce,
                entry: "add_column_partials",
                constants: &[],
                params: &params(blocks, 0, offset, channels, stride, 0.0),
                bindings: &[read(1, buffer), write(2, dst)],
                workgroups: channels.div_ceil(COLUMNS_PER_WORKGROUP) as u64,
            },
        )
    }

    /// Reduces all of `x` into `out[0]`.
    fn reduce(
        &self,
        op: &'static str,
        x: &Tensor,
        out: &mut Tensor,
        term: Term,
        finish: Finish,
    ) -> Result<()> {
        let count = check_reduce(op, x, out)?;
        check_outputs(op, &[("out", out)], &[x])?;
        let x_buffer = self.f32_buffer(op, "x", x)?;
        let out_buffer = self.f32_buffer(op, "out", out)?;
        let partials = self.scratch(op, partial_count(count))?;
        self.partial_sums(op, x_buffer, count, term, &partials, 0)?;
        self.finish_sum(op, &partials, partial_count(count), finish, out_buffer)
    }
}

impl ReduceOps for GpuBackend {
    fn sum(&self, x: &Tensor, out: &mut Tensor) -> Result<()> {
        self.reduce("sum", x, out, Term::Value, Finish::Sum)
    }

    fn mean(&self, x: &Tensor, out: &mut Tensor) -> Result<()> {
        let count = x.numel();
        self.reduce("mean", x, out, Term::Value, Finish::Mean(count))
    }

    fn norm(&self, x: &Tensor, out: &mut Tensor) -> Result<()> {
        self.reduce("norm", x, out, Term::Square, Finish::Norm)
    }
}
