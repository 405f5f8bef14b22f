//! Random SIGKILL trials: a small workflow is killed at a random moment, then the store must
//! verify clean and a re-run must end with the same output ids as an uninterrupted run.
//!
//! `FLYWHEEL_KILL_TRIALS` sets the number of trials (default 3) and `FLYWHEEL_KILL_SEED` the
//! seed of the delays (default: from the clock). Each trial prints one `kill trial` line with
//! the seed and its delay; `scripts/kill-trials.sh` runs 30 or more. The delays repeat with
//! the seed, but where a kill lands also depends on the machine's timing.
//! `mlm_resume.rs` kills a real training node in the same way.

mod common;

use std::time::Duration;

use common::{Project, sigkill, text};

/// Two nodes read the same external file. Every node sleeps through a few checkpointed steps,
/// so a kill can land in a stage, a checkpoint write, a commit or between nodes.
const WORKFLOW: &str = r#"
nodes:
  left:
    stage: fixture
    inputs: {input: {path: shared/text.txt}}
    params: {text: L, steps: 4, sleep_ms: 60}
  right:
    stage: fixture
    inputs: {input: {path: shared/text.txt}}
    params: {text: R, steps: 4, sleep_ms: 60}
  join:
    stage: fixture
    inputs: {input: left.out, extra: right.out}
    params: {text: J, steps: 3, sleep_ms: 60}
  tail:
    stage: fixture
    inputs: {input: join.out}
    params: {text: T, steps: 2, sleep_ms: 60}
"#;

/// Time from spawning `flywheel` to the start of its run, an estimate for a debug build.
const STARTUP_MS: u64 = 100;

const NODES: [&str; 4] = ["left", "right", "join", "tail"];

fn project() -> Project {
    let project = Project::new();
    project.write("wf.yaml", WORKFLOW);
    project.write("shared/text.txt", "shared input ");
    project
}

fn outputs(project: &Project) -> Vec<String> {
    let summary = project.last_summary();
    NODES.iter().map(|node| summary.output(node, "out")).collect()
}

/// Names of the nodes that resumed from a checkpoint in run `run_id`.
fn resumed_nodes(project: &Project, run_id: &str) -> Vec<String> {
    let log = std::fs::read_to_string(project.store().join("runs").join(run_id).join("log.jsonl")).unwrap();
    let mut nodes = Vec::new();
    for line in log.lines() {
        let event: serde_json::Value = serde_json::from_str(line).unwrap();
        if event["message"].as_str().is_some_and(|m| m.starts_with("resuming at step")) {
            nodes.push(event["node"].as_str().unwrap().to_string());
        }
    }
    nodes
}

/// SplitMix64: a small, well-mixed generator, enough to spread kill delays.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

fn env_u64(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(value.parse().unwrap_or_else(|_| panic!("{name}={value}: expected a non-negative integer")))
}

#[test]
fn random_sigkill_then_rerun_matches() {
    let trials = env_u64("FLYWHEEL_KILL_TRIALS").unwrap_or(3);
    let seed = env_u64("FLYWHEEL_KILL_SEED")
        .unwrap_or_else(|| std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64);
    let mut rng = SplitMix64(seed);

    let reference = project();
    let summary = reference.run_ok("wf.yaml", &[]);
    // Delays cover the process start (about 0.1 s) and the run, plus 10%, so a few kills hit a
    // run that has finished.
    let run_ms = (summary.0["seconds"].as_f64().expect("summary has seconds") * 1000.0) as u64;
    let window_ms = (STARTUP_MS + run_ms) * 11 / 10;
    let expected = outputs(&reference);

    for trial in 1..=trials {
        let delay_ms = rng.next() % window_ms;
        let context = format!("trial {trial}/{trials} (FLYWHEEL_KILL_SEED={seed}, delay {delay_ms} ms)");
        let project = project();
        let mut child = project.spawn(&["run", "wf.yaml"]);
        std::thread::sleep(Duration::from_millis(delay_ms));
        sigkill(&mut child);

        // A kill before `Store::open` wrote `STORE` leaves no store, and `verify` reports that
        // instead of creating one; the re-run below creates it.
        let store_created = project.store().join("STORE").exists();
        let verify = project.flywheel(&["verify"]);
        if store_created {
            assert!(verify.status.success(), "{context}: verify after the kill found problems:\n{}", text(&verify));
        } else {
            assert!(String::from_utf8_lossy(&verify.stderr).contains("no flywheel store"), "{context}: {}", text(&verify));
        }
        let rerun = project.flywheel(&["run", "wf.yaml"]);
        assert!(rerun.status.success(), "{context}: the re-run failed:\n{}", text(&rerun));
        let rerun_summary = project.last_summary();
        let ran = rerun_summary.ran();
        let resumed = resumed_nodes(&project, rerun_summary.0["run_id"].as_str().unwrap());
        assert_eq!(outputs(&project), expected, "{context}: outputs differ from the uninterrupted run");
        assert!(common::files_below(&project.store().join("tmp")).is_empty(), "{context}: staging left after the re-run");
        let verify = project.flywheel(&["verify"]);
        assert!(verify.status.success(), "{context}: verify after the re-run found problems:\n{}", text(&verify));
        let store_note = if store_created { "" } else { ", killed before the store existed" };
        println!("kill trial {trial}/{trials}: seed {seed}, delay {delay_ms} of {window_ms} ms{store_note}, re-run ran {ran:?}, resumed {resumed:?}: ok");
    }
    println!("kill trials: {trials} of {trials} passed (seed {seed})");
}
