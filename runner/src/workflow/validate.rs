//! Phase two of workflow parsing: check a [`RawWorkflow`] against the stage registry and turn
//! it into a [`Plan`]. Every problem found is reported, each pointing at its line and column.

// Errors are built once per problem and carry their source snippet; boxing them buys nothing.
#![allow(clippy::result_large_err)]

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use flywheel_stage_api::ParamSpec;
use serde_json::{Map, Value};
use serde_saphyr::Spanned;

use super::diagnostic::{Pos, Source, WorkflowError, WorkflowErrors};
use super::overrides::Override;
use super::plan::{Plan, PlanInput, PlanNode};
use super::raw::{Entries, RawNode, RawPlugin, RawWorkflow};
use crate::registry::{Registry, RegisteredStage};

fn pos<T>(spanned: &Spanned<T>) -> Option<Pos> {
    Pos::from_location(&spanned.referenced)
}

/// Checks names used for nodes and workflows: they become file names in the store.
fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && !name.starts_with('-')
}

struct Validator<'a> {
    source: &'a Source,
    registry: &'a Registry,
    base_dir: PathBuf,
    vars: BTreeMap<String, String>,
    errors: Vec<WorkflowError>,
}

/// Validates `raw` and builds the plan.
pub fn validate(
    raw: RawWorkflow,
    source: &Source,
    registry: &Registry,
    overrides: &[Override],
) -> Result<Plan, WorkflowErrors> {
    let base_dir = source.path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut v = Validator { source, registry, base_dir, vars: BTreeMap::new(), errors: Vec::new() };

    let Some(nodes) = raw.nodes.as_ref().filter(|n| !n.value.0.is_empty()) else {
        let at = raw.nodes.as_ref().and_then(pos).unwrap_or(Pos::start());
        return Err(WorkflowError::at(source, Some(at), "empty workflow: no nodes", "nothing to run")
            .with_help("add a `nodes:` mapping with at least one node, e.g.\nnodes:\n  docs:\n    stage: import-corpus")
            .into());
    };

    let name = v.workflow_name(&raw);
    v.collect_vars(raw.vars.as_ref(), overrides);
    // Nodes resolve their stages against the built-ins plus the workflow's plugins.
    let with_plugins;
    let registry = match raw.plugins.as_deref() {
        Some(plugins) if !plugins.is_empty() => {
            with_plugins = v.load_plugins(plugins)?;
            &with_plugins
        }
        _ => registry,
    };
    let mut v = Validator { registry, ..v };
    let node_overrides = v.check_overrides(&nodes.value, overrides);

    // Node names first, so inputs can refer to nodes defined later in the file.
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (i, (key, _)) in nodes.value.0.iter().enumerate() {
        if !is_valid_name(&key.value) || key.value == "vars" || key.value == "defaults" {
            v.error(pos(key), format!("invalid node name `{}`", key.value), "invalid name", Some(
                "use letters, digits, `-` and `_` (not starting with `-`); `vars` and `defaults` are reserved".to_string(),
            ));
        }
        if let Some(&first) = index.get(key.value.as_str()) {
            let first_line = nodes.value.0[first].0.referenced.line();
            v.error(pos(key), format!("duplicate node `{}`", key.value), "defined again here", Some(
                format!("the first `{}` is at line {first_line}; rename one of them", key.value),
            ));
        } else {
            index.insert(&key.value, i);
        }
    }

    let stages: Vec<Option<&RegisteredStage>> =
        nodes.value.0.iter().map(|(key, node)| v.resolve_stage(key, node)).collect();
    v.check_defaults(raw.defaults.as_ref(), &stages);
    let default_overrides = v.check_default_overrides(overrides, &stages);

    let mut plan_nodes = Vec::new();
    for (i, (key, node)) in nodes.value.0.iter().enumerate() {
        if index.get(key.value.as_str()) != Some(&i) {
            continue;
        }
        let Some(stage) = stages[i] else { continue };
        let set: Vec<&Override> = node_overrides.iter().filter(|o| o.target == key.value).copied().collect();
        let params = v.resolve_params(key, node, stage, raw.defaults.as_ref(), &default_overrides, &set);
        let inputs = v.resolve_inputs(key, node, stage, &nodes.value, &index, &stages);
        plan_nodes.push(ResolvedNode { file_index: i, name: key.value.clone(), stage: stage.clone(), params, inputs, line: key.referenced.line() });
    }

    if !v.errors.is_empty() {
        return Err(WorkflowErrors(v.errors));
    }
    let order = v.topological_order(&nodes.value, &plan_nodes)?;
    Ok(build_plan(name, source, plan_nodes, order))
}

