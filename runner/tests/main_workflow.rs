//! The shipped workflows `workflows/relevance.yaml` and `workflows/relevance-init.yaml` load
//! and validate against the real stage registry and the BM25 plugin, without running them:
//! a full run trains eleven BERT models, which is too slow for a test.

mod main_support;

use flywheel::registry::Registry;
use flywheel::workflow::{self, Override, Plan, PlanInput};
use main_support::{plugin_dir, workspace_root};

/// Loads a workflow of `workflows/` with `vars.target` pointing at the freshly built plugin.
fn load(file: &str, extra: &[String]) -> Plan {
    let path = workspace_root().join("workflows").join(file);
    let mut overrides: Vec<Override> = vec![format!("vars.target={}", plugin_dir().display()).parse().unwrap()];
    overrides.extend(extra.iter().map(|o| o.parse::<Override>().unwrap()));
    match workflow::load(&path, &Registry::builtin(), &overrides) {
        Ok(plan) => plan,
        Err(errors) => panic!("{file} is invalid:\n{errors}"),
    }
}

fn stage_of<'a>(plan: &'a Plan, node: &str) -> &'a str {
    let index = plan.index_of(node).unwrap_or_else(|| panic!("node `{node}` is missing"));
    &plan.nodes[index].stage.descriptor.name
}

/// Returns the `(node, port)` that feeds `port` of `node`.
fn source_of(plan: &Plan, node: &str, port: &str) -> (String, String) {
    let index = plan.index_of(node).unwrap_or_else(|| panic!("node `{node}` is missing"));
    match plan.nodes[index].inputs.get(port) {
        Some(PlanInput::Node { node: from, port: from_port }) => (plan.nodes[*from].name.clone(), from_port.clone()),
        other => panic!("input `{port}` of `{node}` is not a node output: {other:?}"),
    }
}

fn from(node: &str, port: &str) -> (String, String) {
    (node.to_string(), port.to_string())
}

#[test]
fn relevance_workflow_validates() {
    let plan = load("relevance.yaml", &[]);
    assert_eq!(plan.name, "relevance");
    assert!(plan.nodes.len() >= 40, "only {} nodes", plan.nodes.len());
}

#[test]
fn relevance_workflow_has_every_stage() {
    let plan = load("relevance.yaml", &[]);
    let expected = [
        ("queries", "import-queries"),
        ("docs", "import-documents"),
        ("labels", "import-qrels"),
        ("split", "split-queries"),
        ("tokenizer", "train-tokenizer"),
        ("teacher_mlm", "pretrain-mlm"),
        ("student_mlm", "pretrain-mlm"),
        ("bm25_logged", "bm25"),
        ("clicks", "simulate-clicks"),
        ("behaviour", "behaviour-features"),
        ("gbdt", "teacher-gbdt"),
        ("pseudo", "pseudo-label"),
        ("teacher_post", "post-pretrain"),
        ("student_post", "post-pretrain"),
        ("teacher", "finetune"),
        ("student_finetuned", "finetune"),
        ("teacher_scores", "score"),
        ("student_distilled", "distill"),
        ("report", "report"),
    ];
    for (node, stage) in expected {
        assert_eq!(stage_of(&plan, node), stage, "stage of node `{node}`");
    }
}

