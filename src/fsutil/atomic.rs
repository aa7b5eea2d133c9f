//! Atomic publication and removal of directories and files.
//!
//! A directory is built under `<name>.tmp-for-creation`, every file in it is fsynced, the
//! directory itself is fsynced, then it is renamed to `<name>` and the parent directory is
//! fsynced. Readers therefore see either no directory or a complete one. Removal renames
//! to `<name>.tmp-for-deletion` first (so a crash never leaves a half-deleted directory
//! under its real name) and then deletes. Leftovers of either kind are removed by
//! [`cleanup_tmp_dirs`] when the parent directory is opened.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Suffix of a directory being created.
pub const TMP_FOR_CREATION: &str = ".tmp-for-creation";
/// Suffix of a directory being deleted.
pub const TMP_FOR_DELETION: &str = ".tmp-for-deletion";

/// Fsyncs a directory so that entries created, renamed or removed in it are durable.
pub fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Path of the temporary directory used to create `parent/name`.
fn tmp_path(parent: &Path, name: &str, suffix: &str) -> PathBuf {
    parent.join(format!("{name}{suffix}"))
}

/// Creates an empty `parent/<name>.tmp-for-creation` directory (removing a leftover one)
/// and returns its path.
pub fn create_tmp_dir(parent: &Path, name: &str) -> io::Result<PathBuf> {
    let tmp = tmp_path(parent, name, TMP_FOR_CREATION);
    if tmp.exists() {
        fs::remove_dir_all(&tmp)?;
    }
    fs::create_dir_all(&tmp)?;
    Ok(tmp)
}

/// Fsyncs every file and directory under `dir`, `dir` included.
fn fsync_tree(dir: &Path) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let ft = entry.file_type()?;
        if ft.is_dir() {
            fsync_tree(&entry.path())?;
        } else if ft.is_file() {
            File::open(entry.path())?.sync_all()?;
        }
    }
    fsync_dir(dir)
}

/// Publishes a directory built with [`create_tmp_dir`]: fsyncs its whole tree, renames
/// it to `parent/name` and fsyncs `parent`. Fails if `parent/name` already exists.
pub fn publish_dir(tmp: &Path, parent: &Path, name: &str) -> io::Result<PathBuf> {
    let dest = parent.join(name);
    if dest.exists() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} already exists", dest.display()),
        ));
    }
    fsync_tree(tmp)?;
    fs::rename(tmp, &dest)?;
    fsync_dir(parent)?;
    Ok(dest)
}

/// Removes `dir` atomically: renames it to `<dir>.tmp-for-deletion`, fsyncs the parent,
/// then deletes the renamed tree. A crash in between leaves only a temporary directory
/// that [`cleanup_tmp_dirs`] removes.
pub fn remove_dir_atomic(dir: &Path) -> io::Result<()> {
    let (Some(parent), Some(name)) = (dir.parent(), dir.file_name()) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} has no parent directory", dir.display()),
        ));
    };
    let tmp = tmp_path(parent, &name.to_string_lossy(), TMP_FOR_DELETION);
    if tmp.exists() {
        fs::remove_dir_all(&tmp)?;
    }
    fs::rename(dir, &tmp)?;
    fsync_dir(parent)?;
    fs::remove_dir_all(&tmp)?;
    fsync_dir(parent)
}

/// Removes every `*.tmp-for-creation` and `*.tmp-for-deletion` entry in `parent` (left by
/// a crash) and returns how many were removed.
pub fn cleanup_tmp_dirs(parent: &Path) -> io::Result<usize> {
    let mut removed = 0;
    for entry in fs::read_dir(parent)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !(name.ends_with(TMP_FOR_CREATION) || name.ends_with(TMP_FOR_DELETION)) {
            continue;
        }
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            fs::remove_dir_all(&path)?;
        } else {
            fs::remove_file(&path)?;
        }
        log::info!("removed leftover temporary {}", path.display());
        removed += 1;
    }
    if removed > 0 {
        fsync_dir(parent)?;
    }
    Ok(removed)
}

/// Replaces `path` atomically with `bytes`: writes `<path>.tmp-for-creation`, fsyncs it,
/// renames it over `path` and fsyncs the parent directory.
pub fn write_file_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} has no parent directory", path.display()),
        ));
    };
    let tmp = tmp_path(parent, &name.to_string_lossy(), TMP_FOR_CREATION);
    {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    fsync_dir(parent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_is_all_or_nothing() {
        let parent = tempfile::tempdir().unwrap();
        let tmp = create_tmp_dir(parent.path(), "b1").unwrap();
        fs::create_dir(tmp.join("sub")).unwrap();
        fs::write(tmp.join("sub/f"), b"x").unwrap();
        assert!(!parent.path().join("b1").exists());
        let dest = publish_dir(&tmp, parent.path(), "b1").unwrap();
        assert_eq!(fs::read(dest.join("sub/f")).unwrap(), b"x");
        assert!(!tmp.exists());
        // Publishing over an existing directory fails.
        let tmp2 = create_tmp_dir(parent.path(), "b1").unwrap();
        assert!(publish_dir(&tmp2, parent.path(), "b1").is_err());
        assert_eq!(cleanup_tmp_dirs(parent.path()).unwrap(), 1);
        assert!(!tmp2.exists());
        remove_dir_atomic(&dest).unwrap();
        assert!(!dest.exists());
        assert_eq!(fs::read_dir(parent.path()).unwrap().count(), 0);
    }

    #[test]
    fn cleanup_removes_only_temporaries() {
        let parent = tempfile::tempdir().unwrap();
        let p = parent.path();
        fs::create_dir(p.join("keep")).unwrap();
        fs::create_dir(p.join("a.tmp-for-creation")).unwrap();
        fs::write(p.join("a.tmp-for-creation/f"), b"x").unwrap();
        fs::create_dir(p.join("b.tmp-for-deletion")).unwrap();
        fs::write(p.join("c.tmp-for-creation"), b"x").unwrap();
        assert_eq!(cleanup_tmp_dirs(p).unwrap(), 3);
        let left: Vec<_> = fs::read_dir(p)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(left, vec!["keep".to_string()]);
    }

    #[test]
    fn file_replaced_atomically() {
        let parent = tempfile::tempdir().unwrap();
        let f = parent.path().join("t");
        write_file_atomic(&f, b"one").unwrap();
        write_file_atomic(&f, b"two").unwrap();
        assert_eq!(fs::read(&f).unwrap(), b"two");
        assert_eq!(fs::read_dir(parent.path()).unwrap().count(), 1);
    }
}
