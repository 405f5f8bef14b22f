//! Running one node: key it, reuse a record when one is valid, otherwise lock the key, run the
//! stage into staging directories and commit (objects first, the record last).

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::time::Instant;

use flywheel_stage_api::{InputArtifact, PROTOCOL_VERSION, StageContext, StageError, StageRequest};
use serde_json::json;

use super::host::NodeHost;
use super::{NodeResult, Outcome, RunContext};
use crate::digest::Digest;
use crate::key::{KEY_SCHEMA, KeyParts};
use crate::runlog::now_seconds;
use crate::store::{ActionRecord, External, KeyLock, NodeRef, Provenance, RECORD_SCHEMA, StatCache, Store, StoreLock, remove_tree};
use crate::workflow::{PlanInput, PlanNode};

/// Reason a node failed.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("{0}")]
    Stage(#[from] StageError),
    #[error("stage panicked: {0}")]
    Panic(String),
    #[error("stage finished without writing its declared output `{port}`")]
    MissingOutput { port: String },
    #[error("input `{port}`: {message}")]
    Input { port: String, message: String },
    #[error("store: {0}")]
    Store(String),
    #[error("cancelled")]
    Cancelled,
}

fn store_err(error: impl std::fmt::Display) -> NodeError {
    NodeError::Store(error.to_string())
}

/// Computes the node's key parts from its resolved inputs.
pub fn key_parts(node: &PlanNode, inputs: &BTreeMap<String, Digest>) -> KeyParts {
    KeyParts {
        schema: KEY_SCHEMA,
        stage: node.stage.descriptor.name.clone(),
        fingerprint: node.stage.fingerprint.clone(),
        params: node.params.clone(),
        inputs: inputs.clone(),
    }
}

/// Resolves the artifact id of each connected input. External inputs are imported into the
/// store when `import` is set, and only described (hashed) otherwise.
pub fn resolve_inputs(
    store: &Store,
    stat_cache: &StatCache,
    node: &PlanNode,
    upstream: &dyn Fn(usize, &str) -> Option<Digest>,
    import: bool,
) -> Result<BTreeMap<String, Digest>, NodeError> {
    let mut ids = BTreeMap::new();
    for (port, input) in &node.inputs {
        let id = match input {
            PlanInput::Node { node: dep, port: dep_port } => upstream(*dep, dep_port)
                .ok_or_else(|| NodeError::Input { port: port.clone(), message: format!("upstream output `{dep_port}` is not available") })?,
            PlanInput::External { path } => {
                let kind = &node.stage.descriptor.input_port(port).expect("validated port").kind;
                let input_err = |e: &dyn std::fmt::Display| NodeError::Input { port: port.clone(), message: e.to_string() };
                let external = External::describe(path, kind, stat_cache).map_err(|e| input_err(&e))?;
                if import {
                    let staging = store.staging_dir("import").map_err(store_err)?;
                    let id = store.objects.import(&external, &staging).map_err(|e| input_err(&e));
                    let _ = remove_tree(&staging);
                    id?
                } else {
                    external.manifest.id()
                }
            }
        };
        ids.insert(port.clone(), id);
    }
    Ok(ids)
}

/// Runs one node to completion: cached, computed, or failed.
pub fn execute(ctx: &RunContext, node: &PlanNode, upstream: &dyn Fn(usize, &str) -> Option<Digest>) -> NodeResult {
    let started = Instant::now();
    let result = execute_inner(ctx, node, upstream);
    let seconds = started.elapsed().as_secs_f64();
    match result {
        Ok((outcome, record)) => NodeResult { outcome, key: Some(record.key), outputs: record.outputs, seconds, error: None },
        Err((key, NodeError::Cancelled | NodeError::Stage(StageError::Cancelled))) => {
            NodeResult { outcome: Outcome::Cancelled, key, outputs: BTreeMap::new(), seconds, error: None }
        }
        Err((key, error)) => NodeResult { outcome: Outcome::Failed, key, outputs: BTreeMap::new(), seconds, error: Some(error.to_string()) },
    }
}

