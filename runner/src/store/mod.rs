//! The content-addressed store: objects, action records, refs, checkpoints, runs, locks.
//!
//! Layout below the store root (default `.flywheel/` beside the workflow):
//!
//! ```text
//! STORE                    format version
//! objects/ab/cdef…/        one artifact: manifest.json, data/, stat.json
//! actions/ab/cdef….json    action record of one node key
//! refs/<workflow>/<node>.json   latest key computed for a node of a workflow
//! checkpoints/<key>/       in-node resume state of a key not yet committed
//! runs/<run-id>/           plan.json, log.jsonl, summary.json of one run
//! tmp/                     staging; a commit renames out of here
//! locks/<key>.lock         per-key locks
//! quarantine/              corrupt objects moved aside by `verify` or `run`
//! statcache.json           digests of external input files by stat
//! ```

mod action;
pub mod checkpoint;
mod fsutil;
pub mod hash;
mod lock;
mod object;
mod statcache;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use action::{ActionRecord, CHECKSUM_FIELD, Provenance, RECORD_SCHEMA, RecordError};
pub use fsutil::{describe_io, remove_tree, unique_suffix, write_atomic};
pub use lock::{KeyLock, RunPins, StoreLock, live_pins};
pub use object::{External, FileEntry, Manifest, ObjectError, ObjectState, Objects};
pub use statcache::StatCache;

use crate::digest::Digest;

/// Version of the store layout, written to `STORE`.
pub const STORE_FORMAT: u32 = 1;

/// Why the store could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{}", describe_io(.path, .source))]
    Io { path: PathBuf, source: io::Error },
    #[error("{path} holds a flywheel store of format {found}, but this flywheel reads format {STORE_FORMAT}; use a matching flywheel or another --store")]
    Format { path: PathBuf, found: String },
}

/// The latest key computed for one node of a workflow.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeRef {
    pub key: Digest,
    pub run_id: String,
}

#[derive(Clone, Debug)]
pub struct Store {
    pub root: PathBuf,
    pub objects: Objects,
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Io { path: path.to_path_buf(), source }
}

