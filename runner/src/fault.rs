//! Fault injection for crash tests: setting `FLYWHEEL_FAULT=NAME` makes the process abort at
//! the point called `NAME`, as a crash or power loss would stop it there.
//!
//! Points: `object-before-rename`, `object-after-rename` (inside an object commit),
//! `before-record` (all outputs committed, record not yet written), `after-record`.

use std::sync::OnceLock;

/// Aborts the process when `FLYWHEEL_FAULT` names this point.
pub fn point(name: &str) {
    static FAULT: OnceLock<Option<String>> = OnceLock::new();
    let fault = FAULT.get_or_init(|| std::env::var("FLYWHEEL_FAULT").ok());
    if fault.as_deref() == Some(name) {
        eprintln!("flywheel: fault injected at `{name}`, aborting");
        std::process::abort();
    }
}
