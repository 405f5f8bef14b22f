//! Running a [`Plan`]: the scheduler ([`run`]) and the execution of one node.
//!
//! Nodes start in topological order as soon as their inputs exist, up to `jobs` at once. Stages
//! that use the GPU never overlap. A failed node stops its descendants; without `keep_going`
//! no new node starts after a failure, and with it every other branch still runs. Cancellation
//! (Ctrl-C) stops new starts, sets the flag that running stages poll, and commits nothing partial.

mod host;
mod node;

use std::collections::BTreeMap;
use std::sync::mpsc;

use flywheel_stage_api::CancelFlag;
use serde::Serialize;
use serde_json::json;

pub use node::{NodeError, hostname, key_parts, resolve_inputs};

use crate::digest::Digest;
use crate::runlog::RunLog;
use crate::store::{RunPins, StatCache, Store, StoreLock};
use crate::workflow::Plan;

pub struct RunOptions {
    pub jobs: usize,
    pub keep_going: bool,
    /// Nodes to run even when a valid record exists.
    pub force: Vec<String>,
    pub device: String,
    pub threads: usize,
    pub cancel: CancelFlag,
}

impl Default for RunOptions {
    fn default() -> Self {
        let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        RunOptions { jobs: threads, keep_going: false, force: Vec::new(), device: "auto".into(), threads, cancel: CancelFlag::default() }
    }
}

/// Shared state of one run.
pub struct RunContext<'a> {
    pub store: &'a Store,
    pub options: &'a RunOptions,
    pub workflow: String,
    pub run_id: String,
    pub log: RunLog,
    pub stat_cache: StatCache,
    /// The pin file of the records and objects this run uses, which a concurrent `gc` keeps.
    pub pins: RunPins,
}

/// Final state of a node in a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A valid record existed; nothing ran.
    Cached,
    /// Another process computed the same key while this one waited for its lock.
    Shared,
    /// The stage ran and its outputs were committed.
    Ran,
    Failed,
    /// Not started because an upstream node failed, or the run stopped after a failure.
    Skipped,
    Cancelled,
}

#[derive(Clone, Debug, Serialize)]
pub struct NodeResult {
    pub outcome: Outcome,
    pub key: Option<Digest>,
    pub outputs: BTreeMap<String, Digest>,
    pub seconds: f64,
    pub error: Option<String>,
}

impl NodeResult {
    fn not_run(outcome: Outcome, error: Option<String>) -> NodeResult {
        NodeResult { outcome, key: None, outputs: BTreeMap::new(), seconds: 0.0, error }
    }
}

#[derive(Debug, Serialize)]
pub struct RunSummary {
    pub run_id: String,
    pub workflow: String,
    pub seconds: f64,
    /// One entry per node, in plan order.
    pub nodes: Vec<(String, NodeResult)>,
}

impl RunSummary {
    pub fn succeeded(&self) -> bool {
        self.nodes.iter().all(|(_, r)| matches!(r.outcome, Outcome::Cached | Outcome::Shared | Outcome::Ran))
    }

    pub fn count(&self, outcome: Outcome) -> usize {
        self.nodes.iter().filter(|(_, r)| r.outcome == outcome).count()
    }

    pub fn result(&self, node: &str) -> Option<&NodeResult> {
        self.nodes.iter().find(|(n, _)| n == node).map(|(_, r)| r)
    }
}

/// Returns a new run id: UTC time plus process id, sortable by start time.
pub fn new_run_id() -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    format!("{}-{:06}-{}", now.as_secs(), now.subsec_micros(), std::process::id())
}

/// Runs every node of `plan` against `store`.
pub fn run(plan: &Plan, store: &Store, options: &RunOptions) -> std::io::Result<RunSummary> {
    let run_id = new_run_id();
    let run_dir = store.run_dir(&run_id);
    std::fs::create_dir_all(&run_dir)?;
    let pins = {
        let section = StoreLock::shared(store)?;
        RunPins::create(&run_dir, &section)?
    };
    store.clean_stale_staging();
    let ctx = RunContext {
        store,
        options,
        workflow: plan.name.clone(),
        run_id: run_id.clone(),
        log: RunLog::create(&run_dir.join("log.jsonl"))?,
        stat_cache: store.stat_cache(),
        pins,
    };
    let plan_json = json!({
        "workflow": plan.name,
        "file": plan.file,
        "nodes": plan.nodes.iter().map(|n| json!({"name": n.name, "stage": n.stage.descriptor.name, "params": n.params})).collect::<Vec<_>>(),
    });
    crate::store::write_atomic(&run_dir.join("plan.json"), &serde_json::to_vec_pretty(&plan_json)?)?;
    ctx.log.event("run-start", json!({"workflow": plan.name, "nodes": plan.nodes.len(), "jobs": options.jobs}));

    let started = std::time::Instant::now();
    let results = schedule(plan, &ctx);
    let _ = ctx.stat_cache.save();

    let summary = RunSummary {
        run_id,
        workflow: plan.name.clone(),
        seconds: started.elapsed().as_secs_f64(),
        nodes: plan.nodes.iter().map(|n| n.name.clone()).zip(results).collect(),
    };
    ctx.log.event("run-finish", json!({"seconds": summary.seconds, "succeeded": summary.succeeded()}));
    crate::store::write_atomic(&run_dir.join("summary.json"), &serde_json::to_vec_pretty(&summary)?)?;
    Ok(summary)
}

