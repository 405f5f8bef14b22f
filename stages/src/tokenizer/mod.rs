//! WordPiece tokenizers for BERT: training ([`train_wordpiece`]), import of a Hugging Face
//! `tokenizer.json` or a BERT `vocab.txt` ([`import`]), and query-document pair encoding
//! ([`PairEncoder`]).
//!
//! A `tokenizer` artifact contains `tokenizer.json` (Hugging Face format, loadable by
//! `transformers`) and `vocab.txt` (one token per line, line number = id).

mod stages;
pub mod trainer;

use std::fs;
use std::path::Path;

use flywheel_stage_api::StageError;
use tokenizers::decoders::wordpiece::WordPiece as WordPieceDecoder;
use tokenizers::models::wordpiece::WordPiece;
use tokenizers::normalizers::bert::BertNormalizer;
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::processors::bert::BertProcessing;
use tokenizers::Tokenizer;

pub use stages::{ImportTokenizer, TrainTokenizer};

/// Special tokens in id order: a trained vocabulary starts with them.
pub const SPECIAL_TOKENS: [&str; 5] = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];

/// Text normalization before WordPiece: BERT's rules (control characters removed, white
/// space unified, each CJK ideograph split into its own word) plus these two switches.
#[derive(Clone, Copy, Debug)]
pub struct Normalization {
    pub lowercase: bool,
    pub strip_accents: bool,
}

fn bert_normalizer(norm: Normalization) -> BertNormalizer {
    // clean_text, handle_chinese_chars, strip_accents, lowercase
    BertNormalizer::new(true, true, Some(norm.strip_accents), norm.lowercase)
}

fn tokenizer_error(context: &str, error: impl std::fmt::Display) -> StageError {
    StageError::failed(format!("{context}: {error}"))
}

/// Trains a WordPiece vocabulary of at most `vocab_size` tokens on `texts`; the same texts
/// always give the same vocabulary (see [`trainer`]).
pub fn train_wordpiece<I>(texts: I, vocab_size: usize, min_frequency: u64, norm: Normalization) -> Result<Tokenizer, StageError>
where
    I: Iterator<Item = String> + Send,
{
    let tokens = trainer::train(texts, &bert_normalizer(norm), vocab_size, min_frequency);
    let vocab: serde_json::Map<String, serde_json::Value> =
        tokens.into_iter().enumerate().map(|(id, token)| (token, serde_json::Value::from(id))).collect();
    // The model's own map type is not public, so the model is built from its JSON form.
    let json = serde_json::json!({
        "type": "WordPiece",
        "unk_token": "[UNK]",
        "continuing_subword_prefix": "##",
        "max_input_chars_per_word": 100,
        "vocab": vocab,
    })
    .to_string();
    let model: WordPiece = serde_json::from_str(&json).map_err(|e| tokenizer_error("cannot build WordPiece", e))?;
    let mut tokenizer = Tokenizer::new(model);
    tokenizer.with_normalizer(Some(bert_normalizer(norm))).map_err(|e| tokenizer_error("cannot set normalizer", e))?;
    tokenizer.with_pre_tokenizer(Some(BertPreTokenizer));
    tokenizer.with_decoder(Some(WordPieceDecoder::default()));
    let id = |token: &str| tokenizer.token_to_id(token).ok_or_else(|| StageError::failed(format!("trained vocabulary lacks {token}")));
    let (cls, sep) = (id("[CLS]")?, id("[SEP]")?);
    tokenizer.with_post_processor(Some(BertProcessing::new(("[SEP]".into(), sep), ("[CLS]".into(), cls))));
    Ok(tokenizer)
}

/// Builds a BERT tokenizer from a `vocab.txt`.
pub fn from_vocab(vocab: &Path, norm: Normalization) -> Result<Tokenizer, StageError> {
    let path = vocab.to_str().ok_or_else(|| StageError::failed(format!("{}: path is not UTF-8", vocab.display())))?;
    let model = WordPiece::from_file(path).unk_token("[UNK]".into()).build().map_err(|e| tokenizer_error(path, e))?;
    let mut tokenizer = Tokenizer::new(model);
    tokenizer.with_normalizer(Some(bert_normalizer(norm))).map_err(|e| tokenizer_error(path, e))?;
    tokenizer.with_pre_tokenizer(Some(BertPreTokenizer));
    tokenizer.with_decoder(Some(WordPieceDecoder::default()));
    let id = |token: &str| tokenizer.token_to_id(token).ok_or_else(|| StageError::failed(format!("{path}: the vocabulary lacks {token}; a BERT vocab.txt needs [PAD] [UNK] [CLS] [SEP] [MASK]")));
    let (cls, sep) = (id("[CLS]")?, id("[SEP]")?);
    for token in SPECIAL_TOKENS {
        id(token)?;
    }
    tokenizer.with_post_processor(Some(BertProcessing::new(("[SEP]".into(), sep), ("[CLS]".into(), cls))));
    Ok(tokenizer)
}

