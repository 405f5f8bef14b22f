//! Locks between processes that share a store: [`KeyLock`] per node key, [`StoreLock`] for the
//! whole store, and [`RunPins`], the records and objects that a running workflow uses.
//!
//! All are advisory file locks (`flock`). The kernel drops a lock when its process dies, so a
//! lock left by a killed run is reclaimed by the next `acquire` with no manual step.
//!
//! # How `gc` runs beside running workflows
//!
//! `gc` deletes what the refs do not reach. A running workflow also uses things that no ref
//! reaches yet: an external input it imported, an object it committed before its record, a
//! cached record of another workflow. The protocol that keeps those:
//!
//! 1. Each run creates `runs/<run-id>/pins` and holds an exclusive `flock` on it until it
//!    ends. It creates the file while it holds the store lock shared, so `gc` never sees the
//!    file of a live run unlocked.
//! 2. A run takes the store lock shared only for short sections: importing inputs and looking
//!    up a record, then committing outputs and writing the record and ref. Inside a section, it
//!    appends to its pin file every record key and object id that it uses or creates, before
//!    the section ends. It runs stages and waits for key locks outside any section.
//! 3. `gc` holds the store lock exclusively for its whole mark and sweep. So a section either
//!    ended before `gc` read the pins, which then include its ids, or starts after `gc` ended.
//!    In the second case a record that `gc` deleted is a cache miss, and the node runs again.
//! 4. `gc` keeps the pins of every pin file that it cannot lock (a live run). It ignores the
//!    pin files of finished or killed runs.
//! 5. `gc --checkpoints` deletes a checkpoint directory only after taking its key's lock, so the
//!    checkpoints of a node that is running stay.
//!
//! NOTE: Linux `flock` grants a new shared lock even while an exclusive one waits, so `gc` can
//! wait for as long as several runs keep their sections overlapping. Each section lasts one
//! import, lookup or commit, so a gap is normally soon; no test measures the worst case.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::digest::Digest;

/// A held lock; released on drop.
pub struct KeyLock {
    file: File,
    path: PathBuf,
}

