//! Fault injection for crash tests. Setting the environment variable `FLYWHEEL_FAULT=NAME` makes
//! the process abort (`SIGABRT`, no unwinding, no cleanup) when it reaches the point called
//! `NAME`, as a crash or power loss would stop it there. `NAME@N` aborts at the N-th time the
//! point is reached in this process instead of the first. The variable is read once, at the
//! first point reached. It is deliberately not a command-line flag: only tests set it.
//!
//! Points, in the order a node reaches them:
//!
//! | name | where |
//! |---|---|
//! | `checkpoint-partial` | a resume checkpoint has some of its files written, in its temporary directory |
//! | `checkpoint-before-rename` | all checkpoint files written and synced, the temporary directory not yet renamed |
//! | `checkpoint-after-rename` | the new checkpoint renamed into place, older checkpoints not yet deleted |
//! | `object-before-rename` | an output object is sealed and synced in staging, not yet renamed into `objects/` |
//! | `object-after-rename` | the object is in `objects/`, no record names it yet |
//! | `before-record` | all outputs committed, the action record not yet written |
//! | `after-record` | the record written, the node's ref not yet updated |
//! | `between-nodes` | a node finished and its ref is written, the scheduler has not started the next node |
//!
//! The checkpoint points are reached by the trainer of the training stages and by the runner's
//! `fixture` test stage. A stage plugin built against this crate reaches them too, because it
//! reads the same variable.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The environment variable that selects the fault point.
pub const FAULT_ENV: &str = "FLYWHEEL_FAULT";

/// Aborts the process when `FLYWHEEL_FAULT` names this point and this is the selected hit.
pub fn point(name: &str) {
    static SELECTED: OnceLock<Option<(String, u64)>> = OnceLock::new();
    static HITS: AtomicU64 = AtomicU64::new(0);

    let selected = SELECTED.get_or_init(|| std::env::var(FAULT_ENV).ok().and_then(|spec| parse(&spec)));
    let Some((point, hit)) = selected else { return };
    if point != name {
        return;
    }
    let count = HITS.fetch_add(1, Ordering::SeqCst) + 1;
    if count == *hit {
        eprintln!("flywheel: fault injected at `{name}` (hit {count}), aborting");
        std::process::abort();
    }
}

/// Parses `NAME` or `NAME@N`. An invalid count is reported on stderr and selects no point.
fn parse(spec: &str) -> Option<(String, u64)> {
    let Some((name, count)) = spec.split_once('@') else { return Some((spec.to_string(), 1)) };
    match count.parse::<u64>() {
        Ok(n) if n >= 1 => Some((name.to_string(), n)),
        _ => {
            eprintln!("flywheel: ignoring {FAULT_ENV}={spec}: the count after `@` must be an integer of at least 1");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn parse_name_and_count() {
        assert_eq!(parse("after-record"), Some(("after-record".to_string(), 1)));
        assert_eq!(parse("between-nodes@3"), Some(("between-nodes".to_string(), 3)));
        assert_eq!(parse("between-nodes@0"), None);
        assert_eq!(parse("between-nodes@x"), None);
    }
}
