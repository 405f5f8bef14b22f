//! The row loop of the import stages. [`Source`] is the input file and its format, and
//! [`for_each_row`] reads it row by row: UTF-8 check, blank lines, strict or lenient handling.
//! [`RowError`] describes why one row is invalid, and [`Skips`] counts the rows a lenient import
//! skipped, by reason. The field parsers below are shared by the importers.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use flywheel_stage_api::{LogLevel, StageContext, StageError, StageOutcome};
use serde_json::{Map, Value, json};

use super::lines::LineReader;
use crate::corpus::single_file;

/// The layout of an input file's rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Tab-separated columns, no header.
    Tsv,
    /// One JSON object per line.
    Jsonl,
}

/// An input file of an import stage.
pub struct Source {
    /// The file name, used in messages.
    pub name: String,
    pub path: PathBuf,
    pub format: Format,
}

impl Source {
    /// Finds the single file of input port `port` and resolves its format from the `format`
    /// param.
    pub fn open(ctx: &StageContext<'_>, port: &str) -> Result<Source, StageError> {
        let path = single_file(ctx.input(port)?)?;
        let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        let format = match ctx.param_str("format")? {
            "tsv" => Format::Tsv,
            "jsonl" => Format::Jsonl,
            _ => Format::from_extension(&path),
        };
        Ok(Source { name, path, format })
    }

    /// Opens the file for reading, line by line.
    pub fn lines(&self) -> Result<LineReader<BufReader<fs::File>>, StageError> {
        let file = fs::File::open(&self.path).map_err(|e| StageError::file(&self.path, e))?;
        Ok(LineReader::new(BufReader::new(file), &self.name).with_path(&self.path))
    }
}

impl Format {
    fn from_extension(path: &Path) -> Format {
        match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
            Some("jsonl" | "ndjson" | "json") => Format::Jsonl,
            _ => Format::Tsv,
        }
    }
}

/// The reason one row is invalid: a short code (the key under which lenient imports count it)
/// and a message that states what is wrong and how to fix it.
#[derive(Debug)]
pub struct RowError {
    pub reason: &'static str,
    pub message: String,
}

impl RowError {
    pub fn new(reason: &'static str, message: impl Into<String>) -> RowError {
        RowError { reason, message: message.into() }
    }
}

/// Rows skipped by a lenient import: reason -> (count, first line).
#[derive(Debug, Default)]
pub struct Skips {
    by_reason: BTreeMap<&'static str, (usize, usize)>,
}

impl Skips {
    pub fn add(&mut self, reason: &'static str, line: usize) {
        let entry = self.by_reason.entry(reason).or_insert((0, line));
        entry.0 += 1;
    }

    pub fn total(&self) -> usize {
        self.by_reason.values().map(|(count, _)| count).sum()
    }

    /// Describes the skips, e.g. `2 non_numeric_grade (first at line 4), 1 unknown_docid (…)`.
    pub fn describe(&self) -> String {
        let parts: Vec<String> = self
            .by_reason
            .iter()
            .map(|(reason, (count, first))| format!("{count} {reason} (first at line {first})"))
            .collect();
        parts.join(", ")
    }

    /// Logs the skips as a warning, when there are any.
    pub fn log(&self, ctx: &StageContext<'_>, file: &str) {
        if self.total() > 0 {
            ctx.log(LogLevel::Warn, &format!("lenient: skipped {} rows of {file}: {}", self.total(), self.describe()));
        }
    }

    /// Adds `skipped_rows` (the total) and `skipped` (count by reason) to the stage's metrics.
    pub fn add_metrics(&self, outcome: StageOutcome) -> StageOutcome {
        let by_reason: Map<String, Value> = self.by_reason.iter().map(|(reason, (count, _))| (reason.to_string(), json!(count))).collect();
        outcome.metric("skipped_rows", self.total()).metric("skipped", Value::Object(by_reason))
    }
}

/// Calls `handle(line_number, text)` for every non-blank line that `lines` reads.
///
/// A line that is not UTF-8 or is too long fails the import with `file:line: message`, and so
/// does a line for which `handle` returns a [`RowError`]. With `lenient`, such a line is counted
/// in `skips` instead. Returns the number of rows `handle` accepted. Fails when that number is
/// 0, because an import of nothing is almost always a wrong path or a wrong format.
pub fn for_each_row<R: BufRead>(
    mut lines: LineReader<R>,
    lenient: bool,
    skips: &mut Skips,
    mut handle: impl FnMut(usize, &str) -> Result<(), RowError>,
) -> Result<usize, StageError> {
    let mut accepted = 0usize;
    while let Some((number, line)) = lines.next_line()? {
        match line.and_then(|text| handle(number, text)) {
            Ok(()) => accepted += 1,
            Err(error) if lenient => skips.add(error.reason, number),
            Err(error) => return Err(StageError::failed(format!("{}:{number}: {}", lines.name(), error.message))),
        }
    }
    if accepted == 0 {
        let message = if skips.total() > 0 {
            format!("{}: every row is invalid and was skipped: {}", lines.name(), skips.describe())
        } else {
            format!("{}: the file is empty; give a file with at least one row", lines.name())
        };
        return Err(StageError::failed(message));
    }
    Ok(accepted)
}

