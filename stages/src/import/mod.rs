//! Import stages: user files (TSV without header, or JSONL) into typed artifacts, each row
//! validated.
//!
//! - [`ImportQueries`] (`import-queries`): `qid<TAB>text` -> `queries`.
//! - [`ImportDocuments`] (`import-documents`): `docid<TAB>text` -> `corpus`.
//! - [`ImportQrels`] (`import-qrels`): `qid<TAB>docid<TAB>grade`, checked against the queries
//!   and the corpus -> graded `pairs`.
//! - [`ImportClicks`] (`import-clicks`): one impression per row -> `click-log`.
//!
//! `rows::Source` is the input file with its format, and `rows::for_each_row` drives the row loop: a bad
//! row fails the stage with `file:line: what is wrong; what to do`, or, under `lenient: true`,
//! is skipped and counted in [`Skips`] by reason. [`LineReader`] reads the lines, each at most
//! [`MAX_LINE_BYTES`] long. The `read_*` functions are each stage's import over any reader, so
//! tests and fuzz targets run the same code as the stages.

mod clicks;
mod documents;
pub(crate) mod lines;
mod qrels;
mod queries;
mod rows;

pub use clicks::{ImportClicks, read_impressions};
pub use documents::{ImportDocuments, read_documents};
pub use lines::{LineReader, MAX_LINE_BYTES};
pub use qrels::{ImportQrels, MAX_GRADE, read_labels};
pub use queries::{ImportQueries, read_queries};
pub use rows::{Format, RowError, Skips};

use flywheel_stage_api::{ParamSpec, ParamType};

/// Returns the `lenient` param shared by the import stages.
pub fn lenient_param() -> ParamSpec {
    ParamSpec::new("lenient", ParamType::Bool)
        .default(false)
        .doc("skip invalid rows and count them by reason instead of failing on the first one")
}

/// Returns the `format` param shared by the import stages.
pub fn format_param() -> ParamSpec {
    ParamSpec::new("format", ParamType::String)
        .default("auto")
        .choices(&["auto", "tsv", "jsonl"])
        .doc("file format; `auto` reads `.jsonl`, `.ndjson` and `.json` files as JSONL and others as TSV")
}
