//! `evaluate`: ranking metrics of a `scores` artifact against graded `pairs`, written as a
//! `metrics` artifact and returned as the stage's metrics. The measures and their tie rules are
//! in [`crate::ranking`].

use std::collections::{BTreeMap, HashMap, HashSet};

use flywheel_stage_api::*;
use serde_json::Value;

use crate::artifact::{self, Pair, Score};
use crate::ranking::{self, EvalConfig, Judged};

pub struct Evaluate;

impl Stage for Evaluate {
    fn descriptor(&self) -> StageDescriptor {
        let mut descriptor = StageDescriptor::new("evaluate", "1")
            .summary("compute AUC, PNR and NDCG@k (linear and exponential gain) of scores against graded pairs, per query and overall")
            .input(PortSpec::new("scores", "scores").doc("scores.jsonl: {\"qid\", \"docid\", \"score\"}; scores of ungraded pairs are ignored"))
            .input(PortSpec::new("pairs", "pairs").doc("pairs.jsonl with `grade`; pairs without a grade are ignored"))
            .output(PortSpec::new("metrics", "metrics").doc("metrics.json: summary metrics and `per_query`"));
        for param in ranking::params() {
            descriptor = descriptor.param(param);
        }
        descriptor.param(
            ParamSpec::new("missing_scores", ParamType::String)
                .default("error")
                .choices(&["error", "skip"])
                .doc("what to do with a graded pair that has no score: fail, or leave the pair out"),
        )
    }

    fn run(&self, ctx: &StageContext<'_>) -> Result<StageOutcome, StageError> {
        let config = EvalConfig::from_params(ctx)?;
        let scores = score_index(ctx.input("scores")?)?;
        let pairs = artifact::read::<Pair>(ctx.input("pairs")?)?;
        let skip_missing = ctx.param_str("missing_scores")? == "skip";

        let mut queries: BTreeMap<String, Vec<Judged>> = BTreeMap::new();
        let mut seen = HashSet::new();
        let (mut ungraded, mut missing) = (0usize, 0usize);
        for line in &pairs {
            let pair = &line.record;
            let Some(grade) = pair.grade else {
                ungraded += 1;
                continue;
            };
            if !seen.insert((pair.qid.as_str(), pair.docid.as_str())) {
                return Err(StageError::failed(format!(
                    "pairs.jsonl:{}: query `{}` and document `{}` are graded twice; keep one grade per pair",
                    line.number, pair.qid, pair.docid
                )));
            }
            let Some(score) = scores.get(&(pair.qid.clone(), pair.docid.clone())) else {
                if skip_missing {
                    missing += 1;
                    continue;
                }
                return Err(StageError::failed(format!(
                    "pairs.jsonl:{}: query `{}` and document `{}` have a grade but no score; score every graded pair, or set `missing_scores: skip`",
                    line.number, pair.qid, pair.docid
                )));
            };
            queries.entry(pair.qid.clone()).or_default().push(Judged { grade, score: *score });
        }
        if queries.is_empty() {
            return Err(StageError::failed("pairs.jsonl: no pair has both a grade and a score; connect graded pairs of the scored queries"));
        }
        if ungraded > 0 {
            ctx.info(&format!("ignored {ungraded} pairs without a grade"));
        }
        if missing > 0 {
            ctx.log(LogLevel::Warn, &format!("left out {missing} graded pairs that have no score"));
        }

        let metrics = ranking::evaluate(&queries, &config);
        artifact::write_json(ctx.output("metrics")?, "metrics.json", &Value::Object(metrics.clone()))?;
        let summary = ranking::summary_only(&metrics);
        ctx.info(&headline(&summary, &config));
        Ok(StageOutcome { metrics: summary, ..StageOutcome::default() }.metric("missing_scores", missing))
    }
}

/// Reads the scores into a map by (qid, docid), rejecting a pair scored twice.
fn score_index(dir: &std::path::Path) -> Result<HashMap<(String, String), f64>, StageError> {
    let mut scores = HashMap::new();
    for line in artifact::read::<Score>(dir)? {
        let Score { qid, docid, score } = line.record;
        if scores.insert((qid.clone(), docid.clone()), score).is_some() {
            return Err(StageError::failed(format!(
                "scores.jsonl:{}: query `{qid}` and document `{docid}` are scored twice; keep one score per pair",
                line.number
            )));
        }
    }
    Ok(scores)
}

/// One log line with the main numbers, e.g. `12 queries: AUC 0.81, PNR 3.2, NDCG@10 0.64 (exp)`.
fn headline(summary: &serde_json::Map<String, Value>, config: &EvalConfig) -> String {
    let show = |name: &str| summary.get(name).and_then(Value::as_f64).map_or("undefined".to_string(), |v| format!("{v:.4}"));
    let k = config.cutoffs.last().copied().unwrap_or(10);
    format!(
        "{} queries, {} pairs: AUC {}, PNR {}, NDCG@{k} {} (exponential gain) / {} (linear gain)",
        summary["queries"],
        summary["pairs"],
        show("auc"),
        show("pnr"),
        show(&format!("ndcg_exp@{k}")),
        show(&format!("ndcg_linear@{k}")),
    )
}
