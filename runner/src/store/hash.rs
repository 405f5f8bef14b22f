//! Content hashing of files and directory trees with blake3.
//!
//! Large files are memory-mapped and hashed on all cores ([`hash_file`]); trees hash their
//! files in parallel ([`scan_tree`]).

use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

use rayon::prelude::*;

use crate::digest::Digest;

/// Files at least this large are hashed with memory mapping and rayon; smaller ones are read,
/// because mapping and thread hand-off cost more than they save below about 128 KiB
/// (blake3's documentation gives the same order of magnitude).
const MMAP_THRESHOLD: u64 = 128 * 1024;

/// Hashes one file's content.
pub fn hash_file(path: &Path) -> io::Result<Digest> {
    let len = fs::metadata(path)?.len();
    let mut hasher = blake3::Hasher::new();
    if len >= MMAP_THRESHOLD {
        hasher.update_mmap_rayon(path)?;
    } else {
        hasher.update(&fs::read(path)?);
    }
    Ok(Digest::from_hash(hasher.finalize()))
}

/// A regular file found below a tree root.
#[derive(Clone, Debug)]
pub struct TreeFile {
    /// Path relative to the root, with `/` separators.
    pub rel: String,
    pub abs: PathBuf,
    pub size: u64,
}

/// Reason a tree cannot become an artifact.
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path}: symbolic links are not allowed in artifacts; write a regular file instead")]
    Symlink { path: PathBuf },
    #[error("{path}: only regular files and directories are allowed in artifacts")]
    Special { path: PathBuf },
    #[error("{path}: file names must be valid UTF-8")]
    NonUtf8 { path: PathBuf },
}

/// Lists every regular file below `root`, sorted by relative path. Symbolic links and special
/// files are rejected so an artifact can never point outside itself.
pub fn list_tree(root: &Path) -> Result<Vec<TreeFile>, TreeError> {
    let mut files = Vec::new();
    walk(root, root, &mut files)?;
    files.sort_by(|a, b| a.rel.cmp(&b.rel));
    Ok(files)
}

fn walk(root: &Path, dir: &Path, files: &mut Vec<TreeFile>) -> Result<(), TreeError> {
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| TreeError::Io { path, source }
    };
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let path = entry.path();
        let meta = fs::symlink_metadata(&path).map_err(io_err(&path))?;
        if meta.file_type().is_symlink() {
            return Err(TreeError::Symlink { path });
        } else if meta.is_dir() {
            walk(root, &path, files)?;
        } else if meta.is_file() {
            let rel = relative_name(root, &path)?;
            files.push(TreeFile { rel, abs: path, size: meta.len() });
        } else {
            return Err(TreeError::Special { path });
        }
    }
    Ok(())
}

fn relative_name(root: &Path, path: &Path) -> Result<String, TreeError> {
    let rel = path.strip_prefix(root).expect("walk stays below its root");
    let mut parts = Vec::new();
    for component in rel.components() {
        match component {
            Component::Normal(part) => match part.to_str() {
                Some(text) => parts.push(text),
                None => return Err(TreeError::NonUtf8 { path: path.to_path_buf() }),
            },
            _ => unreachable!("read_dir yields plain names"),
        }
    }
    Ok(parts.join("/"))
}

/// Hashes every file of a listing in parallel, returning digests in listing order.
pub fn hash_files(files: &[TreeFile]) -> Result<Vec<Digest>, TreeError> {
    files
        .par_iter()
        .map(|f| hash_file(&f.abs).map_err(|source| TreeError::Io { path: f.abs.clone(), source }))
        .collect()
}

/// Checks that a relative name from a manifest stays inside its artifact: no `..`, no absolute
/// path, no empty or `.` part.
pub fn is_confined(rel: &str) -> bool {
    !rel.is_empty()
        && !rel.starts_with('/')
        && !rel.contains('\\')
        && rel.split('/').all(|part| !part.is_empty() && part != "." && part != "..")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_file_matches_blake3_for_small_and_large_files() {
        let dir = tempfile::tempdir().unwrap();
        for len in [0usize, 5, MMAP_THRESHOLD as usize + 17] {
            let path = dir.path().join(format!("f{len}"));
            let bytes: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            fs::write(&path, &bytes).unwrap();
            assert_eq!(hash_file(&path).unwrap(), Digest::of_bytes(&bytes), "length {len}");
        }
    }

    #[test]
    fn list_tree_rejects_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("link")).unwrap();
        assert!(matches!(list_tree(dir.path()), Err(TreeError::Symlink { .. })));
    }

    #[test]
    fn confinement_rejects_escaping_names() {
        for bad in ["", "/etc/passwd", "../x", "a/../../x", "a//b", "./a", "a\\b"] {
            assert!(!is_confined(bad), "accepted {bad:?}");
        }
        assert!(is_confined("a/b.txt"));
    }
}
