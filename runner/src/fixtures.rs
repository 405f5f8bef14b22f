//! Test fixture stages, registered only when `FLYWHEEL_TEST_STAGES=1`: they let the runner's
//! tests make a stage sleep, fail, panic, skip an output or count its executions, through the
//! real binary and store.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use flywheel_stage_api::*;

use crate::fault;

/// Writes its optional inputs' text followed by the `text` param to `out/text.txt`. The
/// `fixture-gpu` variant declares that it uses the GPU, so the scheduler serializes it.
pub struct Fixture {
    gpu: bool,
}

pub fn stages() -> Vec<Arc<dyn Stage>> {
    vec![Arc::new(Fixture { gpu: false }), Arc::new(Fixture { gpu: true }), Arc::new(StrictFixture)]
}

/// Appends one line with a single `write` call, so lines from parallel nodes never interleave.
fn append_line(path: &str, line: &str) -> Result<(), StageError> {
    let mut file = OpenOptions::new().create(true).append(true).open(path).map_err(|e| StageError::file(path, e))?;
    file.write_all(format!("{line}\n").as_bytes()).map_err(|e| StageError::file(path, e))
}

fn timestamp_ns() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
}

impl Stage for Fixture {
    fn descriptor(&self) -> StageDescriptor {
        let name = if self.gpu { "fixture-gpu" } else { "fixture" };
        let descriptor = StageDescriptor::new(name, "1")
            .summary("test fixture: concatenates inputs and a text param, with fault switches")
            .input(PortSpec::new("input", "text").optional())
            .input(PortSpec::new("extra", "text").optional())
            .output(PortSpec::new("out", "text"))
            .param(ParamSpec::new("text", ParamType::String).default(""))
            .param(ParamSpec::new("sleep_ms", ParamType::Int).default(0).doc("sleep per step, in ms"))
            .param(ParamSpec::new("steps", ParamType::Int).default(1).doc("checkpointed steps"))
            .param(ParamSpec::new("fail", ParamType::Bool).default(false))
            .param(ParamSpec::new("panic", ParamType::Bool).default(false))
            .param(ParamSpec::new("skip_output", ParamType::Bool).default(false))
            .param(ParamSpec::new("marker", ParamType::String).default("").doc("file that gets `start`/`end` lines per execution"));
        if self.gpu { descriptor.uses_gpu() } else { descriptor }
    }

    fn run(&self, ctx: &StageContext<'_>) -> Result<StageOutcome, StageError> {
        let marker = ctx.param_str("marker")?;
        if !marker.is_empty() {
            append_line(marker, &format!("start {} {} {}", ctx.request.node, std::process::id(), timestamp_ns()))?;
        }
        let mut text = String::new();
        for port in ["input", "extra"] {
            if let Some(dir) = ctx.optional_input(port) {
                let path = dir.join("text.txt");
                text.push_str(&fs::read_to_string(&path).map_err(|e| StageError::file(&path, e))?);
            }
        }
        text.push_str(ctx.param_str("text")?);

        // Steps resume from the checkpoint, so a killed run continues where it stopped. Each step
        // appends its number to a trace that ends up in the output's metadata, so resuming from
        // a torn checkpoint (a step count that does not match the trace) changes the artifact id.
        let steps = ctx.param_usize("steps")?;
        let (start, mut trace) = load_checkpoint(ctx.checkpoint_dir())?;
        if start > 0 {
            ctx.info(&format!("resuming at step {start} of {steps}"));
        }
        for step in start..steps {
            ctx.check_cancelled()?;
            std::thread::sleep(Duration::from_millis(ctx.param_usize("sleep_ms")? as u64));
            trace.push_str(&format!("{}\n", step + 1));
            save_checkpoint(ctx.checkpoint_dir(), step + 1, &trace)?;
            ctx.progress(step as u64 + 1, steps as u64, "steps");
        }

        if ctx.param_bool("panic")? {
            panic!("fixture panicked on request");
        }
        if ctx.param_bool("fail")? {
            return Err(StageError::failed("fixture failed on request"));
        }
        ctx.info(&format!("writing {} bytes", text.len()));
        if !ctx.param_bool("skip_output")? {
            let path = ctx.output("out")?.join("text.txt");
            fs::write(&path, &text).map_err(|e| StageError::file(&path, e))?;
        }
        if !marker.is_empty() {
            append_line(marker, &format!("end {} {} {}", ctx.request.node, std::process::id(), timestamp_ns()))?;
        }
        let mut outcome = StageOutcome::default().metric("bytes", text.len());
        if steps > 1 {
            outcome.metadata.insert("out".to_string(), serde_json::json!({"trace": trace}));
        }
        Ok(outcome)
    }
}

