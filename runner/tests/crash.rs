//! Crashes and failures: killed runs, injected faults, stages that fail, panic or write nothing.
//! After each, the store must verify clean and the next run must redo only what is missing.

mod common;

use common::{Project, sigkill, text, wait_for};

const SLOW_CHAIN: &str = r#"
nodes:
  a:
    stage: fixture
    params: {text: "A", marker: marker.txt}
  b:
    stage: fixture
    inputs: {input: a.out}
    params: {text: "B", marker: marker.txt, steps: 40, sleep_ms: 50}
  c:
    stage: fixture
    inputs: {input: b.out}
    params: {text: "C", marker: marker.txt}
"#;

fn verify_clean(project: &Project) {
    let output = project.flywheel(&["verify"]);
    assert!(output.status.success(), "verify found problems:\n{}", text(&output));
}

fn run_log_text(project: &Project) -> String {
    let runs = project.store().join("runs");
    let mut all = String::new();
    for entry in std::fs::read_dir(runs).unwrap() {
        all.push_str(&std::fs::read_to_string(entry.unwrap().path().join("log.jsonl")).unwrap_or_default());
    }
    all
}

/// Returns whether `node` logged that it resumed from a checkpoint, in any run so far.
fn resumed(project: &Project, node: &str) -> bool {
    run_log_text(project).lines().any(|line| {
        let event: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
        event["node"] == node && event["message"].as_str().is_some_and(|m| m.starts_with("resuming at step"))
    })
}

#[test]
fn sigkill_mid_node_redoes_only_that_node() {
    let project = Project::new();
    project.write("wf.yaml", SLOW_CHAIN);
    let mut child = project.spawn(&["run", "wf.yaml"]);
    let checkpoint_reached = wait_for(30, || {
        common::files_below(&project.store().join("checkpoints"))
            .iter()
            .any(|p| std::fs::read_to_string(p).ok().and_then(|s| s.parse::<u32>().ok()).is_some_and(|step| step >= 3))
    });
    assert!(checkpoint_reached, "node b never checkpointed");
    sigkill(&mut child);

    verify_clean(&project);
    let status = project.flywheel(&["status", "wf.yaml"]);
    let stdout = String::from_utf8_lossy(&status.stdout);
    assert!(stdout.lines().any(|l| l.starts_with("a ") && l.contains("cached")), "{stdout}");
    assert!(stdout.lines().any(|l| l.starts_with("b ") && l.contains("will run")), "{stdout}");

    let output = project.flywheel(&["run", "wf.yaml"]);
    assert!(output.status.success(), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("waiting for"), "the dead run's lock was not reclaimed:\n{stderr}");
    let summary = project.last_summary();
    assert_eq!(summary.outcome("a"), "cached");
    assert_eq!(summary.ran(), ["b", "c"]);
    assert_eq!(project.starts("marker.txt", "a"), 1);
    assert!(run_log_text(&project).contains("resuming at step"), "b did not resume from its checkpoint");
    verify_clean(&project);
}

