//! `import-queries`: a `qid<TAB>text` or `{"qid", "text"}` file -> a `queries` artifact.

use std::collections::HashSet;
use std::io::BufRead;

use flywheel_stage_api::*;

use super::rows::{Format, TAB_HINT, RowError, Skips, Source, check_id, for_each_row, json_id, json_object, json_text, tsv_fields};
use super::lines::LineReader;
use super::{format_param, lenient_param};
use crate::artifact::{self, Query};

pub struct ImportQueries;

impl Stage for ImportQueries {
    fn descriptor(&self) -> StageDescriptor {
        StageDescriptor::new("import-queries", "1")
            .summary("read a queries file (`qid<TAB>text` TSV or `{\"qid\", \"text\"}` JSONL) into a queries artifact")
            .input(PortSpec::new("file", "file").doc("UTF-8 TSV without header, or JSONL"))
            .output(PortSpec::new("queries", "queries").doc("queries.jsonl: {\"qid\", \"text\"} per line, in file order"))
            .param(format_param())
            .param(lenient_param())
    }

    fn run(&self, ctx: &StageContext<'_>) -> Result<StageOutcome, StageError> {
        let source = Source::open(ctx, "file")?;
        let lenient = ctx.param_bool("lenient")?;
        let (queries, skips) = read_queries(source.lines()?, source.format, lenient)?;
        artifact::write(ctx.output("queries")?, &queries)?;
        skips.log(ctx, &source.name);
        ctx.info(&format!("imported {} queries from {}", queries.len(), source.name));
        Ok(skips.add_metrics(StageOutcome::default().metric("queries", queries.len())))
    }
}

/// Reads and checks every row of a queries file; with `lenient`, invalid rows are skipped and
/// counted instead of failing the import.
pub fn read_queries<R: BufRead>(lines: LineReader<R>, format: Format, lenient: bool) -> Result<(Vec<Query>, Skips), StageError> {
    let mut skips = Skips::default();
    let mut seen = HashSet::new();
    let mut queries = Vec::new();
    for_each_row(lines, lenient, &mut skips, |_, line| {
        let query = parse_query(format, line)?;
        if !seen.insert(query.qid.clone()) {
            return Err(RowError::new("duplicate_qid", format!("duplicate qid `{}`; give each query one line", query.qid)));
        }
        queries.push(query);
        Ok(())
    })?;
    Ok((queries, skips))
}

fn parse_query(format: Format, line: &str) -> Result<Query, RowError> {
    let query = match format {
        Format::Tsv => {
            let fields = tsv_fields(line, &["qid", "text"], TAB_HINT)?;
            Query { qid: check_id(fields[0], "qid")?.to_string(), text: fields[1].to_string() }
        }
        Format::Jsonl => {
            let object = json_object(line, r#"{"qid", "text"}"#)?;
            Query { qid: json_id(&object, "qid")?, text: json_text(&object, "text")? }
        }
    };
    if query.text.trim().is_empty() {
        return Err(RowError::new("empty_text", format!("query `{}` has empty text; give every query its text", query.qid)));
    }
    Ok(query)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_formats() {
        assert_eq!(parse_query(Format::Tsv, "7\tbm25 ranking").unwrap(), Query { qid: "7".into(), text: "bm25 ranking".into() });
        assert_eq!(parse_query(Format::Jsonl, r#"{"qid": 7, "text": "x"}"#).unwrap().qid, "7");
    }

    #[test]
    fn rejects_empty_text_and_id() {
        assert_eq!(parse_query(Format::Tsv, "7\t ").unwrap_err().reason, "empty_text");
        assert_eq!(parse_query(Format::Tsv, "\tx").unwrap_err().reason, "empty_id");
    }
}
