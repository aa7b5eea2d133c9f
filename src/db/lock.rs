//! Exclusive ownership of a data directory through `flock` on a lock file.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
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
        // SAFETY: `flock` only reads the descriptor, which `file` keeps open.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let err = std::io::Error::last_os_error();
            return if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
                Err(DbError::Locked {
                    path: dir.to_path_buf(),
                })
            } else {
                Err(DbError::Io { path, source: err })
            };
        }
        Ok(DirLock { _file: file, path })
    }

    /// The lock file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}
