//! The two heads on the encoder's output, forward and backward side by side.
//!
//! MLM head, on the `P` gathered rows that carry a prediction target:
//!
//! ```text
//! x      = hidden[positions]              // (P, C)
//! t      = x·Wtᵀ + bt,  u = gelu(t)       // (P, C)
//! z      = LN(u)                          // (P, C)
//! logits = z·Eᵀ + b                       // (P, V), E = word embeddings (tied)
//! loss   = cross_entropy(logits, targets) // rows with target IGNORE_INDEX left out
//! ```
//!
//! Relevance head, on `[CLS]` (position 0 of each sequence), as `BertForSequenceClassification`
//! with one label:
//!
//! ```text
//! cls    = hidden[b·T]                    // (B, C)
//! pooled = tanh(cls·Wpᵀ + bp)             // (B, C)
//! logit  = dropout(pooled)·Wcᵀ + bc       // (B, 1)
//! ```
//!
//! Both backwards add (`+=`) into `dhidden`, which the caller zeroes once per step, so the two
//! heads can train together.

use flywheel_kernels::prelude::*;

use super::layer::{apply_dropout, apply_dropout_backward, linear_backward, linear_forward};
use super::params::{EmbeddingParams, MlmHeadParams, RelevanceHeadParams};
use super::{Dropout, KResult};

/// Target value of a row without an MLM prediction.
pub const IGNORE_INDEX: u32 = u32::MAX;

/// Activations and gradient buffers of the MLM head for `P` rows.
pub struct MlmActivations {
    pub rows: usize,
    pub positions: Tensor,  // (P) u32, row indices into (N, C)
    pub targets: Tensor,    // (P) u32
    pub gathered: Tensor,   // (P, C)
    pub transform: Tensor,  // (P, C) before GELU
    pub activated: Tensor,  // (P, C)
    pub normed: Tensor,     // (P, C)
    pub mean: Tensor,       // (P)
    pub rstd: Tensor,       // (P)
    pub logits: Tensor,     // (P, V)
    pub logsumexp: Tensor,  // (P)
    pub loss: Tensor,       // (1)
    pub dloss: Tensor,      // (1), holds 1
    /// Scratch for the pre-bias logits in the forward, then the logits' gradient.
    pub dlogits: Tensor,    // (P, V)
    pub dc1: Tensor,        // (P, C)
    pub dc2: Tensor,        // (P, C)
}

impl MlmActivations {
    pub fn new(be: &dyn Backend, rows: usize, hidden: usize, vocab: usize) -> KResult<MlmActivations> {
        let pc = [rows, hidden];
        Ok(MlmActivations {
            rows,
            positions: be.zeros_u32(&[rows])?,
            targets: be.zeros_u32(&[rows])?,
            gathered: be.zeros(&pc)?,
            transform: be.zeros(&pc)?,
            activated: be.zeros(&pc)?,
            normed: be.zeros(&pc)?,
            mean: be.zeros(&[rows])?,
            rstd: be.zeros(&[rows])?,
            logits: be.zeros(&[rows, vocab])?,
            logsumexp: be.zeros(&[rows])?,
            loss: be.zeros(&[1])?,
            dloss: be.upload(&[1.0], &[1])?,
            dlogits: be.zeros(&[rows, vocab])?,
            dc1: be.zeros(&pc)?,
            dc2: be.zeros(&pc)?,
        })
    }
}

/// Forward of the MLM head; writes the mean loss over kept rows into `a.loss`.
// hidden: (N, C); a.positions and a.targets are set by the caller
pub fn mlm_forward(be: &dyn Backend, p: &MlmHeadParams, word: &Tensor, hidden: &Tensor, a: &mut MlmActivations, eps: f32) -> KResult<()> {
    be.embedding(&a.positions, hidden, &mut a.gathered)?;
    linear_forward(be, &a.gathered, &p.dense_w, &p.dense_b, &mut a.dc1, &mut a.transform)?;
    be.gelu(&a.transform, &mut a.activated)?;
    be.layer_norm(&a.activated, &p.ln_gamma, &p.ln_beta, eps, &mut a.normed, &mut a.mean, &mut a.rstd)?;
    linear_forward(be, &a.normed, word, &p.decoder_b, &mut a.dlogits, &mut a.logits)?;
    be.cross_entropy(&a.logits, &a.targets, IGNORE_INDEX, &mut a.loss, &mut a.logsumexp)
}

