//! Training and scoring data of the neural relevance stages: [`Example`] (one encoded
//! query-document pair with its label), [`load_examples`] (a `pairs` artifact joined with its
//! `corpus`), [`BatchOrder`] (the batch sequence of training) and [`host_batch`] (examples as
//! model input).
//!
//! Batch order. Each epoch shuffles the queries, and the pairs inside each query, then lays all
//! pairs of one query side by side. Training reads this endless stream `batch_size` pairs at a
//! time. So a batch depends only on the seed and the step, and a resumed run needs no random
//! state. The pairs of one query mostly share a batch, where the pairwise losses compare them.

use std::collections::HashMap;
use std::path::Path;

use flywheel_stage_api::StageError;

use crate::artifact::{self, Document, Line, Pair};
use crate::model::HostBatch;
use crate::random::{Rng, mix};
use crate::tokenizer::{PairEncoder, PairEncoding};

/// One query-document pair, encoded as `[CLS] query [SEP] document [SEP]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Example {
    pub qid: String,
    pub docid: String,
    /// Line of the pair in `pairs.jsonl`, 1-based, for messages.
    pub line: usize,
    /// The stage's training target before scaling: pseudo label, grade or teacher score.
    pub label: f32,
    pub tokens: PairEncoding,
}

/// Reads `docs.jsonl` of a corpus into a map from document id to text.
pub fn read_corpus(dir: &Path) -> Result<HashMap<String, String>, StageError> {
    let mut texts = HashMap::new();
    for line in artifact::read::<Document>(dir)? {
        texts.insert(line.record.id, line.record.text);
    }
    Ok(texts)
}

/// Pairs of one `pairs` artifact with their labels: `label_of` returns `Ok(None)` for a pair the
/// stage leaves out (it is counted in `skipped`) and `Err` for a pair that makes the input
/// invalid.
pub struct Loaded {
    pub examples: Vec<Example>,
    pub skipped: usize,
}

/// Reads the pairs in `pairs_dir`, labels them with `label_of`, and encodes each with the text
/// of its document from `corpus`.
///
/// Fails when a kept pair names a document the corpus lacks, before any pair is encoded.
pub fn load_examples(
    pairs_dir: &Path,
    corpus: &HashMap<String, String>,
    encoder: &PairEncoder,
    mut label_of: impl FnMut(&Line<Pair>) -> Result<Option<f32>, StageError>,
) -> Result<Loaded, StageError> {
    let mut kept = Vec::new();
    let mut skipped = 0;
    for line in artifact::read::<Pair>(pairs_dir)? {
        match label_of(&line)? {
            Some(label) => kept.push((line, label)),
            None => skipped += 1,
        }
    }
    let missing: Vec<&Line<Pair>> = kept.iter().map(|(line, _)| line).filter(|line| !corpus.contains_key(&line.record.docid)).collect();
    if let Some(first) = missing.first() {
        return Err(StageError::failed(format!(
            "pairs.jsonl:{}: document `{}` (query `{}`) is not in the corpus, and {} pairs in all name missing documents; connect the corpus the pairs were built from",
            first.number,
            first.record.docid,
            first.record.qid,
            missing.len()
        )));
    }
    let mut examples = Vec::with_capacity(kept.len());
    for (line, label) in kept {
        let tokens = encoder
            .encode_pair(&line.record.query, &corpus[&line.record.docid])
            .map_err(|e| StageError::failed(format!("pairs.jsonl:{}: encoding query `{}` failed: {e}", line.number, line.record.qid)))?;
        examples.push(Example { qid: line.record.qid, docid: line.record.docid, line: line.number, label, tokens });
    }
    Ok(Loaded { examples, skipped })
}

/// Returns the sequence length of every batch: the longest encoded pair. Padding all batches to
/// one length keeps the model's buffers allocated once.
pub fn sequence_length(examples: &[Example]) -> usize {
    examples.iter().map(|e| e.tokens.ids.len()).max().unwrap_or(1)
}

/// Builds model input from `examples[indices]`, each padded with `pad` to `seq` tokens.
pub fn host_batch(examples: &[Example], indices: &[usize], seq: usize, pad: u32) -> HostBatch {
    let batch = indices.len();
    let mut host = HostBatch { batch, seq, ids: Vec::with_capacity(batch * seq), type_ids: Vec::with_capacity(batch * seq), mask: Vec::with_capacity(batch * seq) };
    for &index in indices {
        let tokens = &examples[index].tokens;
        let length = tokens.ids.len();
        host.ids.extend(tokens.ids.iter().copied().chain(std::iter::repeat_n(pad, seq - length)));
        host.type_ids.extend(tokens.type_ids.iter().copied().chain(std::iter::repeat_n(0, seq - length)));
        host.mask.extend((0..seq).map(|t| u32::from(t < length)));
    }
    host
}