/// Reads the newest checkpoint `step-N/` under `dir`: its step count and trace. No checkpoint
/// gives step 0 and an empty trace.
fn load_checkpoint(dir: &Path) -> Result<(usize, String), StageError> {
    let mut newest: Option<(usize, PathBuf)> = None;
    for entry in fs::read_dir(dir).map_err(|e| StageError::file(dir, e))? {
        let path = entry.map_err(|e| StageError::file(dir, e))?.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy().to_string();
        if let Some(step) = name.strip_prefix("step-").and_then(|n| n.parse::<usize>().ok())
            && newest.as_ref().is_none_or(|(best, _)| step > *best)
        {
            newest = Some((step, path));
        }
    }
    let Some((_, path)) = newest else { return Ok((0, String::new())) };
    let step_path = path.join("step");
    let step_text = fs::read_to_string(&step_path).map_err(|e| StageError::file(&step_path, e))?;
    let step = step_text.trim().parse().map_err(|e| StageError::failed(format!("{}: invalid step count: {e}", step_path.display())))?;
    let trace_path = path.join("trace");
    let trace = fs::read_to_string(&trace_path).map_err(|e| StageError::file(&trace_path, e))?;
    Ok((step, trace))
}

/// Writes checkpoint `step-N/` with two files, `trace` then `step`, into a temporary directory
/// and renames it into place, then deletes older checkpoints: a kill at any point leaves the
/// previous checkpoint or the new one, never a mix. Nothing is fsynced, because the crash tests
/// kill the process and do not cut power.
fn save_checkpoint(dir: &Path, step: usize, trace: &str) -> Result<(), StageError> {
    let tmp = dir.join(format!(".tmp-step-{step:06}"));
    let target = dir.join(format!("step-{step:06}"));
    if tmp.exists() {
        fs::remove_dir_all(&tmp).map_err(|e| StageError::file(&tmp, e))?;
    }
    fs::create_dir_all(&tmp).map_err(|e| StageError::file(&tmp, e))?;
    fs::write(tmp.join("trace"), trace).map_err(|e| StageError::file(&tmp, e))?;
    fault::point("checkpoint-partial");
    fs::write(tmp.join("step"), step.to_string()).map_err(|e| StageError::file(&tmp, e))?;
    fault::point("checkpoint-before-rename");
    if target.exists() {
        fs::remove_dir_all(&target).map_err(|e| StageError::file(&target, e))?;
    }
    fs::rename(&tmp, &target).map_err(|e| StageError::file(&target, e))?;
    fault::point("checkpoint-after-rename");
    for entry in fs::read_dir(dir).map_err(|e| StageError::file(dir, e))? {
        let path = entry.map_err(|e| StageError::file(dir, e))?.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy().to_string();
        let older = name.strip_prefix("step-").and_then(|n| n.parse::<usize>().ok()).is_some_and(|n| n < step);
        if older || (name.starts_with(".tmp-step-") && path != tmp) {
            fs::remove_dir_all(&path).map_err(|e| StageError::file(&path, e))?;
        }
    }
    Ok(())
}

/// A fixture with a required param, a param with choices and two outputs, for validation tests.
pub struct StrictFixture;

impl Stage for StrictFixture {
    fn descriptor(&self) -> StageDescriptor {
        StageDescriptor::new("fixture-strict", "1")
            .summary("test fixture: a required param, choices and two outputs")
            .output(PortSpec::new("left", "text"))
            .output(PortSpec::new("right", "text"))
            .param(ParamSpec::new("level", ParamType::Int).doc("any integer"))
            .param(ParamSpec::new("mode", ParamType::String).default("plain").choices(&["plain", "upper"]))
    }

    fn run(&self, ctx: &StageContext<'_>) -> Result<StageOutcome, StageError> {
        let mut text = format!("level {}", ctx.param_i64("level")?);
        if ctx.param_str("mode")? == "upper" {
            text = text.to_uppercase();
        }
        for port in ["left", "right"] {
            let path = ctx.output(port)?.join("text.txt");
            fs::write(&path, &text).map_err(|e| StageError::file(&path, e))?;
        }
        Ok(StageOutcome::default())
    }
}