#[test]
fn relevance_workflow_has_ablations() {
    let plan = load("relevance.yaml", &[]);

    // Without post-pretraining: fine-tuned straight from MLM.
    assert_eq!(source_of(&plan, "teacher_no_post", "model"), from("teacher_mlm", "model"));
    assert_eq!(source_of(&plan, "teacher", "model"), from("teacher_post", "model"));

    // Fine-tuning losses: both, regression only, pairwise only.
    let weights = |node: &str| {
        let params = &plan.nodes[plan.index_of(node).unwrap()].params;
        (params["regression_weight"].as_f64().unwrap(), params["pairwise_weight"].as_f64().unwrap())
    };
    assert_eq!(weights("teacher"), (1.0, 1.0));
    assert_eq!(weights("teacher_regression"), (1.0, 0.0));
    assert_eq!(weights("teacher_pairwise"), (0.0, 1.0));

    // Students: fine-tuned on labels only, distilled from the warmed student, distilled
    // from random weights.
    assert_eq!(stage_of(&plan, "student_finetuned"), "finetune");
    assert_eq!(source_of(&plan, "student_distilled", "student"), from("student_finetuned", "model"));
    assert_eq!(source_of(&plan, "student_random_distilled", "student"), from("student_random", "model"));
    let random = &plan.nodes[plan.index_of("student_random").unwrap()].params;
    assert_eq!(random["init"], "random");
    assert_eq!(source_of(&plan, "teacher_scores", "model"), from("teacher", "model"));

    // The BM25 plugin is the lexical baseline.
    assert_eq!(stage_of(&plan, "bm25_test"), "bm25");
}

#[test]
fn relevance_workflow_evaluates_every_model_on_test() {
    let plan = load("relevance.yaml", &[]);
    let models = [
        "bm25",
        "teacher",
        "teacher_no_post",
        "teacher_regression",
        "teacher_pairwise",
        "student_finetuned",
        "student_distilled",
        "student_random_distilled",
    ];
    for model in models {
        let eval = format!("eval_{model}");
        assert_eq!(stage_of(&plan, &eval), "evaluate", "node `{eval}`");
        assert_eq!(source_of(&plan, &eval, "pairs"), from("split", "test"), "pairs of `{eval}`");
        let scorer = source_of(&plan, &eval, "scores").0;
        assert_eq!(source_of(&plan, &scorer, "pairs"), from("split", "test"), "pairs of `{scorer}`");
    }

    let report = &plan.nodes[plan.index_of("report").unwrap()];
    let fed: Vec<String> = report
        .inputs
        .values()
        .filter_map(|input| match input {
            PlanInput::Node { node, .. } => Some(plan.nodes[*node].name.clone()),
            PlanInput::External { .. } => None,
        })
        .collect();
    for model in models {
        let eval = format!("eval_{model}");
        assert!(fed.contains(&eval), "report does not read `{eval}`: {fed:?}");
    }
    // Training curves of each stage of the recipe: MLM, post-pretraining, fine-tuning, distillation.
    for trained in ["teacher_mlm", "teacher_post", "teacher", "student_distilled"] {
        assert!(fed.contains(&trained.to_string()), "report does not read the curves of `{trained}`: {fed:?}");
    }
    let labels = report.params["labels"].as_array().expect("labels is a list");
    assert_eq!(labels.len(), report.inputs.len(), "one label per report input");
}

#[test]
fn relevance_workflow_data_var_points_at_other_files() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["queries.tsv", "docs.tsv", "qrels.tsv"] {
        std::fs::write(dir.path().join(name), "").unwrap();
    }
    let plan = load("relevance.yaml", &[format!("vars.data={}", dir.path().display())]);
    let docs = &plan.nodes[plan.index_of("docs").unwrap()];
    match docs.inputs.get("file") {
        Some(PlanInput::External { path }) => assert!(path.starts_with(dir.path()), "{}", path.display()),
        other => panic!("docs.file is not external: {other:?}"),
    }
}

#[test]
fn init_workflow_validates_with_checkpoint() {
    // Validation checks only that the checkpoint directory exists; the stage reads it at run
    // time, so an empty directory replaces a real checkpoint here.
    let checkpoint = tempfile::tempdir().unwrap();
    let plan = load("relevance-init.yaml", &[format!("vars.init={}", checkpoint.path().display())]);
    let mlm = &plan.nodes[plan.index_of("teacher_mlm").unwrap()];
    assert_eq!(mlm.inputs.get("init"), Some(&PlanInput::External { path: checkpoint.path().to_path_buf() }));
}
