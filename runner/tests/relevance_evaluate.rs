//! `evaluate` and `report` through the real binary: the golden metric values, tie handling,
//! undefined AUC, and the report's files.

mod common;
mod relevance_support;

use common::Project;
use relevance_support::*;
use serde_json::{Value, json};

/// One query with grades [3, 2, 0, 1, 0] and scores [0.9, 0.3, 0.8, 0.4, 0.1].
const GOLDEN_PAIRS: &str = r#"{"qid":"q","query":"golden","docid":"a","grade":3}
{"qid":"q","query":"golden","docid":"b","grade":2}
{"qid":"q","query":"golden","docid":"c","grade":0}
{"qid":"q","query":"golden","docid":"d","grade":1}
{"qid":"q","query":"golden","docid":"e","grade":0}
"#;
const GOLDEN_SCORES: &str = r#"{"qid":"q","docid":"a","score":0.9}
{"qid":"q","docid":"b","score":0.3}
{"qid":"q","docid":"c","score":0.8}
{"qid":"q","docid":"d","score":0.4}
{"qid":"q","docid":"e","score":0.1}
"#;

/// Returns a workflow with one `evaluate` node `eval` over `data/pairs.jsonl` and `data/scores.jsonl`.
fn evaluate_workflow(params: &str) -> String {
    format!("nodes:\n  eval:\n    stage: evaluate\n    inputs: {{scores: {{path: data/scores.jsonl}}, pairs: {{path: data/pairs.jsonl}}}}\n    params: {{{params}}}\n")
}

fn evaluate(pairs: &str, scores: &str, params: &str) -> (Project, Value) {
    let project = Project::new();
    project.write("data/pairs.jsonl", pairs);
    project.write("data/scores.jsonl", scores);
    project.write("wf.yaml", &evaluate_workflow(params));
    let summary = project.run_ok("wf.yaml", &[]);
    let metrics = read_json(&output_dir(&project, &summary, "eval", "metrics").join("metrics.json"));
    (project, metrics)
}

fn assert_close(value: &Value, expected: f64) {
    let actual = value.as_f64().unwrap_or_else(|| panic!("{value} is not a number"));
    assert!((actual - expected).abs() < 5e-5, "{actual} != {expected}");
}

#[test]
fn golden_values_through_the_runner() {
    for threshold in [1, 2] {
        let (project, metrics) = evaluate(GOLDEN_PAIRS, GOLDEN_SCORES, &format!("auc_threshold: {threshold}, k: [3, 5]"));
        assert_close(&metrics["pnr"], 2.0);
        assert_close(&metrics["ndcg_exp@3"], 0.7985);
        assert_close(&metrics["ndcg_linear@3"], 0.7350);
        assert_close(&metrics["ndcg_exp@5"], 0.9360);
        assert_close(&metrics["ndcg_linear@5"], 0.9159);
        assert_close(&metrics["auc"], 0.6667);
        assert_eq!(metrics["per_query"][0]["qid"], "q");

        let shown = project.flywheel(&["show", "eval"]);
        let printed = String::from_utf8_lossy(&shown.stdout);
        assert!(printed.contains("metrics: {"), "{printed}");
        assert!(printed.contains("\"pnr\":2.0"), "{printed}");
    }
}

#[test]
fn tied_scores_ignore_row_order() {
    let pairs = "{\"qid\":\"q\",\"query\":\"t\",\"docid\":\"a\",\"grade\":3}\n{\"qid\":\"q\",\"query\":\"t\",\"docid\":\"b\",\"grade\":0}\n{\"qid\":\"q\",\"query\":\"t\",\"docid\":\"c\",\"grade\":1}\n{\"qid\":\"p\",\"query\":\"u\",\"docid\":\"x\",\"grade\":2}\n{\"qid\":\"p\",\"query\":\"u\",\"docid\":\"y\",\"grade\":0}\n";
    let scores = "{\"qid\":\"q\",\"docid\":\"a\",\"score\":0.5}\n{\"qid\":\"q\",\"docid\":\"b\",\"score\":0.5}\n{\"qid\":\"q\",\"docid\":\"c\",\"score\":0.5}\n{\"qid\":\"p\",\"docid\":\"x\",\"score\":1}\n{\"qid\":\"p\",\"docid\":\"y\",\"score\":1}\n";
    let reverse = |text: &str| text.lines().rev().map(|l| format!("{l}\n")).collect::<String>();
    let (_a, forward) = evaluate(pairs, scores, "k: [1, 3]");
    let (_b, backward) = evaluate(&reverse(pairs), &reverse(scores), "k: [1, 3]");
    assert_eq!(forward, backward);
    // Every score ties, so the worst order applies: grade 0 first in both queries.
    assert_eq!(forward["ndcg_linear@1"], 0.0);
    assert_eq!(forward["auc"], 0.5, "ties count one half");
    assert_eq!(forward["pnr"], Value::Null, "tied scores give no pair");
}

