//! Damaged stores: truncated, bit-flipped, deleted, extra and misplaced files in objects and
//! action records, and store directories that cannot be read. For each, `verify` reports the
//! damage with what it does about it, and `run` never trusts it: it recomputes, or fails with
//! an error that names the path and the fix. `verify.rs` covers flipped, deleted and extra
//! data files; `checkpoint_corruption.rs` covers resume checkpoints.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::{Project, Summary, text};

const WORKFLOW: &str = "nodes:\n  a:\n    stage: fixture\n    params: {text: hello}\n  b:\n    stage: fixture\n    inputs: {input: a.out}\n    params: {text: \" world\"}\n";

fn hex(digest: &str) -> &str {
    digest.strip_prefix("b3:").expect("a b3: digest")
}

fn object_dir(project: &Project, id: &str) -> PathBuf {
    let hex = hex(id);
    project.store().join("objects").join(&hex[..2]).join(&hex[2..])
}

fn record_path(project: &Project, key: &str) -> PathBuf {
    let hex = hex(key);
    project.store().join("actions").join(&hex[..2]).join(format!("{}.json", &hex[2..]))
}

fn key_of(summary: &Summary, node: &str) -> String {
    let entry = summary.0["nodes"].as_array().unwrap().iter().find(|e| e[0] == node).expect("node in summary");
    entry[1]["key"].as_str().unwrap().to_string()
}

fn writable(path: &Path) {
    fs::set_permissions(path, fs::Permissions::from_mode(0o644)).unwrap();
}

fn truncate(path: &Path) {
    writable(path);
    let bytes = fs::read(path).unwrap();
    fs::write(path, &bytes[..bytes.len() / 2]).unwrap();
}

/// Flips one bit of the byte at `offset`, keeping the size, as a disk error would.
fn flip_bit(path: &Path, offset: usize) {
    writable(path);
    let mut bytes = fs::read(path).unwrap();
    bytes[offset] ^= 0x02;
    fs::write(path, bytes).unwrap();
}

/// Replaces a file with an empty directory of the same name.
fn replace_with_dir(path: &Path) {
    fs::remove_file(path).unwrap();
    fs::create_dir(path).unwrap();
}

/// Offset of the first byte after `needle` in the file.
fn offset_after(path: &Path, needle: &str) -> usize {
    let text = fs::read_to_string(path).unwrap();
    text.find(needle).unwrap_or_else(|| panic!("{needle:?} not in {}", path.display())) + needle.len()
}

/// Runs flywheel with miette's plain report format, which does not wrap long lines, so that
/// a path in an error message can be matched whole.
fn flywheel_plain(project: &Project, args: &[&str]) -> std::process::Output {
    project.command(args).env("NO_GRAPHICS", "1").output().expect("flywheel runs")
}

fn verify_output(project: &Project) -> (Option<i32>, String) {
    let output = flywheel_plain(project, &["verify"]);
    (output.status.code(), format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr)))
}

fn assert_verify_clean(project: &Project, case: &str) {
    let (code, output) = verify_output(project);
    assert_eq!(code, Some(0), "{case}: verify is not clean:\n{output}");
}

/// One kind of damage to the object of node `a`, and the reason `verify` must report.
struct ObjectDamage {
    name: &'static str,
    damage: fn(&Path),
    verify_output: &'static str,
}

