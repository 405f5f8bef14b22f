//! Round trip of a model through the `model` artifact: save a randomly initialised model with
//! [`ModelDir::save`], load it with [`ModelDir::load`], and check that the reloaded model gives
//! bit-identical hidden states, MLM logits and relevance logits on the CPU backend.
//!
//! The comparison with `transformers` lives in `scripts/check_export.py`, which reads a
//! checkpoint written by `cargo run -p flywheel-stages --example export_check`.

use flywheel_kernels::CpuBackend;
use flywheel_kernels::prelude::*;
use flywheel_stages::model::init::init_weights;
use flywheel_stages::model::{Bert, BertConfig, HostBatch, ModelDir, Weights};

fn tiny_config() -> BertConfig {
    let mut config = BertConfig::new(40, 16, 2, 4, 32);
    config.max_position_embeddings = 16;
    config
}

fn batch() -> HostBatch {
    // Two sequences of 7 tokens; the second ends with three padding positions.
    HostBatch {
        batch: 2,
        seq: 7,
        ids: vec![2, 17, 5, 31, 3, 9, 3, 2, 12, 39, 3, 0, 0, 0],
        type_ids: vec![0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0],
        mask: vec![1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0],
    }
}

/// Outputs of one evaluation pass, downloaded to the host.
#[derive(Debug, PartialEq)]
struct Outputs {
    hidden: Vec<f32>,
    mlm_logits: Vec<f32>,
    relevance_logits: Vec<f32>,
}

/// Runs the encoder, the MLM head on every row and the relevance head, without dropout.
fn run(be: &dyn Backend, config: &BertConfig, weights: &Weights, host: &HostBatch) -> Outputs {
    let mut bert = Bert::new(be, config.clone(), weights).unwrap();
    let hidden = bert.encode(be, host, None).unwrap();
    let hidden = be.download(&hidden).unwrap();

    let rows = host.batch * host.seq;
    let positions: Vec<u32> = (0..rows as u32).collect();
    bert.mlm_forward(be, &positions, &host.ids).unwrap();
    let mlm_logits = be.download(&bert.mlm_logits().unwrap()).unwrap();

    let relevance = bert.relevance_forward(be).unwrap();
    let relevance_logits = be.download(&relevance).unwrap();
    Outputs { hidden, mlm_logits, relevance_logits }
}

#[test]
fn saved_model_reloads_bit_identical() {
    let be = CpuBackend::with_threads(1).unwrap();
    let config = tiny_config();
    let weights = init_weights(&config, 11);
    let host = batch();
    let before = run(&be, &config, &weights, &host);

    let dir = tempfile::tempdir().unwrap();
    ModelDir::save(dir.path(), &config, &weights, None).unwrap();
    let (loaded_config, loaded_weights) = ModelDir::load(dir.path()).unwrap();

    // `save` adds `architectures`, `id2label`, `label2id` and `problem_type`, which the
    // loaded configuration keeps among its extra fields.
    let mut expected_config = loaded_config.clone();
    expected_config.extra = config.extra.clone();
    assert_eq!(expected_config, config, "config.json round trip");
    assert_eq!(loaded_config.extra["architectures"], serde_json::json!(["BertForMaskedLM"]));
    assert_eq!(loaded_weights, weights, "model.safetensors round trip");

    let after = run(&be, &loaded_config, &loaded_weights, &host);
    assert_eq!(after.hidden.len(), 2 * 7 * 16, "hidden state size");
    assert_eq!(after.mlm_logits.len(), 2 * 7 * 40, "MLM logits size");
    assert_eq!(after.relevance_logits.len(), 2, "relevance logits size");
    let bits = |values: &[f32]| values.iter().map(|v| v.to_bits()).collect::<Vec<u32>>();
    assert_eq!(bits(&after.hidden), bits(&before.hidden), "hidden states differ after reload");
    assert_eq!(bits(&after.mlm_logits), bits(&before.mlm_logits), "MLM logits differ after reload");
    assert_eq!(bits(&after.relevance_logits), bits(&before.relevance_logits), "relevance logits differ after reload");
}

#[test]
fn saved_model_with_tokenizer_lists_hf_files() {
    let config = tiny_config();
    let weights = init_weights(&config, 5);
    let tokenizer = tempfile::tempdir().unwrap();
    std::fs::write(tokenizer.path().join("tokenizer.json"), "{}").unwrap();
    std::fs::write(tokenizer.path().join("vocab.txt"), "[PAD]\n").unwrap();

    let dir = tempfile::tempdir().unwrap();
    ModelDir::save(dir.path(), &config, &weights, Some(tokenizer.path())).unwrap();
    for name in ["config.json", "model.safetensors", "tokenizer.json", "vocab.txt"] {
        assert!(dir.path().join(name).exists(), "{name} is missing from the saved model");
    }

    // The safetensors names follow `BertForMaskedLM`: the encoder under `bert.` and the heads
    // without a prefix. The decoder weight is tied to the word embeddings, so it is not saved.
    let bytes = std::fs::read(dir.path().join("model.safetensors")).unwrap();
    let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let names: Vec<String> = tensors.names().into_iter().map(str::to_string).collect();
    for expected in ["bert.embeddings.word_embeddings.weight", "bert.encoder.layer.1.output.LayerNorm.bias", "bert.pooler.dense.weight", "cls.predictions.bias", "cls.predictions.transform.dense.weight", "classifier.weight"] {
        assert!(names.iter().any(|n| n == expected), "{expected} is missing; found {names:?}");
    }
    assert!(!names.iter().any(|n| n == "cls.predictions.decoder.weight"), "the tied decoder weight must not be saved");
}
