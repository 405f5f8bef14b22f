//! [`ActionRecord`]: what one node computation produced, stored under its key.
//!
//! Records live at `actions/<first 2 hex>/<other 62 hex>.json` and are written last, after
//! every output object is committed. A record whose objects are missing or corrupt counts as
//! a cache miss.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::digest::Digest;
use crate::key::KeyParts;

/// Version of the record format.
pub const RECORD_SCHEMA: u32 = 1;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActionRecord {
    pub schema: u32,
    pub key: Digest,
    pub parts: KeyParts,
    /// Node and workflow that first computed this key (another workflow may reuse it).
    pub node: String,
    pub workflow: String,
    pub outputs: BTreeMap<String, Digest>,
    #[serde(default)]
    pub metrics: Map<String, Value>,
    pub provenance: Provenance,
}

/// Where and how a record was computed. Not part of the key.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    pub run_id: String,
    /// Start time, seconds since the Unix epoch.
    pub started: f64,
    pub seconds: f64,
    pub host: String,
    pub flywheel_version: String,
    pub device: String,
    pub threads: usize,
    /// Run log with this node's lines, relative to the store root.
    pub log: String,
}
