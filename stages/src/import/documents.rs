//! `import-documents`: a `docid<TAB>text` or JSONL file -> a `corpus` artifact (`docs.jsonl`, the
//! format `import-corpus` writes), with the row checks and `lenient` mode of the other imports.

use std::collections::HashSet;
use std::io::BufRead;

use flywheel_stage_api::*;

use super::rows::{Format, TAB_HINT, RowError, Skips, Source, check_id, for_each_row, json_id, json_object, json_text, tsv_fields};
use super::lines::LineReader;
use super::{format_param, lenient_param};
use crate::artifact::{self, Document};

pub struct ImportDocuments;

impl Stage for ImportDocuments {
    fn descriptor(&self) -> StageDescriptor {
        StageDescriptor::new("import-documents", "1")
            .summary("read a documents file (`docid<TAB>text` TSV or `{\"docid\", \"text\"}` JSONL) into a corpus, checking every row")
            .input(PortSpec::new("file", "file").doc("UTF-8 TSV without header, or JSONL whose id field is `docid` or `id`"))
            .output(PortSpec::new("corpus", "corpus").doc("docs.jsonl: {\"id\", \"text\"} per line, in file order"))
            .param(format_param())
            .param(lenient_param())
    }

    fn run(&self, ctx: &StageContext<'_>) -> Result<StageOutcome, StageError> {
        let source = Source::open(ctx, "file")?;
        let lenient = ctx.param_bool("lenient")?;
        let (documents, skips) = read_documents(source.lines()?, source.format, lenient)?;
        artifact::write(ctx.output("corpus")?, &documents)?;
        skips.log(ctx, &source.name);
        ctx.info(&format!("imported {} documents from {}", documents.len(), source.name));
        Ok(skips.add_metrics(StageOutcome::default().metric("documents", documents.len())))
    }
}

/// Reads and checks every row of a documents file; with `lenient`, invalid rows are skipped
/// and counted instead of failing the import.
pub fn read_documents<R: BufRead>(lines: LineReader<R>, format: Format, lenient: bool) -> Result<(Vec<Document>, Skips), StageError> {
    let mut skips = Skips::default();
    let mut seen = HashSet::new();
    let mut documents = Vec::new();
    for_each_row(lines, lenient, &mut skips, |_, line| {
        let document = parse_document(format, line)?;
        if !seen.insert(document.id.clone()) {
            return Err(RowError::new("duplicate_docid", format!("duplicate docid `{}`; give each document one line", document.id)));
        }
        documents.push(document);
        Ok(())
    })?;
    Ok((documents, skips))
}

fn parse_document(format: Format, line: &str) -> Result<Document, RowError> {
    let document = match format {
        Format::Tsv => {
            let fields = tsv_fields(line, &["docid", "text"], TAB_HINT)?;
            Document { id: check_id(fields[0], "docid")?.to_string(), text: fields[1].to_string() }
        }
        Format::Jsonl => {
            let object = json_object(line, r#"{"docid", "text"}"#)?;
            let id = match (object.contains_key("docid"), object.contains_key("id")) {
                (true, true) => {
                    return Err(RowError::new("ambiguous_id", "both `docid` and `id` are set; keep one of them"));
                }
                (false, true) => json_id(&object, "id")?,
                _ => json_id(&object, "docid")?,
            };
            Document { id, text: json_text(&object, "text")? }
        }
    };
    if document.text.trim().is_empty() {
        return Err(RowError::new("empty_text", format!("document `{}` has empty text; remove it or give its text", document.id)));
    }
    Ok(document)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonl_accepts_docid_or_id() {
        assert_eq!(parse_document(Format::Jsonl, r#"{"docid": "d1", "text": "x"}"#).unwrap().id, "d1");
        assert_eq!(parse_document(Format::Jsonl, r#"{"id": "d2", "text": "x"}"#).unwrap().id, "d2");
        let both = parse_document(Format::Jsonl, r#"{"id": "d2", "docid": "d3", "text": "x"}"#).unwrap_err();
        assert_eq!(both.reason, "ambiguous_id");
    }

    #[test]
    fn tsv_rejects_missing_text_column() {
        let error = parse_document(Format::Tsv, "d1").unwrap_err();
        assert_eq!(error.reason, "missing_columns");
        assert_eq!(error.message, "expected 2 tab-separated columns `docid<TAB>text`, found 1; separate the columns with tabs, not spaces");
    }
}
