//! `ElementwiseOps`: bias add, GELU, tanh and the residual sums, each with
//! its backward.
//!
//! GELU is the erf form `x·Φ(x)`, evaluated with the shared polynomial in
//! `crate::math` (Abramowitz and Stegun 7.1.26, erf error <= 1.5e-7) on every
//! backend.

use crate::check::{expect_f32, split_rows};
use crate::error::Result;
use crate::tensor::Tensor;

pub trait ElementwiseOps {
    /// Computes `out = x + bias`, adding `bias` to every row.
    // x: (N, C), bias: (C), out: (N, C)
    fn bias_add(&self, x: &Tensor, bias: &Tensor, out: &mut Tensor) -> Result<()>;

    /// Adds the column sums of `dout` into `dbias` (`+=`, a parameter gradient).
    /// The gradient with respect to `x` is `dout` itself.
    // dout: (N, C), dbias: (C)
    fn bias_add_backward(&self, dout: &Tensor, dbias: &mut Tensor) -> Result<()>;

    /// Computes `out = gelu(x) = x·Φ(x)`.
    // x: any shape, out: same shape
    fn gelu(&self, x: &Tensor, out: &mut Tensor) -> Result<()>;

    /// Computes `dx = dout·gelu'(x)` where `gelu'(x) = Φ(x) + x·φ(x)`.
    // dout, x, dx: same shape
    fn gelu_backward(&self, dout: &Tensor, x: &Tensor, dx: &mut Tensor) -> Result<()>;

    /// Computes `out = tanh(x)`, as in BERT's pooler.
    // x: any shape, out: same shape
    fn tanh(&self, x: &Tensor, out: &mut Tensor) -> Result<()>;

    /// Computes `dx = dout·(1 - out²)` from the forward output `out = tanh(x)`.
    // dout, out, dx: same shape
    fn tanh_backward(&self, dout: &Tensor, out: &Tensor, dx: &mut Tensor) -> Result<()>;

    /// Computes `out = a + b`, as in a residual connection. Its backward
    /// passes `dout` to both inputs unchanged.
    // a, b, out: same shape
    fn add(&self, a: &Tensor, b: &Tensor, out: &mut Tensor) -> Result<()>;

    /// Adds `x` into `dst` (`dst += x`), for summing the gradients of an
    /// activation that feeds two branches.
    // x, dst: same shape
    fn accumulate(&self, x: &Tensor, dst: &mut Tensor) -> Result<()>;
}

/// Checks `bias_add` or `bias_add_backward` arguments and returns `(N, C)`.
pub fn check_bias(
    op: &'static str,
    x: &Tensor,
    bias: &Tensor,
    out: Option<&Tensor>,
) -> Result<(usize, usize)> {
    let argument = if op == "bias_add" { "x" } else { "dout" };
    expect_f32(op, argument, x, x.dims())?;
    let (leading, channels) = split_rows(op, argument, x, 1, "at least 1")?;
    let rows = leading.iter().product();
    let bias_argument = if op == "bias_add" { "bias" } else { "dbias" };
    expect_f32(op, bias_argument, bias, &[channels])?;
    if let Some(out) = out {
        expect_f32(op, "out", out, x.dims())?;
    }
    Ok((rows, channels))
}

/// Checks that every named tensor is f32 with the shape of the first one and
/// returns the element count.
pub fn check_same_shape(op: &'static str, tensors: &[(&'static str, &Tensor)]) -> Result<usize> {
    let (_, first) = tensors[0];
    for &(argument, tensor) in tensors {
        expect_f32(op, argument, tensor, first.dims())?;
    }
    Ok(first.numel())
}