fn schedule(plan: &Plan, ctx: &RunContext) -> Vec<NodeResult> {
    let n = plan.nodes.len();
    let dependents = plan.dependents();
    let mut pending: Vec<usize> = plan.nodes.iter().map(|node| node.deps.len()).collect();
    // Nodes whose inputs all exist, by plan position, so starts follow topological order.
    let mut ready: std::collections::BTreeSet<usize> = (0..n).filter(|&i| pending[i] == 0).collect();
    let mut results: Vec<Option<NodeResult>> = vec![None; n];
    let mut running = 0usize;
    let mut gpu_busy = false;
    let mut stopping = false;
    let jobs = ctx.options.jobs.max(1);

    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::channel::<(usize, NodeResult)>();
        loop {
            if ctx.options.cancel.is_cancelled() {
                stopping = true;
            }
            while !stopping && running < jobs {
                let next = ready.iter().copied().find(|&i| !(gpu_busy && plan.nodes[i].stage.descriptor.resources.gpu));
                let Some(i) = next else { break };
                ready.remove(&i);
                let node = &plan.nodes[i];
                let upstream: BTreeMap<usize, BTreeMap<String, Digest>> =
                    node.deps.iter().map(|&d| (d, results[d].as_ref().expect("dep done").outputs.clone())).collect();
                running += 1;
                gpu_busy |= node.stage.descriptor.resources.gpu;
                let tx = tx.clone();
                scope.spawn(move || {
                    let lookup = |dep: usize, port: &str| upstream.get(&dep).and_then(|o| o.get(port)).copied();
                    let result = node::execute(ctx, node, &lookup);
                    let _ = tx.send((i, result));
                });
            }
            if running == 0 {
                break;
            }
            let (i, result) = match rx.recv_timeout(std::time::Duration::from_millis(100)) {
                Ok(message) => message,
                Err(mpsc::RecvTimeoutError::Timeout) => continue,
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            };
            running -= 1;
            if plan.nodes[i].stage.descriptor.resources.gpu {
                gpu_busy = false;
            }
            report(ctx, &plan.nodes[i].name, &result);
            if result.outcome == Outcome::Ran {
                crate::fault::point("between-nodes");
            }
            if succeeded(&result) {
                for &j in &dependents[i] {
                    pending[j] -= 1;
                    if pending[j] == 0 {
                        ready.insert(j);
                    }
                }
            } else if result.outcome == Outcome::Failed {
                for (j, below) in plan.descendants(&[i]).into_iter().enumerate() {
                    if below && j != i && results[j].is_none() {
                        results[j] = Some(NodeResult::not_run(Outcome::Skipped, Some(format!("upstream node `{}` failed", plan.nodes[i].name))));
                    }
                }
                if !ctx.options.keep_going {
                    stopping = true;
                }
            }
            results[i] = Some(result);
        }
    });

    let cancelled = ctx.options.cancel.is_cancelled();
    results
        .into_iter()
        .map(|r| {
            r.unwrap_or_else(|| {
                if cancelled {
                    NodeResult::not_run(Outcome::Cancelled, None)
                } else {
                    NodeResult::not_run(Outcome::Skipped, Some("not started because another node failed (use --keep-going to run the other branches)".into()))
                }
            })
        })
        .collect()
}

fn succeeded(result: &NodeResult) -> bool {
    matches!(result.outcome, Outcome::Cached | Outcome::Shared | Outcome::Ran)
}

fn report(ctx: &RunContext, node: &str, result: &NodeResult) {
    let key = result.key.map(|k| k.short()).unwrap_or_default();
    match result.outcome {
        Outcome::Cached => tracing::debug!(node, "cached ({key})"),
        Outcome::Shared => tracing::info!(node, "computed by another process ({key})"),
        Outcome::Ran => tracing::info!(node, "done in {:.2} s ({key})", result.seconds),
        Outcome::Failed => tracing::error!(node, "failed: {}", result.error.as_deref().unwrap_or("unknown error")),
        Outcome::Cancelled => tracing::warn!(node, "cancelled; nothing committed"),
        Outcome::Skipped => {}
    }
    ctx.log.event("node", json!({"node": node, "outcome": result.outcome, "key": result.key, "seconds": result.seconds, "error": result.error}));
}
