//! Random initialisation as `transformers` does for BERT: linear and embedding weights drawn
//! from a normal distribution with standard deviation `initializer_range`, here truncated at
//! two standard deviations; biases 0; layer-norm weights 1; the padding token's embedding 0.
//!
//! Each tensor draws from its own stream seeded by (seed, name), so adding a tensor or a layer
//! leaves the values of the others unchanged.

use crate::random::Rng;

use super::checkpoint::{HostTensor, Weights};
use super::config::BertConfig;
use super::params::parameter_shapes;

/// Returns the initial value of one parameter.
pub fn init_tensor(config: &BertConfig, name: &str, shape: &[usize], seed: u64) -> HostTensor {
    let count: usize = shape.iter().product();
    let is_layer_norm_weight = name.ends_with("LayerNorm.weight");
    let is_bias = name.ends_with(".bias") || name == "cls.predictions.bias";
    let data = if is_layer_norm_weight {
        vec![1.0; count]
    } else if is_bias {
        vec![0.0; count]
    } else {
        let mut rng = Rng::for_item(seed, name);
        let std = f64::from(config.initializer_range);
        let mut data: Vec<f32> = (0..count).map(|_| (truncated_normal(&mut rng) * std) as f32).collect();
        if name == "embeddings.word_embeddings.weight" && config.pad_token_id < config.vocab_size {
            let c = config.hidden_size;
            data[config.pad_token_id * c..(config.pad_token_id + 1) * c].fill(0.0);
        }
        data
    };
    HostTensor::new(shape.to_vec(), data)
}

/// Draws from the standard normal, redrawing values outside [-2, 2].
fn truncated_normal(rng: &mut Rng) -> f64 {
    loop {
        let value = rng.normal();
        if value.abs() <= 2.0 {
            return value;
        }
    }
}

/// Returns freshly initialised weights for `config`.
pub fn init_weights(config: &BertConfig, seed: u64) -> Weights {
    let mut weights = Weights::default();
    for (name, shape) in parameter_shapes(config) {
        let tensor = init_tensor(config, &name, &shape, seed);
        weights.insert(name, tensor);
    }
    weights
}

/// Adds an initial value for every parameter that `weights` lacks (a checkpoint saved as
/// `BertModel` has no MLM head or classifier) and returns the names it added.
pub fn complete_weights(config: &BertConfig, weights: &mut Weights, seed: u64) -> Vec<String> {
    let mut added = Vec::new();
    for (name, shape) in parameter_shapes(config) {
        if weights.get(&name).is_none() {
            let tensor = init_tensor(config, &name, &shape, seed);
            weights.insert(name.clone(), tensor);
            added.push(name);
        }
    }
    added
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_is_deterministic_and_truncated() {
        let config = BertConfig::new(50, 16, 2, 2, 32);
        let a = init_weights(&config, 7);
        assert_eq!(a, init_weights(&config, 7));
        assert_ne!(a, init_weights(&config, 8));
        let word = a.get("embeddings.word_embeddings.weight").unwrap();
        assert!(word.data.iter().all(|v| v.abs() <= 2.0 * 0.02 + 1e-7));
        assert!(word.data[..16].iter().all(|&v| v == 0.0), "padding row must be zero");
        assert!(a.get("encoder.layer.1.output.LayerNorm.weight").unwrap().data.iter().all(|&v| v == 1.0));
        assert!(a.get("classifier.bias").unwrap().data.iter().all(|&v| v == 0.0));
    }
}
