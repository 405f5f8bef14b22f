//! [`LineReader`]: the lines of an imported file, each read with a length limit, so that a file
//! without line ends fails at its first line instead of being read whole into memory.

use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};

use flywheel_stage_api::StageError;

use super::rows::RowError;

/// The maximum length of one line of an imported file, in bytes, counting a trailing `\r`:
/// 16 MiB.
///
/// One line is one row: a query, a document or a label. A BERT ranker reads at most 512 tokens
/// of a document, a few KB of text, so a longer line more likely comes from a file without line
/// ends (a binary file, or another format) than from a real row. The limit bounds the memory of
/// one line, not of the whole file.
pub const MAX_LINE_BYTES: usize = 16 * 1024 * 1024;

/// The byte order mark, legal at the start of a UTF-8 file and carrying no data.
const BYTE_ORDER_MARK: &[u8] = b"\xef\xbb\xbf";

/// Reads the lines of one file. It strips the line end (`\n` or `\r\n`) and a byte order mark
/// at the start of the file, and skips blank lines. A line that is not UTF-8 or is longer than
/// the limit comes back as a [`RowError`] of that line.
pub struct LineReader<R> {
    reader: R,
    /// The file name, used in messages.
    name: String,
    /// The file's path, for read errors; `None` for a reader that is not a file.
    path: Option<PathBuf>,
    limit: usize,
    /// The 1-based number of the line in `buffer`.
    number: usize,
    buffer: Vec<u8>,
    /// Set after a line longer than the limit: the rest of it is skipped on the next read.
    skip_rest: bool,
}

/// A line's 1-based number with its text, or with the reason it cannot be read as a row.
pub type NumberedLine<'a> = (usize, Result<&'a str, RowError>);

/// The outcome of reading one raw line.
enum RawLine {
    End,
    Read,
    TooLong,
}

impl<R: BufRead> LineReader<R> {
    /// Creates a reader of lines of at most [`MAX_LINE_BYTES`]; `name` is the file name that
    /// messages start with.
    pub fn new(reader: R, name: &str) -> LineReader<R> {
        LineReader::with_limit(reader, name, MAX_LINE_BYTES)
    }

    /// Creates a reader of lines of at most `limit` bytes.
    pub fn with_limit(reader: R, name: &str, limit: usize) -> LineReader<R> {
        LineReader { reader, name: name.to_string(), path: None, limit, number: 0, buffer: Vec::new(), skip_rest: false }
    }

    /// Names the file the lines come from, for the message of a read error.
    pub fn with_path(mut self, path: &Path) -> LineReader<R> {
        self.path = Some(path.to_path_buf());
        self
    }

    /// Returns the file name used in messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Reads the next non-blank line. Returns `None` at the end of the file, and the line's
    /// 1-based number with its text, or with a [`RowError`] when the line is not UTF-8 or is
    /// longer than the limit. Only a failed read is an `Err`.
    pub fn next_line(&mut self) -> Result<Option<NumberedLine<'_>>, StageError> {
        loop {
            match self.read_raw_line()? {
                RawLine::End => return Ok(None),
                RawLine::TooLong => return Ok(Some((self.number, Err(self.too_long())))),
                RawLine::Read => {}
            }
            let blank = std::str::from_utf8(&self.buffer).is_ok_and(|text| text.trim().is_empty());
            if !blank {
                break;
            }
        }
        match std::str::from_utf8(&self.buffer) {
            Ok(text) => Ok(Some((self.number, Ok(text)))),
            Err(e) => Ok(Some((self.number, Err(invalid_utf8(e.valid_up_to()))))),
        }
    }

    /// Reads one line into `buffer` without its line end and, on line 1, without a byte order
    /// mark.
    fn read_raw_line(&mut self) -> Result<RawLine, StageError> {
        if self.skip_rest {
            self.skip_rest = false;
            self.reader.skip_until(b'\n').map_err(|e| self.read_error(e))?;
        }
        self.buffer.clear();
        // Reading one byte past the limit separates a line of exactly `limit` bytes from a longer one.
        let max = u64::try_from(self.limit).unwrap_or(u64::MAX).saturating_add(1);
        let read = (&mut self.reader).take(max).read_until(b'\n', &mut self.buffer).map_err(|e| self.read_error(e))?;
        if read == 0 {
            return Ok(RawLine::End);
        }
        self.number += 1;
        if self.buffer.last() == Some(&b'\n') {
            self.buffer.pop();
        } else if self.buffer.len() > self.limit {
            self.buffer.clear();
            self.skip_rest = true;
            return Ok(RawLine::TooLong);
        }
        if self.buffer.last() == Some(&b'\r') {
            self.buffer.pop();
        }
        if self.number == 1 && self.buffer.starts_with(BYTE_ORDER_MARK) {
            self.buffer.drain(..BYTE_ORDER_MARK.len());
        }
        Ok(RawLine::Read)
    }

    fn too_long(&self) -> RowError {
        RowError::new(
            "line_too_long",
            format!(
                "line {} is longer than {}, the limit for one row; check that the file has one row per line (TSV or JSONL, not a binary or single-line file)",
                self.number,
                describe_bytes(self.limit)
            ),
        )
    }

    fn read_error(&self, error: std::io::Error) -> StageError {
        match &self.path {
            Some(path) => StageError::file(path, error),
            None => StageError::failed(format!("{}: read failed after line {}: {error}", self.name, self.number)),
        }
    }
}

