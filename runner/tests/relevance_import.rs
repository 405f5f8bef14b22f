//! The relevance import stages through the real binary: what they write, lenient skips, and
//! bad inputs that must fail with `file:line` and commit nothing.

mod common;
mod relevance_support;

use common::Project;
use relevance_support::*;

fn workflow(nodes: &str) -> String {
    format!("name: rel\nnodes:{nodes}")
}

#[test]
fn imports_tiny_data_set() {
    let project = Project::new();
    write_tiny_data(&project);
    project.write("wf.yaml", &workflow(IMPORT_NODES));
    let summary = project.run_ok("wf.yaml", &[]);
    assert_eq!(summary.ran(), ["queries", "docs", "labels"]);

    let queries = read_jsonl(&output_dir(&project, &summary, "queries", "queries").join("queries.jsonl"));
    assert_eq!(queries.len(), 6);
    assert_eq!(queries[0], serde_json::json!({"qid": "q1", "text": "red cats"}));
    let docs = read_jsonl(&output_dir(&project, &summary, "docs", "corpus").join("docs.jsonl"));
    assert_eq!(docs.len(), 24);
    assert_eq!(docs[0]["id"], "d11");

    let pairs = read_jsonl(&output_dir(&project, &summary, "labels", "pairs").join("pairs.jsonl"));
    assert_eq!(pairs.len(), 24);
    assert_eq!(pairs[1], serde_json::json!({"qid": "q1", "query": "red cats", "docid": "d12", "grade": 3}));
    let metrics = metrics_of(&project, "labels");
    assert_eq!(metrics["pairs"], 24);
    assert_eq!(metrics["grades"], serde_json::json!({"0": 5, "1": 9, "2": 5, "3": 5}));
    assert_eq!(metrics["skipped_rows"], 0);
}

#[test]
fn imports_jsonl_files() {
    let project = Project::new();
    project.write("data/queries.jsonl", "{\"qid\": 1, \"text\": \"red cats\"}\n{\"qid\": \"2\", \"text\": \"blue dogs\"}\n");
    project.write("data/docs.jsonl", "{\"id\": \"a\", \"text\": \"cats\"}\n{\"docid\": \"b\", \"text\": \"dogs\"}\n");
    project.write("data/qrels.jsonl", "{\"qid\": 1, \"docid\": \"a\", \"grade\": 2}\n{\"qid\": \"1\", \"docid\": \"b\", \"grade\": 0}\n{\"qid\": \"2\", \"docid\": \"b\", \"grade\": 1}\n{\"qid\": \"2\", \"docid\": \"a\", \"grade\": 0}\n");
    let nodes = IMPORT_NODES.replace(".tsv", ".jsonl");
    project.write("wf.yaml", &workflow(&nodes));
    let summary = project.run_ok("wf.yaml", &[]);
    let pairs = read_jsonl(&output_dir(&project, &summary, "labels", "pairs").join("pairs.jsonl"));
    assert_eq!(pairs[0], serde_json::json!({"qid": "1", "query": "red cats", "docid": "a", "grade": 2}));
    assert_eq!(pairs.len(), 4);
}

#[test]
fn lenient_import_skips_and_counts() {
    let project = Project::new();
    write_tiny_data(&project);
    let mut qrels = qrels();
    qrels.push_str("q1\td11\n");
    qrels.push_str("q1\td12\thigh\n");
    qrels.push_str("q1\td99\t1\n");
    qrels.push_str("q1\td13\t1\n");
    project.write("data/qrels.tsv", &qrels);
    let nodes = IMPORT_NODES.replace("file: {path: data/qrels.tsv}}", "file: {path: data/qrels.tsv}}\n    params: {lenient: true}");
    project.write("wf.yaml", &workflow(&nodes));
    let output = project.flywheel(&["run", "wf.yaml"]);
    let printed = common::text(&output);
    assert!(output.status.success(), "{printed}");

    let metrics = metrics_of(&project, "labels");
    assert_eq!(metrics["pairs"], 24);
    assert_eq!(metrics["skipped_rows"], 4);
    assert_eq!(metrics["skipped"], serde_json::json!({"duplicate_pair": 1, "missing_columns": 1, "non_numeric_grade": 1, "unknown_docid": 1}));
    assert!(printed.contains("lenient: skipped 4 rows of qrels.tsv"), "{printed}");
    assert!(printed.contains("1 unknown_docid (first at line 27)"), "{printed}");
}

/// Replaces one data file with `bytes`, runs the import workflow, and checks that node `node`
/// fails with `message` and commits nothing.
fn assert_import_fails(file: &str, bytes: &[u8], node: &str, message: &str) {
    let project = Project::new();
    write_tiny_data(&project);
    let path = project.path(file);
    std::fs::write(&path, bytes).unwrap();
    project.write("wf.yaml", &workflow(IMPORT_NODES));
    let printed = run_fails(&project, "wf.yaml");
    assert!(printed.contains(message), "expected {message:?} in:\n{printed}");
    assert_nothing_committed(&project, node);
    if node != "labels" {
        assert_nothing_committed(&project, "labels");
    }
}

#[test]
fn missing_column_fails() {
    let mut qrels = qrels();
    qrels.insert_str(0, "q1\td11\n");
    assert_import_fails("data/qrels.tsv", qrels.as_bytes(), "labels", "qrels.tsv:1: expected 3 tab-separated columns `qid<TAB>docid<TAB>grade`, found 2");
}

#[test]
fn non_numeric_grade_fails() {
    let qrels = qrels().replacen("q1\td12\t3", "q1\td12\thigh", 1);
    assert_import_fails("data/qrels.tsv", qrels.as_bytes(), "labels", "qrels.tsv:2: `grade` is `high`, not a number");
}