const OBJECT_DAMAGE: &[ObjectDamage] = &[
    ObjectDamage { name: "truncated data file", damage: |dir| truncate(&dir.join("data/text.txt")), verify_output: "text.txt does not match its hash" },
    ObjectDamage { name: "truncated manifest", damage: |dir| truncate(&dir.join("manifest.json")), verify_output: "a manifest whose hash is not its id" },
    ObjectDamage { name: "bit flip in manifest", damage: |dir| flip_bit(&dir.join("manifest.json"), 10), verify_output: "a manifest whose hash is not its id" },
    ObjectDamage { name: "deleted manifest", damage: |dir| fs::remove_file(dir.join("manifest.json")).unwrap(), verify_output: "manifest.json: No such file" },
    ObjectDamage { name: "manifest replaced by a directory", damage: |dir| replace_with_dir(&dir.join("manifest.json")), verify_output: "manifest.json: Is a directory" },
    ObjectDamage { name: "data file replaced by a directory", damage: |dir| replace_with_dir(&dir.join("data/text.txt")), verify_output: "text.txt is missing" },
    ObjectDamage { name: "extra data file", damage: |dir| fs::write(dir.join("data/extra.txt"), "x").unwrap(), verify_output: "extra.txt is not in the manifest" },
    ObjectDamage { name: "deleted data directory", damage: |dir| fs::remove_dir_all(dir.join("data")).unwrap(), verify_output: "data: No such file" },
];

#[test]
fn object_damage_is_recomputed_by_run() {
    for case in OBJECT_DAMAGE {
        let project = Project::new();
        project.write("wf.yaml", WORKFLOW);
        let first = project.run_ok("wf.yaml", &[]);
        let id = first.output("a", "out");
        (case.damage)(&object_dir(&project, &id));

        let rerun = project.run_ok("wf.yaml", &[]);
        assert_eq!(rerun.ran(), ["a"], "{}: run trusted the damaged object", case.name);
        assert_eq!(rerun.output("a", "out"), id, "{}", case.name);
        assert_eq!(rerun.outcome("b"), "cached", "{}", case.name);
        let content = fs::read_to_string(object_dir(&project, &id).join("data/text.txt")).unwrap();
        assert_eq!(content, "hello", "{}", case.name);
        assert_verify_clean(&project, case.name);
    }
}

#[test]
fn object_damage_is_reported_by_verify() {
    for case in OBJECT_DAMAGE {
        let project = Project::new();
        project.write("wf.yaml", WORKFLOW);
        let id = project.run_ok("wf.yaml", &[]).output("a", "out");
        (case.damage)(&object_dir(&project, &id));

        let (code, output) = verify_output(&project);
        assert_eq!(code, Some(1), "{}:\n{output}", case.name);
        assert!(output.contains(&format!("corrupt object {id}")), "{}:\n{output}", case.name);
        assert!(output.contains(case.verify_output), "{}: expected {:?} in\n{output}", case.name, case.verify_output);
        assert!(output.contains("so the next run recomputes it"), "{}: no fix given:\n{output}", case.name);
        assert!(!object_dir(&project, &id).exists(), "{}: the object was not moved to quarantine", case.name);

        assert_eq!(project.run_ok("wf.yaml", &[]).ran(), ["a"], "{}", case.name);
        assert_verify_clean(&project, case.name);
    }
}

#[test]
fn damaged_stat_cache_of_object_is_harmless() {
    let project = Project::new();
    project.write("wf.yaml", WORKFLOW);
    let id = project.run_ok("wf.yaml", &[]).output("a", "out");
    fs::write(object_dir(&project, &id).join("stat.json"), "{garbage").unwrap();
    assert_verify_clean(&project, "garbage stat.json");
    assert!(project.run_ok("wf.yaml", &[]).ran().is_empty(), "a valid object with an unreadable stat.json was recomputed");
}

/// One kind of damage to the action record of node `a`, and the reason `verify` must report.
struct RecordDamage {
    name: &'static str,
    damage: fn(&Path),
    verify_output: &'static str,
}

