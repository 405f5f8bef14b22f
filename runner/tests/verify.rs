//! Corrupt objects: `verify` reports and quarantines them, and `run` never trusts them.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use common::{Project, text};

const WORKFLOW: &str = "nodes:\n  a:\n    stage: fixture\n    params: {text: hello, marker: marker.txt}\n  b:\n    stage: fixture\n    inputs: {input: a.out}\n    params: {text: \" world\", marker: marker.txt}\n";

fn object_file(project: &Project, id: &str) -> PathBuf {
    let hex = id.strip_prefix("b3:").unwrap();
    project.store().join("objects").join(&hex[..2]).join(&hex[2..]).join("data/text.txt")
}

/// Flips one byte in place, keeping the size, as a disk error would.
fn flip_byte(path: &PathBuf) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut bytes = std::fs::read(path).unwrap();
    bytes[0] ^= 0x20;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn verify_reports_flipped_byte_and_run_recomputes() {
    let project = Project::new();
    project.write("wf.yaml", WORKFLOW);
    let summary = project.run_ok("wf.yaml", &[]);
    flip_byte(&object_file(&project, &summary.output("a", "out")));

    let output = project.flywheel(&["verify"]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains(&format!("corrupt object {}", summary.output("a", "out"))), "{stdout}");
    assert!(stdout.contains("does not match its hash"), "{stdout}");

    let rerun = project.run_ok("wf.yaml", &[]);
    assert_eq!(rerun.ran(), ["a"]);
    assert_eq!(rerun.outcome("b"), "cached");
    assert_eq!(std::fs::read_to_string(object_file(&project, &rerun.output("a", "out"))).unwrap(), "hello");
    assert!(project.flywheel(&["verify"]).status.success());
}

#[test]
fn run_detects_flipped_byte_without_verify() {
    let project = Project::new();
    project.write("wf.yaml", WORKFLOW);
    let summary = project.run_ok("wf.yaml", &[]);
    flip_byte(&object_file(&project, &summary.output("b", "out")));
    let rerun = project.run_ok("wf.yaml", &[]);
    assert_eq!(rerun.ran(), ["b"]);
    assert_eq!(std::fs::read_to_string(object_file(&project, &rerun.output("b", "out"))).unwrap(), "hello world");
}

#[test]
fn verify_reports_deleted_and_extra_files() {
    let project = Project::new();
    project.write("wf.yaml", WORKFLOW);
    let summary = project.run_ok("wf.yaml", &[]);
    let a_file = object_file(&project, &summary.output("a", "out"));
    std::fs::remove_file(&a_file).unwrap();
    let b_dir = object_file(&project, &summary.output("b", "out")).parent().unwrap().to_path_buf();
    std::fs::write(b_dir.join("extra.txt"), "x").unwrap();

    let output = project.flywheel(&["verify"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("text.txt is missing"), "{stdout}");
    assert!(stdout.contains("extra.txt is not in the manifest"), "{stdout}");
    let rerun = project.run_ok("wf.yaml", &[]);
    assert_eq!(rerun.ran(), ["a", "b"]);
}

#[test]
fn gc_keeps_latest_results_only() {
    let project = Project::new();
    project.write("wf.yaml", WORKFLOW);
    project.run_ok("wf.yaml", &[]);
    project.run_ok("wf.yaml", &["--set", "b.text=!"]);

    let dry = project.flywheel(&["gc", "--dry-run"]);
    let dry_out = String::from_utf8_lossy(&dry.stdout);
    assert!(dry_out.contains("would delete 1 records and 1 objects"), "{}", text(&dry));

    let gc = project.flywheel(&["gc"]);
    assert!(String::from_utf8_lossy(&gc.stdout).contains("deleted 1 records and 1 objects"), "{}", text(&gc));
    let again = project.run_ok("wf.yaml", &["--set", "b.text=!"]);
    assert!(again.ran().is_empty(), "gc removed live results: {:?}", again.ran());
    assert!(project.flywheel(&["verify"]).status.success());
}

#[test]
fn show_prints_lineage_and_metrics() {
    let project = Project::new();
    project.write("wf.yaml", WORKFLOW);
    let summary = project.run_ok("wf.yaml", &[]);
    let output = project.flywheel(&["show", "b"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", text(&output));
    assert!(stdout.contains("node b (stage fixture builtin:1)"), "{stdout}");
    assert!(stdout.contains("metrics: {\"bytes\":11}"), "{stdout}");
    assert!(stdout.contains("node a (stage fixture builtin:1)"), "lineage missing: {stdout}");

    let id = summary.output("a", "out");
    let artifact = project.flywheel(&["show", &id[3..15]]);
    let artifact_out = String::from_utf8_lossy(&artifact.stdout);
    assert!(artifact_out.contains("kind text, 1 files, 5 bytes"), "{artifact_out}");
    assert!(artifact_out.contains("read by: b"), "{artifact_out}");
}

#[test]
fn dag_formats() {
    let project = Project::new();
    project.write("wf.yaml", WORKFLOW);
    let dot = String::from_utf8_lossy(&project.flywheel(&["dag", "wf.yaml", "--format", "dot"]).stdout).to_string();
    assert!(dot.contains("\"a\" -> \"b\" [label=\"out -> input\"]"), "{dot}");
    let mermaid = String::from_utf8_lossy(&project.flywheel(&["dag", "wf.yaml", "--format", "mermaid"]).stdout).to_string();
    assert!(mermaid.contains("n_a -->|out → input| n_b"), "{mermaid}");
    let plain = String::from_utf8_lossy(&project.flywheel(&["dag", "wf.yaml"]).stdout).to_string();
    assert!(plain.contains("b (fixture)\n  input <- a.out"), "{plain}");
}
