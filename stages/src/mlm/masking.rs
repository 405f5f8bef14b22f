//! BERT's masking for the MLM objective.
//!
//! Of the maskable tokens of a sequence (every token except the special ones), `round(p·n)`
//! (at least 1) are chosen as prediction targets. Each chosen token becomes `[MASK]` with
//! probability 0.8, a random non-special token with probability 0.1, and stays unchanged with
//! probability 0.1. With whole-word masking, a word (a token and the `##` pieces after it) is
//! chosen or left whole.

use crate::random::Rng;

#[derive(Clone, Debug)]
pub struct MaskingConfig {
    pub probability: f64,
    pub whole_word: bool,
    pub mask_id: u32,
    pub vocab_size: u32,
    /// Ids that are never chosen and never drawn as random replacements.
    pub special_ids: Vec<u32>,
    /// Cap on targets per sequence (the head's rows per sequence).
    pub max_predictions: usize,
}

/// One prediction target: the position in the sequence and the original token.
pub type Target = (usize, u32);

/// Masks `ids` in place and returns the targets in position order. `word_start[i]` says
/// whether token `i` starts a word (false for `##` continuation pieces).
pub fn mask_sequence(ids: &mut [u32], word_start: &[bool], rng: &mut Rng, config: &MaskingConfig) -> Vec<Target> {
    // 1. Group maskable positions into units: words, or single tokens.
    let mut units: Vec<Vec<usize>> = Vec::new();
    for (i, &id) in ids.iter().enumerate() {
        if config.special_ids.contains(&id) {
            continue;
        }
        let continues = config.whole_word && !word_start[i] && units.last().is_some_and(|u| *u.last().unwrap() + 1 == i);
        if continues {
            units.last_mut().unwrap().push(i);
        } else {
            units.push(vec![i]);
        }
    }
    let maskable: usize = units.iter().map(Vec::len).sum();
    if maskable == 0 {
        return Vec::new();
    }
    let wanted = ((maskable as f64 * config.probability).round() as usize).max(1).min(config.max_predictions);

    // 2. Shuffle the units (Fisher-Yates) and take them until `wanted` tokens are chosen.
    for i in (1..units.len()).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        units.swap(i, j);
    }
    let mut chosen: Vec<usize> = Vec::with_capacity(wanted);
    for unit in &units {
        if chosen.len() + unit.len() > wanted {
            continue;
        }
        chosen.extend(unit);
        if chosen.len() == wanted {
            break;
        }
    }
    chosen.sort_unstable();

    // 3. Replace: 80 % [MASK], 10 % a random token, 10 % unchanged.
    let mut targets = Vec::with_capacity(chosen.len());
    for position in chosen {
        targets.push((position, ids[position]));
        let draw = rng.uniform();
        if draw < 0.8 {
            ids[position] = config.mask_id;
        } else if draw < 0.9 {
            ids[position] = random_token(rng, config);
        }
    }
    targets
}

fn random_token(rng: &mut Rng, config: &MaskingConfig) -> u32 {
    loop {
        let id = (rng.next_u64() % u64::from(config.vocab_size)) as u32;
        if !config.special_ids.contains(&id) {
            return id;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(whole_word: bool) -> MaskingConfig {
        MaskingConfig { probability: 0.15, whole_word, mask_id: 4, vocab_size: 100, special_ids: vec![0, 1, 2, 3, 4], max_predictions: 1000 }
    }

    #[test]
    fn special_tokens_never_masked() {
        let mut rng = Rng::new(1);
        for _ in 0..200 {
            let mut ids: Vec<u32> = vec![2, 10, 11, 12, 3, 13, 14, 3, 0, 0];
            let original = ids.clone();
            let targets = mask_sequence(&mut ids, &[true; 10], &mut rng, &config(false));
            for (i, &id) in original.iter().enumerate() {
                if id < 5 {
                    assert_eq!(ids[i], id, "special token at {i} changed");
                    assert!(targets.iter().all(|&(p, _)| p != i));
                }
            }
        }
    }

    #[test]
    fn split_is_close_to_80_10_10() {
        let mut rng = Rng::new(2);
        let (mut masked, mut random, mut kept, mut total) = (0, 0, 0, 0);
        for _ in 0..2000 {
            let mut ids: Vec<u32> = (10..50).collect();
            let original = ids.clone();
            let targets = mask_sequence(&mut ids, &[true; 40], &mut rng, &config(false));
            assert_eq!(targets.len(), 6, "15 % of 40 tokens");
            for (position, target) in targets {
                assert_eq!(original[position], target);
                total += 1;
                match ids[position] {
                    4 => masked += 1,
                    id if id == target => kept += 1,
                    _ => random += 1,
                }
            }
        }
        let share = |count: i32| f64::from(count) / f64::from(total);
        assert!((share(masked) - 0.8).abs() < 0.02, "masked {}", share(masked));
        // A random replacement equal to the original counts as kept: 1 % of 10 %.
        assert!((share(random) - 0.1).abs() < 0.02, "random {}", share(random));
        assert!((share(kept) - 0.1).abs() < 0.02, "kept {}", share(kept));
    }

    #[test]
    fn whole_words_masked_together() {
        let mut rng = Rng::new(3);
        let starts = [true, false, false, true, false, true, true, false, true, true];
        for _ in 0..200 {
            let mut ids: Vec<u32> = (10..20).collect();
            let targets = mask_sequence(&mut ids, &starts, &mut rng, &MaskingConfig { probability: 0.3, ..config(true) });
            let positions: Vec<usize> = targets.iter().map(|t| t.0).collect();
            for &p in &positions {
                let mut start = p;
                while !starts[start] {
                    start -= 1;
                }
                let mut end = p + 1;
                while end < 10 && !starts[end] {
                    end += 1;
                }
                assert!((start..end).all(|q| positions.contains(&q)), "word {start}..{end} split in {positions:?}");
            }
        }
    }
}
