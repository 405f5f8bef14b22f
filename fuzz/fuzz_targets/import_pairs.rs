//! Runs `import-pairs` on arbitrary file bytes (see `flywheel_fuzz::ImportInput` for the
//! layout; the format and `lenient` bits are unused).

#![no_main]

use flywheel_fuzz::{ImportInput, check_error};
use flywheel_stages::import_pairs;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(input) = ImportInput::split(data) else { return };
    let name = "pairs.tsv";
    let mut out = Vec::new();
    match import_pairs(input.lines(name), &mut out) {
        Ok((count, queries)) => {
            assert!(count > 0, "a successful import has at least one pair");
            assert!(queries > 0, "a successful import has at least one query");
            assert!(queries <= count, "{count} pairs of {queries} queries");
            let written = std::str::from_utf8(&out).expect("the pairs are UTF-8");
            assert_eq!(written.lines().count(), count);
            for line in written.lines() {
                serde_json::from_str::<serde_json::Value>(line).expect("each written line is JSON");
            }
        }
        Err(error) => check_error(name, &error),
    }
});
