//! Subprocess stages: any executable that speaks flywheel's JSON envelope.
//!
//! The runner starts the command once per request, writes one JSON object to its stdin and
//! closes it:
//!
//! - `{"protocol": N, "describe": true}`: the handshake. The process prints
//!   `{"protocol": N, "stages": [StageDescriptor, ...]}` and exits with status 0.
//! - `{"protocol": N, "request": StageRequest}`: run one stage. The process prints one JSON
//!   event per stdout line: `{"event": "log", "level", "message"}`,
//!   `{"event": "progress", "done", "total", "message"}`, `{"event": "metric", "name",
//!   "step", "value"}`, and last `{"event": "result", "outcome": StageOutcome}` or
//!   `{"event": "error", "message"}`, then exits with status 0.
//!
//! Where the process runs: the handshake runs in the workflow file's directory. Each stage
//! run gets a fresh, empty working directory of its own, beside the run's staging directories
//! (the store's `tmp/`), removed when the stage ends. An argument that is a relative path to
//! an existing file or directory, counted from the workflow file's directory, is passed as an
//! absolute path, so `command: [python3, stage.py]` works in both places. The process learns
//! its inputs, outputs and checkpoint directory from the request; input files are read-only.
//! This is not a sandbox: the process runs as the same user, with the same file system and
//! network, and could still open any path it can name.
//!
//! Each stderr line goes to the run log as a `warn` line of the node. A protocol mismatch, a
//! non-zero exit, a malformed line, a missing result and a timeout are errors, and the
//! process group is killed on timeout, on a malformed line and on cancellation.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use flywheel_stage_api::{Host, LogLevel, PROTOCOL_VERSION, Stage, StageContext, StageDescriptor, StageError, StageOutcome};
use serde::Deserialize;
use serde_json::json;

use super::process::{Invocation, Stopped, describe_status, drive};
use super::{CommandSpec, PluginError, check_descriptors};
use crate::canonical;
use crate::digest::Digest;
use crate::registry::RegisteredStage;
use crate::store::hash::hash_file;

/// Limit on the `describe` handshake when the plugin declares no `timeout_s`.
pub const DEFAULT_DESCRIBE_TIMEOUT: Duration = Duration::from_secs(30);

/// Number of trailing stderr lines quoted in an error message.
const STDERR_TAIL_LINES: usize = 5;

/// Heading of the stderr lines quoted in a stage's error message.
const RUN_LOG_NOTE: &str = "its last stderr lines (the run log has all of them)";

/// Maximum length of a stdout excerpt quoted in an error message, in characters.
const EXCERPT_CHARS: usize = 200;

/// The reply to `describe`.
#[derive(Deserialize)]
struct DescribeReply {
    protocol: u32,
    stages: Vec<StageDescriptor>,
}

/// One stdout line of a running stage.
#[derive(Deserialize)]
#[serde(tag = "event", rename_all = "lowercase")]
enum Event {
    Log {
        #[serde(default = "info")]
        level: LogLevel,
        message: String,
    },
    Progress {
        done: u64,
        #[serde(default)]
        total: u64,
        #[serde(default)]
        message: String,
    },
    Metric {
        name: String,
        #[serde(default)]
        step: u64,
        value: f64,
    },
    Result {
        #[serde(default)]
        outcome: StageOutcome,
    },
    Error {
        message: String,
    },
}

fn info() -> LogLevel {
    LogLevel::Info
}

/// Runs the `describe` handshake and returns the command's stages, each with the fingerprint
/// `subprocess:b3:<hex>` of the command, the declared files' contents and the stage version.
pub fn load(spec: &CommandSpec) -> Result<Vec<RegisteredStage>, PluginError> {
    let error = |message: String| PluginError::new(format!("`{}`", spec.display()), message);
    if spec.command.is_empty() {
        return Err(error("the command is empty; give the program and its arguments".to_string()));
    }
    let mut files = Vec::new();
    for (name, path) in &spec.files {
        let digest = hash_file(path).map_err(|e| error(format!("cannot read declared file {}: {e}", path.display())))?;
        files.push(json!([name, digest]));
    }
    let descriptors = describe(spec).map_err(error)?;
    check_descriptors(&descriptors).map_err(error)?;

    let spec = Arc::new(spec.clone());
    Ok(descriptors
        .into_iter()
        .map(|descriptor| {
            let identity = json!({"command": spec.command, "files": files, "version": descriptor.version});
            let fingerprint = format!("subprocess:{}", Digest::of_bytes(&canonical::to_vec(&identity)));
            RegisteredStage {
                stage: Arc::new(SubprocessStage { spec: spec.clone(), descriptor: descriptor.clone() }),
                descriptor,
                fingerprint,
            }
        })
        .collect())
}