/// The endless, seeded stream of training examples described in the module docs.
pub struct BatchOrder {
    /// Example indices of each query, in the order queries first appear in the pairs.
    groups: Vec<Vec<usize>>,
    total: u64,
    seed: u64,
    /// The last epoch's order, reused while batches stay in that epoch.
    cache: Option<(u64, Vec<usize>)>,
}

impl BatchOrder {
    pub fn new(examples: &[Example], seed: u64) -> BatchOrder {
        let mut position: HashMap<&str, usize> = HashMap::new();
        let mut groups: Vec<Vec<usize>> = Vec::new();
        for (index, example) in examples.iter().enumerate() {
            let group = *position.entry(example.qid.as_str()).or_insert_with(|| {
                groups.push(Vec::new());
                groups.len() - 1
            });
            groups[group].push(index);
        }
        BatchOrder { groups, total: examples.len() as u64, seed, cache: None }
    }

    /// Returns the example order of one epoch: queries shuffled, pairs of each query shuffled
    /// and kept together.
    pub fn epoch_order(&self, epoch: u64) -> Vec<usize> {
        let mut rng = Rng::new(mix(self.seed ^ mix(0x5E1E_C7ED ^ epoch)));
        let mut groups = self.groups.clone();
        shuffle(&mut groups, &mut rng);
        for group in &mut groups {
            shuffle(group, &mut rng);
        }
        groups.concat()
    }

    /// Returns the `batch_size` example indices of training step `step` (0-based).
    pub fn batch(&mut self, step: u64, batch_size: usize) -> Vec<usize> {
        let start = step * batch_size as u64;
        (start..start + batch_size as u64).map(|draw| self.draw(draw)).collect()
    }

    fn draw(&mut self, draw: u64) -> usize {
        let epoch = draw / self.total;
        if self.cache.as_ref().is_none_or(|(cached, _)| *cached != epoch) {
            self.cache = Some((epoch, self.epoch_order(epoch)));
        }
        self.cache.as_ref().expect("filled above").1[(draw % self.total) as usize]
    }
}

/// Fisher-Yates shuffle with the stages' own generator, so an order never changes with a
/// dependency upgrade.
fn shuffle<T>(items: &mut [T], rng: &mut Rng) {
    for i in (1..items.len()).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example(qid: &str, docid: &str, ids: Vec<u32>) -> Example {
        let type_ids = vec![0; ids.len()];
        Example { qid: qid.into(), docid: docid.into(), line: 1, label: 0.0, tokens: PairEncoding { ids, type_ids } }
    }

    fn examples() -> Vec<Example> {
        let mut all = Vec::new();
        for q in 0..3 {
            for d in 0..4 {
                all.push(example(&format!("q{q}"), &format!("d{q}{d}"), vec![2, 10 + d, 3]));
            }
        }
        all
    }

    #[test]
    fn epoch_keeps_query_pairs_together() {
        let examples = examples();
        let order = BatchOrder::new(&examples, 7).epoch_order(0);
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..12).collect::<Vec<_>>(), "an epoch holds every pair once");
        for chunk in order.chunks(4) {
            let qid = &examples[chunk[0]].qid;
            assert!(chunk.iter().all(|&i| &examples[i].qid == qid), "query pairs split: {order:?}");
        }
    }

    #[test]
    fn batches_depend_on_seed_and_step_only() {
        let examples = examples();
        let mut first = BatchOrder::new(&examples, 7);
        let mut second = BatchOrder::new(&examples, 7);
        let late = first.batch(5, 4);
        let _ = first.batch(0, 4);
        assert_eq!(second.batch(5, 4), late, "a batch must not depend on earlier batches");
        assert_ne!(BatchOrder::new(&examples, 8).epoch_order(0), BatchOrder::new(&examples, 7).epoch_order(0));
        assert_ne!(first.epoch_order(1), first.epoch_order(0), "each epoch reshuffles");
    }

    #[test]
    fn host_batch_pads_and_masks() {
        let examples = vec![example("q", "a", vec![2, 7, 3]), example("q", "b", vec![2, 3])];
        let host = host_batch(&examples, &[0, 1], 4, 0);
        assert_eq!(host.ids, [2, 7, 3, 0, 2, 3, 0, 0]);
        assert_eq!(host.mask, [1, 1, 1, 0, 1, 1, 0, 0]);
        assert_eq!(host.type_ids.len(), 8);
    }
}
