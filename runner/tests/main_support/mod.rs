//! Shared by the tests of the shipped workflows: the workspace root and the BM25 plugin
//! library that `workflows/relevance.yaml` loads.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("runner/ has a parent").to_path_buf()
}

/// Builds the BM25 plugin with the running test's profile into its target directory, once
/// per test binary, and returns the directory that contains `libflywheel_bm25_stage.so`.
pub fn plugin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let exe = std::env::current_exe().expect("the test binary knows its path");
        let profile_dir = exe.parent().and_then(Path::parent).expect("test binary lives in <target>/<profile>/deps");
        let target_dir = profile_dir.parent().expect("profile directory has a parent");
        let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") => "dev".to_string(),
            Some(other) => other.to_string(),
            None => panic!("cannot read the profile from {}", profile_dir.display()),
        };
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let output = Command::new(cargo)
            .current_dir(workspace_root())
            .args(["build", "--profile", &profile, "--target-dir"])
            .arg(target_dir)
            .args(["-p", "flywheel-bm25-stage", "--lib"])
            .output()
            .expect("cargo starts");
        assert!(
            output.status.success(),
            "building the BM25 plugin failed:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        profile_dir.to_path_buf()
    })
}

