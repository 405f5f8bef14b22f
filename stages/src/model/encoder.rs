//! [`Bert`]: parameters, gradients and the activations of one pass, with the forward and
//! backward entry points that the training stages call.
//!
//! One training step of any stage reads:
//!
//! ```text
//! bert.encode(be, &batch, dropout)?;          // hidden states (N, C)
//! bert.mlm_forward(be, &positions, &targets)?; // and/or bert.relevance_forward(be)?
//! bert.mlm_backward(be)?;                      // and/or bert.relevance_backward(be, &dlogits)?
//! bert.encode_backward(be)?;                   // adds into bert.grads
//! ```
//!
//! Buffers are allocated for the first batch shape and reused while it stays the same.

use flywheel_kernels::prelude::*;
use std::result::Result;
use flywheel_stage_api::StageError;

use super::checkpoint::Weights;
use super::config::BertConfig;
use super::embeddings::{EmbeddingActivations, embeddings_backward, embeddings_forward};
use super::heads::{MlmActivations, RelevanceActivations, mlm_backward, mlm_forward, relevance_backward, relevance_forward};
use super::layer::{LayerActivations, LayerScratch, layer_backward, layer_forward};
use super::params::BertParams;
use super::{Batch, Dims, Dropout, HostBatch, KResult, kernel_error};

/// Everything sized by the batch shape `(B, T)`.
struct Pass {
    dims: Dims,
    batch: Batch,
    embeddings: EmbeddingActivations,
    layers: Vec<LayerActivations>,
    scratch: LayerScratch,
    dhidden: Tensor, // (N, C) gradient of the encoder output, summed over the heads
    dbuffer: Tensor, // (N, C) gradient flowing between layers
    mlm: Option<MlmActivations>,
    relevance: Option<RelevanceActivations>,
    dropout: Option<Dropout>,
    /// Whether `dhidden` still holds a previous step's gradient.
    dhidden_stale: bool,
}

/// A BERT model on a backend.
pub struct Bert {
    pub config: BertConfig,
    pub params: BertParams,
    /// Parameter gradients; backward calls add into them.
    pub grads: BertParams,
    pass: Option<Pass>,
}

impl Bert {
    /// Uploads `weights`, which must hold every parameter of [`super::params::parameter_shapes`].
    pub fn new(be: &dyn Backend, config: BertConfig, weights: &Weights) -> Result<Bert, StageError> {
        config.validate()?;
        let params = BertParams::upload(be, &config, weights)?;
        let grads = BertParams::zeros(be, &config)?;
        Ok(Bert { config, params, grads, pass: None })
    }

    pub fn weights(&self, be: &dyn Backend) -> Result<Weights, StageError> {
        self.params.download(be)
    }

    fn dims(&self, batch: usize, seq: usize) -> Dims {
        Dims { batch, seq, hidden: self.config.hidden_size, heads: self.config.num_attention_heads, intermediate: self.config.intermediate_size }
    }

    /// Runs the embeddings and every encoder layer; returns the final hidden states (B, T, C).
    /// `dropout` is `None` for evaluation.
    pub fn encode(&mut self, be: &dyn Backend, host: &HostBatch, dropout: Option<Dropout>) -> Result<Tensor, StageError> {
        host.check(&self.config)?;
        let dims = self.dims(host.batch, host.seq);
        if self.pass.as_ref().is_none_or(|pass| pass.dims != dims) {
            self.pass = None; // free the old buffers first
            self.pass = Some(self.allocate(be, dims).map_err(kernel_error)?);
        }
        let eps = self.config.layer_norm_eps;
        let pass = self.pass.as_mut().expect("allocated above");
        pass.batch.write(be, host).map_err(kernel_error)?;
        pass.dropout = dropout;
        pass.dhidden_stale = true;
        let mut run = || -> KResult<()> {
            embeddings_forward(be, dims, &self.params.embeddings, &pass.batch, &mut pass.embeddings, eps, pass.dropout.as_ref())?;
            for index in 0..pass.layers.len() {
                let (before, rest) = pass.layers.split_at_mut(index);
                let x = before.last().map_or(&pass.embeddings.out, |previous| &previous.out);
                layer_forward(be, dims, &self.params.layers[index], x, &pass.batch.mask, &mut rest[0], &mut pass.scratch, eps, pass.dropout.as_ref(), index)?;
            }
            Ok(())
        };
        run().map_err(kernel_error)?;
        self.hidden()
    }

