//! The neural relevance stages through the real binary on a tiny BERT (2 layers, hidden 32, a
//! WordPiece vocabulary trained on the test corpus). The tests run `post-pretrain`,
//! `finetune`, `score` and `distill` for a few steps each, check their determinism, and check
//! that they reject bad inputs.

mod common;
mod relevance_support;

use common::Project;
use relevance_support::{assert_nothing_committed, output_dir, read_json, read_jsonl, run_fails};
use serde_json::{Value, json};

/// Four queries with four documents each; document `d` of a query mentions the query words
/// `3 - d` times, so its grade is `3 - d`.
const TOPICS: [&str; 4] = ["red cats", "blue dogs", "green birds", "yellow fish"];

fn docs_jsonl() -> String {
    let mut text = String::new();
    for (q, topic) in TOPICS.iter().enumerate() {
        for d in 0..4 {
            let mentions = vec![*topic; 3 - d].join(" and ");
            let body = format!("{mentions} a page about the weather and the news of the town");
            text.push_str(&format!("{}\n", json!({"id": format!("d{q}{d}"), "text": body})));
        }
    }
    text
}

/// Pairs of queries `queries`, each line built from (qid, query, docid, grade) by `line`.
fn pairs_jsonl(queries: &[usize], line: impl Fn(String, &str, String, u32) -> Value) -> String {
    let mut text = String::new();
    for &q in queries {
        for d in 0..4u32 {
            text.push_str(&format!("{}\n", line(format!("q{q}"), TOPICS[q], format!("d{q}{d}"), 3 - d)));
        }
    }
    text
}

/// Writes the corpus and the pair files: `mined` (pseudo labels), `train` and `validation`
/// (grades) and `unlabeled`.
fn write_data(project: &Project) {
    project.write("data/corpus/docs.jsonl", &docs_jsonl());
    project.write("data/vocab.txt", &VOCAB_WORDS.replace(' ', "\n"));
    project.write("data/mined/pairs.jsonl", &pairs_jsonl(&[0, 1, 2, 3], |qid, query, docid, grade| json!({"qid": qid, "query": query, "docid": docid, "pseudo_label": f64::from(grade) * 0.8 + 0.3})));
    project.write("data/train/pairs.jsonl", &pairs_jsonl(&[0, 1, 2], |qid, query, docid, grade| json!({"qid": qid, "query": query, "docid": docid, "grade": grade})));
    project.write("data/validation/pairs.jsonl", &pairs_jsonl(&[3], |qid, query, docid, grade| json!({"qid": qid, "query": query, "docid": docid, "grade": grade})));
    project.write("data/unlabeled/pairs.jsonl", &pairs_jsonl(&[0, 1, 2, 3], |qid, query, docid, _| json!({"qid": qid, "query": query, "docid": docid})));
}

/// A WordPiece vocabulary trained on the corpus, the tokenizer of most tests.
const TRAINED_VOCAB: &str = r#"
  vocab:
    stage: train-tokenizer
    inputs: {corpus: {path: data/corpus/docs.jsonl}}
    params: {vocab_size: 100, min_frequency: 1}
"#;

/// A fixed vocabulary of every corpus word. The determinism test needs it, because
/// `train-tokenizer` may order tokens of equal frequency differently in two processes.
const FIXED_VOCAB: &str = r#"
  vocab:
    stage: import-tokenizer
    inputs: {file: {path: data/vocab.txt}}
"#;

const VOCAB_WORDS: &str = "[PAD] [UNK] [CLS] [SEP] [MASK] a about and birds blue cats dogs fish green news of page red the town weather yellow";

/// Returns the tokenizer node `vocab` plus a 2-layer, hidden-32 model after one MLM step, the
/// init model of every test.
fn base_nodes(vocab: &str) -> String {
    format!(
        r#"
nodes:{vocab}
  base:
    stage: pretrain-mlm
    inputs: {{corpus: {{path: data/corpus/docs.jsonl}}, tokenizer: vocab.tokenizer}}
    params: {{layers: 2, hidden: 32, heads: 2, max_len: 32, batch_size: 4, steps: 1, warmup_steps: 1, eval_fraction: 0, checkpoint_every: 0, seed: 1}}
"#
    )
}

