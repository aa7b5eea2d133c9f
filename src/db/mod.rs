//! The embeddable database: a data directory with a write-ahead log and the head.
//!
//! ```text
//! <dir>/lock   exclusive flock while a Db is open
//! <dir>/wal/   write-ahead log segments
//! ```
//!
//! [`Db::open`] locks the directory, replays the WAL into a fresh head and is then
//! ready for [`Db::appender`] and [`Db::querier`]. A commit is durable as soon as it
//! returns, to the degree chosen by the [`FsyncPolicy`] in [`DbOptions::wal`].

mod lock;
mod status;

use std::path::{Path, PathBuf};

use crate::head::{Head, HeadError, HeadOptions, Replay, ReplayOutcome};
use crate::model::{Matcher, Timestamp};
use crate::storage::{Querier, Queryable, Series, StorageError};
use crate::wal::{ReplayStats, Wal, WalError, WalOptions};
use lock::DirLock;

pub use crate::head::{
    AppendError, Appender, CommitStats, HeadStats, SeriesRef, DEFAULT_BLOCK_RANGE_MS,
};
pub use crate::wal::FsyncPolicy;

/// A database operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DbError {
    /// Another process (or another `Db` in this process) has the directory open.
    #[error("data directory {} is locked by another process", .path.display())]
    Locked {
        /// The data directory.
        path: PathBuf,
    },
    /// A file system operation failed.
    #[error("I/O error on {}: {source}", .path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The write-ahead log failed.
    #[error(transparent)]
    Wal(#[from] WalError),
    /// The head failed.
    #[error(transparent)]
    Head(#[from] HeadError),
    /// The options are unusable.
    #[error("invalid options: {0}")]
    InvalidOptions(String),
}

/// Options for [`Db::open`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DbOptions {
    /// Write-ahead log settings, including the fsync policy.
    pub wal: WalOptions,
    /// Block range in milliseconds (default two hours). Samples older than the newest
    /// sample minus half of it are rejected as out of bounds.
    pub block_range_ms: i64,
    /// Threads applying WAL records on open: 0 picks one per core (at most four),
    /// 1 replays on the opening thread.
    pub replay_workers: usize,
}

impl Default for DbOptions {
    fn default() -> Self {
        DbOptions {
            wal: WalOptions::default(),
            block_range_ms: DEFAULT_BLOCK_RANGE_MS,
            replay_workers: 0,
        }
    }
}

impl DbOptions {
    /// Default options with the given fsync policy.
    pub fn with_fsync(fsync: FsyncPolicy) -> Self {
        let mut o = DbOptions::default();
        o.wal.fsync = fsync;
        o
    }

    /// These options with `block_range_ms` replaced.
    pub fn block_range_ms(mut self, ms: i64) -> Self {
        self.block_range_ms = ms;
        self
    }

    /// These options with `replay_workers` replaced.
    pub fn replay_workers(mut self, n: usize) -> Self {
        self.replay_workers = n;
        self
    }
}

/// What [`Db::open`] found in the WAL.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OpenStats {
    /// What the WAL reader saw (records, segments, corruption that was cut off).
    pub wal: ReplayStats,
    /// What the head restored from it.
    pub head: ReplayOutcome,
}

/// An open database. `Send + Sync`: share it between threads by reference or in an
/// `Arc`; each thread takes its own [`Appender`].
pub struct Db {
    dir: PathBuf,
    head: Head,
    wal: Wal,
    lock: DirLock,
    open_stats: OpenStats,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("dir", &self.dir)
            .field("lock", &self.lock.path())
            .field("head", &self.head)
            .finish()
    }
}

