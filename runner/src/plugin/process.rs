//! Running one plugin process: [`drive`] writes the input to its stdin, hands each stdout
//! and stderr line to callbacks, and enforces a timeout and cancellation.
//!
//! The process gets the runner's environment without its `FLYWHEEL_*` variables, so neither
//! the store's location (`FLYWHEEL_STORE`) nor the runner's test switches reach it.
//!
//! The process starts in its own process group. When it ends, for any reason, the whole
//! group is killed, so helper processes it started do not outlive it. The leader is reaped
//! only after that kill, so its process-group id cannot have been reused by then.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How often the loop checks the deadline, cancellation and the process's exit.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// Reason that a process did not run to its own exit.
#[derive(Debug)]
pub enum Stopped {
    /// The process could not be started.
    Spawn(std::io::Error),
    /// The stdout callback rejected a line, for the reason in the message.
    Rejected(String),
    TimedOut(Duration),
    Cancelled,
}

/// The program, arguments and working directory of a process.
pub struct Invocation<'a> {
    pub program: &'a Path,
    pub args: &'a [String],
    pub dir: &'a Path,
}

enum Line {
    Stdout(String),
    Stderr(String),
    Closed,
}

/// Runs a process to its end and returns its exit status. `on_stdout` receives each stdout
/// line (without the newline) and may reject it, which kills the process; `on_stderr`
/// receives each stderr line.
pub fn drive(
    invocation: &Invocation<'_>,
    input: &[u8],
    timeout: Option<Duration>,
    is_cancelled: &dyn Fn() -> bool,
    on_stdout: &mut dyn FnMut(&str) -> Result<(), String>,
    on_stderr: &mut dyn FnMut(&str),
) -> Result<ExitStatus, Stopped> {
    let mut command = Command::new(invocation.program);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("FLYWHEEL_") {
            command.env_remove(name);
        }
    }
    let mut child = command
        .args(invocation.args)
        .current_dir(invocation.dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(Stopped::Spawn)?;
    let deadline = timeout.map(|t| (Instant::now() + t, t));
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let stdout = child.stdout.take().expect("stdout is piped");
    let stderr = child.stderr.take().expect("stderr is piped");

    let stopped = std::thread::scope(|scope| {
        let (sender, receiver) = mpsc::channel();
        // A process that exits without reading its stdin makes this write fail. Its exit
        // status or missing result then reports the failure.
        scope.spawn(move || {
            let _ = stdin.write_all(input);
        });
        let stdout_sender = sender.clone();
        scope.spawn(move || read_lines(stdout, Line::Stdout, &stdout_sender));
        scope.spawn(move || read_lines(stderr, Line::Stderr, &sender));
        let stopped = watch(&child, &receiver, deadline, is_cancelled, on_stdout, on_stderr);
        // Killing the group closes the pipes, so the threads above end and the scope can join
        // them.
        kill_group(&child);
        stopped
    });
    let status = child.wait();
    match stopped {
        Some(stopped) => Err(stopped),
        None => status.map_err(Stopped::Spawn),
    }
}

/// Hands out the lines until the process has exited and closed both pipes, or until it must
/// be stopped.
fn watch(
    child: &Child,
    receiver: &mpsc::Receiver<Line>,
    deadline: Option<(Instant, Duration)>,
    is_cancelled: &dyn Fn() -> bool,
    on_stdout: &mut dyn FnMut(&str) -> Result<(), String>,
    on_stderr: &mut dyn FnMut(&str),
) -> Option<Stopped> {
    let mut open_streams = 2;
    let mut group_killed = false;
    loop {
        match receiver.recv_timeout(POLL_INTERVAL) {
            Ok(Line::Stdout(line)) => {
                if let Err(message) = on_stdout(&line) {
                    return Some(Stopped::Rejected(message));
                }
            }
            Ok(Line::Stderr(line)) => on_stderr(&line),
            Ok(Line::Closed) => open_streams -= 1,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => open_streams = 0,
        }
        let exited = has_exited(child);
        if exited && open_streams == 0 {
            return None;
        }
        if exited && !group_killed {
            // Helpers of an exited process may still hold its pipes open.
            kill_group(child);
            group_killed = true;
        }
        if let Some((at, limit)) = deadline
            && Instant::now() >= at
        {
            return Some(Stopped::TimedOut(limit));
        }
        if is_cancelled() {
            return Some(Stopped::Cancelled);
        }
    }
}

fn read_lines(stream: impl Read, wrap: fn(String) -> Line, sender: &mpsc::Sender<Line>) {
    let mut reader = BufReader::new(stream);
    let mut buffer = Vec::new();
    loop {
        buffer.clear();
        match reader.read_until(b'\n', &mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                let line = String::from_utf8_lossy(&buffer);
                let line = line.trim_end_matches(['\n', '\r']).to_string();
                if sender.send(wrap(line)).is_err() {
                    break;
                }
            }
        }
    }
    let _ = sender.send(Line::Closed);
}

