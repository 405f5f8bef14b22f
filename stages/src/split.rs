//! `split-queries`: splits a `pairs` artifact by query into train, validation and test `pairs`.
//!
//! Every pair of a query goes to the same split, so no query leaks from training into
//! evaluation. The assignment is a seeded shuffle of the distinct query ids: each query gets the
//! key `mix(seed ^ fnv1a(qid))`, queries are ordered by (key, qid), and the first
//! `round(n * train_fraction)` go to train, the next `round(n * validation_fraction)` to
//! validation and the rest to test. It depends only on the seed and the set of query ids, not on
//! the order of the rows.

use std::collections::{BTreeSet, HashMap};

use flywheel_stage_api::*;

use crate::artifact::{self, Pair};
use crate::random::{fnv1a, mix, seed_param};

/// The three splits, in output order.
const SPLITS: [&str; 3] = ["train", "validation", "test"];

pub struct SplitQueries;

impl Stage for SplitQueries {
    fn descriptor(&self) -> StageDescriptor {
        let mut descriptor = StageDescriptor::new("split-queries", "1")
            .summary("split pairs by query (never by pair) into train, validation and test, deterministically from a seed")
            .input(PortSpec::new("pairs", "pairs"));
        for split in SPLITS {
            descriptor = descriptor.output(PortSpec::new(split, "pairs").doc("pairs.jsonl: the pairs of this split's queries, in input order"));
        }
        descriptor
            .param(ParamSpec::new("seed", ParamType::Int).default(0).doc("seed of the query shuffle"))
            .param(ParamSpec::new("train_fraction", ParamType::Float).default(0.8).doc("share of queries in train, 0 to 1"))
            .param(ParamSpec::new("validation_fraction", ParamType::Float).default(0.1).doc("share of queries in validation; test gets the rest"))
    }

    fn run(&self, ctx: &StageContext<'_>) -> Result<StageOutcome, StageError> {
        let train = fraction(ctx, "train_fraction")?;
        let validation = fraction(ctx, "validation_fraction")?;
        if train + validation > 1.0 + 1e-9 {
            return Err(StageError::InvalidParam {
                name: "validation_fraction".into(),
                message: format!("train_fraction {train} + validation_fraction {validation} is more than 1; lower one of them"),
            });
        }
        let pairs = artifact::read_records::<Pair>(ctx.input("pairs")?)?;
        let qids: BTreeSet<&str> = pairs.iter().map(|p| p.qid.as_str()).collect();
        let assignment = assign(qids.into_iter(), seed_param(ctx)?, train, validation);

        let mut outcome = StageOutcome::default().metric("queries", assignment.len());
        for (index, split) in SPLITS.iter().enumerate() {
            let rows: Vec<&Pair> = pairs.iter().filter(|p| assignment[p.qid.as_str()] == index).collect();
            let queries = assignment.values().filter(|s| **s == index).count();
            // A split whose fraction is 0 is empty on purpose (the test split of 1 - train -
            // validation included), so only an empty split that was meant to get queries warns.
            let fraction = [train, validation, 1.0 - train - validation][index];
            if queries == 0 && fraction > 1e-9 {
                ctx.log(LogLevel::Warn, &format!("the {split} split has no query; give more queries or raise its fraction"));
            }
            artifact::write(ctx.output(split)?, rows.iter().copied())?;
            ctx.info(&format!("{split}: {queries} queries, {} pairs", rows.len()));
            outcome = outcome.metric(format!("{split}_queries"), queries).metric(format!("{split}_pairs"), rows.len());
        }
        Ok(outcome)
    }
}

fn fraction(ctx: &StageContext<'_>, name: &str) -> Result<f64, StageError> {
    let value = ctx.param_f64(name)?;
    if !(0.0..=1.0).contains(&value) {
        return Err(StageError::InvalidParam { name: name.into(), message: format!("must be between 0 and 1, got {value}") });
    }
    Ok(value)
}

/// Maps each query id to its split index (0 train, 1 validation, 2 test).
fn assign<'a>(qids: impl Iterator<Item = &'a str>, seed: u64, train: f64, validation: f64) -> HashMap<&'a str, usize> {
    let mut order: Vec<(u64, &str)> = qids.map(|q| (mix(seed ^ fnv1a(q.as_bytes())), q)).collect();
    order.sort_unstable();
    let n = order.len();
    let n_train = ((n as f64 * train).round() as usize).min(n);
    let n_validation = ((n as f64 * validation).round() as usize).min(n - n_train);
    order
        .into_iter()
        .enumerate()
        .map(|(rank, (_, qid))| {
            let split = if rank < n_train {
                0
            } else if rank < n_train + n_validation {
                1
            } else {
                2
            };
            (qid, split)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn qids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("q{i}")).collect()
    }

    #[test]
    fn every_query_in_exactly_one_split() {
        let ids = qids(21);
        let assignment = assign(ids.iter().map(String::as_str), 7, 0.8, 0.1);
        assert_eq!(assignment.len(), 21);
        let count = |s: usize| assignment.values().filter(|v| **v == s).count();
        assert_eq!((count(0), count(1), count(2)), (17, 2, 2));
    }

    #[test]
    fn input_order_does_not_matter() {
        let ids = qids(50);
        let forward = assign(ids.iter().map(String::as_str), 3, 0.6, 0.2);
        let backward = assign(ids.iter().rev().map(String::as_str), 3, 0.6, 0.2);
        assert_eq!(forward, backward);
    }

    #[test]
    fn seed_changes_assignment() {
        let ids = qids(50);
        let a = assign(ids.iter().map(String::as_str), 1, 0.5, 0.25);
        let b = assign(ids.iter().map(String::as_str), 2, 0.5, 0.25);
        assert_ne!(a, b);
    }

    #[test]
    fn fractions_of_zero_and_one() {
        let ids = qids(5);
        let all_train = assign(ids.iter().map(String::as_str), 0, 1.0, 0.0);
        assert!(all_train.values().all(|s| *s == 0));
        let all_test = assign(ids.iter().map(String::as_str), 0, 0.0, 0.0);
        assert!(all_test.values().all(|s| *s == 2));
    }
}
