//! Helpers shared by the end-to-end tests: [`built`] builds the `flywheel` binary and the
//! plugin libraries once per test binary, [`Project`] is a temporary directory with a
//! workflow and a store, and [`Summary`] reads a run's result.
//!
//! The build uses the target directory and profile of the running test binary, found from its
//! own path (`<target>/<profile>/deps/<test>`), so it works under any `CARGO_TARGET_DIR`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::Value;

/// Returns the workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the tests crate is inside the workspace").to_path_buf()
}

/// Paths of what [`built`] built.
pub struct Built {
    /// `<target>/<profile>`.
    pub profile_dir: PathBuf,
    pub flywheel: PathBuf,
}

impl Built {
    /// Returns the dynamic library of a workspace package, `lib<name>.so`.
    pub fn library(&self, name: &str) -> PathBuf {
        self.profile_dir.join(format!("lib{name}.so"))
    }

    /// Returns the dynamic library of a `cdylib` example target.
    pub fn example_library(&self, name: &str) -> PathBuf {
        self.profile_dir.join("examples").join(format!("lib{name}.so"))
    }
}

/// Builds the BM25 example plugin and the test plugins with the running test's profile, once
/// per test binary, and the `flywheel` binary too when it is missing or older than its sources.
/// Panics with cargo's output when the build fails.
///
/// `cargo test --workspace` has built a fresh `flywheel` already (the runner's own integration
/// tests need it); building it again here would use other features of the kernels crate (its
/// dev-dependency enables `conformance`) and recompile half the workspace.
// NOTE: a test run with `--target TRIPLE` puts binaries under `<target>/<TRIPLE>/`; this
// helper does not handle that layout.
pub fn built() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        let exe = std::env::current_exe().expect("the test binary knows its path");
        let profile_dir = exe.parent().and_then(Path::parent).expect("test binary lives in <target>/<profile>/deps").to_path_buf();
        let target_dir = profile_dir.parent().expect("profile directory has a parent");
        let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") => "dev".to_string(),
            Some(other) => other.to_string(),
            None => panic!("cannot read the profile from {}", profile_dir.display()),
        };
        let flywheel = profile_dir.join("flywheel");
        let mut packages = vec!["-p", "flywheel-bm25-stage", "-p", "flywheel-test-plugins"];
        if binary_is_stale(&flywheel) {
            packages.extend(["-p", "flywheel"]);
        }
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let output = Command::new(cargo)
            .current_dir(workspace_root())
            .args(["build", "--profile", &profile, "--target-dir"])
            .arg(target_dir)
            .args(&packages)
            .args(["--bins", "--lib", "--examples"])
            .output()
            .expect("cargo starts");
        assert!(output.status.success(), "building the binary and the plugins failed:\n{}", text(&output));
        Built { profile_dir, flywheel }
    })
}

/// Returns true when `binary` is missing or older than a source file of the crates it is built
/// from.
fn binary_is_stale(binary: &Path) -> bool {
    let Ok(built_at) = std::fs::metadata(binary).and_then(|m| m.modified()) else { return true };
    let root = workspace_root();
    ["runner", "stages", "kernels", "Cargo.toml", "Cargo.lock"]
        .iter()
        .flat_map(|part| {
            let path = root.join(part);
            if path.is_dir() { files_below(&path) } else { vec![path] }
        })
        .filter(|p| p.extension().is_some_and(|e| e == "rs" || e == "toml" || e == "wgsl" || e == "lock"))
        .any(|p| std::fs::metadata(&p).and_then(|m| m.modified()).is_ok_and(|t| t > built_at))
}

/// A temporary directory holding workflow files and a store, `store/`.
pub struct Project {
    pub dir: tempfile::TempDir,
}

impl Default for Project {
    fn default() -> Self {
        Project::new()
    }
}

impl Project {
    pub fn new() -> Project {
        Project { dir: tempfile::tempdir().expect("temporary directory") }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes a file below the project directory, creating its parents.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::create_dir_all(path.parent().expect("a file has a parent")).expect("create parent directory");
        std::fs::write(&path, text).expect("write project file");
        path
    }

    pub fn store(&self) -> PathBuf {
        self.path("store")
    }

    /// Runs `flywheel` in the project directory with the project's store.
    pub fn flywheel(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("flywheel starts")
    }