    fn allocate(&self, be: &dyn Backend, dims: Dims) -> KResult<Pass> {
        let nc = [dims.rows(), dims.hidden];
        let mut layers = Vec::with_capacity(self.config.num_hidden_layers);
        for _ in 0..self.config.num_hidden_layers {
            layers.push(LayerActivations::new(be, dims)?);
        }
        Ok(Pass {
            dims,
            batch: Batch::new(be, dims.batch, dims.seq)?,
            embeddings: EmbeddingActivations::new(be, dims)?,
            layers,
            scratch: LayerScratch::new(be, dims)?,
            dhidden: be.zeros(&nc)?,
            dbuffer: be.zeros(&nc)?,
            mlm: None,
            relevance: None,
            dropout: None,
            dhidden_stale: true,
        })
    }

    fn pass(&mut self) -> Result<&mut Pass, StageError> {
        self.pass.as_mut().ok_or_else(|| StageError::failed("a head or backward ran before `Bert::encode`; call `encode` first"))
    }

    /// Final hidden states (B, T, C) of the last `encode`.
    pub fn hidden(&self) -> Result<Tensor, StageError> {
        let pass = self.pass.as_ref().ok_or_else(|| StageError::failed("no forward pass yet; call `Bert::encode` first"))?;
        let out = pass.layers.last().map_or(&pass.embeddings.out, |layer| &layer.out);
        out.reshape(&[pass.dims.batch, pass.dims.seq, pass.dims.hidden]).map_err(kernel_error)
    }

    /// Runs the MLM head on the rows `positions` (indices into the `B·T` rows) with their
    /// `targets` (`heads::IGNORE_INDEX` for padding rows); returns the mean loss as a (1) tensor.
    pub fn mlm_forward(&mut self, be: &dyn Backend, positions: &[u32], targets: &[u32]) -> Result<Tensor, StageError> {
        if positions.len() != targets.len() || positions.is_empty() {
            return Err(StageError::failed(format!("MLM head: {} positions but {} targets; pass one target per position, at least one", positions.len(), targets.len())));
        }
        let (hidden, vocab) = (self.config.hidden_size, self.config.vocab_size);
        let eps = self.config.layer_norm_eps;
        let rows = self.pass()?.dims.rows();
        if let Some(bad) = positions.iter().find(|&&p| p as usize >= rows) {
            return Err(StageError::failed(format!("MLM head: position {bad} is outside the batch's {rows} rows")));
        }
        let hidden_states = self.hidden()?.reshape(&[rows, hidden]).map_err(kernel_error)?;
        let pass = self.pass.as_mut().expect("checked above");
        if pass.mlm.as_ref().is_none_or(|mlm| mlm.rows != positions.len()) {
            pass.mlm = None;
            pass.mlm = Some(MlmActivations::new(be, positions.len(), hidden, vocab).map_err(kernel_error)?);
        }
        let mlm = pass.mlm.as_mut().expect("allocated above");
        let mut run = || -> KResult<()> {
            be.write_u32(&mut mlm.positions, positions)?;
            be.write_u32(&mut mlm.targets, targets)?;
            mlm_forward(be, &self.params.mlm, &self.params.embeddings.word, &hidden_states, mlm, eps)
        };
        run().map_err(kernel_error)?;
        Ok(mlm.loss.clone())
    }

    /// Logits (P, V) of the last `mlm_forward`.
    pub fn mlm_logits(&self) -> Option<Tensor> {
        self.pass.as_ref()?.mlm.as_ref().map(|mlm| mlm.logits.clone())
    }

