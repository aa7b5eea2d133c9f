//! Status figures of the database for the server's status endpoints and metrics.

use super::Db;
use crate::head::Cardinality;

impl Db {
    /// Head statistics and cardinality top lists (`limit` entries each).
    pub fn cardinality(&self, limit: usize) -> Cardinality {
        self.inner.head.cardinality(limit)
    }

    /// How many fsyncs the WAL has done since open.
    pub fn wal_fsync_count(&self) -> u64 {
        self.inner.wal.fsync_count()
    }

    /// WAL writes (commits) that failed since open, e.g. on a full disk.
    pub fn wal_writes_failed(&self) -> u64 {
        self.inner.wal.writes_failed()
    }

    /// Total seconds the WAL spent in fsync since open.
    pub fn wal_fsync_seconds(&self) -> f64 {
        self.inner.wal.fsync_seconds()
    }

    /// Records cut off the WAL as corrupt when the database was opened.
    pub fn wal_corrupted_records(&self) -> u64 {
        self.inner
            .open_stats
            .wal
            .corrupted
            .as_ref()
            .map(|c| c.dropped_records)
            .unwrap_or(0)
    }
}