/// The hint for a line that has a single column.
const SPACE_HINT: &str = "separate the columns with tabs, not spaces";

/// The hint for an `id<TAB>text` line with more than two columns.
pub const TAB_HINT: &str = "the text contains a tab; replace tabs inside the text with spaces";

/// Splits a TSV line into exactly `columns.len()` fields; `hint` ends the message of a line
/// with too many.
pub fn tsv_fields<'a>(line: &'a str, columns: &[&str], hint: &str) -> Result<Vec<&'a str>, RowError> {
    let fields: Vec<&str> = line.split('\t').collect();
    if fields.len() != columns.len() {
        let hint = if fields.len() > columns.len() { hint } else { "" };
        return Err(wrong_column_count(fields.len(), columns, hint));
    }
    Ok(fields)
}

/// Builds the error for a TSV line with the wrong number of columns, ending with `hint` when set.
pub fn wrong_column_count(found: usize, columns: &[&str], hint: &str) -> RowError {
    let reason = if found < columns.len() { "missing_columns" } else { "extra_columns" };
    let layout = columns.join("<TAB>");
    let hint = if found == 1 && columns.len() > 1 && hint.is_empty() { SPACE_HINT } else { hint };
    let mut message = format!("expected {} tab-separated columns `{layout}`, found {found}", columns.len());
    if !hint.is_empty() {
        message.push_str("; ");
        message.push_str(hint);
    }
    RowError::new(reason, message)
}

/// Parses a line of a JSONL file as a JSON object.
pub fn json_object(line: &str, shape: &str) -> Result<Map<String, Value>, RowError> {
    match serde_json::from_str::<Value>(line) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(other) => Err(RowError::new("not_an_object", format!("expected a JSON object {shape}, found {other}"))),
        Err(e) => Err(RowError::new("invalid_json", format!("invalid JSON ({e}); each line must be one object {shape}"))),
    }
}

/// Reads an id field of a JSON row: a non-empty string, or an integer (TREC query ids are
/// numbers in many files), returned as text.
pub fn json_id(object: &Map<String, Value>, field: &str) -> Result<String, RowError> {
    match object.get(field) {
        Some(Value::String(text)) => check_id(text, field).map(str::to_string),
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => Ok(n.to_string()),
        Some(other) => Err(RowError::new("invalid_id", format!("`{field}` is {other}; give a string or an integer"))),
        None => Err(missing_field(field)),
    }
}

/// Reads a text field of a JSON row.
pub fn json_text(object: &Map<String, Value>, field: &str) -> Result<String, RowError> {
    match object.get(field) {
        Some(Value::String(text)) => Ok(text.clone()),
        Some(other) => Err(RowError::new("invalid_text", format!("`{field}` is {other}; give a string"))),
        None => Err(missing_field(field)),
    }
}

/// Reads a finite number field of a JSON row; a string holding a number is accepted too.
pub fn json_number(object: &Map<String, Value>, field: &str, reason: &'static str) -> Result<f64, RowError> {
    match object.get(field) {
        Some(Value::Number(n)) => n.as_f64().ok_or_else(|| not_a_number(field, &n.to_string(), reason)),
        Some(Value::String(text)) => parse_number(text, field, reason),
        Some(other) => Err(not_a_number(field, &other.to_string(), reason)),
        None => Err(missing_field(field)),
    }
}

pub fn missing_field(field: &str) -> RowError {
    RowError::new("missing_field", format!("missing field `{field}`; add it to every line"))
}

/// Rejects an empty id (or one that is only white space).
pub fn check_id<'a>(id: &'a str, field: &str) -> Result<&'a str, RowError> {
    if id.trim().is_empty() {
        return Err(RowError::new("empty_id", format!("empty `{field}`; every row needs an id")));
    }
    Ok(id)
}

/// Parses a finite number, naming the field when the text is not one.
pub fn parse_number(text: &str, field: &str, reason: &'static str) -> Result<f64, RowError> {
    match text.trim().parse::<f64>() {
        Ok(value) if value.is_finite() => Ok(value),
        _ => Err(not_a_number(field, text, reason)),
    }
}

