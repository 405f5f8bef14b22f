//! [`BertConfig`]: the model hyper-parameters, read from and written to a Hugging Face
//! `config.json` (the `BertConfig` fields; unknown fields are kept so a round trip loses
//! nothing).

use std::path::Path;

use flywheel_stage_api::StageError;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BertConfig {
    #[serde(default = "default_model_type")]
    pub model_type: String,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    #[serde(default = "default_hidden_act")]
    pub hidden_act: String,
    #[serde(default = "default_dropout")]
    pub hidden_dropout_prob: f32,
    #[serde(default = "default_dropout")]
    pub attention_probs_dropout_prob: f32,
    #[serde(default = "default_max_positions")]
    pub max_position_embeddings: usize,
    #[serde(default = "default_type_vocab")]
    pub type_vocab_size: usize,
    #[serde(default = "default_init_range")]
    pub initializer_range: f32,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f32,
    #[serde(default)]
    pub pad_token_id: usize,
    /// Every other field of the file, written back unchanged.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn default_model_type() -> String {
    "bert".into()
}
fn default_hidden_act() -> String {
    "gelu".into()
}
fn default_dropout() -> f32 {
    0.1
}
fn default_max_positions() -> usize {
    512
}
fn default_type_vocab() -> usize {
    2
}
fn default_init_range() -> f32 {
    0.02
}
fn default_eps() -> f32 {
    1e-12
}

impl BertConfig {
    /// A fresh configuration of the given size, with BERT's defaults for the rest.
    pub fn new(vocab_size: usize, hidden_size: usize, num_hidden_layers: usize, num_attention_heads: usize, intermediate_size: usize) -> Self {
        BertConfig {
            model_type: default_model_type(),
            vocab_size,
            hidden_size,
            num_hidden_layers,
            num_attention_heads,
            intermediate_size,
            hidden_act: default_hidden_act(),
            hidden_dropout_prob: default_dropout(),
            attention_probs_dropout_prob: default_dropout(),
            max_position_embeddings: default_max_positions(),
            type_vocab_size: default_type_vocab(),
            initializer_range: default_init_range(),
            layer_norm_eps: default_eps(),
            pad_token_id: 0,
            extra: Map::new(),
        }
    }

    /// Checks the values the model relies on.
    pub fn validate(&self) -> Result<(), StageError> {
        let invalid = |message: String| Err(StageError::failed(format!("invalid BERT config: {message}")));
        if self.model_type != "bert" {
            return invalid(format!("model_type is `{}`; flywheel trains `bert` models", self.model_type));
        }
        if self.hidden_act != "gelu" {
            return invalid(format!("hidden_act is `{}`; only the erf `gelu` is implemented", self.hidden_act));
        }
        if self.num_attention_heads == 0 || self.hidden_size % self.num_attention_heads != 0 {
            return invalid(format!("hidden_size {} is not a multiple of num_attention_heads {}", self.hidden_size, self.num_attention_heads));
        }
        for (name, value) in [("vocab_size", self.vocab_size), ("hidden_size", self.hidden_size), ("intermediate_size", self.intermediate_size), ("max_position_embeddings", self.max_position_embeddings), ("type_vocab_size", self.type_vocab_size)] {
            if value == 0 {
                return invalid(format!("{name} is 0"));
            }
        }
        for (name, p) in [("hidden_dropout_prob", self.hidden_dropout_prob), ("attention_probs_dropout_prob", self.attention_probs_dropout_prob)] {
            if !(0.0..1.0).contains(&p) {
                return invalid(format!("{name} is {p}; it must be in [0, 1)"));
            }
        }
        Ok(())
    }

    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    pub fn load(path: &Path) -> Result<BertConfig, StageError> {
        let bytes = std::fs::read(path).map_err(|e| StageError::file(path, e))?;
        let config: BertConfig = serde_json::from_slice(&bytes).map_err(|e| StageError::failed(format!("{}: not a BERT config.json: {e}", path.display())))?;
        config.validate()?;
        Ok(config)
    }

    /// Writes `config.json`, naming the model classes that can load the checkpoint.
    pub fn save(&self, path: &Path) -> Result<(), StageError> {
        let mut value = serde_json::to_value(self).expect("config serializes");
        let map = value.as_object_mut().expect("config is an object");
        map.insert("architectures".into(), serde_json::json!(["BertForMaskedLM"]));
        // One label, so `BertForSequenceClassification` loads the relevance head as regression.
        map.insert("id2label".into(), serde_json::json!({"0": "relevance"}));
        map.insert("label2id".into(), serde_json::json!({"relevance": 0}));
        map.insert("problem_type".into(), serde_json::json!("regression"));
        let text = serde_json::to_string_pretty(&value).expect("config serializes");
        std::fs::write(path, text).map_err(|e| StageError::file(path, e))
    }
}
