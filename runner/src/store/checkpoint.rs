//! Checks of in-node resume checkpoints under `checkpoints/<key>/`, for `flywheel verify`.
//!
//! A stage owns the layout of its checkpoint directory, so the runner checks only what a
//! checkpoint declares. A subdirectory with a `state.json` must contain valid JSON. When that
//! JSON has a `files` object of `NAME: "b3:<hex>"`, each named file must exist beside it and
//! hash to its digest. The training stages write checkpoints in this form. Not checked: a
//! checkpoint without `state.json` (the test fixtures' `step` file, for example), and a
//! directory whose name starts with `.`, which is a checkpoint still being written (the
//! trainer's `.tmp-step-N/`) that no run resumes from.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::hash::{hash_file, is_confined};

/// A checkpoint directory that a run must not resume from.
#[derive(Debug)]
pub struct BadCheckpoint {
    /// The checkpoint directory, `checkpoints/<key>/<name>/`.
    pub dir: PathBuf,
    pub reason: String,
}

/// Checks every checkpoint below `root` (the store's `checkpoints/`) and returns the bad ones.
pub fn check_all(root: &Path) -> io::Result<Vec<BadCheckpoint>> {
    let mut bad = Vec::new();
    let keys = match fs::read_dir(root) {
        Ok(keys) => keys,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(bad),
        Err(err) => return Err(err),
    };
    for key in keys {
        let key = key?;
        if !key.file_type()?.is_dir() {
            continue;
        }
        for entry in fs::read_dir(key.path())? {
            let entry = entry?;
            let dir = entry.path();
            if !entry.file_name().to_string_lossy().starts_with('.')
                && dir.join("state.json").exists()
                && let Err(reason) = check_one(&dir)
            {
                bad.push(BadCheckpoint { dir, reason });
            }
        }
    }
    bad.sort_by(|a, b| a.dir.cmp(&b.dir));
    Ok(bad)
}

/// Checks one checkpoint directory that has a `state.json`.
fn check_one(dir: &Path) -> Result<(), String> {
    let bytes = fs::read(dir.join("state.json")).map_err(|e| format!("state.json is unreadable: {e}"))?;
    let state: Value = serde_json::from_slice(&bytes).map_err(|e| format!("state.json is not valid JSON ({e})"))?;
    let Some(files) = state.get("files") else { return Ok(()) };
    let files = files.as_object().ok_or("`files` in state.json is not an object")?;
    for (name, expected) in files {
        if !is_confined(name) {
            return Err(format!("state.json names {name:?}, a path outside the checkpoint"));
        }
        let path = dir.join(name);
        let actual = hash_file(&path).map_err(|e| format!("{name} is unreadable: {e}"))?;
        if expected.as_str() != Some(actual.to_string().as_str()) {
            return Err(format!("{name} does not match its digest in state.json"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checkpoint(root: &Path, content: &[u8], digest_of: &[u8]) -> PathBuf {
        let dir = root.join("key").join("step-000000001");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("model.safetensors"), content).unwrap();
        let digest = format!("b3:{}", blake3::hash(digest_of).to_hex());
        fs::write(dir.join("state.json"), serde_json::json!({"step": 1, "files": {"model.safetensors": digest}}).to_string()).unwrap();
        dir
    }

    #[test]
    fn matching_checkpoint_passes() {
        let root = tempfile::tempdir().unwrap();
        checkpoint(root.path(), b"weights", b"weights");
        assert!(check_all(root.path()).unwrap().is_empty());
    }

    #[test]
    fn damaged_file_is_reported() {
        let root = tempfile::tempdir().unwrap();
        let dir = checkpoint(root.path(), b"weightz", b"weights");
        let bad = check_all(root.path()).unwrap();
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].dir, dir);
        assert_eq!(bad[0].reason, "model.safetensors does not match its digest in state.json");
    }

    #[test]
    fn checkpoint_being_written_is_skipped() {
        let root = tempfile::tempdir().unwrap();
        let dir = checkpoint(root.path(), b"weights", b"weights");
        fs::write(dir.join("state.json"), b"{\"st").unwrap();
        fs::rename(&dir, dir.with_file_name(".tmp-step-000000001")).unwrap();
        assert!(check_all(root.path()).unwrap().is_empty());
    }

    #[test]
    fn garbage_state_is_reported() {
        let root = tempfile::tempdir().unwrap();
        let dir = checkpoint(root.path(), b"weights", b"weights");
        fs::write(dir.join("state.json"), b"{\"step\": 1, \"fi").unwrap();
        let bad = check_all(root.path()).unwrap();
        assert_eq!(bad.len(), 1);
        assert!(bad[0].reason.starts_with("state.json is not valid JSON"), "{}", bad[0].reason);
    }
}
