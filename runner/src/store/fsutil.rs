//! Durable file operations: every commit in the store is write, fsync, rename, fsync directory.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

/// Describes an I/O error on `path` for a user: what failed, on which path, and what to do.
/// A full disk, an exceeded quota or file size limit, a permission problem and a damaged store
/// layout get their own wording and fix. Other errors keep the operating system's text.
pub fn describe_io(path: &Path, error: &io::Error) -> String {
    let path = path.display();
    match error.raw_os_error() {
        Some(libc::ENOSPC) => format!("no space left on device while writing {path}: free space or point --store elsewhere"),
        Some(libc::EDQUOT) => format!("disk quota exceeded while writing {path}: free space or point --store elsewhere"),
        Some(libc::EFBIG) => format!(
            "file too large while writing {path}: the process's file size limit (`ulimit -f`) or the file system's \
             maximum file size was reached; raise the limit or point --store elsewhere"
        ),
        Some(libc::EACCES | libc::EPERM) => format!(
            "permission denied on {path}: make it readable and writable by this user (chmod, chown) or point --store elsewhere"
        ),
        Some(libc::EROFS) => format!("{path} is on a read-only file system: point --store at a writable directory"),
        Some(libc::EISDIR | libc::ENOTDIR | libc::EEXIST) => format!(
            "{path}: {error}; the store layout is damaged here (a file where a directory belongs, or the reverse): \
             move {path} aside, then run `flywheel verify` and run again"
        ),
        _ => format!("{path}: {error}"),
    }
}

/// Writes `bytes` to `path` atomically: a reader sees the old file or the whole new one,
/// never a part. The temporary file sits beside `path` so the rename stays on one filesystem.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let mut tmp = tempfile_in(dir)?;
    tmp.1.write_all(bytes)?;
    tmp.1.sync_all()?;
    drop(tmp.1);
    fs::rename(&tmp.0, path).inspect_err(|_| {
        let _ = fs::remove_file(&tmp.0);
    })?;
    sync_dir(dir)
}

/// Creates a uniquely named temporary file in `dir`.
fn tempfile_in(dir: &Path) -> io::Result<(std::path::PathBuf, File)> {
    for attempt in 0..100u32 {
        let name = format!(".tmp-{}-{}-{attempt}", std::process::id(), unique_suffix());
        let path = dir.join(name);
        match File::options().write(true).create_new(true).open(&path) {
            Ok(file) => return Ok((path, file)),
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(err) => return Err(err),
        }
    }
    Err(io::Error::other(format!("could not create a temporary file in {}", dir.display())))
}

/// Returns a value that differs between calls in one process.
pub fn unique_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0);
    (COUNTER.fetch_add(1, Ordering::Relaxed) << 32) ^ nanos
}

/// Flushes a directory's entries (new names, renames) to disk.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Flushes every file below `dir`, then every directory, deepest first.
pub fn sync_tree(dir: &Path) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let file_type = entry.file_type()?;
        if file_type.is_dir() {
            sync_tree(&entry.path())?;
        } else if file_type.is_file() {
            File::open(entry.path())?.sync_all()?;
        }
    }
    sync_dir(dir)
}

/// Removes a directory tree, first making read-only entries writable.
pub fn remove_tree(dir: &Path) -> io::Result<()> {
    match fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(_) => {
            make_writable(dir)?;
            fs::remove_dir_all(dir)
        }
    }
}

fn make_writable(path: &Path) -> io::Result<()> {
    let meta = fs::symlink_metadata(path)?;
    if meta.file_type().is_symlink() {
        return Ok(());
    }
    let mut perms = meta.permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    fs::set_permissions(path, perms)?;
    if meta.is_dir() {
        for entry in fs::read_dir(path)? {
            make_writable(&entry?.path())?;
        }
    }
    Ok(())
}

/// Marks every file below `dir` read-only, so a stage or a user cannot change a committed
/// object by accident. Directories stay writable so `gc` can remove them.
pub fn seal_tree(dir: &Path) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let file_type = entry.file_type()?;
        if file_type.is_dir() {
            seal_tree(&entry.path())?;
        } else if file_type.is_file() {
            let mut perms = entry.metadata()?.permissions();
            perms.set_readonly(true);
            fs::set_permissions(entry.path(), perms)?;
        }
    }
    Ok(())
}
