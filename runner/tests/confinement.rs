//! Confinement: artifacts cannot name or link to paths outside themselves, subprocess stages
//! run in a fresh working directory without the store's location, a workflow starts
//! no program that its YAML does not declare, and hostile YAML is rejected quickly.
//!
//! What is not confined: a subprocess stage runs as the same user without an OS sandbox, so
//! it can open any path that user can, including the store, if it finds the path itself.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{Project, Summary, text};
use serde_json::{Value, json};

/// A subprocess stage `probe` that writes what it observes to its output: its working
/// directory, whether that was empty, `FLYWHEEL_STORE`, and the path of its input. It uses
/// only shell builtins, so every program that a run starts through `PATH` is one the runner
/// started. Each invocation appends its command line to `invocations.log` beside the script.
const PROBE: &str = r#"#!/bin/sh
printf '%s\n' "$0 $*" >> "${0%/*}/invocations.log"
read -r request
case "$request" in
*'"describe":true'*)
  printf '%s\n' '{"protocol":1,"stages":[{"name":"probe","version":"1","inputs":[{"name":"input","kind":"text"}],"outputs":[{"name":"out","kind":"text"}]}]}'
  exit 0;;
esac
rest=${request#*\"outputs\":\{\"out\":\"}
out=${rest%%\"*}
rest=${request#*\"inputs\":\{\"input\":\{\"path\":\"}
input=${rest%%\"*}
set -- *
if [ "$1" = "*" ]; then empty=yes; else empty=no; fi
{
  printf 'cwd=%s\n' "$PWD"
  printf 'cwd_empty=%s\n' "$empty"
  printf 'store_env=%s\n' "${FLYWHEEL_STORE-unset}"
  printf 'input=%s\n' "$input"
} > "$out/text.txt"
printf '%s\n' '{"event":"result","outcome":{}}'
"#;

/// A fixture node whose params try shell injection, read by the `probe` plugin stage.
const PROBE_WORKFLOW: &str = r#"
vars:
  payload: "$(touch pwned-var)"
plugins:
  - command: [sh, probe.sh]
    files: [probe.sh]
nodes:
  a:
    stage: fixture
    params: {text: "$(touch pwned) `touch pwned` ; touch pwned | touch pwned ${payload}"}
  probe:
    stage: probe
    inputs: {input: a.out}
"#;

/// A subprocess stage `escape` that writes a symbolic link to a file outside its output.
const ESCAPE: &str = r#"#!/bin/sh
read -r request
case "$request" in
*'"describe":true'*)
  printf '%s\n' '{"protocol":1,"stages":[{"name":"escape","version":"1","outputs":[{"name":"out","kind":"text"}]}]}'
  exit 0;;
esac
rest=${request#*\"outputs\":\{\"out\":\"}
out=${rest%%\"*}
ln -s "$SECRET" "$out/text.txt"
printf '%s\n' '{"event":"result","outcome":{}}'
"#;

const CHAIN: &str = "nodes:\n  a:\n    stage: fixture\n    params: {text: hello}\n  b:\n    stage: fixture\n    inputs: {input: a.out}\n    params: {text: \" world\"}\n";

fn object_dir(store: &Path, id: &str) -> PathBuf {
    let hex = id.strip_prefix("b3:").unwrap();
    store.join("objects").join(&hex[..2]).join(&hex[2..])
}

fn plain(project: &Project, args: &[&str]) -> std::process::Output {
    project.command(args).env("NO_GRAPHICS", "1").output().expect("flywheel runs")
}

/// Reads the `key=value` lines that the probe stage wrote.
fn probe_report(project: &Project, summary: &Summary) -> Vec<(String, String)> {
    let path = object_dir(&project.store(), &summary.output("probe", "out")).join("data/text.txt");
    let report = fs::read_to_string(path).unwrap();
    report.lines().map(|l| l.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())).unwrap()).collect()
}

fn field<'a>(report: &'a [(String, String)], name: &str) -> &'a str {
    &report.iter().find(|(k, _)| k == name).unwrap_or_else(|| panic!("no {name} in {report:?}")).1
}

#[test]
fn subprocess_stage_gets_fresh_cwd_and_no_store() {
    let project = Project::new();
    project.write("probe.sh", PROBE);
    project.write("wf.yaml", PROBE_WORKFLOW);
    let summary = project.run_ok("wf.yaml", &["--device", "cpu"]);
    let report = probe_report(&project, &summary);

    let cwd = PathBuf::from(field(&report, "cwd"));
    let store = fs::canonicalize(project.store()).unwrap();
    assert!(cwd.starts_with(store.join("tmp")), "the stage ran in {}, not in a directory of its own", cwd.display());
    assert_eq!(field(&report, "cwd_empty"), "yes", "the working directory was not fresh");
    assert!(!cwd.exists(), "the working directory {} was not removed", cwd.display());
    assert_eq!(field(&report, "store_env"), "unset", "the stage was told the store's location");

    let input = PathBuf::from(field(&report, "input"));
    assert_eq!(input, object_dir(&store, &summary.output("a", "out")).join("data"), "the input is not the artifact's directory");
    let mode = fs::metadata(input.join("text.txt")).unwrap().permissions().mode();
    assert_eq!(mode & 0o222, 0, "the input file is writable (mode {mode:o})");
}

/// Writes, for every program in `PATH`, a script of the same name that logs its arguments to
/// `log` and then runs the program. Returns the directory of the scripts.
fn logging_shims(dir: &Path, log: &Path) -> PathBuf {
    let shims = dir.join("shims");
    fs::create_dir_all(&shims).unwrap();
    for bin in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
        let Ok(entries) = fs::read_dir(&bin) else { continue };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            let shim = shims.join(&name);
            let executable = fs::metadata(entry.path()).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
            if !executable || shim.exists() || name.contains(['\'', '"', '\\', '$', '`']) {
                continue;
            }
            let real = entry.path();
            fs::write(&shim, format!("#!/bin/sh\nprintf '%s\\n' \"{name} $*\" >> '{}'\nexec '{}' \"$@\"\n", log.display(), real.display())).unwrap();
            fs::set_permissions(&shim, fs::Permissions::from_mode(0o755)).unwrap();
        }
    }
    shims
}