fn describe(spec: &CommandSpec) -> Result<Vec<StageDescriptor>, String> {
    let input = format!("{}\n", json!({"protocol": PROTOCOL_VERSION, "describe": true}));
    let program = program_path(spec);
    let args = resolve_args(spec);
    let invocation = Invocation { program: &program, args: &args, dir: &spec.dir };
    let timeout = spec.timeout.unwrap_or(DEFAULT_DESCRIBE_TIMEOUT);

    let mut stdout = String::new();
    let mut stderr = Vec::new();
    let result = drive(
        &invocation,
        input.as_bytes(),
        Some(timeout),
        &|| false,
        &mut |line| {
            stdout.push_str(line);
            stdout.push('\n');
            Ok(())
        },
        &mut |line| {
            tracing::debug!(command = spec.display(), "describe handshake stderr: {line}");
            stderr.push(line.to_string());
        },
    );
    let status = result.map_err(|stopped| stop_message(spec, "the describe handshake", stopped))?;

    if let Ok(Event::Error { message }) = serde_json::from_str::<Event>(&stdout) {
        return Err(format!("the describe handshake failed: {message}"));
    }
    if !status.success() {
        return Err(format!("the describe handshake exited with {}{}", describe_status(&status), stderr_tail(&stderr, "its last stderr lines")));
    }
    let reply: DescribeReply = serde_json::from_str(&stdout).map_err(|e| {
        format!(
            "invalid reply to the describe handshake ({e}); expected {{\"protocol\": {PROTOCOL_VERSION}, \"stages\": [...]}} \
             on stdout, got `{}`",
            excerpt(stdout.trim())
        )
    })?;

    if reply.protocol != PROTOCOL_VERSION {
        return Err(format!(
            "the command speaks protocol version {}, but this flywheel speaks version {PROTOCOL_VERSION}; \
             update the plugin or flywheel so that they match",
            reply.protocol
        ));
    }
    Ok(reply.stages)
}

/// One stage of a subprocess plugin.
pub struct SubprocessStage {
    spec: Arc<CommandSpec>,
    descriptor: StageDescriptor,
}

impl Stage for SubprocessStage {
    fn descriptor(&self) -> StageDescriptor {
        self.descriptor.clone()
    }

    fn run(&self, ctx: &StageContext<'_>) -> Result<StageOutcome, StageError> {
        let spec = &self.spec;
        let name = &self.descriptor.name;
        let input = format!("{}\n", json!({"protocol": PROTOCOL_VERSION, "request": ctx.request}));
        let program = program_path(spec);
        let args = resolve_args(spec);
        let workdir = WorkDir::create(ctx)?;
        let invocation = Invocation { program: &program, args: &args, dir: &workdir.0 };

        let host = ctx.host;
        let mut ending: Option<Result<StageOutcome, String>> = None;
        let mut line_number = 0usize;
        let mut stderr = Vec::new();
        let result = drive(
            &invocation,
            input.as_bytes(),
            spec.timeout,
            &|| host.is_cancelled(),
            &mut |line| {
                line_number += 1;
                handle_line(host, line, line_number, &mut ending)
            },
            &mut |line| {
                host.log(LogLevel::Warn, line);
                stderr.push(line.to_string());
            },
        );

        let failed = |message: String| StageError::failed(format!("stage `{name}` (command `{}`) {message}", spec.display()));
        let status = match result {
            Ok(status) => status,
            Err(Stopped::Cancelled) => return Err(StageError::Cancelled),
            Err(stopped) => return Err(StageError::failed(stop_message(spec, &format!("stage `{name}`"), stopped))),
        };

        match ending {
            // The stage's own message is more specific than its exit status.
            Some(Err(message)) => Err(StageError::failed(message)),
            _ if !status.success() => Err(failed(format!("exited with {}{}", describe_status(&status), stderr_tail(&stderr, RUN_LOG_NOTE)))),
            Some(Ok(outcome)) => Ok(outcome),
            None => Err(failed(format!(
                "exited without a `result` or `error` event on stdout{}",
                stderr_tail(&stderr, RUN_LOG_NOTE)
            ))),
        }
    }
}

