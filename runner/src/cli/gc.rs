//! `flywheel gc`: delete records and objects that the kept workflows' latest records do not reach.
//!
//! `gc` runs beside running workflows: it holds the store lock exclusively while it marks and
//! sweeps, and keeps everything that a live run has pinned. A run waits for the store lock only
//! at its next import, lookup or commit. The protocol is described in `store/lock.rs`.

use std::collections::BTreeSet;
use std::process::ExitCode;

use miette::{IntoDiagnostic, Result};

use super::StoreArgs;
use crate::digest::Digest;
use crate::store::{KeyLock, Store, StoreLock, live_pins, remove_tree};

#[derive(clap::Args)]
pub struct GcArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Keep this workflow's latest results (repeatable) [default: every workflow with results].
    #[arg(long, value_name = "WORKFLOW")]
    pub keep: Vec<String>,
    /// Also delete in-node checkpoints, which interrupted runs would resume from (those of
    /// nodes running now stay).
    #[arg(long)]
    pub checkpoints: bool,
    /// Print what would be deleted, delete nothing.
    #[arg(long)]
    pub dry_run: bool,
}

pub fn gc(args: GcArgs) -> Result<ExitCode> {
    let store = args.store.open()?;
    // Runs hold this lock shared only while they import, look up or commit, so gc waits for
    // those sections, not for whole runs.
    let _lock = StoreLock::exclusive(&store, || println!("waiting for a running workflow to finish its current import, lookup or commit")).into_diagnostic()?;

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

    // What live runs use: records and objects that no ref may reach yet.
    let pinned = live_pins(&store).into_diagnostic()?;
    for id in &pinned {
        if let Some(record) = store.read_record(id) {
            live_records.insert(record.key);
            live_objects.extend(record.outputs.values().copied());
            live_objects.extend(record.parts.inputs.values().copied());
        } else {
            live_objects.insert(*id);
        }
    }
    if !pinned.is_empty() {
        println!("keeping {} records and objects that running workflows use", pinned.len());
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
        let (count, busy) = remove_checkpoints(&store, args.dry_run)?;
        extra.push(format!("{count} checkpoint directories"));
        if busy > 0 {
            println!("kept {busy} checkpoint directories of nodes that are running");
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

/// Deletes the checkpoint directories whose key lock is free, and returns how many it deleted
/// (or would delete) and how many it kept because a running node holds their key lock.
fn remove_checkpoints(store: &Store, dry_run: bool) -> Result<(usize, usize)> {
    let dir = store.root.join("checkpoints");
    let mut removed = 0;
    let mut busy = 0;
    let Ok(entries) = std::fs::read_dir(&dir) else { return Ok((0, 0)) };
    for entry in entries {
        let path = entry.into_diagnostic()?.path();
        // A checkpoint directory is named by its key; anything else is not flywheel's.
        let Some(key) = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.parse::<Digest>().ok()) else { continue };
        // Holding the key lock while deleting keeps a node of this key from starting meanwhile.
        let Some(_lock) = KeyLock::try_acquire(&store.locks_dir(), &key).into_diagnostic()? else {
            busy += 1;
            continue;
        };
        removed += 1;
        if !dry_run {
            remove_tree(&path).into_diagnostic()?;
        }
    }
    Ok((removed, busy))
}
