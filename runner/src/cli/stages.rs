//! `flywheel stages`: the available stages with their ports and params.

use std::process::ExitCode;

use miette::Result;

use crate::registry::Registry;

#[derive(clap::Args)]
pub struct StagesArgs {
    /// Show only this stage.
    pub name: Option<String>,
    /// Print descriptors as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn stages(args: StagesArgs) -> Result<ExitCode> {
    let registry = Registry::builtin();
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
