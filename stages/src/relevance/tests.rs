//! Stage-level tests of the neural relevance stages, run in-process on a tiny random BERT
//! (2 layers, hidden 32) with the CPU backend on one thread. They compare resumed runs with
//! uninterrupted ones and check that a student follows its teacher rather than the grades.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use flywheel_stage_api::*;
use serde_json::{Map, Value, json};

use super::{Distill, Finetune, PostPretrain, ScorePairs};
use crate::model::init::init_weights;
use crate::model::{BertConfig, ModelDir};
use crate::ranking::{Judged, pnr_counts};
use crate::tokenizer::{self, Normalization};

const TOPICS: [&str; 4] = ["red cats", "blue dogs", "green birds", "yellow fish"];
const WORDS: &str = "[PAD] [UNK] [CLS] [SEP] [MASK] a about and birds blue cats dogs fish green news of page red the town weather yellow";

/// A temporary directory with a model, a corpus and pair files; document `d` of query `q`
/// mentions the query `3 - d` times and has grade `3 - d`.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let fixture = Fixture { dir: tempfile::tempdir().unwrap() };
        let vocab = fixture.path("vocab.txt");
        std::fs::write(&vocab, WORDS.replace(' ', "\n")).unwrap();
        let tokenizer = tokenizer::from_vocab(&vocab, Normalization { lowercase: true, strip_accents: true }).unwrap();
        let config = BertConfig::new(tokenizer.get_vocab_size(true), 32, 2, 2, 64);
        // `other_model` differs from `model` in its weights only.
        for (name, seed) in [("model", 11), ("other_model", 12)] {
            let dir = fixture.path(name);
            ModelDir::save(&dir, &config, &init_weights(&config, seed), None).unwrap();
            tokenizer::save(&tokenizer, &dir).unwrap();
        }

        let mut docs = String::new();
        for (q, topic) in TOPICS.iter().enumerate() {
            for d in 0..4 {
                let text = format!("{} a page about the weather and the news of the town", vec![*topic; 3 - d].join(" and "));
                docs.push_str(&format!("{}\n", json!({"id": format!("d{q}{d}"), "text": text})));
            }
        }
        fixture.write("corpus/docs.jsonl", &docs);
        fixture.write_pairs("train", &[0, 1, 2], |grade| json!({"grade": grade, "pseudo_label": f64::from(grade) * 0.8 + 0.3}));
        fixture.write_pairs("validation", &[3], |grade| json!({"grade": grade}));
        fixture
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, text: &str) {
        let path = self.path(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    /// Writes `name/pairs.jsonl` for `queries`, each pair with the fields `labels(grade)`.
    fn write_pairs(&self, name: &str, queries: &[usize], labels: impl Fn(u32) -> Value) {
        let mut text = String::new();
        for &q in queries {
            for d in 0..4u32 {
                let mut pair = json!({"qid": format!("q{q}"), "query": TOPICS[q], "docid": format!("d{q}{d}")});
                pair.as_object_mut().unwrap().extend(labels(3 - d).as_object().unwrap().clone());
                text.push_str(&format!("{pair}\n"));
            }
        }
        self.write(&format!("{name}/pairs.jsonl"), &text);
    }
}

/// The outputs of one stage run.
struct Ran {
    outputs: tempfile::TempDir,
    result: Result<StageOutcome, StageError>,
}

impl Ran {
    fn output(&self, port: &str) -> PathBuf {
        self.outputs.path().join(port)
    }

    fn metrics(&self) -> Value {
        serde_json::from_slice(&std::fs::read(self.output("metrics").join("metrics.json")).unwrap()).unwrap()
    }
}

/// Runs `stage` with `inputs` (port, directory), its default params overridden by `params`, and
/// the checkpoint directory `checkpoints`.
fn run(stage: &dyn Stage, inputs: &[(&str, &Path)], params: Value, checkpoints: &Path) -> Ran {
    let descriptor = stage.descriptor();
    let mut resolved: Map<String, Value> = descriptor.params.iter().filter_map(|p| Some((p.name.clone(), p.default.clone()?))).collect();
    resolved.extend(params.as_object().unwrap().clone());
    let outputs = tempfile::tempdir().unwrap();
    let mut output_dirs = BTreeMap::new();
    for port in &descriptor.outputs {
        let dir = outputs.path().join(&port.name);
        std::fs::create_dir_all(&dir).unwrap();
        output_dirs.insert(port.name.clone(), dir);
    }
    let inputs = inputs
        .iter()
        .map(|(port, path)| {
            let kind = descriptor.input_port(port).unwrap().kind.clone();
            (port.to_string(), InputArtifact { path: path.to_path_buf(), kind, id: format!("b3:{port}") })
        })
        .collect();
    let request = StageRequest {
        protocol: 1,
        node: "test".into(),
        stage: descriptor.name.clone(),
        params: resolved,
        inputs,
        outputs: output_dirs,
        checkpoint_dir: checkpoints.to_path_buf(),
        device: "cpu".into(),
        seed: 0,
        threads: 1,
    };
    let result = stage.run(&StageContext::new(&request, &NullHost));
    Ran { outputs, result }
}

fn read(path: PathBuf) -> Vec<u8> {
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Runs `stage` for 4 steps with a checkpoint at step 2, then again from that checkpoint, and
/// checks that both runs write the same model and curves. The second run gets `other_model` as
/// its init model, so it matches only when it really continues from the checkpoint.
fn assert_resume_matches(stage: &dyn Stage, fixture: &Fixture, inputs: &[(&str, &Path)], params: Value) {
    let checkpoints = tempfile::tempdir().unwrap();
    let mut all = json!({"max_len": 32, "batch_size": 8, "steps": 4, "lr": 0.001, "checkpoint_every": 2, "log_every": 1, "seed": 5});
    all.as_object_mut().unwrap().extend(params.as_object().unwrap().clone());
    let whole = run(stage, inputs, all.clone(), checkpoints.path());
    whole.result.as_ref().expect("uninterrupted run");
    assert!(checkpoints.path().join("step-000000002/state.json").is_file(), "no checkpoint at step 2");

    let other_model = fixture.path("other_model");
    let init_port = inputs[0].0;
    let mut resumed_inputs = inputs.to_vec();
    resumed_inputs[0] = (init_port, &other_model);
    let resumed = run(stage, &resumed_inputs, all, checkpoints.path());
    resumed.result.as_ref().expect("resumed run");
    assert!(read(resumed.output("model").join("model.safetensors")) == read(whole.output("model").join("model.safetensors")), "resumed model differs");
    assert_eq!(resumed.metrics()["curves"], whole.metrics()["curves"], "resumed curves differ");
}

#[test]
fn finetune_resume_matches_uninterrupted() {
    let fixture = Fixture::new();
    let (model, train, validation, corpus) = (fixture.path("model"), fixture.path("train"), fixture.path("validation"), fixture.path("corpus"));
    let inputs = [("model", model.as_path()), ("pairs", &train), ("validation", &validation), ("corpus", &corpus)];
    assert_resume_matches(&Finetune, &fixture, &inputs, json!({"eval_every": 1, "select_metric": "pnr"}));
}

#[test]
fn post_pretrain_resume_matches_uninterrupted() {
    let fixture = Fixture::new();
    let (model, train, corpus) = (fixture.path("model"), fixture.path("train"), fixture.path("corpus"));
    let inputs = [("model", model.as_path()), ("pairs", &train), ("corpus", &corpus)];
    assert_resume_matches(&PostPretrain, &fixture, &inputs, json!({"mlm_weight": 0.3, "regression": "sigmoid-ce"}));
}

#[test]
fn huge_learning_rate_stops_with_error() {
    let fixture = Fixture::new();
    let (model, train, validation, corpus) = (fixture.path("model"), fixture.path("train"), fixture.path("validation"), fixture.path("corpus"));
    let inputs = [("model", model.as_path()), ("pairs", &train), ("validation", &validation), ("corpus", &corpus)];
    let checkpoints = tempfile::tempdir().unwrap();
    let ran = run(&Finetune, &inputs, json!({"max_len": 32, "batch_size": 8, "steps": 6, "lr": 1e30, "max_grad_norm": 0.0}), checkpoints.path());
    let error = ran.result.expect_err("training must stop").to_string();
    assert!(error.contains("loss is"), "{error}");
    assert!(error.contains("Lower `lr`"), "{error}");
}

#[test]
fn distilled_student_follows_teacher_not_grades() {
    let fixture = Fixture::new();
    // The teacher reverses the grades: grade 3 gets the lowest score.
    let mut scores = String::new();
    for q in 0..3 {
        for d in 0..4 {
            scores.push_str(&format!("{}\n", json!({"qid": format!("q{q}"), "docid": format!("d{q}{d}"), "score": f64::from(d) - 1.5})));
        }
    }
    fixture.write("teacher/scores.jsonl", &scores);
    let (model, train, teacher, corpus) = (fixture.path("model"), fixture.path("train"), fixture.path("teacher"), fixture.path("corpus"));
    let checkpoints = tempfile::tempdir().unwrap();
    let inputs = [("student", model.as_path()), ("teacher_scores", &teacher), ("pairs", &train), ("corpus", &corpus)];
    let student = run(&Distill, &inputs, json!({"max_len": 32, "batch_size": 12, "steps": 40, "lr": 0.002, "dropout": 0.0, "checkpoint_every": 0}), checkpoints.path());
    student.result.as_ref().expect("distillation");

    let student_model = student.output("model");
    let scored = run(&ScorePairs, &[("model", &student_model), ("pairs", &train), ("corpus", &corpus)], json!({"max_len": 32}), checkpoints.path());
    scored.result.as_ref().expect("scoring");
    let lines = std::fs::read_to_string(scored.output("scores").join("scores.jsonl")).unwrap();
    let student_scores: Vec<f64> = lines.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()["score"].as_f64().unwrap()).collect();
    let (mut with_teacher, mut with_grades) = ((0, 0), (0, 0));
    for q in 0..3 {
        let rows = q * 4..q * 4 + 4;
        let teacher: Vec<Judged> = rows.clone().map(|i| Judged { grade: (i % 4) as f64, score: student_scores[i] }).collect();
        let graded: Vec<Judged> = rows.map(|i| Judged { grade: (3 - i % 4) as f64, score: student_scores[i] }).collect();
        let (c, d) = pnr_counts(&teacher);
        with_teacher = (with_teacher.0 + c, with_teacher.1 + d);
        let (c, d) = pnr_counts(&graded);
        with_grades = (with_grades.0 + c, with_grades.1 + d);
    }
    assert!(with_teacher.0 > with_teacher.1, "student must order pairs as the teacher does: (concordant, discordant) = {with_teacher:?}, scores {student_scores:?}");
    assert!(with_grades.0 < with_grades.1, "student must not follow the grades: {with_grades:?}");
}
