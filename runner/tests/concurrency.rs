//! Several processes on one store, and the scheduler's own parallelism.

mod common;

use std::collections::BTreeMap;

use common::{Project, text};

#[test]
fn two_processes_compute_shared_node_once() {
    let project = Project::new();
    let workflow = "nodes:\n  shared:\n    stage: fixture\n    params: {text: S, marker: marker.txt, steps: 10, sleep_ms: 60}\n  x:\n    stage: fixture\n    inputs: {input: shared.out}\n    params: {text: X}\n";
    project.write("wf.yaml", workflow);
    let first = project.spawn(&["run", "wf.yaml"]);
    let second = project.spawn(&["run", "wf.yaml"]);
    let first = first.wait_with_output().unwrap();
    let second = second.wait_with_output().unwrap();
    assert!(first.status.success(), "{}", text(&first));
    assert!(second.status.success(), "{}", text(&second));
    assert_eq!(project.starts("marker.txt", "shared"), 1, "the shared node ran twice");
    let both = format!("{}{}", String::from_utf8_lossy(&first.stdout), String::from_utf8_lossy(&second.stdout));
    assert_eq!(both.lines().filter(|l| l.starts_with("shared ") && l.contains("ran in")).count(), 1, "{both}");
    let output = project.flywheel(&["verify"]);
    assert!(output.status.success(), "{}", text(&output));
}

/// Returns (start, end) times in ns of each node from a marker file.
fn intervals(project: &Project, marker: &str) -> Vec<(String, u128, u128)> {
    let lines = project.marker_lines(marker);
    let mut out = Vec::new();
    for line in &lines {
        let parts: Vec<&str> = line.split(' ').collect();
        if parts[0] == "start" {
            let end = lines.iter().find(|l| l.starts_with(&format!("end {} ", parts[1]))).expect("node ended");
            let end_ns: u128 = end.rsplit(' ').next().unwrap().parse().unwrap();
            out.push((parts[1].to_string(), parts[3].parse().unwrap(), end_ns));
        }
    }
    out
}

#[test]
fn gpu_stages_never_overlap() {
    let project = Project::new();
    let mut workflow = String::from("nodes:\n");
    for name in ["g1", "g2", "g3"] {
        workflow.push_str(&format!("  {name}:\n    stage: fixture-gpu\n    params: {{text: {name}, marker: gpu.txt, steps: 3, sleep_ms: 40}}\n"));
    }
    for name in ["c1", "c2"] {
        workflow.push_str(&format!("  {name}:\n    stage: fixture\n    params: {{text: {name}, marker: cpu.txt, steps: 3, sleep_ms: 60}}\n"));
    }
    project.write("wf.yaml", &workflow);
    project.run_ok("wf.yaml", &["--jobs", "4"]);
    let gpu = intervals(&project, "gpu.txt");
    assert_eq!(gpu.len(), 3);
    for (i, a) in gpu.iter().enumerate() {
        for b in &gpu[i + 1..] {
            assert!(a.2 <= b.1 || b.2 <= a.1, "{} and {} overlapped", a.0, b.0);
        }
    }
    // CPU stages do run side by side with --jobs 4, so the check above is not vacuous.
    let cpu = intervals(&project, "cpu.txt");
    assert!(cpu[0].1 < cpu[1].2 && cpu[1].1 < cpu[0].2, "cpu fixtures did not overlap: {cpu:?}");
}

#[test]
fn independent_nodes_run_in_parallel_up_to_jobs() {
    let project = Project::new();
    let mut workflow = String::from("nodes:\n");
    for name in ["p1", "p2", "p3"] {
        workflow.push_str(&format!("  {name}:\n    stage: fixture\n    params: {{text: {name}, marker: m.txt, steps: 2, sleep_ms: 50}}\n"));
    }
    project.write("wf.yaml", &workflow);
    project.run_ok("wf.yaml", &["--jobs", "1"]);
    let serial = intervals(&project, "m.txt");
    for (i, a) in serial.iter().enumerate() {
        for b in &serial[i + 1..] {
            assert!(a.2 <= b.1 || b.2 <= a.1, "--jobs 1 ran {} and {} at once", a.0, b.0);
        }
    }
}

