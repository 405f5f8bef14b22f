//! Kill-and-resume of `pretrain-mlm`: a training node killed by SIGKILL after it wrote a resume
//! checkpoint, then run again, must end with the same model bytes as an uninterrupted run in
//! another store (CPU backend, one thread).

mod common;

use common::{Project, sigkill, text, wait_for};

/// Words of the documents below, so the imported vocabulary covers them. The tokenizer is
/// imported rather than trained because `train-tokenizer` output is not yet byte-identical
/// between runs, and this test is about the training node alone.
const VOCAB: &str = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nthe\nsearch\nengine\nranks\ndocument\nby\nrelevance\nof\nits\nwords\nto\nquery\nnumber\n0\n1\n2\n3\n4\n5\n6\n7\n8\n9\n##0\n##1\n##2\n##3\n##4\n##5\n##6\n##7\n##8\n##9\n";

/// A tiny model trained for enough steps that the kill lands mid-training.
const WORKFLOW: &str = r#"
nodes:
  docs:
    stage: import-corpus
    inputs:
      file: {path: docs.tsv}
  vocab:
    stage: import-tokenizer
    inputs:
      file: {path: vocab.txt}
  mlm:
    stage: pretrain-mlm
    inputs: {corpus: docs.corpus, tokenizer: vocab.tokenizer}
    params: {layers: 2, hidden: 32, heads: 2, max_len: 24, batch_size: 4, steps: 300, warmup_steps: 5, checkpoint_every: 20, log_every: 20, eval_fraction: 0.1, seed: 5}
"#;

fn write_project() -> Project {
    let project = Project::new();
    let mut docs = String::new();
    for i in 0..40 {
        docs.push_str(&format!("d{i}\tthe search engine ranks document {i} by the relevance of its words to the query number {}\n", i % 7));
    }
    project.write("docs.tsv", &docs);
    project.write("wf.yaml", WORKFLOW);
    project.write("vocab.txt", VOCAB);
    project
}

fn model_bytes(project: &Project) -> Vec<u8> {
    let summary = project.last_summary();
    let id = summary.output("mlm", "model");
    let objects = project.store().join("objects");
    let file = common::files_below(&objects)
        .into_iter()
        .find(|p| p.ends_with("model.safetensors") && p.to_string_lossy().contains(&id.replace("b3:", "")[2..]))
        .unwrap_or_else(|| panic!("model.safetensors of {id} not found under {}", objects.display()));
    std::fs::read(file).unwrap()
}

#[test]
fn mlm_killed_after_checkpoint_resumes_bit_identical() {
    let reference = write_project();
    reference.run_ok("wf.yaml", &["--device", "cpu", "--threads", "1"]);
    let expected = model_bytes(&reference);

    let project = write_project();
    let mut child = project.spawn(&["run", "wf.yaml", "--device", "cpu", "--threads", "1"]);
    // A checkpoint is complete once its `.tmp-step-N/` directory is renamed to `step-N/`.
    let complete = |p: &std::path::PathBuf| p.ends_with("state.json") && p.parent().and_then(|d| d.file_name()).is_some_and(|n| n.to_string_lossy().starts_with("step-"));
    let checkpointed = wait_for(120, || common::files_below(&project.store().join("checkpoints")).iter().any(complete));
    assert!(checkpointed, "pretrain-mlm never wrote a resume checkpoint");
    sigkill(&mut child);

    let output = project.flywheel(&["run", "wf.yaml", "--device", "cpu", "--threads", "1"]);
    assert!(output.status.success(), "{}", text(&output));
    assert_eq!(project.last_summary().outcome("mlm"), "ran", "the killed node must run again");
    let runs = common::files_below(&project.store().join("runs"));
    let logs: String = runs.iter().filter(|p| p.ends_with("log.jsonl")).map(|p| std::fs::read_to_string(p).unwrap()).collect();
    assert!(logs.contains("resuming at step"), "the second run did not resume from the checkpoint");
    assert!(model_bytes(&project) == expected, "resumed model differs from the uninterrupted run");
}