fn build_plan(
    name: String,
    source: &Source,
    plan_nodes: Vec<ResolvedNode>,
    order: Vec<usize>,
) -> Plan {
    // `order` lists positions in `plan_nodes`; map file index -> plan position.
    let file_to_plan: HashMap<usize, usize> =
        order.iter().enumerate().map(|(plan_pos, &p)| (plan_nodes[p].file_index, plan_pos)).collect();
    let mut slots: Vec<Option<_>> = plan_nodes.into_iter().map(Some).collect();
    let mut nodes = Vec::with_capacity(order.len());
    for &p in &order {
        let ResolvedNode { name, stage, params, inputs: raw_inputs, line, .. } = slots[p].take().expect("each node once");
        let mut inputs = BTreeMap::new();
        let mut deps = Vec::new();
        for (port, input) in raw_inputs {
            let input = match input {
                RawInputRef::Node { file_index, port } => {
                    let node = file_to_plan[&file_index];
                    if !deps.contains(&node) {
                        deps.push(node);
                    }
                    PlanInput::Node { node, port }
                }
                RawInputRef::External { path } => PlanInput::External { path },
            };
            inputs.insert(port, input);
        }
        deps.sort();
        nodes.push(PlanNode { name, stage, params, inputs, deps, line });
    }
    Plan { name, file: source.path.clone(), nodes }
}

/// A node that passed validation, before it has its plan position.
struct ResolvedNode {
    /// Position of the node in the file.
    file_index: usize,
    name: String,
    stage: RegisteredStage,
    params: Map<String, Value>,
    inputs: BTreeMap<String, RawInputRef>,
    line: u64,
}

/// An input as resolved during validation, before nodes have plan positions.
enum RawInputRef {
    Node { file_index: usize, port: String },
    External { path: PathBuf },
}

impl<'a> Validator<'a> {
    fn error(&mut self, at: Option<Pos>, message: String, label: &str, help: Option<String>) {
        let mut error = WorkflowError::at(self.source, at, message, label);
        error.help = help;
        self.errors.push(error);
    }

    fn push(&mut self, error: WorkflowError) {
        self.errors.push(error);
    }

    fn workflow_name(&mut self, raw: &RawWorkflow) -> String {
        match &raw.name {
            Some(name) if is_valid_name(&name.value) => name.value.clone(),
            Some(name) => {
                self.error(pos(name), format!("invalid workflow name `{}`", name.value), "invalid name", Some(
                    "use letters, digits, `-` and `_`; the name becomes a directory in the store".to_string(),
                ));
                String::new()
            }
            None => {
                let stem = self.source.path.file_stem().and_then(|s| s.to_str()).unwrap_or("workflow");
                stem.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect()
            }
        }
    }

    fn collect_vars(&mut self, vars: Option<&Entries<Spanned<Value>>>, overrides: &[Override]) {
        for (key, value) in vars.map(|v| v.0.as_slice()).unwrap_or_default() {
            match scalar_text(&value.value) {
                Some(text) => {
                    self.vars.insert(key.value.clone(), text);
                }
                None => self.error(pos(value), format!("var `{}` must be a string, number or bool", key.value), "not a scalar", None),
            }
        }
        for o in overrides.iter().filter(|o| o.target == "vars") {
            match scalar_text(&o.value) {
                Some(text) => {
                    self.vars.insert(o.name.clone(), text);
                }
                None => self.push(WorkflowError::general(&self.source.path, format!("--set {}: a var must be a scalar", o.text))),
            }
        }
    }

