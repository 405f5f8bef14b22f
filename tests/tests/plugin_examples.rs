//! The example plugins end to end: the BM25 library scores a tiny corpus, and the trec-run
//! subprocess stage writes the scores as a TREC run file. Scores are checked against values
//! worked out by hand below.

use flywheel_e2e::{Project, built, text, workspace_root};

/// Four documents. Terms are lowercased runs of letters and digits, so the lengths |d| are
/// d1 2, d2 4, d3 3, d4 3: N = 4 and avgdl = 12 / 4 = 3.
const DOCS: &str = "d1\tcat dog\nd2\tCat cat cat bird\nd3\tdog fish eel\nd4\tfish fish fish\n";

/// Eight pairs of four queries; q4's documents both score 0, so their ranks test the tie rule.
const PAIRS: &str = "q1\tcat\td1\nq1\tcat\td2\nq1\tcat\td3\n\
                     q2\tbird dog\td2\nq2\tbird dog\td3\n\
                     q3\tFish!\td4\n\
                     q4\teel\td4\nq4\teel\td1\n";

/// Writes the corpus, the pairs and a workflow that imports both, scores them with the BM25
/// plugin and writes a TREC run with the trec-run plugin.
fn project() -> Project {
    let project = Project::new();
    project.write("data/docs.tsv", DOCS);
    project.write("data/pairs.tsv", PAIRS);
    // The library is copied into the project so that the workflow can name it by a relative
    // path. The workflow is in `flows/`, and relative paths start there.
    let library = project.path("plugins/libflywheel_bm25_stage.so");
    std::fs::create_dir_all(library.parent().unwrap()).unwrap();
    std::fs::copy(built().library("flywheel_bm25_stage"), &library).unwrap();
    let script = workspace_root().join("examples/trec-run-stage/trec_run.py");
    project.write("flows/bm25.yaml", &format!(
        r#"name: bm25
vars:
  script: {script}
plugins:
  - library: ../plugins/libflywheel_bm25_stage.so
  - command: [python3, "${{script}}"]
    files: ["${{script}}"]
    timeout_s: 60
nodes:
  docs:
    stage: import-corpus
    inputs: {{file: {{path: ../data/docs.tsv}}}}
  pairs:
    stage: import-pairs
    inputs: {{file: {{path: ../data/pairs.tsv}}}}
  score:
    stage: bm25
    inputs: {{pairs: pairs.pairs, corpus: docs.corpus}}
  run:
    stage: trec-run
    inputs: {{scores: score.scores}}
    params: {{tag: flywheel-bm25}}
"#,
        script = script.display()
    ));
    project
}

/// Reads `scores.jsonl` into (qid, docid, score) rows.
fn scores(project: &Project, id: &str) -> Vec<(String, String, f64)> {
    project
        .artifact_file(id, "scores.jsonl")
        .lines()
        .map(|line| {
            let row: serde_json::Value = serde_json::from_str(line).unwrap();
            (row["qid"].as_str().unwrap().into(), row["docid"].as_str().unwrap().into(), row["score"].as_f64().unwrap())
        })
        .collect()
}

fn assert_close(actual: f64, expected: f64, label: &str) {
    assert!((actual - expected).abs() < 1e-12, "{label}: got {actual}, expected {expected}");
}

// With k1 = 1.2 and b = 0.75 the length factor is K(|d|) = 1.2 * (0.25 + 0.75 * |d| / 3)
// = 0.3 * (1 + |d|): K(2) = 0.9, K(3) = 1.2, K(4) = 1.5.
// IDF(n) = ln(1 + (4 - n + 0.5) / (n + 0.5)): IDF(2) = ln(1 + 2.5 / 2.5) = ln 2
// = 0.6931471805599453 for cat (d1, d2), dog (d1, d3) and fish (d3, d4), and
// IDF(1) = ln(1 + 3.5 / 1.5) = ln(10 / 3) = 1.2039728043259361 for bird (d2) and eel (d3).
// A term's weight is IDF * tf * 2.2 / (tf + K).
const LN_2: f64 = std::f64::consts::LN_2;
const LN_10_3: f64 = 1.2039728043259361;
/// q1 `cat`, d1: tf 1, K 0.9: ln 2 * 2.2 / 1.9 = 0.8025914722273.
const Q1_D1: f64 = LN_2 * 2.2 / 1.9;
/// q1 `cat`, d2: tf 3, K 1.5: ln 2 * 6.6 / 4.5 = 1.0166158648213.
const Q1_D2: f64 = LN_2 * 6.6 / 4.5;
/// q2 `bird dog`, d2: bird tf 1, K 1.5: ln(10/3) * 2.2 / 2.5 = 1.0594960678068; dog tf 0.
const Q2_D2: f64 = LN_10_3 * 2.2 / 2.5;
/// q2 `bird dog`, d3: dog tf 1, K 1.2: ln 2 * 2.2 / 2.2 = ln 2; bird tf 0.
const Q2_D3: f64 = LN_2;
/// q3 `Fish!`, d4: fish tf 3, K 1.2: ln 2 * 6.6 / 4.2 = 1.0892312837371.
const Q3_D4: f64 = LN_2 * 6.6 / 4.2;

