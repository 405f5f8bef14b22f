//! [`NodeHost`]: the [`Host`] a running stage talks to. It files the stage's log lines,
//! progress and metrics under the node's name in the run log and on the terminal.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use flywheel_stage_api::{CancelFlag, Host, LogLevel};
use serde_json::json;

use crate::runlog::RunLog;

/// Minimum time between two progress events of one node in the run log.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(500);

pub struct NodeHost<'a> {
    pub node: &'a str,
    pub log: &'a RunLog,
    pub cancel: &'a CancelFlag,
    last_progress: Mutex<Option<Instant>>,
}

impl<'a> NodeHost<'a> {
    pub fn new(node: &'a str, log: &'a RunLog, cancel: &'a CancelFlag) -> Self {
        NodeHost { node, log, cancel, last_progress: Mutex::new(None) }
    }
}

impl Host for NodeHost<'_> {
    fn log(&self, level: LogLevel, message: &str) {
        let level_name = serde_json::to_value(level).expect("level serializes");
        self.log.event("log", json!({"node": self.node, "level": level_name, "message": message}));
        let node = self.node;
        match level {
            LogLevel::Error => tracing::error!(node, "{message}"),
            LogLevel::Warn => tracing::warn!(node, "{message}"),
            LogLevel::Info => tracing::info!(node, "{message}"),
            LogLevel::Debug => tracing::debug!(node, "{message}"),
            LogLevel::Trace => tracing::trace!(node, "{message}"),
        }
    }

    fn progress(&self, done: u64, total: u64, message: &str) {
        let mut last = self.last_progress.lock().expect("progress lock");
        let finished = total > 0 && done >= total;
        if !finished && last.is_some_and(|t| t.elapsed() < PROGRESS_INTERVAL) {
            return;
        }
        *last = Some(Instant::now());
        self.log.event("progress", json!({"node": self.node, "done": done, "total": total, "message": message}));
        let stderr = std::io::stderr();
        if stderr.is_terminal() {
            let shown = if total > 0 { format!("{done}/{total}") } else { done.to_string() };
            let mut out = stderr.lock();
            let _ = write!(out, "\r\x1b[2K  {} {shown} {message}", self.node);
            if finished {
                let _ = writeln!(out);
            }
            let _ = out.flush();
        }
    }

    fn metric(&self, name: &str, step: u64, value: f64) {
        self.log.event("metric", json!({"node": self.node, "name": name, "step": step, "value": value}));
    }

    fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }
}