/// Handles one stdout line of a running stage; an `Err` kills the process.
fn handle_line(
    host: &dyn Host,
    line: &str,
    line_number: usize,
    ending: &mut Option<Result<StageOutcome, String>>,
) -> Result<(), String> {
    if line.trim().is_empty() {
        return Ok(());
    }
    let event: Event = serde_json::from_str(line).map_err(|e| {
        format!("malformed event on stdout line {line_number}: {e}; each stdout line must be one JSON event, got `{}`", excerpt(line))
    })?;
    if ending.is_some() {
        return Err(format!("stdout line {line_number} comes after the `result` or `error` event; nothing may follow it"));
    }
    match event {
        Event::Log { level, message } => host.log(level, &message),
        Event::Progress { done, total, message } => host.progress(done, total, &message),
        Event::Metric { name, step, value } => host.metric(&name, step, value),
        Event::Result { outcome } => *ending = Some(Ok(outcome)),
        Event::Error { message } => *ending = Some(Err(message)),
    }
    Ok(())
}

/// A stage run's own working directory, removed when dropped.
struct WorkDir(PathBuf);

impl WorkDir {
    /// Creates an empty directory beside the request's first output staging directory
    /// (`<store>/tmp/<name>/data`), named so that the next run's cleanup of stale staging
    /// removes it if this process dies. A request without outputs gets one in the system's
    /// temporary directory.
    fn create(ctx: &StageContext<'_>) -> Result<WorkDir, StageError> {
        let parent = ctx
            .request
            .outputs
            .values()
            .next()
            .and_then(|data| data.parent()?.parent())
            .map(Path::to_path_buf)
            .unwrap_or_else(std::env::temp_dir);
        let label: String = ctx.request.node.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
        let dir = parent.join(format!("{label}-work-{}-{:x}", std::process::id(), crate::store::unique_suffix()));
        std::fs::create_dir_all(&dir).map_err(|e| StageError::file(&dir, e))?;
        Ok(WorkDir(dir))
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = crate::store::remove_tree(&self.0);
    }
}

/// Returns the arguments to pass. A relative argument that names an existing file or
/// directory, counted from the workflow directory, becomes that absolute path. Others pass
/// unchanged.
fn resolve_args(spec: &CommandSpec) -> Vec<String> {
    spec.command[1..]
        .iter()
        .map(|arg| {
            let relative = !arg.is_empty() && !arg.starts_with('-') && Path::new(arg).is_relative();
            let path = spec.dir.join(arg);
            if relative && path.exists() { path.to_string_lossy().into_owned() } else { arg.clone() }
        })
        .collect()
}

/// Returns the program to start: a name with a `/` is a path relative to the workflow
/// directory, any other name is looked up in `PATH`.
fn program_path(spec: &CommandSpec) -> PathBuf {
    let program = Path::new(&spec.command[0]);
    if spec.command[0].contains('/') { spec.dir.join(program) } else { program.to_path_buf() }
}

fn stop_message(spec: &CommandSpec, subject: &str, stopped: Stopped) -> String {
    let command = spec.display();
    match stopped {
        Stopped::Spawn(e) => format!("cannot start `{command}`: {e}; check the program name and that it is executable"),
        Stopped::Rejected(message) => format!("{subject} (command `{command}`): {message}; the process was killed"),
        Stopped::TimedOut(limit) => format!(
            "{subject} (command `{command}`) timed out after {} s and its process group was killed; raise `timeout_s` \
             of the plugin if it needs longer",
            limit.as_secs_f64()
        ),
        Stopped::Cancelled => format!("{subject} (command `{command}`) was cancelled"),
    }
}

/// Quotes the last stderr lines for an error message; `heading` introduces them.
fn stderr_tail(lines: &[String], heading: &str) -> String {
    if lines.is_empty() {
        return "; it wrote nothing to stderr".to_string();
    }
    let start = lines.len().saturating_sub(STDERR_TAIL_LINES);
    format!("; {heading}:\n  {}", lines[start..].join("\n  "))
}

