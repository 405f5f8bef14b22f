//! The `flywheel` command line.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
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
