//! `flywheel verify`: re-hash every object; quarantine corrupt objects and unreadable records.

use std::process::ExitCode;

use miette::{IntoDiagnostic, Result};

use super::StoreArgs;
use crate::store::ObjectState;

#[derive(clap::Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub store: StoreArgs,
}

pub fn verify(args: VerifyArgs) -> Result<ExitCode> {
    let store = args.store.open()?;
    let quarantine = store.quarantine_dir();
    let mut problems = 0usize;

    let objects = store.objects.list().into_diagnostic()?;
    for id in &objects {
        if let ObjectState::Corrupt(reason) = store.objects.verify(id) {
            problems += 1;
            match store.objects.quarantine(id, &quarantine) {
                Ok(moved) => println!("corrupt object {id}: {reason}; moved to {}", moved.display()),
                Err(e) => println!("corrupt object {id}: {reason}; could not move it to quarantine: {e}"),
            }
        }
    }

    let keys = store.list_records().into_diagnostic()?;
    let mut dangling = 0usize;
    for key in &keys {
        let Some(record) = store.read_record(key) else {
            problems += 1;
            println!("unreadable record {key}; removed, so its node runs again");
            let _ = store.remove_record(key);
            continue;
        };
        for (port, id) in &record.outputs {
            if store.objects.check(id) != ObjectState::Valid {
                dangling += 1;
                println!("record {} (node `{}`) lost output `{port}` {id}; the next run recomputes it", key.short(), record.node);
            }
        }
    }
    println!("verified {} objects and {} records: {problems} corrupt, {dangling} outputs to recompute", objects.len(), keys.len());
    Ok(if problems + dangling == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
