//! Plugin stages: stages that live outside the flywheel binary, wrapped as `Arc<dyn Stage>`
//! so the scheduler runs them like built-ins.
//!
//! - [`PluginSpec::Library`]: a dynamic library that exports stages through the C ABI of
//!   [`flywheel_stage_api::abi`] ([`dylib`]). Loaded once per process and never unloaded.
//!   Fingerprint: `dylib:b3:<blake3 of the library file>`.
//! - [`PluginSpec::Command`]: any executable that speaks the JSON envelope on stdin and stdout
//!   ([`subprocess`]). Fingerprint: `subprocess:b3:<blake3 of the command, the declared
//!   files' contents and the stage version>`.
//!
//! [`load`] turns a spec into [`RegisteredStage`]s ready for [`crate::registry::Registry::add`];
//! [`declare`] does that for the `plugins:` list of a workflow, with errors that point at
//! its lines.

pub mod declare;
pub mod dylib;
mod process;
pub mod subprocess;

use std::path::PathBuf;
use std::time::Duration;

use flywheel_stage_api::StageDescriptor;

use crate::registry::RegisteredStage;

/// Source of a plugin's stages.
#[derive(Clone, Debug)]
pub enum PluginSpec {
    Library { path: PathBuf },
    Command(CommandSpec),
}

/// A subprocess plugin: the command that runs it and what goes into its fingerprint.
#[derive(Clone, Debug, PartialEq)]
pub struct CommandSpec {
    /// Program and arguments. A program name with a `/` is resolved against `dir`; one
    /// without is looked up in `PATH`.
    pub command: Vec<String>,
    /// Files whose contents go into the fingerprint: the name as written, and the path.
    pub files: Vec<(String, PathBuf)>,
    /// Limit on one run of a stage, and on the `describe` handshake.
    pub timeout: Option<Duration>,
    /// The directory of the workflow file: relative paths in `command` start here, and the
    /// `describe` handshake runs here. Stage runs get a fresh working directory each.
    pub dir: PathBuf,
}

impl CommandSpec {
    /// Returns the command as one line, for messages.
    pub fn display(&self) -> String {
        self.command.join(" ")
    }
}

/// Failure to load a plugin, or a plugin that broke its protocol.
#[derive(Debug, thiserror::Error)]
#[error("plugin {plugin}: {message}")]
pub struct PluginError {
    /// The library path or the command, as the user wrote it.
    pub plugin: String,
    pub message: String,
}

impl PluginError {
    pub fn new(plugin: impl Into<String>, message: impl Into<String>) -> PluginError {
        PluginError { plugin: plugin.into(), message: message.into() }
    }
}

/// Loads a plugin and returns its stages with their fingerprints.
pub fn load(spec: &PluginSpec) -> Result<Vec<RegisteredStage>, PluginError> {
    match spec {
        PluginSpec::Library { path } => dylib::load(path),
        PluginSpec::Command(command) => subprocess::load(command),
    }
}

/// Checks the descriptors a plugin sent: at least one stage, each with a valid, unique name
/// and a version.
fn check_descriptors(descriptors: &[StageDescriptor]) -> Result<(), String> {
    if descriptors.is_empty() {
        return Err("it describes no stages; a plugin must export at least one".to_string());
    }
    let mut seen = std::collections::BTreeSet::new();
    for descriptor in descriptors {
        let name = &descriptor.name;
        let valid = !name.is_empty()
            && !name.starts_with('-')
            && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !valid {
            return Err(format!("invalid stage name `{name}`; use lowercase letters, digits and `-`"));
        }
        if descriptor.version.is_empty() {
            return Err(format!("stage `{name}` has an empty version"));
        }
        if !seen.insert(name) {
            return Err(format!("stage `{name}` is described twice"));
        }
    }
    Ok(())
}
