//! Writes a small random model as a `model` artifact directory, plus the outputs flywheel
//! computes for it on the CPU backend, so `scripts/check_export.py` can load the same
//! directory with `transformers` and compare.
//!
//! ```text
//! cargo run -p flywheel-stages --example export_check -- /tmp/export-check
//! python3 scripts/check_export.py /tmp/export-check
//! ```
//!
//! The directory gets `config.json` and `model.safetensors` (the checkpoint) and
//! `flywheel_outputs.json`: the inputs, the final hidden states (B, T, C), the MLM logits of
//! every position (B·T, V) and the relevance logits (B, 1).

use std::path::PathBuf;

use flywheel_kernels::CpuBackend;
use flywheel_kernels::prelude::*;
use flywheel_stages::model::init::init_weights;
use flywheel_stages::model::{Bert, BertConfig, HostBatch, ModelDir, Weights};
use serde_json::json;

/// Adds deterministic noise of amplitude `scale` to every parameter, so biases and layer-norm
/// weights differ from their initial 0 and 1 and a misplaced bias shows in the comparison.
fn perturb(weights: &mut Weights, scale: f32) {
    let mut state: u64 = 0x2545_F491_4F6C_DD1D;
    for tensor in weights.0.values_mut() {
        for value in &mut tensor.data {
            // xorshift64, mapped to [-1, 1).
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let unit = (state >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0;
            *value += scale * unit;
        }
    }
}

fn main() {
    let dir = match std::env::args().nth(1).or_else(|| std::env::var("FLYWHEEL_EXPORT_DIR").ok()) {
        Some(dir) => PathBuf::from(dir),
        None => {
            eprintln!("usage: export_check OUTPUT_DIR (or set FLYWHEEL_EXPORT_DIR)");
            std::process::exit(2);
        }
    };

    let mut config = BertConfig::new(120, 32, 2, 4, 64);
    config.max_position_embeddings = 32;
    config.initializer_range = 0.2;
    let mut weights = init_weights(&config, 2024);
    perturb(&mut weights, 0.05);

    // Two sequences of 9 tokens; the second is a pair with three padding positions.
    let host = HostBatch {
        batch: 2,
        seq: 9,
        ids: vec![2, 17, 45, 88, 5, 31, 119, 64, 3, 2, 12, 39, 3, 77, 8, 0, 0, 0],
        type_ids: vec![0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0],
        mask: vec![1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0],
    };

    let be = CpuBackend::with_threads(1).expect("one CPU thread starts");
    let mut bert = Bert::new(&be, config.clone(), &weights).expect("weights match the config");
    let hidden = be.download(&bert.encode(&be, &host, None).expect("forward runs")).expect("download");
    let positions: Vec<u32> = (0..(host.batch * host.seq) as u32).collect();
    bert.mlm_forward(&be, &positions, &host.ids).expect("MLM head runs");
    let mlm_logits = be.download(&bert.mlm_logits().expect("MLM head ran")).expect("download");
    let relevance_logits = be.download(&bert.relevance_forward(&be).expect("relevance head runs")).expect("download");

    ModelDir::save(&dir, &config, &weights, None).unwrap_or_else(|e| panic!("failed to save the model into {}: {e}", dir.display()));
    let outputs = json!({
        "batch": host.batch,
        "seq": host.seq,
        "hidden_size": config.hidden_size,
        "vocab_size": config.vocab_size,
        "input_ids": host.ids,
        "token_type_ids": host.type_ids,
        "attention_mask": host.mask,
        "hidden": hidden,
        "mlm_logits": mlm_logits,
        "relevance_logits": relevance_logits,
    });
    let path = dir.join("flywheel_outputs.json");
    std::fs::write(&path, serde_json::to_vec(&outputs).expect("outputs serialize")).unwrap_or_else(|e| panic!("failed to write {}: {e}", path.display()));
    println!("wrote the checkpoint and flywheel's outputs to {}", dir.display());
}
