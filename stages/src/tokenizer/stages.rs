//! The tokenizer stages: `train-tokenizer` and `import-tokenizer`.

use std::fs;
use std::io::{BufRead, BufReader};

use flywheel_stage_api::*;

use super::{Normalization, import, save, train_wordpiece};
use crate::corpus::single_file;

fn normalization_params(descriptor: StageDescriptor) -> StageDescriptor {
    descriptor
        .param(ParamSpec::new("lowercase", ParamType::Bool).default(true).doc("lowercase text before WordPiece (uncased BERT)"))
        .param(ParamSpec::new("strip_accents", ParamType::Bool).default(true).doc("remove accents (é -> e) before WordPiece"))
}

fn normalization(ctx: &StageContext<'_>) -> Result<Normalization, StageError> {
    Ok(Normalization { lowercase: ctx.param_bool("lowercase")?, strip_accents: ctx.param_bool("strip_accents")? })
}

pub struct TrainTokenizer;

impl Stage for TrainTokenizer {
    fn descriptor(&self) -> StageDescriptor {
        normalization_params(
            StageDescriptor::new("train-tokenizer", "1")
                .summary("train a BERT WordPiece vocabulary on a corpus")
                .input(PortSpec::new("corpus", "corpus"))
                .output(PortSpec::new("tokenizer", "tokenizer"))
                .param(ParamSpec::new("vocab_size", ParamType::Int).default(8000).doc("maximum vocabulary size, special tokens included"))
                .param(ParamSpec::new("min_frequency", ParamType::Int).default(2).doc("minimum count of a merged piece")),
        )
    }

    fn run(&self, ctx: &StageContext<'_>) -> Result<StageOutcome, StageError> {
        let path = ctx.input("corpus")?.join("docs.jsonl");
        let reader = BufReader::new(fs::File::open(&path).map_err(|e| StageError::file(&path, e))?);
        let mut texts = Vec::new();
        for line in reader.lines() {
            let doc: serde_json::Value = serde_json::from_str(&line?).map_err(|e| StageError::failed(format!("{}: {e}", path.display())))?;
            texts.push(doc["text"].as_str().unwrap_or_default().to_string());
        }
        let vocab_size = ctx.param_usize("vocab_size")?;
        let min_frequency = ctx.param_usize("min_frequency")? as u64;
        ctx.info(&format!("training a WordPiece vocabulary of up to {vocab_size} tokens on {} documents", texts.len()));
        let tokenizer = train_wordpiece(texts.into_iter(), vocab_size, min_frequency, normalization(ctx)?)?;
        save(&tokenizer, ctx.output("tokenizer")?)?;
        Ok(StageOutcome::default().metric("vocab_size", tokenizer.get_vocab_size(true)))
    }
}

pub struct ImportTokenizer;

impl Stage for ImportTokenizer {
    fn descriptor(&self) -> StageDescriptor {
        normalization_params(
            StageDescriptor::new("import-tokenizer", "1")
                .summary("import a Hugging Face tokenizer.json or a BERT vocab.txt")
                .input(PortSpec::new("file", "file").doc("tokenizer.json, vocab.txt, or a checkpoint directory holding one"))
                .output(PortSpec::new("tokenizer", "tokenizer")),
        )
        .param(ParamSpec::new("prefer", ParamType::String).default("tokenizer.json").choices(&["tokenizer.json", "vocab.txt"]).doc("which file to read when a directory has both"))
    }

    fn run(&self, ctx: &StageContext<'_>) -> Result<StageOutcome, StageError> {
        let dir = ctx.input("file")?;
        let preferred = dir.join(ctx.param_str("prefer")?);
        let path = if preferred.exists() {
            preferred
        } else if dir.join("tokenizer.json").exists() {
            dir.join("tokenizer.json")
        } else if dir.join("vocab.txt").exists() {
            dir.join("vocab.txt")
        } else {
            single_file(dir)?
        };
        // NOTE: lowercase and strip_accents apply to a vocab.txt only; a tokenizer.json keeps
        // its own normalizer.
        let tokenizer = import(&path, normalization(ctx)?)?;
        save(&tokenizer, ctx.output("tokenizer")?)?;
        Ok(StageOutcome::default().metric("vocab_size", tokenizer.get_vocab_size(true)))
    }
}
