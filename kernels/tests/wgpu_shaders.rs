//! Parses and validates every WGSL file in `kernels/wgsl` with naga, the
//! shader compiler inside wgpu, so that a shader error fails `cargo test`
//! on any machine, with or without a GPU adapter.
//!
//! The wgpu backend appends `common.wgsl` to each kernel file before
//! compiling it. This test compiles the same text and maps every error back
//! to the file and line it comes from.

use std::fs;
use std::path::{Path, PathBuf};

use naga::valid::{Capabilities, ValidationFlags, Validator};

const COMMON: &str = "common.wgsl";

fn wgsl_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("wgsl")
}

/// Maps a 1-based line of `file + common` to the file and line it came from.
fn source_line(file: &str, file_lines: usize, line: usize) -> (String, usize) {
    if line > file_lines {
        (format!("wgsl/{COMMON}"), line - file_lines)
    } else {
        (format!("wgsl/{file}"), line)
    }
}

/// Compiles `file` with the common helpers appended; returns an error
/// message with the file and line of each problem.
fn check_file(name: &str, text: &str, common: &str) -> Result<(), String> {
    let mut source = text.to_string();
    if !source.ends_with('\n') {
        source.push('\n');
    }
    let file_lines = source.lines().count();
    if name != COMMON {
        source.push_str(common);
    }

    let module = naga::front::wgsl::parse_str(&source).map_err(|error| {
        let location = error
            .location(&source)
            .map(|location| source_line(name, file_lines, location.line_number as usize));
        describe("parse", name, location, &error.emit_to_string(&source))
    })?;
    Validator::new(ValidationFlags::all(), Capabilities::default())
        .validate(&module)
        .map_err(|error| {
            let location = error
                .location(&source)
                .map(|location| source_line(name, file_lines, location.line_number as usize));
            describe("validation", name, location, &error.emit_to_string(&source))
        })?;
    Ok(())
}

fn describe(stage: &str, name: &str, location: Option<(String, usize)>, report: &str) -> String {
    let place = match location {
        Some((file, line)) => format!("{file}:{line}"),
        None => format!("wgsl/{name}"),
    };
    format!("{place}: {stage} error\n{report}")
}

#[test]
fn every_wgsl_file_compiles() {
    let dir = wgsl_dir();
    let common = fs::read_to_string(dir.join(COMMON))
        .unwrap_or_else(|error| panic!("read {}: {error}", dir.join(COMMON).display()));
    let mut names: Vec<String> = fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("list {}: {error}", dir.display()))
        .map(|entry| entry.expect("directory entry").file_name())
        .map(|name| name.to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".wgsl"))
        .collect();
    names.sort();
    assert!(
        names.len() > 1,
        "expected the kernel files and {COMMON} in {}",
        dir.display()
    );

    let failures: Vec<String> = names
        .iter()
        .filter_map(|name| {
            let text = fs::read_to_string(dir.join(name)).expect("read a listed file");
            check_file(name, &text, &common).err()
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} WGSL files failed to compile:\n\n{}",
        failures.len(),
        names.len(),
        failures.join("\n")
    );
}

#[test]
fn errors_name_file_and_line() {
    let broken =
        "fn f() -> f32 {\n    return 1.0;\n}\nfn g() -> f32 {\n    return undefined_name;\n}\n";
    let error =
        check_file("broken.wgsl", broken, "").expect_err("an unknown name must not compile");
    assert!(
        error.starts_with("wgsl/broken.wgsl:5:"),
        "error does not point at line 5: {error}"
    );
}