impl KeyLock {
    /// Waits until the lock on `key` is free, then takes it. `on_wait` is called once, with the
    /// pid of the current owner, when the lock is busy; `cancelled` is polled while waiting.
    pub fn acquire(
        locks_dir: &Path,
        key: &Digest,
        mut on_wait: impl FnMut(Option<u32>),
        cancelled: impl Fn() -> bool,
    ) -> io::Result<Option<KeyLock>> {
        let (file, path) = Self::open(locks_dir, key)?;
        let mut warned = false;
        let mut delay = Duration::from_millis(5);
        let started = Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(fs::TryLockError::WouldBlock) => {
                    if !warned {
                        on_wait(fs::read_to_string(&path).ok().and_then(|s| s.trim().parse().ok()));
                        warned = true;
                    }
                    if cancelled() {
                        return Ok(None);
                    }
                    std::thread::sleep(delay);
                    if started.elapsed() > Duration::from_secs(1) {
                        delay = Duration::from_millis(100);
                    }
                }
                Err(fs::TryLockError::Error(err)) => return Err(err),
            }
        }
        Self::own(file, path).map(Some)
    }

    /// Takes the lock on `key` if it is free; `None` when another process holds it.
    pub fn try_acquire(locks_dir: &Path, key: &Digest) -> io::Result<Option<KeyLock>> {
        let (file, path) = Self::open(locks_dir, key)?;
        match file.try_lock() {
            Ok(()) => Self::own(file, path).map(Some),
            Err(fs::TryLockError::WouldBlock) => Ok(None),
            Err(fs::TryLockError::Error(err)) => Err(err),
        }
    }

    fn open(locks_dir: &Path, key: &Digest) -> io::Result<(File, PathBuf)> {
        fs::create_dir_all(locks_dir)?;
        let path = locks_dir.join(format!("{}.lock", key.to_hex()));
        let file = File::options().read(true).write(true).create(true).truncate(false).open(&path)?;
        Ok((file, path))
    }

    /// Writes this process's pid into a lock file it has just locked.
    fn own(file: File, path: PathBuf) -> io::Result<KeyLock> {
        let mut lock = KeyLock { file, path };
        lock.file.set_len(0)?;
        write!(lock.file, "{}", std::process::id())?;
        Ok(lock)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for KeyLock {
    fn drop(&mut self) {
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

/// The store-wide lock, `locks/store.lock`: runs hold it shared for short sections and `gc`
/// holds it exclusively (see the module documentation).
pub struct StoreLock {
    file: File,
}

impl StoreLock {
    fn open(store: &super::Store) -> io::Result<File> {
        let path = store.locks_dir().join("store.lock");
        File::options().read(true).write(true).create(true).truncate(false).open(path)
    }

    /// Takes the lock shared; waits while `gc` holds it.
    pub fn shared(store: &super::Store) -> io::Result<StoreLock> {
        let file = Self::open(store)?;
        file.lock_shared()?;
        Ok(StoreLock { file })
    }

    /// Takes the lock exclusively, calling `on_wait` once if a run is inside a section.
    pub fn exclusive(store: &super::Store, on_wait: impl FnOnce()) -> io::Result<StoreLock> {
        let file = Self::open(store)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                on_wait();
                file.lock()?;
            }
            Err(fs::TryLockError::Error(err)) => return Err(err),
        }
        Ok(StoreLock { file })
    }
}

impl Drop for StoreLock {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

/// The pin file `runs/<run-id>/pins` of a running workflow: one record key or object id per
/// line, locked for the run's lifetime and deleted when it ends.
pub struct RunPins {
    file: Mutex<(File, BTreeSet<Digest>)>,
    path: PathBuf,
}

/// Name of the pin file inside a run directory.
const PINS_FILE: &str = "pins";

impl RunPins {
    /// Creates and locks the pin file in `run_dir`. `_section` is the shared store lock, held so
    /// that `gc` never finds the file of a live run unlocked.
    pub fn create(run_dir: &Path, _section: &StoreLock) -> io::Result<RunPins> {
        let path = run_dir.join(PINS_FILE);
        let file = File::options().append(true).create(true).open(&path)?;
        file.try_lock().map_err(|e| match e {
            fs::TryLockError::WouldBlock => io::Error::other(format!("{} is locked by another process", path.display())),
            fs::TryLockError::Error(err) => err,
        })?;
        Ok(RunPins { file: Mutex::new((file, BTreeSet::new())), path })
    }

    /// Appends the ids not pinned yet. `_section` is the shared store lock: `gc` must not run
    /// between the use of an id and its pin.
    pub fn pin<'a>(&self, _section: &StoreLock, ids: impl IntoIterator<Item = &'a Digest>) -> io::Result<()> {
        let mut guard = self.file.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (file, pinned) = &mut *guard;
        let mut lines = String::new();
        for id in ids {
            if pinned.insert(*id) {
                lines.push_str(&format!("{id}\n"));
            }
        }
        if !lines.is_empty() {
            file.write_all(lines.as_bytes())?;
        }
        Ok(())
    }
}

impl Drop for RunPins {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// Reads the pins of every live run: each pin file under `runs/` that another process holds
/// locked. Call it while holding the store lock exclusively, so no run appends meanwhile.
pub fn live_pins(store: &super::Store) -> io::Result<BTreeSet<Digest>> {
    let mut live = BTreeSet::new();
    let runs = store.root.join("runs");
    for entry in fs::read_dir(&runs)? {
        let path = entry?.path().join(PINS_FILE);
        let Ok(file) = File::open(&path) else { continue };
        match file.try_lock_shared() {
            // The run that wrote this file has ended or was killed.
            Ok(()) => continue,
            Err(fs::TryLockError::WouldBlock) => {}
            Err(fs::TryLockError::Error(err)) => return Err(err),
        }
        let text = fs::read_to_string(&path)?;
        for line in text.lines() {
            let id = line.parse().map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{}: {e}", path.display())))?;
            live.insert(id);
        }
    }
    Ok(live)
}
