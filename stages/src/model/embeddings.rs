//! BERT's input embeddings: forward saving activations, and backward.
//!
//! ```text
//! sum = word[ids] + position[positions] + token_type[type_ids]   // (N, C)
//! out = dropout(LN(sum))                                          // (N, C)
//! ```

use flywheel_kernels::prelude::*;

use super::layer::apply_dropout_backward;
use super::params::EmbeddingParams;
use super::{Batch, Dims, Dropout, KResult};

/// Activations of the embedding block.
pub struct EmbeddingActivations {
    pub word: Tensor,     // (N, C)
    pub position: Tensor, // (N, C)
    pub token_type: Tensor, // (N, C)
    pub partial: Tensor,  // (N, C) word + position
    pub sum: Tensor,      // (N, C)
    pub normed: Tensor,   // (N, C)
    pub mean: Tensor,     // (N)
    pub rstd: Tensor,     // (N)
    /// The block's output, the first layer's input.
    pub out: Tensor,      // (N, C)
}

impl EmbeddingActivations {
    pub fn new(be: &dyn Backend, d: Dims) -> KResult<EmbeddingActivations> {
        let nc = [d.rows(), d.hidden];
        Ok(EmbeddingActivations {
            word: be.zeros(&nc)?,
            position: be.zeros(&nc)?,
            token_type: be.zeros(&nc)?,
            partial: be.zeros(&nc)?,
            sum: be.zeros(&nc)?,
            normed: be.zeros(&nc)?,
            mean: be.zeros(&[d.rows()])?,
            rstd: be.zeros(&[d.rows()])?,
            out: be.zeros(&nc)?,
        })
    }
}

/// Site number of the embedding dropout in [`Dropout::site_seed`].
const DROPOUT_SITE: u64 = 1;

pub fn embeddings_forward(be: &dyn Backend, d: Dims, p: &EmbeddingParams, batch: &Batch, a: &mut EmbeddingActivations, eps: f32, dropout: Option<&Dropout>) -> KResult<()> {
    let n = [d.rows()];
    be.embedding(&batch.ids.reshape(&n)?, &p.word, &mut a.word)?;
    be.embedding(&batch.positions.reshape(&n)?, &p.position, &mut a.position)?;
    be.embedding(&batch.type_ids.reshape(&n)?, &p.token_type, &mut a.token_type)?;
    be.add(&a.word, &a.position, &mut a.partial)?;
    be.add(&a.partial, &a.token_type, &mut a.sum)?;
    be.layer_norm(&a.sum, &p.ln_gamma, &p.ln_beta, eps, &mut a.normed, &mut a.mean, &mut a.rstd)?;
    match dropout {
        Some(dr) if dr.p > 0.0 => be.dropout(&a.normed, dr.p, dr.site_seed(DROPOUT_SITE), &mut a.out),
        _ => be.copy(&a.normed, &mut a.out),
    }
}

/// Backward of `embeddings_forward`; `dsum` is scratch of shape (N, C).
// dout: (N, C); adds into the gradients `g`
#[allow(clippy::too_many_arguments)]
pub fn embeddings_backward(be: &dyn Backend, d: Dims, p: &EmbeddingParams, g: &mut EmbeddingParams, batch: &Batch, a: &EmbeddingActivations, dout: &Tensor, scratch: &mut Tensor, dsum: &mut Tensor, dropout: Option<&Dropout>) -> KResult<()> {
    let n = [d.rows()];
    // out = dropout(normed)
    let dnormed = apply_dropout_backward(be, dout, scratch, dropout.map(|dr| (dr.p, dr.site_seed(DROPOUT_SITE))))?;
    // normed = LN(sum)
    be.layer_norm_backward(&dnormed, &a.sum, &p.ln_gamma, &a.mean, &a.rstd, dsum, &mut g.ln_gamma, &mut g.ln_beta)?;
    // sum = word[ids] + position[positions] + token_type[type_ids]
    be.embedding_backward(dsum, &batch.ids.reshape(&n)?, &mut g.word)?;
    be.embedding_backward(dsum, &batch.positions.reshape(&n)?, &mut g.position)?;
    be.embedding_backward(dsum, &batch.type_ids.reshape(&n)?, &mut g.token_type)
}