    fn check_overrides<'o>(&mut self, nodes: &Entries<RawNode>, overrides: &'o [Override]) -> Vec<&'o Override> {
        let names: Vec<&str> = nodes.0.iter().map(|(k, _)| k.value.as_str()).collect();
        let mut kept = Vec::new();
        for o in overrides.iter().filter(|o| o.target != "vars" && o.target != "defaults") {
            if names.contains(&o.target.as_str()) {
                kept.push(o);
            } else {
                let error = WorkflowError::general(&self.source.path, format!("--set {}: no node `{}` in this workflow", o.text, o.target))
                    .suggest(&o.target, names.iter().copied());
                self.push(error);
            }
        }
        kept
    }

    fn resolve_stage(&mut self, key: &Spanned<String>, node: &RawNode) -> Option<&'a RegisteredStage> {
        let Some(stage) = &node.stage else {
            self.error(pos(key), format!("node `{}` has no `stage`", key.value), "stage missing", Some(
                "add `stage: NAME`; `flywheel stages` lists the stages".to_string(),
            ));
            return None;
        };
        match self.registry.get(&stage.value) {
            Some(registered) => Some(registered),
            None => {
                let error = WorkflowError::at(self.source, pos(stage), format!("unknown stage `{}`", stage.value), "not a known stage")
                    .suggest(&stage.value, self.registry.names());
                let error = if error.help.is_none() {
                    error.with_help("`flywheel stages` lists the stages")
                } else {
                    error
                };
                self.push(error);
                None
            }
        }
    }

    fn check_defaults(&mut self, defaults: Option<&Entries<Spanned<Value>>>, stages: &[Option<&RegisteredStage>]) {
        for (key, value) in defaults.map(|d| d.0.as_slice()).unwrap_or_default() {
            let specs: Vec<&ParamSpec> = stages.iter().flatten().filter_map(|s| s.descriptor.param_spec(&key.value)).collect();
            if specs.is_empty() {
                let all: Vec<&str> = stages.iter().flatten().flat_map(|s| s.descriptor.params.iter().map(|p| p.name.as_str())).collect();
                let error = WorkflowError::at(self.source, pos(key), format!("default `{}` is not a param of any stage in this workflow", key.value), "unused default")
                    .suggest(&key.value, all);
                self.push(error);
            }
            for spec in specs {
                if let Err(error) = self.check_value(spec, value, "default") {
                    self.push(error);
                    break;
                }
            }
        }
    }

    /// Checks `--set defaults.PARAM=VALUE`: some stage of the workflow must take the param.
    fn check_default_overrides<'o>(&mut self, overrides: &'o [Override], stages: &[Option<&RegisteredStage>]) -> Vec<&'o Override> {
        let mut kept = Vec::new();
        for o in overrides.iter().filter(|o| o.target == "defaults") {
            if stages.iter().flatten().any(|s| s.descriptor.param_spec(&o.name).is_some()) {
                kept.push(o);
            } else {
                let all: Vec<&str> = stages.iter().flatten().flat_map(|s| s.descriptor.params.iter().map(|p| p.name.as_str())).collect();
                self.push(WorkflowError::general(&self.source.path, format!("--set {}: no stage in this workflow has a param `{}`", o.text, o.name)).suggest(&o.name, all));
            }
        }
        kept
    }

    /// Resolves a node's params. Precedence: `--set NODE.PARAM`, the node's `params:`,
    /// `--set defaults.PARAM`, the workflow's `defaults:`, the stage's own default.
    fn resolve_params(
        &mut self,
        key: &Spanned<String>,
        node: &RawNode,
        stage: &RegisteredStage,
        defaults: Option<&Entries<Spanned<Value>>>,
        default_overrides: &[&Override],
        overrides: &[&Override],
    ) -> Map<String, Value> {
        let descriptor = &stage.descriptor;
        let mut given: BTreeMap<&str, Value> = BTreeMap::new();
        let mut seen: HashMap<&str, u64> = HashMap::new();
        for (name, value) in node.params.as_ref().map(|p| p.0.as_slice()).unwrap_or_default() {
            if let Some(line) = seen.insert(&name.value, name.referenced.line()) {
                self.error(pos(name), format!("param `{}` is set twice", name.value), "set again here", Some(format!("the first is at line {line}")));
                continue;
            }
            let Some(spec) = descriptor.param_spec(&name.value) else {
                let error = WorkflowError::at(self.source, pos(name), format!("unknown param `{}` for stage `{}`", name.value, descriptor.name), "unknown param")
                    .suggest(&name.value, descriptor.params.iter().map(|p| p.name.as_str()));
                let error = if error.help.is_none() {
                    error.with_help(format!("stage `{}` takes: {}", descriptor.name, param_list(&descriptor.params)))
                } else {
                    error
                };
                self.push(error);
                continue;
            };
            match self.check_value(spec, value, "param") {
                Ok(v) => {
                    given.insert(&name.value, v);
                }
                Err(error) => self.push(error),
            }
        }

        let mut resolved = Map::new();
        for spec in &descriptor.params {
            let from_set = overrides.iter().rev().find(|o| o.name == spec.name);
            let default_set = default_overrides.iter().rev().find(|o| o.name == spec.name);
            let from_default = defaults.and_then(|d| d.0.iter().rev().find(|(k, _)| k.value == spec.name));
            let node_value = given.remove(spec.name.as_str());
            let set = from_set.copied().or(if node_value.is_none() { default_set.copied() } else { None });
            let value = if let Some(o) = set {
                match spec.ty.check(&o.value) {
                    Some(v) => Some(v),
                    None => {
                        self.push(WorkflowError::general(&self.source.path, format!(
                            "--set {}: param `{}` of node `{}` expects {}, got {}", o.text, spec.name, key.value, spec.ty.name(), o.value
                        )));
                        continue;
                    }
                }
            } else if let Some(v) = node_value {
                Some(v)
            } else if let Some((_, value)) = from_default {
                self.check_value(spec, value, "default").ok()
            } else {
                spec.default.clone()
            };
            match value {
                Some(v) => {
                    resolved.insert(spec.name.clone(), v);
                }
                None => self.error(pos(key), format!("node `{}` is missing required param `{}` of stage `{}`", key.value, spec.name, descriptor.name), "param missing", Some(
                    format!("add it under `params:`, e.g.\n    params:\n      {}: ...{}", spec.name, if spec.doc.is_empty() { String::new() } else { format!("   # {}", spec.doc) }),
                )),
            }
        }
        for o in overrides {
            if descriptor.param_spec(&o.name).is_none() {
                let error = WorkflowError::general(&self.source.path, format!("--set {}: stage `{}` of node `{}` has no param `{}`", o.text, descriptor.name, key.value, o.name))
                    .suggest(&o.name, descriptor.params.iter().map(|p| p.name.as_str()));
                self.push(error);
            }
        }
        resolved
    }

    /// Checks a param value's type and choices, substituting vars in strings.
    fn check_value(&self, spec: &ParamSpec, value: &Spanned<Value>, what: &str) -> Result<Value, WorkflowError> {
        let substituted = match &value.value {
            Value::String(text) => Value::String(self.substitute(text, value)?),
            other => other.clone(),
        };
        let Some(checked) = spec.ty.check(&substituted) else {
            return Err(WorkflowError::at(self.source, pos(value), format!(
                "{what} `{}` expects {}, got {}", spec.name, spec.ty.name(), describe(&substituted)
            ), format!("expected {}", spec.ty.name())));
        };
        if let Value::String(text) = &checked
            && !spec.choices.is_empty()
            && !spec.choices.contains(text)
        {
            let error = WorkflowError::at(self.source, pos(value), format!(
                "{what} `{}` must be one of {}, got `{text}`", spec.name, spec.choices.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", ")
            ), "not an allowed value");
            return Err(error.suggest(text, spec.choices.iter().map(String::as_str)));
        }
        Ok(checked)
    }

    /// Loads the workflow's plugins. On failure it returns every error found so far, because
    /// the nodes that use a plugin's stages cannot be checked without it.
    fn load_plugins(&mut self, plugins: &[Spanned<RawPlugin>]) -> Result<Registry, WorkflowErrors> {
        let substitute = |text: &str, at: Option<Pos>| self.substitute_at(text, at);
        match crate::plugin::declare::load_declared(plugins, self.source, &self.base_dir, &substitute, self.registry) {
            Ok(registry) => Ok(registry),
            Err(errors) => {
                let mut all = std::mem::take(&mut self.errors);
                all.extend(errors);
                Err(WorkflowErrors(all))
            }
        }
    }

    /// Replaces `${name}` with the var's value.
    fn substitute(&self, text: &str, at: &Spanned<Value>) -> Result<String, WorkflowError> {
        self.substitute_at(text, pos(at))
    }

    fn substitute_at(&self, text: &str, at: Option<Pos>) -> Result<String, WorkflowError> {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let Some(len) = rest[start + 2..].find('}') else {
                return Err(WorkflowError::at(self.source, at, format!("unclosed `${{` in `{text}`"), "unclosed var")
                    .with_help("write `${name}` to use a var, or `$${` for a literal `${`"));
            };
            let name = &rest[start + 2..start + 2 + len];
            match self.vars.get(name) {
                Some(value) => out.push_str(value),
                None => {
                    return Err(WorkflowError::at(self.source, at, format!("unknown var `{name}`"), "unknown var")
                        .suggest(name, self.vars.keys().map(String::as_str)));
                }
            }
            rest = &rest[start + 3 + len..];
        }
        out.push_str(rest);
        Ok(out)
    }

    fn resolve_inputs(
        &mut self,
        key: &Spanned<String>,
        node: &RawNode,
        stage: &RegisteredStage,
        nodes: &Entries<RawNode>,
        index: &HashMap<&str, usize>,
        stages: &[Option<&RegisteredStage>],
    ) -> BTreeMap<String, RawInputRef> {
        let descriptor = &stage.descriptor;
        let mut inputs = BTreeMap::new();
        for (port, value) in node.inputs.as_ref().map(|i| i.0.as_slice()).unwrap_or_default() {
            let Some(spec) = descriptor.input_port(&port.value) else {
                let error = WorkflowError::at(self.source, pos(port), format!("unknown input port `{}` for stage `{}`", port.value, descriptor.name), "unknown port")
                    .suggest(&port.value, descriptor.inputs.iter().map(|p| p.name.as_str()));
                let error = if error.help.is_none() {
                    error.with_help(format!("stage `{}` reads: {}", descriptor.name, port_list(&descriptor.inputs)))
                } else {
                    error
                };
                self.push(error);
                continue;
            };
            if inputs.contains_key(&port.value) {
                self.error(pos(port), format!("input `{}` is connected twice", port.value), "connected again here", None);
                continue;
            }
            let resolved = match &value.value {
                Value::String(reference) => self.resolve_reference(reference, value, &spec.kind, nodes, index, stages),
                Value::Object(map) if map.len() == 1 && map.contains_key("path") => self.resolve_external(&map["path"], value),
                _ => Err(WorkflowError::at(self.source, pos(value), format!("invalid input `{}`", port.value), "not an input")
                    .with_help("write `NODE.PORT` for another node's output, or `{path: FILE}` for a file or directory")),
            };
            match resolved {
                Ok(input) => {
                    inputs.insert(port.value.clone(), input);
                }
                Err(error) => self.push(error),
            }
        }
        for spec in &descriptor.inputs {
            if !spec.optional && !inputs.contains_key(&spec.name) && !node.inputs.as_ref().is_some_and(|i| i.0.iter().any(|(p, _)| p.value == spec.name)) {
                self.error(pos(key), format!("node `{}` does not connect required input `{}` ({})", key.value, spec.name, spec.kind), "input missing", Some(
                    format!("add it under `inputs:`, e.g.\n    inputs:\n      {}: OTHER_NODE.PORT", spec.name),
                ));
            }
        }
        inputs
    }

    fn resolve_reference(
        &self,
        reference: &str,
        at: &Spanned<Value>,
        expected_kind: &str,
        nodes: &Entries<RawNode>,
        index: &HashMap<&str, usize>,
        stages: &[Option<&RegisteredStage>],
    ) -> Result<RawInputRef, WorkflowError> {
        let (node_name, port_name) = match reference.split_once('.') {
            Some((n, p)) => (n, Some(p)),
            None => (reference, None),
        };
        let Some(&file_index) = index.get(node_name) else {
            return Err(WorkflowError::at(self.source, pos(at), format!("unknown node `{node_name}` in input `{reference}`"), "unknown node")
                .suggest(node_name, nodes.0.iter().map(|(k, _)| k.value.as_str())));
        };
        // A node whose stage is unknown was reported already.
        let Some(upstream) = stages[file_index] else {
            return Ok(RawInputRef::Node { file_index, port: port_name.unwrap_or_default().to_string() });
        };
        let outputs = &upstream.descriptor.outputs;
        let port = match port_name {
            Some(p) => outputs.iter().find(|o| o.name == p).ok_or_else(|| {
                WorkflowError::at(self.source, pos(at), format!("node `{node_name}` (stage `{}`) has no output port `{p}`", upstream.descriptor.name), "unknown port")
                    .suggest(p, outputs.iter().map(|o| o.name.as_str()))
                    .with_help_if_none(format!("its outputs: {}", port_list(outputs)))
            })?,
            None if outputs.len() == 1 => &outputs[0],
            None => {
                return Err(WorkflowError::at(self.source, pos(at), format!("node `{node_name}` has {} outputs; name one", outputs.len()), "ambiguous output")
                    .with_help(format!("write `{node_name}.PORT`, with PORT one of: {}", port_list(outputs))));
            }
        };
        if port.kind != expected_kind {
            return Err(WorkflowError::at(self.source, pos(at), format!(
                "artifact kind mismatch: `{node_name}.{}` is a `{}` but this input expects a `{expected_kind}`", port.name, port.kind
            ), format!("a `{}`, not a `{expected_kind}`", port.kind)));
        }
        Ok(RawInputRef::Node { file_index, port: port.name.clone() })
    }

    fn resolve_external(&self, path: &Value, at: &Spanned<Value>) -> Result<RawInputRef, WorkflowError> {
        let Value::String(text) = path else {
            return Err(WorkflowError::at(self.source, pos(at), "`path` must be a string", "not a path"));
        };
        let text = self.substitute(text, at)?;
        let path = self.base_dir.join(&text);
        if !path.exists() {
            return Err(WorkflowError::at(self.source, pos(at), format!("missing external input: {} does not exist", path.display()), "file not found")
                .with_help("paths are relative to the workflow file's directory; fix the path or `--set vars.NAME=...`"));
        }
        Ok(RawInputRef::External { path })
    }

    /// Orders nodes so that each comes after its inputs; keeps file order where free.
    fn topological_order(
        &mut self,
        nodes: &Entries<RawNode>,
        plan_nodes: &[ResolvedNode],
    ) -> Result<Vec<usize>, WorkflowErrors> {
        let position: HashMap<usize, usize> = plan_nodes.iter().enumerate().map(|(p, n)| (n.file_index, p)).collect();
        let mut graph = petgraph::graph::DiGraph::<usize, ()>::new();
        let ids: Vec<_> = (0..plan_nodes.len()).map(|p| graph.add_node(p)).collect();
        for (p, node) in plan_nodes.iter().enumerate() {
            for input in node.inputs.values() {
                if let RawInputRef::Node { file_index, .. } = input {
                    graph.update_edge(ids[position[file_index]], ids[p], ());
                }
            }
        }
        // Kahn's algorithm, taking the lowest file position among ready nodes.
        let mut indegree: Vec<usize> = ids.iter().map(|&id| graph.neighbors_directed(id, petgraph::Incoming).count()).collect();
        let mut ready: std::collections::BTreeSet<usize> = (0..ids.len()).filter(|&p| indegree[p] == 0).collect();
        let mut order = Vec::new();
        while let Some(p) = ready.pop_first() {
            order.push(p);
            for next in graph.neighbors_directed(ids[p], petgraph::Outgoing) {
                let q = graph[next];
                indegree[q] -= 1;
                if indegree[q] == 0 {
                    ready.insert(q);
                }
            }
        }
        if order.len() == plan_nodes.len() {
            return Ok(order);
        }
        let cycle = find_cycle(&graph);
        let names: Vec<&str> = cycle.iter().map(|&p| plan_nodes[p].name.as_str()).collect();
        let first = &nodes.0[plan_nodes[cycle[0]].file_index].0;
        let mut path = names.join(" -> ");
        path.push_str(&format!(" -> {}", names[0]));
        Err(WorkflowError::at(self.source, pos(first), format!("cycle in workflow: {path}"), "part of a cycle")
            .with_help("a node cannot read, directly or through others, its own output; remove one of these inputs")
            .into())
    }
}

