//! Stage descriptors: what a stage is called, what it reads and writes, and what it accepts.
//!
//! [`StageDescriptor`] is built with a small builder API by built-in stages and sent as JSON by
//! plugins. The runner validates workflows against it: port names and artifact kinds, parameter
//! names, types and choices, and fills in parameter defaults.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The full description of a stage.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StageDescriptor {
    /// Name used in workflows (`stage: NAME`), lowercase words joined by `-`.
    pub name: String,
    /// Implementation version. Part of every node key, so bump it when outputs change.
    pub version: String,
    /// One-line summary shown by `flywheel stages`.
    #[serde(default)]
    pub summary: String,
    #[serde(default)]
    pub inputs: Vec<PortSpec>,
    #[serde(default)]
    pub outputs: Vec<PortSpec>,
    #[serde(default)]
    pub params: Vec<ParamSpec>,
    #[serde(default)]
    pub resources: Resources,
}

impl StageDescriptor {
    pub fn new(name: impl Into<String>, version: impl Into<String>) -> Self {
        StageDescriptor {
            name: name.into(),
            version: version.into(),
            summary: String::new(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            params: Vec::new(),
            resources: Resources::default(),
        }
    }

    pub fn summary(mut self, summary: impl Into<String>) -> Self {
        self.summary = summary.into();
        self
    }

    pub fn input(mut self, port: PortSpec) -> Self {
        self.inputs.push(port);
        self
    }

    pub fn output(mut self, port: PortSpec) -> Self {
        self.outputs.push(port);
        self
    }

    pub fn param(mut self, param: ParamSpec) -> Self {
        self.params.push(param);
        self
    }

    /// Marks the stage as one that computes on the GPU, so the runner never runs two such
    /// stages at once on one device.
    pub fn uses_gpu(mut self) -> Self {
        self.resources.gpu = true;
        self
    }

    pub fn input_port(&self, name: &str) -> Option<&PortSpec> {
        self.inputs.iter().find(|p| p.name == name)
    }

    pub fn output_port(&self, name: &str) -> Option<&PortSpec> {
        self.outputs.iter().find(|p| p.name == name)
    }

    pub fn param_spec(&self, name: &str) -> Option<&ParamSpec> {
        self.params.iter().find(|p| p.name == name)
    }
}

/// An input or output port: a name and the artifact kind it carries (`corpus`, `model`, ...).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PortSpec {
    pub name: String,
    pub kind: String,
    #[serde(default)]
    pub doc: String,
    /// Only for inputs: the workflow may leave this port unconnected.
    #[serde(default)]
    pub optional: bool,
}

impl PortSpec {
    pub fn new(name: impl Into<String>, kind: impl Into<String>) -> Self {
        PortSpec { name: name.into(), kind: kind.into(), doc: String::new(), optional: false }
    }

    pub fn doc(mut self, doc: impl Into<String>) -> Self {
        self.doc = doc.into();
        self
    }

    pub fn optional(mut self) -> Self {
        self.optional = true;
        self
    }
}

/// The type of a parameter value, checked by the runner before any stage runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParamType {
    Bool,
    /// A signed 64-bit integer.
    Int,
    /// A 64-bit float; integers are accepted and widened.
    Float,
    String,
    /// A list of strings.
    StringList,
    /// Any JSON value; the stage validates it.
    Json,
}

impl ParamType {
    /// Name used in error messages and `flywheel stages`.
    pub fn name(self) -> &'static str {
        match self {
            ParamType::Bool => "bool",
            ParamType::Int => "int",
            ParamType::Float => "float",
            ParamType::String => "string",
            ParamType::StringList => "list of strings",
            ParamType::Json => "any value",
        }
    }

    /// Checks `value` against the type, widening an integer to a float where the type is float.
    /// Returns the normalized value, or `None` when the value has the wrong type.
    pub fn check(self, value: &Value) -> Option<Value> {
        match (self, value) {
            (ParamType::Bool, Value::Bool(_)) => Some(value.clone()),
            (ParamType::Int, Value::Number(n)) if n.is_i64() => Some(value.clone()),
            (ParamType::Float, Value::Number(n)) => n.as_f64().map(Value::from),
            (ParamType::String, Value::String(_)) => Some(value.clone()),
            (ParamType::StringList, Value::Array(items)) if items.iter().all(Value::is_string) => {
                Some(value.clone())
            }
            (ParamType::Json, _) => Some(value.clone()),
            _ => None,
        }
    }
}

/// A parameter a stage accepts. A parameter without a default is required.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ParamSpec {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: ParamType,
    #[serde(default)]
    pub default: Option<Value>,
    #[serde(default)]
    pub doc: String,
    /// For string params: the only accepted values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub choices: Vec<String>,
}

impl ParamSpec {
    pub fn new(name: impl Into<String>, ty: ParamType) -> Self {
        ParamSpec { name: name.into(), ty, default: None, doc: String::new(), choices: Vec::new() }
    }

    pub fn default(mut self, value: impl Into<Value>) -> Self {
        self.default = Some(value.into());
        self
    }

    pub fn doc(mut self, doc: impl Into<String>) -> Self {
        self.doc = doc.into();
        self
    }

    pub fn choices(mut self, choices: &[&str]) -> Self {
        self.choices = choices.iter().map(|c| c.to_string()).collect();
        self
    }

    pub fn is_required(&self) -> bool {
        self.default.is_none()
    }
}

/// Machine resources a stage needs besides CPU time.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resources {
    /// The stage computes on the GPU; two such stages never overlap on one device.
    #[serde(default)]
    pub gpu: bool,
}
