//! `flywheel run`.

use std::process::ExitCode;

use flywheel_stage_api::CancelFlag;
use miette::{IntoDiagnostic, Result};

use super::{WorkflowArgs, load_plan, open_store, store_dir};
use crate::exec::{self, Outcome, RunOptions};

#[derive(clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub workflow: WorkflowArgs,
    /// Maximum number of nodes running at once [default: number of CPU cores].
    #[arg(short, long)]
    pub jobs: Option<usize>,
    /// After a failure, keep running every branch that does not depend on it.
    #[arg(short, long)]
    pub keep_going: bool,
    /// Run only this node and the nodes it reads from, directly or not (repeatable).
    #[arg(long, value_name = "NODE")]
    pub target: Vec<String>,
    /// Run this node even when it is cached (repeatable).
    #[arg(long, value_name = "NODE")]
    pub force: Vec<String>,
    /// Compute device for training stages: auto, cpu, gpu, or an adapter name.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// CPU threads per stage [default: number of CPU cores].
    #[arg(long)]
    pub threads: Option<usize>,
}

pub fn run(args: RunArgs) -> Result<ExitCode> {
    let Some(mut plan) = load_plan(&args.workflow) else { return Ok(ExitCode::from(2)) };
    for name in &args.force {
        if plan.index_of(name).is_none() {
            miette::bail!("--force {name}: no node `{name}` in {}", args.workflow.workflow.display());
        }
    }
    if !args.target.is_empty() {
        plan = plan.restricted_to(&args.target).map_err(|name| {
            let hint = crate::workflow::did_you_mean(&name, plan.nodes.iter().map(|n| n.name.as_str())).map(|m| format!(" (did you mean `{m}`?)")).unwrap_or_default();
            miette::miette!("--target {name}: no node `{name}` in {}{hint}", args.workflow.workflow.display())
        })?;
    }
    let store = open_store(&store_dir(&args.workflow.workflow, args.workflow.store.as_deref()))?;
    let cancel = CancelFlag::default();
    install_interrupt_handler(cancel.clone());
    let defaults = RunOptions::default();
    let options = RunOptions {
        jobs: args.jobs.unwrap_or(defaults.jobs),
        keep_going: args.keep_going,
        force: args.force,
        device: args.device,
        threads: args.threads.unwrap_or(defaults.threads),
        cancel: cancel.clone(),
    };
    let summary = exec::run(&plan, &store, &options).into_diagnostic()?;

    for (name, result) in &summary.nodes {
        let what = match result.outcome {
            Outcome::Cached => "cached".to_string(),
            Outcome::Shared => "computed by another process".to_string(),
            Outcome::Ran => format!("ran in {:.2} s", result.seconds),
            Outcome::Failed => format!("FAILED: {}", result.error.as_deref().unwrap_or("")),
            Outcome::Skipped => format!("skipped: {}", result.error.as_deref().unwrap_or("")),
            Outcome::Cancelled => "cancelled".to_string(),
        };
        println!("{name:<24} {what}");
    }
    println!(
        "{} ran, {} cached, {} failed, {} skipped in {:.2} s (run {}, log {})",
        summary.count(Outcome::Ran),
        summary.count(Outcome::Cached) + summary.count(Outcome::Shared),
        summary.count(Outcome::Failed),
        summary.count(Outcome::Skipped),
        summary.seconds,
        summary.run_id,
        store.run_dir(&summary.run_id).join("log.jsonl").display(),
    );
    Ok(if cancel.is_cancelled() {
        ExitCode::from(130)
    } else if summary.succeeded() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// First Ctrl-C (or SIGTERM): stop starting nodes and ask running stages to stop; nothing
/// partial is committed. Second: exit at once (staging is cleaned by the next run).
fn install_interrupt_handler(cancel: CancelFlag) {
    let result = ctrlc::set_handler(move || {
        if cancel.is_cancelled() {
            eprintln!("\nflywheel: interrupted again, exiting now");
            std::process::exit(130);
        }
        eprintln!("\nflywheel: interrupted; finishing running nodes' cleanup (Ctrl-C again to exit now)");
        cancel.cancel();
    });
    if let Err(error) = result {
        tracing::warn!("cannot install the Ctrl-C handler: {error}");
    }
}
