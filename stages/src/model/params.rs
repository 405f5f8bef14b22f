//! [`BertParams`]: every tensor of the model on a backend, grouped by module, in the canonical
//! Hugging Face naming. The same type holds the parameters, their gradients and the two AdamW
//! moment estimates, so one loop over [`BertParams::named`] reaches all four.
//!
//! Dimension legend: `V` vocabulary, `C` hidden size, `I` intermediate size, `P` maximum
//! positions, `Y` token types.

use flywheel_kernels::prelude::*;
use std::result::Result;
use flywheel_stage_api::StageError;

use super::checkpoint::{HostTensor, Weights};
use super::config::BertConfig;
use super::kernel_error;

/// Declares a group of named tensors with `named`, `named_mut` and a constructor that asks a
/// closure for each tensor by its name relative to the group.
macro_rules! tensor_group {
    ($(#[$doc:meta])* $group:ident { $($field:ident => $name:literal,)* }) => {
        $(#[$doc])*
        pub struct $group {
            $(pub $field: Tensor,)*
        }

        impl $group {
            fn build(make: &mut dyn FnMut(&str) -> Result<Tensor, StageError>) -> Result<Self, StageError> {
                Ok($group { $($field: make($name)?,)* })
            }

            pub fn named(&self) -> Vec<(&'static str, &Tensor)> {
                vec![$(($name, &self.$field),)*]
            }

            pub fn named_mut(&mut self) -> Vec<(&'static str, &mut Tensor)> {
                vec![$(($name, &mut self.$field),)*]
            }
        }
    };
}

tensor_group! {
    /// Word, position and token-type tables and the layer norm after their sum.
    EmbeddingParams {
        word => "word_embeddings.weight",             // (V, C)
        position => "position_embeddings.weight",     // (P, C)
        token_type => "token_type_embeddings.weight", // (Y, C)
        ln_gamma => "LayerNorm.weight",               // (C)
        ln_beta => "LayerNorm.bias",                  // (C)
    }
}

tensor_group! {
    /// One encoder layer. Linear weights are `(out, in)` as in `torch.nn.Linear`.
    LayerParams {
        query_w => "attention.self.query.weight",       // (C, C)
        query_b => "attention.self.query.bias",         // (C)
        key_w => "attention.self.key.weight",           // (C, C)
        key_b => "attention.self.key.bias",             // (C)
        value_w => "attention.self.value.weight",       // (C, C)
        value_b => "attention.self.value.bias",         // (C)
        attn_out_w => "attention.output.dense.weight",  // (C, C)
        attn_out_b => "attention.output.dense.bias",    // (C)
        ln1_gamma => "attention.output.LayerNorm.weight", // (C)
        ln1_beta => "attention.output.LayerNorm.bias",    // (C)
        ffn_in_w => "intermediate.dense.weight",        // (I, C)
        ffn_in_b => "intermediate.dense.bias",          // (I)
        ffn_out_w => "output.dense.weight",             // (C, I)
        ffn_out_b => "output.dense.bias",               // (C)
        ln2_gamma => "output.LayerNorm.weight",         // (C)
        ln2_beta => "output.LayerNorm.bias",            // (C)
    }
}

tensor_group! {
    /// The masked-language-model head. Its decoder weight is the word embedding table.
    MlmHeadParams {
        dense_w => "transform.dense.weight",     // (C, C)
        dense_b => "transform.dense.bias",       // (C)
        ln_gamma => "transform.LayerNorm.weight", // (C)
        ln_beta => "transform.LayerNorm.bias",   // (C)
        decoder_b => "bias",                     // (V)
    }
}

tensor_group! {
    /// The relevance head: BERT's pooler (dense + tanh on `[CLS]`) and a one-logit classifier.
    RelevanceHeadParams {
        pooler_w => "pooler.dense.weight",   // (C, C)
        pooler_b => "pooler.dense.bias",     // (C)
        classifier_w => "classifier.weight", // (1, C)
        classifier_b => "classifier.bias",   // (1)
    }
}

/// All model tensors; also used for their gradients and the AdamW moments.
pub struct BertParams {
    pub embeddings: EmbeddingParams,
    pub layers: Vec<LayerParams>,
    pub mlm: MlmHeadParams,
    pub relevance: RelevanceHeadParams,
}

/// Returns every canonical parameter name with its shape, in the order of [`BertParams::named`].
pub fn parameter_shapes(config: &BertConfig) -> Vec<(String, Vec<usize>)> {
    let (v, c, i) = (config.vocab_size, config.hidden_size, config.intermediate_size);
    let mut shapes = vec![
        ("embeddings.word_embeddings.weight".to_string(), vec![v, c]),
        ("embeddings.position_embeddings.weight".to_string(), vec![config.max_position_embeddings, c]),
        ("embeddings.token_type_embeddings.weight".to_string(), vec![config.type_vocab_size, c]),
        ("embeddings.LayerNorm.weight".to_string(), vec![c]),
        ("embeddings.LayerNorm.bias".to_string(), vec![c]),
    ];
    for layer in 0..config.num_hidden_layers {
        let layer_shapes: [(&str, Vec<usize>); 16] = [
            ("attention.self.query.weight", vec![c, c]),
            ("attention.self.query.bias", vec![c]),
            ("attention.self.key.weight", vec![c, c]),
            ("attention.self.key.bias", vec![c]),
            ("attention.self.value.weight", vec![c, c]),
            ("attention.self.value.bias", vec![c]),
            ("attention.output.dense.weight", vec![c, c]),
            ("attention.output.dense.bias", vec![c]),
            ("attention.output.LayerNorm.weight", vec![c]),
            ("attention.output.LayerNorm.bias", vec![c]),
            ("intermediate.dense.weight", vec![i, c]),
            ("intermediate.dense.bias", vec![i]),
            ("output.dense.weight", vec![c, i]),
            ("output.dense.bias", vec![c]),
            ("output.LayerNorm.weight", vec![c]),
            ("output.LayerNorm.bias", vec![c]),
        ];
        shapes.extend(layer_shapes.into_iter().map(|(name, shape)| (format!("encoder.layer.{layer}.{name}"), shape)));
    }
    shapes.extend([
        ("cls.predictions.transform.dense.weight".to_string(), vec![c, c]),
        ("cls.predictions.transform.dense.bias".to_string(), vec![c]),
        ("cls.predictions.transform.LayerNorm.weight".to_string(), vec![c]),
        ("cls.predictions.transform.LayerNorm.bias".to_string(), vec![c]),
        ("cls.predictions.bias".to_string(), vec![v]),
        ("pooler.dense.weight".to_string(), vec![c, c]),
        ("pooler.dense.bias".to_string(), vec![c]),
        ("classifier.weight".to_string(), vec![1, c]),
        ("classifier.bias".to_string(), vec![1]),
    ]);
    shapes
}

impl BertParams {
    /// Builds the set by asking `make` for each tensor by canonical name and shape.
    pub fn build(config: &BertConfig, mut make: impl FnMut(&str, &[usize]) -> Result<Tensor, StageError>) -> Result<BertParams, StageError> {
        let shapes: std::collections::HashMap<String, Vec<usize>> = parameter_shapes(config).into_iter().collect();
        let mut make_in = |prefix: &str, name: &str| {
            let full = format!("{prefix}{name}");
            make(&full, &shapes[&full])
        };
        let embeddings = EmbeddingParams::build(&mut |name| make_in("embeddings.", name))?;
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for layer in 0..config.num_hidden_layers {
            let prefix = format!("encoder.layer.{layer}.");
            layers.push(LayerParams::build(&mut |name| make_in(&prefix, name))?);
        }
        let mlm = MlmHeadParams::build(&mut |name| make_in("cls.predictions.", name))?;
        let relevance = RelevanceHeadParams::build(&mut |name| make_in("", name))?;
        Ok(BertParams { embeddings, layers, mlm, relevance })
    }

    /// Allocates a zero-filled set, for gradients and optimizer moments.
    pub fn zeros(backend: &dyn Backend, config: &BertConfig) -> Result<BertParams, StageError> {
        BertParams::build(config, |_, shape| backend.zeros(shape).map_err(kernel_error))
    }

    /// Uploads host weights. Every parameter must be present with its expected shape.
    pub fn upload(backend: &dyn Backend, config: &BertConfig, weights: &Weights) -> Result<BertParams, StageError> {
        BertParams::build(config, |name, shape| {
            let tensor = weights.get(name).ok_or_else(|| StageError::failed(format!("the weights lack parameter `{name}` of shape {shape:?}")))?;
            if tensor.shape != shape {
                return Err(StageError::failed(format!(
                    "parameter `{name}` has shape {:?} but the config needs {shape:?}; check that config.json matches model.safetensors",
                    tensor.shape
                )));
            }
            backend.upload(&tensor.data, shape).map_err(kernel_error)
        })
    }

    /// Copies every tensor to the host.
    pub fn download(&self, backend: &dyn Backend) -> Result<Weights, StageError> {
        let mut weights = Weights::default();
        for (name, tensor) in self.named() {
            let data = backend.download(tensor).map_err(kernel_error)?;
            weights.insert(name, HostTensor::new(tensor.dims().to_vec(), data));
        }
        Ok(weights)
    }

    /// Pairs every tensor with its canonical name, in [`parameter_shapes`] order.
    pub fn named(&self) -> Vec<(String, &Tensor)> {
        let mut out: Vec<(String, &Tensor)> = Vec::new();
        out.extend(self.embeddings.named().into_iter().map(|(n, t)| (format!("embeddings.{n}"), t)));
        for (index, layer) in self.layers.iter().enumerate() {
            out.extend(layer.named().into_iter().map(|(n, t)| (format!("encoder.layer.{index}.{n}"), t)));
        }
        out.extend(self.mlm.named().into_iter().map(|(n, t)| (format!("cls.predictions.{n}"), t)));
        out.extend(self.relevance.named().into_iter().map(|(n, t)| (n.to_string(), t)));
        out
    }

    /// Mutable form of [`BertParams::named`], in the same order.
    pub fn named_mut(&mut self) -> Vec<(String, &mut Tensor)> {
        let mut out: Vec<(String, &mut Tensor)> = Vec::new();
        out.extend(self.embeddings.named_mut().into_iter().map(|(n, t)| (format!("embeddings.{n}"), t)));
        for (index, layer) in self.layers.iter_mut().enumerate() {
            out.extend(layer.named_mut().into_iter().map(|(n, t)| (format!("encoder.layer.{index}.{n}"), t)));
        }
        out.extend(self.mlm.named_mut().into_iter().map(|(n, t)| (format!("cls.predictions.{n}"), t)));
        out.extend(self.relevance.named_mut().into_iter().map(|(n, t)| (n.to_string(), t)));
        out
    }

    /// Sets every tensor to zero, as before the first micro-batch of a step.
    pub fn fill_zero(&mut self, backend: &dyn Backend) -> Result<(), StageError> {
        for (_, tensor) in self.named_mut() {
            backend.fill(tensor, 0.0).map_err(kernel_error)?;
        }
        Ok(())
    }
}
