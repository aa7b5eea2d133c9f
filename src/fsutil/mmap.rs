//! Read-only memory maps of immutable files.
//!
//! # Safety argument
//!
//! This module holds the only `unsafe` code of the crate: the call to
//! [`memmap2::Mmap::map`]. Mapping a file is unsafe because the mapped bytes are handed out
//! as an ordinary `&[u8]`, which Rust assumes never changes while borrowed; if another
//! writer modified or truncated the file during the map's lifetime, that assumption would
//! be broken (a truncation can even turn reads into `SIGBUS`).
//!
//! We map only files that the storage engine treats as immutable:
//!
//! - Block files (`index`, `chunks/NNNNNN`) are written completely into a temporary
//!   directory, fsynced, and only then renamed into place. Nothing in this crate opens a
//!   published block file for writing, truncates it or rewrites it: a block is replaced by
//!   writing a new block under a new name and deleting the old directory, and deleting
//!   (unlinking) a mapped file does not change the mapping, which keeps the inode alive
//!   until it is unmapped.
//! - WAL segments are mapped only while the WAL is being opened: the data directory is
//!   locked, no writer exists until replay has finished, and a damaged segment is
//!   truncated only after replay has dropped its maps. A running WAL, which appends to
//!   its newest segment and may cut a failed write back, is read into memory instead.
//! - Files that do change (tombstones, `meta.json`) are not mapped but read into memory,
//!   and are replaced by writing a new file and renaming it over the old one, which again
//!   leaves existing mappings of the old inode untouched.
//! - A data directory is locked by one process at a time, so no other instance of the
//!   engine writes the same files.
//!
//! What remains outside our control is another program (or a person) writing to or
//! truncating a block file in place while it is mapped. Then reads may observe the
//! changed bytes or fault with `SIGBUS`. Changed bytes are caught by the checksums where
//! they are verified (every chunk is checked when it is loaded) and decoding never trusts
//! lengths or offsets without bounds checks, so such bytes cannot cause memory unsafety
//! beyond what the operating system does to the process on a truncated mapping. This is
//! the same contract every memory-mapping database (Prometheus, LMDB, ...) documents.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

/// A whole file mapped read-only into memory. Immutable; share it in an `Arc`.
#[derive(Debug)]
pub struct MappedFile {
    map: Option<Mmap>,
    path: PathBuf,
}

impl MappedFile {
    /// Maps `path` read-only. An empty file is represented without a mapping.
    ///
    /// The caller promises the file is one of the engine's immutable files (see the
    /// module documentation).
    pub fn open(path: &Path) -> io::Result<MappedFile> {
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        let map = if len == 0 {
            None
        } else {
            // SAFETY: the file is immutable for as long as it is mapped: block files are
            // published by rename after being fsynced and are never written, truncated or
            // reopened for writing by this crate, and WAL segments are mapped only while
            // no writer exists (see the module documentation for the full argument and
            // what happens if an outside program breaks it).
            Some(unsafe { Mmap::map(&file)? })
        };
        Ok(MappedFile {
            map,
            path: path.to_path_buf(),
        })
    }

    /// The mapped bytes.
    pub fn as_slice(&self) -> &[u8] {
        match &self.map {
            Some(m) => m,
            None => &[],
        }
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.as_slice().len()
    }

    /// Whether the file is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The path the file was mapped from.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl AsRef<[u8]> for MappedFile {
    fn as_ref(&self) -> &[u8] {
        self.as_slice()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_file_and_empty_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"hello").unwrap();
        let m = MappedFile::open(&p).unwrap();
        assert_eq!(m.as_slice(), b"hello");
        assert_eq!(m.path(), p.as_path());
        let e = dir.path().join("e");
        std::fs::write(&e, b"").unwrap();
        let m = MappedFile::open(&e).unwrap();
        assert!(m.is_empty());
        assert!(MappedFile::open(&dir.path().join("missing")).is_err());
    }
}
