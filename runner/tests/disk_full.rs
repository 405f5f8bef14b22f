//! Running out of space. A run whose store cannot take its data fails with an error that
//! names the path. The store stays consistent: `verify` is clean, no staging is left, and a
//! later run with enough space finishes.
//!
//! Two variants. `store_on_full_tmpfs` mounts a 1 MiB tmpfs for the store, which needs root
//! (or CAP_SYS_ADMIN); where mounting is not allowed it prints a note and passes. The
//! `file_size_limit` tests need no privilege: they run flywheel with RLIMIT_FSIZE (`ulimit
//! -f`), so that writing past the limit fails with EFBIG, as a full disk fails with ENOSPC.

mod common;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{Project, text};

/// One node that reads an external input, which the run first copies into the store.
const IMPORT: &str = "nodes:\n  a:\n    stage: fixture\n    inputs: {input: {path: text.txt}}\n    params: {text: \"!\"}\n";

/// The same node followed by one that doubles its input, so the stage itself writes a large
/// output into the store.
const IMPORT_AND_DOUBLE: &str = "nodes:\n  a:\n    stage: fixture\n    inputs: {input: {path: text.txt}}\n    params: {text: \"!\"}\n  b:\n    stage: fixture\n    inputs: {input: a.out, extra: a.out}\n";

fn plain(command: &mut Command) -> Output {
    command.env("NO_GRAPHICS", "1").output().expect("flywheel runs")
}

fn assert_consistent(project: &Project, store: &Path, variant: &str) {
    let verify = plain(project.command(&["verify"]).env("FLYWHEEL_STORE", store));
    assert!(verify.status.success(), "{variant}: verify found problems after the failed run:\n{}", text(&verify));
    let staging = common::files_below(&store.join("tmp"));
    assert!(staging.is_empty(), "{variant}: staging left behind: {staging:?}");
    let records = common::files_below(&store.join("actions"));
    assert!(records.is_empty(), "{variant}: a record was written: {records:?}");
}

/// A tmpfs mounted for one test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs of `size` (`mount -o size=`) at `dir`; `None` when this process may not.
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .stderr(std::process::Stdio::null())
            .status();
        status.is_ok_and(|s| s.success()).then(|| Tmpfs(dir.to_path_buf()))
    }

    fn resize(&self, size: &str) {
        let status = Command::new("mount").args(["-o", &format!("remount,size={size}")]).arg(&self.0).status().unwrap();
        assert!(status.success(), "remount of {} failed", self.0.display());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn store_on_full_tmpfs() {
    let project = Project::new();
    let Some(tmpfs) = Tmpfs::mount(&project.path("small"), "1m") else {
        eprintln!("NOTE: cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN); the file_size_limit tests cover this");
        return;
    };
    eprintln!("variant: store on a 1 MiB tmpfs");
    let store = tmpfs.0.join("store");

    // The 2 MiB input cannot be copied into the store.
    project.write("text.txt", &"x".repeat(2 << 20));
    project.write("wf.yaml", IMPORT);
    let output = plain(project.command(&["run", "wf.yaml"]).env("FLYWHEEL_STORE", &store));
    let all = text(&output);
    assert_eq!(output.status.code(), Some(1), "{all}");
    assert!(all.contains(&format!("no space left on device while writing {}", store.join("tmp").display())), "{all}");
    assert!(all.contains("free space or point --store elsewhere"), "no fix given:\n{all}");
    assert_consistent(&project, &store, "tmpfs, import");

    // A 400 KiB input fits, but the stage that doubles it runs out of space.
    project.write("text.txt", &"x".repeat(400 << 10));
    project.write("wf.yaml", IMPORT_AND_DOUBLE);
    let output = plain(project.command(&["run", "wf.yaml"]).env("FLYWHEEL_STORE", &store));
    let all = text(&output);
    assert_eq!(output.status.code(), Some(1), "{all}");
    assert!(all.contains(&format!("b                        FAILED: {}", store.join("tmp").display())), "the error does not name the file:\n{all}");
    assert!(all.contains("No space left on device"), "{all}");
    assert!(all.contains("the disk is full: free space or point --store elsewhere"), "no fix given:\n{all}");
    let verify = plain(project.command(&["verify"]).env("FLYWHEEL_STORE", &store));
    assert!(verify.status.success(), "verify found problems after the failed stage:\n{}", text(&verify));
    assert!(common::files_below(&store.join("tmp")).is_empty(), "staging left behind");

    tmpfs.resize("16m");
    let output = plain(project.command(&["run", "wf.yaml"]).env("FLYWHEEL_STORE", &store));
    assert!(output.status.success(), "the run with space failed:\n{}", text(&output));
    let verify = plain(project.command(&["verify"]).env("FLYWHEEL_STORE", &store));
    assert!(verify.status.success(), "{}", text(&verify));
}

/// Returns a flywheel command whose files may grow to at most `limit` bytes (RLIMIT_FSIZE).
/// SIGXFSZ is ignored, so an oversized write fails with EFBIG instead of killing the process.
fn with_file_size_limit(project: &Project, args: &[&str], limit: u64) -> Command {
    let mut command = project.command(args);
    // SAFETY: setrlimit and signal are async-signal-safe, and the closure touches no memory
    // shared with the parent.
    unsafe {
        command.pre_exec(move || {
            let rlimit = libc::rlimit { rlim_cur: limit, rlim_max: limit };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &rlimit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            Ok(())
        });
    }
    command
}

#[test]
fn file_size_limit_fails_import_cleanly() {
    eprintln!("variant: RLIMIT_FSIZE of 512 KiB");
    let project = Project::new();
    project.write("text.txt", &"x".repeat(1 << 20));
    project.write("wf.yaml", IMPORT);

    let output = plain(&mut with_file_size_limit(&project, &["run", "wf.yaml"], 512 << 10));
    let all = text(&output);
    assert_eq!(output.status.code(), Some(1), "{all}");
    assert!(all.contains(&format!("file too large while writing {}", project.store().join("tmp").display())), "{all}");
    assert!(all.contains("raise the limit or point --store elsewhere"), "no fix given:\n{all}");
    assert_consistent(&project, &project.store(), "RLIMIT_FSIZE, import");

    let summary = project.run_ok("wf.yaml", &[]);
    assert_eq!(summary.ran(), ["a"]);
    let verify = project.flywheel(&["verify"]);
    assert!(verify.status.success(), "{}", text(&verify));
}

#[test]
fn file_size_limit_fails_stage_output_cleanly() {
    let project = Project::new();
    project.write("text.txt", &"x".repeat(300 << 10));
    project.write("wf.yaml", IMPORT_AND_DOUBLE);

    // The input and `a`'s output fit under 512 KiB; `b` writes 600 KiB.
    let output = plain(&mut with_file_size_limit(&project, &["run", "wf.yaml"], 512 << 10));
    let all = text(&output);
    assert_eq!(output.status.code(), Some(1), "{all}");
    assert!(all.contains(&format!("b                        FAILED: {}", project.store().join("tmp").display())), "the error does not name the file:\n{all}");
    assert!(all.contains("File too large"), "{all}");
    assert!(all.contains("raise it or point --store elsewhere"), "no fix given:\n{all}");
    let verify = project.flywheel(&["verify"]);
    assert!(verify.status.success(), "verify found problems after the failed stage:\n{}", text(&verify));
    assert!(common::files_below(&project.store().join("tmp")).is_empty(), "staging left behind");

    let summary = project.run_ok("wf.yaml", &[]);
    assert_eq!(summary.outcome("a"), "cached");
    assert_eq!(summary.ran(), ["b"]);
}
