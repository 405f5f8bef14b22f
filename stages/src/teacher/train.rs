//! `teacher-gbdt`: fits a perpetual GBDT from behaviour features to human grades and reports its
//! metrics on the validation split.

use std::collections::{BTreeMap, HashMap, HashSet};

use flywheel_stage_api::*;
use perpetual::objective::Objective;
use perpetual::{Matrix, PerpetualBooster};
use serde_json::{Map, Value, json};

use super::{Meta, PERPETUAL_VERSION, feature_matrix, save};
use crate::artifact::{self, Pair, write_json};
use crate::random::seed_param;
use crate::ranking::{self, EvalConfig, Judged};

pub struct TeacherGbdt;

impl Stage for TeacherGbdt {
    fn descriptor(&self) -> StageDescriptor {
        let mut descriptor = StageDescriptor::new("teacher-gbdt", "1")
            .summary("train a GBDT teacher (perpetual) from behaviour features to human grades on the labelled training pairs")
            .input(PortSpec::new("features", "pairs").doc("mined pairs with `features`, as `behaviour-features` writes them"))
            .input(PortSpec::new("train", "pairs").doc("graded pairs of the training split; those with features are the training set"))
            .input(PortSpec::new("validation", "pairs").optional().doc("graded pairs of the validation split, for the held-out metrics"))
            .output(PortSpec::new("model", "gbdt").doc("model.json (perpetual's serialization) and meta.json (feature names in column order)"))
            .output(PortSpec::new("metrics", "metrics").doc("metrics.json: RMSE and ranking metrics on the validation split"))
            .param(ParamSpec::new("budget", ParamType::Float).default(0.5).doc("perpetual's complexity budget; higher fits more trees"))
            .param(ParamSpec::new("seed", ParamType::Int).default(0).doc("seed of perpetual's sampling"))
            .param(ParamSpec::new("features", ParamType::StringList).default(json!([])).doc("feature names to train on; empty takes every feature, in order of first appearance"));
        for param in ranking::params() {
            descriptor = descriptor.param(param);
        }
        descriptor
    }

    fn run(&self, ctx: &StageContext<'_>) -> Result<StageOutcome, StageError> {
        let config = EvalConfig::from_params(ctx)?;
        let budget = ctx.param_f64("budget")?;
        if !(budget.is_finite() && budget > 0.0) {
            return Err(StageError::InvalidParam { name: "budget".into(), message: format!("must be more than 0, got {budget}") });
        }
        let mined = artifact::read_records::<Pair>(ctx.input("features")?)?;
        let by_pair: HashMap<(&str, &str), &Pair> = mined.iter().map(|p| ((p.qid.as_str(), p.docid.as_str()), p)).collect();
        let names = feature_names(ctx, &mined)?;

        // 1. The training set: graded training pairs that have features.
        let train_pairs = artifact::read_records::<Pair>(ctx.input("train")?)?;
        let train = labelled(&train_pairs, &by_pair);
        ctx.info(&format!(
            "training on {} of {} graded training pairs; the other {} have no behaviour features",
            train.rows.len(),
            train.graded,
            train.graded - train.rows.len()
        ));
        if train.rows.len() < 2 {
            return Err(StageError::failed(format!(
                "only {} training pairs have both a grade and behaviour features; the teacher needs 2 or more, so mine features for the labelled queries (their clicks must be in the log)",
                train.rows.len()
            )));
        }

        // 2. Fit.
        let features = train.rows.iter().map(|(pair, _)| *pair).collect::<Vec<_>>();
        let matrix_data = feature_matrix(&features, &names)?;
        let matrix = Matrix::new(&matrix_data, features.len(), names.len());
        let targets: Vec<f64> = train.rows.iter().map(|(_, grade)| *grade).collect();
        // One thread: floating-point sums in a fixed order keep the model bytes reproducible.
        let mut booster = PerpetualBooster::default()
            .set_objective(Objective::SquaredLoss)
            .set_budget(budget as f32)
            .set_seed(seed_param(ctx)?)
            .set_num_threads(Some(1));
        booster.fit(&matrix, &targets, None, None).map_err(|e| StageError::failed(format!("GBDT training failed: {e}")))?;
        let train_rmse = rmse(&booster.predict(&matrix, false), &targets);

        // 3. Held-out metrics.
        let mut metrics = Map::new();
        metrics.insert("training_pairs".into(), json!(train.rows.len()));
        metrics.insert("train_rmse".into(), json!(train_rmse));
        metrics.insert("trees".into(), json!(booster.get_prediction_trees().len()));
        match ctx.optional_input("validation") {
            Some(dir) => {
                let validation_pairs = artifact::read_records::<Pair>(dir)?;
                let validation = labelled(&validation_pairs, &by_pair);
                metrics.extend(held_out_metrics(&booster, &validation, &names, &config)?);
                if validation.rows.is_empty() {
                    ctx.log(LogLevel::Warn, "no validation pair has behaviour features, so the validation metrics are empty");
                }
            }
            None => ctx.log(LogLevel::Warn, "no `validation` input, so the teacher reports training RMSE only"),
        }

        let grades = || targets.iter().copied();
        let meta = Meta {
            format: "perpetual-json".into(),
            perpetual_version: PERPETUAL_VERSION.into(),
            objective: "SquaredLoss".into(),
            target: "grade".into(),
            features: names,
            grade_min: grades().fold(f64::INFINITY, f64::min),
            grade_max: grades().fold(f64::NEG_INFINITY, f64::max),
            budget,
            training_pairs: train.rows.len(),
        };
        save(ctx.output("model")?, &booster, &meta)?;
        write_json(ctx.output("metrics")?, "metrics.json", &Value::Object(metrics.clone()))?;
        let summary = ranking::summary_only(&metrics);
        let validation_rmse = summary.get("rmse").and_then(Value::as_f64).map_or("not computed".to_string(), |v| format!("{v:.4}"));
        ctx.info(&format!("train RMSE {train_rmse:.4}, validation RMSE {validation_rmse}"));
        Ok(StageOutcome { metrics: summary, ..StageOutcome::default() })
    }
}

