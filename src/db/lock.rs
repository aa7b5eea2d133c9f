//! Exclusive ownership of a data directory through `flock` on a lock file.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use super::DbError;

/// Holds an exclusive, non-blocking `flock` on `<dir>/lock` until dropped. Locks taken
/// through different open files conflict even inside one process, so a second
/// [`super::Db::open`] on the same directory fails too.
#[derive(Debug)]
pub(crate) struct DirLock {
    _file: File,
    path: PathBuf,
}

impl DirLock {
    pub(crate) fn acquire(dir: &Path) -> Result<DirLock, DbError> {
        let path = dir.join("lock");
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|source| DbError::Io {
                path: path.clone(),
                source,
            })?;
        // `File::try_lock` takes an exclusive, non-blocking `flock` on Unix.
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(DbError::Locked {
                    path: dir.to_path_buf(),
                })
            }
            Err(std::fs::TryLockError::Error(source)) => {
                return Err(DbError::Io { path, source });
            }
        }
        Ok(DirLock { _file: file, path })
    }

    /// The lock file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}
