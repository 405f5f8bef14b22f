//! `ElementwiseOps` on wgpu, launching `wgsl/elementwise.wgsl`, plus the
//! `fill` kernel behind `Backend::fill`.

use super::GpuBackend;
use super::buffer::check_outputs;
use super::pipelines::Shader;
use super::recorder::{Dispatch, read, write};
use super::reduce::ColumnPartials;
use crate::backend::{ElementwiseOps, check_bias, check_same_shape};
use crate::error::Result;
use crate::tensor::Tensor;

/// Elements per workgroup: 256 invocations × 4 elements (`WORKGROUP` and
/// `ELEMENTS_PER_THREAD` in elementwise.wgsl).
const ELEMENTS_PER_WORKGROUP: u64 = 1024;

/// Rows per workgroup of `bias_add` (`ELEMENTS_PER_THREAD` in elementwise.wgsl).
const BIAS_ROWS_PER_WORKGROUP: usize = 4;

/// Rows summed per workgroup in the first pass of a column sum.
pub(crate) const ROWS_PER_BLOCK: usize = 64;

/// Columns per workgroup of `bias_add` and `bias_backward_partials` (their
/// workgroup size).
const COLUMNS_PER_WORKGROUP: usize = 256;

/// `ElementwiseParams` of elementwise.wgsl.
#[derive(Default)]
struct Params {
    n: usize,
    channels: usize,
    rows: usize,
    rows_per_block: usize,
    value: f32,
}

impl Params {
    fn words(&self) -> [u32; 5] {
        [
            self.n as u32,
            self.channels as u32,
            self.rows as u32,
            self.rows_per_block as u32,
            self.value.to_bits(),
        ]
    }
}

