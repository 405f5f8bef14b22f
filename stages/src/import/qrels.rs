//! `import-qrels`: graded labels (`qid<TAB>docid<TAB>grade` or `{"qid", "docid", "grade"}`)
//! joined with their queries into a graded `pairs` artifact. Every query id must be in the
//! `queries` input and every document id in the `corpus` input.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::BufRead;

use flywheel_stage_api::*;

use super::rows::{Format, RowError, Skips, Source, check_id, for_each_row, json_id, json_number, json_object, parse_number, tsv_fields, wrong_column_count};
use super::lines::LineReader;
use super::{format_param, lenient_param};
use crate::artifact::{self, Document, Pair, Query};

const COLUMNS: [&str; 3] = ["qid", "docid", "grade"];

/// The highest grade a label may have. nDCG's exponential gain 2^grade - 1 is infinite in f64
/// from grade 1024 on. Relevance scales are small (TREC Deep Learning grades 0-3), so a larger
/// grade is rejected as a likely column mix-up, such as a score where the grade belongs.
pub const MAX_GRADE: f64 = 100.0;

/// The hint for a four-column line, the layout of TREC qrels files.
const TREC_HINT: &str = "this looks like a TREC qrels line `qid iteration docid grade`; drop the iteration column (for example `cut -f1,3,4`)";

pub struct ImportQrels;

impl Stage for ImportQrels {
    fn descriptor(&self) -> StageDescriptor {
        StageDescriptor::new("import-qrels", "1")
            .summary("join graded labels with their queries into graded pairs, checking every query and document id")
            .input(PortSpec::new("queries", "queries").doc("the queries the labels refer to"))
            .input(PortSpec::new("corpus", "corpus").doc("the documents the labels refer to"))
            .input(PortSpec::new("file", "file").doc("`qid<TAB>docid<TAB>grade` TSV without header, or {\"qid\", \"docid\", \"grade\"} JSONL"))
            .output(PortSpec::new("pairs", "pairs").doc("pairs.jsonl: {\"qid\", \"query\", \"docid\", \"grade\"} per label, in file order"))
            .param(format_param())
            .param(lenient_param())
            .param(
                ParamSpec::new("single_document_queries", ParamType::String)
                    .default("warn")
                    .choices(&["warn", "error", "drop"])
                    .doc("what to do with a query that has only one judged document, which gives no pair for pairwise losses or PNR: log a warning, fail, or drop its label"),
            )
    }

    fn run(&self, ctx: &StageContext<'_>) -> Result<StageOutcome, StageError> {
        let queries: HashMap<String, String> =
            artifact::read_records::<Query>(ctx.input("queries")?)?.into_iter().map(|q| (q.qid, q.text)).collect();
        let documents: HashSet<String> = artifact::read_records::<Document>(ctx.input("corpus")?)?.into_iter().map(|d| d.id).collect();
        let source = Source::open(ctx, "file")?;
        let lenient = ctx.param_bool("lenient")?;
        let (mut pairs, skips) = read_labels(source.lines()?, source.format, lenient, &queries, &documents)?;
        skips.log(ctx, &source.name);

        let single = single_document_queries(&pairs);
        let mut dropped = 0;
        if !single.is_empty() {
            let listed = single.iter().take(5).map(|q| format!("`{q}`")).collect::<Vec<_>>().join(", ");
            let count = if single.len() == 1 { "1 query has".to_string() } else { format!("{} queries have", single.len()) };
            let problem = format!("{}: {count} only one judged document ({listed}{})", source.name, if single.len() > 5 { ", …" } else { "" });
            match ctx.param_str("single_document_queries")? {
                "error" => {
                    return Err(StageError::failed(format!("{problem}; judge a second document for each, or set `single_document_queries: drop`")));
                }
                "drop" => {
                    let before = pairs.len();
                    pairs.retain(|p| !single.contains(&p.qid));
                    dropped = before - pairs.len();
                    ctx.log(LogLevel::Warn, &format!("{problem}; dropped their {dropped} labels"));
                }
                _ => ctx.log(LogLevel::Warn, &format!("{problem}; they give no pair for pairwise losses or PNR")),
            }
        }
        if pairs.is_empty() {
            return Err(StageError::failed(format!("{}: no label is left after dropping single-document queries", source.name)));
        }

        artifact::write(ctx.output("pairs")?, &pairs)?;
        let judged: HashSet<&str> = pairs.iter().map(|p| p.qid.as_str()).collect();
        let unjudged = queries.len() - judged.len();
        ctx.info(&format!("imported {} labels of {} queries from {} ({unjudged} queries have no label)", pairs.len(), judged.len(), source.name));
        let outcome = StageOutcome::default()
            .metric("pairs", pairs.len())
            .metric("queries", judged.len())
            .metric("unjudged_queries", unjudged)
            .metric("single_document_queries", single.len())
            .metric("dropped_labels", dropped)
            .metric("grades", grade_counts(&pairs));
        Ok(skips.add_metrics(outcome))
    }
}

