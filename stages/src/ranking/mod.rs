//! Ranking metrics of scored, graded documents grouped by query: the measures of one query in
//! [`measures`] (AUC, PNR, NDCG@k) and their summary over a query set in [`evaluate`], which
//! builds the body of a `metrics` artifact.
//!
//! Summary rules. `auc` is the mean of the per-query AUCs over the queries where it is defined
//! (both classes present), and `auc_pooled` is the AUC over all documents of all queries at
//! once. `pnr` sums concordant and discordant pairs over queries before dividing. `ndcg_*@k` is
//! the mean over the queries whose ideal DCG is positive. A value that is undefined for every
//! query is `null`, never a placeholder number.

pub mod measures;

use std::collections::BTreeMap;

use flywheel_stage_api::{ParamSpec, ParamType, StageContext, StageError};
use serde_json::{Map, Value, json};

pub use measures::{Gain, Judged, auc, ndcg, pnr, pnr_counts};

/// The settings of [`evaluate`]: the grade threshold of AUC and the NDCG cutoffs.
#[derive(Clone, Debug, PartialEq)]
pub struct EvalConfig {
    pub auc_threshold: f64,
    pub cutoffs: Vec<usize>,
}

impl EvalConfig {
    /// Reads the `auc_threshold` and `k` params (see [`params`]).
    pub fn from_params(ctx: &StageContext<'_>) -> Result<EvalConfig, StageError> {
        let auc_threshold = ctx.param_f64("auc_threshold")?;
        let k = ctx.param("k")?;
        let invalid = || StageError::InvalidParam { name: "k".into(), message: format!("expected a list of positive integers such as [1, 3, 10], got {k}") };
        let cutoffs: Vec<usize> = match k {
            Value::Array(items) => items.iter().map(|v| v.as_u64().filter(|n| *n > 0).map(|n| n as usize).ok_or_else(invalid)).collect::<Result<_, _>>()?,
            _ => return Err(invalid()),
        };
        if cutoffs.is_empty() {
            return Err(invalid());
        }
        Ok(EvalConfig { auc_threshold, cutoffs })
    }
}

/// Returns the `auc_threshold` and `k` params of every stage that reports ranking metrics.
pub fn params() -> [ParamSpec; 2] {
    [
        ParamSpec::new("auc_threshold", ParamType::Float)
            .default(1.0)
            .doc("documents with grade >= this count as positives for AUC"),
        ParamSpec::new("k", ParamType::Json)
            .default(json!([1, 3, 5, 10]))
            .doc("NDCG cutoffs, a list of positive integers"),
    ]
}

/// Returns the names of the NDCG metrics at cutoff `k`: exponential gain, then linear gain.
pub fn ndcg_names(k: usize) -> (String, String) {
    (format!("ndcg_exp@{k}"), format!("ndcg_linear@{k}"))
}

/// Computes the metrics of every query and their summary.
///
/// Returns the summary fields followed by `per_query`, a list sorted by qid. Queries are keyed
/// by qid in a `BTreeMap` so the output does not depend on the order of the input rows.
pub fn evaluate(queries: &BTreeMap<String, Vec<Judged>>, config: &EvalConfig) -> Map<String, Value> {
    let mut per_query = Vec::new();
    let mut auc_values = Vec::new();
    let (mut concordant, mut discordant) = (0, 0);
    let mut ndcg_values: Vec<(Vec<f64>, Vec<f64>)> = vec![(Vec::new(), Vec::new()); config.cutoffs.len()];
    let mut all = Vec::new();

    for (qid, docs) in queries {
        let query_auc = auc(docs, config.auc_threshold);
        let (c, d) = pnr_counts(docs);
        let mut row = Map::new();
        row.insert("qid".into(), json!(qid));
        row.insert("documents".into(), json!(docs.len()));
        row.insert("auc".into(), json!(query_auc));
        row.insert("pnr".into(), json!(pnr(c, d)));
        row.insert("concordant".into(), json!(c));
        row.insert("discordant".into(), json!(d));
        for (index, k) in config.cutoffs.iter().enumerate() {
            let (exp_name, linear_name) = ndcg_names(*k);
            let exp = ndcg(docs, *k, Gain::Exponential);
            let linear = ndcg(docs, *k, Gain::Linear);
            ndcg_values[index].0.extend(exp);
            ndcg_values[index].1.extend(linear);
            row.insert(exp_name, json!(exp));
            row.insert(linear_name, json!(linear));
        }
        auc_values.extend(query_auc);
        concordant += c;
        discordant += d;
        all.extend_from_slice(docs);
        per_query.push(Value::Object(row));
    }

    let mut summary = Map::new();
    summary.insert("queries".into(), json!(queries.len()));
    summary.insert("pairs".into(), json!(all.len()));
    summary.insert("auc_threshold".into(), json!(config.auc_threshold));
    summary.insert("auc".into(), json!(mean(&auc_values)));
    summary.insert("auc_queries".into(), json!(auc_values.len()));
    summary.insert("auc_pooled".into(), json!(auc(&all, config.auc_threshold)));
    summary.insert("pnr".into(), json!(pnr(concordant, discordant)));
    summary.insert("concordant".into(), json!(concordant));
    summary.insert("discordant".into(), json!(discordant));
    for (index, k) in config.cutoffs.iter().enumerate() {
        let (exp_name, linear_name) = ndcg_names(*k);
        summary.insert(exp_name, json!(mean(&ndcg_values[index].0)));
        summary.insert(linear_name, json!(mean(&ndcg_values[index].1)));
    }
    let ndcg_queries = ndcg_values.first().map_or(0, |(exp, _)| exp.len());
    summary.insert("ndcg_queries".into(), json!(ndcg_queries));
    summary.insert("per_query".into(), Value::Array(per_query));
    summary
}

