//! The embeddable database: a data directory with a write-ahead log, the in-memory head
//! and persistent blocks.
//!
//! ```text
//! <dir>/lock                     exclusive flock while a Db is open
//! <dir>/<ulid>/                  persistent blocks (see `crate::block`)
//! <dir>/<ulid>.corrupted/        a block set aside because it failed validation
//! <dir>/wal/00000012 ...         write-ahead log segments
//! <dir>/wal/checkpoint.00000012/ the WAL's content before segment 12, condensed
//! ```
//!
//! [`Db::open`] locks the directory, removes leftover temporary directories, loads the
//! blocks (setting aside corrupt ones), replays the newest checkpoint and then the WAL
//! segments after it into a fresh head, and is then ready for [`Db::appender`] and
//! [`Db::querier`]. A commit is durable as soon as it returns, to the degree chosen by
//! the [`FsyncPolicy`] in [`DbOptions::wal`].
//!
//! Maintenance ([`Db::run_maintenance`], run by a background thread every
//! [`DbOptions::maintenance_interval`] unless disabled) persists the oldest block range of
//! the head once the head spans more than 1.5 block ranges, truncates the head and
//! checkpoints the WAL, compacts blocks (see [`plan_compaction`]) and applies the
//! retention limits (see [`beyond_time`] and [`beyond_size`]). Every step writes new
//! files into temporary directories that are renamed into place, and removes old files
//! only after that, so a process killed at any moment loses nothing it acknowledged.
//! The layout and rules are documented in `storage-format.md` ("Data directory",
//! "Checkpoint", "Compaction and retention").

mod compact;
mod lock;
mod maintenance;
mod open;
mod querier;
mod status;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex, RwLock};

use crate::block::{Block, BlockError, Interval};
use crate::head::Head;
use crate::model::{Labels, Matcher, Timestamp};
use crate::storage::{Querier, Queryable, StorageError};
use crate::wal::{ReplayStats, Wal, WalError, WalOptions};
use lock::DirLock;

pub use crate::head::{
    AppendError, Appender, CommitStats, HeadError, HeadStats, ReplayOutcome, SeriesRef,
    DEFAULT_BLOCK_RANGE_MS,
};
pub use crate::wal::FsyncPolicy;
pub use compact::{beyond_size, beyond_time, compaction_ranges, plan_compaction};
pub use querier::DbQuerier;

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
    /// A block could not be written or read.
    #[error(transparent)]
    Block(#[from] BlockError),
    /// The options are unusable.
    #[error("invalid options: {0}")]
    InvalidOptions(String),
}

impl DbError {
    fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> DbError {
        let path = path.into();
        move |source| DbError::Io { path, source }
    }
}