    /// Returns a `flywheel` command in the project directory with the project's store.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&built().flywheel);
        command
            .args(args)
            .current_dir(self.dir.path())
            .env("FLYWHEEL_STORE", self.store())
            .env("RUST_LOG", "info")
            .env_remove("FLYWHEEL_TEST_STAGES")
            .env_remove("FLYWHEEL_FAULT");
        command
    }

    /// Runs a workflow and returns its summary; panics when the run fails.
    pub fn run_ok(&self, workflow: &str, extra: &[&str]) -> Summary {
        let mut args = vec!["run", workflow];
        args.extend_from_slice(extra);
        let output = self.flywheel(&args);
        assert!(output.status.success(), "run failed:\n{}", text(&output));
        self.last_summary()
    }

    /// Returns the directory of the newest run, `store/runs/<run-id>`.
    pub fn last_run_dir(&self) -> PathBuf {
        let runs = self.store().join("runs");
        let mut ids: Vec<String> = std::fs::read_dir(&runs)
            .expect("the store has runs")
            .map(|entry| entry.expect("run entry").file_name().to_string_lossy().to_string())
            .collect();
        // Run ids are `<seconds>-<microseconds>-<pid>`.
        ids.sort_by_key(|id| id.split('-').take(2).map(|part| part.parse::<u64>().unwrap_or(0)).collect::<Vec<_>>());
        runs.join(ids.last().expect("at least one run"))
    }

    pub fn last_summary(&self) -> Summary {
        Summary(read_json(&self.last_run_dir().join("summary.json")))
    }

    /// Returns the events of the newest run's `log.jsonl`.
    pub fn last_log(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(self.last_run_dir().join("log.jsonl")).expect("run log");
        text.lines().map(|line| serde_json::from_str(line).expect("run log lines are JSON")).collect()
    }

    /// Reads a file of a committed artifact.
    pub fn artifact_file(&self, id: &str, file: &str) -> String {
        let hex = id.strip_prefix("b3:").expect("artifact ids start with b3:");
        let path = self.store().join("objects").join(&hex[..2]).join(&hex[2..]).join("data").join(file);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// Returns the action records in the store.
    pub fn records(&self) -> Vec<Value> {
        files_below(&self.store().join("actions")).iter().map(|path| read_json(path)).collect()
    }

    /// Returns the number of committed objects (artifacts) in the store.
    pub fn object_count(&self) -> usize {
        let Ok(fans) = std::fs::read_dir(self.store().join("objects")) else { return 0 };
        fans.flatten().map(|fan| std::fs::read_dir(fan.path()).map(|d| d.count()).unwrap_or(0)).sum()
    }

    /// Returns whether the store has a ref for `node` of `workflow`.
    pub fn has_ref(&self, workflow: &str, node: &str) -> bool {
        self.store().join("refs").join(workflow).join(format!("{node}.json")).exists()
    }
}

/// A run's `summary.json`.
pub struct Summary(pub Value);

impl Summary {
    fn node(&self, node: &str) -> &Value {
        let nodes = self.0["nodes"].as_array().expect("summary lists nodes");
        let entry = nodes.iter().find(|entry| entry[0] == node);
        &entry.unwrap_or_else(|| panic!("node `{node}` not in the summary {}", self.0))[1]
    }

    pub fn outcome(&self, node: &str) -> String {
        self.node(node)["outcome"].as_str().expect("outcome is a string").to_string()
    }

    /// Names of the nodes whose stage ran, in plan order.
    pub fn ran(&self) -> Vec<String> {
        let nodes = self.0["nodes"].as_array().expect("summary lists nodes");
        nodes.iter().filter(|entry| entry[1]["outcome"] == "ran").map(|entry| entry[0].as_str().unwrap().to_string()).collect()
    }

    /// Returns the artifact id of a node's output.
    pub fn output(&self, node: &str, port: &str) -> String {
        let id = &self.node(node)["outputs"][port];
        id.as_str().unwrap_or_else(|| panic!("node `{node}` has no output `{port}` in {}", self.0)).to_string()
    }
}

/// Formats a process's status, stdout and stderr for assertion messages.
pub fn text(output: &Output) -> String {
    format!(
        "status: {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn read_json(path: &Path) -> Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(files_below(&path));
        } else {
            files.push(path);
        }
    }
    files
}
