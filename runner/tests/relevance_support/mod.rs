//! Shared pieces of the `relevance_*` end-to-end tests: a tiny graded data set, the NovelEval
//! folder, failed-run checks and readers for the store's records and artifacts.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::{Project, Summary, files_below, text};

/// Six queries with four judged documents each, grades 0-3; query `q6` has one grade only.
pub const QUERIES: &str = "q1\tred cats\nq2\tblue dogs\nq3\tgreen birds\nq4\tyellow fish\nq5\tgrey mice\nq6\twhite owls\n";

pub fn docs() -> String {
    (1..=6).flat_map(|q| (1..=4).map(move |d| format!("d{q}{d}\ttext of document {d} for query {q}\n"))).collect()
}

/// Queries q1-q5 grade their four documents 0, 1, 2 and 3 in a different order each; q6 grades
/// all four 1.
pub fn qrels() -> String {
    let mut text = String::new();
    for q in 1..=6 {
        for d in 1..=4 {
            let grade = if q == 6 { 1 } else { (4 - d + q) % 4 };
            text.push_str(&format!("q{q}\td{q}{d}\t{grade}\n"));
        }
    }
    text
}

/// Scores every label of a qrels text like a first-stage scorer that mostly agrees with the
/// grades: score = grade + noise in [0, 1.2] drawn from the line index, so neighbouring grades
/// sometimes swap.
pub fn scores_from_qrels(qrels: &str) -> String {
    let mut text = String::new();
    for (index, line) in qrels.lines().enumerate() {
        let fields: Vec<&str> = line.split('\t').collect();
        let grade: f64 = fields[2].parse().unwrap();
        let noise = ((index * 7919) % 13) as f64 / 10.0;
        text.push_str(&format!("{{\"qid\":\"{}\",\"docid\":\"{}\",\"score\":{}}}\n", fields[0], fields[1], grade + noise));
    }
    text
}

/// Writes the tiny data set into `data/` of the project.
pub fn write_tiny_data(project: &Project) {
    project.write("data/queries.tsv", QUERIES);
    project.write("data/docs.tsv", &docs());
    project.write("data/qrels.tsv", &qrels());
    project.write("data/scores.jsonl", &scores_from_qrels(&qrels()));
}

/// Nodes that import the tiny data set: `queries`, `docs` and `labels` (graded pairs).
pub const IMPORT_NODES: &str = r#"
  queries:
    stage: import-queries
    inputs: {file: {path: data/queries.tsv}}
  docs:
    stage: import-documents
    inputs: {file: {path: data/docs.tsv}}
  labels:
    stage: import-qrels
    inputs: {queries: queries.queries, corpus: docs.corpus, file: {path: data/qrels.tsv}}
"#;

/// Runs a workflow that must fail; returns everything it printed.
pub fn run_fails(project: &Project, workflow: &str) -> String {
    let output = project.flywheel(&["run", workflow]);
    assert!(!output.status.success(), "run succeeded:\n{}", text(&output));
    text(&output)
}

/// Returns the action records of `node` in the store.
pub fn records_of(project: &Project, node: &str) -> Vec<Value> {
    files_below(&project.store().join("actions"))
        .into_iter()
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .filter_map(|path| serde_json::from_slice::<Value>(&std::fs::read(path).ok()?).ok())
        .filter(|record| record["node"] == node)
        .collect()
}

/// Asserts that the store has no action record of `node`, as after a failed stage.
pub fn assert_nothing_committed(project: &Project, node: &str) {
    let records = records_of(project, node);
    assert!(records.is_empty(), "node `{node}` committed {} records", records.len());
}

/// Returns the data directory of output `port` of `node` in the last run.
pub fn output_dir(project: &Project, summary: &Summary, node: &str, port: &str) -> PathBuf {
    let id = summary.output(node, port);
    let hex = id.strip_prefix("b3:").unwrap_or(&id).to_string();
    project.store().join("objects").join(&hex[..2]).join(&hex[2..]).join("data")
}

/// Reads a JSONL file into JSON values.
pub fn read_jsonl(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines().map(|line| serde_json::from_str(line).unwrap()).collect()
}

pub fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

/// Returns the stage metrics of `node` in its action record.
pub fn metrics_of(project: &Project, node: &str) -> Value {
    let records = records_of(project, node);
    assert_eq!(records.len(), 1, "node `{node}` has {} records", records.len());
    records[0]["metrics"].clone()
}

/// Returns the NovelEval folder of the shared data, or `None` with a loud message when it is missing.
pub fn noveleval() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/noveleval");
    let needed = dir.join("qrels.tsv");
    if needed.is_file() {
        return Some(dir.canonicalize().unwrap());
    }
    eprintln!("\n*** SKIPPED: {} is missing; this test needs the NovelEval data in ../shared/data/noveleval beside the repository ***\n", needed.display());
    None
}
