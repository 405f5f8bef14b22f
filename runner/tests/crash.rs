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

#[test]
fn injected_faults_leave_nothing_trusted() {
    for fault in ["object-before-rename", "object-after-rename", "before-record", "after-record"] {
        let project = Project::new();
        project.write("wf.yaml", "nodes:\n  a:\n    stage: fixture\n    params: {text: A, marker: marker.txt}\n  b:\n    stage: fixture\n    inputs: {input: a.out}\n");
        let crashed = project.command(&["run", "wf.yaml"]).env("FLYWHEEL_FAULT", fault).output().unwrap();
        assert!(!crashed.status.success(), "{fault}: the run did not abort");
        verify_clean(&project);

        let summary = project.run_ok("wf.yaml", &[]);
        let expected_a = if fault == "after-record" { "cached" } else { "ran" };
        assert_eq!(summary.outcome("a"), expected_a, "{fault}");
        assert_eq!(summary.outcome("b"), "ran", "{fault}");
        assert!(common::files_below(&project.store().join("tmp")).is_empty(), "{fault}: stale staging not cleaned");
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
