//! `flywheel gc`: delete records and objects that the kept workflows' latest records do not reach.

use std::collections::BTreeSet;
use std::process::ExitCode;

use miette::{IntoDiagnostic, Result};

use super::StoreArgs;
use crate::store::{StoreLock, remove_tree};

#[derive(clap::Args)]
pub struct GcArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Keep this workflow's latest results (repeatable) [default: every workflow with results].
    #[arg(long, value_name = "WORKFLOW")]
    pub keep: Vec<String>,
    /// Also delete in-node checkpoints, which interrupted runs would resume from.
    #[arg(long)]
    pub checkpoints: bool,
    /// Print what would be deleted, delete nothing.
    #[arg(long)]
    pub dry_run: bool,
}

pub fn gc(args: GcArgs) -> Result<ExitCode> {
    let store = args.store.open()?;
    // Runs hold this lock shared; gc waits until none is running.
    let _lock = StoreLock::exclusive(&store, || println!("waiting for running workflows on this store to finish")).into_diagnostic()?;

    let workflows = store.ref_workflows().into_diagnostic()?;
    let kept: Vec<String> = if args.keep.is_empty() { workflows.clone() } else { args.keep.clone() };
    for name in &args.keep {
        if !workflows.contains(name) {
            miette::bail!("--keep {name}: the store has no results of a workflow named `{name}` (it has: {})", workflows.join(", "));
        }
    }

    let mut live_records = BTreeSet::new();
    let mut live_objects = BTreeSet::new();
    for workflow in &kept {
        for (_, node_ref) in store.refs_of(workflow).into_diagnostic()? {
            if let Some(record) = store.read_record(&node_ref.key) {
                live_records.insert(record.key);
                live_objects.extend(record.outputs.values().copied());
                live_objects.extend(record.parts.inputs.values().copied());
            }
        }
    }

    let verb = if args.dry_run { "would delete" } else { "deleted" };
    let mut freed = 0u64;
    let mut deleted_records = 0;
    for key in store.list_records().into_diagnostic()? {
        if !live_records.contains(&key) {
            deleted_records += 1;
            if !args.dry_run {
                store.remove_record(&key).into_diagnostic()?;
            }
        }
    }
    let mut deleted_objects = 0;
    for id in store.objects.list().into_diagnostic()? {
        if !live_objects.contains(&id) {
            deleted_objects += 1;
            freed += store.objects.read_manifest(&id).map(|m| m.total_size()).unwrap_or(0);
            if !args.dry_run {
                remove_tree(&store.objects.dir(&id)).into_diagnostic()?;
            }
        }
    }
    for workflow in workflows.iter().filter(|w| !kept.contains(w)) {
        println!("{verb} results of workflow `{workflow}`");
        if !args.dry_run {
            remove_tree(&store.root.join("refs").join(workflow)).into_diagnostic()?;
        }
    }
    let mut extra = Vec::new();
    if !args.dry_run {
        let _ = remove_tree(&store.quarantine_dir());
    }
    if args.checkpoints {
        let dir = store.root.join("checkpoints");
        let count = std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0);
        extra.push(format!("{count} checkpoint directories"));
        if !args.dry_run {
            remove_tree(&dir).into_diagnostic()?;
            std::fs::create_dir_all(&dir).into_diagnostic()?;
        }
    }
    println!(
        "{verb} {deleted_records} records and {deleted_objects} objects ({:.1} MiB){}; kept {} records and {} objects",
        freed as f64 / (1024.0 * 1024.0),
        extra.iter().map(|e| format!(", {e}")).collect::<String>(),
        live_records.len(),
        live_objects.len(),
    );
    Ok(ExitCode::SUCCESS)
}
