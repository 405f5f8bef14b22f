//! `flywheel verify`: re-hash every object and check every action record and resume
//! checkpoint. Corrupt objects and checkpoints are moved to `quarantine/` and unusable records
//! are removed, so the next run recomputes them. Each problem is printed with what happens next.

use std::process::ExitCode;

use std::path::Path;

use miette::{IntoDiagnostic, Result, miette};

use super::StoreArgs;
use crate::store::{ObjectState, Store, checkpoint, describe_io, unique_suffix};

#[derive(clap::Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub store: StoreArgs,
}

pub fn verify(args: VerifyArgs) -> Result<ExitCode> {
    let store = args.store.open()?;
    let quarantine = store.quarantine_dir();
    let mut problems = move_stray_entries(&store)?;

    let objects = store.objects.list().map_err(|e| miette!("{}", describe_io(&store.objects.root, &e)))?;
    for id in &objects {
        if let ObjectState::Corrupt(reason) = store.objects.verify(id) {
            problems += 1;
            match store.objects.quarantine(id, &quarantine) {
                Ok(moved) => println!("corrupt object {id}: {reason}; moved to {}, so the next run recomputes it", moved.display()),
                Err(e) => println!(
                    "corrupt object {id}: {reason}; could not move it to quarantine ({e}): delete {} by hand",
                    store.objects.dir(id).display()
                ),
            }
        }
    }

    let keys = store.list_records().map_err(|e| miette!("{}", describe_io(&store.root.join("actions"), &e)))?;
    let mut dangling = 0usize;
    for key in &keys {
        let record = match store.load_record(key) {
            Ok(Some(record)) => record,
            Ok(None) => continue,
            Err(err) => {
                problems += 1;
                match store.remove_record(key) {
                    Ok(()) => println!("{err}; removed, so its node runs again"),
                    Err(e) => println!("{err}; could not remove it ({e}): delete {} by hand", err.path.display()),
                }
                continue;
            }
        };
        for (port, id) in &record.outputs {
            if store.objects.check(id) != ObjectState::Valid {
                dangling += 1;
                println!("record {} (node `{}`) lost output `{port}` {id}; the next run recomputes it", key.short(), record.node);
            }
        }
    }

    let checkpoints = verify_checkpoints(&store)?;
    problems += checkpoints;
    println!(
        "verified {} objects, {} records and the resume checkpoints: {problems} corrupt, {dangling} outputs to recompute",
        objects.len(),
        keys.len()
    );
    Ok(if problems + dangling == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// Moves to quarantine every file that sits where `objects/` and `actions/` have only their
/// fan-out directories (`ab/`), because a run would fail to create that directory. Returns
/// how many there were.
fn move_stray_entries(store: &Store) -> Result<usize> {
    let mut found = 0;
    for area in ["objects", "actions"] {
        let dir = store.root.join(area);
        let entries = std::fs::read_dir(&dir).map_err(|e| miette!("{}", describe_io(&dir, &e)))?;
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            found += 1;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().to_string();
            match quarantine_path(store, &path, &format!("{area}-{name}")) {
                Ok(target) => println!("unexpected file {}: moved to {}", path.display(), target.display()),
                Err(e) => println!("unexpected file {}: could not move it to quarantine ({e}): delete it by hand", path.display()),
            }
        }
    }
    Ok(found)
}

/// Moves `path` into `quarantine/` under a unique name that starts with `label`.
fn quarantine_path(store: &Store, path: &Path, label: &str) -> std::io::Result<std::path::PathBuf> {
    let target = store.quarantine_dir().join(format!("{label}-{:x}", unique_suffix()));
    std::fs::create_dir_all(store.quarantine_dir())?;
    std::fs::rename(path, &target)?;
    Ok(target)
}

/// Moves every bad checkpoint to quarantine and returns how many there were.
fn verify_checkpoints(store: &Store) -> Result<usize> {
    let bad = checkpoint::check_all(&store.root.join("checkpoints")).into_diagnostic()?;
    for found in &bad {
        let name = found.dir.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        match quarantine_path(store, &found.dir, &format!("checkpoint-{name}")) {
            Ok(target) => println!(
                "corrupt checkpoint {}: {}; moved to {}, so its node starts over",
                found.dir.display(),
                found.reason,
                target.display()
            ),
            Err(e) => println!(
                "corrupt checkpoint {}: {}; could not move it to quarantine ({e}): delete it by hand",
                found.dir.display(),
                found.reason
            ),
        }
    }
    Ok(bad.len())
}