// NOTE: the shims see only programs found through `PATH`. A program started by its absolute
// path would not be logged, so this test shows that params and vars never reach a shell or a
// program lookup, not that no other process starts.
#[test]
fn run_starts_only_declared_commands() {
    let project = Project::new();
    let script = project.write("probe.sh", PROBE);
    project.write("wf.yaml", PROBE_WORKFLOW);
    let log = project.path("started.log");
    let shims = logging_shims(project.dir.path(), &log);
    assert!(shims.join("sh").exists(), "no `sh` in PATH to wrap");

    let output = project.command(&["run", "wf.yaml", "--device", "cpu"]).env("PATH", &shims).output().unwrap();
    assert!(output.status.success(), "{}", text(&output));

    let started = fs::read_to_string(&log).unwrap_or_default();
    let declared = format!("sh {}", fs::canonicalize(&script).unwrap().display());
    let lines: Vec<&str> = started.lines().collect();
    assert_eq!(lines, [declared.as_str(), declared.as_str()], "expected the describe handshake and one stage run, and nothing else");
    let invocations = fs::read_to_string(project.path("invocations.log")).unwrap();
    assert_eq!(invocations.lines().count(), 2, "{invocations}");

    let pwned: Vec<_> = common::files_below(project.dir.path()).into_iter().filter(|p| p.to_string_lossy().contains("pwned")).collect();
    assert!(pwned.is_empty(), "a param or var was run as a shell command: {pwned:?}");
}

#[test]
fn symlink_in_stage_output_is_rejected() {
    let project = Project::new();
    let secret = project.write("secret.txt", "secret");
    project.write("escape.sh", ESCAPE);
    project.write("wf.yaml", "plugins:\n  - command: [sh, escape.sh]\nnodes:\n  out:\n    stage: escape\n");

    let output = project.command(&["run", "wf.yaml"]).env("NO_GRAPHICS", "1").env("SECRET", &secret).output().unwrap();
    let all = text(&output);
    assert_eq!(output.status.code(), Some(1), "{all}");
    assert!(all.contains("text.txt: symbolic links are not allowed in artifacts; write a regular file instead"), "{all}");
    assert!(common::files_below(&project.store().join("objects")).is_empty(), "an object was committed");
    assert!(common::files_below(&project.store().join("actions")).is_empty(), "a record was committed");
    assert!(common::files_below(&project.store().join("tmp")).is_empty(), "staging was left behind");
    assert_eq!(fs::read_to_string(&secret).unwrap(), "secret");
    assert!(plain(&project, &["verify"]).status.success());
}

#[test]
fn symlink_in_external_input_is_rejected() {
    let project = Project::new();
    let secret = project.write("secret.txt", "secret");
    fs::create_dir_all(project.path("input")).unwrap();
    std::os::unix::fs::symlink(&secret, project.path("input/text.txt")).unwrap();
    project.write("wf.yaml", "nodes:\n  a:\n    stage: fixture\n    inputs: {input: {path: input}}\n");

    let output = plain(&project, &["run", "wf.yaml"]);
    let all = text(&output);
    assert_ne!(output.status.code(), Some(0), "{all}");
    assert!(all.contains("symbolic links are not allowed in artifacts"), "{all}");
    assert!(common::files_below(&project.store().join("objects")).is_empty(), "the link was imported");
}

