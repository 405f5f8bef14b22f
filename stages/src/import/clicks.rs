//! `import-clicks`: a behaviour log, one impression per row, -> a `click-log` artifact.
//!
//! TSV rows are `qid<TAB>docid<TAB>position<TAB>click<TAB>dwell`, optionally followed by the
//! columns named in the `extra_columns` param (by default one, `session`). JSONL rows are
//! objects with those five fields plus any others, kept as they are. Rows sharing a `session`
//! value and the same `qid` are one result page; `behaviour-features` needs pages for skips and
//! last clicks.

use std::collections::HashSet;
use std::io::BufRead;

use flywheel_stage_api::*;
use serde_json::{Map, Value};

use super::rows::{Format, RowError, Skips, Source, check_id, for_each_row, json_id, json_number, json_object, parse_number, wrong_column_count};
use super::lines::LineReader;
use super::{format_param, lenient_param};
use crate::artifact::{self, Impression};

const COLUMNS: [&str; 5] = ["qid", "docid", "position", "click", "dwell"];

pub struct ImportClicks;

impl Stage for ImportClicks {
    fn descriptor(&self) -> StageDescriptor {
        StageDescriptor::new("import-clicks", "1")
            .summary("read a behaviour log (one impression per row: qid, docid, position, click, dwell) into a click log")
            .input(PortSpec::new("file", "file").doc(
                "`qid<TAB>docid<TAB>position<TAB>click<TAB>dwell[<TAB>extra…]` TSV without header, or JSONL objects with those fields",
            ))
            .output(PortSpec::new("clicks", "click-log").doc("clicks.jsonl: {\"qid\", \"docid\", \"position\", \"click\", \"dwell\", …extra} per impression"))
            .param(format_param())
            .param(lenient_param())
            .param(
                ParamSpec::new("extra_columns", ParamType::StringList)
                    .default(serde_json::json!(["session"]))
                    .doc("names of the TSV columns after `dwell`; a row has either none of them or all"),
            )
    }

    fn run(&self, ctx: &StageContext<'_>) -> Result<StageOutcome, StageError> {
        let source = Source::open(ctx, "file")?;
        let lenient = ctx.param_bool("lenient")?;
        let extra_columns = extra_column_names(ctx)?;
        let (impressions, skips) = read_impressions(source.lines()?, source.format, lenient, &extra_columns)?;
        artifact::write(ctx.output("clicks")?, &impressions)?;
        skips.log(ctx, &source.name);

        let clicks = impressions.iter().filter(|i| i.click == 1).count();
        ctx.info(&format!("imported {} impressions with {clicks} clicks from {}", impressions.len(), source.name));
        let outcome = StageOutcome::default().metric("impressions", impressions.len()).metric("clicks", clicks);
        Ok(skips.add_metrics(outcome))
    }
}

/// Reads and checks every impression of a behaviour log; `extra_columns` names the TSV columns
/// after `dwell`. With `lenient`, invalid rows are skipped and counted instead of failing the
/// import.
pub fn read_impressions<R: BufRead>(
    lines: LineReader<R>,
    format: Format,
    lenient: bool,
    extra_columns: &[String],
) -> Result<(Vec<Impression>, Skips), StageError> {
    let mut skips = Skips::default();
    let mut pages = HashSet::new();
    let mut impressions = Vec::new();
    for_each_row(lines, lenient, &mut skips, |_, line| {
        let impression = match format {
            Format::Tsv => parse_tsv(line, extra_columns)?,
            Format::Jsonl => parse_jsonl(line)?,
        };
        if let Some(session) = impression.session()
            && !pages.insert((impression.qid.clone(), session.clone(), impression.position))
        {
            return Err(RowError::new(
                "duplicate_position",
                format!(
                    "query `{}` in session `{session}` shows two documents at position {}; give each position of a page one row",
                    impression.qid, impression.position
                ),
            ));
        }
        impressions.push(impression);
        Ok(())
    })?;
    Ok((impressions, skips))
}

fn extra_column_names(ctx: &StageContext<'_>) -> Result<Vec<String>, StageError> {
    let names: Vec<String> = serde_json::from_value(ctx.param("extra_columns")?.clone())
        .map_err(|e| StageError::InvalidParam { name: "extra_columns".into(), message: e.to_string() })?;
    for name in &names {
        if COLUMNS.contains(&name.as_str()) {
            return Err(StageError::InvalidParam {
                name: "extra_columns".into(),
                message: format!("`{name}` is one of the five fixed columns; name only the columns after `dwell`"),
            });
        }
    }
    Ok(names)
}

