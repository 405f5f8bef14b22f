//! `simulate-clicks`: SIMULATED behaviour logs for data that has human grades but no logs.
//!
//! The output is not user behaviour. It is what the documented [`ClickModel`] (position-biased
//! examination, grade-dependent clicks and dwell, satisfied exits, noise clicks) does on the
//! rankings of a first-stage scorer, so the behaviour stages and the teacher can be built and
//! tested before real logs exist. Each query's ranking orders its graded documents by score,
//! highest first, with ties in docid order.

mod model;

use std::collections::{BTreeMap, HashMap};

use flywheel_stage_api::*;
use serde_json::{Map, json};

pub use model::ClickModel;

use crate::artifact::{self, Impression, Pair, Score};
use crate::random::{Rng, seed_param};

pub struct SimulateClicks;

impl Stage for SimulateClicks {
    fn descriptor(&self) -> StageDescriptor {
        let float = |name: &str, default: f64, doc: &str| ParamSpec::new(name, ParamType::Float).default(default).doc(doc);
        StageDescriptor::new("simulate-clicks", "1")
            .summary("SIMULATION, not real users: semi-synthetic click logs from graded pairs with a position-biased click model over a scorer's rankings")
            .input(PortSpec::new("scores", "scores").doc("the first-stage scorer whose rankings the simulated users see"))
            .input(PortSpec::new("pairs", "pairs").doc("graded pairs; the grades drive the simulated clicks and dwell"))
            .output(PortSpec::new("clicks", "click-log").doc("clicks.jsonl of SIMULATED impressions, with a `session` field per result page"))
            .param(ParamSpec::new("seed", ParamType::Int).default(0).doc("seed of the simulation"))
            .param(ParamSpec::new("sessions_per_query", ParamType::Int).default(50).doc("simulated result pages per query"))
            .param(ParamSpec::new("depth", ParamType::Int).default(10).doc("documents shown per simulated page, from the top of the ranking"))
            .param(float("eta", 1.0, "position-bias exponent: a simulated user examines rank r with probability (1/r)^eta"))
            .param(float("click_noise", 0.05, "simulated click probability of an examined grade-0 document"))
            .param(float("click_relevant", 0.9, "simulated click probability of an examined top-grade document"))
            .param(float("max_grade", 0.0, "the top grade of the simulated click and dwell scale; 0 takes the highest grade in the pairs"))
            .param(float("dwell_irrelevant", 8.0, "median simulated dwell, in seconds, after clicking a grade-0 document"))
            .param(float("dwell_relevant", 60.0, "median simulated dwell, in seconds, after clicking a top-grade document"))
            .param(float("dwell_sigma", 0.5, "standard deviation of the logarithm of the simulated dwell"))
            .param(float("satisfied_dwell", 30.0, "dwell in seconds from which a simulated click satisfies the user"))
            .param(float("stop_after_satisfied", 0.5, "probability that a satisfied simulated user leaves the page"))
    }

    fn run(&self, ctx: &StageContext<'_>) -> Result<StageOutcome, StageError> {
        let pairs = artifact::read_records::<Pair>(ctx.input("pairs")?)?;
        let scores = artifact::read_records::<Score>(ctx.input("scores")?)?;
        let data_max_grade = pairs.iter().filter_map(|p| p.grade).fold(0.0, f64::max);
        let model = model_from_params(ctx, data_max_grade)?;
        let sessions = positive(ctx, "sessions_per_query")?;
        let seed = seed_param(ctx)?;

        let rankings = rankings(&pairs, &scores)?;
        let mut impressions = Vec::new();
        for (index, (qid, ranking)) in rankings.iter().enumerate() {
            ctx.check_cancelled()?;
            let grades: Vec<f64> = ranking.iter().map(|(_, grade)| *grade).collect();
            let mut rng = Rng::for_item(seed, qid);
            for session in 1..=sessions {
                for impression in model.session(&grades, &mut rng) {
                    let mut extra = Map::new();
                    extra.insert("session".into(), json!(format!("{qid}:{session}")));
                    impressions.push(Impression {
                        qid: qid.clone(),
                        docid: ranking[impression.position as usize - 1].0.clone(),
                        position: impression.position,
                        click: u8::from(impression.click),
                        dwell: impression.dwell,
                        extra,
                    });
                }
            }
            ctx.progress(index as u64 + 1, rankings.len() as u64, "queries simulated");
        }
        artifact::write(ctx.output("clicks")?, &impressions)?;

        let clicks = impressions.iter().filter(|i| i.click == 1).count();
        ctx.info(&format!(
            "SIMULATED {} sessions of {} queries: {} impressions, {clicks} clicks (max grade {})",
            sessions * rankings.len(),
            rankings.len(),
            impressions.len(),
            model.max_grade
        ));
        let mut outcome = StageOutcome::default()
            .metric("simulated", true)
            .metric("queries", rankings.len())
            .metric("sessions", sessions * rankings.len())
            .metric("impressions", impressions.len())
            .metric("clicks", clicks)
            .metric("ctr", if impressions.is_empty() { 0.0 } else { clicks as f64 / impressions.len() as f64 });
        outcome.metadata.insert("clicks".into(), json!({"simulated": true, "click_model": model}));
        Ok(outcome)
    }
}

