//! Reading and writing the JSONL artifacts of the relevance stages.
//!
//! Each artifact kind stores one JSONL file whose lines are one [`Record`] type (see
//! [`records`]): `queries` ([`Query`]), `pairs` ([`Pair`]), `scores` ([`Score`]), `click-log`
//! ([`Impression`]), and the existing `corpus` ([`Document`]). [`read`] parses an input
//! artifact's file and names the file and line of any bad row; [`write`] writes one output.

pub mod records;

use std::fs;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;

use flywheel_stage_api::StageError;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use records::{Document, Impression, Pair, Query, Score, json_number};

/// A line type of a JSONL artifact.
pub trait Record: Serialize + DeserializeOwned {
    /// The file name inside the artifact directory.
    const FILE: &'static str;
    /// The expected shape of one line, shown in error messages.
    const SHAPE: &'static str;
}

/// A record with the 1-based line it was read from, for messages.
pub struct Line<T> {
    pub number: usize,
    pub record: T,
}

/// Reads every record of the artifact in `dir`, skipping blank lines.
///
/// Fails on the first line that is not valid JSON of the record's shape, with the file name, the
/// line number and the expected shape.
pub fn read<T: Record>(dir: &Path) -> Result<Vec<Line<T>>, StageError> {
    let path = dir.join(T::FILE);
    let file = fs::File::open(&path).map_err(|e| StageError::file(&path, e))?;
    let mut records = Vec::new();
    for (index, line) in BufReader::new(file).lines().enumerate() {
        let number = index + 1;
        let line = line.map_err(|e| StageError::failed(format!("{}:{number}: {e}", T::FILE)))?;
        if line.trim().is_empty() {
            continue;
        }
        let record = serde_json::from_str(&line).map_err(|e| {
            StageError::failed(format!("{}:{number}: {e}; each line must be {}", T::FILE, T::SHAPE))
        })?;
        records.push(Line { number, record });
    }
    Ok(records)
}

/// Reads the records of the artifact in `dir` without their line numbers.
pub fn read_records<T: Record>(dir: &Path) -> Result<Vec<T>, StageError> {
    Ok(read::<T>(dir)?.into_iter().map(|line| line.record).collect())
}

/// Writes `records` as the artifact file in the output directory `dir`, one JSON object per line.
pub fn write<'a, T: Record + 'a>(dir: &Path, records: impl IntoIterator<Item = &'a T>) -> Result<usize, StageError> {
    let path = dir.join(T::FILE);
    let file = fs::File::create(&path).map_err(|e| StageError::file(&path, e))?;
    let mut out = BufWriter::new(file);
    let mut count = 0;
    for record in records {
        serde_json::to_writer(&mut out, record).map_err(|e| StageError::failed(format!("{}: {e}", T::FILE)))?;
        out.write_all(b"\n").map_err(|e| StageError::file(&path, e))?;
        count += 1;
    }
    out.flush().map_err(|e| StageError::file(&path, e))?;
    Ok(count)
}

/// Writes a JSON value pretty-printed, with a final newline, to `dir/name`.
pub fn write_json(dir: &Path, name: &str, value: &serde_json::Value) -> Result<(), StageError> {
    let path = dir.join(name);
    let mut bytes = serde_json::to_vec_pretty(value).map_err(|e| StageError::failed(format!("{name}: {e}")))?;
    bytes.push(b'\n');
    fs::write(&path, bytes).map_err(|e| StageError::file(&path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_names_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("scores.jsonl"), "{\"qid\":\"1\",\"docid\":\"a\",\"score\":1}\n\n{\"qid\":\"1\",\"docid\":\"b\"}\n").unwrap();
        let error = read::<Score>(dir.path()).err().unwrap().to_string();
        assert!(error.starts_with("scores.jsonl:3: missing field `score`"), "{error}");
        assert!(error.contains(Score::SHAPE), "{error}");
    }

    #[test]
    fn write_then_read_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let scores = vec![Score { qid: "1".into(), docid: "a".into(), score: 0.5 }];
        assert_eq!(write(dir.path(), &scores).unwrap(), 1);
        let back = read::<Score>(dir.path()).unwrap();
        assert_eq!(back[0].number, 1);
        assert_eq!(back[0].record, scores[0]);
    }
}