fn parse_tsv(line: &str, extra_columns: &[String]) -> Result<Impression, RowError> {
    let fields: Vec<&str> = line.split('\t').collect();
    let with_extra = COLUMNS.len() + extra_columns.len();
    if fields.len() != COLUMNS.len() && fields.len() != with_extra {
        let mut layout: Vec<&str> = COLUMNS.to_vec();
        layout.extend(extra_columns.iter().map(String::as_str));
        let hint = "the columns after `dwell` are optional, but a row has either none or all of them; name them in the `extra_columns` param";
        return Err(wrong_column_count(fields.len(), &layout, if extra_columns.is_empty() { "" } else { hint }));
    }
    let position = parse_position(fields[2])?;
    let click = match fields[3].trim() {
        "0" | "false" => 0,
        "1" | "true" => 1,
        other => return Err(invalid_click(other)),
    };
    // An empty dwell cell means no dwell was recorded, as for a row without a click.
    let dwell = if fields[4].trim().is_empty() { 0.0 } else { parse_number(fields[4], "dwell", "invalid_dwell")? };
    let extra: Map<String, Value> =
        extra_columns.iter().zip(&fields[COLUMNS.len()..]).map(|(name, value)| (name.clone(), Value::from(*value))).collect();
    build(check_id(fields[0], "qid")?.to_string(), check_id(fields[1], "docid")?.to_string(), position, click, dwell, extra)
}

fn parse_jsonl(line: &str) -> Result<Impression, RowError> {
    let mut object = json_object(line, r#"{"qid", "docid", "position", "click", "dwell"}"#)?;
    let qid = json_id(&object, "qid")?;
    let docid = json_id(&object, "docid")?;
    let position = match object.get("position") {
        Some(Value::Number(n)) => parse_position(&n.to_string())?,
        Some(Value::String(text)) => parse_position(text)?,
        Some(other) => parse_position(&other.to_string())?,
        None => return Err(super::rows::missing_field("position")),
    };
    let click = match object.get("click") {
        Some(Value::Bool(b)) => u8::from(*b),
        Some(Value::Number(n)) if n.as_u64() == Some(0) || n.as_u64() == Some(1) => n.as_u64().unwrap_or(0) as u8,
        Some(other) => return Err(invalid_click(&other.to_string())),
        None => return Err(super::rows::missing_field("click")),
    };
    let dwell = json_number(&object, "dwell", "invalid_dwell")?;
    for field in COLUMNS {
        object.remove(field);
    }
    build(qid, docid, position, click, dwell, object)
}

fn build(qid: String, docid: String, position: u32, click: u8, dwell: f64, extra: Map<String, Value>) -> Result<Impression, RowError> {
    if dwell < 0.0 {
        return Err(RowError::new("invalid_dwell", format!("dwell {dwell} is negative; give the seconds spent on the document, 0 or more")));
    }
    Ok(Impression { qid, docid, position, click, dwell, extra })
}

fn parse_position(text: &str) -> Result<u32, RowError> {
    match text.trim().parse::<u32>() {
        Ok(position) if position >= 1 => Ok(position),
        _ => Err(RowError::new("invalid_position", format!("position `{text}` is not a rank; give the 1-based rank the document was shown at"))),
    }
}

fn invalid_click(found: &str) -> RowError {
    RowError::new("invalid_click", format!("click `{found}` is not 0 or 1; write 1 for a clicked document and 0 otherwise"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session() -> Vec<String> {
        vec!["session".to_string()]
    }

    #[test]
    fn tsv_with_and_without_session() {
        let row = parse_tsv("q1\td1\t2\t1\t35.5\ts9", &session()).unwrap();
        assert_eq!((row.position, row.click, row.dwell), (2, 1, 35.5));
        assert_eq!(row.session().as_deref(), Some("s9"));
        let row = parse_tsv("q1\td1\t3\t0\t", &session()).unwrap();
        assert_eq!((row.dwell, row.session()), (0.0, None));
    }

    #[test]
    fn jsonl_keeps_extra_fields() {
        let row = parse_jsonl(r#"{"qid": 4, "docid": "d", "position": 1, "click": true, "dwell": 12, "device": "phone"}"#).unwrap();
        assert_eq!((row.qid.as_str(), row.click), ("4", 1));
        assert_eq!(row.extra.len(), 1);
        assert_eq!(row.extra["device"], "phone");
    }

    #[test]
    fn rejects_bad_values() {
        assert_eq!(parse_tsv("q1\td1\t0\t1\t3", &session()).unwrap_err().reason, "invalid_position");
        assert_eq!(parse_tsv("q1\td1\t1\tyes\t3", &session()).unwrap_err().reason, "invalid_click");
        assert_eq!(parse_tsv("q1\td1\t1\t1\t-3", &session()).unwrap_err().reason, "invalid_dwell");
        assert_eq!(parse_tsv("q1\td1\t1\t1\tlong", &session()).unwrap_err().reason, "invalid_dwell");
        assert_eq!(parse_tsv("q1\td1\t1\t1", &session()).unwrap_err().reason, "missing_columns");
        assert_eq!(parse_jsonl(r#"{"qid": "q", "docid": "d", "position": 1, "click": 2, "dwell": 0}"#).unwrap_err().reason, "invalid_click");
    }
}
