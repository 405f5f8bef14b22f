//! MLM training data: documents tokenized and packed into fixed-length sequences, a held-out
//! evaluation split, the batch order, and masked batches.
//!
//! Packing concatenates the documents, each followed by `[SEP]`, into one token stream and
//! cuts it into pieces of `T - 2` tokens; each sequence is `[CLS] piece [SEP]`, and only the
//! last one is padded. Attention can cross document borders inside a sequence, as in RoBERTa's
//! full-sentence packing, because the attention kernel masks padding keys only.
//!
//! Every random choice derives from the seed and a sequence's global draw index (epoch·n + i),
//! so a batch depends only on the seed and the step: resuming needs no RNG state.

use flywheel_stage_api::StageError;

use super::masking::{MaskingConfig, mask_sequence};
use crate::model::{HostBatch, IGNORE_INDEX};
use crate::random::{Rng, mix};
use crate::tokenizer::PairEncoder;

/// Packed sequences of one length, each `T` tokens with its word-start flags.
pub struct Packed {
    pub seq: usize,
    pub ids: Vec<Vec<u32>>,
    pub word_start: Vec<Vec<bool>>,
    /// Real (non-padding) tokens of each sequence.
    pub lengths: Vec<usize>,
    pub pad: u32,
}

/// Tokenizes `texts` and packs them into sequences of `seq` tokens.
pub fn pack(texts: impl Iterator<Item = String>, encoder: &PairEncoder, seq: usize) -> Result<Packed, StageError> {
    let mut stream: Vec<(u32, bool)> = Vec::new();
    for text in texts {
        let encoding = encoder.tokenizer().encode(text.as_str(), false).map_err(|e| StageError::failed(format!("tokenizing a document failed: {e}")))?;
        stream.extend(encoding.get_ids().iter().zip(encoding.get_tokens()).map(|(&id, token)| (id, !token.starts_with("##"))));
        stream.push((encoder.sep, true));
    }
    let body = seq - 2;
    let mut packed = Packed { seq, ids: Vec::new(), word_start: Vec::new(), lengths: Vec::new(), pad: encoder.pad };
    for piece in stream.chunks(body) {
        let mut ids = vec![encoder.cls];
        let mut starts = vec![true];
        ids.extend(piece.iter().map(|t| t.0));
        starts.extend(piece.iter().map(|t| t.1));
        ids.push(encoder.sep);
        starts.push(true);
        packed.lengths.push(ids.len());
        ids.resize(seq, encoder.pad);
        starts.resize(seq, true);
        packed.ids.push(ids);
        packed.word_start.push(starts);
    }
    Ok(packed)
}

/// A masked batch: model inputs and MLM targets, `max_predictions` rows per sequence.
pub struct MaskedBatch {
    pub input: HostBatch,
    /// Row indices `b·T + t` into the encoder output.
    pub positions: Vec<u32>,
    /// Original tokens, or `IGNORE_INDEX` on padding rows.
    pub targets: Vec<u32>,
    /// Real targets (rows not ignored).
    pub target_count: usize,
}

/// Builds a masked batch from sequences `indices` of `packed`; `draws` are their global draw
/// indices, which seed the masking.
pub fn masked_batch(packed: &Packed, indices: &[usize], draws: &[u64], seed: u64, masking: &MaskingConfig) -> MaskedBatch {
    let (batch, seq) = (indices.len(), packed.seq);
    let mut input = HostBatch { batch, seq, ids: Vec::with_capacity(batch * seq), type_ids: vec![0; batch * seq], mask: Vec::with_capacity(batch * seq) };
    let mut positions = Vec::with_capacity(batch * masking.max_predictions);
    let mut targets = Vec::with_capacity(batch * masking.max_predictions);
    let mut target_count = 0;
    for (b, (&index, &draw)) in indices.iter().zip(draws).enumerate() {
        let mut ids = packed.ids[index].clone();
        let length = packed.lengths[index];
        let mut rng = Rng::new(mix(seed ^ mix(draw)));
        let chosen = mask_sequence(&mut ids[..length], &packed.word_start[index][..length], &mut rng, masking);
        target_count += chosen.len();
        for slot in 0..masking.max_predictions {
            let (position, target) = chosen.get(slot).map_or((0, IGNORE_INDEX), |&(p, t)| (p, t));
            positions.push((b * seq + position) as u32);
            targets.push(target);
        }
        input.mask.extend((0..seq).map(|t| u32::from(t < length)));
        input.ids.extend(ids);
    }
    MaskedBatch { input, positions, targets, target_count }
}

/// Returns the training sequence drawn at global draw index `draw`: the draws of epoch `e`
/// are a permutation of the training sequences seeded by (seed, e).
pub fn draw_sequence(train: &[usize], seed: u64, draw: u64, cache: &mut Option<(u64, Vec<usize>)>) -> usize {
    let n = train.len() as u64;
    let epoch = draw / n;
    if cache.as_ref().is_none_or(|(cached, _)| *cached != epoch) {
        let mut order = train.to_vec();
        let mut rng = Rng::new(mix(seed ^ mix(0xE90C ^ epoch)));
        for i in (1..order.len()).rev() {
            let j = (rng.next_u64() % (i as u64 + 1)) as usize;
            order.swap(i, j);
        }
        *cache = Some((epoch, order));
    }
    cache.as_ref().expect("filled above").1[(draw % n) as usize]
}
