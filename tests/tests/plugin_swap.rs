//! Swapping a built-in stage for a plugin stage, and rebuilding a plugin: exactly the node of
//! the swapped stage re-runs, plus the nodes whose inputs then change.

use flywheel_e2e::{Project, built, text, workspace_root};

const DOCS: &str = "d1\tcat dog\nd2\tcat bird\n";
const PAIRS: &str = "q1\tcat\td1\nq1\tcat\td2\n";

/// docs (import-corpus) -> stats (corpus-stats); docs + pairs (import-pairs) -> score (bm25)
/// -> run (trec-run). `extra_plugins` are appended to the `plugins:` list.
fn workflow(extra_plugins: &str) -> String {
    format!(
        r#"name: swap
plugins:
  - library: plugins/bm25.so
  - command: [python3, trec_run.py]
    files: [trec_run.py]
{extra_plugins}nodes:
  docs:
    stage: import-corpus
    inputs: {{file: {{path: docs.tsv}}}}
  stats:
    stage: corpus-stats
    inputs: {{corpus: docs.corpus}}
  pairs:
    stage: import-pairs
    inputs: {{file: {{path: pairs.tsv}}}}
  score:
    stage: bm25
    inputs: {{pairs: pairs, corpus: docs.corpus}}
  run:
    stage: trec-run
    inputs: {{scores: score}}
"#
    )
}

const IMPORT_CORPUS_PLUGIN: &str = "  - library: plugins/import-corpus.so\n";

/// Creates a project with the data, copies of both example plugins, and the workflow without
/// the `import-corpus` plugin.
fn project() -> Project {
    let project = Project::new();
    project.write("docs.tsv", DOCS);
    project.write("pairs.tsv", PAIRS);
    project.write("wf.yaml", &workflow(""));
    install(&project, &built().library("flywheel_bm25_stage"), "plugins/bm25.so");
    let script = std::fs::read_to_string(workspace_root().join("examples/trec-run-stage/trec_run.py")).unwrap();
    project.write("trec_run.py", &script);
    project
}

/// Copies a library into the project, replacing the file there as a rebuild would.
fn install(project: &Project, library: &std::path::Path, name: &str) {
    let target = project.path(name);
    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
    // Removing first makes the copy a new file (a new inode), as a rebuild's output is.
    let _ = std::fs::remove_file(&target);
    std::fs::copy(library, &target).unwrap();
}

#[test]
fn swapped_in_identical_stage_reruns_only_its_node() {
    let project = project();
    assert_eq!(project.run_ok("wf.yaml", &[]).ran(), ["docs", "stats", "pairs", "score", "run"]);

    install(&project, &built().example_library("swap_same"), "plugins/import-corpus.so");
    project.write("wf.yaml", &workflow(IMPORT_CORPUS_PLUGIN));
    let status = project.flywheel(&["status", "wf.yaml"]);
    let status_text = String::from_utf8_lossy(&status.stdout);
    assert!(status_text.contains("builtin:1 -> dylib:b3:"), "status does not name the new fingerprint:\n{}", text(&status));

    let output = project.flywheel(&["run", "wf.yaml"]);
    assert!(output.status.success(), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("the plugin at line 6 replaces the built-in stage `import-corpus` (builtin:1 -> dylib:b3:"), "{stderr}");
    let summary = project.last_summary();
    // Same code, so the same corpus bytes: nothing downstream of `docs` re-runs.
    assert_eq!(summary.ran(), ["docs"]);
    for node in ["stats", "pairs", "score", "run"] {
        assert_eq!(summary.outcome(node), "cached", "{node}");
    }
}

#[test]
fn rebuilt_plugin_with_new_output_reruns_dependents() {
    let project = project();
    install(&project, &built().example_library("swap_same"), "plugins/import-corpus.so");
    project.write("wf.yaml", &workflow(IMPORT_CORPUS_PLUGIN));
    project.run_ok("wf.yaml", &[]);

    // The same path now contains different code, whose corpus has one more document.
    install(&project, &built().example_library("swap_changed"), "plugins/import-corpus.so");
    let summary = project.run_ok("wf.yaml", &[]);
    assert_eq!(summary.ran(), ["docs", "stats", "score", "run"]);
    assert_eq!(summary.outcome("pairs"), "cached");
}

#[test]
fn swapping_back_to_builtin_reuses_first_results() {
    let project = project();
    let first = project.run_ok("wf.yaml", &[]);
    install(&project, &built().example_library("swap_changed"), "plugins/import-corpus.so");
    project.write("wf.yaml", &workflow(IMPORT_CORPUS_PLUGIN));
    assert_eq!(project.run_ok("wf.yaml", &[]).ran(), ["docs", "stats", "score", "run"]);

    project.write("wf.yaml", &workflow(""));
    let back = project.run_ok("wf.yaml", &[]);
    assert!(back.ran().is_empty(), "re-ran {:?}", back.ran());
    assert_eq!(back.output("run", "run"), first.output("run", "run"));
}

#[test]
fn moved_library_keeps_its_fingerprint() {
    let project = project();
    project.run_ok("wf.yaml", &[]);
    install(&project, &built().library("flywheel_bm25_stage"), "elsewhere/bm25-copy.so");
    project.write("wf.yaml", &workflow("").replace("plugins/bm25.so", "elsewhere/bm25-copy.so"));
    let summary = project.run_ok("wf.yaml", &[]);
    assert!(summary.ran().is_empty(), "re-ran {:?}", summary.ran());
}

#[test]
fn changed_declared_file_reruns_subprocess_node() {
    let project = project();
    project.run_ok("wf.yaml", &[]);

    // A file that the plugin does not declare is not part of its fingerprint.
    project.write("notes.txt", "not declared\n");
    assert!(project.run_ok("wf.yaml", &[]).ran().is_empty());

    let script = std::fs::read_to_string(project.path("trec_run.py")).unwrap();
    project.write("trec_run.py", &format!("{script}\n# edited\n"));
    let summary = project.run_ok("wf.yaml", &[]);
    assert_eq!(summary.ran(), ["run"]);
}