/// The wall clock in milliseconds since the Unix epoch, as a [`DbOptions::clock`].
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// Milliseconds since the Unix epoch according to the system clock.
pub fn system_clock_ms() -> Timestamp {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// One day in milliseconds.
pub const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// Default time retention: 15 days, as Prometheus.
pub const DEFAULT_RETENTION_TIME_MS: i64 = 15 * DAY_MS;

/// Longest block compaction produces by default: 31 days.
pub const MAX_BLOCK_DURATION_CAP_MS: i64 = 31 * DAY_MS;

/// Options for [`Db::open`].
#[derive(Clone)]
#[non_exhaustive]
pub struct DbOptions {
    /// Write-ahead log settings, including the fsync policy.
    pub wal: WalOptions,
    /// Block range in milliseconds (default two hours): the duration of a block cut
    /// from the head and the smallest compaction range (Prometheus's
    /// `min-block-duration`). Samples older than the newest sample minus half of it
    /// are rejected as out of bounds.
    pub block_range_ms: i64,
    /// Threads applying WAL records on open: 0 picks one per core besides the
    /// reading one (at most four; with a single core, none), 1 replays on the
    /// opening thread.
    pub replay_workers: usize,
    /// Blocks whose data is entirely older than `now - retention_time_ms` are deleted
    /// (`--storage.tsdb.retention.time`, default 15 days; 0 turns it off).
    pub retention_time_ms: i64,
    /// The oldest blocks are deleted while the data directory (blocks, WAL,
    /// checkpoint, everything) is larger than this (`--storage.tsdb.retention.size`;
    /// 0, the default, turns it off).
    pub retention_size_bytes: u64,
    /// Longest block compaction produces; 0 (the default) means 10% of the time
    /// retention, at most 31 days (31 days when time retention is off).
    pub max_block_duration_ms: i64,
    /// The current time in milliseconds (for time retention); the system clock by
    /// default, injectable for tests.
    pub clock: Clock,
    /// How often the background thread started by [`Db::open`] runs
    /// [`Db::run_maintenance`]; `None` starts no thread (call it yourself).
    pub maintenance_interval: Option<Duration>,
    /// Most series the head may hold (`--storage.tsdb.head-series-limit`); samples that
    /// would create more are rejected with [`AppendError::SeriesLimit`]. 0 (the default)
    /// means no limit.
    pub max_head_series: u64,
}

impl std::fmt::Debug for DbOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbOptions")
            .field("wal", &self.wal)
            .field("block_range_ms", &self.block_range_ms)
            .field("replay_workers", &self.replay_workers)
            .field("retention_time_ms", &self.retention_time_ms)
            .field("retention_size_bytes", &self.retention_size_bytes)
            .field("max_block_duration_ms", &self.max_block_duration_ms)
            .field("maintenance_interval", &self.maintenance_interval)
            .field("max_head_series", &self.max_head_series)
            .finish_non_exhaustive()
    }
}

impl Default for DbOptions {
    fn default() -> Self {
        DbOptions {
            wal: WalOptions::default(),
            block_range_ms: DEFAULT_BLOCK_RANGE_MS,
            replay_workers: 0,
            retention_time_ms: DEFAULT_RETENTION_TIME_MS,
            retention_size_bytes: 0,
            max_block_duration_ms: 0,
            clock: Arc::new(system_clock_ms),
            maintenance_interval: Some(Duration::from_secs(60)),
            max_head_series: 0,
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

    /// These options with `retention_time_ms` replaced (0 = off).
    pub fn retention_time_ms(mut self, ms: i64) -> Self {
        self.retention_time_ms = ms;
        self
    }

    /// These options with `retention_size_bytes` replaced (0 = off).
    pub fn retention_size_bytes(mut self, bytes: u64) -> Self {
        self.retention_size_bytes = bytes;
        self
    }

    /// These options with `max_block_duration_ms` replaced (0 = derived).
    pub fn max_block_duration_ms(mut self, ms: i64) -> Self {
        self.max_block_duration_ms = ms;
        self
    }

    /// These options with the clock replaced.
    pub fn clock(mut self, clock: impl Fn() -> Timestamp + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// These options with the maintenance interval replaced (`None`: no thread).
    pub fn maintenance_interval(mut self, every: Option<Duration>) -> Self {
        self.maintenance_interval = every;
        self
    }

    /// The longest block compaction produces: [`Self::max_block_duration_ms`] when set,
    /// else 10% of the time retention capped at 31 days, never below the block range.
    pub fn effective_max_block_duration_ms(&self) -> i64 {
        let d = if self.max_block_duration_ms > 0 {
            self.max_block_duration_ms
        } else if self.retention_time_ms > 0 {
            (self.retention_time_ms / 10).min(MAX_BLOCK_DURATION_CAP_MS)
        } else {
            MAX_BLOCK_DURATION_CAP_MS
        };
        d.max(self.block_range_ms)
    }
}

/// Parses a Prometheus byte size such as `512MB` or `1GB` (units B, KB, MB, GB, TB, PB,
/// EB, powers of 1024 as in Prometheus; a bare number is bytes). `0` turns size
/// retention off.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("invalid size {s:?}: expected a number and a unit"))?;
    let shift = match unit.to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "KB" => 10,
        "MB" => 20,
        "GB" => 30,
        "TB" => 40,
        "PB" => 50,
        "EB" => 60,
        _ => {
            return Err(format!(
                "invalid size unit in {s:?}: use B, KB, MB, GB, TB, PB or EB"
            ))
        }
    };
    n.checked_mul(1u64 << shift)
        .ok_or_else(|| format!("size {s:?} is too large"))
}

/// What [`Db::open`] found in the WAL.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OpenStats {
    /// What the WAL reader saw (records, segments, corruption that was cut off).
    pub wal: ReplayStats,
    /// What the checkpoint held, if one was replayed.
    pub checkpoint: Option<ReplayStats>,
    /// What the head restored from checkpoint and WAL.
    pub head: ReplayOutcome,
    /// WAL samples skipped because their time range is already persisted in a block.
    pub skipped_persisted: u64,
}

