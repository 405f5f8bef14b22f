//! [`RunLog`]: the JSON-lines log of one run, `runs/<run-id>/log.jsonl` in the store.
//!
//! Every line is an object with `t` (seconds since the Unix epoch), `event`, and for node
//! events `node`. Stage log lines (built-in or plugin) are `{"event":"log","node":…,
//! "level":…,"message":…}`, so each line is attributed to the node that wrote it. Every event
//! also goes to `tracing`, which prints it on the terminal.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde_json::{Value, json};

pub struct RunLog {
    path: PathBuf,
    file: Mutex<Option<BufWriter<File>>>,
}

pub fn now_seconds() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

impl RunLog {
    pub fn create(path: &Path) -> std::io::Result<RunLog> {
        let file = File::options().create(true).append(true).open(path)?;
        Ok(RunLog { path: path.to_path_buf(), file: Mutex::new(Some(BufWriter::new(file))) })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one event. `fields` must be a JSON object; `t` and `event` are added.
    pub fn event(&self, event: &str, fields: Value) {
        let mut line = json!({"t": now_seconds(), "event": event});
        if let (Value::Object(out), Value::Object(extra)) = (&mut line, fields) {
            out.extend(extra);
        }
        let mut guard = self.file.lock().expect("run log lock");
        if let Some(writer) = guard.as_mut() {
            let written = serde_json::to_writer(&mut *writer, &line).is_ok() && writer.write_all(b"\n").is_ok() && writer.flush().is_ok();
            if !written {
                tracing::warn!(path = %self.path.display(), "cannot write the run log; further events go to the terminal only");
                *guard = None;
            }
        }
    }
}
