//! Artifacts as stored objects: [`Manifest`], commit of a staged directory, and checks.
//!
//! An object lives at `objects/<first 2 hex>/<other 62 hex>/` and contains `manifest.json` (the
//! canonical manifest, whose blake3 is the artifact id), `data/` (the artifact's files) and
//! `stat.json` (size, mtime and inode of each file at commit, for the quick check; not part of
//! the id).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::fsutil::{describe_io, remove_tree, seal_tree, sync_dir, sync_tree, write_atomic};
use super::hash::{TreeError, hash_file, hash_files, is_confined, list_tree};
use crate::canonical;
use crate::digest::Digest;

/// Version of the manifest format; part of every artifact id.
pub const MANIFEST_SCHEMA: u32 = 1;

/// The description of an artifact's content. Its canonical JSON hashes to the artifact id.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub schema: u32,
    pub kind: String,
    pub files: Vec<FileEntry>,
    /// Free metadata from the stage (must be deterministic: it is part of the id).
    #[serde(default)]
    pub metadata: Value,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Path relative to the artifact's `data/` directory, `/`-separated.
    pub path: String,
    pub size: u64,
    pub blake3: Digest,
}

impl Manifest {
    pub fn canonical_bytes(&self) -> Vec<u8> {
        canonical::to_vec(&serde_json::to_value(self).expect("manifest serializes"))
    }

    pub fn id(&self) -> Digest {
        Digest::of_bytes(&self.canonical_bytes())
    }

    pub fn total_size(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }
}

/// Size, modification time and inode of a file, compared by the quick check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileStat {
    pub size: u64,
    pub mtime_ns: i128,
    pub inode: u64,
}

impl FileStat {
    pub fn of(meta: &fs::Metadata) -> FileStat {
        FileStat {
            size: meta.len(),
            mtime_ns: meta.mtime() as i128 * 1_000_000_000 + meta.mtime_nsec() as i128,
            inode: meta.ino(),
        }
    }
}

/// An external file or directory described as an artifact, before it is imported.
pub struct External {
    pub source: PathBuf,
    pub manifest: Manifest,
    /// (relative name in the artifact, file to copy)
    copies: Vec<(String, PathBuf)>,
}

impl External {
    /// Describes `source` as an artifact of `kind`, taking file digests from `cache`. A file
    /// becomes an artifact holding that one file under its own name; a directory keeps its tree.
    pub fn describe(source: &Path, kind: &str, cache: &super::StatCache) -> Result<External, ObjectError> {
        let meta = fs::metadata(source).map_err(io_at(source))?;
        let mut files = Vec::new();
        let mut copies = Vec::new();
        if meta.is_dir() {
            for f in list_tree(source)? {
                files.push(FileEntry { path: f.rel.clone(), size: f.size, blake3: cache.digest(&f.abs)? });
                copies.push((f.rel, f.abs));
            }
        } else {
            let name = source
                .file_name()
                .and_then(|n| n.to_str())
                .ok_or_else(|| TreeError::NonUtf8 { path: source.to_path_buf() })?
                .to_string();
            files.push(FileEntry { path: name.clone(), size: meta.len(), blake3: cache.digest(source)? });
            copies.push((name, source.to_path_buf()));
        }
        let manifest = Manifest { schema: MANIFEST_SCHEMA, kind: kind.to_string(), files, metadata: Value::Null };
        Ok(External { source: source.to_path_buf(), manifest, copies })
    }
}

/// Result of checking a stored object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ObjectState {
    Valid,
    Missing,
    Corrupt(String),
}

/// Failure to commit or read an object.
#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    #[error(transparent)]
    Tree(#[from] TreeError),
    #[error("{}", describe_io(.path, .source))]
    Io { path: PathBuf, source: io::Error },
    #[error("object {id} is {reason}")]
    Corrupt { id: Digest, reason: String },
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> ObjectError + '_ {
    move |source| ObjectError::Io { path: path.to_path_buf(), source }
}

/// The part of the store that contains objects.
#[derive(Clone, Debug)]
pub struct Objects {
    pub root: PathBuf,
}

impl Objects {
    pub fn dir(&self, id: &Digest) -> PathBuf {
        let hex = id.to_hex();
        self.root.join(&hex[..2]).join(&hex[2..])
    }

    pub fn data_dir(&self, id: &Digest) -> PathBuf {
        self.dir(id).join("data")
    }

    pub fn read_manifest(&self, id: &Digest) -> Result<Manifest, ObjectError> {
        let path = self.dir(id).join("manifest.json");
        let bytes = fs::read(&path).map_err(io_at(&path))?;
        if Digest::of_bytes(&bytes) != *id {
            return Err(ObjectError::Corrupt { id: *id, reason: "a manifest whose hash is not its id".into() });
        }
        let manifest: Manifest = serde_json::from_slice(&bytes)
            .map_err(|e| ObjectError::Corrupt { id: *id, reason: format!("an unreadable manifest ({e})") })?;
        if let Some(bad) = manifest.files.iter().find(|f| !is_confined(&f.path)) {
            return Err(ObjectError::Corrupt { id: *id, reason: format!("a manifest naming a path outside the artifact: {:?}", bad.path) });
        }
        Ok(manifest)
    }

