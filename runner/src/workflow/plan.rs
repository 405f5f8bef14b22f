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

#[derive(Clone)]
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

    /// Returns the plan cut down to `targets` and the nodes they read from, directly or not,
    /// in the same order. An unknown target name is returned as the error.
    pub fn restricted_to(&self, targets: &[String]) -> Result<Plan, String> {
        let mut keep = vec![false; self.nodes.len()];
        let mut stack = Vec::new();
        for name in targets {
            stack.push(self.index_of(name).ok_or_else(|| name.clone())?);
        }
        while let Some(i) = stack.pop() {
            if !keep[i] {
                keep[i] = true;
                stack.extend(&self.nodes[i].deps);
            }
        }
        let mut new_index = vec![usize::MAX; self.nodes.len()];
        let mut nodes = Vec::new();
        for (i, node) in self.nodes.iter().enumerate().filter(|(i, _)| keep[*i]) {
            new_index[i] = nodes.len();
            let mut node = node.clone();
            node.deps = node.deps.iter().map(|&d| new_index[d]).collect();
            for input in node.inputs.values_mut() {
                if let PlanInput::Node { node: from, .. } = input {
                    *from = new_index[*from];
                }
            }
            nodes.push(node);
        }
        Ok(Plan { name: self.name.clone(), file: self.file.clone(), nodes })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;

    fn node(name: &str, deps: &[usize]) -> PlanNode {
        let registry = Registry::builtin();
        let stage = registry.get("import-corpus").expect("built-in stage").clone();
        let inputs = deps.iter().enumerate().map(|(k, &d)| (format!("in{k}"), PlanInput::Node { node: d, port: "out".into() })).collect();
        PlanNode { name: name.into(), stage, params: Map::new(), inputs, deps: deps.to_vec(), line: 1 }
    }

    #[test]
    fn restriction_keeps_ancestors_and_renumbers() {
        // a -> b -> d, c -> d, e alone; restricted to b and c.
        let plan = Plan {
            name: "w".into(),
            file: PathBuf::from("w.yaml"),
            nodes: vec![node("a", &[]), node("e", &[]), node("b", &[0]), node("c", &[]), node("d", &[2, 3])],
        };
        let cut = plan.restricted_to(&["b".into(), "c".into()]).unwrap();
        let names: Vec<&str> = cut.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert_eq!(cut.nodes[1].deps, [0]);
        assert_eq!(cut.nodes[1].inputs["in0"], PlanInput::Node { node: 0, port: "out".into() });
        assert_eq!(plan.restricted_to(&["zz".into()]).err(), Some("zz".to_string()));
    }
}