/// Returns each query's graded documents ordered by score (highest first, ties by docid), with
/// their grades, keyed by qid.
fn rankings(pairs: &[Pair], scores: &[Score]) -> Result<BTreeMap<String, Vec<(String, f64)>>, StageError> {
    let score_of: HashMap<(&str, &str), f64> = scores.iter().map(|s| ((s.qid.as_str(), s.docid.as_str()), s.score)).collect();
    let mut by_query: BTreeMap<String, Vec<(String, f64, f64)>> = BTreeMap::new();
    for pair in pairs {
        let Some(grade) = pair.grade else { continue };
        let Some(score) = score_of.get(&(pair.qid.as_str(), pair.docid.as_str())) else {
            return Err(StageError::failed(format!(
                "scores.jsonl has no score for query `{}` and document `{}`; score every graded pair with the first-stage scorer",
                pair.qid, pair.docid
            )));
        };
        by_query.entry(pair.qid.clone()).or_default().push((pair.docid.clone(), grade, *score));
    }
    if by_query.is_empty() {
        return Err(StageError::failed("pairs.jsonl has no graded pair; simulated clicks need grades"));
    }
    Ok(by_query
        .into_iter()
        .map(|(qid, mut docs)| {
            docs.sort_by(|a, b| b.2.total_cmp(&a.2).then_with(|| a.0.cmp(&b.0)));
            (qid, docs.into_iter().map(|(docid, grade, _)| (docid, grade)).collect())
        })
        .collect())
}

fn model_from_params(ctx: &StageContext<'_>, data_max_grade: f64) -> Result<ClickModel, StageError> {
    let max_grade = ctx.param_f64("max_grade")?;
    let model = ClickModel {
        depth: positive(ctx, "depth")?,
        eta: at_least(ctx, "eta", 0.0)?,
        click_noise: probability(ctx, "click_noise")?,
        click_relevant: probability(ctx, "click_relevant")?,
        max_grade: if max_grade > 0.0 { max_grade } else { data_max_grade },
        dwell_irrelevant: positive_float(ctx, "dwell_irrelevant")?,
        dwell_relevant: positive_float(ctx, "dwell_relevant")?,
        dwell_sigma: at_least(ctx, "dwell_sigma", 0.0)?,
        satisfied_dwell: at_least(ctx, "satisfied_dwell", 0.0)?,
        stop_after_satisfied: probability(ctx, "stop_after_satisfied")?,
    };
    Ok(model)
}

fn invalid(name: &str, message: String) -> StageError {
    StageError::InvalidParam { name: name.to_string(), message }
}

fn positive(ctx: &StageContext<'_>, name: &str) -> Result<usize, StageError> {
    match ctx.param_usize(name)? {
        0 => Err(invalid(name, "must be 1 or more, got 0".into())),
        n => Ok(n),
    }
}

fn at_least(ctx: &StageContext<'_>, name: &str, minimum: f64) -> Result<f64, StageError> {
    let value = ctx.param_f64(name)?;
    if value.is_finite() && value >= minimum { Ok(value) } else { Err(invalid(name, format!("must be {minimum} or more, got {value}"))) }
}

fn positive_float(ctx: &StageContext<'_>, name: &str) -> Result<f64, StageError> {
    let value = ctx.param_f64(name)?;
    if value.is_finite() && value > 0.0 { Ok(value) } else { Err(invalid(name, format!("must be more than 0, got {value}"))) }
}

fn probability(ctx: &StageContext<'_>, name: &str) -> Result<f64, StageError> {
    let value = ctx.param_f64(name)?;
    if (0.0..=1.0).contains(&value) { Ok(value) } else { Err(invalid(name, format!("is a probability, between 0 and 1, got {value}"))) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(qid: &str, docid: &str, grade: f64) -> Pair {
        let mut pair = Pair::new(qid, "query", docid);
        pair.grade = Some(grade);
        pair
    }

    fn score(qid: &str, docid: &str, score: f64) -> Score {
        Score { qid: qid.into(), docid: docid.into(), score }
    }

    #[test]
    fn ranking_orders_by_score_then_docid() {
        let pairs = [pair("q", "b", 1.0), pair("q", "a", 0.0), pair("q", "c", 2.0)];
        let scores = [score("q", "a", 0.5), score("q", "b", 0.5), score("q", "c", 0.9), score("q", "z", 1.0)];
        let rankings = rankings(&pairs, &scores).unwrap();
        let order: Vec<&str> = rankings["q"].iter().map(|(d, _)| d.as_str()).collect();
        assert_eq!(order, ["c", "a", "b"]);
    }

    #[test]
    fn ranking_requires_a_score_per_graded_pair() {
        let error = rankings(&[pair("q", "a", 1.0)], &[]).unwrap_err().to_string();
        assert!(error.contains("no score for query `q` and document `a`"), "{error}");
    }
}