/// Returns whether the process has exited, leaving it unreaped (a zombie) so that its pid and
/// process-group id stay reserved until [`Child::wait`].
fn has_exited(child: &Child) -> bool {
    // SAFETY: `siginfo_t` is plain data, valid when zeroed; waitid only writes into it.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let options = libc::WEXITED | libc::WNOHANG | libc::WNOWAIT;
    // SAFETY: `info` is a valid, writable siginfo_t, and the pid is our unreaped child.
    let result = unsafe { libc::waitid(libc::P_PID, child.id(), &mut info, options) };
    // With WNOHANG, waitid leaves si_pid at 0 while the child still runs.
    // SAFETY: the fields read were written by waitid or zeroed above.
    result == 0 && unsafe { info.si_pid() } != 0
}

/// Sends SIGKILL to the process group that the child leads.
fn kill_group(child: &Child) {
    let group = child.id() as libc::pid_t;
    // SAFETY: kill has no memory-safety preconditions. The child is not reaped yet, so
    // `group` still names its process group and no other.
    unsafe {
        libc::kill(-group, libc::SIGKILL);
    }
}

/// Describes an exit status for messages: `status 3` or `signal 9`.
pub fn describe_status(status: &ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("status {code}"),
        (None, Some(signal)) => format!("signal {signal}"),
        (None, None) => "an unknown status".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `script` with `sh -c`; returns the result and the stdout and stderr lines.
    fn run_shell(script: &str, timeout: Option<Duration>) -> (Result<ExitStatus, Stopped>, Vec<String>, Vec<String>) {
        let args = vec!["-c".to_string(), script.to_string()];
        let dir = std::env::temp_dir();
        let invocation = Invocation { program: Path::new("sh"), args: &args, dir: &dir };
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        let result = drive(
            &invocation,
            b"input line\n",
            timeout,
            &|| false,
            &mut |line| {
                stdout.push(line.to_string());
                Ok(())
            },
            &mut |line| stderr.push(line.to_string()),
        );
        (result, stdout, stderr)
    }

    #[test]
    fn drive_passes_stdin_and_collects_lines() {
        let (result, stdout, stderr) = run_shell("read line; echo \"got $line\"; echo oops >&2; exit 4", None);
        assert_eq!(result.unwrap().code(), Some(4));
        assert_eq!(stdout, ["got input line"]);
        assert_eq!(stderr, ["oops"]);
    }

    #[test]
    fn drive_kills_leftover_helpers() {
        // The background `sleep` inherits stdout and would hold it open for 30 s.
        let started = Instant::now();
        let (result, stdout, _) = run_shell("sleep 30 & echo done", Some(Duration::from_secs(20)));
        assert!(result.unwrap().success());
        assert_eq!(stdout, ["done"]);
        assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
    }

    #[test]
    fn drive_times_out_and_kills_group() {
        let started = Instant::now();
        let (result, _, _) = run_shell("sleep 30; echo late", Some(Duration::from_millis(200)));
        assert!(matches!(result, Err(Stopped::TimedOut(limit)) if limit == Duration::from_millis(200)), "{result:?}");
        assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
    }

    #[test]
    fn drive_stops_on_rejected_line() {
        let args = vec!["-c".to_string(), "echo bad; sleep 30".to_string()];
        let dir = std::env::temp_dir();
        let invocation = Invocation { program: Path::new("sh"), args: &args, dir: &dir };
        let result = drive(&invocation, b"", None, &|| false, &mut |line| Err(format!("rejected `{line}`")), &mut |_| {});
        assert!(matches!(&result, Err(Stopped::Rejected(message)) if message == "rejected `bad`"), "{result:?}");
    }

    #[test]
    fn drive_reports_cancellation() {
        let args = vec!["-c".to_string(), "sleep 30".to_string()];
        let dir = std::env::temp_dir();
        let invocation = Invocation { program: Path::new("sh"), args: &args, dir: &dir };
        let result = drive(&invocation, b"", None, &|| true, &mut |_| Ok(()), &mut |_| {});
        assert!(matches!(result, Err(Stopped::Cancelled)), "{result:?}");
    }

    #[test]
    fn drive_reports_missing_program() {
        let dir = std::env::temp_dir();
        let invocation = Invocation { program: Path::new("no-such-program-for-flywheel"), args: &[], dir: &dir };
        let result = drive(&invocation, b"", None, &|| false, &mut |_| Ok(()), &mut |_| {});
        assert!(matches!(result, Err(Stopped::Spawn(_))), "{result:?}");
    }
}
