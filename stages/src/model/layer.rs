//! One BERT encoder layer (post-norm, as in the original BERT): forward saving activations,
//! and backward, side by side.
//!
//! ```text
//! q, k, v = x·Wqᵀ + bq, x·Wkᵀ + bk, x·Wvᵀ + bv        // (B, T, C)
//! ctx     = attention(q, k, v, mask)                   // (B, T, C), probs (B, H, T, T)
//! h1      = LN1(x + dropout(ctx·Woᵀ + bo))             // (N, C)
//! f       = h1·W1ᵀ + b1,  g = gelu(f)                  // (N, I)
//! out     = LN2(h1 + dropout(g·W2ᵀ + b2))              // (N, C)
//! ```
//!
//! `N = B·T` rows. Backward ops overwrite activation gradients and add (`+=`) into parameter
//! gradients, as the `Backend` contract states. Attention-probability dropout is not applied
//! because the attention kernel has no dropout; hidden dropout is.

use flywheel_kernels::prelude::*;

use super::params::LayerParams;
use super::{Dims, Dropout, KResult};

/// `out = x·Wᵀ + b` through the scratch `tmp` (the pre-bias product is not needed later).
// x: (N, in), w: (out, in), b: (out), tmp: (N, out), out: (N, out)
pub fn linear_forward(be: &dyn Backend, x: &Tensor, w: &Tensor, b: &Tensor, tmp: &mut Tensor, out: &mut Tensor) -> KResult<()> {
    be.matmul(x, w, tmp, MatmulOptions { transpose_b: true, ..Default::default() })?;
    be.bias_add(tmp, b, out)
}

/// Backward of `linear_forward`: `dx = dout·W` (`+=` with `accumulate_dx`), `dW += doutᵀ·x`,
/// `db += Σ_rows dout`. `dx` is skipped when `None`.
// dout: (N, out), x: (N, in), w: (out, in), dx: (N, in), dw: (out, in), db: (out)
#[allow(clippy::too_many_arguments)]
pub fn linear_backward(be: &dyn Backend, dout: &Tensor, x: &Tensor, w: &Tensor, dx: Option<&mut Tensor>, accumulate_dx: bool, dw: &mut Tensor, db: &mut Tensor) -> KResult<()> {
    be.bias_add_backward(dout, db)?;
    be.matmul(dout, x, dw, MatmulOptions { transpose_a: true, accumulate: true, ..Default::default() })?;
    if let Some(dx) = dx {
        be.matmul(dout, w, dx, MatmulOptions { accumulate: accumulate_dx, ..Default::default() })?;
    }
    Ok(())
}

/// Activations of one layer that its backward reads.
pub struct LayerActivations {
    pub q: Tensor,         // (B, T, C)
    pub k: Tensor,         // (B, T, C)
    pub v: Tensor,         // (B, T, C)
    pub probs: Tensor,     // (B, H, T, T)
    pub context: Tensor,   // (B, T, C)
    pub residual1: Tensor, // (N, C) x + dropout(attention output)
    pub h1: Tensor,        // (N, C)
    pub mean1: Tensor,     // (N)
    pub rstd1: Tensor,     // (N)
    pub ffn_pre: Tensor,   // (N, I) before GELU
    pub ffn_act: Tensor,   // (N, I) after GELU
    pub residual2: Tensor, // (N, C)
    pub out: Tensor,       // (N, C)
    pub mean2: Tensor,     // (N)
    pub rstd2: Tensor,     // (N)
}

impl LayerActivations {
    pub fn new(be: &dyn Backend, d: Dims) -> KResult<LayerActivations> {
        let (btc, nc, ni, n) = ([d.batch, d.seq, d.hidden], [d.rows(), d.hidden], [d.rows(), d.intermediate], [d.rows()]);
        Ok(LayerActivations {
            q: be.zeros(&btc)?,
            k: be.zeros(&btc)?,
            v: be.zeros(&btc)?,
            probs: be.zeros(&[d.batch, d.heads, d.seq, d.seq])?,
            context: be.zeros(&btc)?,
            residual1: be.zeros(&nc)?,
            h1: be.zeros(&nc)?,
            mean1: be.zeros(&n)?,
            rstd1: be.zeros(&n)?,
            ffn_pre: be.zeros(&ni)?,
            ffn_act: be.zeros(&ni)?,
            residual2: be.zeros(&nc)?,
            out: be.zeros(&nc)?,
            mean2: be.zeros(&n)?,
            rstd2: be.zeros(&n)?,
        })
    }
}

