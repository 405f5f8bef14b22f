//! The `plugins:` section of a workflow: entries that are invalid as written are reported at
//! their line, before anything runs.

use flywheel_e2e::{Project, built, text};

/// Runs `flywheel dag` on a workflow with the given `plugins:` entries and one `bm25` node;
/// returns stderr after checking that loading failed.
fn load_error(plugins: &str) -> String {
    let project = Project::new();
    project.write("wf.yaml", &format!("plugins:\n{plugins}nodes:\n  score:\n    stage: bm25\n"));
    let output = project.flywheel(&["dag", "wf.yaml"]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    String::from_utf8_lossy(&output.stderr).to_string()
}

fn bm25() -> String {
    built().library("flywheel_bm25_stage").display().to_string()
}

#[test]
fn plugin_with_library_and_command() {
    let stderr = load_error(&format!("  - library: \"{}\"\n    command: [python3, x.py]\n", bm25()));
    assert!(stderr.contains("wf.yaml:3:14: a plugin has either `library` or `command`, not both"), "{stderr}");
}

#[test]
fn plugin_without_kind() {
    let stderr = load_error("  - files: [x.py]\n");
    assert!(stderr.contains("wf.yaml:2:5: a plugin needs `library: PATH` or `command: [PROGRAM, ARG...]`"), "{stderr}");
}

#[test]
fn library_plugin_with_files() {
    let stderr = load_error(&format!("  - library: \"{}\"\n    files: [x.py]\n", bm25()));
    assert!(stderr.contains("wf.yaml:3:13: `files` applies only to `command` plugins"), "{stderr}");
}

#[test]
fn command_plugin_with_zero_timeout() {
    let stderr = load_error("  - command: [python3, x.py]\n    timeout_s: 0\n");
    assert!(stderr.contains("wf.yaml:3:16: `timeout_s` must be a positive number of seconds, got 0"), "{stderr}");
}

#[test]
fn command_plugin_with_empty_command() {
    let stderr = load_error("  - command: []\n");
    assert!(stderr.contains("wf.yaml:2:14: `command` is empty"), "{stderr}");
}

#[test]
fn plugin_field_typo_gets_suggestion() {
    let stderr = load_error(&format!("  - libary: \"{}\"\n", bm25()));
    assert!(stderr.contains("unknown field `libary`"), "{stderr}");
    assert!(stderr.contains("did you mean `library`?"), "{stderr}");
}

#[test]
fn two_plugins_with_same_stage() {
    let project = Project::new();
    std::fs::copy(built().library("flywheel_bm25_stage"), project.path("copy.so")).unwrap();
    project.write("wf.yaml", &format!(
        "plugins:\n  - library: \"{}\"\n  - library: copy.so\nnodes:\n  score:\n    stage: bm25\n",
        bm25()
    ));
    let output = project.flywheel(&["dag", "wf.yaml"]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("wf.yaml:3:14: stage `bm25` is provided by two plugins"), "{stderr}");
    assert!(stderr.contains("the plugin at line 2 provides it too"), "{stderr}");
}

#[test]
fn plugin_path_takes_vars() {
    let project = Project::new();
    let dir = built().profile_dir.display().to_string();
    project.write("wf.yaml", &format!(
        "vars:\n  target: \"{dir}\"\nplugins:\n  - library: \"${{target}}/libflywheel_bm25_stage.so\"\nnodes:\n  \
         pairs:\n    stage: import-pairs\n    inputs: {{file: {{path: wf.yaml}}}}\n  \
         docs:\n    stage: import-corpus\n    inputs: {{file: {{path: wf.yaml}}}}\n  \
         score:\n    stage: bm25\n    inputs: {{pairs: pairs, corpus: docs}}\n"
    ));
    let output = project.flywheel(&["dag", "wf.yaml"]);
    assert!(output.status.success(), "{}", text(&output));
    let dag = String::from_utf8_lossy(&output.stdout);
    assert!(dag.contains("score (bm25)\n  corpus <- docs.corpus\n  pairs <- pairs.pairs\n"), "{dag}");

    let output = project.flywheel(&["dag", "wf.yaml", "--set", "vars.target=/nonexistent"]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("plugin /nonexistent/libflywheel_bm25_stage.so: library file not found"), "{stderr}");
}