impl GpuBackend {
    /// Launches an element-wise kernel over `params.n` elements. `inputs`
    /// bind to `a` and `b` in order, `output` to `out`.
    fn map_elements(
        &self,
        op: &'static str,
        entry: &'static str,
        params: Params,
        inputs: &[(&'static str, &Tensor)],
        output: (&'static str, &Tensor),
    ) -> Result<()> {
        let mut bindings = Vec::with_capacity(3);
        for (index, &(argument, input)) in inputs.iter().enumerate() {
            bindings.push(read(
                index as u32 + 1,
                self.f32_buffer(op, argument, input)?,
            ));
        }
        bindings.push(write(3, self.f32_buffer(op, output.0, output.1)?));
        self.dispatch(
            op,
            Dispatch {
                shader: Shader::Elementwise,
                entry,
                constants: &[],
                params: &params.words(),
                bindings: &bindings,
                workgroups: (params.n as u64).div_ceil(ELEMENTS_PER_WORKGROUP),
            },
        )
    }

    /// Checks shapes and aliasing, then runs a one- or two-input map.
    fn checked_map(
        &self,
        op: &'static str,
        entry: &'static str,
        inputs: &[(&'static str, &Tensor)],
        output: (&'static str, &Tensor),
    ) -> Result<()> {
        let mut all = inputs.to_vec();
        all.push(output);
        let n = check_same_shape(op, &all)?;
        let input_tensors: Vec<&Tensor> = inputs.iter().map(|&(_, tensor)| tensor).collect();
        check_outputs(op, &[output], &input_tensors)?;
        let params = Params {
            n,
            ..Params::default()
        };
        self.map_elements(op, entry, params, inputs, output)
    }

    /// Sets the first `n` elements of `buffer` to `value`.
    pub(crate) fn fill_buffer(
        &self,
        op: &'static str,
        buffer: &::wgpu::Buffer,
        n: usize,
        value: f32,
    ) -> Result<()> {
        let params = Params {
            n,
            value,
            ..Params::default()
        };
        self.dispatch(
            op,
            Dispatch {
                shader: Shader::Elementwise,
                entry: "fill",
                constants: &[],
                params: &params.words(),
                bindings: &[write(3, buffer)],
                workgroups: (n as u64).div_ceil(ELEMENTS_PER_WORKGROUP),
            },
        )
    }

    /// First pass of a column sum over `(rows, channels)` data: writes
    /// `ceil(rows / ROWS_PER_BLOCK)` rows of block sums into `partials`.
    pub(crate) fn column_block_sums(
        &self,
        op: &'static str,
        data: &::wgpu::Buffer,
        rows: usize,
        channels: usize,
        partials: &::wgpu::Buffer,
    ) -> Result<()> {
        let blocks = rows.div_ceil(ROWS_PER_BLOCK);
        let params = Params {
            n: rows * channels,
            channels,
            rows,
            rows_per_block: ROWS_PER_BLOCK,
            value: 0.0,
        };
        self.dispatch(
            op,
            Dispatch {
                shader: Shader::Elementwise,
                entry: "bias_backward_partials",
                constants: &[],
                params: &params.words(),
                bindings: &[read(1, data), write(3, partials)],
                workgroups: (blocks * channels.div_ceil(COLUMNS_PER_WORKGROUP)) as u64,
            },
        )
    }
}

impl ElementwiseOps for GpuBackend {
    fn bias_add(&self, x: &Tensor, bias: &Tensor, out: &mut Tensor) -> Result<()> {
        const OP: &str = "bias_add";
        let (rows, channels) = check_bias(OP, x, bias, Some(out))?;
        check_outputs(OP, &[("out", out)], &[x, bias])?;
        let params = Params {
            n: rows * channels,
            channels,
            rows,
            ..Params::default()
        };
        let bindings = [
            read(1, self.f32_buffer(OP, "x", x)?),
            read(2, self.f32_buffer(OP, "bias", bias)?),
            write(3, self.f32_buffer(OP, "out", out)?),
        ];
        let workgroups =
            rows.div_ceil(BIAS_ROWS_PER_WORKGROUP) * channels.div_ceil(COLUMNS_PER_WORKGROUP);
        self.dispatch(
            OP,
            Dispatch {
                shader: Shader::Elementwise,
                entry: "bias_add",
                constants: &[],
                params: &params.words(),
                bindings: &bindings,
                workgroups: workgroups as u64,
            },
        )
    }

    fn bias_add_backward(&self, dout: &Tensor, dbias: &mut Tensor) -> Result<()> {
        const OP: &str = "bias_add_backward";
        let (rows, channels) = check_bias(OP, dout, dbias, None)?;
        check_outputs(OP, &[("dbias", dbias)], &[dout])?;
        let dout_buffer = self.f32_buffer(OP, "dout", dout)?;
        let dbias_buffer = self.f32_buffer(OP, "dbias", dbias)?;
        if rows == 0 || channels == 0 {
            return Ok(());
        }
        let blocks = rows.div_ceil(ROWS_PER_BLOCK);
        let partials = self.scratch(OP, blocks * channels)?;
        self.column_block_sums(OP, dout_buffer, rows, channels, &partials)?;
        let partials = ColumnPartials {
            buffer: &partials,
            offset: 0,
            stride: channels,
            blocks,
        };
        self.add_column_partials(OP, partials, channels, dbias_buffer)
    }

    fn gelu(&self, x: &Tensor, out: &mut Tensor) -> Result<()> {
        self.checked_map("gelu", "gelu", &[("x", x)], ("out", out))
    }

    fn gelu_backward(&self, dout: &Tensor, x: &Tensor, dx: &mut Tensor) -> Result<()> {
        self.checked_map(
            "gelu_backward",
            "gelu_backward",
            &[("dout", dout), ("x", x)],
            ("dx", dx),
        )
    }

    fn tanh(&self, x: &Tensor, out: &mut Tensor) -> Result<()> {
        self.checked_map("tanh", "tanh_forward", &[("x", x)], ("out", out))
    }

    fn tanh_backward(&self, dout: &Tensor, out: &Tensor, dx: &mut Tensor) -> Result<()> {
        self.checked_map(
            "tanh_backward",
            "tanh_backward",
            &[("dout", dout), ("out", out)],
            ("dx", dx),
        )
    }

    fn add(&self, a: &Tensor, b: &Tensor, out: &mut Tensor) -> Result<()> {
        self.checked_map("add", "add", &[("a", a), ("b", b)], ("out", out))
    }

    fn accumulate(&self, x: &Tensor, dst: &mut Tensor) -> Result<()> {
        self.checked_map("accumulate", "accumulate", &[("x", x)], ("dst", dst))
    }
}
