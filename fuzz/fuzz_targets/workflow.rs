//! Parses and validates arbitrary workflow text against the built-in stages, then renders every
//! error as `flywheel run` prints it.

#![no_main]

use std::sync::{Arc, LazyLock};

use flywheel::registry::Registry;
use flywheel::workflow::{self, Source, raw};
use libfuzzer_sys::fuzz_target;

static REGISTRY: LazyLock<Registry> = LazyLock::new(Registry::builtin);

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    // Validation loads the plugins a workflow declares, which opens libraries and starts
    // commands. A fuzz input must do neither, so workflows with a `plugins:` list are skipped.
    if let Ok(Some(raw)) = raw::parse(text)
        && raw.plugins.is_some()
    {
        return;
    }
    // The directory does not exist, so relative input paths never name a real file.
    let source = Source { path: "/nonexistent/fuzz/workflow.yaml".into(), text: Arc::from(text) };
    if let Err(errors) = workflow::parse_source(&source, &REGISTRY, &[]) {
        for error in &errors.0 {
            let _ = error.render();
        }
    }
});