/// Graded pairs joined with their features: (features pair, grade), and how many were graded.
struct Labelled<'a> {
    rows: Vec<(&'a Pair, f64)>,
    graded: usize,
}

fn labelled<'a>(pairs: &[Pair], by_pair: &HashMap<(&str, &str), &'a Pair>) -> Labelled<'a> {
    let mut rows = Vec::new();
    let mut graded = 0;
    for pair in pairs {
        let Some(grade) = pair.grade else { continue };
        graded += 1;
        if let Some(features) = by_pair.get(&(pair.qid.as_str(), pair.docid.as_str())) {
            rows.push((*features, grade));
        }
    }
    Labelled { rows, graded }
}

/// RMSE, pair counts and ranking metrics of the model on held-out pairs, with `per_query`.
fn held_out_metrics(booster: &PerpetualBooster, held_out: &Labelled<'_>, names: &[String], config: &EvalConfig) -> Result<Map<String, Value>, StageError> {
    let mut metrics = Map::new();
    metrics.insert("validation_graded_pairs".into(), json!(held_out.graded));
    metrics.insert("validation_pairs".into(), json!(held_out.rows.len()));
    if held_out.rows.is_empty() {
        return Ok(metrics);
    }
    let pairs: Vec<&Pair> = held_out.rows.iter().map(|(pair, _)| *pair).collect();
    let data = feature_matrix(&pairs, names)?;
    let predictions = booster.predict(&Matrix::new(&data, pairs.len(), names.len()), false);
    let grades: Vec<f64> = held_out.rows.iter().map(|(_, grade)| *grade).collect();
    metrics.insert("rmse".into(), json!(rmse(&predictions, &grades)));

    let mut queries: BTreeMap<String, Vec<Judged>> = BTreeMap::new();
    for ((pair, grade), score) in held_out.rows.iter().zip(&predictions) {
        queries.entry(pair.qid.clone()).or_default().push(Judged { grade: *grade, score: *score });
    }
    metrics.extend(ranking::evaluate(&queries, config));
    Ok(metrics)
}

/// Returns the `features` param, or every feature name of `mined` in order of first appearance.
fn feature_names(ctx: &StageContext<'_>, mined: &[Pair]) -> Result<Vec<String>, StageError> {
    let requested: Vec<String> = serde_json::from_value(ctx.param("features")?.clone())
        .map_err(|e| StageError::InvalidParam { name: "features".into(), message: e.to_string() })?;
    let mut found = Vec::new();
    let mut seen = HashSet::new();
    for pair in mined {
        for name in pair.features.iter().flat_map(|f| f.keys()) {
            if seen.insert(name.clone()) {
                found.push(name.clone());
            }
        }
    }
    if found.is_empty() {
        return Err(StageError::failed("the `features` input has no pair with `features`; connect the output of `behaviour-features`"));
    }
    if requested.is_empty() {
        return Ok(found);
    }
    if let Some(unknown) = requested.iter().find(|name| !seen.contains(*name)) {
        return Err(StageError::InvalidParam {
            name: "features".into(),
            message: format!("feature `{unknown}` is not in the mined pairs; choose from {}", found.join(", ")),
        });
    }
    Ok(requested)
}

fn rmse(predictions: &[f64], targets: &[f64]) -> f64 {
    let sum: f64 = predictions.iter().zip(targets).map(|(p, t)| (p - t).powi(2)).sum();
    (sum / targets.len() as f64).sqrt()
}
