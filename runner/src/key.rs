//! Node keys: the cache identity of one node's computation.
//!
//! A key is the blake3 of the canonical JSON of [`KeyParts`]: the key schema version, the stage
//! name, the stage's implementation fingerprint, the resolved params and the input artifact
//! ids by port. Inputs are artifact ids, not upstream keys, so an upstream node that re-runs
//! and writes identical bytes leaves its descendants' keys unchanged (early cutoff). Device and
//! thread count are provenance, not key parts.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::canonical;
use crate::digest::Digest;

/// Version of the key encoding. Bumping it invalidates every cached result.
pub const KEY_SCHEMA: u32 = 1;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KeyParts {
    pub schema: u32,
    pub stage: String,
    /// The stage's version for built-ins, the library's blake3 for dynamic plugins, the command
    /// and its declared files for subprocess plugins.
    pub fingerprint: String,
    pub params: Map<String, Value>,
    pub inputs: BTreeMap<String, Digest>,
}

impl KeyParts {
    pub fn key(&self) -> Digest {
        Digest::of_bytes(&canonical::to_vec(&serde_json::to_value(self).expect("key parts serialize")))
    }

    /// Lists what differs from `old`, one line per part, for `flywheel status`.
    pub fn diff(&self, old: &KeyParts) -> Vec<String> {
        let mut changes = Vec::new();
        if self.schema != old.schema {
            changes.push(format!("key schema {} -> {}", old.schema, self.schema));
        }
        if self.stage != old.stage {
            changes.push(format!("stage `{}` -> `{}`", old.stage, self.stage));
        } else if self.fingerprint != old.fingerprint {
            changes.push(format!("stage version {} -> {}", old.fingerprint, self.fingerprint));
        }
        let names: std::collections::BTreeSet<&String> = self.params.keys().chain(old.params.keys()).collect();
        for name in names {
            match (old.params.get(name), self.params.get(name)) {
                (Some(a), Some(b)) if canonical::sorted(a) == canonical::sorted(b) => {}
                (Some(a), Some(b)) => changes.push(format!("param `{name}`: {a} -> {b}")),
                (None, Some(b)) => changes.push(format!("param `{name}` added: {b}")),
                (Some(a), None) => changes.push(format!("param `{name}` removed (was {a})")),
                (None, None) => {}
            }
        }
        let ports: std::collections::BTreeSet<&String> = self.inputs.keys().chain(old.inputs.keys()).collect();
        for port in ports {
            match (old.inputs.get(port), self.inputs.get(port)) {
                (Some(a), Some(b)) if a == b => {}
                (Some(a), Some(b)) => changes.push(format!("input `{port}`: {} -> {}", a.short(), b.short())),
                (None, Some(_)) => changes.push(format!("input `{port}` connected")),
                (Some(_), None) => changes.push(format!("input `{port}` disconnected")),
                (None, None) => {}
            }
        }
        changes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parts() -> KeyParts {
        let mut params = Map::new();
        params.insert("lr".into(), json!(0.001));
        params.insert("layers".into(), json!(4));
        let mut inputs = BTreeMap::new();
        inputs.insert("corpus".into(), Digest::of_bytes(b"corpus"));
        KeyParts { schema: KEY_SCHEMA, stage: "pretrain-mlm".into(), fingerprint: "1".into(), params, inputs }
    }

    #[test]
    fn key_changes_with_schema() {
        let mut p = parts();
        p.schema += 1;
        assert_ne!(p.key(), parts().key());
    }

    #[test]
    fn key_changes_with_stage_name() {
        let mut p = parts();
        p.stage = "finetune".into();
        assert_ne!(p.key(), parts().key());
    }

    #[test]
    fn key_changes_with_fingerprint() {
        let mut p = parts();
        p.fingerprint = "2".into();
        assert_ne!(p.key(), parts().key());
    }

    #[test]
    fn key_changes_with_param_value() {
        let mut p = parts();
        p.params.insert("lr".into(), json!(0.002));
        assert_ne!(p.key(), parts().key());
    }

    #[test]
    fn key_changes_with_added_param() {
        let mut p = parts();
        p.params.insert("warmup".into(), json!(10));
        assert_ne!(p.key(), parts().key());
    }

    #[test]
    fn key_changes_with_input_artifact() {
        let mut p = parts();
        p.inputs.insert("corpus".into(), Digest::of_bytes(b"other corpus"));
        assert_ne!(p.key(), parts().key());
    }

    #[test]
    fn key_changes_with_input_port_name() {
        let mut p = parts();
        let id = p.inputs.remove("corpus").unwrap();
        p.inputs.insert("text".into(), id);
        assert_ne!(p.key(), parts().key());
    }

    #[test]
    fn key_ignores_param_order() {
        let mut p = parts();
        let mut reordered = Map::new();
        for (k, v) in p.params.iter().rev() {
            reordered.insert(k.clone(), v.clone());
        }
        p.params = reordered;
        assert_eq!(p.key(), parts().key());
    }

    #[test]
    fn diff_names_changed_param_and_input() {
        let mut p = parts();
        p.params.insert("lr".into(), json!(0.01));
        p.inputs.insert("corpus".into(), Digest::of_bytes(b"x"));
        let diff = p.diff(&parts());
        assert_eq!(diff.len(), 2);
        assert!(diff[0].starts_with("param `lr`: 0.001 -> 0.01"), "{diff:?}");
        assert!(diff[1].starts_with("input `corpus`:"), "{diff:?}");
    }
}