    /// Backward of the MLM loss into `dhidden` and the head's and word embeddings' gradients.
    pub fn mlm_backward(&mut self, be: &dyn Backend) -> Result<(), StageError> {
        self.prepare_dhidden(be)?;
        let pass = self.pass.as_mut().expect("checked by prepare_dhidden");
        let mlm = pass.mlm.as_mut().ok_or_else(|| StageError::failed("`mlm_backward` without `mlm_forward`; run the forward first"))?;
        let grads = &mut self.grads;
        mlm_backward(be, &self.params.mlm, &mut grads.mlm, &self.params.embeddings.word, &mut grads.embeddings, mlm, &mut pass.dhidden).map_err(kernel_error)
    }

    /// Runs the relevance head; returns the logits (B, 1), one per sequence.
    pub fn relevance_forward(&mut self, be: &dyn Backend) -> Result<Tensor, StageError> {
        let hidden = self.config.hidden_size;
        let pass = self.pass()?;
        let (batch, seq, rows) = (pass.dims.batch, pass.dims.seq, pass.dims.rows());
        if pass.relevance.is_none() {
            pass.relevance = Some(RelevanceActivations::new(be, batch, seq, hidden).map_err(kernel_error)?);
        }
        let hidden_states = self.hidden()?.reshape(&[rows, hidden]).map_err(kernel_error)?;
        let pass = self.pass.as_mut().expect("checked above");
        let head = pass.relevance.as_mut().expect("allocated above");
        relevance_forward(be, &self.params.relevance, &hidden_states, head, pass.dropout.as_ref()).map_err(kernel_error)?;
        Ok(head.logits.clone())
    }

    /// Backward of the relevance head from the logits' gradient `dlogits` (B, 1).
    pub fn relevance_backward(&mut self, be: &dyn Backend, dlogits: &Tensor) -> Result<(), StageError> {
        self.prepare_dhidden(be)?;
        let pass = self.pass.as_mut().expect("checked by prepare_dhidden");
        let head = pass.relevance.as_mut().ok_or_else(|| StageError::failed("`relevance_backward` without `relevance_forward`; run the forward first"))?;
        relevance_backward(be, &self.params.relevance, &mut self.grads.relevance, head, dlogits, &mut pass.dhidden, pass.dropout.as_ref()).map_err(kernel_error)
    }

    fn prepare_dhidden(&mut self, be: &dyn Backend) -> Result<(), StageError> {
        let pass = self.pass()?;
        if pass.dhidden_stale {
            be.fill(&mut pass.dhidden, 0.0).map_err(kernel_error)?;
            pass.dhidden_stale = false;
        }
        Ok(())
    }

    /// Backward through every layer and the embeddings, from the heads' summed gradient.
    pub fn encode_backward(&mut self, be: &dyn Backend) -> Result<(), StageError> {
        self.prepare_dhidden(be)?;
        let pass = self.pass.as_mut().expect("checked by prepare_dhidden");
        let dims = pass.dims;
        let grads = &mut self.grads;
        let params = &self.params;
        let mut run = || -> KResult<()> {
            // The gradient alternates between dhidden and dbuffer, one layer at a time.
            let mut dout = pass.dhidden.clone();
            let mut dx = pass.dbuffer.clone();
            for index in (0..pass.layers.len()).rev() {
                let x = if index == 0 { &pass.embeddings.out } else { &pass.layers[index - 1].out };
                layer_backward(be, dims, &params.layers[index], &mut grads.layers[index], x, &pass.layers[index], &mut pass.scratch, &dout, &mut dx, pass.dropout.as_ref(), index)?;
                std::mem::swap(&mut dout, &mut dx);
            }
            embeddings_backward(be, dims, &params.embeddings, &mut grads.embeddings, &pass.batch, &pass.embeddings, &dout, &mut pass.scratch.dc1, &mut pass.scratch.dc2, pass.dropout.as_ref())
        };
        run().map_err(kernel_error)?;
        pass.dhidden_stale = true;
        Ok(())
    }
}