#[test]
fn unknown_document_id_fails() {
    let qrels = qrels().replacen("q1\td13", "q1\td99", 1);
    assert_import_fails("data/qrels.tsv", qrels.as_bytes(), "labels", "qrels.tsv:3: document id `d99` is not in the corpus");
}

#[test]
fn unknown_query_id_fails() {
    let qrels = qrels().replacen("q2\td21", "q9\td21", 1);
    assert_import_fails("data/qrels.tsv", qrels.as_bytes(), "labels", "qrels.tsv:5: query id `q9` is not in the queries input");
}

#[test]
fn empty_file_fails() {
    assert_import_fails("data/queries.tsv", b"", "queries", "queries.tsv: the file is empty");
}

#[test]
fn invalid_utf8_fails() {
    let mut docs = docs().into_bytes();
    let second_line = docs.iter().position(|b| *b == b'\n').unwrap() + 1;
    docs.splice(second_line + 4..second_line + 4, [0xff, 0xfe]);
    assert_import_fails("data/docs.tsv", &docs, "docs", "docs.tsv:2: invalid UTF-8 at byte 5");
}

#[test]
fn single_document_query_warns_or_fails() {
    let project = Project::new();
    write_tiny_data(&project);
    project.write("data/queries.tsv", &format!("{QUERIES}q7\tlone query\n"));
    project.write("data/qrels.tsv", &format!("{}q7\td11\t2\n", qrels()));
    project.write("wf.yaml", &workflow(IMPORT_NODES));
    let output = project.flywheel(&["run", "wf.yaml"]);
    assert!(output.status.success(), "{}", common::text(&output));
    assert!(common::text(&output).contains("qrels.tsv: 1 query has only one judged document (`q7`)"), "{}", common::text(&output));
    assert_eq!(metrics_of(&project, "labels")["single_document_queries"], 1);

    let strict = Project::new();
    write_tiny_data(&strict);
    strict.write("data/queries.tsv", &format!("{QUERIES}q7\tlone query\n"));
    strict.write("data/qrels.tsv", &format!("{}q7\td11\t2\n", qrels()));
    let nodes = IMPORT_NODES.replace("file: {path: data/qrels.tsv}}", "file: {path: data/qrels.tsv}}\n    params: {single_document_queries: error}");
    strict.write("wf.yaml", &workflow(&nodes));
    let printed = run_fails(&strict, "wf.yaml");
    assert!(printed.contains("qrels.tsv: 1 query has only one judged document (`q7`); judge a second document"), "{printed}");
    assert_nothing_committed(&strict, "labels");
}

#[test]
fn click_log_imports_tsv_and_jsonl() {
    let project = Project::new();
    project.write("data/clicks.tsv", "q1\td11\t1\t1\t45.5\ts1\nq1\td12\t2\t0\t0\ts1\nq2\td21\t1\t0\t\n");
    project.write("data/clicks.jsonl", "{\"qid\": \"q1\", \"docid\": \"d11\", \"position\": 1, \"click\": true, \"dwell\": 12, \"device\": \"phone\"}\n");
    project.write("wf.yaml", "nodes:\n  tsv:\n    stage: import-clicks\n    inputs: {file: {path: data/clicks.tsv}}\n  jsonl:\n    stage: import-clicks\n    inputs: {file: {path: data/clicks.jsonl}}\n");
    let summary = project.run_ok("wf.yaml", &[]);
    let rows = read_jsonl(&output_dir(&project, &summary, "tsv", "clicks").join("clicks.jsonl"));
    assert_eq!(rows[0], serde_json::json!({"qid": "q1", "docid": "d11", "position": 1, "click": 1, "dwell": 45.5, "session": "s1"}));
    assert_eq!(rows[2], serde_json::json!({"qid": "q2", "docid": "d21", "position": 1, "click": 0, "dwell": 0}));
    let rows = read_jsonl(&output_dir(&project, &summary, "jsonl", "clicks").join("clicks.jsonl"));
    assert_eq!(rows[0], serde_json::json!({"qid": "q1", "docid": "d11", "position": 1, "click": 1, "dwell": 12, "device": "phone"}));
}

#[test]
fn click_log_rejects_bad_click() {
    let project = Project::new();
    project.write("data/clicks.tsv", "q1\td11\t1\t1\t45.5\ts1\nq1\td12\t2\tyes\t0\ts1\n");
    project.write("wf.yaml", "nodes:\n  log:\n    stage: import-clicks\n    inputs: {file: {path: data/clicks.tsv}}\n");
    let printed = run_fails(&project, "wf.yaml");
    assert!(printed.contains("clicks.tsv:2: click `yes` is not 0 or 1"), "{printed}");
    assert_nothing_committed(&project, "log");
}

#[test]
fn noveleval_imports_completely() {
    let Some(data) = noveleval() else { return };
    let project = Project::new();
    let nodes = IMPORT_NODES.replace("data/", &format!("{}/", data.display()));
    project.write("wf.yaml", &workflow(&nodes));
    project.run_ok("wf.yaml", &[]);
    assert_eq!(metrics_of(&project, "queries")["queries"], 21);
    assert_eq!(metrics_of(&project, "docs")["documents"], 420);
    let labels = metrics_of(&project, "labels");
    assert_eq!(labels["pairs"], 420);
    assert_eq!(labels["queries"], 21);
    assert_eq!(labels["grades"], serde_json::json!({"0": 290, "1": 40, "2": 90}));
    assert_eq!(labels["single_document_queries"], 0);
}
