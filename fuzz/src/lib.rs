//! Helpers shared by the importer fuzz targets: the first byte of a fuzz input chooses the
//! options of the import, and the rest is the file.

use flywheel_stages::import::{Format, LineReader, MAX_LINE_BYTES};

/// One fuzz input, split into import options and file bytes.
pub struct ImportInput<'a> {
    pub format: Format,
    pub lenient: bool,
    /// Bits of the options byte left for the target's own options.
    pub extra: u8,
    /// The maximum line length: small for some inputs, so that fuzzing reaches the too-long-line
    /// path without multi-megabyte inputs.
    pub limit: usize,
    pub file: &'a [u8],
}

impl<'a> ImportInput<'a> {
    /// Splits `data`: bit 0 of the first byte selects JSONL, bit 1 `lenient`, bit 2 a line
    /// limit of 64 bytes instead of [`MAX_LINE_BYTES`], and bits 3-7 are `extra`.
    pub fn split(data: &'a [u8]) -> Option<ImportInput<'a>> {
        let (&options, file) = data.split_first()?;
        Some(ImportInput {
            format: if options & 1 == 1 { Format::Jsonl } else { Format::Tsv },
            lenient: options & 2 == 2,
            extra: options >> 3,
            limit: if options & 4 == 4 { 64 } else { MAX_LINE_BYTES },
            file,
        })
    }

    /// Returns a line reader over the file bytes; `name` is the file name in messages.
    pub fn lines(&self, name: &str) -> LineReader<&'a [u8]> {
        LineReader::with_limit(self.file, name, self.limit)
    }
}

/// Checks a failed import's message: it starts with the file name, as every import error must.
pub fn check_error(name: &str, error: &flywheel_stage_api::StageError) {
    let message = error.to_string();
    assert!(message.starts_with(name), "import error does not name the file: {message}");
}
