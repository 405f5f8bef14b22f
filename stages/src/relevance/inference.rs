//! Batched scoring of encoded pairs ([`score_examples`]) and the validation measures that pick
//! the best fine-tuning checkpoint ([`validation_measures`]).

use std::collections::BTreeMap;

use flywheel_kernels::prelude::Backend;
use flywheel_stage_api::{StageContext, StageError};

use super::data::{Example, host_batch};
use crate::model::{Bert, kernel_error};
use crate::ranking::{self, Judged};

/// The shape of scoring batches: `size` pairs, each padded with token `pad` to `seq` tokens.
#[derive(Clone, Copy, Debug)]
pub struct BatchShape {
    pub size: usize,
    pub seq: usize,
    pub pad: u32,
}

/// Returns the relevance logit of every example, scored with dropout off in batches of `shape`.
/// The last batch is filled up with copies of its last example, whose scores are dropped, so
/// every batch has the same shape and the model's buffers are allocated once. `on_batch`
/// receives the count of examples scored so far.
pub fn score_examples(ctx: &StageContext<'_>, be: &dyn Backend, bert: &mut Bert, examples: &[Example], shape: BatchShape, mut on_batch: impl FnMut(usize)) -> Result<Vec<f32>, StageError> {
    let mut scores = Vec::with_capacity(examples.len());
    let indices: Vec<usize> = (0..examples.len()).collect();
    for chunk in indices.chunks(shape.size) {
        ctx.check_cancelled()?;
        let mut rows = chunk.to_vec();
        rows.resize(shape.size, *chunk.last().expect("chunks are not empty"));
        bert.encode(be, &host_batch(examples, &rows, shape.seq, shape.pad), None)?;
        let logits = bert.relevance_forward(be)?;
        let values = be.download(&logits).map_err(kernel_error)?;
        scores.extend_from_slice(&values[..chunk.len()]);
        on_batch(scores.len());
    }
    Ok(scores)
}

/// Measures of one validation pass.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Validation {
    /// Mean NDCG@10 with exponential gain over queries with a positive ideal DCG.
    pub ndcg10: Option<f64>,
    /// Concordant / discordant same-query pairs; `None` without any discordant pair.
    pub pnr: Option<f64>,
    pub concordant: u64,
    pub discordant: u64,
}

impl Validation {
    /// Returns the value that checkpoint selection maximises for `metric` (`ndcg@10` or `pnr`).
    /// PNR without a discordant pair counts as infinite when some pair is concordant, because
    /// every comparable pair is then ordered right.
    pub fn selection_value(&self, metric: &str) -> Option<f64> {
        match metric {
            "pnr" if self.discordant == 0 && self.concordant > 0 => Some(f64::INFINITY),
            "pnr" => self.pnr,
            _ => self.ndcg10,
        }
    }
}

/// Computes NDCG@10 and PNR of `scores` against the examples' labels (their grades).
pub fn validation_measures(examples: &[Example], scores: &[f32]) -> Validation {
    let mut queries: BTreeMap<String, Vec<Judged>> = BTreeMap::new();
    for (example, score) in examples.iter().zip(scores) {
        queries.entry(example.qid.clone()).or_default().push(Judged { grade: f64::from(example.label), score: f64::from(*score) });
    }
    let (mut concordant, mut discordant) = (0, 0);
    let mut ndcg_values = Vec::new();
    for docs in queries.values() {
        let (c, d) = ranking::pnr_counts(docs);
        concordant += c;
        discordant += d;
        ndcg_values.extend(ranking::ndcg(docs, 10, ranking::Gain::Exponential));
    }
    let ndcg10 = (!ndcg_values.is_empty()).then(|| ndcg_values.iter().sum::<f64>() / ndcg_values.len() as f64);
    Validation { ndcg10, pnr: ranking::pnr(concordant, discordant), concordant, discordant }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenizer::PairEncoding;

    fn graded(qid: &str, grade: f32) -> Example {
        Example { qid: qid.into(), docid: String::new(), line: 1, label: grade, tokens: PairEncoding { ids: vec![], type_ids: vec![] } }
    }

    #[test]
    fn validation_matches_golden_query() {
        // Labels [3,2,0,1,0] with scores [0.9,0.3,0.8,0.4,0.1]: PNR 2.0, NDCG@10 (exp) as NDCG@5.
        let examples: Vec<Example> = [3.0, 2.0, 0.0, 1.0, 0.0].iter().map(|&g| graded("q", g)).collect();
        let validation = validation_measures(&examples, &[0.9, 0.3, 0.8, 0.4, 0.1]);
        assert_eq!(validation.pnr, Some(2.0));
        assert!((validation.ndcg10.unwrap() - 0.9360).abs() < 1e-4, "{validation:?}");
    }

    #[test]
    fn perfect_order_selects_as_infinite_pnr() {
        let examples = vec![graded("q", 1.0), graded("q", 0.0)];
        let validation = validation_measures(&examples, &[0.7, 0.2]);
        assert_eq!(validation.pnr, None);
        assert_eq!(validation.selection_value("pnr"), Some(f64::INFINITY));
        assert_eq!(validation.selection_value("ndcg@10"), Some(1.0));
    }
}
