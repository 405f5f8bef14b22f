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
