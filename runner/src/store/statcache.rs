//! [`StatCache`]: remembers the digest of external input files by (path, size, mtime, inode),
//! so an unchanged large file is not hashed again on the next run.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::fsutil::write_atomic;
use super::hash::hash_file;
use super::object::{FileStat, ObjectError};
use crate::digest::Digest;

/// Files modified less than this long ago are hashed on every use.
const RACY_WINDOW_NS: i128 = 2_000_000_000;

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Entry {
    stat: FileStat,
    digest: Digest,
}

/// A persistent map from file identity to content digest, shared by the threads of one run.
pub struct StatCache {
    path: PathBuf,
    entries: Mutex<HashMap<PathBuf, Entry>>,
}

impl StatCache {
    /// Loads the cache file; a missing or unreadable file gives an empty cache.
    pub fn load(path: PathBuf) -> StatCache {
        let entries = fs::read(&path)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Vec<(PathBuf, Entry)>>(&bytes).ok())
            .map(|list| list.into_iter().collect())
            .unwrap_or_default();
        StatCache { path, entries: Mutex::new(entries) }
    }

    /// Returns the digest of a file's content, hashing it only when its stat changed.
    pub fn digest(&self, path: &Path) -> Result<Digest, ObjectError> {
        let io_err = |source| ObjectError::Io { path: path.to_path_buf(), source };
        let abs = fs::canonicalize(path).map_err(io_err)?;
        let stat = FileStat::of(&fs::metadata(&abs).map_err(io_err)?);
        if let Some(entry) = self.entries.lock().expect("stat cache lock").get(&abs)
            && entry.stat == stat
        {
            return Ok(entry.digest);
        }
        let digest = hash_file(&abs).map_err(io_err)?;
        // A file modified while it was hashed keeps no entry, and neither does a file modified in
        // the last two seconds: a second write within the filesystem's timestamp granularity
        // could keep size and mtime (git calls this the "racy" case).
        let after = FileStat::of(&fs::metadata(&abs).map_err(io_err)?);
        let now_ns = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as i128)
            .unwrap_or(0);
        if after == stat && now_ns - stat.mtime_ns > RACY_WINDOW_NS {
            self.entries.lock().expect("stat cache lock").insert(abs, Entry { stat, digest });
        }
        Ok(digest)
    }

    /// Writes the cache back atomically. Concurrent runs may overwrite each other's entries,
    /// which only costs a re-hash.
    pub fn save(&self) -> std::io::Result<()> {
        let entries = self.entries.lock().expect("stat cache lock");
        let mut list: Vec<(&PathBuf, &Entry)> = entries.iter().collect();
        list.sort_by(|a, b| a.0.cmp(b.0));
        write_atomic(&self.path, &serde_json::to_vec(&list).expect("stat cache serializes"))
    }
}