    /// Commits a staged artifact. `staging` is a directory whose `data/` subdirectory contains the
    /// files; it is consumed (renamed into place, or removed when the object already exists).
    pub fn commit(&self, staging: &Path, kind: &str, metadata: Value) -> Result<Digest, ObjectError> {
        let data = staging.join("data");
        let files = list_tree(&data)?;
        let digests = hash_files(&files)?;
        let manifest = Manifest {
            schema: MANIFEST_SCHEMA,
            kind: kind.to_string(),
            files: files
                .iter()
                .zip(digests)
                .map(|(f, blake3)| FileEntry { path: f.rel.clone(), size: f.size, blake3 })
                .collect(),
            metadata,
        };
        let bytes = manifest.canonical_bytes();
        let id = Digest::of_bytes(&bytes);

        if self.check(&id) == ObjectState::Valid {
            remove_tree(staging).map_err(io_at(staging))?;
            return Ok(id);
        }
        self.quarantine_if_present(&id)?;

        let manifest_path = staging.join("manifest.json");
        fs::write(&manifest_path, &bytes).map_err(io_at(&manifest_path))?;
        seal_tree(&data).map_err(io_at(&data))?;
        write_stats(staging, &files)?;
        sync_tree(staging).map_err(io_at(staging))?;

        let target = self.dir(&id);
        let parent = target.parent().expect("object dirs have a parent");
        fs::create_dir_all(parent).map_err(io_at(parent))?;
        crate::fault::point("object-before-rename");
        match fs::rename(staging, &target) {
            Ok(()) => {}
            // Another process committed the same object first.
            Err(_) if self.check(&id) == ObjectState::Valid => {
                remove_tree(staging).map_err(io_at(staging))?;
            }
            Err(source) => return Err(ObjectError::Io { path: target, source }),
        }
        sync_dir(parent).map_err(io_at(parent))?;
        crate::fault::point("object-after-rename");
        Ok(id)
    }

    /// Commits an external input as an artifact unless an identical object exists.
    pub fn import(&self, external: &External, staging: &Path) -> Result<Digest, ObjectError> {
        let id = external.manifest.id();
        if self.check(&id) == ObjectState::Valid {
            return Ok(id);
        }
        let data = staging.join("data");
        for (rel, abs) in &external.copies {
            let target = data.join(rel);
            fs::create_dir_all(target.parent().expect("has parent")).map_err(io_at(&target))?;
            copy_file(abs, &target)?;
        }
        // Commit re-hashes the copy, so a file that changed while it was copied gives a
        // different id instead of a corrupt object.
        let committed = self.commit(staging, &external.manifest.kind, Value::Null)?;
        if committed != id {
            return Err(ObjectError::Io {
                path: external.source.clone(),
                source: io::Error::other("the input changed while it was being imported; run again"),
            });
        }
        Ok(id)
    }

    /// Checks quickly that the manifest hashes to the id, that `data/` contains exactly the files
    /// it lists, and that each has its recorded size. A file whose mtime or inode changed since
    /// commit is re-hashed.
    pub fn check(&self, id: &Digest) -> ObjectState {
        let dir = self.dir(id);
        if !dir.join("manifest.json").exists() {
            return ObjectState::Missing;
        }
        let manifest = match self.read_manifest(id) {
            Ok(m) => m,
            Err(ObjectError::Corrupt { reason, .. }) => return ObjectState::Corrupt(reason),
            Err(e) => return ObjectState::Corrupt(e.to_string()),
        };
        let stats = read_stats(&dir);
        let data = dir.join("data");
        let present = match list_tree(&data) {
            Ok(files) => files,
            Err(e) => return ObjectState::Corrupt(e.to_string()),
        };
        let listed: BTreeSet<&str> = manifest.files.iter().map(|f| f.path.as_str()).collect();
        if let Some(extra) = present.iter().find(|f| !listed.contains(f.rel.as_str())) {
            return ObjectState::Corrupt(format!("{} is not in the manifest", extra.rel));
        }
        for entry in &manifest.files {
            let path = data.join(&entry.path);
            let meta = match fs::symlink_metadata(&path) {
                Ok(meta) if meta.is_file() => meta,
                Ok(_) => return ObjectState::Corrupt(format!("{} is not a regular file", entry.path)),
                Err(_) => return ObjectState::Corrupt(format!("{} is missing", entry.path)),
            };
            if meta.len() != entry.size {
                return ObjectState::Corrupt(format!("{} has {} bytes, expected {}", entry.path, meta.len(), entry.size));
            }
            if stats.get(&entry.path) != Some(&FileStat::of(&meta)) {
                match hash_file(&path) {
                    Ok(d) if d == entry.blake3 => {}
                    Ok(_) => return ObjectState::Corrupt(format!("{} does not match its hash", entry.path)),
                    Err(e) => return ObjectState::Corrupt(format!("{} is unreadable: {e}", entry.path)),
                }
            }
        }
        ObjectState::Valid
    }