fn invalid_utf8(valid_up_to: usize) -> RowError {
    RowError::new(
        "invalid_utf8",
        format!("invalid UTF-8 at byte {} of the line; convert the file to UTF-8 (for example with iconv)", valid_up_to + 1),
    )
}

/// Writes a byte count as MiB when it is a whole number of them, else as bytes.
fn describe_bytes(bytes: usize) -> String {
    const MIB: usize = 1024 * 1024;
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB ({bytes} bytes)", bytes / MIB)
    } else {
        format!("{bytes} bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads every line of `bytes`, as text or as the reason of its error.
    fn read_all(bytes: &[u8], limit: usize) -> Vec<(usize, Result<String, &'static str>)> {
        let mut lines = LineReader::with_limit(bytes, "test.tsv", limit);
        let mut out = Vec::new();
        while let Some((number, line)) = lines.next_line().unwrap() {
            out.push((number, line.map(str::to_string).map_err(|e| e.reason)));
        }
        out
    }

    #[test]
    fn strips_line_ends_and_byte_order_mark() {
        let lines = read_all(b"\xef\xbb\xbfa\tb\r\n\r\n  \nc\n\xef\xbb\xbfd", 100);
        assert_eq!(lines, [(1, Ok("a\tb".to_string())), (4, Ok("c".to_string())), (5, Ok("\u{feff}d".to_string()))]);
    }

    #[test]
    fn line_at_limit_is_read() {
        let lines = read_all(b"abcd\nefgh", 4);
        assert_eq!(lines, [(1, Ok("abcd".to_string())), (2, Ok("efgh".to_string()))]);
    }

    #[test]
    fn longer_line_is_reported_and_skipped() {
        let lines = read_all(b"abcde\nok\nfghijklmnop\nend", 4);
        assert_eq!(lines, [(1, Err("line_too_long")), (2, Ok("ok".to_string())), (3, Err("line_too_long")), (4, Ok("end".to_string()))]);
    }

    #[test]
    fn long_line_message_names_line_and_limit() {
        let mut lines = LineReader::with_limit(&b"a\nbbbbbbbbbb"[..], "docs.tsv", 8);
        assert!(lines.next_line().unwrap().unwrap().1.is_ok());
        let (number, line) = lines.next_line().unwrap().unwrap();
        assert_eq!(number, 2);
        let message = line.unwrap_err().message;
        assert!(message.starts_with("line 2 is longer than 8 bytes, the limit for one row; check that the file has one row per line"), "{message}");
        assert!(lines.next_line().unwrap().is_none());
    }

    #[test]
    fn endless_line_stops_at_limit() {
        // A reader that never ends a line: reading it whole would never return.
        let endless = std::io::BufReader::new(std::io::repeat(b'a'));
        let mut lines = LineReader::with_limit(endless, "endless.tsv", 1 << 16);
        let (number, line) = lines.next_line().unwrap().unwrap();
        assert_eq!(number, 1);
        assert_eq!(line.unwrap_err().reason, "line_too_long");
    }

    #[test]
    fn invalid_utf8_names_its_byte() {
        let lines = read_all(b"ok\nab\xff\n", 100);
        assert_eq!(lines[1], (2, Err("invalid_utf8")));
        let mut reader = LineReader::new(&b"ab\xffc"[..], "x.tsv");
        let message = reader.next_line().unwrap().unwrap().1.unwrap_err().message;
        assert!(message.starts_with("invalid UTF-8 at byte 3 of the line"), "{message}");
    }

    #[test]
    fn limit_is_described_in_mib() {
        assert_eq!(describe_bytes(MAX_LINE_BYTES), "16 MiB (16777216 bytes)");
        assert_eq!(describe_bytes(1000), "1000 bytes");
    }
}
