//! Malformed data files through the real importers and the real binary: each case is a
//! one-node workflow (three nodes for `import-qrels`, which needs queries and a corpus) on one
//! data file. A bad file must fail with the message a user sees (file, line, what is wrong and
//! the fix) and commit nothing, and the accepted oddities (byte order mark, CRLF, Chinese text)
//! must import cleanly. `relevance_import.rs` covers the cases not repeated here.

mod common;
mod relevance_support;

use std::io::Write;
use std::time::Instant;

use common::Project;
use relevance_support::*;
use serde_json::{Value, json};

/// What a case expects of its run.
enum Expect {
    /// The run fails and prints this fragment.
    Fails(&'static str),
    /// The run succeeds and the node's output file contains these records.
    Writes(Vec<Value>),
}

struct Case {
    name: &'static str,
    stage: &'static str,
    /// The data file's name, which the messages start with.
    file: &'static str,
    bytes: Vec<u8>,
    expect: Expect,
}

fn fails(name: &'static str, stage: &'static str, file: &'static str, bytes: impl Into<Vec<u8>>, message: &'static str) -> Case {
    Case { name, stage, file, bytes: bytes.into(), expect: Expect::Fails(message) }
}

fn writes(name: &'static str, stage: &'static str, file: &'static str, bytes: impl Into<Vec<u8>>, records: Vec<Value>) -> Case {
    Case { name, stage, file, bytes: bytes.into(), expect: Expect::Writes(records) }
}

/// Returns the node that imports the data file, and its output port and file.
fn node_of(stage: &str) -> (&'static str, &'static str, &'static str) {
    match stage {
        "import-queries" => ("import", "queries", "queries.jsonl"),
        "import-documents" | "import-corpus" => ("import", "corpus", "docs.jsonl"),
        "import-clicks" => ("import", "clicks", "clicks.jsonl"),
        "import-pairs" => ("import", "pairs", "pairs.jsonl"),
        "import-qrels" => ("labels", "pairs", "pairs.jsonl"),
        other => panic!("no case setup for stage `{other}`"),
    }
}

/// Runs one case in a fresh project; returns what went wrong, if anything.
fn run_case(case: &Case) -> Result<(), String> {
    let project = Project::new();
    if case.stage == "import-qrels" {
        write_tiny_data(&project);
        std::fs::remove_file(project.path("data/qrels.tsv")).unwrap();
        std::fs::write(project.path(&format!("data/{}", case.file)), &case.bytes).unwrap();
        let nodes = IMPORT_NODES.replace("data/qrels.tsv", &format!("data/{}", case.file));
        project.write("wf.yaml", &format!("name: bad\nnodes:{nodes}"));
    } else {
        std::fs::create_dir_all(project.path("data")).unwrap();
        std::fs::write(project.path(&format!("data/{}", case.file)), &case.bytes).unwrap();
        let workflow = format!("name: bad\nnodes:\n  import:\n    stage: {}\n    inputs: {{file: {{path: data/{}}}}}\n", case.stage, case.file);
        project.write("wf.yaml", &workflow);
    }
    let (node, port, file) = node_of(case.stage);
    let output = project.flywheel(&["run", "wf.yaml"]);
    let printed = common::text(&output);
    match &case.expect {
        Expect::Fails(message) => {
            if output.status.success() {
                return Err(format!("the run succeeded, expected {message:?}:\n{printed}"));
            }
            if !printed.contains(message) {
                return Err(format!("expected {message:?} in:\n{printed}"));
            }
            if !records_of(&project, node).is_empty() {
                return Err(format!("node `{node}` failed but committed a record"));
            }
        }
        Expect::Writes(expected) => {
            if !output.status.success() {
                return Err(format!("the run failed:\n{printed}"));
            }
            let summary = project.last_summary();
            let records = read_jsonl(&output_dir(&project, &summary, node, port).join(file));
            if &records != expected {
                return Err(format!("wrote {records:?}, expected {expected:?}"));
            }
        }
    }
    Ok(())
}

/// Runs every case and reports all that fail, each with its name.
fn run_table(cases: &[Case]) {
    let mut failures = Vec::new();
    for case in cases {
        if let Err(problem) = run_case(case) {
            failures.push(format!("case `{}` ({} on {}): {problem}", case.name, case.stage, case.file));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n\n{}", failures.len(), cases.len(), failures.join("\n\n"));
}

#[test]
fn wrong_column_counts_fail() {
    run_table(&[
        fails("tab inside query text", "import-queries", "queries.tsv", "q1\tred cats\n\nq2\tblue\tdogs\n",
            "queries.tsv:3: expected 2 tab-separated columns `qid<TAB>text`, found 3; the text contains a tab; replace tabs inside the text with spaces"),
        fails("spaces instead of tabs", "import-documents", "docs.tsv", "d1 some text\n",
            "docs.tsv:1: expected 2 tab-separated columns `docid<TAB>text`, found 1; separate the columns with tabs, not spaces"),
        fails("click row of four columns", "import-clicks", "clicks.tsv", "q1\td1\t1\t1\t3.5\ts1\nq1\td2\t2\t0\n",
            "clicks.tsv:2: expected 6 tab-separated columns `qid<TAB>docid<TAB>position<TAB>click<TAB>dwell<TAB>session`, found 4; the columns after `dwell` are optional, but a row has either none or all of them; name them in the `extra_columns` param"),
        fails("TREC qrels layout", "import-qrels", "qrels.tsv", "q1\t0\td11\t2\n",
            "qrels.tsv:1: expected 3 tab-separated columns `qid<TAB>docid<TAB>grade`, found 4; this looks like a TREC qrels line `qid iteration docid grade`; drop the iteration column (for example `cut -f1,3,4`)"),
        fails("corpus line without tab", "import-corpus", "docs.tsv", "d1\tfirst\nd2 second\n",
            "docs.tsv:2: expected `docid<TAB>text`, found no tab; separate the id from the text with a tab"),
        fails("pair of two columns", "import-pairs", "pairs.tsv", "q1\tred cats\n",
            "pairs.tsv:1: expected `qid<TAB>query<TAB>docid[<TAB>grade]`, found 2 fields; separate the columns with tabs"),
    ]);
}

#[test]
fn invalid_utf8_fails() {
    run_table(&[
        fails("Latin-1 dwell row", "import-clicks", "clicks.tsv", b"q1\td1\t1\t1\t3\ns\xe9\td2\t2\t0\t0\n".to_vec(),
            "clicks.tsv:2: invalid UTF-8 at byte 2 of the line; convert the file to UTF-8 (for example with iconv)"),
        fails("Latin-1 corpus text", "import-corpus", "docs.tsv", b"d1\tcaf\xe9\n".to_vec(),
            "docs.tsv:1: invalid UTF-8 at byte 7 of the line; convert the file to UTF-8 (for example with iconv)"),
        fails("UTF-16 pairs file", "import-pairs", "pairs.tsv", b"\xff\xfeq\x001\x00\n\x00".to_vec(),
            "pairs.tsv:1: invalid UTF-8 at byte 1 of the line; convert the file to UTF-8 (for example with iconv)"),
        fails("truncated Chinese character", "import-queries", "queries.tsv", b"q1\t\xe6\x90\n".to_vec(),
            "queries.tsv:1: invalid UTF-8 at byte 4 of the line; convert the file to UTF-8 (for example with iconv)"),
    ]);
}

#[test]
fn empty_files_fail() {
    run_table(&[
        fails("no bytes", "import-documents", "docs.tsv", "", "docs.tsv: the file is empty; give a file with at least one row"),
        fails("only a byte order mark and blank lines", "import-clicks", "clicks.tsv", "\u{feff}\r\n  \r\n\n",
            "clicks.tsv: the file is empty; give a file with at least one row"),
        fails("empty JSONL", "import-queries", "queries.jsonl", "\n", "queries.jsonl: the file is empty; give a file with at least one row"),
        fails("empty corpus", "import-corpus", "docs.tsv", "", "docs.tsv: the file is empty; give a file with at least one `docid<TAB>text` line"),
        fails("empty pairs", "import-pairs", "pairs.tsv", "\r\n", "pairs.tsv: the file is empty; give a file with at least one `qid<TAB>query<TAB>docid` line"),
    ]);
}

#[test]
fn grades_out_of_range_fail() {
    run_table(&[
        fails("grade above the maximum", "import-qrels", "qrels.tsv", "q1\td11\t1000\n",
            "qrels.tsv:1: grade 1000 is above the maximum of 100; give grades on a small scale such as 0-3 or 0-4"),
        fails("huge JSON grade", "import-qrels", "qrels.jsonl", "{\"qid\": \"q1\", \"docid\": \"d11\", \"grade\": 1e300}\n",
            "qrels.jsonl:1: grade 1e+300 is above the maximum of 100; give grades on a small scale such as 0-3 or 0-4"),
        fails("negative grade", "import-qrels", "qrels.tsv", "q1\td11\t2\nq1\td12\t-1\n",
            "qrels.tsv:2: grade -1 is negative; grades must be 0 (irrelevant) or more"),
        fails("NaN grade", "import-qrels", "qrels.tsv", "q1\td11\tNaN\n",
            "qrels.tsv:1: `grade` is `NaN`, not a number; write it as a decimal number such as 2 or 0.5"),
        fails("infinite grade", "import-qrels", "qrels.tsv", "q1\td11\tinf\n",
            "qrels.tsv:1: `grade` is `inf`, not a number; write it as a decimal number such as 2 or 0.5"),
        fails("pair grade above the maximum", "import-pairs", "pairs.tsv", "q1\tred cats\td1\t1e9\n",
            "pairs.tsv:1: grade `1e9` is not a number from 0 to 100; give a relevance grade such as 0, 1 or 2"),
        fails("pair grade NaN", "import-pairs", "pairs.tsv", "q1\tred cats\td1\t1\nq1\tred cats\td2\tNaN\n",
            "pairs.tsv:2: grade `NaN` is not a number from 0 to 100; give a relevance grade such as 0, 1 or 2"),
    ]);
}

#[test]
fn duplicate_ids_fail() {
    run_table(&[
        fails("query id twice", "import-queries", "queries.tsv", "q1\tred cats\nq1\tblue dogs\n",
            "queries.tsv:2: duplicate qid `q1`; give each query one line"),
        fails("Chinese document id twice", "import-documents", "docs.tsv", "文档1\t搜索引擎\n文档2\t排序\n文档1\t模型\n",
            "docs.tsv:3: duplicate docid `文档1`; give each document one line"),
        fails("JSON query id twice as number and string", "import-queries", "queries.jsonl", "{\"qid\": 7, \"text\": \"a\"}\n{\"qid\": \"7\", \"text\": \"b\"}\n",
            "queries.jsonl:2: duplicate qid `7`; give each query one line"),
        fails("corpus id twice", "import-corpus", "docs.tsv", "d1\tone\nd1\ttwo\n", "docs.tsv:2: duplicate docid `d1`; give each document one line"),
        fails("label twice", "import-qrels", "qrels.tsv", "q1\td11\t2\nq1\td11\t1\n",
            "qrels.tsv:2: query `q1` and document `d11` are labelled twice; keep one label per pair"),
        fails("pair twice", "import-pairs", "pairs.tsv", "q1\tred cats\td1\nq1\tred cats\td1\n",
            "pairs.tsv:2: duplicate pair of qid `q1` and docid `d1`; keep one line per pair"),
        fails("two documents at one position", "import-clicks", "clicks.tsv", "q1\td1\t1\t1\t3\ts1\nq1\td2\t1\t0\t0\ts1\n",
            "clicks.tsv:2: query `q1` in session `s1` shows two documents at position 1; give each position of a page one row"),
    ]);
}

#[test]
fn non_finite_click_features_fail() {
    run_table(&[
        fails("NaN dwell", "import-clicks", "clicks.tsv", "q1\td1\t1\t1\tNaN\n",
            "clicks.tsv:1: `dwell` is `NaN`, not a number; write it as a decimal number such as 2 or 0.5"),
        fails("infinite dwell", "import-clicks", "clicks.tsv", "q1\td1\t1\t0\t0\nq1\td2\t2\t1\tinf\n",
            "clicks.tsv:2: `dwell` is `inf`, not a number; write it as a decimal number such as 2 or 0.5"),
        fails("minus infinite dwell", "import-clicks", "clicks.tsv", "q1\td1\t1\t1\t-inf\n",
            "clicks.tsv:1: `dwell` is `-inf`, not a number; write it as a decimal number such as 2 or 0.5"),
        fails("NaN dwell as a JSON string", "import-clicks", "clicks.jsonl", "{\"qid\": \"q1\", \"docid\": \"d1\", \"position\": 1, \"click\": 1, \"dwell\": \"NaN\"}\n",
            "clicks.jsonl:1: `dwell` is `NaN`, not a number; write it as a decimal number such as 2 or 0.5"),
        fails("dwell overflowing to infinity", "import-clicks", "clicks.jsonl", "{\"qid\": \"q1\", \"docid\": \"d1\", \"position\": 1, \"click\": 1, \"dwell\": 1e999}\n",
            "clicks.jsonl:1: invalid JSON (number out of range at line 1 column"),
        fails("infinite position", "import-clicks", "clicks.tsv", "q1\td1\tinf\t1\t3\n",
            "clicks.tsv:1: position `inf` is not a rank; give the 1-based rank the document was shown at"),
        fails("fractional position", "import-clicks", "clicks.jsonl", "{\"qid\": \"q1\", \"docid\": \"d1\", \"position\": 1.5, \"click\": 0, \"dwell\": 0}\n",
            "clicks.jsonl:1: position `1.5` is not a rank; give the 1-based rank the document was shown at"),
    ]);
}

#[test]
fn bom_crlf_and_chinese_import() {
    run_table(&[
        writes("byte order mark and CRLF", "import-queries", "queries.tsv", "\u{feff}q1\tred cats\r\nq2\t蓝色的狗\r\n",
            vec![json!({"qid": "q1", "text": "red cats"}), json!({"qid": "q2", "text": "蓝色的狗"})]),
        writes("Chinese JSONL documents", "import-documents", "docs.jsonl", "{\"docid\": \"文档1\", \"text\": \"搜索引擎的排序模型\"}\r\n",
            vec![json!({"id": "文档1", "text": "搜索引擎的排序模型"})]),
        writes("corpus with byte order mark", "import-corpus", "docs.tsv", "\u{feff}d1\t中文文本\r\nd2\tEnglish\r\n",
            vec![json!({"id": "d1", "text": "中文文本"}), json!({"id": "d2", "text": "English"})]),
        writes("Chinese pairs with CRLF", "import-pairs", "pairs.tsv", "\u{feff}q1\t红猫\td1\t2\r\nq1\t红猫\td2\t0\r\n",
            vec![json!({"qid": "q1", "query": "红猫", "docid": "d1", "grade": 2}), json!({"qid": "q1", "query": "红猫", "docid": "d2", "grade": 0})]),
        writes("clicks with CRLF", "import-clicks", "clicks.tsv", "查询\td1\t1\t1\t2.5\ts1\r\n",
            vec![json!({"qid": "查询", "docid": "d1", "position": 1, "click": 1, "dwell": 2.5, "session": "s1"})]),
    ]);
}

/// The limit of one line (`MAX_LINE_BYTES` of the importers, 16 MiB).
const LINE_LIMIT: &str = "16 MiB (16777216 bytes)";

/// Writes `first`, then a line of `id<TAB>` and `length` bytes of text, then `last`.
fn write_long_line(path: &std::path::Path, first: &str, id: &str, length: usize, last: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    file.write_all(first.as_bytes()).unwrap();
    file.write_all(format!("{id}\t").as_bytes()).unwrap();
    let chunk = vec![b'a'; 1 << 20];
    let mut left = length;
    while left > 0 {
        let n = left.min(chunk.len());
        file.write_all(&chunk[..n]).unwrap();
        left -= n;
    }
    file.write_all(b"\n").unwrap();
    file.write_all(last.as_bytes()).unwrap();
    file.flush().unwrap();
}

#[test]
fn hundred_megabyte_line_fails_fast() {
    let project = Project::new();
    write_long_line(&project.path("data/docs.tsv"), "d1\tshort\n", "d2", 100_000_000, "d3\tshort\n");
    project.write("wf.yaml", "name: long\nnodes:\n  import:\n    stage: import-documents\n    inputs: {file: {path: data/docs.tsv}}\n");
    let started = Instant::now();
    let printed = run_fails(&project, "wf.yaml");
    eprintln!("the run on a 100 MB line took {:.2} s", started.elapsed().as_secs_f64());
    let expected = format!("docs.tsv:2: line 2 is longer than {LINE_LIMIT}, the limit for one row; check that the file has one row per line");
    assert!(printed.contains(&expected), "expected {expected:?} in:\n{printed}");
    assert_nothing_committed(&project, "import");
}

#[test]
fn long_line_fails_in_corpus_and_pairs() {
    let just_over = (16 << 20) + 1;
    for (stage, file, first) in [("import-corpus", "docs.tsv", "d1\tshort\n"), ("import-pairs", "pairs.tsv", "q1\tred cats\td1\t2\n")] {
        let project = Project::new();
        write_long_line(&project.path(&format!("data/{file}")), first, "q1", just_over, "");
        project.write("wf.yaml", &format!("name: long\nnodes:\n  import:\n    stage: {stage}\n    inputs: {{file: {{path: data/{file}}}}}\n"));
        let printed = run_fails(&project, "wf.yaml");
        let expected = format!("{file}:2: line 2 is longer than {LINE_LIMIT}");
        assert!(printed.contains(&expected), "{stage}: expected {expected:?} in:\n{printed}");
        assert_nothing_committed(&project, "import");
    }
}

#[test]
fn long_line_skipped_when_lenient() {
    let project = Project::new();
    write_long_line(&project.path("data/queries.tsv"), "q1\tred cats\n", "q2", 20 << 20, "q3\tblue dogs\n");
    project.write("wf.yaml", "name: long\nnodes:\n  import:\n    stage: import-queries\n    inputs: {file: {path: data/queries.tsv}}\n    params: {lenient: true}\n");
    let summary = project.run_ok("wf.yaml", &[]);
    let queries = read_jsonl(&output_dir(&project, &summary, "import", "queries").join("queries.jsonl"));
    assert_eq!(queries, [json!({"qid": "q1", "text": "red cats"}), json!({"qid": "q3", "text": "blue dogs"})]);
    assert_eq!(metrics_of(&project, "import")["skipped"], json!({"line_too_long": 1}));
}