impl Store {
    /// Opens the store at `root`, creating it when absent.
    pub fn open(root: &Path) -> Result<Store, StoreError> {
        fs::create_dir_all(root).map_err(io_at(root))?;
        let root = fs::canonicalize(root).map_err(io_at(root))?;
        let format_path = root.join("STORE");
        match fs::read_to_string(&format_path) {
            Ok(text) if text.trim() == STORE_FORMAT.to_string() => {}
            Ok(text) => return Err(StoreError::Format { path: root, found: text.trim().to_string() }),
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                write_atomic(&format_path, format!("{STORE_FORMAT}\n").as_bytes()).map_err(io_at(&format_path))?;
            }
            Err(err) => return Err(StoreError::Io { path: format_path, source: err }),
        }
        for sub in ["objects", "actions", "refs", "checkpoints", "runs", "tmp", "locks"] {
            let dir = root.join(sub);
            fs::create_dir_all(&dir).map_err(io_at(&dir))?;
        }
        let objects = Objects { root: root.join("objects") };
        Ok(Store { root, objects })
    }

    pub fn locks_dir(&self) -> PathBuf {
        self.root.join("locks")
    }

    pub fn quarantine_dir(&self) -> PathBuf {
        self.root.join("quarantine")
    }

    pub fn checkpoint_dir(&self, key: &Digest) -> PathBuf {
        self.root.join("checkpoints").join(key.to_hex())
    }

    pub fn run_dir(&self, run_id: &str) -> PathBuf {
        self.root.join("runs").join(run_id)
    }

    pub fn stat_cache(&self) -> StatCache {
        StatCache::load(self.root.join("statcache.json"))
    }

    /// Creates a fresh, empty staging directory under `tmp/`.
    pub fn staging_dir(&self, label: &str) -> Result<PathBuf, StoreError> {
        let safe: String = label.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect();
        let dir = self.root.join("tmp").join(format!("{safe}-{}-{:x}", std::process::id(), unique_suffix()));
        fs::create_dir_all(dir.join("data")).map_err(io_at(&dir))?;
        Ok(dir)
    }

    /// Removes staging directories left by processes that are no longer alive.
    pub fn clean_stale_staging(&self) {
        let Ok(entries) = fs::read_dir(self.root.join("tmp")) else { return };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            let pid = name.rsplit('-').nth(1).and_then(|p| p.parse::<u32>().ok());
            if let Some(pid) = pid
                && !process_alive(pid)
            {
                let _ = remove_tree(&entry.path());
            }
        }
    }

    fn record_path(&self, key: &Digest) -> PathBuf {
        let hex = key.to_hex();
        self.root.join("actions").join(&hex[..2]).join(format!("{}.json", &hex[2..]))
    }

    /// Reads the record of `key`; `None` when absent or untrustworthy (a miss, not an error).
    pub fn read_record(&self, key: &Digest) -> Option<ActionRecord> {
        self.load_record(key).ok().flatten()
    }

    /// Reads the record of `key` and checks its checksum and key. Returns `Ok(None)` when there
    /// is no record file, and an error with the reason when an existing record is unusable.
    pub fn load_record(&self, key: &Digest) -> Result<Option<ActionRecord>, RecordError> {
        let path = self.record_path(key);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(RecordError { reason: describe_io(&path, &err), path }),
        };
        action::decode(&bytes, key).map(Some).map_err(|reason| RecordError { path, reason })
    }

    /// Reads the record of `key` and checks its output objects. A record with a missing or
    /// corrupt object is a miss; corrupt objects are moved to quarantine so they get rebuilt.
    pub fn lookup(&self, key: &Digest) -> Option<ActionRecord> {
        let record = match self.load_record(key) {
            Ok(record) => record?,
            Err(err) => {
                tracing::warn!(key = %key, "{err}; the node runs again and rewrites the record");
                return None;
            }
        };
        for id in record.outputs.values() {
            match self.objects.check(id) {
                ObjectState::Valid => {}
                ObjectState::Missing => return None,
                ObjectState::Corrupt(reason) => {
                    tracing::warn!(object = %id, "stored object is corrupt ({reason}); it will be recomputed");
                    let _ = self.objects.quarantine(id, &self.quarantine_dir());
                    return None;
                }
            }
        }
        Some(record)
    }

    pub fn write_record(&self, record: &ActionRecord) -> Result<(), StoreError> {
        let path = self.record_path(&record.key);
        let bytes = action::encode(record);
        write_atomic(&path, &bytes).map_err(io_at(&path))
    }

    /// Lists the keys of every record present.
    pub fn list_records(&self) -> io::Result<Vec<Digest>> {
        let mut keys = Vec::new();
        for fan in fs::read_dir(self.root.join("actions"))? {
            let fan = fan?;
            if !fan.file_type()?.is_dir() {
                continue;
            }
            let prefix = fan.file_name().to_string_lossy().to_string();
            for entry in fs::read_dir(fan.path())? {
                let name = entry?.file_name().to_string_lossy().to_string();
                if let Some(rest) = name.strip_suffix(".json")
                    && let Ok(key) = format!("{prefix}{rest}").parse()
                {
                    keys.push(key);
                }
            }
        }
        keys.sort();
        Ok(keys)
    }

    /// Removes the record of `key`, or whatever is at its path (a directory, after damage).
    pub fn remove_record(&self, key: &Digest) -> io::Result<()> {
        let path = self.record_path(key);
        if fs::symlink_metadata(&path)?.is_dir() { remove_tree(&path) } else { fs::remove_file(path) }
    }

    fn ref_path(&self, workflow: &str, node: &str) -> PathBuf {
        self.root.join("refs").join(workflow).join(format!("{node}.json"))
    }

    pub fn read_ref(&self, workflow: &str, node: &str) -> Option<NodeRef> {
        let bytes = fs::read(self.ref_path(workflow, node)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    pub fn write_ref(&self, workflow: &str, node: &str, node_ref: &NodeRef) -> Result<(), StoreError> {
        let path = self.ref_path(workflow, node);
        write_atomic(&path, &serde_json::to_vec(node_ref).expect("ref serializes")).map_err(io_at(&path))
    }

    /// Lists workflow names that have refs.
    pub fn ref_workflows(&self) -> io::Result<Vec<String>> {
        let mut names: Vec<String> = fs::read_dir(self.root.join("refs"))?
            .flatten()
            .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
            .map(|e| e.file_name().to_string_lossy().to_string())
            .collect();
        names.sort();
        Ok(names)
    }

    /// Lists `(node, ref)` for every node of a workflow that has a ref.
    pub fn refs_of(&self, workflow: &str) -> io::Result<Vec<(String, NodeRef)>> {
        let mut refs = Vec::new();
        let dir = self.root.join("refs").join(workflow);
        for entry in fs::read_dir(&dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().to_string();
            if let Some(node) = name.strip_suffix(".json")
                && let Some(node_ref) = self.read_ref(workflow, node)
            {
                refs.push((node.to_string(), node_ref));
            }
        }
        refs.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(refs)
    }
}

/// Returns whether a process with this pid exists on this machine.
pub fn process_alive(pid: u32) -> bool {
    Path::new("/proc").join(pid.to_string()).exists()
}
