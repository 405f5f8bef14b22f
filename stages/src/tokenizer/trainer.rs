//! A deterministic WordPiece vocabulary trainer.
//!
//! The `tokenizers` crate's trainer numbers continuation symbols in hash-map order, so two runs
//! on the same corpus can break ties between equally frequent merges differently and give
//! different vocabularies, which would change every cache key downstream. This trainer makes
//! the same merges BERT-style WordPiece training makes (the most frequent adjacent symbol pair,
//! counted over word frequencies), with ties broken by the symbols' text.
//!
//! 1. Normalize and pre-tokenize every text into words; count the words.
//! 2. Split each word into characters, all but the first prefixed with `##`.
//! 3. Repeat until the vocabulary is full or no pair occurs `min_frequency` times: merge the
//!    most frequent pair everywhere and add the merged symbol to the vocabulary.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use tokenizers::normalizers::bert::BertNormalizer;
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::{NormalizedString, Normalizer, OffsetReferential, OffsetType, PreTokenizedString, PreTokenizer};

use super::SPECIAL_TOKENS;

/// Marks a symbol that continues a word.
const CONTINUATION: &str = "##";

/// A unique word with its frequency, as a sequence of symbol ids.
struct Word {
    symbols: Vec<u32>,
    count: u64,
}

/// Returns the words of `text` after BERT normalization and pre-tokenization.
fn words(text: &str, normalizer: &BertNormalizer) -> Vec<String> {
    let mut normalized = NormalizedString::from(text);
    if normalizer.normalize(&mut normalized).is_err() {
        return Vec::new();
    }
    let mut pre_tokenized = PreTokenizedString::from(normalized.get());
    if BertPreTokenizer.pre_tokenize(&mut pre_tokenized).is_err() {
        return Vec::new();
    }
    pre_tokenized
        .get_splits(OffsetReferential::Original, OffsetType::Byte)
        .into_iter()
        .map(|(word, _, _)| word.to_string())
        .collect()
}

/// Symbol table: text <-> id, ids in creation order.
#[derive(Default)]
struct Symbols {
    text: Vec<String>,
    ids: HashMap<String, u32>,
}

impl Symbols {
    fn intern(&mut self, symbol: String) -> u32 {
        if let Some(&id) = self.ids.get(&symbol) {
            return id;
        }
        let id = self.text.len() as u32;
        self.ids.insert(symbol.clone(), id);
        self.text.push(symbol);
        id
    }
}

/// Trains a vocabulary; returns tokens in id order, special tokens first.
pub fn train(texts: impl Iterator<Item = String>, normalizer: &BertNormalizer, vocab_size: usize, min_frequency: u64) -> Vec<String> {
    // Step 1: word counts, in a sorted map so every later step reads words in one order.
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for text in texts {
        for word in words(&text, normalizer) {
            *counts.entry(word).or_default() += 1;
        }
    }

    // Step 2: the alphabet, sorted, after the special tokens.
    let mut symbols = Symbols::default();
    let mut vocab: Vec<String> = SPECIAL_TOKENS.iter().map(|t| t.to_string()).collect();
    let mut alphabet = BTreeSet::new();
    for word in counts.keys() {
        for (i, c) in word.chars().enumerate() {
            alphabet.insert(if i == 0 { c.to_string() } else { format!("{CONTINUATION}{c}") });
        }
    }
    for symbol in &alphabet {
        symbols.intern(symbol.clone());
        if !vocab.contains(symbol) {
            vocab.push(symbol.clone());
        }
    }
    let mut words: Vec<Word> = counts
        .iter()
        .map(|(word, &count)| {
            let symbols = word
                .chars()
                .enumerate()
                .map(|(i, c)| symbols.ids[&if i == 0 { c.to_string() } else { format!("{CONTINUATION}{c}") }])
                .collect();
            Word { symbols, count }
        })
        .collect();

    // Step 3: merges. Pair counts are kept up to date incrementally. `ranked` orders pairs by
    // count (highest first), then by the pair's text, so the choice never depends on hashing.
    let mut pair_counts: HashMap<(u32, u32), u64> = HashMap::new();
    let mut where_found: HashMap<(u32, u32), BTreeSet<usize>> = HashMap::new();
    for (w, word) in words.iter().enumerate() {
        for pair in word.symbols.windows(2) {
            *pair_counts.entry((pair[0], pair[1])).or_default() += word.count;
            where_found.entry((pair[0], pair[1])).or_default().insert(w);
        }
    }
    let key = |symbols: &Symbols, pair: (u32, u32), count: u64| {
        (Reverse(count), symbols.text[pair.0 as usize].clone(), symbols.text[pair.1 as usize].clone(), pair)
    };
    let mut ranked: BTreeSet<(Reverse<u64>, String, String, (u32, u32))> =
        pair_counts.iter().map(|(&pair, &count)| key(&symbols, pair, count)).collect();

    while vocab.len() < vocab_size {
        let Some(best) = ranked.pop_first() else { break };
        let (Reverse(count), left, right, pair) = best;
        if count < min_frequency.max(1) {
            break;
        }
        let merged = format!("{left}{}", right.strip_prefix(CONTINUATION).unwrap_or(&right));
        let merged_id = symbols.intern(merged.clone());
        if !vocab.contains(&merged) {
            vocab.push(merged);
        }
        let affected = where_found.remove(&pair).unwrap_or_default();
        pair_counts.remove(&pair);
        for w in affected {
            let word = &mut words[w];
            let mut changes: HashMap<(u32, u32), i64> = HashMap::new();
            for old in word.symbols.windows(2) {
                *changes.entry((old[0], old[1])).or_default() -= word.count as i64;
            }
            let mut merged_symbols = Vec::with_capacity(word.symbols.len());
            let mut i = 0;
            while i < word.symbols.len() {
                if i + 1 < word.symbols.len() && (word.symbols[i], word.symbols[i + 1]) == pair {
                    merged_symbols.push(merged_id);
                    i += 2;
                } else {
                    merged_symbols.push(word.symbols[i]);
                    i += 1;
                }
            }
            word.symbols = merged_symbols;
            for new in word.symbols.windows(2) {
                *changes.entry((new[0], new[1])).or_default() += word.count as i64;
                where_found.entry((new[0], new[1])).or_default().insert(w);
            }
            for (changed, delta) in changes {
                if delta == 0 || changed == pair {
                    continue;
                }
                let old_count = pair_counts.get(&changed).copied().unwrap_or(0);
                let new_count = (old_count as i64 + delta).max(0) as u64;
                ranked.remove(&key(&symbols, changed, old_count));
                if new_count > 0 {
                    pair_counts.insert(changed, new_count);
                    ranked.insert(key(&symbols, changed, new_count));
                } else {
                    pair_counts.remove(&changed);
                }
            }
        }
    }
    vocab
}
