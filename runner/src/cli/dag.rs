//! `flywheel dag`: the workflow graph as text, Graphviz dot or Mermaid.

use std::process::ExitCode;

use miette::Result;

use super::{WorkflowArgs, load_plan};
use crate::workflow::{Plan, PlanInput};

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum DagFormat {
    Text,
    Dot,
    Mermaid,
}

#[derive(clap::Args)]
pub struct DagArgs {
    #[command(flatten)]
    pub workflow: WorkflowArgs,
    #[arg(long, value_enum, default_value = "text")]
    pub format: DagFormat,
}

pub fn dag(args: DagArgs) -> Result<ExitCode> {
    let Some(plan) = load_plan(&args.workflow) else { return Ok(ExitCode::from(2)) };
    print!("{}", match args.format {
        DagFormat::Text => text(&plan),
        DagFormat::Dot => dot(&plan),
        DagFormat::Mermaid => mermaid(&plan),
    });
    Ok(ExitCode::SUCCESS)
}

/// Returns (from node, from port, to node, to port) for every edge between nodes.
fn edges(plan: &Plan) -> Vec<(usize, String, usize, String)> {
    let mut out = Vec::new();
    for (i, node) in plan.nodes.iter().enumerate() {
        for (port, input) in &node.inputs {
            if let PlanInput::Node { node: from, port: from_port } = input {
                out.push((*from, from_port.clone(), i, port.clone()));
            }
        }
    }
    out
}

pub fn text(plan: &Plan) -> String {
    let mut out = String::new();
    for node in &plan.nodes {
        out.push_str(&format!("{} ({})\n", node.name, node.stage.descriptor.name));
        for (port, input) in &node.inputs {
            match input {
                PlanInput::Node { node: from, port: from_port } => {
                    out.push_str(&format!("  {port} <- {}.{from_port}\n", plan.nodes[*from].name));
                }
                PlanInput::External { path } => out.push_str(&format!("  {port} <- file {}\n", path.display())),
            }
        }
    }
    out
}

pub fn dot(plan: &Plan) -> String {
    let mut out = format!("digraph \"{}\" {{\n  rankdir=LR;\n", plan.name);
    for node in &plan.nodes {
        out.push_str(&format!("  \"{}\" [shape=box, label=\"{}\\n({})\"];\n", node.name, node.name, node.stage.descriptor.name));
    }
    for (from, from_port, to, to_port) in edges(plan) {
        out.push_str(&format!("  \"{}\" -> \"{}\" [label=\"{from_port} -> {to_port}\"];\n", plan.nodes[from].name, plan.nodes[to].name));
    }
    out.push_str("}\n");
    out
}

pub fn mermaid(plan: &Plan) -> String {
    let mut out = String::from("flowchart LR\n");
    for node in &plan.nodes {
        out.push_str(&format!("  {}[\"{}<br/>({})\"]\n", mermaid_id(&node.name), node.name, node.stage.descriptor.name));
    }
    for (from, from_port, to, to_port) in edges(plan) {
        out.push_str(&format!("  {} -->|{from_port} → {to_port}| {}\n", mermaid_id(&plan.nodes[from].name), mermaid_id(&plan.nodes[to].name)));
    }
    out
}

/// Mermaid ids cannot contain `-`.
fn mermaid_id(name: &str) -> String {
    format!("n_{}", name.replace('-', "_"))
}
