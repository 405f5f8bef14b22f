//! Caching behaviour through the real binary: what re-runs after which change.

mod common;

use common::{Project, text};

/// a -> b -> c, and a -> d; `b` has a param that does not change its output bytes (`sleep_ms`).
const CHAIN: &str = r#"
nodes:
  a:
    stage: fixture
    params: {text: "A", marker: marker.txt}
  b:
    stage: fixture
    inputs: {input: a.out}
    params: {text: "B", marker: marker.txt}
  c:
    stage: fixture
    inputs: {input: b.out}
    params: {text: "C", marker: marker.txt}
  d:
    stage: fixture
    inputs: {input: a}
    params: {text: "D", marker: marker.txt}
"#;

#[test]
fn second_run_runs_nothing() {
    let project = Project::new();
    project.write("wf.yaml", CHAIN);
    let first = project.run_ok("wf.yaml", &[]);
    assert_eq!(first.ran(), ["a", "b", "c", "d"]);
    let second = project.run_ok("wf.yaml", &[]);
    assert!(second.ran().is_empty(), "re-ran {:?}", second.ran());
    for node in ["a", "b", "c", "d"] {
        assert_eq!(second.outcome(node), "cached");
        assert_eq!(project.starts("marker.txt", node), 1, "{node}");
    }
}

#[test]
fn param_change_reruns_node_and_changed_descendants() {
    let project = Project::new();
    project.write("wf.yaml", CHAIN);
    project.run_ok("wf.yaml", &[]);
    let summary = project.run_ok("wf.yaml", &["--set", "b.text=B2"]);
    assert_eq!(summary.ran(), ["b", "c"]);
    assert_eq!(summary.outcome("a"), "cached");
    assert_eq!(summary.outcome("d"), "cached");
}

#[test]
fn identical_output_stops_reruns_downstream() {
    let project = Project::new();
    project.write("wf.yaml", CHAIN);
    project.run_ok("wf.yaml", &[]);
    // `sleep_ms` changes b's key but not its output bytes, so c keeps its key.
    let summary = project.run_ok("wf.yaml", &["--set", "b.sleep_ms=1"]);
    assert_eq!(summary.ran(), ["b"]);
    assert_eq!(summary.outcome("c"), "cached");
    assert_eq!(project.starts("marker.txt", "c"), 1);
}

#[test]
fn external_file_change_reruns_reader() {
    let project = Project::new();
    project.write("data/text.txt", "one");
    project.write("wf.yaml", "nodes:\n  a:\n    stage: fixture\n    inputs: {input: {path: data}}\n  b:\n    stage: fixture\n    inputs: {input: a.out}\n    params: {text: B}\n");
    project.run_ok("wf.yaml", &[]);
    assert!(project.run_ok("wf.yaml", &[]).ran().is_empty());
    project.write("data/text.txt", "two");
    assert_eq!(project.run_ok("wf.yaml", &[]).ran(), ["a", "b"]);
}

#[test]
fn reformatting_workflow_keeps_every_key() {
    let project = Project::new();
    project.write("wf.yaml", CHAIN);
    project.run_ok("wf.yaml", &[]);
    // The same workflow with nodes and params reordered, flow style replaced by block style,
    // quoting changed and comments added.
    let reformatted = r#"
# reformatted copy
nodes:
  d:   # listed first now
    inputs:
      input: a
    params:
      marker: "marker.txt"
      text: D
    stage: fixture
  c:
    stage: fixture
    inputs: {input: b.out}
    params: {marker: marker.txt, text: 'C'}
  b:
    params:
      marker: marker.txt
      text: "B"
    stage: fixture
    inputs:
      input: a.out
  a:
    stage: fixture
    params: {marker: marker.txt, text: "A"}
"#;
    project.write("wf.yaml", reformatted);
    let summary = project.run_ok("wf.yaml", &[]);
    assert!(summary.ran().is_empty(), "re-ran {:?}", summary.ran());
}

#[test]
fn workflow_default_applies_and_is_overridden_by_node() {
    let project = Project::new();
    project.write("wf.yaml", "defaults:\n  text: X\nnodes:\n  a:\n    stage: fixture\n  b:\n    stage: fixture\n    params: {text: Y}\n");
    let summary = project.run_ok("wf.yaml", &[]);
    let read = |node: &str| {
        let id = summary.output(node, "out");
        let hex = id.strip_prefix("b3:").unwrap();
        std::fs::read_to_string(project.store().join("objects").join(&hex[..2]).join(&hex[2..]).join("data/text.txt")).unwrap()
    };
    assert_eq!(read("a"), "X");
    assert_eq!(read("b"), "Y");
}

#[test]
fn force_reruns_only_named_node() {
    let project = Project::new();
    project.write("wf.yaml", CHAIN);
    project.run_ok("wf.yaml", &[]);
    let summary = project.run_ok("wf.yaml", &["--force", "b"]);
    assert_eq!(summary.ran(), ["b"]);
}

#[test]
fn status_explains_why_node_will_run() {
    let project = Project::new();
    project.write("wf.yaml", CHAIN);
    project.run_ok("wf.yaml", &[]);
    let output = project.flywheel(&["status", "wf.yaml", "--set", "b.text=B2"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", common::text(&output));
    let line = |node: &str| stdout.lines().find(|l| l.starts_with(&format!("{node} "))).unwrap_or_default().to_string();
    assert!(line("a").contains("cached"), "{stdout}");
    assert!(line("b").contains("will run"), "{stdout}");
    assert!(stdout.contains("param `text`: \"B\" -> \"B2\""), "{stdout}");
    assert!(line("c").contains("blocked"), "{stdout}");
    assert!(line("d").contains("cached"), "{stdout}");

    let unchanged = project.flywheel(&["status", "wf.yaml"]);
    assert!(String::from_utf8_lossy(&unchanged.stdout).contains("nothing to do"), "{}", common::text(&unchanged));
}

#[test]
fn default_override_reaches_nodes_without_their_own_value() {
    let project = Project::new();
    project.write("wf.yaml", "defaults:\n  text: D\nnodes:\n  a:\n    stage: fixture\n  b:\n    stage: fixture\n    params: {text: B}\n");
    project.run_ok("wf.yaml", &[]);
    let summary = project.run_ok("wf.yaml", &["--set", "defaults.text=Z"]);
    assert_eq!(summary.ran(), ["a"], "only the node that takes the default re-runs");
    assert_eq!(summary.outcome("b"), "cached");
    let summary = project.run_ok("wf.yaml", &["--set", "defaults.text=Z", "--set", "b.text=Y"]);
    assert_eq!(summary.ran(), ["b"], "a node's own --set wins over the default");

    let output = project.flywheel(&["run", "wf.yaml", "--set", "defaults.txt=Z"]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--set defaults.txt=Z: no stage in this workflow has a param `txt`"), "{stderr}");
    assert!(stderr.contains("text"), "no suggestion: {stderr}");
}
