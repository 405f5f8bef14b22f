//! Workflows: YAML files parsed in two phases, [`raw`] (as written, with positions) and
//! [`validate`] (checked against the stage registry), giving a [`Plan`].
//!
//! ```no_run
//! # use flywheel::{registry::Registry, workflow};
//! let plan = workflow::load("workflows/demo.yaml".as_ref(), &Registry::builtin(), &[]).unwrap();
//! println!("{} nodes", plan.nodes.len());
//! ```

mod diagnostic;
mod overrides;
mod plan;
pub mod raw;
mod validate;

use std::path::Path;
use std::sync::Arc;

pub use diagnostic::{Pos, Source, WorkflowError, WorkflowErrors, did_you_mean};
pub use overrides::{InvalidOverride, Override};
pub use plan::{Plan, PlanInput, PlanNode};

use crate::registry::Registry;

/// Reads, parses and validates a workflow file.
pub fn load(path: &Path, registry: &Registry, overrides: &[Override]) -> Result<Plan, WorkflowErrors> {
    let unreadable = |e: std::io::Error| {
        WorkflowError::general(path, format!("cannot read workflow file: {e}")).with_help("check the path; workflow files are YAML")
    };
    // Reading one byte past the limit is enough to reject a file, however large it is.
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|file| std::io::Read::read_to_end(&mut std::io::Read::take(file, raw::MAX_WORKFLOW_BYTES as u64 + 1), &mut bytes))
        .map_err(unreadable)?;
    if bytes.len() > raw::MAX_WORKFLOW_BYTES {
        return Err(WorkflowError::general(path, format!("workflow file is larger than the limit of {} bytes", raw::MAX_WORKFLOW_BYTES))
            .with_help("a workflow names its data files as inputs instead of containing the data; move large values into files")
            .into());
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        WorkflowError::general(path, format!("workflow file is not valid UTF-8 (invalid byte at offset {})", e.utf8_error().valid_up_to()))
    })?;
    let source = Source { path: path.to_path_buf(), text: Arc::from(text.as_str()) };
    parse_source(&source, registry, overrides)
}

/// Parses and validates workflow text that was already read.
pub fn parse_source(source: &Source, registry: &Registry, overrides: &[Override]) -> Result<Plan, WorkflowErrors> {
    let raw = match raw::parse(&source.text) {
        Ok(Some(raw)) => raw,
        Ok(None) => {
            return Err(WorkflowError::at(source, Some(Pos::start()), "empty workflow: the file has no content", "empty file")
                .with_help("add a `nodes:` mapping with at least one node")
                .into());
        }
        Err(error) => return Err(yaml_error(source, &error).into()),
    };
    validate::validate(raw, source, registry, overrides)
}

fn yaml_error(source: &Source, error: &serde_saphyr::Error) -> WorkflowError {
    let pos = error.location().as_ref().and_then(Pos::from_location);
    let message = error.without_snippet().to_string();
    let message = message.lines().next().unwrap_or("invalid YAML").to_string();
    let mut out = WorkflowError::at(source, pos, message.clone(), "here");
    if let Some(field) = message.strip_prefix("unknown field `").and_then(|m| m.split('`').next()) {
        let known = [
            "name", "description", "vars", "defaults", "nodes", "plugins", "stage", "inputs", "params", "library",
            "command", "files", "timeout_s",
        ];
        out = out.suggest(field, known);
    }
    if message.starts_with("budget breached") {
        out = out.with_help(format!(
            "a workflow may have at most {} YAML nodes and {} alias uses (`*name`) after expansion; \
             write the repeated values out or use fewer aliases",
            raw::MAX_YAML_NODES,
            raw::MAX_YAML_ALIASES
        ));
    }
    out
}
