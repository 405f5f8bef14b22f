//! [`ModelDir`]: the `model` artifact, a directory in the Hugging Face layout with
//! `config.json`, `model.safetensors`, `tokenizer.json` and `vocab.txt`.

use std::fs;
use std::path::Path;

use flywheel_stage_api::StageError;

use super::checkpoint::Weights;
use super::config::BertConfig;

/// Reads and writes `model` artifact directories.
pub struct ModelDir;

/// Files of the tokenizer copied beside the weights when present.
const TOKENIZER_FILES: [&str; 2] = ["tokenizer.json", "vocab.txt"];

impl ModelDir {
    /// Reads `config.json` and `model.safetensors` of a model directory.
    pub fn load(dir: &Path) -> Result<(BertConfig, Weights), StageError> {
        let config_path = dir.join("config.json");
        if !config_path.exists() {
            return Err(StageError::failed(format!("{}: not a model directory, config.json is missing; pass a Hugging Face BERT checkpoint directory", dir.display())));
        }
        let config = BertConfig::load(&config_path)?;
        let weights = Weights::load(&dir.join("model.safetensors"))?;
        Ok((config, weights))
    }

    /// Writes `config.json` and `model.safetensors` into `dir`, and copies the tokenizer files
    /// found in `tokenizer_dir` (a `tokenizer` or `model` artifact).
    pub fn save(dir: &Path, config: &BertConfig, weights: &Weights, tokenizer_dir: Option<&Path>) -> Result<(), StageError> {
        fs::create_dir_all(dir).map_err(|e| StageError::file(dir, e))?;
        config.save(&dir.join("config.json"))?;
        weights.save(&dir.join("model.safetensors"))?;
        if let Some(source) = tokenizer_dir {
            Self::copy_tokenizer(source, dir)?;
        }
        Ok(())
    }

    /// Copies `tokenizer.json` and `vocab.txt` from `source` into `dir`; `tokenizer.json` is
    /// required.
    pub fn copy_tokenizer(source: &Path, dir: &Path) -> Result<(), StageError> {
        for name in TOKENIZER_FILES {
            let from = source.join(name);
            if from.exists() {
                fs::copy(&from, dir.join(name)).map_err(|e| StageError::file(&from, e))?;
            } else if name == "tokenizer.json" {
                return Err(StageError::failed(format!("{}: tokenizer.json is missing; import the tokenizer with `import-tokenizer` first", source.display())));
            }
        }
        Ok(())
    }
}
