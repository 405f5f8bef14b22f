//! Corpus stages: [`ImportCorpus`] reads a `docid \t text` file into a `corpus` artifact
//! (`docs.jsonl`, one `{"id", "text"}` object per line); [`CorpusStats`] counts documents,
//! tokens and terms.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use flywheel_stage_api::*;
use serde_json::json;

use crate::import::LineReader;

/// Returns the only file in an artifact directory that contains a single file (as an external
/// file input does).
pub fn single_file(dir: &Path) -> Result<PathBuf, StageError> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| StageError::file(dir, e))? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            files.push(entry.path());
        }
    }
    match files.len() {
        1 => Ok(files.remove(0)),
        n => Err(StageError::failed(format!("{}: expected exactly one file, found {n}", dir.display()))),
    }
}

pub struct ImportCorpus;

impl Stage for ImportCorpus {
    fn descriptor(&self) -> StageDescriptor {
        StageDescriptor::new("import-corpus", "1")
            .summary("read a `docid<TAB>text` UTF-8 file into a corpus")
            .input(PortSpec::new("file", "file").doc("tab-separated docid and text, no header"))
            .output(PortSpec::new("corpus", "corpus"))
            .param(ParamSpec::new("lowercase", ParamType::Bool).default(false).doc("lowercase the text"))
            .param(ParamSpec::new("max_docs", ParamType::Int).default(0).doc("keep the first N documents; 0 keeps all"))
    }

    fn run(&self, ctx: &StageContext<'_>) -> Result<StageOutcome, StageError> {
        let path = single_file(ctx.input("file")?)?;
        let lowercase = ctx.param_bool("lowercase")?;
        let max_docs = ctx.param_usize("max_docs")?;
        let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();

        let reader = BufReader::new(fs::File::open(&path).map_err(|e| StageError::file(&path, e))?);
        let lines = LineReader::new(reader, &name).with_path(&path);
        let out_path = ctx.output("corpus")?.join("docs.jsonl");
        let mut out = BufWriter::new(fs::File::create(&out_path).map_err(|e| StageError::file(&out_path, e))?);
        let count = import_corpus(lines, lowercase, max_docs, &mut out)?;
        out.flush().map_err(|e| StageError::file(&out_path, e))?;
        ctx.info(&format!("imported {count} documents from {name}"));
        Ok(StageOutcome::default().metric("documents", count))
    }
}

/// Reads `docid<TAB>text` lines and writes each document to `out` as a `{"id", "text"}` JSON
/// line, stopping after `max_docs` documents unless it is 0. Returns the number written.
pub fn import_corpus<R: BufRead>(mut lines: LineReader<R>, lowercase: bool, max_docs: usize, out: &mut impl Write) -> Result<usize, StageError> {
    let name = lines.name().to_string();
    let mut seen = HashSet::new();
    let mut count = 0usize;
    while let Some((line_no, line)) = lines.next_line()? {
        let text = line.map_err(|e| StageError::failed(format!("{name}:{line_no}: {}", e.message)))?;
        let Some((id, body)) = text.split_once('\t') else {
            return Err(StageError::failed(format!("{name}:{line_no}: expected `docid<TAB>text`, found no tab; separate the id from the text with a tab")));
        };
        if id.is_empty() {
            return Err(StageError::failed(format!("{name}:{line_no}: empty docid; put the document id before the tab")));
        }
        if !seen.insert(id.to_string()) {
            return Err(StageError::failed(format!("{name}:{line_no}: duplicate docid `{id}`; give each document one line")));
        }
        let body = if lowercase { body.to_lowercase() } else { body.to_string() };
        serde_json::to_writer(&mut *out, &json!({"id": id, "text": body})).map_err(|e| StageError::failed(e.to_string()))?;
        out.write_all(b"\n")?;
        count += 1;
        if max_docs > 0 && count >= max_docs {
            break;
        }
    }
    if count == 0 {
        return Err(StageError::failed(format!("{name}: the file is empty; give a file with at least one `docid<TAB>text` line")));
    }
    Ok(count)
}

/// Splits text into terms: runs of letters or digits, with every CJK character its own term
/// (as BERT's basic tokenizer splits Chinese, Japanese and Korean ideographs).
pub fn terms(text: &str) -> Vec<String> {
    let mut terms = Vec::new();
    let mut current = String::new();
    for c in text.chars() {
        if is_cjk(c) {
            if !current.is_empty() {
                terms.push(std::mem::take(&mut current));
            }
            terms.push(c.to_string());
        } else if c.is_alphanumeric() {
            current.extend(c.to_lowercase());
        } else if !current.is_empty() {
            terms.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        terms.push(current);
    }
    terms
}

/// CJK ideograph blocks, the same ranges BERT's tokenizer treats as one-character words.
pub fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x4E00..=0x9FFF | 0x3400..=0x4DBF | 0x20000..=0x2A6DF | 0x2A700..=0x2B73F
        | 0x2B740..=0x2B81F | 0x2B820..=0x2CEAF | 0xF900..=0xFAFF | 0x2F800..=0x2FA1F)
}

pub struct CorpusStats;

impl Stage for CorpusStats {
    fn descriptor(&self) -> StageDescriptor {
        StageDescriptor::new("corpus-stats", "1")
            .summary("count documents, terms and the most frequent terms of a corpus")
            .input(PortSpec::new("corpus", "corpus"))
            .output(PortSpec::new("stats", "metrics"))
            .param(ParamSpec::new("top", ParamType::Int).default(10).doc("how many frequent terms to list"))
    }

    fn run(&self, ctx: &StageContext<'_>) -> Result<StageOutcome, StageError> {
        let path = ctx.input("corpus")?.join("docs.jsonl");
        let reader = BufReader::new(fs::File::open(&path).map_err(|e| StageError::file(&path, e))?);
        let mut frequency: HashMap<String, u64> = HashMap::new();
        let (mut documents, mut tokens) = (0u64, 0u64);
        for line in reader.lines() {
            let doc: serde_json::Value = serde_json::from_str(&line?).map_err(|e| StageError::failed(format!("{}: {e}", path.display())))?;
            let text = doc["text"].as_str().unwrap_or_default();
            for term in terms(text) {
                tokens += 1;
                *frequency.entry(term).or_default() += 1;
            }
            documents += 1;
        }
        let mut top: Vec<(String, u64)> = frequency.iter().map(|(t, c)| (t.clone(), *c)).collect();
        // Ties broken by term so the output does not depend on hash order.
        top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        top.truncate(ctx.param_usize("top")?);
        let stats = json!({
            "documents": documents,
            "tokens": tokens,
            "vocabulary": frequency.len(),
            "mean_tokens_per_document": if documents > 0 { tokens as f64 / documents as f64 } else { 0.0 },
            "top_terms": top,
        });
        let out = ctx.output("stats")?.join("metrics.json");
        fs::write(&out, serde_json::to_vec_pretty(&stats).expect("stats serialize")).map_err(|e| StageError::file(&out, e))?;
        Ok(StageOutcome::default()
            .metric("documents", documents)
            .metric("tokens", tokens)
            .metric("vocabulary", frequency.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_split_cjk_per_character() {
        assert_eq!(terms("BM25 搜索引擎 ranking!"), ["bm25", "搜", "索", "引", "擎", "ranking"]);
    }
}