/// Every neural stage in the order of the recipe.
const PIPELINE_NODES: &str = r#"
  post:
    stage: post-pretrain
    inputs: {model: base.model, pairs: {path: data/mined/pairs.jsonl}, corpus: {path: data/corpus/docs.jsonl}}
    params: {max_len: 32, batch_size: 8, steps: 4, lr: 0.001, checkpoint_every: 2, log_every: 1, seed: 2}
  tune:
    stage: finetune
    inputs: {model: post.model, pairs: {path: data/train/pairs.jsonl}, validation: {path: data/validation/pairs.jsonl}, corpus: {path: data/corpus/docs.jsonl}}
    params: {max_len: 32, batch_size: 8, steps: 4, lr: 0.001, eval_every: 2, checkpoint_every: 2, log_every: 1, regression: sigmoid-ce, seed: 3}
  teacher_scores:
    stage: score
    inputs: {model: tune.model, pairs: {path: data/unlabeled/pairs.jsonl}, corpus: {path: data/corpus/docs.jsonl}}
    params: {max_len: 32, batch_size: 5}
  student:
    stage: make-student
    inputs: {teacher: tune.model}
    params: {layers: 1}
  distill:
    stage: distill
    inputs: {student: student.model, teacher_scores: teacher_scores.scores, pairs: {path: data/unlabeled/pairs.jsonl}, corpus: {path: data/corpus/docs.jsonl}}
    params: {max_len: 32, batch_size: 8, steps: 4, lr: 0.001, loss: margin-mse, checkpoint_every: 2, log_every: 1, seed: 4}
"#;

fn pipeline_project(vocab: &str) -> Project {
    let project = Project::new();
    write_data(&project);
    project.write("wf.yaml", &format!("{}{PIPELINE_NODES}", base_nodes(vocab)));
    project
}

const CPU: [&str; 4] = ["--device", "cpu", "--threads", "1"];

/// Returns the length of curve `name` in a metrics artifact.
fn curve_len(metrics: &Value, name: &str) -> usize {
    metrics["curves"][name].as_array().unwrap_or_else(|| panic!("curve `{name}` missing in {metrics}")).len()
}

#[test]
fn pipeline_runs_every_neural_stage() {
    let project = pipeline_project(TRAINED_VOCAB);
    let summary = project.run_ok("wf.yaml", &CPU);

    for node in ["post", "tune", "distill"] {
        let model = output_dir(&project, &summary, node, "model");
        for file in ["config.json", "model.safetensors", "tokenizer.json"] {
            assert!(model.join(file).is_file(), "{node}: {file} missing in the output model");
        }
        let metrics = read_json(&output_dir(&project, &summary, node, "metrics").join("metrics.json"));
        assert_eq!(metrics["steps"], 4, "{node}: {metrics}");
        assert_eq!(curve_len(&metrics, "loss"), 4, "{node}: one loss point per step with log_every 1");
        assert!(metrics["pairs_per_second"].as_f64().unwrap() > 0.0, "{node}: {metrics}");
    }
    let post = read_json(&output_dir(&project, &summary, "post", "metrics").join("metrics.json"));
    for curve in ["regression", "pairwise", "mlm"] {
        assert_eq!(curve_len(&post, curve), 4, "post-pretrain curve {curve}");
    }
    assert!(post["mlm"].as_f64().unwrap() > 0.0, "the MLM loss must be part of post-pretraining: {post}");

    let tune = read_json(&output_dir(&project, &summary, "tune", "metrics").join("metrics.json"));
    assert_eq!(curve_len(&tune, "validation_ndcg@10"), 2, "validation at step 2 and at the end");
    assert!([2, 4].contains(&tune["best_step"].as_u64().unwrap()), "{tune}");

    let scores = read_jsonl(&output_dir(&project, &summary, "teacher_scores", "scores").join("scores.jsonl"));
    assert_eq!(scores.len(), 16, "one score per unlabeled pair, the last batch padded");
    assert_eq!((scores[0]["qid"].as_str(), scores[0]["docid"].as_str()), (Some("q0"), Some("d00")), "scores keep the pairs' order");
    assert!(scores.iter().all(|s| s["score"].as_f64().is_some_and(f64::is_finite)));
    let score_metrics = read_json(&output_dir(&project, &summary, "teacher_scores", "metrics").join("metrics.json"));
    assert!(score_metrics["pairs_per_second"].as_f64().unwrap() > 0.0, "{score_metrics}");
    assert!(score_metrics["parameters"].as_u64().unwrap() > 10_000, "{score_metrics}");
    assert!(score_metrics["model_bytes"].as_u64().unwrap() > 40_000, "{score_metrics}");
}

