//! Runs `import-qrels` on arbitrary file bytes (see `flywheel_fuzz::ImportInput` for the layout)
//! against a fixed set of queries and documents.

#![no_main]

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use flywheel_fuzz::{ImportInput, check_error};
use flywheel_stages::import::{MAX_GRADE, read_labels};
use libfuzzer_sys::fuzz_target;

static QUERIES: LazyLock<HashMap<String, String>> =
    LazyLock::new(|| [("q1", "red cats"), ("q2", "blue dogs"), ("7", "seven")].map(|(q, t)| (q.to_string(), t.to_string())).into());
static DOCUMENTS: LazyLock<HashSet<String>> = LazyLock::new(|| ["d1", "d2", "12"].map(str::to_string).into());

fuzz_target!(|data: &[u8]| {
    let Some(input) = ImportInput::split(data) else { return };
    let name = "qrels.tsv";
    match read_labels(input.lines(name), input.format, input.lenient, &QUERIES, &DOCUMENTS) {
        Ok((pairs, _)) => {
            assert!(!pairs.is_empty(), "a successful import has at least one label");
            let mut labelled = HashSet::new();
            for pair in &pairs {
                assert!(labelled.insert((&pair.qid, &pair.docid)), "pair `{}` `{}` labelled twice", pair.qid, pair.docid);
                let grade = pair.grade.expect("every label has a grade");
                assert!((0.0..=MAX_GRADE).contains(&grade), "grade {grade} out of range");
                serde_json::to_string(pair).expect("pairs serialize");
            }
        }
        Err(error) => check_error(name, &error),
    }
});
