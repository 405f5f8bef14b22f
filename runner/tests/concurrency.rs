//! Several processes on one store, and the scheduler's own parallelism.

mod common;

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