#[test]
fn bm25_scores_match_hand_computed_values() {
    let project = project();
    let summary = project.run_ok("flows/bm25.yaml", &[]);
    assert_eq!(summary.ran(), ["docs", "pairs", "score", "run"]);

    let rows = scores(&project, &summary.output("score", "scores"));
    let expected = [
        ("q1", "d1", Q1_D1),
        ("q1", "d2", Q1_D2),
        ("q1", "d3", 0.0),
        ("q2", "d2", Q2_D2),
        ("q2", "d3", Q2_D3),
        ("q3", "d4", Q3_D4),
        ("q4", "d4", 0.0),
        ("q4", "d1", 0.0),
    ];
    assert_eq!(rows.len(), expected.len());
    for ((qid, docid, score), (want_qid, want_docid, want_score)) in rows.iter().zip(expected) {
        assert_eq!((qid.as_str(), docid.as_str()), (want_qid, want_docid), "scores keep the order of the pairs");
        assert_close(*score, want_score, &format!("{qid} {docid}"));
    }
}

#[test]
fn bm25_params_reach_the_plugin() {
    let project = project();
    project.run_ok("flows/bm25.yaml", &[]);
    let summary = project.run_ok("flows/bm25.yaml", &["--set", "score.b=0"]);
    assert_eq!(summary.ran(), ["score", "run"], "only the scorer and its consumer re-run");
    let rows = scores(&project, &summary.output("score", "scores"));
    // With b = 0, K = k1 = 1.2 for every document.
    // q1 d1: tf 1: ln 2 * 2.2 / 2.2 = ln 2.
    assert_close(rows[0].2, LN_2, "q1 d1 with b = 0");
    // q1 d2: tf 3: ln 2 * 6.6 / 4.2, the same as q3 d4 with b = 0.75 because |d4| = avgdl.
    assert_close(rows[1].2, Q3_D4, "q1 d2 with b = 0");
    // q2 d2: bird tf 1: ln(10/3) * 2.2 / 2.2.
    assert_close(rows[3].2, LN_10_3, "q2 d2 with b = 0");
}

#[test]
fn bm25_rejects_invalid_b() {
    let project = project();
    let output = project.flywheel(&["run", "flows/bm25.yaml", "--set", "score.b=1.5"]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("FAILED: invalid param `b`: must be between 0 and 1, got 1.5"), "{}", text(&output));
}

#[test]
fn trec_run_ranks_by_score_then_docid() {
    let project = project();
    let summary = project.run_ok("flows/bm25.yaml", &[]);
    let run = project.artifact_file(&summary.output("run", "run"), "run.txt");
    let expected = [
        ("q1", "d2", 1, Q1_D2),
        ("q1", "d1", 2, Q1_D1),
        ("q1", "d3", 3, 0.0),
        ("q2", "d2", 1, Q2_D2),
        ("q2", "d3", 2, Q2_D3),
        ("q3", "d4", 1, Q3_D4),
        // A tie at 0: ascending docid, though the pairs list d4 first.
        ("q4", "d1", 1, 0.0),
        ("q4", "d4", 2, 0.0),
    ];
    let lines: Vec<&str> = run.lines().collect();
    assert_eq!(lines.len(), expected.len(), "{run}");
    for (line, (qid, docid, rank, score)) in lines.iter().zip(expected) {
        let fields: Vec<&str> = line.split(' ').collect();
        assert_eq!(fields.len(), 6, "{line}");
        assert_eq!([fields[0], fields[1], fields[2], fields[5]], [qid, "Q0", docid, "flywheel-bm25"], "{line}");
        assert_eq!(fields[3], rank.to_string(), "{line}");
        assert_close(fields[4].parse().unwrap(), score, line);
    }
}

#[test]
fn plugin_log_lines_are_attributed_to_their_nodes() {
    let project = project();
    project.run_ok("flows/bm25.yaml", &[]);
    let log = project.last_log();
    let lines: Vec<(String, String, String)> = log
        .iter()
        .filter(|event| event["event"] == "log")
        .map(|event| {
            let field = |name: &str| event[name].as_str().unwrap_or_default().to_string();
            (field("node"), field("level"), field("message"))
        })
        .collect();
    let bm25 = ("score".to_string(), "info".to_string(),
        "scored 8 pairs of 4 queries against 4 documents (average length 3.00 terms, k1 1.2, b 0.75)".to_string());
    assert!(lines.contains(&bm25), "no BM25 line under node `score` in {lines:?}");
    let trec = ("run".to_string(), "info".to_string(), "wrote 8 run lines for 4 queries".to_string());
    assert!(lines.contains(&trec), "no trec-run line under node `run` in {lines:?}");
}

#[test]
fn stages_describes_each_example_plugin() {
    let project = Project::new();
    let library = built().library("flywheel_bm25_stage");
    let output = project.flywheel(&["stages", "--plugin", library.to_str().unwrap()]);
    assert!(output.status.success(), "{}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.starts_with("bm25 (dylib:b3:"), "{stdout}");
    assert!(stdout.contains("param k1              float = 1.2"), "{stdout}");

    let script = workspace_root().join("examples/trec-run-stage/trec_run.py");
    let command = format!("python3 {}", script.display());
    let output = project.flywheel(&["stages", "--json", "--plugin-command", &command]);
    assert!(output.status.success(), "{}", text(&output));
    let descriptors: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(descriptors[0]["name"], "trec-run");
    assert_eq!(descriptors[0]["outputs"][0]["kind"], "trec-run");
}
