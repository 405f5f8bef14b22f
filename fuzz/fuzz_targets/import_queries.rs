//! Runs `import-queries` on arbitrary file bytes (see `flywheel_fuzz::ImportInput` for the layout).

#![no_main]

use std::collections::HashSet;

use flywheel_fuzz::{ImportInput, check_error};
use flywheel_stages::import::read_queries;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(input) = ImportInput::split(data) else { return };
    let name = "queries.tsv";
    match read_queries(input.lines(name), input.format, input.lenient) {
        Ok((records, _)) => {
            assert!(!records.is_empty(), "a successful import has at least one row");
            let mut ids = HashSet::new();
            for record in &records {
                assert!(ids.insert(&record.qid), "query id `{}` imported twice", record.qid);
                serde_json::to_string(record).expect("records serialize");
            }
        }
        Err(error) => check_error(name, &error),
    }
});
