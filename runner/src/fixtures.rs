//! Test fixture stages, registered only when `FLYWHEEL_TEST_STAGES=1`: they let the runner's
//! tests make a stage sleep, fail, panic, skip an output or count its executions, through the
//! real binary and store.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use flywheel_stage_api::*;

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

        // Steps resume from the checkpoint, so a killed run continues where it stopped.
        let steps = ctx.param_usize("steps")?;
        let step_file = ctx.checkpoint_dir().join("step");
        let start: usize = fs::read_to_string(&step_file).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0);
        if start > 0 {
            ctx.info(&format!("resuming at step {start} of {steps}"));
        }
        for step in start..steps {
            ctx.check_cancelled()?;
            std::thread::sleep(Duration::from_millis(ctx.param_usize("sleep_ms")? as u64));
            fs::write(&step_file, (step + 1).to_string())?;
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
            fs::write(ctx.output("out")?.join("text.txt"), &text)?;
        }
        if !marker.is_empty() {
            append_line(marker, &format!("end {} {} {}", ctx.request.node, std::process::id(), timestamp_ns()))?;
        }
        Ok(StageOutcome::default().metric("bytes", text.len()))
    }
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
