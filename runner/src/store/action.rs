//! [`ActionRecord`]: what one node computation produced, stored under its key.
//!
//! Records live at `actions/<first 2 hex>/<other 62 hex>.json` and are written last, after
//! every output object is committed. A record whose objects are missing or corrupt counts as
//! a cache miss. The file carries a checksum ([`CHECKSUM_FIELD`]) over its other fields, so a
//! record damaged on disk (truncated, a flipped bit, an edited metric) is a miss too, not a
//! trusted result.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::canonical;
use crate::digest::Digest;
use crate::key::KeyParts;

/// Field of a record file that contains `b3:<hex>`, the blake3 of the canonical JSON of every
/// other field. It is added on write and checked on read, and [`ActionRecord`] does not carry it.
pub const CHECKSUM_FIELD: &str = "checksum";

/// A record file that exists but cannot be trusted.
#[derive(Debug, thiserror::Error)]
#[error("action record {path} is unusable: {reason}")]
pub struct RecordError {
    pub path: PathBuf,
    pub reason: String,
}

/// Version of the record format. Version 2 added [`CHECKSUM_FIELD`]; records of version 1
/// have none, so they are misses and their nodes run again once.
pub const RECORD_SCHEMA: u32 = 2;

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

/// Serializes a record for its file, with its checksum.
pub(super) fn encode(record: &ActionRecord) -> Vec<u8> {
    let mut value = serde_json::to_value(record).expect("record serializes");
    let checksum = Digest::of_bytes(&canonical::to_vec(&value));
    value.as_object_mut().expect("a record is a JSON object").insert(CHECKSUM_FIELD.to_string(), checksum.to_string().into());
    serde_json::to_vec_pretty(&value).expect("record serializes")
}

/// Parses a record file and checks its checksum and that it belongs to `key`.
pub(super) fn decode(bytes: &[u8], key: &Digest) -> Result<ActionRecord, String> {
    let mut value: Value = serde_json::from_slice(bytes).map_err(|e| format!("invalid JSON ({e})"))?;
    let object = value.as_object_mut().ok_or("not a JSON object")?;
    let stored = match object.remove(CHECKSUM_FIELD) {
        Some(Value::String(text)) => text,
        Some(_) => return Err(format!("`{CHECKSUM_FIELD}` is not a string")),
        None => return Err(format!("no `{CHECKSUM_FIELD}` field (written by an older flywheel or damaged)")),
    };
    let actual = Digest::of_bytes(&canonical::to_vec(&value));
    if stored != actual.to_string() {
        return Err(format!("its content does not match its checksum (stored {stored}, computed {actual})"));
    }
    let record: ActionRecord = serde_json::from_value(value).map_err(|e| format!("invalid record ({e})"))?;
    if record.key != *key || record.parts.key() != *key {
        return Err(format!("it describes key {}, not the key {} of its file name", record.parts.key(), key));
    }
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::{KEY_SCHEMA, KeyParts};

    fn record() -> ActionRecord {
        let parts = KeyParts {
            schema: KEY_SCHEMA,
            stage: "fixture".into(),
            fingerprint: "builtin:1".into(),
            params: Map::new(),
            inputs: BTreeMap::new(),
        };
        ActionRecord {
            schema: RECORD_SCHEMA,
            key: parts.key(),
            parts,
            node: "a".into(),
            workflow: "wf".into(),
            outputs: BTreeMap::from([("out".to_string(), Digest::of_bytes(b"object"))]),
            metrics: Map::from_iter([("loss".to_string(), Value::from(0.25))]),
            provenance: Provenance {
                run_id: "1-2-3".into(),
                started: 1.5,
                seconds: 0.1,
                host: "host".into(),
                flywheel_version: "0.1.0".into(),
                device: "cpu".into(),
                threads: 2,
                log: "runs/1-2-3/log.jsonl".into(),
            },
        }
    }

    #[test]
    fn record_round_trips_with_checksum() {
        let record = record();
        assert_eq!(decode(&encode(&record), &record.key).unwrap(), record);
    }

    #[test]
    fn edited_record_fails_checksum() {
        let record = record();
        let text = String::from_utf8(encode(&record)).unwrap().replace("0.25", "0.5");
        let error = decode(text.as_bytes(), &record.key).unwrap_err();
        assert!(error.starts_with("its content does not match its checksum"), "{error}");
    }
}