fn execute_inner(
    ctx: &RunContext,
    node: &PlanNode,
    upstream: &dyn Fn(usize, &str) -> Option<Digest>,
) -> Result<(Outcome, ActionRecord), (Option<Digest>, NodeError)> {
    let forced = ctx.options.force.contains(&node.name);
    // The first section imports external inputs and looks up the record, pinning both.
    let section = enter_section(ctx).map_err(|e| (None, e))?;
    let inputs = resolve_inputs(ctx.store, &ctx.stat_cache, node, upstream, true).map_err(|e| (None, e))?;
    ctx.pins.pin(&section, inputs.values()).map_err(|e| (None, store_err(format!("cannot pin inputs: {e}"))))?;
    let parts = key_parts(node, &inputs);
    let key = parts.key();
    let fail = |e: NodeError| (Some(key), e);

    if !forced && let Some(record) = lookup_and_pin(ctx, &section, &key).map_err(fail)? {
        write_ref(ctx, node, &key)?;
        return Ok((Outcome::Cached, record));
    }
    // Waiting for the key lock can take as long as another process's stage, so no section is held.
    drop(section);

    let mut waited = false;
    let lock = KeyLock::acquire(
        &ctx.store.locks_dir(),
        &key,
        |owner| {
            waited = true;
            let owner = owner.map(|p| format!("process {p}")).unwrap_or_else(|| "another process".into());
            tracing::info!(node = node.name, "waiting for {owner}, which is computing the same key {}", key.short());
            ctx.log.event("wait", json!({"node": node.name, "key": key}));
        },
        || ctx.options.cancel.is_cancelled(),
    )
    .map_err(|e| fail(store_err(format!("cannot lock key {}: {e}", key.short()))))?
    .ok_or_else(|| fail(NodeError::Cancelled))?;

    if !forced || waited {
        let section = enter_section(ctx).map_err(fail)?;
        if let Some(record) = lookup_and_pin(ctx, &section, &key).map_err(fail)? {
            write_ref(ctx, node, &key)?;
            return Ok((if waited { Outcome::Shared } else { Outcome::Cached }, record));
        }
    }

    let record = run_stage(ctx, node, &inputs, parts, &lock).map_err(fail)?;
    drop(lock);
    Ok((Outcome::Ran, record))
}

/// Takes the store lock shared, so that `gc` cannot run until the section ends (the protocol
/// is in `store/lock.rs`).
fn enter_section(ctx: &RunContext) -> Result<StoreLock, NodeError> {
    StoreLock::shared(ctx.store).map_err(|e| store_err(format!("cannot lock the store: {e}")))
}

/// Looks up the record of `key` and pins it and its outputs for this run.
fn lookup_and_pin(ctx: &RunContext, section: &StoreLock, key: &Digest) -> Result<Option<ActionRecord>, NodeError> {
    let Some(record) = ctx.store.lookup(key) else { return Ok(None) };
    let pinned = std::iter::once(key).chain(record.outputs.values());
    ctx.pins.pin(section, pinned).map_err(|e| store_err(format!("cannot pin record {}: {e}", key.short())))?;
    Ok(Some(record))
}

fn write_ref(ctx: &RunContext, node: &PlanNode, key: &Digest) -> Result<(), (Option<Digest>, NodeError)> {
    if ctx.store.read_ref(&ctx.workflow, &node.name).is_some_and(|r| r.key == *key) {
        return Ok(());
    }
    let node_ref = NodeRef { key: *key, run_id: ctx.run_id.clone() };
    ctx.store.write_ref(&ctx.workflow, &node.name, &node_ref).map_err(|e| (Some(*key), store_err(e)))
}

fn run_stage(
    ctx: &RunContext,
    node: &PlanNode,
    inputs: &BTreeMap<String, Digest>,
    parts: KeyParts,
    _lock: &KeyLock,
) -> Result<ActionRecord, NodeError> {
    let key = parts.key();
    let descriptor = &node.stage.descriptor;
    let mut request_inputs = BTreeMap::new();
    for (port, id) in inputs {
        let kind = descriptor.input_port(port).expect("validated port").kind.clone();
        request_inputs.insert(port.clone(), InputArtifact { path: ctx.store.objects.data_dir(id), kind, id: id.to_string() });
    }
    let mut staging: BTreeMap<String, PathBuf> = BTreeMap::new();
    for port in &descriptor.outputs {
        staging.insert(port.name.clone(), ctx.store.staging_dir(&format!("{}-{}", node.name, port.name)).map_err(store_err)?);
    }
    let result = run_and_commit(ctx, node, request_inputs, &staging, parts);
    for dir in staging.values() {
        let _ = remove_tree(dir);
    }
    if result.is_ok() {
        // The record is committed, so the resume state is no longer needed.
        let _ = remove_tree(&ctx.store.checkpoint_dir(&key));
    }
    result
}