    /// Deep check: re-hashes every file and rejects files the manifest does not list.
    pub fn verify(&self, id: &Digest) -> ObjectState {
        let dir = self.dir(id);
        if !dir.exists() {
            return ObjectState::Missing;
        }
        let manifest = match self.read_manifest(id) {
            Ok(m) => m,
            Err(ObjectError::Corrupt { reason, .. }) => return ObjectState::Corrupt(reason),
            Err(e) => return ObjectState::Corrupt(e.to_string()),
        };
        let files = match list_tree(&dir.join("data")) {
            Ok(files) => files,
            Err(e) => return ObjectState::Corrupt(e.to_string()),
        };
        let listed: Vec<&str> = manifest.files.iter().map(|f| f.path.as_str()).collect();
        let found: Vec<&str> = files.iter().map(|f| f.rel.as_str()).collect();
        if let Some(extra) = found.iter().find(|p| !listed.contains(p)) {
            return ObjectState::Corrupt(format!("{extra} is not in the manifest"));
        }
        if let Some(missing) = listed.iter().find(|p| !found.contains(p)) {
            return ObjectState::Corrupt(format!("{missing} is missing"));
        }
        let digests = match hash_files(&files) {
            Ok(d) => d,
            Err(e) => return ObjectState::Corrupt(e.to_string()),
        };
        let by_path: BTreeMap<&str, &FileEntry> = manifest.files.iter().map(|f| (f.path.as_str(), f)).collect();
        for (file, digest) in files.iter().zip(digests) {
            let entry = by_path[file.rel.as_str()];
            if entry.size != file.size || entry.blake3 != digest {
                return ObjectState::Corrupt(format!("{} does not match its hash", file.rel));
            }
        }
        ObjectState::Valid
    }

    /// Moves a damaged object out of the way (into `quarantine/`) so it is recomputed.
    pub fn quarantine(&self, id: &Digest, quarantine_root: &Path) -> io::Result<PathBuf> {
        let target = quarantine_root.join(format!("{}-{}", id.to_hex(), super::fsutil::unique_suffix()));
        fs::create_dir_all(quarantine_root)?;
        fs::rename(self.dir(id), &target)?;
        Ok(target)
    }

    fn quarantine_if_present(&self, id: &Digest) -> Result<(), ObjectError> {
        let dir = self.dir(id);
        if dir.exists() {
            let quarantine = self.root.parent().expect("objects has a parent").join("quarantine");
            if let Err(source) = self.quarantine(id, &quarantine)
                && dir.exists()
            {
                return Err(ObjectError::Io { path: dir, source });
            }
        }
        Ok(())
    }

    /// Lists every object id present, in sorted order.
    pub fn list(&self) -> io::Result<Vec<Digest>> {
        let mut ids = Vec::new();
        let fans = match fs::read_dir(&self.root) {
            Ok(fans) => fans,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(ids),
            Err(err) => return Err(err),
        };
        for fan in fans {
            let fan = fan?;
            let prefix = fan.file_name().to_string_lossy().to_string();
            if !fan.file_type()?.is_dir() {
                continue;
            }
            for entry in fs::read_dir(fan.path())? {
                let rest = entry?.file_name().to_string_lossy().to_string();
                if let Ok(id) = format!("{prefix}{rest}").parse() {
                    ids.push(id);
                }
            }
        }
        ids.sort();
        Ok(ids)
    }
}

/// Copies one input file into staging. An error that only a write can cause (a full disk, a
/// quota, a file size limit) names the target; any other names the source.
fn copy_file(source: &Path, target: &Path) -> Result<(), ObjectError> {
    fs::copy(source, target).map(|_| ()).map_err(|err| {
        let write_side = matches!(err.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT | libc::EFBIG | libc::EROFS));
        ObjectError::Io { path: if write_side { target } else { source }.to_path_buf(), source: err }
    })
}

fn write_stats(staging: &Path, files: &[super::hash::TreeFile]) -> Result<(), ObjectError> {
    let mut stats = BTreeMap::new();
    for f in files {
        let meta = fs::metadata(&f.abs).map_err(io_at(&f.abs))?;
        stats.insert(f.rel.clone(), FileStat::of(&meta));
    }
    let path = staging.join("stat.json");
    write_atomic(&path, &serde_json::to_vec(&stats).expect("stats serialize")).map_err(io_at(&path))
}

fn read_stats(dir: &Path) -> BTreeMap<String, FileStat> {
    fs::read(dir.join("stat.json"))
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}