fn not_a_number(field: &str, found: &str, reason: &'static str) -> RowError {
    RowError::new(reason, format!("`{field}` is `{found}`, not a number; write it as a decimal number such as 2 or 0.5"))
}

#[cfg(test)]
impl Skips {
    fn count(&self, reason: &str) -> usize {
        self.by_reason.get(reason).map_or(0, |(count, _)| *count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines<'a>(name: &str, bytes: &'a [u8]) -> LineReader<&'a [u8]> {
        LineReader::new(bytes, name)
    }

    fn accept_two_columns(_: usize, line: &str) -> Result<(), RowError> {
        tsv_fields(line, &["qid", "text"], "").map(|_| ())
    }

    #[test]
    fn strict_names_file_and_line() {
        let lines = lines("queries.tsv", b"1\tfirst\n\n2 second\n");
        let error = for_each_row(lines, false, &mut Skips::default(), accept_two_columns).unwrap_err().to_string();
        assert_eq!(error, "queries.tsv:3: expected 2 tab-separated columns `qid<TAB>text`, found 1; separate the columns with tabs, not spaces");
    }

    #[test]
    fn lenient_counts_by_reason() {
        let lines = lines("queries.tsv", b"1\tok\n2\n3\tok\textra\n4\n\xff\tbad\n");
        let mut skips = Skips::default();
        let accepted = for_each_row(lines, true, &mut skips, accept_two_columns).unwrap();
        assert_eq!(accepted, 1);
        assert_eq!(skips.count("missing_columns"), 2);
        assert_eq!(skips.count("extra_columns"), 1);
        assert_eq!(skips.count("invalid_utf8"), 1);
        assert_eq!(skips.describe(), "1 extra_columns (first at line 3), 1 invalid_utf8 (first at line 5), 2 missing_columns (first at line 2)");
    }

    #[test]
    fn lenient_skips_too_long_line() {
        let lines = LineReader::with_limit(&b"1\tok\n2\tmuch too long\n3\tok\n"[..], "queries.tsv", 8);
        let mut skips = Skips::default();
        let accepted = for_each_row(lines, true, &mut skips, accept_two_columns).unwrap();
        assert_eq!(accepted, 2);
        assert_eq!(skips.describe(), "1 line_too_long (first at line 2)");
    }

    #[test]
    fn strict_fails_on_too_long_line() {
        let lines = LineReader::with_limit(&b"1\tok\n2\tmuch too long\n"[..], "queries.tsv", 8);
        let error = for_each_row(lines, false, &mut Skips::default(), accept_two_columns).unwrap_err().to_string();
        assert!(error.starts_with("queries.tsv:2: line 2 is longer than 8 bytes"), "{error}");
    }

    #[test]
    fn invalid_utf8_is_reported_with_its_byte() {
        let lines = lines("docs.tsv", b"d1\tcaf\xe9\n");
        let error = for_each_row(lines, false, &mut Skips::default(), accept_two_columns).unwrap_err().to_string();
        assert!(error.starts_with("docs.tsv:1: invalid UTF-8 at byte 7"), "{error}");
    }

    #[test]
    fn empty_file_fails_even_when_lenient() {
        let lines = lines("qrels.tsv", b"\n  \n");
        let error = for_each_row(lines, true, &mut Skips::default(), accept_two_columns).unwrap_err().to_string();
        assert!(error.contains("qrels.tsv: the file is empty"), "{error}");
    }

    #[test]
    fn byte_order_mark_and_crlf_are_stripped() {
        let lines = lines("queries.tsv", "\u{feff}1\tone\r\n".as_bytes());
        let mut seen = Vec::new();
        for_each_row(lines, false, &mut Skips::default(), |_, line| {
            seen.push(line.to_string());
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, ["1\tone"]);
    }

    #[test]
    fn json_fields_accept_integer_ids() {
        let object = json_object(r#"{"qid": 19335, "grade": "2"}"#, "{}").unwrap();
        assert_eq!(json_id(&object, "qid").unwrap(), "19335");
        assert_eq!(json_number(&object, "grade", "non_numeric_grade").unwrap(), 2.0);
        assert_eq!(json_id(&object, "docid").unwrap_err().reason, "missing_field");
    }

    #[test]
    fn format_follows_extension() {
        assert_eq!(Format::from_extension(Path::new("a/queries.JSONL")), Format::Jsonl);
        assert_eq!(Format::from_extension(Path::new("a/queries.tsv")), Format::Tsv);
        assert_eq!(Format::from_extension(Path::new("a/queries")), Format::Tsv);
    }
}
