//! Phase one of workflow parsing: the YAML as written, with source positions, and no checks
//! beyond YAML syntax and field shapes.
//!
//! ```yaml
//! name: demo                 # optional; defaults to the file stem
//! vars:                      # optional; `${data}` in paths and string params
//!   data: ../examples/data
//! defaults:                  # optional; a param value for every node whose stage has it
//!   seed: 13
//! nodes:
//!   docs:
//!     stage: import-corpus
//!     inputs:
//!       file: {path: "${data}/docs.tsv"}   # an external file or directory
//!   stats:
//!     stage: corpus-stats
//!     inputs:
//!       corpus: docs.corpus               # output port `corpus` of node `docs`
//!     params:
//!       top: 20
//! plugins:                   # optional; stages from outside flywheel, usable by name
//!   - library: ../target/release/libflywheel_bm25_stage.so
//!   - command: [python3, ../examples/trec-run-stage/trec_run.py]
//!     files: [../examples/trec-run-stage/trec_run.py]   # hashed into the fingerprint
//!     timeout_s: 120
//! ```

use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{MapAccess, Visitor};
use serde_json::Value;
use serde_saphyr::Spanned;

/// A YAML mapping kept as written: in order, duplicates included, each key with its position.
#[derive(Debug)]
pub struct Entries<V>(pub Vec<(Spanned<String>, V)>);

impl<V> Default for Entries<V> {
    fn default() -> Self {
        Entries(Vec::new())
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Entries<V> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntriesVisitor<V>(PhantomData<V>);

        impl<'de, V: Deserialize<'de>> Visitor<'de> for EntriesVisitor<V> {
            type Value = Entries<V>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::new();
                while let Some(key) = map.next_key::<Spanned<String>>()? {
                    let value = map.next_value::<V>()?;
                    entries.push((key, value));
                }
                Ok(Entries(entries))
            }

            fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
                Ok(Entries(Vec::new()))
            }
        }

        deserializer.deserialize_map(EntriesVisitor(PhantomData))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWorkflow {
    pub name: Option<Spanned<String>>,
    pub description: Option<String>,
    pub vars: Option<Entries<Spanned<Value>>>,
    pub defaults: Option<Entries<Spanned<Value>>>,
    pub nodes: Option<Spanned<Entries<RawNode>>>,
    pub plugins: Option<Vec<Spanned<RawPlugin>>>,
}

/// One entry of `plugins:`: a dynamic library, or a command with the files that make up its
/// implementation and an optional time limit per stage run.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPlugin {
    pub library: Option<Spanned<String>>,
    pub command: Option<Spanned<Vec<Spanned<String>>>>,
    pub files: Option<Vec<Spanned<String>>>,
    pub timeout_s: Option<Spanned<f64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNode {
    pub stage: Option<Spanned<String>>,
    pub description: Option<String>,
    pub inputs: Option<Entries<Spanned<Value>>>,
    pub params: Option<Entries<Spanned<Value>>>,
}

/// Limits that keep a hostile workflow file from exhausting memory: a size cap and the YAML
/// parser's alias-expansion budget (no "billion laughs").
pub const MAX_WORKFLOW_BYTES: usize = 16 * 1024 * 1024;

/// Maximum number of YAML nodes (scalars, sequences, mappings) after alias expansion.
/// `workflows/relevance.yaml`, with 41 workflow nodes, has about 670, so this leaves room for
/// workflows 100 times larger, and a document whose aliases expand exponentially stops here
/// instead of after billions of nodes.
pub const MAX_YAML_NODES: usize = 100_000;

/// Maximum number of alias uses (`*name`) in a workflow.
pub const MAX_YAML_ALIASES: usize = 10_000;

pub fn parse(text: &str) -> Result<Option<RawWorkflow>, serde_saphyr::Error> {
    serde_saphyr::from_str_with_options::<Option<RawWorkflow>>(text, yaml_options())
}

/// YAML options for workflow files and `--set` values: duplicate keys reach the validator
/// (which names both places), and only `true`/`false` are booleans, so `Y`, `no` or `on` stay
/// strings as in YAML 1.2.
pub fn yaml_options() -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_nodes = MAX_YAML_NODES;
    budget.max_aliases = MAX_YAML_ALIASES;
    serde_saphyr::options! {
        duplicate_keys: serde_saphyr::DuplicateKeyPolicy::PassThrough,
        strict_booleans: true,
        budget: Some(budget),
    }
}
