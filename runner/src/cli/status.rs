//! `flywheel status`.

use std::process::ExitCode;

use miette::Result;

use super::{WorkflowArgs, load_plan, open_store, store_dir};
use crate::status::{NodeStatus, resolve};

#[derive(clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub workflow: WorkflowArgs,
    /// Treat this node as forced, as `run --force` would (repeatable).
    #[arg(long, value_name = "NODE")]
    pub force: Vec<String>,
}

pub fn status(args: StatusArgs) -> Result<ExitCode> {
    let Some(plan) = load_plan(&args.workflow) else { return Ok(ExitCode::from(2)) };
    let store = open_store(&store_dir(&args.workflow.workflow, args.workflow.store.as_deref()))?;
    let stat_cache = store.stat_cache();
    let statuses = resolve(&plan, &store, &stat_cache, &args.force);
    let _ = stat_cache.save();

    let mut to_run = 0;
    let mut out = String::new();
    for (node, status) in plan.nodes.iter().zip(&statuses) {
        match status {
            NodeStatus::Cached { key, .. } => out.push_str(&format!("{:<24} cached      {}\n", node.name, key.short())),
            NodeStatus::WillRun { key, reasons } => {
                to_run += 1;
                out.push_str(&format!("{:<24} will run    {}\n", node.name, key.short()));
                for reason in reasons {
                    out.push_str(&format!("{:<24}   - {reason}\n", ""));
                }
            }
            NodeStatus::Blocked { upstream } => {
                to_run += 1;
                let names = upstream.iter().map(|u| format!("`{u}`")).collect::<Vec<_>>().join(", ");
                out.push_str(&format!("{:<24} blocked     waits for {names}; runs only if their outputs change\n", node.name));
            }
            NodeStatus::Error(message) => {
                to_run += 1;
                out.push_str(&format!("{:<24} error       {message}\n", node.name));
            }
        }
    }
    print!("{out}");
    if to_run == 0 {
        println!("nothing to do: all {} nodes are cached", plan.nodes.len());
    } else {
        println!("{to_run} of {} nodes to run or check", plan.nodes.len());
    }
    Ok(ExitCode::SUCCESS)
}