/// Counters of the database beyond the head's, ready to be exported as metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DbStats {
    /// The head's counters.
    pub head: HeadStats,
    /// Blocks currently served.
    pub blocks: u64,
    /// Blocks loaded by [`Db::open`].
    pub blocks_loaded: u64,
    /// Blocks set aside because they failed validation (on open or when read).
    pub corrupted_blocks: u64,
    /// Compactions that wrote a block (head persistence not included).
    pub compactions: u64,
    /// Compactions that failed.
    pub compactions_failed: u64,
    /// Blocks written from the head.
    pub head_blocks_written: u64,
    /// Head truncations after a block was written.
    pub head_truncations: u64,
    /// WAL checkpoints written.
    pub checkpoints: u64,
    /// Blocks deleted by time retention.
    pub retention_time_deleted: u64,
    /// Blocks deleted by size retention.
    pub retention_size_deleted: u64,
    /// Bytes of every file in the data directory (blocks, WAL, checkpoint).
    pub bytes_on_disk: u64,
}

#[derive(Default)]
struct Counters {
    blocks_loaded: AtomicU64,
    corrupted_blocks: AtomicU64,
    compactions: AtomicU64,
    compactions_failed: AtomicU64,
    head_blocks_written: AtomicU64,
    head_truncations: AtomicU64,
    checkpoints: AtomicU64,
    retention_time_deleted: AtomicU64,
    retention_size_deleted: AtomicU64,
}