/// Serializes `value` with object keys sorted, as flywheel's canonical JSON does.
fn canonical(value: &Value) -> Vec<u8> {
    fn sorted(value: &Value) -> Value {
        match value {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                Value::Object(keys.into_iter().map(|k| (k.clone(), sorted(&map[k]))).collect())
            }
            Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    serde_json::to_vec(&sorted(value)).unwrap()
}

/// Stores an object whose manifest names `path` (outside the artifact) under the id that
/// manifest hashes to, so only the confinement check can reject it, and points the record of
/// `key` at it, with a valid checksum. Returns the object's id.
fn plant_escaping_object(store: &Path, key: &str, path: &str) -> String {
    let manifest = json!({
        "schema": 1,
        "kind": "text",
        "files": [{"path": path, "size": 6, "blake3": format!("b3:{}", blake3::hash(b"secret").to_hex())}],
        "metadata": null,
    });
    let bytes = canonical(&manifest);
    let id = format!("b3:{}", blake3::hash(&bytes).to_hex());
    let dir = object_dir(store, &id);
    fs::create_dir_all(dir.join("data")).unwrap();
    fs::write(dir.join("manifest.json"), bytes).unwrap();

    let hex = key.strip_prefix("b3:").unwrap();
    let record_path = store.join("actions").join(&hex[..2]).join(format!("{}.json", &hex[2..]));
    let mut record: Value = serde_json::from_slice(&fs::read(&record_path).unwrap()).unwrap();
    let object = record.as_object_mut().unwrap();
    object.remove("checksum");
    object["outputs"]["out"] = json!(id);
    let checksum = format!("b3:{}", blake3::hash(&canonical(&record)).to_hex());
    record.as_object_mut().unwrap().insert("checksum".into(), json!(checksum));
    fs::write(&record_path, serde_json::to_vec_pretty(&record).unwrap()).unwrap();
    id
}

#[test]
fn manifest_naming_outside_path_is_never_followed() {
    let project = Project::new();
    let secret = project.write("secret.txt", "secret");
    project.write("wf.yaml", CHAIN);
    let first = project.run_ok("wf.yaml", &[]);
    let key = first.0["nodes"][0][1]["key"].as_str().unwrap().to_string();
    let store = project.store();
    // From `objects/ab/cdef…/data/`, five levels up is the project directory.
    let escapes = ["../../../../../secret.txt".to_string(), secret.display().to_string()];

    for path in &escapes {
        let planted = plant_escaping_object(&store, &key, path);
        let rerun = project.run_ok("wf.yaml", &[]);
        assert_eq!(rerun.ran(), ["a"], "{path}: run trusted a manifest that names a path outside the artifact");
        assert_eq!(rerun.output("a", "out"), first.output("a", "out"), "{path}");
        assert_eq!(rerun.outcome("b"), "cached", "{path}");
        assert!(!object_dir(&store, &planted).exists(), "{path}: the escaping object was not quarantined");

        let planted = plant_escaping_object(&store, &key, path);
        let verify = plain(&project, &["verify"]);
        let verify_text = text(&verify);
        assert_eq!(verify.status.code(), Some(1), "{path}: {verify_text}");
        assert!(
            verify_text.contains(&format!("corrupt object {planted}: a manifest naming a path outside the artifact: {path:?}")),
            "{path}: {verify_text}"
        );
        project.run_ok("wf.yaml", &[]);
    }
    assert_eq!(fs::read_to_string(&secret).unwrap(), "secret");
    assert!(plain(&project, &["verify"]).status.success());
}

#[test]
fn billion_laughs_is_rejected_quickly() {
    let project = Project::new();
    let mut yaml = String::from("vars:\n  lol0: &l0 \"lol\"\n");
    for level in 1..10 {
        let refs = vec![format!("*l{}", level - 1); 10].join(", ");
        yaml.push_str(&format!("  lol{level}: &l{level} [{refs}]\n"));
    }
    yaml.push_str("nodes:\n  a:\n    stage: fixture\n");
    project.write("wf.yaml", &yaml);

    let started = Instant::now();
    let output = plain(&project, &["run", "wf.yaml"]);
    let elapsed = started.elapsed();
    let all = text(&output);
    assert_eq!(output.status.code(), Some(2), "{all}");
    assert!(all.contains("budget breached"), "{all}");
    assert!(all.contains("a workflow may have at most 100000 YAML nodes"), "no explanation given:\n{all}");
    assert!(elapsed < Duration::from_secs(10), "rejecting the document took {elapsed:?}");
}

#[test]
fn oversized_workflow_is_rejected_quickly() {
    let project = Project::new();
    let path = project.path("wf.yaml");
    // A sparse 1 GiB file: a loader that reads it whole before checking its size would
    // allocate 1 GiB.
    let file = fs::File::create(&path).unwrap();
    file.set_len(1 << 30).unwrap();

    let started = Instant::now();
    let output = plain(&project, &["run", "wf.yaml"]);
    let elapsed = started.elapsed();
    let all = text(&output);
    assert_eq!(output.status.code(), Some(2), "{all}");
    assert!(all.contains("workflow file is larger than the limit of 16777216 bytes"), "{all}");
    assert!(all.contains("move large values into files"), "no fix given:\n{all}");
    assert!(elapsed < Duration::from_secs(10), "rejecting the file took {elapsed:?}");
}
