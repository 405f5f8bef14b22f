//! Node status: the forecast of a run without running anything. Each node is cached, will run
//! (with the reasons, as a diff of key parts against its last record), or blocked on an
//! upstream node.

use std::collections::BTreeMap;

use rayon::prelude::*;

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
///
/// Nodes are resolved in waves: a wave contains the nodes whose upstream nodes are all resolved,
/// and the nodes of one wave are checked in parallel (reading records and stat-ing objects
/// dominates on large graphs).
pub fn resolve(plan: &Plan, store: &Store, stat_cache: &StatCache, force: &[String]) -> Vec<NodeStatus> {
    let mut depth = vec![0usize; plan.nodes.len()];
    for (i, node) in plan.nodes.iter().enumerate() {
        depth[i] = node.deps.iter().map(|&d| depth[d] + 1).max().unwrap_or(0);
    }
    let max_depth = depth.iter().copied().max().unwrap_or(0);
    let mut waves: Vec<Vec<usize>> = vec![Vec::new(); max_depth + 1];
    for (i, &d) in depth.iter().enumerate() {
        waves[d].push(i);
    }

    let mut statuses: Vec<Option<NodeStatus>> = vec![None; plan.nodes.len()];
    for wave in waves {
        let resolved: Vec<(usize, NodeStatus)> = wave
            .par_iter()
            .map(|&i| (i, resolve_node(plan, i, &statuses, store, stat_cache, force)))
            .collect();
        for (i, status) in resolved {
            statuses[i] = Some(status);
        }
    }
    statuses.into_iter().map(|s| s.expect("every wave resolved")).collect()
}

fn resolve_node(
    plan: &Plan,
    index: usize,
    statuses: &[Option<NodeStatus>],
    store: &Store,
    stat_cache: &StatCache,
    force: &[String],
) -> NodeStatus {
    let node = &plan.nodes[index];
    let status_of = |d: usize| statuses[d].as_ref().expect("upstream resolved in an earlier wave");
    let waiting: Vec<String> = node
        .deps
        .iter()
        .filter(|&&d| !matches!(status_of(d), NodeStatus::Cached { .. }))
        .map(|&d| plan.nodes[d].name.clone())
        .collect();
    if !waiting.is_empty() {
        return NodeStatus::Blocked { upstream: waiting };
    }
    let upstream = |dep: usize, port: &str| match status_of(dep) {
        NodeStatus::Cached { outputs, .. } => outputs.get(port).copied(),
        _ => None,
    };
    let inputs = match resolve_inputs(store, stat_cache, node, &upstream, false) {
        Ok(inputs) => inputs,
        Err(e) => return NodeStatus::Error(e.to_string()),
    };
    let parts = key_parts(node, &inputs);
    let key = parts.key();
    if force.contains(&node.name) {
        return NodeStatus::WillRun { key, reasons: vec!["forced with --force".into()] };
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
        return if broken.is_empty() {
            NodeStatus::Cached { key, outputs: record.outputs }
        } else {
            NodeStatus::WillRun { key, reasons: broken }
        };
    }
    let reasons = match store.read_ref(&plan.name, &node.name).and_then(|r| store.read_record(&r.key)) {
        Some(previous) => {
            let diff = parts.diff(&previous.parts);
            if diff.is_empty() { vec!["no record for this key".into()] } else { diff }
        }
        None => vec!["never run".into()],
    };
    let mut reasons = reasons;
    if let Some(step) = resume_step(store, &key) {
        reasons.push(format!("resumes from its checkpoint at step {step}"));
    }
    NodeStatus::WillRun { key, reasons }
}

/// Returns the step of the newest finished resume checkpoint (`checkpoints/<key>/step-N`) of
/// `key`, which a run of that key continues from.
fn resume_step(store: &Store, key: &Digest) -> Option<u64> {
    let entries = std::fs::read_dir(store.checkpoint_dir(key)).ok()?;
    entries.flatten().filter_map(|entry| entry.file_name().to_str()?.strip_prefix("step-")?.parse::<u64>().ok()).max()
}
