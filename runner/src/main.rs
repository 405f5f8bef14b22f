//! The `flywheel` command line.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Rust ignores SIGPIPE, so `flywheel show NODE | head` would panic on a closed pipe; a
    // command-line tool should end quietly instead, as other Unix tools do.
    #[cfg(unix)]
    // SAFETY: called first in main, before any thread starts; SIG_DFL is a valid handler.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    #[cfg(target_os = "linux")]
    quiet_vulkan_loader();
    let cli = flywheel::cli::Cli::parse();
    flywheel::cli::init_tracing(cli.verbose);
    match flywheel::cli::dispatch(cli) {
        Ok(code) => code,
        Err(report) => {
            eprintln!("{report:?}");
            ExitCode::from(2)
        }
    }
}

/// Mesa's Vulkan loader prints "XDG_RUNTIME_DIR is invalid or not set" on every adapter probe
/// when the variable is missing (root shells, containers, CI). Compute needs no display, so a
/// private directory under the temporary folder quiets it; a set variable is left alone.
#[cfg(target_os = "linux")]
fn quiet_vulkan_loader() {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    if std::env::var_os("XDG_RUNTIME_DIR").is_some() {
        return;
    }
    // SAFETY: getuid has no preconditions.
    let uid = unsafe { libc::getuid() };
    let dir = std::env::temp_dir().join(format!("flywheel-runtime-{uid}"));
    let _ = std::fs::DirBuilder::new().mode(0o700).create(&dir);
    let private = std::fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir() && m.uid() == uid && m.mode() & 0o077 == 0);
    if private {
        // SAFETY: called in main before any thread starts, so nothing reads the environment
        // at the same time.
        unsafe { std::env::set_var("XDG_RUNTIME_DIR", &dir) };
    }
}
