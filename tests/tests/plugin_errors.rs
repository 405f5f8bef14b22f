//! Bad plugins: each gives a clear error and commits nothing for its node.

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use flywheel_e2e::{Project, built, text, workspace_root};

fn bad_script() -> String {
    workspace_root().join("tests/fixtures/subprocess/bad_stage.py").display().to_string()
}

/// Returns a workflow `bad` with one node, `bad`, of stage `stage` from the given plugin entry.
fn workflow(plugin: &str, stage: &str, params: &str) -> String {
    format!("name: bad\nplugins:\n  - {plugin}\nnodes:\n  bad:\n    stage: {stage}\n    params: {{{params}}}\n")
}

/// Returns a `command` plugin entry for the misbehaving test script.
fn script_plugin(extra: &str) -> String {
    let script = bad_script();
    format!("command: [python3, \"{script}\"{extra}]\n    files: [\"{script}\"]")
}

fn combined(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

/// Asserts that the store contains no record, ref or object (the workflows here have one node).
fn assert_nothing_committed(project: &Project) {
    let records: Vec<_> = project.records().into_iter().filter(|r| r["node"] == "bad").collect();
    assert!(records.is_empty(), "records were committed: {records:?}");
    assert!(!project.has_ref("bad", "bad"), "a ref was written");
    assert_eq!(project.object_count(), 0, "objects were committed");
}

/// Runs the workflow, expecting the exit code and every one of `messages` in the output.
fn run_fails(project: &Project, code: i32, messages: &[&str]) -> Output {
    let output = project.flywheel(&["run", "wf.yaml"]);
    assert_eq!(output.status.code(), Some(code), "{}", text(&output));
    let all = combined(&output);
    for message in messages {
        assert!(all.contains(message), "missing `{message}` in:\n{}", text(&output));
    }
    assert_nothing_committed(project);
    output
}

fn library_plugin(path: &Path) -> String {
    format!("library: \"{}\"", path.display())
}

#[test]
fn library_not_found() {
    let project = Project::new();
    project.write("wf.yaml", &workflow("library: plugins/missing.so", "plugin-echo", ""));
    run_fails(&project, 2, &["wf.yaml:3:14: plugin plugins/missing.so: library file not found", "problem(s) in wf.yaml"]);
}

#[test]
fn library_that_is_not_a_library() {
    let project = Project::new();
    project.write("plugins/fake.so", "this is a text file, not a shared object\n");
    project.write("wf.yaml", &workflow("library: plugins/fake.so", "plugin-echo", ""));
    run_fails(&project, 2, &["wf.yaml:3:14: plugin plugins/fake.so: cannot load it as a dynamic library (dlopen failed"]);
}

#[test]
fn library_without_entry_point() {
    let project = Project::new();
    project.write("wf.yaml", &workflow(&library_plugin(&built().example_library("no_entry")), "plugin-echo", ""));
    run_fails(&project, 2, &["missing entry point `flywheel_stage_plugin`", "undefined symbol: flywheel_stage_plugin"]);
}

#[test]
fn library_of_wrong_abi_version() {
    let project = Project::new();
    project.write("wf.yaml", &workflow(&library_plugin(&built().example_library("wrong_abi")), "plugin-echo", ""));
    run_fails(&project, 2, &["the plugin was built for stage ABI version 2, but this flywheel loads version 1"]);
}

#[test]
fn library_stage_that_panics() {
    let project = Project::new();
    project.write("wf.yaml", &workflow(&library_plugin(&built().library("flywheel_test_plugins")), "plugin-panic", ""));
    run_fails(&project, 1, &["FAILED: stage panicked in plugin", "plugin stage panicked on purpose"]);
}

#[test]
fn library_stage_that_reports_error() {
    let project = Project::new();
    project.write("wf.yaml", &workflow(&library_plugin(&built().library("flywheel_test_plugins")), "plugin-error", ""));
    run_fails(&project, 1, &["FAILED: plugin stage failed on purpose: the input is unusable"]);
}

#[test]
fn library_stage_without_output() {
    let project = Project::new();
    project.write("wf.yaml", &workflow(&library_plugin(&built().library("flywheel_test_plugins")), "plugin-no-output", ""));
    run_fails(&project, 1, &["FAILED: stage finished without writing its declared output `out`"]);
}

#[test]
fn library_stage_logs_under_its_node() {
    let project = Project::new();
    project.write("wf.yaml", &workflow(&library_plugin(&built().library("flywheel_test_plugins")), "plugin-echo", "text: hi"));
    project.run_ok("wf.yaml", &[]);
    let log = project.last_log();
    let lines: Vec<String> = log
        .iter()
        .filter(|event| event["event"] == "log")
        .map(|event| format!("{} {} {}", event["node"], event["level"], event["message"]))
        .collect();
    assert!(lines.contains(&r#""bad" "info" "echo plugin writes `hi`""#.to_string()), "{lines:?}");
    assert!(lines.contains(&r#""bad" "warn" "echo plugin warns once""#.to_string()), "{lines:?}");
    let progress = log.iter().any(|event| event["event"] == "progress" && event["node"] == "bad" && event["done"] == 1);
    assert!(progress, "no progress event of node `bad` in {log:?}");
}

#[test]
fn subprocess_that_exits_non_zero() {
    let project = Project::new();
    project.write("wf.yaml", &workflow(&script_plugin(""), "bad", "mode: exit"));
    run_fails(&project, 1, &["FAILED: stage `bad` (command `python3", "exited with status 3", "bad stage: giving up"]);
    // The stderr line is in the run log too, as a warning of the node.
    let log = project.last_log();
    let warned = log.iter().any(|e| e["event"] == "log" && e["node"] == "bad" && e["level"] == "warn" && e["message"] == "bad stage: giving up");
    assert!(warned, "stderr line missing from the run log: {log:?}");
}

#[test]
fn subprocess_that_prints_malformed_json() {
    let project = Project::new();
    project.write("wf.yaml", &workflow(&script_plugin(""), "bad", "mode: garbage"));
    let started = Instant::now();
    run_fails(&project, 1, &["malformed event on stdout line 1", "got `this is not JSON`", "the process was killed"]);
    // The script sleeps 30 s after the bad line; the runner must not wait for it.
    assert!(started.elapsed() < Duration::from_secs(20), "took {:?}", started.elapsed());
}

#[test]
fn subprocess_that_never_answers_times_out() {
    let project = Project::new();
    let plugin = script_plugin("").replace("files:", "timeout_s: 1\n    files:");
    let pid_file = project.path("pid");
    project.write("wf.yaml", &workflow(&plugin, "bad", &format!("mode: hang, pid_file: \"{}\"", pid_file.display())));
    let started = Instant::now();
    run_fails(&project, 1, &["timed out after 1 s and its process group was killed", "raise `timeout_s`"]);
    assert!(started.elapsed() < Duration::from_secs(20), "took {:?}", started.elapsed());
    let pid = std::fs::read_to_string(&pid_file).expect("the stage wrote its pid");
    assert!(!Path::new("/proc").join(pid.trim()).exists(), "the stage process {pid} still runs");
}

#[test]
fn subprocess_without_declared_output() {
    let project = Project::new();
    project.write("wf.yaml", &workflow(&script_plugin(""), "bad", "mode: no-output"));
    run_fails(&project, 1, &["FAILED: stage finished without writing its declared output `out`"]);
}

#[test]
fn subprocess_that_reports_error() {
    let project = Project::new();
    project.write("wf.yaml", &workflow(&script_plugin(""), "bad", "mode: error"));
    run_fails(&project, 1, &["FAILED: bad stage reports: the input is unusable"]);
}

#[test]
fn subprocess_of_other_protocol() {
    let project = Project::new();
    project.write("wf.yaml", &workflow(&script_plugin(", --protocol, \"99\""), "bad", ""));
    run_fails(&project, 2, &["the command speaks protocol version 99, but this flywheel speaks version 1"]);
}

#[test]
fn subprocess_program_not_found() {
    let project = Project::new();
    project.write("wf.yaml", &workflow("command: [no-such-program-for-flywheel]", "bad", ""));
    run_fails(&project, 2, &["cannot start `no-such-program-for-flywheel`", "No such file or directory"]);
}

#[test]
fn subprocess_declared_file_missing() {
    let project = Project::new();
    project.write("wf.yaml", &workflow("command: [python3, stage.py]\n    files: [stage.py]", "bad", ""));
    run_fails(&project, 2, &["wf.yaml:4:13: declared file", "stage.py not found"]);
}

#[test]
fn subprocess_stderr_goes_to_run_log_as_warning() {
    let project = Project::new();
    project.write("wf.yaml", &workflow(&script_plugin(""), "bad", "mode: ok"));
    project.run_ok("wf.yaml", &[]);
    let log = project.last_log();
    let find = |level: &str, message: &str| {
        log.iter().any(|e| e["event"] == "log" && e["node"] == "bad" && e["level"] == level && e["message"] == message)
    };
    assert!(find("warn", "bad stage: a note on stderr"), "{log:?}");
    assert!(find("info", "bad stage wrote its output"), "{log:?}");
}

#[test]
fn cancelled_run_kills_subprocess() {
    let project = Project::new();
    let pid_file = project.path("pid");
    project.write("wf.yaml", &workflow(&script_plugin(""), "bad", &format!("mode: hang, pid_file: \"{}\"", pid_file.display())));
    let child = project
        .command(&["run", "wf.yaml"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !pid_file.exists() || std::fs::read_to_string(&pid_file).unwrap().is_empty() {
        assert!(Instant::now() < deadline, "the stage never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    let status = std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(130), "{}", text(&output));
    assert!(!Path::new("/proc").join(pid.trim()).exists(), "the stage process {pid} still runs");
    assert_nothing_committed(&project);
}
