//! [`ImportPairs`]: reads a `qid<TAB>query<TAB>docid[<TAB>grade]` file into a `pairs`
//! artifact, `pairs.jsonl` with one `{"qid", "query", "docid"}` object per line, plus
//! `"grade"` (a number from 0 to 100) when the file has a fourth column.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::{BufRead, BufReader, BufWriter, Write};

use flywheel_stage_api::*;
use serde_json::{Value, json};

use crate::corpus::single_file;
use crate::import::{LineReader, MAX_GRADE};

pub struct ImportPairs;

impl Stage for ImportPairs {
    fn descriptor(&self) -> StageDescriptor {
        StageDescriptor::new("import-pairs", "1")
            .summary("read a `qid<TAB>query<TAB>docid[<TAB>grade]` UTF-8 file into query-document pairs")
            .input(PortSpec::new("file", "file").doc("tab-separated, no header; grade is an optional number from 0 to 100"))
            .output(PortSpec::new("pairs", "pairs").doc("pairs.jsonl: {\"qid\", \"query\", \"docid\"[, \"grade\"]} per line"))
    }

    fn run(&self, ctx: &StageContext<'_>) -> Result<StageOutcome, StageError> {
        let path = single_file(ctx.input("file")?)?;
        let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        let reader = BufReader::new(fs::File::open(&path).map_err(|e| StageError::file(&path, e))?);
        let lines = LineReader::new(reader, &name).with_path(&path);
        let out_path = ctx.output("pairs")?.join("pairs.jsonl");
        let mut out = BufWriter::new(fs::File::create(&out_path).map_err(|e| StageError::file(&out_path, e))?);
        let (count, queries) = import_pairs(lines, &mut out)?;
        out.flush().map_err(|e| StageError::file(&out_path, e))?;
        ctx.info(&format!("imported {count} pairs of {queries} queries from {name}"));
        Ok(StageOutcome::default().metric("pairs", count).metric("queries", queries))
    }
}

/// Reads `qid<TAB>query<TAB>docid[<TAB>grade]` lines and writes each pair to `out` as a JSON
/// line. Returns the number of pairs and of distinct queries.
pub fn import_pairs<R: BufRead>(mut lines: LineReader<R>, out: &mut impl Write) -> Result<(usize, usize), StageError> {
    let name = lines.name().to_string();
    // qid -> (query, line of its first pair)
    let mut queries: HashMap<String, (String, usize)> = HashMap::new();
    let mut seen: HashSet<(String, String)> = HashSet::new();
    let mut count = 0usize;
    while let Some((line_no, line)) = lines.next_line()? {
        let text = line.map_err(|e| StageError::failed(format!("{name}:{line_no}: {}", e.message)))?;
        let fields: Vec<&str> = text.split('\t').collect();
        let (qid, query, docid) = match fields.as_slice() {
            [qid, query, docid] | [qid, query, docid, _] => (*qid, *query, *docid),
            _ => {
                return Err(StageError::failed(format!(
                    "{name}:{line_no}: expected `qid<TAB>query<TAB>docid[<TAB>grade]`, found {} fields; separate the columns with tabs",
                    fields.len()
                )));
            }
        };
        if qid.is_empty() || docid.is_empty() {
            return Err(StageError::failed(format!("{name}:{line_no}: empty qid or docid; every line needs both ids")));
        }
        match queries.get(qid) {
            Some((first, first_line)) if first != query => {
                return Err(StageError::failed(format!(
                    "{name}:{line_no}: qid `{qid}` has the query `{query}`, but line {first_line} gives it `{first}`; give each qid one query text"
                )));
            }
            Some(_) => {}
            None => {
                queries.insert(qid.to_string(), (query.to_string(), line_no));
            }
        }
        if !seen.insert((qid.to_string(), docid.to_string())) {
            return Err(StageError::failed(format!("{name}:{line_no}: duplicate pair of qid `{qid}` and docid `{docid}`; keep one line per pair")));
        }
        let mut pair = json!({"qid": qid, "query": query, "docid": docid});
        if let Some(grade) = fields.get(3) {
            pair["grade"] = parse_grade(grade).ok_or_else(|| {
                StageError::failed(format!("{name}:{line_no}: grade `{grade}` is not a number from 0 to {MAX_GRADE}; give a relevance grade such as 0, 1 or 2"))
            })?;
        }
        serde_json::to_writer(&mut *out, &pair).map_err(|e| StageError::failed(e.to_string()))?;
        out.write_all(b"\n")?;
        count += 1;
    }
    if count == 0 {
        return Err(StageError::failed(format!("{name}: the file is empty; give a file with at least one `qid<TAB>query<TAB>docid` line")));
    }
    Ok((count, queries.len()))
}

/// Reads a grade from 0 to [`MAX_GRADE`]. A whole number becomes a JSON integer (`2`, also for
/// `2.0`), so equal grades always serialize alike.
fn parse_grade(text: &str) -> Option<Value> {
    let grade = text.trim().parse::<f64>().ok().filter(|g| (0.0..=MAX_GRADE).contains(g))?;
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
        assert_eq!(error, "pairs.tsv:2: duplicate pair of qid `q1` and docid `d1`; keep one line per pair");
    }

    #[test]
    fn import_pairs_rejects_second_query_text() {
        let error = run_on("q1\tcat\td1\nq1\tdog\td2\n").unwrap_err().to_string();
        assert_eq!(error, "pairs.tsv:2: qid `q1` has the query `dog`, but line 1 gives it `cat`; give each qid one query text");
    }

    #[test]
    fn import_pairs_rejects_missing_column() {
        let error = run_on("q1\tcat\n").unwrap_err().to_string();
        assert_eq!(error, "pairs.tsv:1: expected `qid<TAB>query<TAB>docid[<TAB>grade]`, found 2 fields; separate the columns with tabs");
    }

    #[test]
    fn import_pairs_rejects_bad_grade() {
        let error = run_on("q1\tcat\td1\thigh\n").unwrap_err().to_string();
        assert_eq!(error, "pairs.tsv:1: grade `high` is not a number from 0 to 100; give a relevance grade such as 0, 1 or 2");
        let error = run_on("q1\tcat\td1\t-1\n").unwrap_err().to_string();
        assert_eq!(error, "pairs.tsv:1: grade `-1` is not a number from 0 to 100; give a relevance grade such as 0, 1 or 2");
        let error = run_on("q1\tcat\td1\t101\n").unwrap_err().to_string();
        assert_eq!(error, "pairs.tsv:1: grade `101` is not a number from 0 to 100; give a relevance grade such as 0, 1 or 2");
    }
}
