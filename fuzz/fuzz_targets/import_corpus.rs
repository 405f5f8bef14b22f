//! Runs `import-corpus` on arbitrary file bytes (see `flywheel_fuzz::ImportInput` for the
//! layout; the format bit is unused): bit 0 of `extra` lowercases, bits 1-4 are `max_docs`.

#![no_main]

use flywheel_fuzz::{ImportInput, check_error};
use flywheel_stages::import_corpus;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(input) = ImportInput::split(data) else { return };
    let name = "docs.tsv";
    let lowercase = input.extra & 1 == 1;
    let max_docs = usize::from(input.extra >> 1);
    let mut out = Vec::new();
    match import_corpus(input.lines(name), lowercase, max_docs, &mut out) {
        Ok(count) => {
            assert!(count > 0 && (max_docs == 0 || count <= max_docs), "count {count}, max_docs {max_docs}");
            let written = std::str::from_utf8(&out).expect("the corpus is UTF-8");
            assert_eq!(written.lines().count(), count);
            for line in written.lines() {
                serde_json::from_str::<serde_json::Value>(line).expect("each written line is JSON");
            }
        }
        Err(error) => check_error(name, &error),
    }
});