/// Buffers that every layer uses in turn and that carry nothing between calls.
pub struct LayerScratch {
    pub tmp_c: Tensor, // (N, C)
    pub tmp_i: Tensor, // (N, I)
    pub dense: Tensor, // (N, C)
    pub dropped: Tensor, // (N, C)
    pub dc1: Tensor,   // (N, C)
    pub dc2: Tensor,   // (N, C)
    pub dc3: Tensor,   // (N, C)
    pub dq: Tensor,    // (B, T, C)
    pub dk: Tensor,    // (B, T, C)
    pub dv: Tensor,    // (B, T, C)
    pub di1: Tensor,   // (N, I)
    pub di2: Tensor,   // (N, I)
}

impl LayerScratch {
    pub fn new(be: &dyn Backend, d: Dims) -> KResult<LayerScratch> {
        let (btc, nc, ni) = ([d.batch, d.seq, d.hidden], [d.rows(), d.hidden], [d.rows(), d.intermediate]);
        Ok(LayerScratch {
            tmp_c: be.zeros(&nc)?,
            tmp_i: be.zeros(&ni)?,
            dense: be.zeros(&nc)?,
            dropped: be.zeros(&nc)?,
            dc1: be.zeros(&nc)?,
            dc2: be.zeros(&nc)?,
            dc3: be.zeros(&nc)?,
            dq: be.zeros(&btc)?,
            dk: be.zeros(&btc)?,
            dv: be.zeros(&btc)?,
            di1: be.zeros(&ni)?,
            di2: be.zeros(&ni)?,
        })
    }
}

/// Dropout seeds of one layer: one per site, derived from the pass's seed.
fn site_seed(dropout: &Dropout, layer: usize, site: u64) -> u64 {
    dropout.site_seed(100 + 2 * layer as u64 + site)
}

/// Forward of one layer.
// x: (N, C), mask: (B, T) u32; writes every field of `a`
#[allow(clippy::too_many_arguments)]
pub fn layer_forward(be: &dyn Backend, d: Dims, p: &LayerParams, x: &Tensor, mask: &Tensor, a: &mut LayerActivations, s: &mut LayerScratch, eps: f32, dropout: Option<&Dropout>, layer: usize) -> KResult<()> {
    let nc = [d.rows(), d.hidden];
    for (w, b, out) in [(&p.query_w, &p.query_b, &a.q), (&p.key_w, &p.key_b, &a.k), (&p.value_w, &p.value_b, &a.v)] {
        linear_forward(be, x, w, b, &mut s.tmp_c, &mut out.reshape(&nc)?)?;
    }
    be.attention(&a.q, &a.k, &a.v, mask, d.heads, &mut a.context, &mut a.probs)?;
    linear_forward(be, &a.context.reshape(&nc)?, &p.attn_out_w, &p.attn_out_b, &mut s.tmp_c, &mut s.dense)?;
    let attn_out = apply_dropout(be, &s.dense, &mut s.dropped, dropout.map(|dr| (dr.p, site_seed(dr, layer, 0))))?;
    be.add(&attn_out, x, &mut a.residual1)?;
    be.layer_norm(&a.residual1, &p.ln1_gamma, &p.ln1_beta, eps, &mut a.h1, &mut a.mean1, &mut a.rstd1)?;

    linear_forward(be, &a.h1, &p.ffn_in_w, &p.ffn_in_b, &mut s.tmp_i, &mut a.ffn_pre)?;
    be.gelu(&a.ffn_pre, &mut a.ffn_act)?;
    linear_forward(be, &a.ffn_act, &p.ffn_out_w, &p.ffn_out_b, &mut s.tmp_c, &mut s.dense)?;
    let ffn_out = apply_dropout(be, &s.dense, &mut s.dropped, dropout.map(|dr| (dr.p, site_seed(dr, layer, 1))))?;
    be.add(&ffn_out, &a.h1, &mut a.residual2)?;
    be.layer_norm(&a.residual2, &p.ln2_gamma, &p.ln2_beta, eps, &mut a.out, &mut a.mean2, &mut a.rstd2)
}

