//! Phase two's result: [`Plan`], a validated workflow whose nodes are in topological order.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{Map, Value};

use crate::registry::RegisteredStage;

/// A validated workflow, ready to be keyed and run.
pub struct Plan {
    /// Workflow name: the `name:` field or the file stem. Names the refs of its nodes.
    pub name: String,
    pub file: PathBuf,
    /// Nodes in topological order: every node comes after the nodes it reads from.
    pub nodes: Vec<PlanNode>,
}

pub struct PlanNode {
    pub name: String,
    pub stage: RegisteredStage,
    /// Every declared param, resolved: `--set`, then the node's params, then workflow
    /// defaults, then the stage's defaults.
    pub params: Map<String, Value>,
    pub inputs: BTreeMap<String, PlanInput>,
    /// Indices (into [`Plan::nodes`]) of the nodes this one reads from, without repeats.
    pub deps: Vec<usize>,
    /// Line of the node's name in the workflow file.
    pub line: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub enum PlanInput {
    /// An output port of another node (index into [`Plan::nodes`]).
    Node { node: usize, port: String },
    /// An external file or directory, hashed by content.
    External { path: PathBuf },
}

impl Plan {
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.name == name)
    }

    /// Returns, for each node, the indices of the nodes that read from it.
    pub fn dependents(&self) -> Vec<Vec<usize>> {
        let mut out = vec![Vec::new(); self.nodes.len()];
        for (i, node) in self.nodes.iter().enumerate() {
            for &dep in &node.deps {
                out[dep].push(i);
            }
        }
        out
    }

    /// Returns the indices of `roots` and everything downstream of them.
    pub fn descendants(&self, roots: &[usize]) -> Vec<bool> {
        let dependents = self.dependents();
        let mut marked = vec![false; self.nodes.len()];
        let mut stack: Vec<usize> = roots.to_vec();
        while let Some(i) = stack.pop() {
            if !marked[i] {
                marked[i] = true;
                stack.extend(&dependents[i]);
            }
        }
        marked
    }
}
