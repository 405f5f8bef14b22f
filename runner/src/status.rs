//! What a run would do, without running anything: per node cached / will run (and why, as a
//! diff of key parts against the node's last record) / blocked on an upstream node.

use std::collections::BTreeMap;

use crate::digest::Digest;
use crate::exec::{key_parts, resolve_inputs};
use crate::store::{ObjectState, StatCache, Store};
use crate::workflow::Plan;

#[derive(Clone, Debug, PartialEq)]
pub enum NodeStatus {
    Cached { key: Digest, outputs: BTreeMap<String, Digest> },
    WillRun { key: Digest, reasons: Vec<String> },
    /// The node's key depends on the output of an upstream node that will run.
    Blocked { upstream: Vec<String> },
    /// An input could not be read (e.g. an external file vanished after validation).
    Error(String),
}

/// Resolves the status of every node, in plan order.
pub fn resolve(plan: &Plan, store: &Store, stat_cache: &StatCache, force: &[String]) -> Vec<NodeStatus> {
    let mut statuses: Vec<NodeStatus> = Vec::with_capacity(plan.nodes.len());
    for node in &plan.nodes {
        let waiting: Vec<String> = node
            .deps
            .iter()
            .filter(|&&d| !matches!(statuses[d], NodeStatus::Cached { .. }))
            .map(|&d| plan.nodes[d].name.clone())
            .collect();
        if !waiting.is_empty() {
            statuses.push(NodeStatus::Blocked { upstream: waiting });
            continue;
        }
        let upstream = |dep: usize, port: &str| match &statuses[dep] {
            NodeStatus::Cached { outputs, .. } => outputs.get(port).copied(),
            _ => None,
        };
        let inputs = match resolve_inputs(store, stat_cache, node, &upstream, false) {
            Ok(inputs) => inputs,
            Err(e) => {
                statuses.push(NodeStatus::Error(e.to_string()));
                continue;
            }
        };
        let parts = key_parts(node, &inputs);
        let key = parts.key();
        if force.contains(&node.name) {
            statuses.push(NodeStatus::WillRun { key, reasons: vec!["forced with --force".into()] });
            continue;
        }
        if let Some(record) = store.read_record(&key) {
            let broken: Vec<String> = record
                .outputs
                .iter()
                .filter_map(|(port, id)| match store.objects.check(id) {
                    ObjectState::Valid => None,
                    ObjectState::Missing => Some(format!("output `{port}` ({}) is missing from the store", id.short())),
                    ObjectState::Corrupt(why) => Some(format!("output `{port}` ({}) is corrupt: {why}", id.short())),
                })
                .collect();
            if broken.is_empty() {
                statuses.push(NodeStatus::Cached { key, outputs: record.outputs });
            } else {
                statuses.push(NodeStatus::WillRun { key, reasons: broken });
            }
            continue;
        }
        let reasons = match store.read_ref(&plan.name, &node.name).and_then(|r| store.read_record(&r.key)) {
            Some(previous) => {
                let diff = parts.diff(&previous.parts);
                if diff.is_empty() { vec!["no record for this key".into()] } else { diff }
            }
            None => vec!["never run".into()],
        };
        statuses.push(NodeStatus::WillRun { key, reasons });
    }
    statuses
}