fn excerpt(text: &str) -> String {
    if text.chars().count() <= EXCERPT_CHARS {
        return text.to_string();
    }
    let cut: String = text.chars().take(EXCERPT_CHARS).collect();
    format!("{cut}…")
}

#[cfg(test)]
mod tests {
    use super::*;
    use flywheel_stage_api::NullHost;

    fn handle(lines: &[&str]) -> (Result<(), String>, Option<Result<StageOutcome, String>>) {
        let mut ending = None;
        for (index, line) in lines.iter().enumerate() {
            if let Err(message) = handle_line(&NullHost, line, index + 1, &mut ending) {
                return (Err(message), ending);
            }
        }
        (Ok(()), ending)
    }

    #[test]
    fn events_end_in_result() {
        let (result, ending) = handle(&[
            r#"{"event":"log","message":"default level is info"}"#,
            "",
            r#"{"event":"progress","done":1,"total":2}"#,
            r#"{"event":"metric","name":"loss","value":0.5}"#,
            r#"{"event":"result","outcome":{"metrics":{"n":1}}}"#,
        ]);
        assert_eq!(result, Ok(()));
        assert_eq!(ending.unwrap().unwrap().metrics["n"], 1);
    }

    #[test]
    fn error_event_carries_message() {
        let (result, ending) = handle(&[r#"{"event":"error","message":"no input"}"#]);
        assert_eq!(result, Ok(()));
        assert_eq!(ending, Some(Err("no input".to_string())));
    }

    #[test]
    fn unknown_event_is_malformed() {
        let (result, _) = handle(&[r#"{"event":"shout","message":"hi"}"#]);
        let message = result.unwrap_err();
        assert!(message.starts_with("malformed event on stdout line 1: unknown variant `shout`"), "{message}");
    }

    #[test]
    fn line_after_result_is_rejected() {
        let (result, _) = handle(&[r#"{"event":"result"}"#, r#"{"event":"log","message":"late"}"#]);
        assert_eq!(result.unwrap_err(), "stdout line 2 comes after the `result` or `error` event; nothing may follow it");
    }

    #[test]
    fn relative_arguments_naming_files_become_absolute() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("stage.py"), "").unwrap();
        let spec = CommandSpec {
            command: ["python3", "stage.py", "missing.py", "--flag", "/abs/path", "-c"].map(String::from).to_vec(),
            files: Vec::new(),
            timeout: None,
            dir: dir.path().to_path_buf(),
        };
        let stage = dir.path().join("stage.py").display().to_string();
        assert_eq!(resolve_args(&spec), [stage.as_str(), "missing.py", "--flag", "/abs/path", "-c"]);
    }

    #[test]
    fn fingerprint_covers_command_files_and_version() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("stage.sh");
        let describe = r#"cat > /dev/null; echo '{"protocol": 1, "stages": [{"name": "s", "version": "1"}]}'"#;
        std::fs::write(&script, describe).unwrap();
        let spec = CommandSpec {
            command: vec!["sh".into(), "stage.sh".into()],
            files: vec![("stage.sh".into(), script.clone())],
            timeout: None,
            dir: dir.path().to_path_buf(),
        };
        let fingerprint = |spec: &CommandSpec| load(spec).unwrap()[0].fingerprint.clone();
        let first = fingerprint(&spec);
        assert!(first.starts_with("subprocess:b3:"), "{first}");
        assert_eq!(fingerprint(&spec), first);

        let mut other_command = spec.clone();
        other_command.command.push("--flag".into());
        assert_ne!(fingerprint(&other_command), first);

        std::fs::write(&script, format!("{describe}\n# changed\n")).unwrap();
        let changed_file = fingerprint(&spec);
        assert_ne!(changed_file, first);

        std::fs::write(&script, describe.replace(r#""version": "1""#, r#""version": "2""#)).unwrap();
        let mut undeclared = spec.clone();
        undeclared.files.clear();
        let version_two = fingerprint(&undeclared);
        std::fs::write(&script, describe).unwrap();
        assert_ne!(fingerprint(&undeclared), version_two, "the stage version is part of the fingerprint");
    }
}
