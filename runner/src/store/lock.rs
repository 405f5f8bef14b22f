//! [`KeyLock`]: an exclusive lock per node key across processes.
//!
//! Locks are advisory file locks (`flock`) on `locks/<key>.lock`. The kernel drops a lock when
//! its process dies, so a lock left by a killed run is reclaimed by the next `acquire` with no
//! manual step. The file holds the owner's pid for messages only.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
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
        fs::create_dir_all(locks_dir)?;
        let path = locks_dir.join(format!("{}.lock", key.to_hex()));
        let file = File::options().read(true).write(true).create(true).truncate(false).open(&path)?;
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
        let mut lock = KeyLock { file, path };
        lock.file.set_len(0)?;
        write!(lock.file, "{}", std::process::id())?;
        Ok(Some(lock))
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

/// The store-wide lock: every run holds it shared for its whole duration, `gc` holds it
/// exclusively, so `gc` never deletes an object a running workflow has committed but not yet
/// recorded.
pub struct StoreLock {
    file: File,
}

impl StoreLock {
    fn open(store: &super::Store) -> io::Result<File> {
        let path = store.locks_dir().join("store.lock");
        File::options().read(true).write(true).create(true).truncate(false).open(path)
    }

    pub fn shared(store: &super::Store) -> io::Result<StoreLock> {
        let file = Self::open(store)?;
        file.lock_shared()?;
        Ok(StoreLock { file })
    }

    /// Takes the lock exclusively, calling `on_wait` once if runs hold it.
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
