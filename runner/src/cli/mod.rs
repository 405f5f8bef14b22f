//! The `flywheel` subcommands: [`Cli`] (clap) and [`dispatch`].

mod dag;
mod devices;
mod gc;
mod run;
mod show;
mod stages;
mod status;
mod verify;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use miette::{IntoDiagnostic, Result};

use crate::registry::Registry;
use crate::store::Store;
use crate::workflow::{self, Override, Plan, WorkflowErrors};

#[derive(Parser)]
#[command(name = "flywheel", version, about = "Declarative, cached training workflows for search-relevance BERT models")]
pub struct Cli {
    /// Print debug logs (RUST_LOG overrides this).
    #[arg(short, long, global = true)]
    pub verbose: bool,
    #[command(subcommand)]
    pub command: Command,
}

/// Options shared by the commands that read a workflow.
#[derive(clap::Args, Clone)]
pub struct WorkflowArgs {
    /// The workflow YAML file.
    pub workflow: PathBuf,
    /// Override a param (`NODE.PARAM=VALUE`), a workflow default (`defaults.PARAM=VALUE`) or a
    /// var (`vars.NAME=VALUE`); repeatable.
    #[arg(long = "set", value_name = "NODE.PARAM=VALUE")]
    pub set: Vec<Override>,
    /// Store directory [default: `.flywheel` beside the workflow; env FLYWHEEL_STORE].
    #[arg(long, env = "FLYWHEEL_STORE")]
    pub store: Option<PathBuf>,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run a workflow, skipping every node whose key has a valid record.
    Run(run::RunArgs),
    /// Show, per node, whether it is cached, will run (and why) or waits on an upstream node.
    Status(status::StatusArgs),
    /// Print the workflow graph as text, Graphviz dot or Mermaid.
    Dag(dag::DagArgs),
    /// Show a node's or an artifact's lineage, metrics and timings.
    Show(show::ShowArgs),
    /// Delete what the latest records of the kept workflows do not reach.
    Gc(gc::GcArgs),
    /// Re-hash every stored object and move corrupt ones to quarantine.
    Verify(verify::VerifyArgs),
    /// List the available stages with their ports and params.
    Stages(stages::StagesArgs),
    /// List the GPU adapters and show which backend `--device auto` picks.
    Devices(devices::DevicesArgs),
}

pub fn dispatch(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Run(args) => run::run(args),
        Command::Status(args) => status::status(args),
        Command::Dag(args) => dag::dag(args),
        Command::Show(args) => show::show(args),
        Command::Gc(args) => gc::gc(args),
        Command::Verify(args) => verify::verify(args),
        Command::Stages(args) => stages::stages(args),
        Command::Devices(args) => devices::devices(args),
    }
}

pub fn init_tracing(verbose: bool) {
    use tracing_subscriber::EnvFilter;
    let default = if verbose { "debug" } else { "info" };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// Loads a workflow; on invalid input prints every problem with its snippet and returns `None`.
pub fn load_plan(args: &WorkflowArgs) -> Option<Plan> {
    match workflow::load(&args.workflow, &Registry::builtin(), &args.set) {
        Ok(plan) => Some(plan),
        Err(errors) => {
            print_workflow_errors(&errors);
            None
        }
    }
}

pub fn print_workflow_errors(errors: &WorkflowErrors) {
    /// Beyond this many, problems are counted, not printed: one mistake repeated over a
    /// generated workflow would otherwise bury the first message.
    const MAX_SHOWN: usize = 20;
    for error in errors.0.iter().take(MAX_SHOWN) {
        eprint!("{}", error.render());
    }
    if errors.0.len() > MAX_SHOWN {
        eprintln!("… and {} more problems not shown", errors.0.len() - MAX_SHOWN);
    }
    let file = errors.0.first().map(|e| e.file.display().to_string()).unwrap_or_default();
    eprintln!("error: {} problem(s) in {file}", errors.0.len());
}

/// Returns the store directory for a workflow: `--store`, else `.flywheel` beside the file.
pub fn store_dir(workflow: &Path, store: Option<&Path>) -> PathBuf {
    match store {
        Some(dir) => dir.to_path_buf(),
        None => workflow.parent().map(|p| if p.as_os_str().is_empty() { Path::new(".") } else { p }).unwrap_or(Path::new(".")).join(".flywheel"),
    }
}

pub fn open_store(dir: &Path) -> Result<Store> {
    Store::open(dir).into_diagnostic()
}

/// Store location for the commands that need only a store.
#[derive(clap::Args, Clone)]
pub struct StoreArgs {
    /// Store directory [default: `.flywheel` beside --workflow, else in the current directory; env FLYWHEEL_STORE].
    #[arg(long, env = "FLYWHEEL_STORE")]
    pub store: Option<PathBuf>,
    /// A workflow file whose default store to use.
    #[arg(long)]
    pub workflow: Option<PathBuf>,
}

impl StoreArgs {
    pub fn dir(&self) -> PathBuf {
        match (&self.store, &self.workflow) {
            (Some(store), _) => store.clone(),
            (None, Some(workflow)) => store_dir(workflow, None),
            (None, None) => PathBuf::from(".flywheel"),
        }
    }

    /// Opens an existing store; unlike `run`, these commands never create one.
    pub fn open(&self) -> Result<Store> {
        let dir = self.dir();
        if !dir.join("STORE").exists() {
            miette::bail!("no flywheel store at {}; pass --store DIR or --workflow FILE", dir.display());
        }
        open_store(&dir)
    }
}