const RECORD_DAMAGE: &[RecordDamage] = &[
    RecordDamage { name: "truncated record", damage: truncate, verify_output: "invalid JSON" },
    RecordDamage { name: "garbage record", damage: |path| fs::write(path, [0xff, 0x00, 0x13, 0x37]).unwrap(), verify_output: "invalid JSON" },
    RecordDamage { name: "empty record", damage: |path| fs::write(path, "").unwrap(), verify_output: "invalid JSON" },
    RecordDamage {
        name: "bit flip in a metric",
        damage: |path| flip_bit(path, offset_after(path, "\"bytes\": ")),
        verify_output: "does not match its checksum",
    },
    RecordDamage {
        name: "bit flip in an output id",
        damage: |path| flip_bit(path, offset_after(path, "\"out\": \"b3:")),
        verify_output: "does not match its checksum",
    },
    RecordDamage {
        name: "checksum removed",
        damage: |path| {
            let text = fs::read_to_string(path).unwrap();
            let cut = text.find(",\n  \"checksum\"").expect("record has a checksum");
            fs::write(path, format!("{}\n}}", &text[..cut])).unwrap();
        },
        verify_output: "no `checksum` field",
    },
    RecordDamage {
        name: "record of another key",
        damage: |path| {
            let other = path.with_file_name("0".repeat(62) + ".json");
            fs::copy(path, other).unwrap();
        },
        verify_output: "not the key",
    },
];

#[test]
fn record_damage_is_recomputed_by_run() {
    for case in RECORD_DAMAGE {
        let project = Project::new();
        project.write("wf.yaml", WORKFLOW);
        let first = project.run_ok("wf.yaml", &[]);
        let record = record_path(&project, &key_of(&first, "a"));
        (case.damage)(&record);

        let rerun = project.run_ok("wf.yaml", &[]);
        // A record of another key damages no record that this workflow reads.
        let expected: &[&str] = if case.name == "record of another key" { &[] } else { &["a"] };
        assert_eq!(rerun.ran(), expected, "{}: run trusted the damaged record", case.name);
        assert_eq!(rerun.output("a", "out"), first.output("a", "out"), "{}", case.name);
        assert_eq!(rerun.outcome("b"), "cached", "{}", case.name);
    }
}

#[test]
fn record_damage_is_reported_by_verify() {
    for case in RECORD_DAMAGE {
        let project = Project::new();
        project.write("wf.yaml", WORKFLOW);
        let first = project.run_ok("wf.yaml", &[]);
        let record = record_path(&project, &key_of(&first, "a"));
        (case.damage)(&record);

        let (code, output) = verify_output(&project);
        assert_eq!(code, Some(1), "{}:\n{output}", case.name);
        assert!(output.contains("is unusable"), "{}:\n{output}", case.name);
        assert!(output.contains(case.verify_output), "{}: expected {:?} in\n{output}", case.name, case.verify_output);
        assert!(output.contains("removed, so its node runs again"), "{}: no fix given:\n{output}", case.name);
        assert_verify_clean(&project, case.name);
        project.run_ok("wf.yaml", &[]);
        assert_verify_clean(&project, case.name);
    }
}

#[test]
fn record_replaced_by_directory_fails_run_until_verify() {
    let project = Project::new();
    project.write("wf.yaml", WORKFLOW);
    let first = project.run_ok("wf.yaml", &[]);
    let record = record_path(&project, &key_of(&first, "a"));
    replace_with_dir(&record);

    let output = flywheel_plain(&project, &["run", "wf.yaml"]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let all = text(&output);
    assert!(all.contains(&record.display().to_string()), "the error does not name the record:\n{all}");
    assert!(all.contains("the store layout is damaged here"), "{all}");
    assert!(all.contains("run `flywheel verify`"), "the error gives no fix:\n{all}");

    let (code, verify) = verify_output(&project);
    assert_eq!(code, Some(1), "{verify}");
    assert!(verify.contains("Is a directory"), "{verify}");
    assert!(!record.exists(), "verify left the directory in place");
    assert_eq!(project.run_ok("wf.yaml", &[]).ran(), ["a"]);
    assert_verify_clean(&project, "record replaced by a directory");
}

#[test]
fn stray_fanout_file_moved_by_verify() {
    let project = Project::new();
    project.write("wf.yaml", WORKFLOW);
    let first = project.run_ok("wf.yaml", &[]);
    let key = key_of(&first, "a");
    let fan = record_path(&project, &key).parent().unwrap().to_path_buf();
    fs::remove_dir_all(&fan).unwrap();
    fs::write(&fan, "not a directory").unwrap();

    let output = flywheel_plain(&project, &["run", "wf.yaml"]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let all = text(&output);
    assert!(all.contains(&fan.display().to_string()), "the error does not name the fan-out path:\n{all}");
    assert!(all.contains("run `flywheel verify`"), "the error gives no fix:\n{all}");

    let (code, verify) = verify_output(&project);
    assert_eq!(code, Some(1), "{verify}");
    assert!(verify.contains(&format!("unexpected file {}", fan.display())), "{verify}");
    assert_eq!(project.run_ok("wf.yaml", &[]).ran(), ["a"]);
    assert_verify_clean(&project, "stray file in actions/");
}

/// Returns whether this process is denied reading a file with mode 000. It is not when it runs
/// as root or with CAP_DAC_OVERRIDE.
fn permissions_enforced() -> bool {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("probe");
    fs::write(&path, "x").unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o000)).unwrap();
    fs::read(&path).is_err()
}