/// Returns the plan positions of one cycle, in edge order.
fn find_cycle(graph: &petgraph::graph::DiGraph<usize, ()>) -> Vec<usize> {
    for scc in petgraph::algo::tarjan_scc(graph) {
        let self_loop = scc.len() == 1 && graph.contains_edge(scc[0], scc[0]);
        if scc.len() < 2 && !self_loop {
            continue;
        }
        let start = *scc.iter().min_by_key(|&&id| graph[id]).expect("non-empty");
        let mut cycle = vec![graph[start]];
        let mut current = start;
        let mut visited = vec![start];
        loop {
            let next = graph
                .neighbors_directed(current, petgraph::Outgoing)
                .filter(|n| scc.contains(n))
                .min_by_key(|&n| graph[n])
                .expect("every node of a cycle has a successor in it");
            if next == start || visited.contains(&next) {
                break;
            }
            visited.push(next);
            cycle.push(graph[next]);
            current = next;
        }
        return cycle;
    }
    Vec::new()
}

impl WorkflowError {
    fn with_help_if_none(self, help: String) -> Self {
        if self.help.is_none() { self.with_help(help) } else { self }
    }
}

fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn describe(value: &Value) -> String {
    match value {
        Value::Null => "nothing (null)".to_string(),
        Value::String(s) => format!("the string `{s}`"),
        Value::Array(_) => "a list".to_string(),
        Value::Object(_) => "a mapping".to_string(),
        other => format!("`{other}`"),
    }
}

fn param_list(params: &[ParamSpec]) -> String {
    if params.is_empty() {
        return "no params".to_string();
    }
    params.iter().map(|p| format!("`{}` ({})", p.name, p.ty.name())).collect::<Vec<_>>().join(", ")
}

fn port_list(ports: &[flywheel_stage_api::PortSpec]) -> String {
    if ports.is_empty() {
        return "none".to_string();
    }
    ports.iter().map(|p| format!("`{}` ({})", p.name, p.kind)).collect::<Vec<_>>().join(", ")
}