/// Reads and checks every label of a qrels file against `queries` (qid -> text) and
/// `documents` (the corpus ids); with `lenient`, invalid rows are skipped and counted instead of
/// failing the import.
pub fn read_labels<R: BufRead>(
    lines: LineReader<R>,
    format: Format,
    lenient: bool,
    queries: &HashMap<String, String>,
    documents: &HashSet<String>,
) -> Result<(Vec<Pair>, Skips), StageError> {
    let mut skips = Skips::default();
    let mut seen = HashSet::new();
    let mut pairs = Vec::new();
    for_each_row(lines, lenient, &mut skips, |_, line| {
        let (qid, docid, grade) = parse_label(format, line)?;
        let Some(query) = queries.get(&qid) else {
            return Err(RowError::new("unknown_qid", format!("query id `{qid}` is not in the queries input; add the query to the queries file or remove this label")));
        };
        if !documents.contains(&docid) {
            return Err(RowError::new("unknown_docid", format!("document id `{docid}` is not in the corpus; add the document to the documents file or remove this label")));
        }
        if !seen.insert((qid.clone(), docid.clone())) {
            return Err(RowError::new("duplicate_pair", format!("query `{qid}` and document `{docid}` are labelled twice; keep one label per pair")));
        }
        let mut pair = Pair::new(&qid, query, &docid);
        pair.grade = Some(grade);
        pairs.push(pair);
        Ok(())
    })?;
    Ok((pairs, skips))
}

fn parse_label(format: Format, line: &str) -> Result<(String, String, f64), RowError> {
    let (qid, docid, grade) = match format {
        Format::Tsv => {
            let fields: Vec<&str> = line.split('\t').collect();
            if fields.len() == 4 {
                return Err(wrong_column_count(4, &COLUMNS, TREC_HINT));
            }
            let fields = tsv_fields(line, &COLUMNS, "")?;
            let grade = parse_number(fields[2], "grade", "non_numeric_grade")?;
            (check_id(fields[0], "qid")?.to_string(), check_id(fields[1], "docid")?.to_string(), grade)
        }
        Format::Jsonl => {
            let object = json_object(line, r#"{"qid", "docid", "grade"}"#)?;
            (json_id(&object, "qid")?, json_id(&object, "docid")?, json_number(&object, "grade", "non_numeric_grade")?)
        }
    };
    if grade < 0.0 {
        return Err(RowError::new("negative_grade", format!("grade {grade} is negative; grades must be 0 (irrelevant) or more")));
    }
    if grade > MAX_GRADE {
        return Err(RowError::new("grade_out_of_range", format!("grade {} is above the maximum of {MAX_GRADE}; give grades on a small scale such as 0-3 or 0-4", artifact::json_number(grade))));
    }
    Ok((qid, docid, grade))
}

/// Returns the queries with exactly one label, sorted.
fn single_document_queries(pairs: &[Pair]) -> Vec<String> {
    let mut per_query: BTreeMap<&str, usize> = BTreeMap::new();
    for pair in pairs {
        *per_query.entry(pair.qid.as_str()).or_default() += 1;
    }
    per_query.into_iter().filter(|(_, n)| *n == 1).map(|(q, _)| q.to_string()).collect()
}

/// Counts labels per grade, keyed by the grade as written (`"0"`, `"1"`, …), in grade order.
fn grade_counts(pairs: &[Pair]) -> serde_json::Value {
    let mut grades: Vec<f64> = pairs.iter().filter_map(|p| p.grade).collect();
    grades.sort_by(f64::total_cmp);
    let mut counts = serde_json::Map::new();
    for grade in grades {
        let key = artifact::json_number(grade).to_string();
        let count = counts.get(&key).and_then(serde_json::Value::as_u64).unwrap_or(0);
        counts.insert(key, (count + 1).into());
    }
    serde_json::Value::Object(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tsv_and_jsonl() {
        assert_eq!(parse_label(Format::Tsv, "q1\td1\t2").unwrap(), ("q1".into(), "d1".into(), 2.0));
        assert_eq!(parse_label(Format::Jsonl, r#"{"qid": 1, "docid": "d1", "grade": 3}"#).unwrap(), ("1".into(), "d1".into(), 3.0));
    }

    #[test]
    fn rejects_bad_grades() {
        let error = parse_label(Format::Tsv, "q1\td1\thigh").unwrap_err();
        assert_eq!(error.reason, "non_numeric_grade");
        assert!(error.message.starts_with("`grade` is `high`, not a number"), "{}", error.message);
        assert_eq!(parse_label(Format::Tsv, "q1\td1\t-1").unwrap_err().reason, "negative_grade");
        assert_eq!(parse_label(Format::Tsv, "q1\td1\t100").unwrap().2, 100.0);
        assert_eq!(parse_label(Format::Tsv, "q1\td1\t101").unwrap_err().reason, "grade_out_of_range");
        assert_eq!(parse_label(Format::Jsonl, r#"{"qid": 1, "docid": "d1", "grade": 1e300}"#).unwrap_err().reason, "grade_out_of_range");
    }

    #[test]
    fn trec_layout_gets_a_hint() {
        let error = parse_label(Format::Tsv, "q1\t0\td1\t2").unwrap_err();
        assert_eq!(error.reason, "extra_columns");
        assert!(error.message.contains("cut -f1,3,4"), "{}", error.message);
        assert_eq!(parse_label(Format::Tsv, "q1\td1").unwrap_err().reason, "missing_columns");
    }

    #[test]
    fn finds_single_document_queries() {
        let pair = |q: &str, d: &str| Pair::new(q, "text", d);
        let pairs = [pair("b", "1"), pair("a", "1"), pair("a", "2"), pair("c", "9")];
        assert_eq!(single_document_queries(&pairs), ["b", "c"]);
    }
}
