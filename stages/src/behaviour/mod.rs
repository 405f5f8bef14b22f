//! `behaviour-features`: mines (query, document) pairs from a click log, each with the
//! behaviour features of [`aggregate::FEATURES`], into a `pairs` artifact.

mod aggregate;

use std::collections::HashMap;

use flywheel_stage_api::*;
use serde_json::Map;

pub use aggregate::FEATURES;

use crate::artifact::{self, Impression, Pair, Query, json_number};
use crate::import::Skips;

pub struct BehaviourFeatures;

impl Stage for BehaviourFeatures {
    fn descriptor(&self) -> StageDescriptor {
        StageDescriptor::new("behaviour-features", "1")
            .summary("aggregate a click log into per (query, document) behaviour features: impressions, CTR, debiased CTR, skips, dwell, last clicks")
            .input(PortSpec::new("clicks", "click-log"))
            .input(PortSpec::new("queries", "queries").doc("the text of every query in the log"))
            .output(PortSpec::new("pairs", "pairs").doc("pairs.jsonl: {\"qid\", \"query\", \"docid\", \"features\"} per mined pair, sorted by qid then docid"))
            .param(ParamSpec::new("long_dwell", ParamType::Float).default(30.0).doc("dwell in seconds from which a click counts as long"))
            .param(ParamSpec::new("eta", ParamType::Float).default(1.0).doc("position-bias exponent of the propensity (1/position)^eta used by debiased_ctr"))
            .param(ParamSpec::new("min_impressions", ParamType::Int).default(1).doc("leave out pairs shown fewer times than this"))
            .param(ParamSpec::new("lenient", ParamType::Bool).default(false).doc("skip log rows whose query is not in `queries` instead of failing"))
    }

    fn run(&self, ctx: &StageContext<'_>) -> Result<StageOutcome, StageError> {
        let long_dwell = ctx.param_f64("long_dwell")?;
        let eta = ctx.param_f64("eta")?;
        if !(eta.is_finite() && eta >= 0.0) {
            return Err(StageError::InvalidParam { name: "eta".into(), message: format!("must be 0 or more, got {eta}") });
        }
        let min_impressions = ctx.param_usize("min_impressions")? as u64;
        let lenient = ctx.param_bool("lenient")?;

        let queries: HashMap<String, String> =
            artifact::read_records::<Query>(ctx.input("queries")?)?.into_iter().map(|q| (q.qid, q.text)).collect();
        let log = artifact::read::<Impression>(ctx.input("clicks")?)?;
        let mut skips = Skips::default();
        let mut rows = Vec::with_capacity(log.len());
        for line in &log {
            if queries.contains_key(&line.record.qid) {
                rows.push(&line.record);
            } else if lenient {
                skips.add("unknown_qid", line.number);
            } else {
                return Err(StageError::failed(format!(
                    "clicks.jsonl:{}: query id `{}` is not in the queries input; import the queries the log refers to, or set `lenient: true`",
                    line.number, line.record.qid
                )));
            }
        }
        skips.log(ctx, "clicks.jsonl");

        let counts = aggregate::aggregate(&rows, eta, long_dwell);
        let mut pairs = Vec::with_capacity(counts.len());
        let mut rare = 0usize;
        for ((qid, docid), pair_counts) in &counts {
            if pair_counts.impressions < min_impressions {
                rare += 1;
                continue;
            }
            let features: Map<String, serde_json::Value> =
                FEATURES.iter().zip(pair_counts.features()).map(|(name, value)| (name.to_string(), json_number(value))).collect();
            let mut pair = Pair::new(qid, &queries[qid], docid);
            pair.features = Some(features);
            pairs.push(pair);
        }
        if pairs.is_empty() {
            return Err(StageError::failed(format!(
                "clicks.jsonl: no pair has {min_impressions} or more impressions; lower `min_impressions` or give a longer log"
            )));
        }
        artifact::write(ctx.output("pairs")?, &pairs)?;
        ctx.info(&format!("mined {} pairs from {} impressions ({rare} pairs under {min_impressions} impressions left out)", pairs.len(), rows.len()));
        let outcome = StageOutcome::default()
            .metric("pairs", pairs.len())
            .metric("impressions", rows.len())
            .metric("rare_pairs", rare);
        Ok(skips.add_metrics(outcome))
    }
}