impl Db {
    /// Opens (creating if needed) the database in `dir`: takes the directory lock
    /// (failing with [`DbError::Locked`] when it is held), opens the WAL in `dir/wal`
    /// (cutting off a torn tail) and replays it into the head.
    pub fn open(dir: impl AsRef<Path>, opts: DbOptions) -> Result<Db, DbError> {
        let dir = dir.as_ref().to_path_buf();
        if opts.block_range_ms <= 0 {
            return Err(DbError::InvalidOptions(format!(
                "block_range_ms must be positive, got {}",
                opts.block_range_ms
            )));
        }
        std::fs::create_dir_all(&dir).map_err(|source| DbError::Io {
            path: dir.clone(),
            source,
        })?;
        let lock = DirLock::acquire(&dir)?;
        let mut replay = Replay::new(opts.replay_workers);
        let (wal, wal_stats) = Wal::open(&dir.join("wal"), opts.wal.clone(), |rec| {
            replay.on_record(rec)
        })?;
        let (head, outcome) = replay.finish(HeadOptions {
            block_range_ms: opts.block_range_ms,
        })?;
        if outcome.unknown_refs > 0 || outcome.out_of_order > 0 || outcome.invalid_refs > 0 {
            log::warn!(
                "WAL replay in {}: dropped {} samples of unknown series, {} out-of-order \
                 samples and {} series with invalid references",
                dir.display(),
                outcome.unknown_refs,
                outcome.out_of_order,
                outcome.invalid_refs
            );
        }
        Ok(Db {
            dir,
            head,
            wal,
            lock,
            open_stats: OpenStats {
                wal: wal_stats,
                head: outcome,
            },
        })
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A new appender. Samples become durable and visible on [`Appender::commit`].
    pub fn appender(&self) -> Appender<'_> {
        Appender::new(&self.head, Some(&self.wal))
    }

    /// A querier over samples with `mint <= t <= maxt` (milliseconds, inclusive).
    pub fn querier(&self, mint: Timestamp, maxt: Timestamp) -> Result<DbQuerier<'_>, DbError> {
        Ok(DbQuerier {
            head: &self.head,
            mint,
            maxt,
        })
    }

    /// Counters of the head.
    pub fn stats(&self) -> HeadStats {
        self.head.stats()
    }

    /// What opening found in the WAL.
    pub fn open_stats(&self) -> &OpenStats {
        &self.open_stats
    }

    /// The head (for direct inspection).
    pub fn head(&self) -> &Head {
        &self.head
    }

    /// Forces everything committed so far to stable storage, whatever the fsync policy.
    pub fn sync(&self) -> Result<(), DbError> {
        Ok(self.wal.sync()?)
    }

    /// Flushes and closes the WAL, then releases the directory lock. Dropping a `Db`
    /// does the same but ignores errors.
    pub fn close(self) -> Result<(), DbError> {
        let Db { wal, lock, .. } = self;
        let res = wal.close();
        drop(lock);
        Ok(res?)
    }
}

/// Reads the database over a fixed time range.
#[derive(Debug)]
pub struct DbQuerier<'a> {
    head: &'a Head,
    mint: Timestamp,
    maxt: Timestamp,
}

impl DbQuerier<'_> {
    /// The series matching all `matchers` with samples in range, sorted by labels.
    /// A missing label matches as `""`, so `{foo=""}` selects series without `foo`.
    pub fn select(&self, matchers: &[Matcher]) -> Result<Vec<Series>, DbError> {
        Ok(self.head.select(matchers, self.mint, self.maxt))
    }

    /// Sorted label names of the series matching `matchers` with samples in range.
    pub fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>, DbError> {
        Ok(self.head.label_names(matchers, self.mint, self.maxt))
    }

    /// Sorted distinct values of `name` over the series matching `matchers` with
    /// samples in range.
    pub fn label_values(&self, name: &str, matchers: &[Matcher]) -> Result<Vec<String>, DbError> {
        Ok(self.head.label_values(name, matchers, self.mint, self.maxt))
    }
}

fn to_storage(e: DbError) -> StorageError {
    match e {
        DbError::Io { source, .. } => StorageError::Io(source),
        other => StorageError::Other(other.to_string()),
    }
}

impl Querier for DbQuerier<'_> {
    fn select(&self, matchers: &[Matcher]) -> Result<Vec<Series>, StorageError> {
        DbQuerier::select(self, matchers).map_err(to_storage)
    }

    fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        DbQuerier::label_names(self, matchers).map_err(to_storage)
    }

    fn label_values(&self, name: &str, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        DbQuerier::label_values(self, name, matchers).map_err(to_storage)
    }
}

impl Queryable for Db {
    fn querier(
        &self,
        mint: Timestamp,
        maxt: Timestamp,
    ) -> Result<Box<dyn Querier + '_>, StorageError> {
        let q = Db::querier(self, mint, maxt).map_err(to_storage)?;
        Ok(Box::new(q))
    }
}

#[cfg(test)]
mod tests;