fn run_and_commit(
    ctx: &RunContext,
    node: &PlanNode,
    inputs: BTreeMap<String, InputArtifact>,
    staging: &BTreeMap<String, PathBuf>,
    parts: KeyParts,
) -> Result<ActionRecord, NodeError> {
    let key = parts.key();
    let descriptor = &node.stage.descriptor;
    let checkpoint_dir = ctx.store.checkpoint_dir(&key);
    std::fs::create_dir_all(&checkpoint_dir).map_err(|e| store_err(format!("{}: {e}", checkpoint_dir.display())))?;
    let request = StageRequest {
        protocol: PROTOCOL_VERSION,
        node: node.name.clone(),
        stage: descriptor.name.clone(),
        params: node.params.clone(),
        inputs,
        outputs: staging.iter().map(|(port, dir)| (port.clone(), dir.join("data"))).collect(),
        checkpoint_dir,
        device: ctx.options.device.clone(),
        seed: node.params.get("seed").and_then(|s| s.as_u64()).unwrap_or(0),
        threads: ctx.options.threads,
    };

    let started_at = now_seconds();
    let started = Instant::now();
    tracing::info!(node = node.name, "running stage `{}` (key {})", descriptor.name, key.short());
    ctx.log.event("start", json!({"node": node.name, "stage": descriptor.name, "key": key}));
    let host = NodeHost::new(&node.name, &ctx.log, &ctx.options.cancel);
    let stage_ctx = StageContext::new(&request, &host);
    let outcome = catch_unwind(AssertUnwindSafe(|| node.stage.stage.run(&stage_ctx)))
        .map_err(|panic| NodeError::Panic(panic_message(&panic)))??;

    // The commit section: objects, record and ref appear in the store together with their pins.
    let section = enter_section(ctx)?;
    let mut outputs = BTreeMap::new();
    for port in &descriptor.outputs {
        let dir = &staging[&port.name];
        let empty = std::fs::read_dir(dir.join("data")).map(|mut d| d.next().is_none()).unwrap_or(true);
        if empty {
            return Err(NodeError::MissingOutput { port: port.name.clone() });
        }
        let metadata = outcome.metadata.get(&port.name).cloned().unwrap_or(serde_json::Value::Null);
        let id = ctx.store.objects.commit(dir, &port.kind, metadata).map_err(store_err)?;
        ctx.pins.pin(&section, [&id]).map_err(|e| store_err(format!("cannot pin output `{}`: {e}", port.name)))?;
        outputs.insert(port.name.clone(), id);
    }

    let record = ActionRecord {
        schema: RECORD_SCHEMA,
        key,
        parts,
        node: node.name.clone(),
        workflow: ctx.workflow.clone(),
        outputs,
        metrics: outcome.metrics,
        provenance: Provenance {
            run_id: ctx.run_id.clone(),
            started: started_at,
            seconds: started.elapsed().as_secs_f64(),
            host: hostname(),
            flywheel_version: env!("CARGO_PKG_VERSION").to_string(),
            device: ctx.options.device.clone(),
            threads: ctx.options.threads,
            log: format!("runs/{}/log.jsonl", ctx.run_id),
        },
    };
    crate::fault::point("before-record");
    ctx.pins.pin(&section, [&key]).map_err(|e| store_err(format!("cannot pin record {}: {e}", key.short())))?;
    ctx.store.write_record(&record).map_err(store_err)?;
    crate::fault::point("after-record");
    ctx.store.write_ref(&ctx.workflow, &node.name, &NodeRef { key, run_id: ctx.run_id.clone() }).map_err(store_err)?;
    drop(section);
    ctx.log.event("finish", json!({"node": node.name, "key": key, "seconds": record.provenance.seconds, "outputs": record.outputs}));
    Ok(record)
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic payload".to_string()
    }
}

pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".to_string())
}
