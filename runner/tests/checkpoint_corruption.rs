//! Damaged resume checkpoints of a training node (`pretrain-mlm`): a run never resumes from
//! one. It fails with an error that names the damaged file and how to start over, and
//! `verify` reports the checkpoint and moves it to quarantine, after which the node starts over.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::{Project, sigkill, text, wait_for};

/// Words of the documents below, so that the imported vocabulary covers them.
const VOCAB: &str = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nthe\nsearch\nengine\nranks\ndocument\nby\nrelevance\nof\nits\nwords\nto\nquery\nnumber\n0\n1\n2\n3\n4\n5\n6\n";

/// A tiny model that checkpoints every 5 steps, so the kill lands well before step 60.
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
    params: {layers: 1, hidden: 16, heads: 2, max_len: 16, batch_size: 2, steps: 60, warmup_steps: 2, checkpoint_every: 5, log_every: 5, eval_fraction: 0.1, seed: 5}
"#;

const RUN: &[&str] = &["run", "wf.yaml", "--device", "cpu", "--threads", "1"];

fn write_project() -> Project {
    let project = Project::new();
    let docs: String = (0..20).map(|i| format!("d{i}\tthe search engine ranks document {} by the relevance of its words to the query\n", i % 7)).collect();
    project.write("docs.tsv", &docs);
    project.write("vocab.txt", VOCAB);
    project.write("wf.yaml", WORKFLOW);
    project
}

/// Returns the first complete checkpoint (`step-N/` with `state.json`) under the store.
fn complete_checkpoint(project: &Project) -> Option<PathBuf> {
    common::files_below(&project.store().join("checkpoints"))
        .into_iter()
        .filter(|p| p.ends_with("state.json"))
        .filter_map(|p| p.parent().map(Path::to_path_buf))
        .find(|dir| dir.file_name().is_some_and(|n| n.to_string_lossy().starts_with("step-")))
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

fn flywheel_plain(project: &Project, args: &[&str]) -> std::process::Output {
    project.command(args).env("NO_GRAPHICS", "1").output().expect("flywheel runs")
}

/// One kind of damage to a checkpoint directory, and the file the error must name.
struct Damage {
    name: &'static str,
    damage: fn(&Path),
    file: &'static str,
    run_output: &'static str,
}

const DAMAGE: &[Damage] = &[
    Damage {
        name: "truncated model",
        damage: |dir| {
            let path = dir.join("model.safetensors");
            let bytes = fs::read(&path).unwrap();
            fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        },
        file: "model.safetensors",
        run_output: "resume checkpoint file does not match its digest",
    },
    Damage {
        name: "bit flip in optimizer tensors",
        damage: |dir| {
            // A flip in the tensor data, past the header, still parses, so only a digest detects it.
            let path = dir.join("optimizer.safetensors");
            let mut bytes = fs::read(&path).unwrap();
            let at = bytes.len() - 7;
            bytes[at] ^= 0x10;
            fs::write(&path, bytes).unwrap();
        },
        file: "optimizer.safetensors",
        run_output: "resume checkpoint file does not match its digest",
    },
    Damage {
        name: "deleted model",
        damage: |dir| fs::remove_file(dir.join("model.safetensors")).unwrap(),
        file: "model.safetensors",
        run_output: "No such file",
    },
    Damage {
        name: "garbage state",
        damage: |dir| fs::write(dir.join("state.json"), "{\"step\": 5, \"fi").unwrap(),
        file: "state.json",
        run_output: "invalid resume state",
    },
];

#[test]
fn damaged_checkpoint_is_never_resumed() {
    let project = write_project();
    let mut child = project.spawn(RUN);
    assert!(wait_for(120, || complete_checkpoint(&project).is_some()), "pretrain-mlm never wrote a resume checkpoint");
    sigkill(&mut child);
    let checkpoint = complete_checkpoint(&project).expect("the node finished before it was killed; raise its `steps`");
    let pristine = project.path("pristine");
    copy_dir(&checkpoint, &pristine);
    let verify = flywheel_plain(&project, &["verify"]);
    assert!(verify.status.success(), "verify rejected an intact checkpoint:\n{}", text(&verify));
    fs::remove_dir_all(&checkpoint).unwrap();

    for case in DAMAGE {
        // The previous case's `verify` moved the damaged checkpoint to quarantine.
        assert!(!checkpoint.exists());
        copy_dir(&pristine, &checkpoint);
        fs::set_permissions(&checkpoint, fs::Permissions::from_mode(0o755)).unwrap();
        (case.damage)(&checkpoint);

        let run = flywheel_plain(&project, RUN);
        let run_text = text(&run);
        assert_eq!(run.status.code(), Some(1), "{}: the run did not fail:\n{run_text}", case.name);
        assert!(run_text.contains(&checkpoint.join(case.file).display().to_string()), "{}: the error does not name the file:\n{run_text}", case.name);
        assert!(run_text.contains(case.run_output), "{}: expected {:?} in\n{run_text}", case.name, case.run_output);
        assert!(run_text.contains(&format!("delete {} to start the node over", checkpoint.display())), "{}: no fix given:\n{run_text}", case.name);

        let verify = flywheel_plain(&project, &["verify"]);
        let verify_text = text(&verify);
        assert_eq!(verify.status.code(), Some(1), "{}:\n{verify_text}", case.name);
        assert!(verify_text.contains(&format!("corrupt checkpoint {}: {}", checkpoint.display(), case.file)), "{}:\n{verify_text}", case.name);
        assert!(verify_text.contains("so its node starts over"), "{}:\n{verify_text}", case.name);
        assert!(!checkpoint.exists(), "{}: verify left the checkpoint in place", case.name);
    }

    // The last verify moved the checkpoint aside, so the node trains from step 0.
    let finished = flywheel_plain(&project, RUN);
    assert!(finished.status.success(), "{}", text(&finished));
    assert_eq!(project.last_summary().outcome("mlm"), "ran");
    let log = project.last_summary().0["run_id"].as_str().map(|id| project.store().join("runs").join(id).join("log.jsonl")).unwrap();
    assert!(!fs::read_to_string(log).unwrap().contains("resuming at step"), "the run resumed after verify removed the checkpoint");
    assert!(flywheel_plain(&project, &["verify"]).status.success());
}