#[test]
fn single_class_auc_is_null() {
    let pairs = "{\"qid\":\"q\",\"query\":\"t\",\"docid\":\"a\",\"grade\":2}\n{\"qid\":\"q\",\"query\":\"t\",\"docid\":\"b\",\"grade\":2}\n";
    let scores = "{\"qid\":\"q\",\"docid\":\"a\",\"score\":0.2}\n{\"qid\":\"q\",\"docid\":\"b\",\"score\":0.7}\n";
    let (project, metrics) = evaluate(pairs, scores, "");
    assert_eq!(metrics["auc"], Value::Null);
    assert_eq!(metrics["auc_pooled"], Value::Null);
    assert_eq!(metrics["per_query"][0]["auc"], Value::Null);
    assert_eq!((metrics["concordant"].as_u64(), metrics["discordant"].as_u64()), (Some(0), Some(0)), "one grade gives no pair");
    assert_eq!(metrics_of(&project, "eval")["auc"], Value::Null);
}

#[test]
fn graded_pair_without_score_fails() {
    let project = Project::new();
    project.write("data/pairs.jsonl", GOLDEN_PAIRS);
    project.write("data/scores.jsonl", &GOLDEN_SCORES.lines().take(4).map(|l| format!("{l}\n")).collect::<String>());
    project.write("wf.yaml", &evaluate_workflow(""));
    let printed = run_fails(&project, "wf.yaml");
    assert!(printed.contains("pairs.jsonl:5: query `q` and document `e` have a grade but no score"), "{printed}");
    assert_nothing_committed(&project, "eval");
}

#[test]
fn report_gathers_metrics_curves_and_speed() {
    let project = Project::new();
    project.write("data/pairs.jsonl", GOLDEN_PAIRS);
    project.write("data/scores.jsonl", GOLDEN_SCORES);
    project.write("data/reversed/scores.jsonl", &GOLDEN_SCORES.replace("0.9", "0.05"));
    let trained = json!({"auc": 0.8, "pairs_per_second": 1523.7, "curves": {"loss": [[0, 2.0], [50, 1.2], [100, 0.9]]}});
    project.write("data/trained/metrics.json", &trained.to_string());
    project.write(
        "wf.yaml",
        r#"nodes:
  first:
    stage: evaluate
    inputs: {scores: {path: data/scores.jsonl}, pairs: {path: data/pairs.jsonl}}
  second:
    stage: evaluate
    inputs: {scores: {path: data/reversed/scores.jsonl}, pairs: {path: data/pairs.jsonl}}
  report:
    stage: report
    inputs: {m1: first.metrics, m2: second.metrics, m3: {path: data/trained/metrics.json}}
    params: {title: Golden runs, labels: [first-stage, degraded, trained]}
"#,
    );
    let summary = project.run_ok("wf.yaml", &[]);
    let dir = output_dir(&project, &summary, "report", "report");
    let markdown = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(markdown.starts_with("# Golden runs\n"), "{markdown}");
    assert!(markdown.contains("| metric | first-stage | degraded | trained |"), "{markdown}");
    assert!(markdown.contains("| pnr | 2 | "), "{markdown}");
    assert!(markdown.contains("| trained | 1524 |"), "speed table: {markdown}");
    assert!(markdown.contains("![loss](plots/curve-01-loss.svg)"), "{markdown}");
    assert!(markdown.contains("![auc](plots/01-auc.svg)"), "{markdown}");
    assert!(dir.join("plots/01-auc.svg").is_file());

    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert_eq!(html.matches("<svg").count(), std::fs::read_dir(dir.join("plots")).unwrap().count(), "every chart is inlined");
    assert!(!html.contains("src="), "the page loads no image or script");
    assert!(!html.contains("href="), "the page links no style sheet");
    assert_eq!(metrics_of(&project, "report")["inputs"], 3);
}

#[test]
fn report_without_inputs_fails() {
    let project = Project::new();
    project.write("wf.yaml", "nodes:\n  report:\n    stage: report\n");
    let printed = run_fails(&project, "wf.yaml");
    assert!(printed.contains("no metrics input is connected"), "{printed}");
    assert_nothing_committed(&project, "report");
}
