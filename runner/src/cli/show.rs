//! `flywheel show`: a node's or an artifact's lineage, metrics and timings.

use std::collections::HashMap;
use std::process::ExitCode;

use miette::{IntoDiagnostic, Result};

use super::StoreArgs;
use crate::digest::Digest;
use crate::store::{ActionRecord, Store};

#[derive(clap::Args)]
pub struct ShowArgs {
    /// A node name, or an artifact id or key (`b3:…`, or at least 6 leading hex digits).
    pub target: String,
    #[command(flatten)]
    pub store: StoreArgs,
    /// How many levels of upstream lineage to print.
    #[arg(long, default_value_t = 8)]
    pub depth: usize,
}

/// Every record, and which records produced each object. Nodes whose outputs are
/// byte-identical share one object, so an object can have several producers.
struct Index {
    records: HashMap<Digest, ActionRecord>,
    producers: HashMap<Digest, Vec<Digest>>,
}

impl Index {
    /// Returns the records that produced object `id`, sorted by node name.
    fn producers_of(&self, id: &Digest) -> Vec<&ActionRecord> {
        let mut found: Vec<&ActionRecord> = self.producers.get(id).into_iter().flatten().filter_map(|key| self.records.get(key)).collect();
        found.sort_by(|a, b| a.node.cmp(&b.node).then(a.key.cmp(&b.key)));
        found
    }
}

/// Returns ", also produced by node A, B" for the producers after the first, or nothing.
fn also_produced_by(producers: &[&ActionRecord]) -> String {
    let mut others: Vec<&str> = producers.iter().skip(1).map(|r| r.node.as_str()).collect();
    others.dedup();
    if others.is_empty() { String::new() } else { format!(" (the same artifact also comes from node {})", others.join(", ")) }
}

fn index(store: &Store) -> Result<Index> {
    let mut records = HashMap::new();
    let mut producers: HashMap<Digest, Vec<Digest>> = HashMap::new();
    for key in store.list_records().into_diagnostic()? {
        if let Some(record) = store.read_record(&key) {
            for id in record.outputs.values() {
                producers.entry(*id).or_default().push(key);
            }
            records.insert(key, record);
        }
    }
    Ok(Index { records, producers })
}

pub fn show(args: ShowArgs) -> Result<ExitCode> {
    let store = args.store.open()?;
    let index = index(&store)?;
    let hex = args.target.strip_prefix("b3:").unwrap_or(&args.target);
    let looks_like_digest = hex.len() >= 6 && hex.chars().all(|c| c.is_ascii_hexdigit());

    if looks_like_digest {
        let matches: Vec<Digest> = store
            .objects
            .list()
            .into_diagnostic()?
            .into_iter()
            .chain(index.records.keys().copied())
            .filter(|d| d.to_hex().starts_with(hex))
            .collect();
        match matches.as_slice() {
            [id] if index.records.contains_key(id) => print_record(&store, &index, &index.records[id], 0, args.depth),
            [id] => print_artifact(&store, &index, id, args.depth)?,
            [] => miette::bail!("no artifact or key starts with `{hex}`"),
            _ => miette::bail!("`{hex}` matches {} artifacts or keys; give more digits", matches.len()),
        }
        return Ok(ExitCode::SUCCESS);
    }

    let workflow = match &args.store.workflow {
        Some(file) => super::load_plan(&super::WorkflowArgs { workflow: file.clone(), set: Vec::new(), store: None }).map(|p| p.name),
        None => None,
    };
    let mut found = Vec::new();
    for name in store.ref_workflows().into_diagnostic()? {
        if workflow.as_ref().is_some_and(|w| w != &name) {
            continue;
        }
        if let Some(node_ref) = store.read_ref(&name, &args.target) {
            found.push((name, node_ref));
        }
    }
    if found.is_empty() {
        miette::bail!("no results for a node named `{}` in this store; run the workflow first, or give an artifact id", args.target);
    }
    for (name, node_ref) in found {
        println!("workflow {name}, run {}", node_ref.run_id);
        match index.records.get(&node_ref.key) {
            Some(record) => print_record(&store, &index, record, 0, args.depth),
            None => println!("  its latest key {} has no record (failed or collected)", node_ref.key.short()),
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_record(store: &Store, index: &Index, record: &ActionRecord, depth: usize, max_depth: usize) {
    let pad = "  ".repeat(depth);
    let p = &record.provenance;
    println!("{pad}node {} (stage {} {}) key {}", record.node, record.parts.stage, record.parts.fingerprint, record.key.short());
    if depth == 0 {
        println!("{pad}  params: {}", serde_json::to_string(&record.parts.params).unwrap_or_default());
        if !record.metrics.is_empty() {
            println!("{pad}  metrics: {}", serde_json::to_string(&record.metrics).unwrap_or_default());
        }
        println!("{pad}  took {:.2} s on {} (device {}, {} threads), flywheel {}, log {}", p.seconds, p.host, p.device, p.threads, p.flywheel_version, p.log);
        for (port, id) in &record.outputs {
            let size = store.objects.read_manifest(id).map(|m| format!("{}, {} bytes", m.kind, m.total_size())).unwrap_or_else(|_| "missing".into());
            println!("{pad}  output {port}: {} ({size}) in {}", id.short(), store.objects.data_dir(id).display());
        }
    }
    for (port, id) in &record.parts.inputs {
        let producers = index.producers_of(id);
        let also = also_produced_by(&producers);
        match producers.first() {
            Some(upstream) if depth < max_depth => {
                println!("{pad}  input {port}: {} from{also}", id.short());
                print_record(store, index, upstream, depth + 2, max_depth);
            }
            Some(upstream) => println!("{pad}  input {port}: {} from node {}{also} …", id.short(), upstream.node),
            None => {
                let files = store.objects.read_manifest(id).map(|m| m.files.iter().map(|f| f.path.clone()).collect::<Vec<_>>().join(", ")).unwrap_or_default();
                println!("{pad}  input {port}: {} (external: {files})", id.short());
            }
        }
    }
}

fn print_artifact(store: &Store, index: &Index, id: &Digest, depth: usize) -> Result<()> {
    let manifest = store.objects.read_manifest(id).into_diagnostic()?;
    println!("artifact {id}");
    println!("  kind {}, {} files, {} bytes", manifest.kind, manifest.files.len(), manifest.total_size());
    for file in manifest.files.iter().take(20) {
        println!("    {} ({} bytes)", file.path, file.size);
    }
    if manifest.files.len() > 20 {
        println!("    … {} more", manifest.files.len() - 20);
    }
    println!("  stored at {}", store.objects.data_dir(id).display());
    let producers = index.producers_of(id);
    match producers.first() {
        Some(record) => {
            println!("  produced by{}:", also_produced_by(&producers));
            print_record(store, index, record, 1, depth);
        }
        None => println!("  imported from an external file"),
    }
    let consumers: Vec<&str> = index.records.values().filter(|r| r.parts.inputs.values().any(|i| i == id)).map(|r| r.node.as_str()).collect();
    if !consumers.is_empty() {
        println!("  read by: {}", consumers.join(", "));
    }
    Ok(())
}
