//! [`ImportPairs`]: reads a `qid<TAB>query<TAB>docid[<TAB>grade]` file into a `pairs`
//! artifact, `pairs.jsonl` with one `{"qid", "query", "docid"}` object per line, plus
//! `"grade"` (a number, 0 or more) when the file has a fourth column.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::{BufRead, BufReader, BufWriter, Write};

use flywheel_stage_api::*;
use serde_json::{Value, json};

use crate::corpus::single_file;

pub struct ImportPairs;

impl Stage for ImportPairs {
    fn descriptor(&self) -> StageDescriptor {
        StageDescriptor::new("import-pairs", "1")
            .summary("read a `qid<TAB>query<TAB>docid[<TAB>grade]` UTF-8 file into query-document pairs")
            .input(PortSpec::new("file", "file").doc("tab-separated, no header; grade is an optional number, 0 or more"))
            .output(PortSpec::new("pairs", "pairs").doc("pairs.jsonl: {\"qid\", \"query\", \"docid\"[, \"grade\"]} per line"))
    }

    fn run(&self, ctx: &StageContext<'_>) -> Result<StageOutcome, StageError> {
        let path = single_file(ctx.input("file")?)?;
        let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        let reader = BufReader::new(fs::File::open(&path).map_err(|e| StageError::file(&path, e))?);
        let out_path = ctx.output("pairs")?.join("pairs.jsonl");
        let mut out = BufWriter::new(fs::File::create(&out_path).map_err(|e| StageError::file(&out_path, e))?);

        // qid -> (query, line of its first pair)
        let mut queries: HashMap<String, (String, usize)> = HashMap::new();
        let mut seen: HashSet<(String, String)> = HashSet::new();
        let mut count = 0usize;
        for (number, line) in reader.split(b'\n').enumerate() {
            let line_no = number + 1;
            let text = String::from_utf8(line?)
                .map_err(|_| StageError::failed(format!("{name}:{line_no}: invalid UTF-8; convert the file to UTF-8")))?;
            let text = text.strip_suffix('\r').unwrap_or(&text);
            if text.trim().is_empty() {
                continue;
            }
            let fields: Vec<&str> = text.split('\t').collect();
            let (qid, query, docid) = match fields.as_slice() {
                [qid, query, docid] | [qid, query, docid, _] => (*qid, *query, *docid),
                _ => {
                    return Err(StageError::failed(format!(
                        "{name}:{line_no}: expected `qid<TAB>query<TAB>docid[<TAB>grade]`, found {} fields",
                        fields.len()
                    )));
                }
            };
            if qid.is_empty() || docid.is_empty() {
                return Err(StageError::failed(format!("{name}:{line_no}: empty qid or docid")));
            }
            match queries.get(qid) {
                Some((first, first_line)) if first != query => {
                    return Err(StageError::failed(format!(
                        "{name}:{line_no}: qid `{qid}` has the query `{query}`, but line {first_line} gives it `{first}`"
                    )));
                }
                Some(_) => {}
                None => {
                    queries.insert(qid.to_string(), (query.to_string(), line_no));
                }
            }
            if !seen.insert((qid.to_string(), docid.to_string())) {
                return Err(StageError::failed(format!("{name}:{line_no}: duplicate pair of qid `{qid}` and docid `{docid}`")));
            }
            let mut pair = json!({"qid": qid, "query": query, "docid": docid});
            if let Some(grade) = fields.get(3) {
                pair["grade"] = parse_grade(grade)
                    .ok_or_else(|| StageError::failed(format!("{name}:{line_no}: grade `{grade}` is not a number of 0 or more")))?;
            }
            serde_json::to_writer(&mut out, &pair).map_err(|e| StageError::failed(e.to_string()))?;
            out.write_all(b"\n")?;
            count += 1;
        }
        if count == 0 {
            return Err(StageError::failed(format!("{name}: no pairs; the file is empty")));
        }
        out.flush()?;
        ctx.info(&format!("imported {count} pairs of {} queries from {name}", queries.len()));
        Ok(StageOutcome::default().metric("pairs", count).metric("queries", queries.len()))
    }
}

/// Reads a finite grade of 0 or more. A whole number becomes a JSON integer (`2`, also for
/// `2.0`), so equal grades always serialize alike.
fn parse_grade(text: &str) -> Option<Value> {
    let grade = text.trim().parse::<f64>().ok().filter(|g| g.is_finite() && *g >= 0.0)?;
    // Below 2^53 every whole f64 converts to u64 exactly.
    if grade.fract() == 0.0 && grade < 9_007_199_254_740_992.0 {
        return Some((grade as u64).into());
    }
    Some(grade.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_on(text: &str) -> Result<String, StageError> {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in");
        let output = dir.path().join("out");
        fs::create_dir_all(&input).unwrap();
        fs::create_dir_all(&output).unwrap();
        fs::write(input.join("pairs.tsv"), text).unwrap();
        let request = StageRequest {
            protocol: PROTOCOL_VERSION,
            node: "pairs".into(),
            stage: "import-pairs".into(),
            params: Default::default(),
            inputs: [("file".to_string(), InputArtifact { path: input, kind: "file".into(), id: "b3:0".into() })].into(),
            outputs: [("pairs".to_string(), output.clone())].into(),
            checkpoint_dir: dir.path().join("checkpoint"),
            device: "cpu".into(),
            seed: 0,
            threads: 1,
        };
        ImportPairs.run(&StageContext::new(&request, &NullHost))?;
        Ok(fs::read_to_string(output.join("pairs.jsonl")).unwrap())
    }

    #[test]
    fn import_pairs_writes_jsonl() {
        let out = run_on("q1\tred cat\td1\nq1\tred cat\td2\t2\r\n\nq2\tdog\td1\t0.5\nq2\tdog\td2\t1.0\n").unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines, [
            r#"{"qid":"q1","query":"red cat","docid":"d1"}"#,
            r#"{"qid":"q1","query":"red cat","docid":"d2","grade":2}"#,
            r#"{"qid":"q2","query":"dog","docid":"d1","grade":0.5}"#,
            r#"{"qid":"q2","query":"dog","docid":"d2","grade":1}"#,
        ]);
    }

    #[test]
    fn import_pairs_rejects_duplicate_pair() {
        let error = run_on("q1\tcat\td1\nq1\tcat\td1\n").unwrap_err().to_string();
        assert_eq!(error, "pairs.tsv:2: duplicate pair of qid `q1` and docid `d1`");
    }

    #[test]
    fn import_pairs_rejects_second_query_text() {
        let error = run_on("q1\tcat\td1\nq1\tdog\td2\n").unwrap_err().to_string();
        assert_eq!(error, "pairs.tsv:2: qid `q1` has the query `dog`, but line 1 gives it `cat`");
    }

    #[test]
    fn import_pairs_rejects_missing_column() {
        let error = run_on("q1\tcat\n").unwrap_err().to_string();
        assert_eq!(error, "pairs.tsv:1: expected `qid<TAB>query<TAB>docid[<TAB>grade]`, found 2 fields");
    }

    #[test]
    fn import_pairs_rejects_bad_grade() {
        let error = run_on("q1\tcat\td1\thigh\n").unwrap_err().to_string();
        assert_eq!(error, "pairs.tsv:1: grade `high` is not a number of 0 or more");
        let error = run_on("q1\tcat\td1\t-1\n").unwrap_err().to_string();
        assert_eq!(error, "pairs.tsv:1: grade `-1` is not a number of 0 or more");
    }
}