#[test]
fn store_area_replaced_by_file_fails_with_fix() {
    // A file where `objects/` or `actions/` belongs: the store cannot be opened, and both `run`
    // and `verify` name the path to move aside. This runs with any privileges, unlike a
    // chmod (see `unreadable_store_directories`).
    for area in ["objects", "actions"] {
        let project = Project::new();
        project.write("wf.yaml", WORKFLOW);
        project.run_ok("wf.yaml", &[]);
        let path = project.store().join(area);
        fs::rename(&path, project.path("moved-aside")).unwrap();
        fs::write(&path, "not a directory").unwrap();

        for args in [&["run", "wf.yaml"][..], &["verify"][..]] {
            let output = flywheel_plain(&project, args);
            assert_ne!(output.status.code(), Some(0), "{area}, {args:?}: {}", text(&output));
            let all = text(&output);
            assert!(all.contains(&format!("move {} aside", path.display())), "{area}, {args:?}: no fix given:\n{all}");
        }
        fs::remove_file(&path).unwrap();
        assert_eq!(project.run_ok("wf.yaml", &[]).ran(), ["a", "b"], "{area}");
        assert_verify_clean(&project, area);
    }
}

#[test]
fn unreadable_store_directories() {
    if !permissions_enforced() {
        eprintln!(
            "NOTE: this process reads files with mode 000 (it runs as root or with CAP_DAC_OVERRIDE), \
             so chmod cannot make store directories unreadable here; `store_area_replaced_by_file_fails_with_fix` \
             covers the same paths with a file in place of a directory"
        );
        return;
    }
    for target in ["objects", "actions", "object of a"] {
        let project = Project::new();
        project.write("wf.yaml", WORKFLOW);
        let first = project.run_ok("wf.yaml", &[]);
        let path = match target {
            "object of a" => object_dir(&project, &first.output("a", "out")),
            area => project.store().join(area),
        };
        fs::set_permissions(&path, fs::Permissions::from_mode(0o000)).unwrap();

        let run = flywheel_plain(&project, &["run", "wf.yaml"]);
        let run_text = text(&run);
        let (code, verify) = verify_output(&project);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();

        assert_eq!(run.status.code(), Some(1), "{target}: run succeeded without reading the store:\n{run_text}");
        assert!(run_text.contains("permission denied on"), "{target}:\n{run_text}");
        assert!(run_text.contains("make it readable and writable by this user"), "{target}: no fix given:\n{run_text}");
        assert_ne!(code, Some(0), "{target}: verify is clean:\n{verify}");
        assert!(verify.contains("permission denied on"), "{target}:\n{verify}");

        project.run_ok("wf.yaml", &[]);
        assert_verify_clean(&project, target);
    }
}