#[test]
fn missing_output_fails_and_is_not_recorded() {
    let project = Project::new();
    project.write("wf.yaml", "nodes:\n  a:\n    stage: fixture\n    params: {skip_output: true}\n");
    let output = project.flywheel(&["run", "wf.yaml"]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(String::from_utf8_lossy(&output.stdout).contains("without writing its declared output `out`"), "{}", text(&output));
    assert!(common::files_below(&project.store().join("actions")).is_empty(), "a record was written");
    assert!(common::files_below(&project.store().join("objects")).is_empty(), "an object was written");
    assert!(common::files_below(&project.store().join("tmp")).is_empty(), "staging was left behind");
}

#[test]
fn stage_error_and_panic_commit_nothing() {
    for (param, message) in [("fail", "fixture failed on request"), ("panic", "stage panicked: fixture panicked on request")] {
        let project = Project::new();
        project.write("wf.yaml", &format!("nodes:\n  a:\n    stage: fixture\n    params: {{{param}: true}}\n"));
        let output = project.flywheel(&["run", "wf.yaml"]);
        assert_eq!(output.status.code(), Some(1), "{}", text(&output));
        assert!(String::from_utf8_lossy(&output.stdout).contains(message), "{}", text(&output));
        assert!(common::files_below(&project.store().join("actions")).is_empty(), "{param}: a record was written");
        assert!(common::files_below(&project.store().join("objects")).is_empty(), "{param}: an object was written");
    }
}

#[test]
fn failure_stops_only_descendants_with_keep_going() {
    let project = Project::new();
    let workflow = "nodes:\n  bad:\n    stage: fixture\n    params: {fail: true}\n  below:\n    stage: fixture\n    inputs: {input: bad.out}\n  other:\n    stage: fixture\n    params: {text: o}\n";
    project.write("wf.yaml", workflow);
    let output = project.flywheel(&["run", "wf.yaml", "--keep-going", "--jobs", "1"]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let summary = project.last_summary();
    assert_eq!(summary.outcome("bad"), "failed");
    assert_eq!(summary.outcome("below"), "skipped");
    assert_eq!(summary.outcome("other"), "ran");
}

#[test]
fn failure_without_keep_going_starts_nothing_new() {
    let project = Project::new();
    let workflow = "nodes:\n  bad:\n    stage: fixture\n    params: {fail: true}\n  other:\n    stage: fixture\n    params: {text: o}\n";
    project.write("wf.yaml", workflow);
    let output = project.flywheel(&["run", "wf.yaml", "--jobs", "1"]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let summary = project.last_summary();
    assert_eq!(summary.outcome("bad"), "failed");
    assert_eq!(summary.outcome("other"), "skipped");
}

/// Three fixture nodes: `b` reads `a` and an external file and checkpoints 4 steps. With
/// `--jobs 1`, the fixture checkpoint points are reached once by `a` (hit 1), then by `b`
/// after each of its steps (hits 2 to 5).
const FAULT_CHAIN: &str = r#"
nodes:
  a:
    stage: fixture
    params: {text: A}
  b:
    stage: fixture
    inputs: {input: a.out, extra: {path: ext/text.txt}}
    params: {text: B, steps: 4}
  c:
    stage: fixture
    inputs: {input: b.out}
    params: {text: C}
"#;

fn fault_project() -> Project {
    let project = Project::new();
    project.write("wf.yaml", FAULT_CHAIN);
    project.write("ext/text.txt", "external ");
    project
}

/// Output ids of `a`, `b` and `c` in the newest run's summary.
fn chain_outputs(project: &Project) -> Vec<String> {
    let summary = project.last_summary();
    ["a", "b", "c"].iter().map(|node| summary.output(node, "out")).collect()
}

/// Every fault point, with the outcomes of `a`, `b` and `c` in the run after the crash, and
/// whether `b` must resume from a checkpoint in that run.
const FAULTS: &[(&str, [&str; 3], bool)] = &[
    ("object-before-rename", ["ran", "ran", "ran"], false),
    ("object-after-rename", ["ran", "ran", "ran"], false),
    ("before-record", ["ran", "ran", "ran"], false),
    ("after-record", ["cached", "ran", "ran"], false),
    ("between-nodes", ["cached", "ran", "ran"], false),
    ("between-nodes@2", ["cached", "cached", "ran"], false),
    // `b`'s second checkpoint: it resumes from the first, or from the second once renamed.
    ("checkpoint-partial@3", ["cached", "ran", "ran"], true),
    ("checkpoint-before-rename@3", ["cached", "ran", "ran"], true),
    ("checkpoint-after-rename@3", ["cached", "ran", "ran"], true),
];

#[test]
fn injected_faults_leave_nothing_trusted() {
    let reference = fault_project();
    reference.run_ok("wf.yaml", &["--jobs", "1"]);
    let expected = chain_outputs(&reference);

    for &(fault, outcomes, resumes) in FAULTS {
        let project = fault_project();
        let crashed = project.command(&["run", "wf.yaml", "--jobs", "1"]).env("FLYWHEEL_FAULT", fault).output().unwrap();
        assert!(!crashed.status.success(), "{fault}: the run did not abort:\n{}", text(&crashed));
        let point = fault.split('@').next().unwrap();
        assert!(String::from_utf8_lossy(&crashed.stderr).contains(&format!("fault injected at `{point}`")), "{fault}: {}", text(&crashed));
        verify_clean(&project);

        let summary = project.run_ok("wf.yaml", &["--jobs", "1"]);
        for (node, outcome) in ["a", "b", "c"].iter().zip(outcomes) {
            assert_eq!(summary.outcome(node), outcome, "{fault}: outcome of {node}");
        }
        assert_eq!(resumed(&project, "b"), resumes, "{fault}: resume of b");
        assert_eq!(chain_outputs(&project), expected, "{fault}: outputs differ from the uninterrupted run");
        assert!(common::files_below(&project.store().join("tmp")).is_empty(), "{fault}: stale staging not cleaned");
        verify_clean(&project);
    }
}

/// A tiny `pretrain-mlm` node that writes a resume checkpoint every 10 of its 30 steps. The
/// vocabulary covers every word of the documents.
const TRAINING: &str = r#"
nodes:
  docs:
    stage: import-corpus
    inputs:
      file: {path: docs.tsv}
  vocab:
    stage: import-tokenizer
    inputs:
      file: {path: vocab.txt}
  mlm:
    stage: pretrain-mlm
    inputs: {corpus: docs.corpus, tokenizer: vocab.tokenizer}
    params: {layers: 1, hidden: 32, heads: 2, max_len: 16, batch_size: 4, steps: 30, warmup_steps: 5, checkpoint_every: 10, log_every: 10, eval_fraction: 0.1, seed: 3}
"#;

const TRAINING_VOCAB: &str = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nthe\nquery\nranks\ndocument\nnumber\n0\n1\n2\n3\n4\n5\n6\n7\n8\n9\n##0\n##1\n##2\n##3\n##4\n##5\n##6\n##7\n##8\n##9\n";

fn training_project() -> Project {
    let project = Project::new();
    let docs: String = (0..30).map(|i| format!("d{i}\tthe query ranks document number {i} the document number {}\n", i % 7)).collect();
    project.write("docs.tsv", &docs);
    project.write("vocab.txt", TRAINING_VOCAB);
    project.write("wf.yaml", TRAINING);
    project
}

/// A crash inside the trainer's second checkpoint write (after step 20) must leave a store that
/// verifies clean and a node that resumes to the same model as an uninterrupted run.
#[test]
fn training_checkpoint_faults_resume_identical() {
    let args = ["run", "wf.yaml", "--device", "cpu", "--threads", "1"];
    let reference = training_project();
    reference.run_ok("wf.yaml", &args[2..]);
    let expected = reference.last_summary().output("mlm", "model");

    for (fault, resumed_at) in [("checkpoint-partial@2", 10), ("checkpoint-before-rename@2", 10), ("checkpoint-after-rename@2", 20)] {
        let project = training_project();
        let crashed = project.command(&args).env("FLYWHEEL_FAULT", fault).output().unwrap();
        assert!(!crashed.status.success(), "{fault}: the run did not abort:\n{}", text(&crashed));
        assert!(String::from_utf8_lossy(&crashed.stderr).contains("fault injected at `checkpoint-"), "{fault}: {}", text(&crashed));
        verify_clean(&project);

        let summary = project.run_ok("wf.yaml", &args[2..]);
        assert_eq!(summary.outcome("mlm"), "ran", "{fault}");
        assert!(run_log_text(&project).contains(&format!("resuming at step {resumed_at} ")), "{fault}: mlm did not resume at step {resumed_at}");
        assert_eq!(summary.output("mlm", "model"), expected, "{fault}: the resumed model differs from the uninterrupted run");
        verify_clean(&project);
    }
}

#[test]
fn interrupt_cancels_cleanly_and_resumes() {
    let project = Project::new();
    project.write("wf.yaml", SLOW_CHAIN);
    let child = project.spawn(&["run", "wf.yaml"]);
    assert!(wait_for(30, || project.starts("marker.txt", "b") == 1), "b never started");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let pid = child.id().to_string();
    assert!(std::process::Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(130), "{}", text(&output));
    let summary = project.last_summary();
    assert_eq!(summary.outcome("b"), "cancelled");
    assert_eq!(summary.outcome("c"), "cancelled");
    verify_clean(&project);

    let summary = project.run_ok("wf.yaml", &[]);
    assert_eq!(summary.ran(), ["b", "c"]);
    assert!(run_log_text(&project).contains("resuming at step"));
}