/// Backward of `mlm_forward` for `loss` itself (`dloss = 1`); adds into `dhidden` and the
/// gradients `g` and `g_embeddings.word` (the tied decoder weight).
// dhidden: (N, C)
#[allow(clippy::too_many_arguments)]
pub fn mlm_backward(be: &dyn Backend, p: &MlmHeadParams, g: &mut MlmHeadParams, word: &Tensor, g_embeddings: &mut EmbeddingParams, a: &mut MlmActivations, dhidden: &mut Tensor) -> KResult<()> {
    // loss = cross_entropy(logits)
    be.cross_entropy_backward(&a.dloss, &a.logits, &a.targets, IGNORE_INDEX, &a.logsumexp, &mut a.dlogits)?;
    // logits = z·Eᵀ + b
    linear_backward(be, &a.dlogits, &a.normed, word, Some(&mut a.dc1), false, &mut g_embeddings.word, &mut g.decoder_b)?;
    // z = LN(u)
    be.layer_norm_backward(&a.dc1, &a.activated, &p.ln_gamma, &a.mean, &a.rstd, &mut a.dc2, &mut g.ln_gamma, &mut g.ln_beta)?;
    // u = gelu(t)
    be.gelu_backward(&a.dc2, &a.transform, &mut a.dc1)?;
    // t = x·Wtᵀ + bt
    linear_backward(be, &a.dc1, &a.gathered, &p.dense_w, Some(&mut a.dc2), false, &mut g.dense_w, &mut g.dense_b)?;
    // x = hidden[positions]
    be.embedding_backward(&a.dc2, &a.positions, dhidden)
}

/// Activations and gradient buffers of the relevance head for a batch of `B` sequences.
pub struct RelevanceActivations {
    pub cls_rows: Tensor,   // (B) u32, b·T
    pub cls: Tensor,        // (B, C)
    pub pre: Tensor,        // (B, C) before tanh
    pub pooled: Tensor,     // (B, C)
    pub dropped: Tensor,    // (B, C)
    pub logits: Tensor,     // (B, 1)
    pub tmp_c: Tensor,      // (B, C)
    pub tmp_1: Tensor,      // (B, 1)
    pub dc1: Tensor,        // (B, C)
    pub dc2: Tensor,        // (B, C)
}

impl RelevanceActivations {
    pub fn new(be: &dyn Backend, batch: usize, seq: usize, hidden: usize) -> KResult<RelevanceActivations> {
        let rows: Vec<u32> = (0..batch).map(|b| (b * seq) as u32).collect();
        let bc = [batch, hidden];
        Ok(RelevanceActivations {
            cls_rows: be.upload_u32(&rows, &[batch])?,
            cls: be.zeros(&bc)?,
            pre: be.zeros(&bc)?,
            pooled: be.zeros(&bc)?,
            dropped: be.zeros(&bc)?,
            logits: be.zeros(&[batch, 1])?,
            tmp_c: be.zeros(&bc)?,
            tmp_1: be.zeros(&[batch, 1])?,
            dc1: be.zeros(&bc)?,
            dc2: be.zeros(&bc)?,
        })
    }
}

/// Site number of the classifier dropout in [`Dropout::site_seed`].
const CLASSIFIER_DROPOUT_SITE: u64 = 2;

/// Forward of the relevance head into `a.logits` (B, 1).
// hidden: (N, C)
pub fn relevance_forward(be: &dyn Backend, p: &RelevanceHeadParams, hidden: &Tensor, a: &mut RelevanceActivations, dropout: Option<&Dropout>) -> KResult<()> {
    be.embedding(&a.cls_rows, hidden, &mut a.cls)?;
    linear_forward(be, &a.cls, &p.pooler_w, &p.pooler_b, &mut a.tmp_c, &mut a.pre)?;
    be.tanh(&a.pre, &mut a.pooled)?;
    let dropped = apply_dropout(be, &a.pooled, &mut a.dropped, dropout.map(|dr| (dr.p, dr.site_seed(CLASSIFIER_DROPOUT_SITE))))?;
    linear_forward(be, &dropped, &p.classifier_w, &p.classifier_b, &mut a.tmp_1, &mut a.logits)
}

/// Backward of `relevance_forward`; adds into `dhidden` and the gradients `g`.
// dlogits: (B, 1), dhidden: (N, C)
pub fn relevance_backward(be: &dyn Backend, p: &RelevanceHeadParams, g: &mut RelevanceHeadParams, a: &mut RelevanceActivations, dlogits: &Tensor, dhidden: &mut Tensor, dropout: Option<&Dropout>) -> KResult<()> {
    let site = dropout.map(|dr| (dr.p, dr.site_seed(CLASSIFIER_DROPOUT_SITE)));
    let dropped = if site.is_some_and(|(p, _)| p > 0.0) { a.dropped.clone() } else { a.pooled.clone() };
    // logit = dropped·Wcᵀ + bc
    linear_backward(be, dlogits, &dropped, &p.classifier_w, Some(&mut a.dc1), false, &mut g.classifier_w, &mut g.classifier_b)?;
    // dropped = dropout(pooled)
    let dpooled = apply_dropout_backward(be, &a.dc1, &mut a.dc2, site)?;
    // pooled = tanh(pre)
    be.tanh_backward(&dpooled, &a.pooled, &mut a.tmp_c)?;
    // pre = cls·Wpᵀ + bp
    linear_backward(be, &a.tmp_c, &a.cls, &p.pooler_w, Some(&mut a.dc1), false, &mut g.pooler_w, &mut g.pooler_b)?;
    // cls = hidden[b·T]
    be.embedding_backward(&a.dc1, &a.cls_rows, dhidden)
}
