//! Helpers for the runner's integration tests: a temporary project with a workflow file and a
//! store, and the real `flywheel` binary with the test fixture stages enabled.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

pub struct Project {
    pub dir: tempfile::TempDir,
}

impl Project {
    pub fn new() -> Project {
        Project { dir: tempfile::tempdir().expect("temporary directory") }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }

    pub fn store(&self) -> PathBuf {
        self.path("store")
    }

    /// Returns a `flywheel` command with fixture stages enabled and the store set.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_flywheel"));
        command
            .args(args)
            .current_dir(self.dir.path())
            .env("FLYWHEEL_TEST_STAGES", "1")
            .env("FLYWHEEL_STORE", self.store())
            .env("RUST_LOG", "info")
            .env_remove("FLYWHEEL_FAULT");
        command
    }

    pub fn flywheel(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("flywheel runs")
    }

    pub fn spawn(&self, args: &[&str]) -> Child {
        self.command(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("flywheel starts")
    }

    /// Runs a workflow and returns the parsed run summary; panics when the run fails.
    pub fn run_ok(&self, workflow: &str, extra: &[&str]) -> Summary {
        let mut args = vec!["run", workflow];
        args.extend_from_slice(extra);
        let output = self.flywheel(&args);
        assert!(output.status.success(), "run failed:\n{}", text(&output));
        self.last_summary()
    }

    /// Reads `summary.json` of the newest run.
    pub fn last_summary(&self) -> Summary {
        let runs = self.store().join("runs");
        let mut ids: Vec<String> = std::fs::read_dir(&runs).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().to_string()).collect();
        ids.sort_by_key(|id| {
            let mut parts = id.split('-').map(|p| p.parse::<u64>().unwrap_or(0));
            (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
        });
        let path = runs.join(ids.last().expect("a run exists")).join("summary.json");
        let json: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        Summary(json)
    }

    pub fn marker_lines(&self, marker: &str) -> Vec<String> {
        std::fs::read_to_string(self.path(marker)).unwrap_or_default().lines().map(str::to_string).collect()
    }

    /// Counts how many times `node` started according to a fixture marker file.
    pub fn starts(&self, marker: &str, node: &str) -> usize {
        self.marker_lines(marker).iter().filter(|l| l.starts_with(&format!("start {node} "))).count()
    }
}

/// A run's `summary.json`.
pub struct Summary(pub serde_json::Value);

impl Summary {
    pub fn outcome(&self, node: &str) -> String {
        for entry in self.0["nodes"].as_array().unwrap() {
            if entry[0] == node {
                return entry[1]["outcome"].as_str().unwrap().to_string();
            }
        }
        panic!("node {node} not in summary {}", self.0);
    }

    /// Names of the nodes whose stage ran in this run, in plan order.
    pub fn ran(&self) -> Vec<String> {
        self.0["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e[1]["outcome"] == "ran")
            .map(|e| e[0].as_str().unwrap().to_string())
            .collect()
    }

    pub fn output(&self, node: &str, port: &str) -> String {
        for entry in self.0["nodes"].as_array().unwrap() {
            if entry[0] == node {
                return entry[1]["outputs"][port].as_str().unwrap().to_string();
            }
        }
        panic!("node {node} not in summary");
    }
}

pub fn text(output: &Output) -> String {
    format!("status: {}\nstdout:\n{}\nstderr:\n{}", output.status, String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

/// Waits until `cond` holds, up to `seconds`.
pub fn wait_for(seconds: u64, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    while std::time::Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    false
}

pub fn sigkill(child: &mut Child) {
    let pid = child.id() as i32;
    let status = Command::new("kill").args(["-KILL", &pid.to_string()]).status().expect("kill runs");
    assert!(status.success());
    let _ = child.wait();
}

pub fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                out.extend(files_below(&path));
            } else {
                out.push(path);
            }
        }
    }
    out
}
