//! Runs `import-clicks` on arbitrary file bytes (see `flywheel_fuzz::ImportInput` for the
//! layout); bit 0 of `extra` names one extra TSV column, `session`.

#![no_main]

use flywheel_fuzz::{ImportInput, check_error};
use flywheel_stages::import::read_impressions;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(input) = ImportInput::split(data) else { return };
    let name = "clicks.tsv";
    let extra_columns = if input.extra & 1 == 1 { vec!["session".to_string()] } else { Vec::new() };
    match read_impressions(input.lines(name), input.format, input.lenient, &extra_columns) {
        Ok((impressions, _)) => {
            assert!(!impressions.is_empty(), "a successful import has at least one row");
            for impression in &impressions {
                assert!(impression.dwell.is_finite(), "dwell {}", impression.dwell);
                assert!(impression.dwell >= 0.0, "dwell {}", impression.dwell);
                assert!(impression.position >= 1, "position {}", impression.position);
                assert!(impression.click <= 1, "click {}", impression.click);
                serde_json::to_string(impression).expect("impressions serialize");
            }
        }
        Err(error) => check_error(name, &error),
    }
});
