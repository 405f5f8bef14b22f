//! Checkpoints in the Hugging Face layout: `config.json`, `model.safetensors`, `tokenizer.json`.
//!
//! [`Weights`] holds host tensors by canonical parameter name: the `transformers` name without
//! the `bert.` prefix (`embeddings.word_embeddings.weight`, `encoder.layer.0.attention.self.
//! query.weight`, `pooler.dense.weight`, `cls.predictions.transform.dense.weight`,
//! `classifier.weight`). Loading accepts names with or without `bert.`, the old `gamma`/`beta`
//! layer-norm names, and f16/bf16 data; it ignores buffers such as `embeddings.position_ids`.
//! Saving writes the `BertForMaskedLM` / `BertForSequenceClassification` layout, so
//! `transformers` loads the files as `BertModel`, `BertForMaskedLM` or
//! `BertForSequenceClassification` with one label.

use std::collections::BTreeMap;
use std::path::Path;

use flywheel_stage_api::StageError;
use safetensors::tensor::{Dtype, TensorView};

/// A host tensor: row-major f32 data and its shape.
#[derive(Clone, Debug, PartialEq)]
pub struct HostTensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl HostTensor {
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> HostTensor {
        assert_eq!(shape.iter().product::<usize>(), data.len(), "shape {shape:?} does not match {} values", data.len());
        HostTensor { shape, data }
    }
}

/// Model parameters by canonical name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Weights(pub BTreeMap<String, HostTensor>);

/// Buffers that `transformers` stores beside parameters; they carry no learned values.
const IGNORED_SUFFIXES: [&str; 2] = ["position_ids", "token_type_ids"];

/// Returns the canonical name of a checkpoint tensor, or `None` for a buffer to skip.
pub fn canonical_name(name: &str) -> Option<String> {
    if IGNORED_SUFFIXES.iter().any(|s| name.ends_with(s)) {
        return None;
    }
    let name = name.strip_prefix("bert.").unwrap_or(name);
    let name = name.replace("LayerNorm.gamma", "LayerNorm.weight").replace("LayerNorm.beta", "LayerNorm.bias");
    // The decoder weight is tied to the word embeddings and its bias to `cls.predictions.bias`.
    if name == "cls.predictions.decoder.weight" || name == "cls.predictions.decoder.bias" {
        return None;
    }
    Some(name)
}

/// Returns the name a canonical parameter gets in a saved checkpoint.
fn saved_name(canonical: &str) -> String {
    if canonical.starts_with("cls.") || canonical.starts_with("classifier.") {
        canonical.to_string()
    } else {
        format!("bert.{canonical}")
    }
}

fn to_f32(view: &TensorView<'_>, name: &str, path: &Path) -> Result<Vec<f32>, StageError> {
    let bytes = view.data();
    let values = match view.dtype() {
        Dtype::F32 => bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
        Dtype::F16 => bytes.chunks_exact(2).map(|b| f16_to_f32(u16::from_le_bytes([b[0], b[1]]))).collect(),
        Dtype::BF16 => bytes.chunks_exact(2).map(|b| f32::from_bits((u16::from_le_bytes([b[0], b[1]]) as u32) << 16)).collect(),
        other => {
            return Err(StageError::failed(format!("{}: tensor `{name}` has dtype {other:?}; flywheel reads F32, F16 and BF16", path.display())));
        }
    };
    Ok(values)
}

/// Converts an IEEE half-precision value.
fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h >> 15) as u32) << 31;
    let exponent = ((h >> 10) & 0x1f) as u32;
    let mantissa = (h & 0x3ff) as u32;
    let bits = match (exponent, mantissa) {
        (0, 0) => sign,
        (0, m) => {
            // Subnormal: normalize the mantissa.
            let shift = m.leading_zeros() - 21;
            sign | ((127 - 15 + 1 - shift) << 23) | (((m << shift) & 0x3ff) << 13)
        }
        (0x1f, m) => sign | 0x7f80_0000 | (m << 13),
        (e, m) => sign | ((e + 127 - 15) << 23) | (m << 13),
    };
    f32::from_bits(bits)
}

impl Weights {
    pub fn get(&self, name: &str) -> Option<&HostTensor> {
        self.0.get(name)
    }

    pub fn insert(&mut self, name: impl Into<String>, tensor: HostTensor) {
        self.0.insert(name.into(), tensor);
    }

    /// Reads `model.safetensors` (or any safetensors file).
    pub fn load(path: &Path) -> Result<Weights, StageError> {
        let bytes = std::fs::read(path).map_err(|e| StageError::file(path, e))?;
        let tensors = safetensors::SafeTensors::deserialize(&bytes)
            .map_err(|e| StageError::failed(format!("{}: not a valid safetensors file: {e}", path.display())))?;
        let mut weights = Weights::default();
        for (name, view) in tensors.tensors() {
            let Some(canonical) = canonical_name(&name) else { continue };
            let data = to_f32(&view, &name, path)?;
            weights.insert(canonical, HostTensor::new(view.shape().to_vec(), data));
        }
        Ok(weights)
    }

    /// Writes a safetensors file in the `transformers` naming.
    pub fn save(&self, path: &Path) -> Result<(), StageError> {
        let mut buffers: Vec<(String, Vec<u8>, Vec<usize>)> = Vec::with_capacity(self.0.len());
        for (name, tensor) in &self.0 {
            let bytes: Vec<u8> = tensor.data.iter().flat_map(|v| v.to_le_bytes()).collect();
            buffers.push((saved_name(name), bytes, tensor.shape.clone()));
        }
        let views: Vec<(String, TensorView<'_>)> = buffers
            .iter()
            .map(|(name, bytes, shape)| (name.clone(), TensorView::new(Dtype::F32, shape.clone(), bytes).expect("sizes match")))
            .collect();
        let mut metadata = std::collections::HashMap::new();
        metadata.insert("format".to_string(), "pt".to_string());
        let bytes = safetensors::serialize(views, Some(metadata)).map_err(|e| StageError::failed(format!("cannot serialize weights: {e}")))?;
        std::fs::write(path, bytes).map_err(|e| StageError::file(path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_names_strip_prefix_and_skip_buffers() {
        assert_eq!(canonical_name("bert.embeddings.word_embeddings.weight").as_deref(), Some("embeddings.word_embeddings.weight"));
        assert_eq!(canonical_name("embeddings.LayerNorm.gamma").as_deref(), Some("embeddings.LayerNorm.weight"));
        assert_eq!(canonical_name("embeddings.position_ids"), None);
        assert_eq!(canonical_name("cls.predictions.decoder.weight"), None);
        assert_eq!(canonical_name("classifier.weight").as_deref(), Some("classifier.weight"));
    }

    #[test]
    fn half_precision_converts_exactly() {
        for (bits, value) in [(0x3c00u16, 1.0f32), (0xc000, -2.0), (0x3555, 0.333_251_95), (0x0001, 5.960_464_5e-8), (0x0000, 0.0)] {
            assert_eq!(f16_to_f32(bits), value, "{bits:#06x}");
        }
    }

    #[test]
    fn weights_round_trip_through_safetensors() {
        let dir = tempfile::tempdir().unwrap();
        let mut weights = Weights::default();
        weights.insert("embeddings.word_embeddings.weight", HostTensor::new(vec![3, 2], vec![1.0, -2.0, 3.5, 0.0, 1e-8, 7.0]));
        weights.insert("classifier.bias", HostTensor::new(vec![1], vec![0.25]));
        let path = dir.path().join("model.safetensors");
        weights.save(&path).unwrap();
        assert_eq!(Weights::load(&path).unwrap(), weights);
    }
}
