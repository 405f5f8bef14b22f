//! `--set node.param=value`, `--set defaults.param=value` and `--set vars.NAME=value`
//! command-line overrides.

use serde_json::Value;

/// One parsed `--set`.
#[derive(Clone, Debug, PartialEq)]
pub struct Override {
    /// Node name, `defaults` for a workflow default, or `vars` for a workflow var.
    pub target: String,
    pub name: String,
    /// The value, read as a YAML scalar: `0.01` is a float, `true` a bool, `abc` a string.
    pub value: Value,
    /// The original `node.param=value` text, for messages.
    pub text: String,
}

/// Why a `--set` could not be parsed.
#[derive(Debug, thiserror::Error)]
#[error("invalid --set `{text}`: {reason}; expected NODE.PARAM=VALUE, defaults.PARAM=VALUE or vars.NAME=VALUE")]
pub struct InvalidOverride {
    pub text: String,
    pub reason: String,
}

impl std::str::FromStr for Override {
    type Err = InvalidOverride;

    fn from_str(text: &str) -> Result<Override, InvalidOverride> {
        let invalid = |reason: &str| InvalidOverride { text: text.to_string(), reason: reason.to_string() };
        let (path, raw_value) = text.split_once('=').ok_or_else(|| invalid("no `=`"))?;
        let (target, name) = path.split_once('.').ok_or_else(|| invalid("no `.` between node and param"))?;
        if target.is_empty() || name.is_empty() {
            return Err(invalid("empty node or param name"));
        }
        let value = if raw_value.trim().is_empty() {
            Value::String(String::new())
        } else {
            serde_saphyr::from_str_with_options::<Value>(raw_value, super::raw::yaml_options()).map_err(|e| invalid(&format!("value is not valid YAML ({})", e.without_snippet())))?
        };
        if matches!(value, Value::Object(_)) {
            return Err(invalid("the value must be a scalar or a list"));
        }
        Ok(Override { target: target.to_string(), name: name.to_string(), value, text: text.to_string() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn override_values_are_typed_like_yaml() {
        let cases = [("a.lr=0.01", json!(0.01)), ("a.n=3", json!(3)), ("a.on=true", json!(true)), ("a.s=hello", json!("hello")), ("a.s=no", json!("no"))];
        for (text, expected) in cases {
            let o: Override = text.parse().unwrap();
            assert_eq!(o.value, expected, "{text}");
        }
    }

    #[test]
    fn override_without_dot_is_rejected() {
        let err = "lr=0.1".parse::<Override>().unwrap_err();
        assert!(err.to_string().contains("no `.`"), "{err}");
    }
}