/// Four workflows that share upstream nodes: `base` (in all four) reads an external file,
/// `mid1` (in w1 and w2) and `mid2` (in w3 and w4) read `base`, and each has its own leaf.
/// Shared nodes have the same params in every workflow, so they have the same key.
fn overlapping_workflow(index: usize) -> String {
    let mid = if index <= 2 { "mid1" } else { "mid2" };
    format!(
        r#"
nodes:
  base:
    stage: fixture
    inputs: {{input: {{path: shared/text.txt}}}}
    params: {{text: B, marker: marker.txt, steps: 6, sleep_ms: 100}}
  {mid}:
    stage: fixture
    inputs: {{input: base.out}}
    params: {{text: {mid}, marker: marker.txt, steps: 3, sleep_ms: 60}}
  leaf{index}:
    stage: fixture
    inputs: {{input: {mid}.out, extra: {{path: shared/text.txt}}}}
    params: {{text: L{index}, marker: marker.txt, steps: 2, sleep_ms: 30}}
"#
    )
}

fn overlapping_project() -> Project {
    let project = Project::new();
    project.write("shared/text.txt", "shared ");
    for index in 1..=4 {
        project.write(&format!("w{index}.yaml"), &overlapping_workflow(index));
    }
    project
}

/// Parses the `summary.json` of every run in the store.
fn all_summaries(project: &Project) -> Vec<serde_json::Value> {
    let runs = std::fs::read_dir(project.store().join("runs")).unwrap();
    runs.map(|entry| serde_json::from_slice(&std::fs::read(entry.unwrap().path().join("summary.json")).unwrap()).unwrap()).collect()
}

/// Returns workflow name -> (node -> output id) over every run's summary in the store.
fn outputs_by_workflow(project: &Project) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut all = BTreeMap::new();
    for summary in all_summaries(project) {
        let outputs: &mut BTreeMap<String, String> = all.entry(summary["workflow"].as_str().unwrap().to_string()).or_default();
        for node in summary["nodes"].as_array().unwrap() {
            outputs.insert(node[0].as_str().unwrap().to_string(), node[1]["outputs"]["out"].as_str().unwrap().to_string());
        }
    }
    all
}

#[test]
fn four_overlapping_workflows_share_work() {
    let serial = overlapping_project();
    for index in 1..=4 {
        serial.run_ok(&format!("w{index}.yaml"), &[]);
    }

    let project = overlapping_project();
    let children: Vec<_> = (1..=4).map(|index| project.spawn(&["run", &format!("w{index}.yaml")])).collect();
    for (index, child) in (1..=4).zip(children) {
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "w{index} failed:\n{}", text(&output));
    }

    for node in ["base", "mid1", "mid2", "leaf1", "leaf2", "leaf3", "leaf4"] {
        assert_eq!(project.starts("marker.txt", node), 1, "{node} did not run exactly once");
    }
    // At least one run waited for another's `base`, so the four really ran at the same time.
    let waited = all_summaries(&project).iter().filter(|summary| summary["nodes"][0][1]["outcome"] == "shared").count();
    assert!(waited >= 1, "no run waited for the shared node `base`");
    let verify = project.flywheel(&["verify"]);
    assert!(verify.status.success(), "{}", text(&verify));
    let concurrent = outputs_by_workflow(&project);
    assert_eq!(concurrent.len(), 4, "{concurrent:?}");
    assert_eq!(concurrent, outputs_by_workflow(&serial), "outputs differ from the serial runs");
}

/// `b` reads `a` and an external file chosen by a var. It runs for about 2.4 s, so that `gc`
/// finishes beside it even on a loaded machine.
const GC_WORKFLOW: &str = r#"
vars:
  ext: ext2
nodes:
  a:
    stage: fixture
    params: {text: A}
  b:
    stage: fixture
    inputs: {input: a.out, extra: {path: "${ext}/text.txt"}}
    params: {text: B, marker: marker.txt, steps: 40, sleep_ms: 60}
"#;

/// Path below the store of an object or record named by `id` (`b3:<hex>`).
fn store_path(project: &Project, folder: &str, id: &str, suffix: &str) -> std::path::PathBuf {
    let hex = id.strip_prefix("b3:").unwrap();
    project.store().join(folder).join(&hex[..2]).join(format!("{}{suffix}", &hex[2..]))
}