fn bump(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

/// Deleted intervals of head series, by label set (merged, sorted).
pub(crate) type HeadTombstones = HashMap<Labels, Vec<Interval>>;

/// Adds `[mint, maxt]` to the intervals of `labels`, keeping them sorted and merged.
pub(crate) fn add_interval(map: &mut HeadTombstones, labels: &Labels, iv: Interval) {
    let list = map.entry(labels.clone()).or_default();
    list.push(iv);
    list.sort();
    let mut merged: Vec<Interval> = Vec::with_capacity(list.len());
    for iv in list.drain(..) {
        match merged.last_mut() {
            Some(last) if iv.min_time <= last.max_time.saturating_add(1) => {
                last.max_time = last.max_time.max(iv.max_time);
            }
            _ => merged.push(iv),
        }
    }
    *list = merged;
}

/// The state shared by a [`Db`] and its background thread.
struct Inner {
    dir: PathBuf,
    opts: DbOptions,
    head: Head,
    wal: Wal,
    lock: DirLock,
    open_stats: OpenStats,
    /// The blocks served, sorted by (min time, id). Queriers keep the snapshot they
    /// started with; maintenance swaps in a new vector.
    blocks: RwLock<Arc<Vec<Block>>>,
    /// Deletions applied to head data at query time.
    tombstones: RwLock<Arc<HeadTombstones>>,
    /// Ids of blocks that failed a read and are set aside by the next maintenance.
    bad_blocks: Mutex<HashSet<String>>,
    /// Serialises maintenance, deletion and snapshots.
    maint: Mutex<()>,
    counters: Counters,
    /// Readers of the WAL that need segments kept (see [`Db::wal_segment_hold`]).
    wal_holds: Mutex<Vec<std::sync::Weak<AtomicU32>>>,
}

/// Keeps the WAL segments from a number on from being deleted by checkpoints, for a
/// reader that follows the WAL (remote write). Dropping it releases them.
#[derive(Debug)]
pub struct WalSegmentHold(Arc<AtomicU32>);

impl WalSegmentHold {
    /// Segments numbered `segment` and up are still needed.
    pub fn hold_from(&self, segment: u32) {
        self.0.store(segment, Ordering::Release);
    }
}

/// The background maintenance thread; stopped and joined when dropped.
struct Background {
    stop: Arc<(Mutex<bool>, Condvar)>,
    handle: Option<JoinHandle<()>>,
}

impl Drop for Background {
    fn drop(&mut self) {
        *self.stop.0.lock() = true;
        self.stop.1.notify_all();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// An open database. `Send + Sync`: share it between threads by reference or in an
/// `Arc`; each thread takes its own [`Appender`].
pub struct Db {
    // Dropped first: the thread stops before the state goes away.
    background: Option<Background>,
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("dir", &self.inner.dir)
            .field("lock", &self.inner.lock.path())
            .field("head", &self.inner.head)
            .field("blocks", &self.inner.blocks.read().len())
            .finish()
    }
}

impl Db {
    /// Opens (creating if needed) the database in `dir`: takes the directory lock
    /// (failing with [`DbError::Locked`] when it is held), removes leftover temporary
    /// directories, loads the blocks (a block failing validation is renamed to
    /// `<ulid>.corrupted`, logged and counted; the others serve), replays the newest WAL
    /// checkpoint and the WAL segments after it (cutting off a torn tail; samples in
    /// the range of a block are skipped) and starts the maintenance thread.
    pub fn open(dir: impl AsRef<Path>, opts: DbOptions) -> Result<Db, DbError> {
        let inner = Arc::new(open::open(dir.as_ref(), opts)?);
        let background = match inner.opts.maintenance_interval {
            Some(every) => Some(Self::start_background(&inner, every)?),
            None => None,
        };
        Ok(Db { background, inner })
    }

    fn start_background(inner: &Arc<Inner>, every: Duration) -> Result<Background, DbError> {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let st = Arc::clone(&stop);
        let state = Arc::clone(inner);
        let handle = std::thread::Builder::new()
            .name("db-maintenance".into())
            .spawn(move || loop {
                {
                    let mut stopped = st.0.lock();
                    if !*stopped {
                        st.1.wait_for(&mut stopped, every);
                    }
                    if *stopped {
                        return;
                    }
                }
                if let Err(e) = state.run_maintenance() {
                    log::error!("maintenance of {} failed: {e}", state.dir.display());
                }
            })
            .map_err(DbError::io(&inner.dir))?;
        Ok(Background {
            stop,
            handle: Some(handle),
        })
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The options the database was opened with.
    pub fn options(&self) -> &DbOptions {
        &self.inner.opts
    }

    /// A new appender. Samples become durable and visible on [`Appender::commit`].
    pub fn appender(&self) -> Appender<'_> {
        Appender::new(&self.inner.head, Some(&self.inner.wal))
    }

    /// A querier over samples with `mint <= t <= maxt` (milliseconds, inclusive),
    /// reading the head and the blocks as they are now.
    pub fn querier(&self, mint: Timestamp, maxt: Timestamp) -> Result<DbQuerier<'_>, DbError> {
        Ok(DbQuerier::new(&self.inner, mint, maxt))
    }

    /// Counters of the head.
    pub fn stats(&self) -> HeadStats {
        self.inner.head.stats()
    }

    /// Counters of the whole database (blocks, compactions, retention, bytes on disk).
    pub fn db_stats(&self) -> DbStats {
        self.inner.db_stats()
    }

    /// What opening found in the WAL.
    pub fn open_stats(&self) -> &OpenStats {
        &self.inner.open_stats
    }

    /// The head (for direct inspection).
    pub fn head(&self) -> &Head {
        &self.inner.head
    }

    /// The blocks served now, sorted by time.
    pub fn blocks(&self) -> Arc<Vec<Block>> {
        Arc::clone(&self.inner.blocks.read())
    }

    /// A hold that keeps WAL segments from being deleted by checkpoints while a reader
    /// still needs them. Held segments are deleted anyway once they are older (by
    /// modification time) than the time retention.
    pub fn wal_segment_hold(&self) -> WalSegmentHold {
        let a = Arc::new(AtomicU32::new(u32::MAX));
        let mut holds = self.inner.wal_holds.lock();
        holds.retain(|w| w.strong_count() > 0);
        holds.push(Arc::downgrade(&a));
        WalSegmentHold(a)
    }

    /// Forces everything committed so far to stable storage, whatever the fsync policy.
    pub fn sync(&self) -> Result<(), DbError> {
        Ok(self.inner.wal.sync()?)
    }

    /// Persists the head's oldest block ranges while it spans more than 1.5 block
    /// ranges (truncating the head and checkpointing the WAL after each block), then
    /// compacts blocks until the planner finds nothing to do. First it removes the head
    /// series an earlier truncation left without samples but had to keep because
    /// appenders held them ([`Head::collect_kept`]), if they are free now.
    pub fn compact(&self) -> Result<(), DbError> {
        let _g = self.inner.maint.lock();
        self.inner.compact_locked()
    }

    /// [`Self::compact`] followed by a retention pass; what the background thread runs.
    pub fn run_maintenance(&self) -> Result<(), DbError> {
        self.inner.run_maintenance()
    }

    /// Deletes the blocks beyond the time and size retention limits (oldest first).
    /// Returns how many were deleted.
    pub fn apply_retention(&self) -> Result<usize, DbError> {
        let _g = self.inner.maint.lock();
        self.inner.retention_locked()
    }

    /// Deletes the samples in `[mint, maxt]` of every series matching `matchers`: head
    /// series get tombstones logged to the WAL first and applied at query time (and when
    /// their data is persisted); blocks get tombstones in their `tombstones` file,
    /// applied at query time and removed by compaction or [`Self::clean_tombstones`].
    pub fn delete_series(
        &self,
        matchers: &[Matcher],
        mint: Timestamp,
        maxt: Timestamp,
    ) -> Result<(), DbError> {
        let _g = self.inner.maint.lock();
        self.inner.delete_locked(matchers, mint, maxt)
    }

    /// Rewrites every block with tombstones without the deleted samples. Returns how
    /// many blocks were rewritten.
    pub fn clean_tombstones(&self) -> Result<usize, DbError> {
        let _g = self.inner.maint.lock();
        self.inner.clean_tombstones_locked()
    }

    /// Writes a snapshot into `dir`: every block hard-linked (copied when linking
    /// fails), and with `with_head` the head's data persisted as one more block, so that
    /// `dir` opens as a data directory.
    pub fn snapshot(&self, dir: impl AsRef<Path>, with_head: bool) -> Result<(), DbError> {
        let _g = self.inner.maint.lock();
        self.inner.snapshot_locked(dir.as_ref(), with_head)
    }

    /// Stops the maintenance thread, flushes and closes the WAL, then releases the
    /// directory lock. Dropping a `Db` does the same but ignores errors.
    pub fn close(self) -> Result<(), DbError> {
        let Db { background, inner } = self;
        drop(background);
        match Arc::try_unwrap(inner) {
            Ok(inner) => {
                let Inner { wal, lock, .. } = inner;
                let res = wal.close();
                drop(lock);
                Ok(res?)
            }
            Err(inner) => Ok(inner.wal.sync()?),
        }
    }
}

fn to_storage(e: DbError) -> StorageError {
    match e {
        DbError::Io { source, .. } => StorageError::Io(source),
        other => StorageError::Other(other.to_string()),
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
