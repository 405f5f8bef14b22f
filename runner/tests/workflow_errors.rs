//! Malformed workflows: each must be rejected with a message naming its line and column.

use std::sync::Arc;

use flywheel::registry::Registry;
use flywheel::workflow::{Override, Source, WorkflowErrors, parse_source};

fn registry() -> Registry {
    let mut registry = Registry::builtin();
    for stage in flywheel::fixtures::stages() {
        registry.add_builtin(stage);
    }
    registry
}

fn errors_with(text: &str, overrides: &[&str]) -> WorkflowErrors {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("present.txt"), "x").unwrap();
    let source = Source { path: dir.path().join("wf.yaml"), text: Arc::from(text) };
    let overrides: Vec<Override> = overrides.iter().map(|o| o.parse().unwrap()).collect();
    match parse_source(&source, &registry(), &overrides) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(errors) => errors,
    }
}

/// Asserts that the only error is at `line:column` and its message contains `message`;
/// returns the rendered error (with snippet and help) for further checks.
fn assert_error(text: &str, line: u64, column: u64, message: &str) -> String {
    let errors = errors_with(text, &[]);
    assert_eq!(errors.0.len(), 1, "expected one error, got: {errors}");
    let error = &errors.0[0];
    let rendered = error.render();
    let pos = error.pos.unwrap_or_else(|| panic!("no position in {rendered}"));
    assert_eq!((pos.line, pos.column), (line, column), "{rendered}");
    assert!(error.message.contains(message), "message {:?} lacks {message:?}", error.message);
    assert!(error.to_string().contains(&format!("wf.yaml:{line}:{column}:")), "{error}");
    assert!(rendered.contains(&format!("wf.yaml:{line}:{column}")), "{rendered}");
    rendered
}

#[test]
fn unknown_stage_suggests_close_name() {
    let rendered = assert_error("nodes:\n  a:\n    stage: fixtrue\n", 3, 12, "unknown stage `fixtrue`");
    assert!(rendered.contains("did you mean `fixture`?"), "{rendered}");
    assert!(rendered.contains("stage: fixtrue"), "snippet missing: {rendered}");
}

#[test]
fn unknown_node_in_input() {
    let rendered = assert_error(
        "nodes:\n  first:\n    stage: fixture\n  b:\n    stage: fixture\n    inputs: {input: frist.out}\n",
        6, 21, "unknown node `frist`",
    );
    assert!(rendered.contains("did you mean `first`?"), "{rendered}");
}

#[test]
fn unknown_output_port() {
    let rendered = assert_error(
        "nodes:\n  a:\n    stage: fixture\n  b:\n    stage: fixture\n    inputs:\n      input: a.output\n",
        7, 14, "has no output port `output`",
    );
    assert!(rendered.contains("did you mean `out`?"), "{rendered}");
}

#[test]
fn unknown_input_port() {
    let rendered = assert_error(
        "nodes:\n  a:\n    stage: fixture\n  b:\n    stage: fixture\n    inputs:\n      inptu: a.out\n",
        7, 7, "unknown input port `inptu`",
    );
    assert!(rendered.contains("did you mean `input`?"), "{rendered}");
}

#[test]
fn artifact_kind_mismatch() {
    assert_error(
        "nodes:\n  a:\n    stage: fixture\n  stats:\n    stage: corpus-stats\n    inputs: {corpus: a.out}\n",
        6, 22, "artifact kind mismatch: `a.out` is a `text` but this input expects a `corpus`",
    );
}

#[test]
fn missing_required_input() {
    assert_error("nodes:\n  stats:\n    stage: corpus-stats\n", 2, 3, "does not connect required input `corpus`");
}

#[test]
fn missing_required_param() {
    let rendered = assert_error("nodes:\n  a:\n    stage: fixture-strict\n", 2, 3, "node `a` is missing required param `level` of stage `fixture-strict`");
    assert!(rendered.contains("add it under `params:`"), "{rendered}");
}

#[test]
fn missing_stage_field() {
    let rendered = assert_error("nodes:\n  a:\n    params: {text: x}\n", 2, 3, "node `a` has no `stage`");
    assert!(rendered.contains("flywheel stages"), "{rendered}");
}

#[test]
fn unknown_param_suggests_close_name() {
    let rendered = assert_error("nodes:\n  a:\n    stage: fixture\n    params:\n      txet: hello\n", 5, 7, "unknown param `txet` for stage `fixture`");
    assert!(rendered.contains("did you mean `text`?"), "{rendered}");
}

#[test]
fn wrong_param_type() {
    assert_error("nodes:\n  a:\n    stage: fixture\n    params:\n      sleep_ms: soon\n", 5, 17, "param `sleep_ms` expects int, got the string `soon`");
}

#[test]
fn float_for_int_param() {
    assert_error("nodes:\n  a:\n    stage: fixture\n    params: {steps: 2.5}\n", 4, 21, "param `steps` expects int");
}

#[test]
fn duplicate_node() {
    let rendered = assert_error("nodes:\n  a:\n    stage: fixture\n  a:\n    stage: fixture\n", 4, 3, "duplicate node `a`");
    assert!(rendered.contains("first `a` is at line 2"), "{rendered}");
}

