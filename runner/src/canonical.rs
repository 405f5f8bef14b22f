//! Canonical JSON: object keys sorted, no white space, so equal values always give equal bytes
//! and so equal digests. Used for artifact manifests and node keys.

use serde_json::{Map, Value};

/// Returns `value` with every object's keys sorted, recursively.
pub fn sorted(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let mut out = Map::new();
            for key in keys {
                out.insert(key.clone(), sorted(&map[key]));
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

/// Serializes `value` canonically.
pub fn to_vec(value: &Value) -> Vec<u8> {
    serde_json::to_vec(&sorted(value)).expect("a JSON value always serializes")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_bytes_ignore_key_order() {
        let a = json!({"b": 1, "a": {"y": [1, {"q": 2, "p": 3}], "x": null}});
        let b = json!({"a": {"x": null, "y": [1, {"p": 3, "q": 2}]}, "b": 1});
        assert_eq!(to_vec(&a), to_vec(&b));
        assert_eq!(String::from_utf8(to_vec(&a)).unwrap(), r#"{"a":{"x":null,"y":[1,{"p":3,"q":2}]},"b":1}"#);
    }
}
