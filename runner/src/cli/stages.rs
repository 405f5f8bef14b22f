//! `flywheel stages`: the available stages with their ports and params, or those of a plugin.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use miette::{IntoDiagnostic, Result};

use crate::plugin::{self, CommandSpec, PluginSpec};
use crate::registry::Registry;

#[derive(clap::Args)]
pub struct StagesArgs {
    /// Show only this stage.
    pub name: Option<String>,
    /// Print descriptors as JSON.
    #[arg(long)]
    pub json: bool,
    /// Describe the stages of this plugin instead of the built-ins: a `.so`, `.dylib` or `.dll`
    /// file is loaded as a library, any other file is run as a subprocess plugin and must be
    /// executable (repeatable).
    #[arg(long, value_name = "PATH")]
    pub plugin: Vec<PathBuf>,
    /// Describe the stages of this subprocess plugin command, split at spaces, for example
    /// `--plugin-command "python3 stage.py"` (repeatable).
    #[arg(long, value_name = "COMMAND")]
    pub plugin_command: Vec<String>,
}

pub fn stages(args: StagesArgs) -> Result<ExitCode> {
    let registry = if args.plugin.is_empty() && args.plugin_command.is_empty() {
        Registry::builtin()
    } else {
        plugin_registry(&args.plugin, &args.plugin_command)?
    };
    let selected: Vec<_> = registry.iter().filter(|s| args.name.as_ref().is_none_or(|n| &s.descriptor.name == n)).collect();
    if let (Some(name), true) = (&args.name, selected.is_empty()) {
        let hint = crate::workflow::did_you_mean(name, registry.names()).map(|b| format!("; did you mean `{b}`?")).unwrap_or_default();
        miette::bail!("unknown stage `{name}`{hint}");
    }
    if args.json {
        let descriptors: Vec<_> = selected.iter().map(|s| &s.descriptor).collect();
        println!("{}", serde_json::to_string_pretty(&descriptors).expect("descriptors serialize"));
        return Ok(ExitCode::SUCCESS);
    }
    for stage in selected {
        let d = &stage.descriptor;
        println!("{} ({}){}", d.name, stage.fingerprint, if d.resources.gpu { " [gpu]" } else { "" });
        if !d.summary.is_empty() {
            println!("  {}", d.summary);
        }
        for port in &d.inputs {
            println!("  in   {:<16} {:<10}{} {}", port.name, port.kind, if port.optional { " (optional)" } else { "" }, port.doc);
        }
        for port in &d.outputs {
            println!("  out  {:<16} {:<10} {}", port.name, port.kind, port.doc);
        }
        for param in &d.params {
            let default = param.default.as_ref().map(|v| format!(" = {v}")).unwrap_or_else(|| " (required)".into());
            println!("  param {:<15} {}{default} {}", param.name, param.ty.name(), param.doc);
        }
        println!();
    }
    Ok(ExitCode::SUCCESS)
}

/// Loads the named plugins into an otherwise empty registry.
fn plugin_registry(paths: &[PathBuf], commands: &[String]) -> Result<Registry> {
    let dir = std::env::current_dir().into_diagnostic()?;
    let mut specs = Vec::new();
    for path in paths {
        specs.push(if is_library(path) {
            PluginSpec::Library { path: path.clone() }
        } else {
            // An absolute program path keeps a bare file name from being looked up in PATH.
            let program = std::path::absolute(path).into_diagnostic()?;
            let text = program.display().to_string();
            PluginSpec::Command(CommandSpec { command: vec![text.clone()], files: vec![(text, program)], timeout: None, dir: dir.clone() })
        });
    }
    for command in commands {
        let command: Vec<String> = command.split_whitespace().map(str::to_string).collect();
        specs.push(PluginSpec::Command(CommandSpec { command, files: Vec::new(), timeout: None, dir: dir.clone() }));
    }
    let mut registry = Registry::default();
    for spec in &specs {
        for stage in plugin::load(spec).map_err(|e| miette::miette!("{e}"))? {
            registry.add(stage.stage, stage.descriptor, stage.fingerprint);
        }
    }
    Ok(registry)
}

fn is_library(path: &Path) -> bool {
    matches!(path.extension().and_then(|e| e.to_str()), Some("so" | "dylib" | "dll"))
}