#[test]
fn gc_beside_running_workflow() {
    let project = Project::new();
    project.write("wf.yaml", GC_WORKFLOW);
    project.write("ext1/text.txt", "first ");
    project.write("ext2/text.txt", "second ");
    let old = project.run_ok("wf.yaml", &["--set", "a.text=OLD", "--set", "vars.ext=ext1", "--set", "b.steps=1"]);
    let old_a_key = old.0["nodes"][0][1]["key"].as_str().unwrap().to_string();
    let old_a_output = old.output("a", "out");
    let old_b_key = old.0["nodes"][1][1]["key"].as_str().unwrap().to_string();
    let old_record: serde_json::Value = serde_json::from_slice(&std::fs::read(store_path(&project, "actions", &old_b_key, ".json")).unwrap()).unwrap();
    let ext1 = old_record["parts"]["inputs"]["extra"].as_str().unwrap().to_string();
    // A checkpoint of a key that no process holds, as a killed run leaves behind.
    let stale_checkpoint = project.store().join("checkpoints").join("ab".repeat(32)).join("step-000001");
    std::fs::create_dir_all(&stale_checkpoint).unwrap();

    let mut run = project.spawn(&["run", "wf.yaml"]);
    let mut b_checkpoint = None;
    let checkpointed = common::wait_for(30, || {
        let files = common::files_below(&project.store().join("checkpoints"));
        b_checkpoint = files.iter().find(|p| p.ends_with("step-000002/step")).map(|p| p.parent().unwrap().parent().unwrap().to_path_buf());
        b_checkpoint.is_some()
    });
    assert!(checkpointed, "b never wrote its second checkpoint");
    // The fixture ignores this file; it shows whether gc deleted b's checkpoint directory,
    // which b would silently create again at its next step.
    let sentinel = b_checkpoint.unwrap().join("sentinel");
    std::fs::write(&sentinel, "").unwrap();
    let gc = project.flywheel(&["gc", "--checkpoints"]);
    assert!(gc.status.success(), "{}", text(&gc));
    assert!(run.try_wait().unwrap().is_none(), "gc returned only after the run ended:\n{}", text(&gc));
    assert!(sentinel.exists(), "gc deleted the checkpoint directory of the running node b");

    assert!(!store_path(&project, "actions", &old_a_key, ".json").exists(), "gc kept the stale record of a");
    // b's ref names the old b record until b finishes, so that record and its inputs stay.
    assert!(store_path(&project, "actions", &old_b_key, ".json").exists(), "gc deleted the record that b's ref still names");
    assert!(store_path(&project, "objects", &old_a_output, "").exists(), "gc deleted an input of the old b record");
    assert!(!stale_checkpoint.exists(), "gc kept the checkpoint of a dead run");

    let output = run.wait_with_output().unwrap();
    assert!(output.status.success(), "the run failed beside gc:\n{}", text(&output));
    let summary = project.last_summary();
    let new_b_key = summary.0["nodes"][1][1]["key"].as_str().unwrap().to_string();
    let record: serde_json::Value = serde_json::from_slice(&std::fs::read(store_path(&project, "actions", &new_b_key, ".json")).unwrap()).unwrap();
    // The imported ext2 file was pinned: no ref reached it while b ran.
    for id in record["parts"]["inputs"].as_object().unwrap().values().chain(record["outputs"].as_object().unwrap().values()) {
        assert!(store_path(&project, "objects", id.as_str().unwrap(), "").exists(), "gc deleted {id}, which the run used");
    }
    let verify = project.flywheel(&["verify"]);
    assert!(verify.status.success(), "{}", text(&verify));
    let rerun = project.run_ok("wf.yaml", &[]);
    assert!(rerun.ran().is_empty(), "the run's results were not cached: {:?}", rerun.ran());
    assert_eq!(project.starts("marker.txt", "b"), 2, "b ran again after gc");

    // With the run over, the old b record and the inputs it read are stale too.
    let gc = project.flywheel(&["gc"]);
    assert!(gc.status.success(), "{}", text(&gc));
    assert!(!store_path(&project, "actions", &old_b_key, ".json").exists(), "gc kept the stale record of b");
    assert!(!store_path(&project, "objects", &old_a_output, "").exists(), "gc kept the stale output of a");
    assert!(!store_path(&project, "objects", &ext1, "").exists(), "gc kept the stale ext1 input");
}
