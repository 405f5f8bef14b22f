//! One struct per JSONL line of each relevance artifact kind. `docs/artifacts.md` is the
//! reference for these formats; keep the two in step.

use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};

use super::Record;

/// A line of `queries.jsonl` (kind `queries`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Query {
    pub qid: String,
    pub text: String,
}

/// A line of `docs.jsonl` (kind `corpus`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Document {
    pub id: String,
    pub text: String,
}

/// A line of `pairs.jsonl` (kind `pairs`): one (query, document) pair. Fields this crate does not
/// know, written by plugins, are kept in `extra` and written back unchanged.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pair {
    pub qid: String,
    pub query: String,
    pub docid: String,
    /// Human relevance grade, 0 or more.
    #[serde(default, skip_serializing_if = "Option::is_none", serialize_with = "optional_number")]
    pub grade: Option<f64>,
    /// Behaviour features by name; every value is a number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub features: Option<Map<String, Value>>,
    /// The teacher's predicted grade.
    #[serde(default, skip_serializing_if = "Option::is_none", serialize_with = "optional_number")]
    pub pseudo_label: Option<f64>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Pair {
    pub fn new(qid: &str, query: &str, docid: &str) -> Pair {
        Pair {
            qid: qid.to_string(),
            query: query.to_string(),
            docid: docid.to_string(),
            grade: None,
            features: None,
            pseudo_label: None,
            extra: Map::new(),
        }
    }

    /// Returns the value of feature `name`, `None` when it is absent, or an error message when
    /// it is not a number.
    pub fn feature(&self, name: &str) -> Result<Option<f64>, String> {
        let Some(value) = self.features.as_ref().and_then(|f| f.get(name)) else {
            return Ok(None);
        };
        value.as_f64().map(Some).ok_or_else(|| format!("feature `{name}` is {value}, expected a number"))
    }
}

/// A line of `scores.jsonl` (kind `scores`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Score {
    pub qid: String,
    pub docid: String,
    pub score: f64,
}

/// A line of `clicks.jsonl` (kind `click-log`): one document shown on one result page.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Impression {
    pub qid: String,
    pub docid: String,
    /// Rank at which the document was shown, 1 for the top.
    pub position: u32,
    /// 1 when the user clicked the document, else 0.
    pub click: u8,
    /// Seconds spent on the document after the click; 0 without a click.
    #[serde(serialize_with = "number")]
    pub dwell: f64,
    /// Optional fields; `session` groups the rows of one result page.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Impression {
    /// Returns the result page this row belongs to: its `session` field as text, or `None`
    /// when the row has no session.
    pub fn session(&self) -> Option<String> {
        match self.extra.get("session")? {
            Value::String(text) => Some(text.clone()),
            Value::Null => None,
            other => Some(other.to_string()),
        }
    }
}

impl Record for Query {
    const FILE: &'static str = "queries.jsonl";
    const SHAPE: &'static str = r#"{"qid": "…", "text": "…"}"#;
}

impl Record for Document {
    const FILE: &'static str = "docs.jsonl";
    const SHAPE: &'static str = r#"{"id": "…", "text": "…"}"#;
}

impl Record for Pair {
    const FILE: &'static str = "pairs.jsonl";
    const SHAPE: &'static str = r#"{"qid": "…", "query": "…", "docid": "…"} with optional "grade", "features", "pseudo_label""#;
}

impl Record for Score {
    const FILE: &'static str = "scores.jsonl";
    const SHAPE: &'static str = r#"{"qid": "…", "docid": "…", "score": number}"#;
}

impl Record for Impression {
    const FILE: &'static str = "clicks.jsonl";
    const SHAPE: &'static str = r#"{"qid": "…", "docid": "…", "position": 1, "click": 0 or 1, "dwell": seconds}"#;
}

/// Converts a float to a JSON number, written as an integer when it is a whole number (so a
/// grade of 2 reads `2`, not `2.0`). Non-finite values become `null`.
pub fn json_number(value: f64) -> Value {
    const EXACT: f64 = (1u64 << 53) as f64;
    if value.fract() == 0.0 && value.abs() < EXACT {
        Value::from(value as i64)
    } else {
        serde_json::Number::from_f64(value).map(Value::Number).unwrap_or(Value::Null)
    }
}

fn number<S: Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
    json_number(*value).serialize(serializer)
}

fn optional_number<S: Serializer>(value: &Option<f64>, serializer: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(v) => number(v, serializer),
        None => serializer.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pair_writes_whole_grades_as_integers() {
        let mut pair = Pair::new("q1", "what is bm25", "d7");
        pair.grade = Some(2.0);
        assert_eq!(serde_json::to_string(&pair).unwrap(), r#"{"qid":"q1","query":"what is bm25","docid":"d7","grade":2}"#);
        pair.grade = None;
        pair.pseudo_label = Some(1.25);
        assert_eq!(serde_json::to_string(&pair).unwrap(), r#"{"qid":"q1","query":"what is bm25","docid":"d7","pseudo_label":1.25}"#);
    }

    #[test]
    fn pair_keeps_unknown_fields() {
        let line = r#"{"qid":"1","query":"q","docid":"d","split":"train","grade":1}"#;
        let pair: Pair = serde_json::from_str(line).unwrap();
        assert_eq!(pair.extra["split"], "train");
        assert_eq!(serde_json::to_string(&pair).unwrap(), r#"{"qid":"1","query":"q","docid":"d","grade":1,"split":"train"}"#);
    }

    #[test]
    fn impression_session_reads_text_or_number() {
        let row: Impression = serde_json::from_str(r#"{"qid":"1","docid":"d","position":2,"click":1,"dwell":3.5,"session":17}"#).unwrap();
        assert_eq!(row.session().as_deref(), Some("17"));
        let row: Impression = serde_json::from_str(r#"{"qid":"1","docid":"d","position":2,"click":0,"dwell":0}"#).unwrap();
        assert_eq!(row.session(), None);
    }
}
