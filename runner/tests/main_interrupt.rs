//! Interrupts the shipped workflow `workflows/relevance.yaml` during post-pretraining, once
//! with Ctrl-C (SIGINT) and once with SIGKILL. Each next run must resume the `teacher_post`
//! node from its last checkpoint. The final model bytes must equal those of a run that was
//! never interrupted.
//!
//! The workflow file and the embedded NovelEval data are the real ones. `--set` shrinks the
//! models and sequences so that the test trains for seconds, and `--target teacher_post` stops
//! the run after the node under test. `scripts/interrupt-main.sh` does the same on the default
//! run with its full sizes (docs/results.md has its output).

mod common;
mod main_support;

use std::path::PathBuf;
use std::process::Child;

use common::{Project, sigkill, text, wait_for};
use main_support::{plugin_dir, workspace_root};

/// Sizes for a test run: every node that `teacher_post` needs, small enough for a debug build.
const TINY: &[&str] = &[
    "defaults.max_len=32",
    "defaults.batch_size=4",
    "tokenizer.vocab_size=600",
    "teacher_mlm.layers=1",
    "teacher_mlm.hidden=32",
    "teacher_mlm.heads=2",
    "teacher_mlm.steps=4",
    "teacher_mlm.warmup_steps=1",
    "teacher_post.steps=240",
    "teacher_post.checkpoint_every=10",
];

fn run_args() -> Vec<String> {
    let workflow = workspace_root().join("workflows/relevance.yaml");
    let mut args = vec!["run".to_string(), workflow.display().to_string(), "--target".into(), "teacher_post".into()];
    args.extend(["--device", "cpu", "--threads", "2", "--jobs", "2"].map(String::from));
    args.extend(["--set".to_string(), format!("vars.target={}", plugin_dir().display())]);
    for set in TINY {
        args.extend(["--set".to_string(), set.to_string()]);
    }
    args
}

/// Returns what `flywheel status` prints for the workflow of [`run_args`].
fn status_text(project: &Project) -> String {
    let workflow = workspace_root().join("workflows/relevance.yaml");
    let mut args = vec!["status".to_string(), workflow.display().to_string()];
    args.extend(["--set".to_string(), format!("vars.target={}", plugin_dir().display())]);
    for set in TINY {
        args.extend(["--set".to_string(), set.to_string()]);
    }
    let output = project.flywheel(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(output.status.success(), "{}", text(&output));
    text(&output)
}

fn spawn_run(project: &Project) -> Child {
    let args = run_args();
    project.spawn(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

fn run_to_end(project: &Project) -> String {
    let args = run_args();
    let output = project.flywheel(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(output.status.success(), "{}", text(&output));
    project.last_summary().output("teacher_post", "model")
}

/// Reads every line of every run log of the store, oldest first.
fn log_lines(project: &Project) -> Vec<serde_json::Value> {
    let mut lines: Vec<serde_json::Value> = common::files_below(&project.store().join("runs"))
        .iter()
        .filter(|p| p.ends_with("log.jsonl"))
        .flat_map(|p| std::fs::read_to_string(p).unwrap_or_default().lines().map(String::from).collect::<Vec<_>>())
        .filter_map(|line| serde_json::from_str(&line).ok())
        .collect();
    lines.sort_by(|a, b| a["t"].as_f64().unwrap_or(0.0).total_cmp(&b["t"].as_f64().unwrap_or(0.0)));
    lines
}

/// Returns the checkpoint directory of `teacher_post`, once its node has started.
fn post_checkpoints(project: &Project) -> Option<PathBuf> {
    let key = log_lines(project).into_iter().find(|l| l["event"] == "start" && l["node"] == "teacher_post")?["key"].as_str()?.to_string();
    Some(project.store().join("checkpoints").join(key.strip_prefix("b3:").unwrap_or(&key)))
}

/// Returns the highest step among `teacher_post`'s finished resume checkpoints.
fn last_checkpoint_step(project: &Project) -> u64 {
    let Some(dir) = post_checkpoints(project) else { return 0 };
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.file_name().to_str()?.strip_prefix("step-")?.parse::<u64>().ok())
                .max()
                .unwrap_or(0)
        })
        .unwrap_or(0)
}

/// Returns the steps that `teacher_post` resumed at, over every run so far.
fn resumed_steps(project: &Project) -> Vec<u64> {
    log_lines(project)
        .into_iter()
        .filter(|l| l["node"] == "teacher_post")
        .filter_map(|l| l["message"].as_str()?.strip_prefix("resuming at step ")?.split(' ').next()?.parse().ok())
        .collect()
}

#[test]
fn post_pretraining_interrupt_resumes_identically() {
    let reference = Project::new();
    let expected = run_to_end(&reference);

    let project = Project::new();

    // Ctrl-C after the first checkpoint: the run stops, commits nothing of `teacher_post`.
    let child = spawn_run(&project);
    assert!(wait_for(600, || last_checkpoint_step(&project) >= 20), "teacher_post never reached its second checkpoint");
    let first_stop = last_checkpoint_step(&project);
    assert!(std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap().success());
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(130), "Ctrl-C must end the run with 130:\n{}", text(&output));
    assert_eq!(project.last_summary().outcome("teacher_post"), "cancelled");
    assert!(project.flywheel(&["verify"]).status.success(), "the store is not clean after Ctrl-C");
    let status = status_text(&project);
    let expected_reason = format!("resumes from its checkpoint at step {}", last_checkpoint_step(&project));
    // The node's line, then its reasons on indented lines.
    let block: Vec<&str> = status.lines().skip_while(|l| !l.starts_with("teacher_post ")).take_while(|l| l.starts_with("teacher_post ") || l.starts_with(' ')).collect();
    assert!(block.iter().any(|l| l.contains(&expected_reason)), "status does not mention the checkpoint ({expected_reason}):\n{status}");

    // SIGKILL after it resumed and wrote a later checkpoint.
    let mut child = spawn_run(&project);
    assert!(wait_for(600, || last_checkpoint_step(&project) >= first_stop + 20), "the second run never checkpointed past step {first_stop}");
    sigkill(&mut child);
    let killed_at = last_checkpoint_step(&project);
    let resumed = resumed_steps(&project);
    assert!(resumed.first().is_some_and(|&s| s >= first_stop), "after Ctrl-C, teacher_post did not resume from step {first_stop}: {resumed:?}");
    assert!(project.flywheel(&["verify"]).status.success(), "the store is not clean after SIGKILL");

    // The third run resumes from the SIGKILLed run's checkpoint and finishes.
    let model = run_to_end(&project);
    let summary = project.last_summary();
    assert_eq!(summary.ran(), ["teacher_post"], "everything before post-pretraining was committed and stays cached");
    let resumed = resumed_steps(&project);
    assert_eq!(resumed.len(), 2, "{resumed:?}");
    assert!(resumed[1] >= killed_at, "after SIGKILL, teacher_post did not resume from step {killed_at}: {resumed:?}");
    assert!(resumed[1] > resumed[0], "the third run resumed no later than the second: {resumed:?}");
    assert_eq!(model, expected, "the resumed model differs from the uninterrupted run's");
    assert!(project.flywheel(&["verify"]).status.success());
}