/// Reads a tokenizer from a file: `tokenizer.json`, or a `vocab.txt` (any other name ending
/// in `.txt`).
pub fn import(path: &Path, norm: Normalization) -> Result<Tokenizer, StageError> {
    if path.extension().is_some_and(|e| e == "txt") {
        return from_vocab(path, norm);
    }
    let tokenizer = Tokenizer::from_file(path).map_err(|e| tokenizer_error(&format!("{}: not a valid tokenizer.json", path.display()), e))?;
    for token in SPECIAL_TOKENS {
        if tokenizer.token_to_id(token).is_none() {
            return Err(StageError::failed(format!("{}: the tokenizer lacks {token}; flywheel needs BERT's special tokens", path.display())));
        }
    }
    Ok(tokenizer)
}

/// Writes `tokenizer.json` and `vocab.txt` into an artifact directory.
pub fn save(tokenizer: &Tokenizer, dir: &Path) -> Result<(), StageError> {
    let json_path = dir.join("tokenizer.json");
    tokenizer.save(&json_path, true).map_err(|e| tokenizer_error(&json_path.display().to_string(), e))?;
    let vocab = tokenizer.get_vocab(true);
    let mut by_id: Vec<(u32, String)> = vocab.into_iter().map(|(token, id)| (id, token)).collect();
    by_id.sort();
    for (expected, (id, token)) in by_id.iter().enumerate() {
        if *id as usize != expected {
            return Err(StageError::failed(format!("vocabulary ids are not contiguous: id {id} at position {expected} (token {token:?})")));
        }
    }
    let text: String = by_id.iter().map(|(_, token)| format!("{token}\n")).collect();
    let vocab_path = dir.join("vocab.txt");
    fs::write(&vocab_path, text).map_err(|e| StageError::file(&vocab_path, e))
}

/// Loads the tokenizer of a `tokenizer` artifact directory.
pub fn load(dir: &Path) -> Result<Tokenizer, StageError> {
    let path = dir.join("tokenizer.json");
    Tokenizer::from_file(&path).map_err(|e| tokenizer_error(&path.display().to_string(), e))
}

/// One encoded BERT input: `[CLS] query [SEP] document [SEP]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PairEncoding {
    pub ids: Vec<u32>,
    /// 0 for `[CLS]`, the query and the first `[SEP]`; 1 for the document and the last `[SEP]`.
    pub type_ids: Vec<u32>,
}

/// Encodes query-document pairs to at most `max_len` tokens. Truncation cuts the document
/// first; the query is cut only when `truncate_query` is set, and otherwise a query too long to
/// leave room for a document is an error.
pub struct PairEncoder {
    tokenizer: Tokenizer,
    pub max_len: usize,
    pub truncate_query: bool,
    pub cls: u32,
    pub sep: u32,
    pub pad: u32,
    pub mask: u32,
}

impl PairEncoder {
    pub fn new(tokenizer: Tokenizer, max_len: usize, truncate_query: bool) -> Result<PairEncoder, StageError> {
        if max_len < 4 {
            return Err(StageError::InvalidParam { name: "max_len".into(), message: format!("must be at least 4, got {max_len}") });
        }
        let id = |t: &str| tokenizer.token_to_id(t).ok_or_else(|| StageError::failed(format!("the tokenizer lacks {t}")));
        let (cls, sep, pad, mask) = (id("[CLS]")?, id("[SEP]")?, id("[PAD]")?, id("[MASK]")?);
        Ok(PairEncoder { tokenizer, max_len, truncate_query, cls, sep, pad, mask })
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    pub fn vocab_size(&self) -> usize {
        self.tokenizer.get_vocab_size(true)
    }

    /// Returns the WordPiece ids of `text` without special tokens.
    pub fn ids(&self, text: &str) -> Result<Vec<u32>, StageError> {
        let encoding = self.tokenizer.encode(text, false).map_err(|e| tokenizer_error("encoding failed", e))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// Encodes one text as `[CLS] text [SEP]`, cut to `max_len`.
    pub fn encode_single(&self, text: &str) -> Result<PairEncoding, StageError> {
        let mut body = self.ids(text)?;
        body.truncate(self.max_len - 2);
        let mut ids = Vec::with_capacity(body.len() + 2);
        ids.push(self.cls);
        ids.extend(body);
        ids.push(self.sep);
        let type_ids = vec![0; ids.len()];
        Ok(PairEncoding { ids, type_ids })
    }

    pub fn encode_pair(&self, query: &str, document: &str) -> Result<PairEncoding, StageError> {
        let mut query_ids = self.ids(query)?;
        let mut doc_ids = self.ids(document)?;
        // Three special tokens, and at least one document token when the document has any.
        let budget = self.max_len - 3;
        let min_doc = usize::from(!doc_ids.is_empty());
        if query_ids.len() + min_doc > budget {
            if !self.truncate_query {
                return Err(StageError::failed(format!(
                    "query of {} tokens leaves no room for the document within max_len {}; raise max_len or set truncate_query",
                    query_ids.len(),
                    self.max_len
                )));
            }
            query_ids.truncate(budget - min_doc);
        }
        doc_ids.truncate(budget - query_ids.len());

        let mut ids = Vec::with_capacity(query_ids.len() + doc_ids.len() + 3);
        ids.push(self.cls);
        ids.extend(&query_ids);
        ids.push(self.sep);
        let first_segment = ids.len();
        ids.extend(&doc_ids);
        ids.push(self.sep);
        let type_ids = (0..ids.len()).map(|i| u32::from(i >= first_segment)).collect();
        Ok(PairEncoding { ids, type_ids })
    }
}

#[cfg(test)]
mod tests;
