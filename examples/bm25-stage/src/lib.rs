//! An example flywheel plugin: the `bm25` stage scores query-document pairs with Okapi BM25.
//!
//! Inputs: a `pairs` artifact (`pairs.jsonl`, one `{"qid", "query", "docid"}` per line) and a
//! `corpus` artifact (`docs.jsonl`, one `{"id", "text"}` per line, as `import-corpus` writes).
//! Output: a `scores` artifact (`scores.jsonl`, one `{"qid", "docid", "score"}` per pair, in
//! the order of `pairs.jsonl`). Params: `k1` and `b`.
//!
//! The score of document `d` for query `q` is the Robertson/Sparck Jones BM25 sum over the
//! query's terms `t`, each occurrence counted (so a repeated query term counts twice):
//!
//! ```text
//! IDF(t)      = ln(1 + (N - n(t) + 0.5) / (n(t) + 0.5))
//! score(q, d) = sum over t in q of IDF(t) * tf(t, d) * (k1 + 1) / (tf(t, d) + k1 * (1 - b + b * |d| / avgdl))
//! ```
//!
//! with `N` the number of documents in the corpus, `n(t)` the number that contain `t`,
//! `tf(t, d)` the count of `t` in `d`, `|d|` the number of terms of `d` and `avgdl` the mean
//! of `|d|` over the corpus. Queries and documents split into terms by the rule of flywheel's
//! built-in corpus stages ([`terms`]).
//!
//! Build it with `cargo build --release -p flywheel-bm25-stage` and declare
//! `target/release/libflywheel_bm25_stage.so` under `plugins:` in a workflow.

mod terms;

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;

use flywheel_stage_api::*;
use serde::Deserialize;
use serde_json::json;

pub use terms::terms;

/// Documents read between two progress reports and cancellation checks.
const PROGRESS_EVERY: u64 = 10_000;

pub struct Bm25Stage;

flywheel_stage_api::export_stages!(Bm25Stage);

/// One line of `pairs.jsonl`; other fields (such as `grade`) are ignored.
#[derive(Deserialize)]
struct Pair {
    qid: String,
    query: String,
    docid: String,
}

/// One line of `docs.jsonl`.
#[derive(Deserialize)]
struct Doc {
    id: String,
    text: String,
}

/// The BM25 parameters.
#[derive(Clone, Copy, Debug)]
pub struct Bm25 {
    /// Term-frequency saturation: 0 ignores how often a term occurs.
    pub k1: f64,
    /// Document-length normalization, from 0 (none) to 1 (full).
    pub b: f64,
}

/// Corpus statistics for the scorer: the corpus size and length, the document frequencies of
/// the query terms, and their term frequencies in the paired documents.
#[derive(Default)]
pub struct CorpusStats {
    pub documents: u64,
    pub total_terms: u64,
    /// n(t): documents that contain each query term.
    pub document_frequency: HashMap<String, u64>,
    /// |d| and tf(t, d) of the query terms, for each document named in a pair.
    pub paired: HashMap<String, (u64, HashMap<String, u64>)>,
}

impl CorpusStats {
    pub fn average_length(&self) -> f64 {
        if self.documents == 0 { 0.0 } else { self.total_terms as f64 / self.documents as f64 }
    }
}

impl Bm25 {
    /// IDF(t) = ln(1 + (N - n + 0.5) / (n + 0.5)).
    pub fn idf(documents: u64, containing: u64) -> f64 {
        let (n_docs, n) = (documents as f64, containing as f64);
        (1.0 + (n_docs - n + 0.5) / (n + 0.5)).ln()
    }

    /// Scores one document, given its length and the frequencies of the query terms in it.
    pub fn score(&self, query: &[String], length: u64, frequencies: &HashMap<String, u64>, stats: &CorpusStats) -> f64 {
        let average = stats.average_length();
        // With an average length of 0 every document is empty and every tf is 0, so the ratio
        // only has to be finite.
        let relative_length = if average > 0.0 { length as f64 / average } else { 1.0 };
        let mut score = 0.0;
        for term in query {
            let tf = frequencies.get(term).copied().unwrap_or(0) as f64;
            if tf == 0.0 {
                continue;
            }
            let containing = stats.document_frequency.get(term).copied().unwrap_or(0);
            let idf = Bm25::idf(stats.documents, containing);
            score += idf * tf * (self.k1 + 1.0) / (tf + self.k1 * (1.0 - self.b + self.b * relative_length));
        }
        score
    }
}

impl Stage for Bm25Stage {
    fn descriptor(&self) -> StageDescriptor {
        StageDescriptor::new("bm25", "1")
            .summary("score query-document pairs with Okapi BM25 against a corpus")
            .input(PortSpec::new("pairs", "pairs").doc("pairs.jsonl: {\"qid\", \"query\", \"docid\"} per line"))
            .input(PortSpec::new("corpus", "corpus").doc("docs.jsonl; N, n(t) and avgdl come from the whole corpus"))
            .output(PortSpec::new("scores", "scores").doc("scores.jsonl: {\"qid\", \"docid\", \"score\"} per pair"))
            .param(ParamSpec::new("k1", ParamType::Float).default(1.2).doc("term-frequency saturation, 0 or more"))
            .param(ParamSpec::new("b", ParamType::Float).default(0.75).doc("document-length normalization, 0 to 1"))
    }