/// Applies dropout into `out` and returns a handle to it, or returns `x` itself when there is
/// no dropout (evaluation, or `p = 0`).
pub fn apply_dropout(be: &dyn Backend, x: &Tensor, out: &mut Tensor, dropout: Option<(f32, u64)>) -> KResult<Tensor> {
    match dropout {
        Some((p, seed)) if p > 0.0 => {
            be.dropout(x, p, seed, out)?;
            Ok(out.clone())
        }
        _ => Ok(x.clone()),
    }
}

/// Backward of `apply_dropout`: returns the gradient of `x`, written into `dx` or, without
/// dropout, `dout` itself.
pub fn apply_dropout_backward(be: &dyn Backend, dout: &Tensor, dx: &mut Tensor, dropout: Option<(f32, u64)>) -> KResult<Tensor> {
    match dropout {
        Some((p, seed)) if p > 0.0 => {
            be.dropout_backward(dout, p, seed, dx)?;
            Ok(dx.clone())
        }
        _ => Ok(dout.clone()),
    }
}

/// Backward of one layer: overwrites `dx`, adds into the gradients `g`.
// dout: (N, C), x: (N, C) the forward input, dx: (N, C)
#[allow(clippy::too_many_arguments)]
pub fn layer_backward(be: &dyn Backend, d: Dims, p: &LayerParams, g: &mut LayerParams, x: &Tensor, a: &LayerActivations, s: &mut LayerScratch, dout: &Tensor, dx: &mut Tensor, dropout: Option<&Dropout>, layer: usize) -> KResult<()> {
    let nc = [d.rows(), d.hidden];
    // out = LN2(residual2)
    be.layer_norm_backward(dout, &a.residual2, &p.ln2_gamma, &a.mean2, &a.rstd2, &mut s.dc1, &mut g.ln2_gamma, &mut g.ln2_beta)?;
    let d_residual2 = s.dc1.clone();
    // residual2 = dropout(ffn_out) + h1
    let d_ffn_out = apply_dropout_backward(be, &d_residual2, &mut s.dc2, dropout.map(|dr| (dr.p, site_seed(dr, layer, 1))))?;
    // ffn_out = g·W2ᵀ + b2
    linear_backward(be, &d_ffn_out, &a.ffn_act, &p.ffn_out_w, Some(&mut s.di1), false, &mut g.ffn_out_w, &mut g.ffn_out_b)?;
    // g = gelu(f)
    be.gelu_backward(&s.di1, &a.ffn_pre, &mut s.di2)?;
    // f = h1·W1ᵀ + b1, and h1 also feeds residual2
    linear_backward(be, &s.di2, &a.h1, &p.ffn_in_w, Some(&mut s.dc3), false, &mut g.ffn_in_w, &mut g.ffn_in_b)?;
    be.accumulate(&d_residual2, &mut s.dc3)?;
    // h1 = LN1(residual1)
    be.layer_norm_backward(&s.dc3, &a.residual1, &p.ln1_gamma, &a.mean1, &a.rstd1, &mut s.dc1, &mut g.ln1_gamma, &mut g.ln1_beta)?;
    let d_residual1 = s.dc1.clone();
    // residual1 = dropout(attn_out) + x
    let d_attn_out = apply_dropout_backward(be, &d_residual1, &mut s.dc2, dropout.map(|dr| (dr.p, site_seed(dr, layer, 0))))?;
    // attn_out = context·Woᵀ + bo
    linear_backward(be, &d_attn_out, &a.context.reshape(&nc)?, &p.attn_out_w, Some(&mut s.dc3), false, &mut g.attn_out_w, &mut g.attn_out_b)?;
    // context = attention(q, k, v)
    be.attention_backward(&s.dc3.reshape(&[d.batch, d.seq, d.hidden])?, &a.q, &a.k, &a.v, &a.probs, d.heads, &mut s.dq, &mut s.dk, &mut s.dv)?;
    // q, k, v = x·Wᵀ + b; x also feeds residual1
    linear_backward(be, &s.dq.reshape(&nc)?, x, &p.query_w, Some(&mut *dx), false, &mut g.query_w, &mut g.query_b)?;
    linear_backward(be, &s.dk.reshape(&nc)?, x, &p.key_w, Some(&mut *dx), true, &mut g.key_w, &mut g.key_b)?;
    linear_backward(be, &s.dv.reshape(&nc)?, x, &p.value_w, Some(&mut *dx), true, &mut g.value_w, &mut g.value_b)?;
    be.accumulate(&d_residual1, dx)
}