#[test]
fn same_seed_same_models() {
    let first = pipeline_project(FIXED_VOCAB);
    let a = first.run_ok("wf.yaml", &CPU);
    let second = pipeline_project(FIXED_VOCAB);
    let b = second.run_ok("wf.yaml", &CPU);
    // Metrics are left out because they hold the measured pairs per second.
    for (node, port) in [("vocab", "tokenizer"), ("base", "model"), ("post", "model"), ("tune", "model"), ("teacher_scores", "scores"), ("distill", "model")] {
        assert_eq!(a.output(node, port), b.output(node, port), "{node}.{port} differs between two runs with the same seed");
    }
}

/// Writes `wf.yaml` with the base nodes plus `node`, and runs it expecting a failure of `name`.
fn fails_with(project: &Project, node: &str, name: &str) -> String {
    project.write("wf.yaml", &format!("{}{node}", base_nodes(TRAINED_VOCAB)));
    let output = run_fails(project, "wf.yaml");
    assert_nothing_committed(project, name);
    output
}

#[test]
fn post_pretrain_rejects_pairs_without_pseudo_labels() {
    let project = Project::new();
    write_data(&project);
    let node = r#"
  post:
    stage: post-pretrain
    inputs: {model: base.model, pairs: {path: data/train/pairs.jsonl}, corpus: {path: data/corpus/docs.jsonl}}
    params: {max_len: 32, batch_size: 4, steps: 2}
"#;
    let output = fails_with(&project, node, "post");
    assert!(output.contains("pairs.jsonl:1"), "{output}");
    assert!(output.contains("no `pseudo_label`"), "{output}");
    assert!(output.contains("`pseudo-label` stage"), "{output}");
}

#[test]
fn finetune_rejects_ungraded_validation() {
    let project = Project::new();
    write_data(&project);
    let node = r#"
  tune:
    stage: finetune
    inputs: {model: base.model, pairs: {path: data/train/pairs.jsonl}, validation: {path: data/unlabeled/pairs.jsonl}, corpus: {path: data/corpus/docs.jsonl}}
    params: {max_len: 32, batch_size: 4, steps: 2}
"#;
    let output = fails_with(&project, node, "tune");
    assert!(output.contains("validation: no pair has a `grade`"), "{output}");
}

#[test]
fn missing_document_rejected_by_every_stage() {
    let project = Project::new();
    write_data(&project);
    let ghost = r#"{"qid": "q0", "query": "red cats", "docid": "ghost", "grade": 1, "pseudo_label": 1.0}"#;
    project.write("data/ghost/pairs.jsonl", &format!("{}{ghost}\n", pairs_jsonl(&[0], |qid, query, docid, grade| json!({"qid": qid, "query": query, "docid": docid, "grade": grade, "pseudo_label": grade}))));
    project.write("data/ghost_scores/scores.jsonl", r#"{"qid": "q0", "docid": "ghost", "score": 1.0}
"#);
    let corpus = "corpus: {path: data/corpus/docs.jsonl}";
    let nodes = [
        ("post", format!("stage: post-pretrain\n    inputs: {{model: base.model, pairs: {{path: data/ghost/pairs.jsonl}}, {corpus}}}")),
        ("tune", format!("stage: finetune\n    inputs: {{model: base.model, pairs: {{path: data/ghost/pairs.jsonl}}, validation: {{path: data/validation/pairs.jsonl}}, {corpus}}}")),
        ("scored", format!("stage: score\n    inputs: {{model: base.model, pairs: {{path: data/ghost/pairs.jsonl}}, {corpus}}}")),
        ("distilled", format!("stage: distill\n    inputs: {{student: base.model, teacher_scores: {{path: data/ghost_scores/scores.jsonl}}, pairs: {{path: data/ghost/pairs.jsonl}}, {corpus}}}\n    params: {{missing_scores: skip}}")),
    ];
    for (name, body) in nodes {
        let output = fails_with(&project, &format!("\n  {name}:\n    {body}\n"), name);
        assert!(output.contains("document `ghost`"), "{name}: {output}");
        assert!(output.contains("not in the corpus"), "{name}: {output}");
    }
}

#[test]
fn distill_rejects_pairs_without_teacher_scores() {
    let project = Project::new();
    write_data(&project);
    project.write("data/partial_scores/scores.jsonl", r#"{"qid": "q0", "docid": "d00", "score": 1.0}
"#);
    let node = r#"
  distilled:
    stage: distill
    inputs: {student: base.model, teacher_scores: {path: data/partial_scores/scores.jsonl}, pairs: {path: data/unlabeled/pairs.jsonl}, corpus: {path: data/corpus/docs.jsonl}}
    params: {max_len: 32, batch_size: 4, steps: 2}
"#;
    let output = fails_with(&project, node, "distilled");
    assert!(output.contains("have no teacher score"), "{output}");
    assert!(output.contains("`d01`"), "{output}");
}