    fn run(&self, ctx: &StageContext<'_>) -> Result<StageOutcome, StageError> {
        let params = Bm25 { k1: ctx.param_f64("k1")?, b: ctx.param_f64("b")? };
        if !(params.k1.is_finite() && params.k1 >= 0.0) {
            return Err(invalid_param("k1", format!("must be 0 or more, got {}", params.k1)));
        }
        if !(0.0..=1.0).contains(&params.b) {
            return Err(invalid_param("b", format!("must be between 0 and 1, got {}", params.b)));
        }

        let pairs = read_pairs(&ctx.input("pairs")?.join("pairs.jsonl"))?;
        let query_terms: Vec<Vec<String>> = pairs.iter().map(|(_, pair)| terms(&pair.query)).collect();
        let vocabulary: HashSet<&str> = query_terms.iter().flatten().map(String::as_str).collect();
        let paired: HashSet<&str> = pairs.iter().map(|(_, pair)| pair.docid.as_str()).collect();
        let stats = read_corpus(ctx, &ctx.input("corpus")?.join("docs.jsonl"), &vocabulary, &paired)?;

        let out_path = ctx.output("scores")?.join("scores.jsonl");
        let mut out = BufWriter::new(fs::File::create(&out_path).map_err(|e| StageError::file(&out_path, e))?);
        for ((line, pair), query) in pairs.iter().zip(&query_terms) {
            let Some((length, frequencies)) = stats.paired.get(&pair.docid) else {
                return Err(StageError::failed(format!(
                    "pairs.jsonl line {line}: docid `{}` is not in the corpus; pair queries with documents of the same corpus",
                    pair.docid
                )));
            };
            let score = params.score(query, *length, frequencies, &stats);
            let row = json!({"qid": pair.qid, "docid": pair.docid, "score": score});
            serde_json::to_writer(&mut out, &row).map_err(|e| StageError::failed(e.to_string()))?;
            out.write_all(b"\n").map_err(|e| StageError::file(&out_path, e))?;
        }
        out.flush().map_err(|e| StageError::file(&out_path, e))?;

        let queries: HashSet<&str> = pairs.iter().map(|(_, pair)| pair.qid.as_str()).collect();
        ctx.info(&format!(
            "scored {} pairs of {} queries against {} documents (average length {:.2} terms, k1 {}, b {})",
            pairs.len(),
            queries.len(),
            stats.documents,
            stats.average_length(),
            params.k1,
            params.b
        ));
        let mut outcome = StageOutcome::default()
            .metric("pairs", pairs.len())
            .metric("queries", queries.len())
            .metric("documents", stats.documents)
            .metric("average_length", stats.average_length());
        outcome.metadata.insert("scores".into(), json!({"scorer": "bm25", "k1": params.k1, "b": params.b}));
        Ok(outcome)
    }
}

fn invalid_param(name: &str, message: String) -> StageError {
    StageError::InvalidParam { name: name.to_string(), message }
}

/// Reads `pairs.jsonl`, keeping each pair's line number for messages.
fn read_pairs(path: &Path) -> Result<Vec<(usize, Pair)>, StageError> {
    let reader = BufReader::new(fs::File::open(path).map_err(|e| StageError::file(path, e))?);
    let mut pairs = Vec::new();
    for (index, line) in reader.lines().enumerate() {
        let line = line.map_err(|e| StageError::file(path, e))?;
        if line.trim().is_empty() {
            continue;
        }
        let pair: Pair = serde_json::from_str(&line).map_err(|e| {
            StageError::failed(format!("pairs.jsonl line {}: {e}; expected {{\"qid\", \"query\", \"docid\"}}", index + 1))
        })?;
        pairs.push((index + 1, pair));
    }
    if pairs.is_empty() {
        return Err(StageError::failed("pairs.jsonl contains no pairs; the scorer needs at least one"));
    }
    Ok(pairs)
}

/// Reads `docs.jsonl` once, counting what [`Bm25::score`] needs.
fn read_corpus(
    ctx: &StageContext<'_>,
    path: &Path,
    vocabulary: &HashSet<&str>,
    paired: &HashSet<&str>,
) -> Result<CorpusStats, StageError> {
    let reader = BufReader::new(fs::File::open(path).map_err(|e| StageError::file(path, e))?);
    let mut stats = CorpusStats::default();
    for (index, line) in reader.lines().enumerate() {
        let line = line.map_err(|e| StageError::file(path, e))?;
        if line.trim().is_empty() {
            continue;
        }
        let doc: Doc = serde_json::from_str(&line)
            .map_err(|e| StageError::failed(format!("docs.jsonl line {}: {e}; expected {{\"id\", \"text\"}}", index + 1)))?;
        let doc_terms = terms(&doc.text);
        let mut frequencies: HashMap<String, u64> = HashMap::new();
        for term in &doc_terms {
            if vocabulary.contains(term.as_str()) {
                *frequencies.entry(term.clone()).or_default() += 1;
            }
        }
        for term in frequencies.keys() {
            *stats.document_frequency.entry(term.clone()).or_default() += 1;
        }
        stats.documents += 1;
        stats.total_terms += doc_terms.len() as u64;
        if paired.contains(doc.id.as_str())
            && stats.paired.insert(doc.id.clone(), (doc_terms.len() as u64, frequencies)).is_some()
        {
            return Err(StageError::failed(format!("docs.jsonl line {}: duplicate document id `{}`", index + 1, doc.id)));
        }
        if stats.documents % PROGRESS_EVERY == 0 {
            ctx.check_cancelled()?;
            ctx.progress(stats.documents, 0, "documents read");
        }
    }
    if stats.documents == 0 {
        return Err(StageError::failed("docs.jsonl contains no documents; BM25 needs a non-empty corpus"));
    }
    Ok(stats)
}

#[cfg(test)]
mod tests;
