//! The `plugins:` list of a workflow: [`load_declared`] checks each entry, loads it, and
//! returns the registry that the workflow's nodes resolve their stages against.
//!
//! A plugin stage with the name of a built-in stage replaces the built-in for that workflow
//! only; the replacement is logged at info level. Two plugins of one workflow may not provide
//! the same stage.

// Errors are built once per problem and carry their source snippet; boxing them buys nothing.
#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde_saphyr::Spanned;

use super::{CommandSpec, PluginSpec};
use crate::registry::Registry;
use crate::workflow::raw::RawPlugin;
use crate::workflow::{Pos, Source, WorkflowError};

/// Replaces `${var}` in a value of the workflow, or returns an error at `Pos`.
pub type Substitute<'a> = dyn Fn(&str, Option<Pos>) -> Result<String, WorkflowError> + 'a;

fn pos<T>(spanned: &Spanned<T>) -> Option<Pos> {
    Pos::from_location(&spanned.referenced)
}

/// Loads every declared plugin and returns `registry` extended with their stages. Relative
/// paths start at `base_dir`, the workflow file's directory.
pub fn load_declared(
    plugins: &[Spanned<RawPlugin>],
    source: &Source,
    base_dir: &Path,
    substitute: &Substitute<'_>,
    registry: &Registry,
) -> Result<Registry, Vec<WorkflowError>> {
    let mut extended = registry.clone();
    let mut errors = Vec::new();
    // Stage name -> line of the plugin entry that provides it.
    let mut provided: BTreeMap<String, u64> = BTreeMap::new();
    for entry in plugins {
        let spec = match plugin_spec(entry, source, base_dir, substitute) {
            Ok(spec) => spec,
            Err(error) => {
                errors.push(error);
                continue;
            }
        };
        let at = entry.value.library.as_ref().map(pos).or_else(|| entry.value.command.as_ref().map(pos)).flatten();
        let stages = match super::load(&spec) {
            Ok(stages) => stages,
            Err(error) => {
                let help = match spec {
                    PluginSpec::Library { .. } => "a relative `library:` path starts at the workflow file's directory; \
                                                   `flywheel stages --plugin PATH` loads a plugin on its own",
                    PluginSpec::Command(_) => "the command runs in the workflow file's directory; \
                                               `flywheel stages --plugin-command \"COMMAND\"` runs its handshake on its own",
                };
                errors.push(WorkflowError::at(source, at, error.to_string(), "plugin failed to load").with_help(help));
                continue;
            }
        };
        let line = entry.referenced.line();
        for stage in stages {
            let name = stage.descriptor.name.clone();
            if let Some(first) = provided.get(&name) {
                errors.push(
                    WorkflowError::at(source, at, format!("stage `{name}` is provided by two plugins"), "second provider")
                        .with_help(format!("the plugin at line {first} provides it too; remove it from one of them")),
                );
                continue;
            }
            if let Some(builtin) = registry.get(&name) {
                tracing::info!(
                    workflow = %source.path.display(),
                    "the plugin at line {line} replaces the built-in stage `{name}` ({} -> {})",
                    builtin.fingerprint,
                    stage.fingerprint
                );
            }
            provided.insert(name, line);
            extended.add(stage.stage, stage.descriptor, stage.fingerprint);
        }
    }
    if errors.is_empty() { Ok(extended) } else { Err(errors) }
}

/// Checks one entry and resolves its paths.
fn plugin_spec(
    entry: &Spanned<RawPlugin>,
    source: &Source,
    base_dir: &Path,
    substitute: &Substitute<'_>,
) -> Result<PluginSpec, WorkflowError> {
    let raw = &entry.value;
    let error = |at: Option<Pos>, message: &str, label: &str| WorkflowError::at(source, at, message, label);
    match (&raw.library, &raw.command) {
        (Some(_), Some(command)) => {
            return Err(error(pos(command), "a plugin has either `library` or `command`, not both", "second kind")
                .with_help("split it into two entries of `plugins:`"));
        }
        (None, None) => {
            return Err(error(pos(entry), "a plugin needs `library: PATH` or `command: [PROGRAM, ARG...]`", "plugin kind missing"));
        }
        (Some(library), None) => {
            if let Some(files) = raw.files.as_ref().and_then(|f| f.first()) {
                return Err(error(pos(files), "`files` applies only to `command` plugins", "not for a library")
                    .with_help("a library's fingerprint is the blake3 of the library file itself"));
            }
            if let Some(timeout) = &raw.timeout_s {
                return Err(error(pos(timeout), "`timeout_s` applies only to `command` plugins", "not for a library"));
            }
            let path = substitute(&library.value, pos(library))?;
            return Ok(PluginSpec::Library { path: base_dir.join(path) });
        }
        (None, Some(_)) => {}
    }

    let command = raw.command.as_ref().expect("matched above");
    if command.value.is_empty() {
        return Err(error(pos(command), "`command` is empty", "no program").with_help("write it as a list: `command: [python3, stage.py]`"));
    }
    let mut argv = Vec::new();
    for part in &command.value {
        argv.push(substitute(&part.value, pos(part))?);
    }
    let mut files = Vec::new();
    for file in raw.files.as_deref().unwrap_or_default() {
        let name = substitute(&file.value, pos(file))?;
        let path = base_dir.join(&name);
        if !path.is_file() {
            return Err(error(pos(file), &format!("declared file {} not found", path.display()), "file not found")
                .with_help("paths are relative to the workflow file's directory; list the files of the stage's implementation"));
        }
        files.push((name, path));
    }
    let timeout = match &raw.timeout_s {
        Some(t) if !(t.value.is_finite() && t.value > 0.0) => {
            return Err(error(pos(t), &format!("`timeout_s` must be a positive number of seconds, got {}", t.value), "invalid timeout"));
        }
        Some(t) => Some(Duration::from_secs_f64(t.value)),
        None => None,
    };
    let dir = if base_dir.as_os_str().is_empty() { Path::new(".") } else { base_dir };
    let dir = std::path::absolute(dir).map_err(|e| error(pos(command), &format!("cannot resolve the workflow directory: {e}"), "here"))?;
    Ok(PluginSpec::Command(CommandSpec { command: argv, files, timeout, dir }))
}
