//! The behaviour half of the relevance recipe through the real binary: query split, simulated
//! clicks, behaviour features, the GBDT teacher and pseudo-labels, on the tiny data set and on
//! NovelEval.

mod common;
mod relevance_support;

use std::collections::{BTreeSet, HashMap};

use common::Project;
use relevance_support::*;
use serde_json::{Value, json};

/// Returns a workflow of the import nodes plus split, simulation, features, teacher, pseudo-labels and evaluation.
fn pipeline(seed: u64) -> String {
    format!(
        r#"name: rel
nodes:{IMPORT_NODES}
  split:
    stage: split-queries
    inputs: {{pairs: labels.pairs}}
    params: {{seed: 3, train_fraction: 0.5, validation_fraction: 0.25}}
  clicks:
    stage: simulate-clicks
    inputs: {{scores: {{path: data/scores.jsonl}}, pairs: labels.pairs}}
    params: {{seed: {seed}, sessions_per_query: 200, depth: 4}}
  features:
    stage: behaviour-features
    inputs: {{clicks: clicks.clicks, queries: queries.queries}}
  teacher:
    stage: teacher-gbdt
    inputs: {{features: features.pairs, train: split.train, validation: split.validation}}
  pseudo:
    stage: pseudo-label
    inputs: {{model: teacher.model, pairs: features.pairs}}
  eval:
    stage: evaluate
    inputs: {{scores: pseudo.scores, pairs: split.test}}
    params: {{missing_scores: skip}}
"#
    )
}

fn run_pipeline(seed: u64) -> (Project, common::Summary) {
    let project = Project::new();
    write_tiny_data(&project);
    project.write("wf.yaml", &pipeline(seed));
    let summary = project.run_ok("wf.yaml", &[]);
    (project, summary)
}

fn qids(pairs: &[Value]) -> BTreeSet<String> {
    pairs.iter().map(|p| p["qid"].as_str().unwrap().to_string()).collect()
}

#[test]
fn split_keeps_each_query_in_one_split() {
    let (project, summary) = run_pipeline(1);
    let read = |port: &str| read_jsonl(&output_dir(&project, &summary, "split", port).join("pairs.jsonl"));
    let (train, validation, test) = (read("train"), read("validation"), read("test"));
    assert_eq!(train.len() + validation.len() + test.len(), 24);
    let (train_q, validation_q, test_q) = (qids(&train), qids(&validation), qids(&test));
    assert_eq!((train_q.len(), validation_q.len(), test_q.len()), (3, 2, 1));
    assert!(train_q.is_disjoint(&validation_q), "{train_q:?} {validation_q:?}");
    assert!(train_q.is_disjoint(&test_q), "{train_q:?} {test_q:?}");
    assert!(validation_q.is_disjoint(&test_q), "{validation_q:?} {test_q:?}");
    for split in [&train, &validation, &test] {
        for qid in qids(split) {
            assert_eq!(split.iter().filter(|p| p["qid"] == qid.as_str()).count(), 4, "query {qid} is split across files");
        }
    }
}

#[test]
fn same_seed_same_bytes() {
    let (_first, a) = run_pipeline(1);
    let (_second, b) = run_pipeline(1);
    for (node, port) in [("split", "train"), ("clicks", "clicks"), ("features", "pairs"), ("teacher", "model"), ("teacher", "metrics"), ("pseudo", "pairs"), ("eval", "metrics")] {
        assert_eq!(a.output(node, port), b.output(node, port), "{node}.{port}");
    }
    let (_third, c) = run_pipeline(2);
    assert_ne!(a.output("clicks", "clicks"), c.output("clicks", "clicks"), "the seed changes the simulation");
}

#[test]
fn simulated_log_follows_the_click_model() {
    let (project, summary) = run_pipeline(1);
    let rows = read_jsonl(&output_dir(&project, &summary, "clicks", "clicks").join("clicks.jsonl"));
    assert_eq!(rows.len(), 6 * 200 * 4, "every session shows depth = 4 documents");
    for row in &rows {
        let position = row["position"].as_u64().unwrap();
        assert!((1..=4).contains(&position));
        assert!(row["click"] == 1 || row["dwell"] == 0, "dwell without a click: {row}");
        assert!(row["session"].as_str().unwrap().starts_with(row["qid"].as_str().unwrap()));
    }
    let ctr_at = |position: u64| {
        let shown: Vec<&Value> = rows.iter().filter(|r| r["position"] == position).collect();
        shown.iter().filter(|r| r["click"] == 1).count() as f64 / shown.len() as f64
    };
    assert!(ctr_at(1) > ctr_at(4), "position bias: {} vs {}", ctr_at(1), ctr_at(4));

    let metrics = metrics_of(&project, "clicks");
    assert_eq!(metrics["simulated"], true);
    assert_eq!(metrics["sessions"], 1200);
}

#[test]
fn simulation_says_so_in_its_docs() {
    let project = Project::new();
    let output = project.flywheel(&["stages", "simulate-clicks"]);
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(printed.contains("SIMULATION, not real users"), "{printed}");
    for line in printed.lines().filter(|l| l.trim_start().starts_with("param ") || l.trim_start().starts_with("out ")) {
        assert!(line.to_lowercase().contains("simulat"), "this doc line does not say it is a simulation: {line}");
    }
    let page = include_str!("../../docs/artifacts.md");
    assert!(page.contains("## Simulated behaviour logs"), "docs/artifacts.md lacks the simulation section");
    assert!(page.contains("**`simulate-clicks` produces a simulation, not user behaviour.**"));
}