/// Returns the summary without `per_query`, for a stage's metrics.
pub fn summary_only(metrics: &Map<String, Value>) -> Map<String, Value> {
    metrics.iter().filter(|(name, _)| name.as_str() != "per_query").map(|(n, v)| (n.clone(), v.clone())).collect()
}

fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn judged(rows: &[(f64, f64)]) -> Vec<Judged> {
        rows.iter().map(|&(grade, score)| Judged { grade, score }).collect()
    }

    fn config() -> EvalConfig {
        EvalConfig { auc_threshold: 2.0, cutoffs: vec![3, 5] }
    }

    #[test]
    fn golden_query_summary() {
        let queries = BTreeMap::from([("q".to_string(), judged(&[(3.0, 0.9), (2.0, 0.3), (0.0, 0.8), (1.0, 0.4), (0.0, 0.1)]))]);
        let metrics = evaluate(&queries, &config());
        assert_eq!(metrics["pnr"], 2.0);
        assert!((metrics["auc"].as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-12);
        assert!((metrics["ndcg_exp@3"].as_f64().unwrap() - 0.7985).abs() < 5e-5);
        assert!((metrics["ndcg_linear@5"].as_f64().unwrap() - 0.9159).abs() < 5e-5);
        assert_eq!(metrics["per_query"][0]["qid"], "q");
    }

    #[test]
    fn single_class_queries_report_null() {
        let queries = BTreeMap::from([("flat".to_string(), judged(&[(1.0, 0.2), (1.0, 0.7)]))]);
        let metrics = evaluate(&queries, &EvalConfig { auc_threshold: 1.0, cutoffs: vec![3] });
        assert_eq!(metrics["auc"], Value::Null);
        assert_eq!(metrics["auc_pooled"], Value::Null);
        assert_eq!(metrics["pnr"], Value::Null);
        assert_eq!(metrics["concordant"], 0);
        assert_eq!(metrics["discordant"], 0);
        assert_eq!(metrics["per_query"][0]["auc"], Value::Null);
    }

    #[test]
    fn flat_query_adds_no_pairs_to_pnr() {
        let golden = judged(&[(3.0, 0.9), (2.0, 0.3), (0.0, 0.8), (1.0, 0.4), (0.0, 0.1)]);
        let with_flat = BTreeMap::from([("a".to_string(), golden.clone()), ("b".to_string(), judged(&[(2.0, 0.1), (2.0, 0.9), (2.0, 0.5)]))]);
        let metrics = evaluate(&with_flat, &config());
        assert_eq!((metrics["concordant"].as_u64(), metrics["discordant"].as_u64()), (Some(6), Some(3)));
        assert_eq!(metrics["auc_queries"], 1);
    }

    #[test]
    fn pooled_auc_differs_from_mean_auc() {
        let queries = BTreeMap::from([
            ("a".to_string(), judged(&[(1.0, 0.9), (0.0, 0.8)])),
            ("b".to_string(), judged(&[(1.0, 0.2), (0.0, 0.1)])),
        ]);
        let metrics = evaluate(&queries, &EvalConfig { auc_threshold: 1.0, cutoffs: vec![1] });
        assert_eq!(metrics["auc"], 1.0);
        assert_eq!(metrics["auc_pooled"], 0.75);
    }
}