#[test]
fn cycle_is_printed() {
    let text = "nodes:\n  a:\n    stage: fixture\n    inputs: {input: c.out}\n  b:\n    stage: fixture\n    inputs: {input: a.out}\n  c:\n    stage: fixture\n    inputs: {input: b.out}\n";
    assert_error(text, 2, 3, "cycle in workflow: a -> b -> c -> a");
}

#[test]
fn self_cycle_is_printed() {
    assert_error("nodes:\n  a:\n    stage: fixture\n    inputs: {input: a.out}\n", 2, 3, "cycle in workflow: a -> a");
}

#[test]
fn missing_external_input() {
    let rendered = assert_error("nodes:\n  a:\n    stage: fixture\n    inputs:\n      input: {path: absent.txt}\n", 5, 14, "missing external input");
    assert!(rendered.contains("absent.txt does not exist"), "{rendered}");
}

#[test]
fn empty_workflow_without_nodes() {
    assert_error("name: empty\n", 1, 1, "empty workflow");
}

#[test]
fn empty_workflow_with_empty_nodes() {
    assert_error("name: empty\nnodes: {}\n", 2, 8, "empty workflow");
}

#[test]
fn empty_file() {
    assert_error("# only a comment\n", 1, 1, "empty workflow");
}

#[test]
fn yaml_syntax_error() {
    let errors = errors_with("nodes:\n  a:\n    stage: [fixture\n", &[]);
    let error = &errors.0[0];
    assert!(error.pos.is_some(), "{error}");
    assert!(error.to_string().starts_with(&format!("{}:", error.file.display())), "{error}");
}

#[test]
fn unknown_top_level_field() {
    let rendered = assert_error("node:\n  a:\n    stage: fixture\n", 1, 1, "unknown field `node`");
    assert!(rendered.contains("did you mean `nodes`?"), "{rendered}");
}

#[test]
fn unknown_node_field() {
    let rendered = assert_error("nodes:\n  a:\n    stage: fixture\n    param: {text: x}\n", 4, 5, "unknown field `param`");
    assert!(rendered.contains("did you mean `params`?"), "{rendered}");
}

#[test]
fn param_not_in_choices() {
    let rendered = assert_error("nodes:\n  a:\n    stage: fixture-strict\n    params: {level: 1, mode: uper}\n", 4, 30, "param `mode` must be one of `plain`, `upper`, got `uper`");
    assert!(rendered.contains("did you mean `upper`?"), "{rendered}");
}

#[test]
fn unknown_var() {
    assert_error("nodes:\n  a:\n    stage: fixture\n    params: {text: \"${missing}\"}\n", 4, 20, "unknown var `missing`");
}

#[test]
fn invalid_input_shape() {
    assert_error("nodes:\n  a:\n    stage: fixture\n    inputs: {input: [1, 2]}\n", 4, 21, "invalid input `input`");
}

#[test]
fn ambiguous_reference_needs_port() {
    let rendered = assert_error(
        "nodes:\n  a:\n    stage: fixture-strict\n    params: {level: 1}\n  b:\n    stage: fixture\n    inputs: {input: a}\n",
        7, 21, "node `a` has 2 outputs; name one",
    );
    assert!(rendered.contains("`left` (text), `right` (text)"), "{rendered}");
}

#[test]
fn invalid_node_name() {
    assert_error("nodes:\n  bad.name:\n    stage: fixture\n", 2, 3, "invalid node name `bad.name`");
}

#[test]
fn unused_default() {
    let rendered = assert_error("defaults:\n  txt: 1\nnodes:\n  a:\n    stage: fixture\n", 2, 3, "default `txt` is not a param of any stage");
    assert!(rendered.contains("did you mean `text`?"), "{rendered}");
}

#[test]
fn param_set_twice() {
    assert_error("nodes:\n  a:\n    stage: fixture\n    params:\n      text: a\n      text: b\n", 6, 7, "param `text` is set twice");
}

#[test]
fn every_problem_is_reported() {
    let errors = errors_with("nodes:\n  a:\n    stage: fixtrue\n  b:\n    stage: fixture\n    params: {txet: 1}\n", &[]);
    assert_eq!(errors.0.len(), 2, "{errors}");
}

#[test]
fn set_unknown_node_and_param() {
    let errors = errors_with("nodes:\n  alpha:\n    stage: fixture\n", &["alpah.text=x", "alpha.txet=y"]);
    let text = errors.to_string();
    assert!(text.contains("--set alpah.text=x: no node `alpah`"), "{text}");
    assert!(text.contains("has no param `txet`"), "{text}");
    assert_eq!(errors.0[0].help.as_deref(), Some("did you mean `alpha`?"));
}

#[test]
fn set_wrong_type() {
    let errors = errors_with("nodes:\n  a:\n    stage: fixture\n", &["a.steps=many"]);
    assert!(errors.to_string().contains("--set a.steps=many: param `steps` of node `a` expects int"), "{errors}");
}