#[test]
fn features_of_a_hand_written_log() {
    let project = Project::new();
    project.write("data/queries.tsv", "q1\tred cats\n");
    // Page s1: a skipped, b clicked for 40 s (last click). Page s2: b shown at 1, not clicked, above a click on a.
    project.write("data/clicks.tsv", "q1\ta\t1\t0\t0\ts1\nq1\tb\t2\t1\t40\ts1\nq1\tb\t1\t0\t0\ts2\nq1\ta\t2\t1\t5\ts2\n");
    project.write(
        "wf.yaml",
        "nodes:\n  queries:\n    stage: import-queries\n    inputs: {file: {path: data/queries.tsv}}\n  log:\n    stage: import-clicks\n    inputs: {file: {path: data/clicks.tsv}}\n  features:\n    stage: behaviour-features\n    inputs: {clicks: log.clicks, queries: queries.queries}\n",
    );
    let summary = project.run_ok("wf.yaml", &[]);
    let pairs = read_jsonl(&output_dir(&project, &summary, "features", "pairs").join("pairs.jsonl"));
    assert_eq!(pairs.len(), 2);
    assert_eq!(
        pairs[1],
        json!({"qid": "q1", "query": "red cats", "docid": "b", "features": {
            "impressions": 2, "clicks": 1, "ctr": 0.5, "debiased_ctr": 1.0 / 1.5, "skip_rate": 0.5,
            "mean_dwell": 40, "long_dwell_rate": 1, "last_click_rate": 1, "mean_position": 1.5
        }})
    );
}

#[test]
fn teacher_learns_and_labels_every_mined_pair() {
    let (project, summary) = run_pipeline(1);
    let model = output_dir(&project, &summary, "teacher", "model");
    assert!(model.join("model.json").is_file());
    let meta = read_json(&model.join("meta.json"));
    assert_eq!(
        meta["features"],
        json!(["impressions", "clicks", "ctr", "debiased_ctr", "skip_rate", "mean_dwell", "long_dwell_rate", "last_click_rate", "mean_position"])
    );
    assert_eq!(meta["format"], "perpetual-json");

    let teacher = metrics_of(&project, "teacher");
    assert_eq!(teacher["training_pairs"], 12);
    assert_eq!(teacher["validation_pairs"], 8);
    assert!(teacher["rmse"].as_f64().unwrap() < 1.2, "validation RMSE {}", teacher["rmse"]);
    for metric in ["auc", "pnr", "ndcg_exp@3"] {
        assert!(teacher[metric].is_number(), "{metric} in {teacher}");
    }
    let artifact = read_json(&output_dir(&project, &summary, "teacher", "metrics").join("metrics.json"));
    assert_eq!(artifact["rmse"], teacher["rmse"]);

    let mined = read_jsonl(&output_dir(&project, &summary, "features", "pairs").join("pairs.jsonl"));
    let labelled = read_jsonl(&output_dir(&project, &summary, "pseudo", "pairs").join("pairs.jsonl"));
    assert_eq!(labelled.len(), mined.len());
    for pair in &labelled {
        let label = pair["pseudo_label"].as_f64().unwrap_or_else(|| panic!("no pseudo_label in {pair}"));
        assert!((0.0..=3.0).contains(&label), "label {label} outside the training grades");
    }
    let show = project.flywheel(&["show", "eval"]);
    let printed = String::from_utf8_lossy(&show.stdout);
    assert!(printed.contains("\"ndcg_exp@10\""), "{printed}");
}

#[test]
fn unscored_graded_pair_fails_simulation() {
    let project = Project::new();
    write_tiny_data(&project);
    let scores: String = scores_from_qrels(&qrels()).lines().skip(1).map(|l| format!("{l}\n")).collect();
    project.write("data/scores.jsonl", &scores);
    project.write("wf.yaml", &pipeline(1));
    let printed = run_fails(&project, "wf.yaml");
    assert!(printed.contains("no score for query `q1` and document `d11`"), "{printed}");
    assert_nothing_committed(&project, "clicks");
    assert_nothing_committed(&project, "features");
}

#[test]
fn noveleval_pipeline_runs() {
    let Some(data) = noveleval() else { return };
    let project = Project::new();
    for name in ["queries.tsv", "docs.tsv", "qrels.tsv"] {
        std::fs::create_dir_all(project.path("data")).unwrap();
        std::fs::copy(data.join(name), project.path("data").join(name)).unwrap();
    }
    let qrels = std::fs::read_to_string(data.join("qrels.tsv")).unwrap();
    project.write("data/scores.jsonl", &scores_from_qrels(&qrels));
    project.write("wf.yaml", &pipeline(5).replace("sessions_per_query: 200, depth: 4", "sessions_per_query: 30, depth: 10"));
    let summary = project.run_ok("wf.yaml", &[]);
    let split: HashMap<&str, Value> = ["train", "validation", "test"]
        .into_iter()
        .map(|port| (port, json!(qids(&read_jsonl(&output_dir(&project, &summary, "split", port).join("pairs.jsonl"))).len())))
        .collect();
    assert_eq!(split["train"].as_u64().unwrap() + split["validation"].as_u64().unwrap() + split["test"].as_u64().unwrap(), 21);
    let teacher = metrics_of(&project, "teacher");
    assert!(teacher["training_pairs"].as_u64().unwrap() > 50, "{teacher}");
    assert!(teacher["auc"].as_f64().unwrap() > 0.6, "the teacher should beat chance on NovelEval: {teacher}");
}
