//! Write-ahead log: durable, append-only record of series creations and samples, replayed on
//! start-up to rebuild the in-memory head.
//!
//! The log is a directory of numbered segment files (`00000000`, `00000001`, ...). Each call to
//! [`Wal::log`] encodes its records into one buffer and appends it with one write, so a killed
//! process never loses an acknowledged commit; how soon a commit survives a machine crash is set by
//! [`FsyncPolicy`]. On open, every intact record is replayed in order and a torn or corrupt tail is
//! cut off exactly at the first bad record. The byte layout is documented in the "WAL" section of
//! `storage-format.md`.

mod compact;
mod reader;
mod record;
mod tail;

use std::cell::RefCell;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, MutexGuard};

use crate::model::Labels;
use reader::{io_err, list_segments, segment_path, MAX_SEGMENT};
use record::{encode_record, SEGMENT_HEADER_LEN, SEGMENT_MAGIC};
pub use tail::{read_segment_from, segment_numbers, TailRead, TailRecord};

/// When appended data is forced to stable storage.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FsyncPolicy {
    /// Every [`Wal::log`] returns only after its data is fsynced. Concurrent callers share
    /// fsyncs (group commit): one `fdatasync` covers everything written before it.
    Always,
    /// A background thread fsyncs at most once per interval, and only when something was written.
    /// A machine crash may lose up to one interval of acknowledged commits.
    Interval(Duration),
    /// Never fsync on [`Wal::log`]; the operating system writes data back when it likes.
    /// [`Wal::sync`] and [`Wal::close`] still fsync.
    Never,
}

impl Default for FsyncPolicy {
    fn default() -> Self {
        FsyncPolicy::Interval(Duration::from_secs(1))
    }
}

/// Options for [`Wal::open`].
#[derive(Clone, Debug)]
pub struct WalOptions {
    /// A new segment is started when a commit would grow the current one past this many bytes
    /// (a single commit larger than this gets a segment of its own). Default 128 MiB.
    pub segment_size: u64,
    /// Durability policy. Default: fsync every second.
    pub fsync: FsyncPolicy,
}

/// Default segment size: 128 MiB.
pub const DEFAULT_SEGMENT_SIZE: u64 = 128 << 20;

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions {
            segment_size: DEFAULT_SEGMENT_SIZE,
            fsync: FsyncPolicy::default(),
        }
    }
}

/// A new series and the reference number samples use for it.
#[derive(Clone, Debug, PartialEq)]
pub struct RefSeries {
    /// Reference number of the series, unique within the head.
    pub series_ref: u64,
    /// The series' labels.
    pub labels: Labels,
}

/// One sample of the series with reference `series_ref`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RefSample {
    /// Reference number of the series (see [`RefSeries`]).
    pub series_ref: u64,
    /// Timestamp in milliseconds.
    pub t: i64,
    /// Value; every bit pattern (including NaN payloads such as stale markers) round-trips.
    pub v: f64,
}

/// One WAL record.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Record {
    /// New series.
    Series(Vec<RefSeries>),
    /// Samples for series announced by earlier [`Record::Series`] records.
    Samples(Vec<RefSample>),
    /// Deleted time ranges of series, by label set (written by series deletion).
    Tombstones(Vec<Tombstone>),
}

/// A deleted range `[min_time, max_time]` (inclusive) of the series with `labels`.
#[derive(Clone, Debug, PartialEq)]
pub struct Tombstone {
    /// The series' labels.
    pub labels: Labels,
    /// First deleted timestamp.
    pub min_time: i64,
    /// Last deleted timestamp.
    pub max_time: i64,
}

/// What replay found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReplayStats {
    /// Records replayed.
    pub records: u64,
    /// Series replayed (summed over series records).
    pub series: u64,
    /// Samples replayed (summed over samples records).
    pub samples: u64,
    /// Segment files read.
    pub segments: u32,
    /// Set when replay stopped at a torn or corrupt record.
    pub corrupted: Option<CorruptionInfo>,
}

/// Where replay found damage and what was dropped because of it.
#[derive(Clone, Debug, PartialEq)]
pub struct CorruptionInfo {
    /// Segment holding the first bad record.
    pub segment: u32,
    /// Byte offset of that record in its segment (0 when the segment header is bad).
    pub offset: u64,
    /// Records dropped: the bad record plus the intact records found after it
    /// (best effort: after a damaged length field nothing further in that segment can be found).
    pub dropped_records: u64,
    /// Bytes dropped: from `offset` to the end of the segment, plus all later segments.
    pub dropped_bytes: u64,
    /// What was wrong with the record.
    pub reason: String,
}

/// Errors of the write-ahead log.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WalError {
    /// An I/O operation on `path` failed.
    #[error("WAL I/O error on {}: {source}", .path.display())]
    Io {
        /// File or directory involved.
        path: PathBuf,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Segment numbers have a gap: data in between is missing.
    #[error("WAL segments are not sequential: {prev:08} is followed by {next:08}")]
    NonSequentialSegments {
        /// Last segment before the gap.
        prev: u32,
        /// First segment after the gap.
        next: u32,
    },
    /// A record's encoding exceeds the 4 GiB frame limit.
    #[error("WAL record too large: {0} bytes")]
    RecordTooLarge(usize),
    /// The options passed to [`Wal::open`] are unusable.
    #[error("invalid WAL options: {0}")]
    InvalidOptions(String),
    /// No more segment numbers are available.
    #[error("WAL segment numbers exhausted")]
    SegmentLimit,
    /// An earlier write or fsync failed; the log refuses further appends because it cannot tell
    /// what reached the disk.
    #[error("WAL is unusable after an earlier write or fsync failure")]
    Poisoned,
}

/// Replays every intact record of the WAL in `dir` through `on_record`, in order, without
/// modifying anything (no repair, no lock): for tools and tests. Stops at the first torn or
/// corrupt record and reports it in [`ReplayStats::corrupted`].
pub fn read_dir(dir: &Path, on_record: impl FnMut(Record)) -> Result<ReplayStats, WalError> {
    reader::replay(dir, on_record).map(|(stats, _)| stats)
}

/// The segment being appended to.
struct Writer {
    file: Arc<File>,
    path: PathBuf,
    segment: u32,
    size: u64,
    /// Count of mutations (commits and segment cuts) so far.
    seq: u64,
    /// Earlier segments written since the last sync.
    unsynced: Vec<(PathBuf, Arc<File>)>,
    /// A segment file was created or removed since the last directory sync.
    dir_dirty: bool,
}

struct SyncState {
    /// Every mutation with a sequence number up to this one is durable.
    synced: u64,
    /// Some thread is running an fsync right now.
    syncing: bool,
}

struct Inner {
    dir: PathBuf,
    opts: WalOptions,
    writer: Mutex<Writer>,
    sync: Mutex<SyncState>,
    sync_done: Condvar,
    stop: Mutex<bool>,
    stop_cv: Condvar,
    written_seq: AtomicU64,
    fsyncs: AtomicU64,
    /// Total time spent in the fsyncs counted by `fsyncs`, in nanoseconds.
    fsync_nanos: AtomicU64,
    poisoned: AtomicBool,
    /// Commits whose write failed (e.g. a full disk) since open.
    writes_failed: AtomicU64,
    /// Whether the last write failed (the next success logs the recovery).
    failing: AtomicBool,
    #[cfg(test)]
    sync_delay: Mutex<Duration>,
    #[cfg(test)]
    fail_logs: AtomicBool,
}

/// An open write-ahead log. `Send + Sync`: [`Wal::log`] may be called from many threads at once.
pub struct Wal {
    inner: Arc<Inner>,
    background: Option<JoinHandle<()>>,
    closed: bool,
}

thread_local! {
    static ENCODE_BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Largest encode buffer kept per thread between commits.
const KEEP_ENCODE_BUF: usize = 1 << 20;

/// Most earlier segments kept waiting for a sync before they are synced on the spot.
const MAX_UNSYNCED_SEGMENTS: usize = 16;

fn sync_dir(dir: &Path) -> Result<(), WalError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

/// Creates segment `n` with its header.
fn create_segment(dir: &Path, n: u32) -> Result<(PathBuf, File), WalError> {
    let path = segment_path(dir, n);
    let mut f = OpenOptions::new()
        .create_new(true)
        .append(true)
        .open(&path)
        .map_err(io_err(&path))?;
    if let Err(e) = f.write_all(&SEGMENT_MAGIC) {
        // Do not leave a headerless file behind: the next attempt (e.g. once a full
        // disk has room again) creates it afresh.
        drop(f);
        let _ = std::fs::remove_file(&path);
        return Err(io_err(&path)(e));
    }
    Ok((path, f))
}

impl Wal {
    /// Opens (creating if needed) the WAL in `dir`, replays every intact record in order through
    /// `on_record`, cuts off a torn tail or a corrupt record exactly at that record (the segment
    /// is truncated there and later segments are removed), logs one warning naming segment,
    /// offset and the number of dropped records, and returns the WAL ready to append.
    ///
    /// Only one `Wal` may be open on a directory at a time.
    pub fn open(
        dir: &Path,
        opts: WalOptions,
        on_record: impl FnMut(Record),
    ) -> Result<(Wal, ReplayStats), WalError> {
        Self::open_from(dir, opts, 0, on_record)
    }

    /// Like [`Wal::open`], but replays (and repairs) only the segments numbered `first` and
    /// up; older segments are left as they are (kept for a reader such as remote write
    /// until [`Wal::truncate_before`] removes them).
    pub fn open_from(
        dir: &Path,
        opts: WalOptions,
        first: u32,
        on_record: impl FnMut(Record),
    ) -> Result<(Wal, ReplayStats), WalError> {
        if opts.segment_size <= SEGMENT_HEADER_LEN as u64 {
            return Err(WalError::InvalidOptions(format!(
                "segment_size must exceed {SEGMENT_HEADER_LEN} bytes"
            )));
        }
        if opts.fsync == FsyncPolicy::Interval(Duration::ZERO) {
            return Err(WalError::InvalidOptions(
                "fsync interval must be positive".into(),
            ));
        }
        if !dir.is_dir() {
            std::fs::create_dir_all(dir).map_err(io_err(dir))?;
            // make the new directory's entry durable too
            match dir.parent() {
                Some(p) if !p.as_os_str().is_empty() => sync_dir(p)?,
                _ => sync_dir(Path::new("."))?,
            }
        }
        // What is replayed may still sit only in the page cache (a previous process was killed
        // before syncing): it is made durable before anything is built on it, by a thread that
        // syncs the segments while they are replayed.
        let to_sync: Vec<PathBuf> = list_segments(dir)?
            .into_iter()
            .filter(|&s| s >= first)
            .map(|s| segment_path(dir, s))
            .collect();
        let syncer = std::thread::Builder::new()
            .name("wal-open-sync".into())
            .spawn(move || {
                for p in &to_sync {
                    File::open(p)
                        .and_then(|f| f.sync_data())
                        .map_err(io_err(p))?;
                }
                Ok::<(), WalError>(())
            })
            .map_err(io_err(dir))?;
        // the caller holds the data directory's lock and no writer exists yet; the
        // segments are only repaired after replay has dropped its maps
        let replayed = reader::replay_from(dir, first, reader::Access::Map, on_record);
        let synced = syncer.join().unwrap_or_else(|_| {
            Err(WalError::Io {
                path: dir.to_path_buf(),
                source: std::io::Error::other("WAL sync thread panicked"),
            })
        });
        let (stats, damage) = replayed?;
        synced?;
        if let (Some(d), Some(info)) = (damage, &stats.corrupted) {
            // truncates and syncs the damaged segment, removes the later ones
            Self::repair(dir, &d)?;
            log::warn!(
                "WAL {}: {} in segment {:08} at offset {}; dropped {} records ({} bytes), \
                 truncated the segment there and removed {} later segment(s)",
                dir.display(),
                info.reason,
                info.segment,
                info.offset,
                info.dropped_records,
                info.dropped_bytes,
                d.later.len()
            );
        }
        let writer = Self::open_writer(dir)?;
        let written = writer.seq;
        let inner = Arc::new(Inner {
            dir: dir.to_path_buf(),
            opts,
            writer: Mutex::new(writer),
            sync: Mutex::new(SyncState {
                synced: written,
                syncing: false,
            }),
            sync_done: Condvar::new(),
            stop: Mutex::new(false),
            stop_cv: Condvar::new(),
            written_seq: AtomicU64::new(written),
            fsyncs: AtomicU64::new(0),
            fsync_nanos: AtomicU64::new(0),
            poisoned: AtomicBool::new(false),
            writes_failed: AtomicU64::new(0),
            failing: AtomicBool::new(false),
            #[cfg(test)]
            sync_delay: Mutex::new(Duration::ZERO),
            #[cfg(test)]
            fail_logs: AtomicBool::new(false),
        });
        let background = match inner.opts.fsync {
            FsyncPolicy::Interval(every) => {
                let bg = Arc::clone(&inner);
                let handle = std::thread::Builder::new()
                    .name("wal-fsync".into())
                    .spawn(move || bg.background_sync(every))
                    .map_err(io_err(dir))?;
                Some(handle)
            }
            FsyncPolicy::Always | FsyncPolicy::Never => None,
        };
        Ok((
            Wal {
                inner,
                background,
                closed: false,
            },
            stats,
        ))
    }

    /// Truncates the damaged segment at the bad record and removes every later segment.
    fn repair(dir: &Path, d: &reader::Damage) -> Result<(), WalError> {
        let path = segment_path(dir, d.segment);
        let f = OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(io_err(&path))?;
        if d.offset < d.segment_len {
            f.set_len(d.offset).map_err(io_err(&path))?;
        }
        f.sync_all().map_err(io_err(&path))?;
        // Remove from the newest down, so a crash half-way never leaves a gap.
        for &l in d.later.iter().rev() {
            let p = segment_path(dir, l);
            std::fs::remove_file(&p).map_err(io_err(&p))?;
        }
        sync_dir(dir)
    }

    /// Opens the last segment for appending, creating segment 0 in an empty directory.
    fn open_writer(dir: &Path) -> Result<Writer, WalError> {
        let segs = list_segments(dir)?;
        let (path, file, segment, dir_dirty) = match segs.last() {
            Some(&n) => {
                let path = segment_path(dir, n);
                let f = OpenOptions::new()
                    .append(true)
                    .open(&path)
                    .map_err(io_err(&path))?;
                (path, f, n, false)
            }
            None => {
                let (path, f) = create_segment(dir, 0)?;
                (path, f, 0, true)
            }
        };
        let mut file = file;
        let mut size = file.metadata().map_err(io_err(&path))?.len();
        if size == 0 {
            // Empty last segment (crash right after creating it, or repaired down to nothing).
            file.write_all(&SEGMENT_MAGIC).map_err(io_err(&path))?;
            size = SEGMENT_HEADER_LEN as u64;
        }
        if dir_dirty {
            file.sync_all().map_err(io_err(&path))?;
            sync_dir(dir)?;
        }
        Ok(Writer {
            file: Arc::new(file),
            path,
            segment,
            size,
            seq: 0,
            unsynced: Vec::new(),
            dir_dirty: false,
        })
    }

    /// Appends the records of one commit: they are encoded into one buffer and written with one
    /// write call (a new segment is started first when the current one is full), so a killed
    /// process loses nothing this call acknowledged. Returns once the data is durable as the
    /// [`FsyncPolicy`] demands. An empty slice is a no-op.
    pub fn log(&self, records: &[Record]) -> Result<(), WalError> {
        if records.is_empty() {
            return Ok(());
        }
        #[cfg(test)]
        if self.inner.fail_logs.load(Ordering::Relaxed) {
            return Err(WalError::Io {
                path: self.inner.dir.clone(),
                source: std::io::Error::other("write failure injected by a test"),
            });
        }
        let seq = ENCODE_BUF.with(|cell| {
            let mut buf = cell.borrow_mut();
            buf.clear();
            let res = records
                .iter()
                .try_for_each(|r| encode_record(r, &mut buf))
                .and_then(|()| self.inner.append(&buf));
            if buf.capacity() > KEEP_ENCODE_BUF {
                *buf = Vec::new();
            }
            res
        })?;
        match self.inner.opts.fsync {
            FsyncPolicy::Always => self.inner.sync_through(seq),
            FsyncPolicy::Interval(_) | FsyncPolicy::Never => Ok(()),
        }
    }

    /// Makes everything appended so far durable (fsync), whatever the policy.
    pub fn sync(&self) -> Result<(), WalError> {
        let target = self.inner.written_seq.load(Ordering::Acquire);
        self.inner.sync_through(target)
    }

    /// Stops the background thread and fsyncs everything appended. Dropping a `Wal` does the
    /// same, ignoring errors.
    pub fn close(mut self) -> Result<(), WalError> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<(), WalError> {
        if self.closed {
            return Ok(());
        }
        self.closed = true;
        if let Some(handle) = self.background.take() {
            *self.inner.stop.lock() = true;
            self.inner.stop_cv.notify_all();
            // The thread only logs errors; a panic in it would be a bug, not data loss.
            let _ = handle.join();
        }
        self.sync()
    }

    /// Segment numbers present on disk, ascending.
    pub fn segments(&self) -> Result<Vec<u32>, WalError> {
        list_segments(&self.inner.dir)
    }

    /// Starts a new segment and returns its number; later commits go there.
    pub fn cut_segment(&self) -> Result<u32, WalError> {
        let mut w = self.inner.writer.lock();
        self.inner.cut(&mut w)?;
        Ok(w.segment)
    }

    /// Deletes the segments numbered below `segment`. The segment being appended to is never
    /// deleted, even when `segment` is larger.
    pub fn truncate_before(&self, segment: u32) -> Result<(), WalError> {
        let mut w = self.inner.writer.lock();
        let limit = segment.min(w.segment);
        let mut removed = false;
        for s in list_segments(&self.inner.dir)?
            .into_iter()
            .filter(|&s| s < limit)
        {
            let p = segment_path(&self.inner.dir, s);
            std::fs::remove_file(&p).map_err(io_err(&p))?;
            removed = true;
        }
        if removed {
            w.unsynced.retain(|(p, _)| p.exists());
            drop(w);
            sync_dir(&self.inner.dir)?;
        }
        Ok(())
    }

    /// Number of the segment being appended to.
    pub fn current_segment(&self) -> u32 {
        self.inner.writer.lock().segment
    }

    /// Directory of the log.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Number of data fsyncs issued on segment files since open, not counting the ones `open`
    /// itself does or directory syncs.
    /// With [`FsyncPolicy::Always`] and concurrent writers this stays below the number of
    /// commits thanks to group commit.
    pub fn fsync_count(&self) -> u64 {
        self.inner.fsyncs.load(Ordering::Relaxed)
    }

    /// Number of [`Self::log`] calls whose write failed since open (the commit was
    /// rejected; e.g. a full disk).
    pub fn writes_failed(&self) -> u64 {
        self.inner.writes_failed.load(Ordering::Relaxed)
    }

    /// Total seconds spent in the fsyncs counted by [`Self::fsync_count`].
    pub fn fsync_seconds(&self) -> f64 {
        self.inner.fsync_nanos.load(Ordering::Relaxed) as f64 / 1e9
    }

    /// Test hook: the framed encoding of `rec`, as [`Wal::log`] writes it.
    #[cfg(test)]
    pub(crate) fn encode_for_tests(rec: &Record, buf: &mut Vec<u8>) {
        let _ = encode_record(rec, buf);
    }

    /// Test hook: makes every [`Wal::log`] fail (while `on`) as a full disk would,
    /// without poisoning the log.
    #[cfg(test)]
    pub(crate) fn fail_logs_for_tests(&self, on: bool) {
        self.inner.fail_logs.store(on, Ordering::Relaxed);
    }

    /// Test hook: makes every sync take at least `d` longer, to exercise group commit.
    #[cfg(test)]
    fn set_sync_delay(&self, d: Duration) {
        *self.inner.sync_delay.lock() = d;
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            log::error!("WAL {}: closing failed: {e}", self.inner.dir.display());
        }
    }
}

impl Inner {
    fn check_poisoned(&self) -> Result<(), WalError> {
        if self.poisoned.load(Ordering::Acquire) {
            Err(WalError::Poisoned)
        } else {
            Ok(())
        }
    }

    fn poison(&self) {
        self.poisoned.store(true, Ordering::Release);
    }

    /// Appends one encoded commit with one write; returns its sequence number. A failed
    /// write is counted and logged (once until writes succeed again).
    fn append(&self, buf: &[u8]) -> Result<u64, WalError> {
        let res = self.append_inner(buf);
        match &res {
            Err(WalError::Io { path, source }) => {
                self.writes_failed.fetch_add(1, Ordering::Relaxed);
                if !self.failing.swap(true, Ordering::AcqRel) {
                    log::error!(
                        "WAL {}: write to {} failed, commits are rejected until writes \
                         succeed again: {source}",
                        self.dir.display(),
                        path.display()
                    );
                }
            }
            Err(_) => {
                self.writes_failed.fetch_add(1, Ordering::Relaxed);
            }
            Ok(_) => {
                if self.failing.swap(false, Ordering::AcqRel) {
                    log::warn!(
                        "WAL {}: writes succeed again ({} failed commits so far)",
                        self.dir.display(),
                        self.writes_failed.load(Ordering::Relaxed)
                    );
                }
            }
        }
        res
    }

    fn append_inner(&self, buf: &[u8]) -> Result<u64, WalError> {
        let mut w = self.writer.lock();
        self.check_poisoned()?;
        let len = buf.len() as u64;
        if w.size > SEGMENT_HEADER_LEN as u64 && w.size.saturating_add(len) > self.opts.segment_size
        {
            self.cut(&mut w)?;
        }
        if let Err(e) = (&*w.file).write_all(buf) {
            // Part of the buffer may have reached the file, and anything appended after it would
            // be hidden behind a torn record on replay. Cut the file back to where this commit
            // started (e.g. after a full disk); if even that fails, stop accepting writes.
            if w.file.set_len(w.size).is_err() {
                self.poison();
            }
            return Err(WalError::Io {
                path: w.path.clone(),
                source: e,
            });
        }
        w.size += len;
        w.seq += 1;
        self.written_seq.store(w.seq, Ordering::Release);
        Ok(w.seq)
    }

    /// Starts segment `current + 1`. The previous segment is synced by the next sync.
    fn cut(&self, w: &mut MutexGuard<'_, Writer>) -> Result<(), WalError> {
        self.check_poisoned()?;
        let next = w
            .segment
            .checked_add(1)
            .filter(|&n| n <= MAX_SEGMENT)
            .ok_or(WalError::SegmentLimit)?;
        let (path, file) = create_segment(&self.dir, next)?;
        let old_path = std::mem::replace(&mut w.path, path);
        let old_file = std::mem::replace(&mut w.file, Arc::new(file));
        if w.unsynced.len() >= MAX_UNSYNCED_SEGMENTS {
            for (p, f) in std::mem::take(&mut w.unsynced) {
                self.fsync_file(&p, &f)?;
            }
        }
        w.unsynced.push((old_path, old_file));
        w.segment = next;
        w.size = SEGMENT_HEADER_LEN as u64;
        w.dir_dirty = true;
        w.seq += 1;
        self.written_seq.store(w.seq, Ordering::Release);
        Ok(())
    }

    fn fsync_file(&self, path: &Path, f: &File) -> Result<(), WalError> {
        self.fsyncs.fetch_add(1, Ordering::Relaxed);
        let start = std::time::Instant::now();
        let res = f.sync_data();
        let nanos = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.fsync_nanos.fetch_add(nanos, Ordering::Relaxed);
        res.map_err(|e| {
            self.poison();
            io_err(path)(e)
        })
    }

    /// One sync pass: fsyncs earlier unsynced segments, the current one and, if needed, the
    /// directory. Returns the sequence number now durable. Runs without the writer lock held, so
    /// appends continue meanwhile.
    fn sync_once(&self) -> Result<u64, WalError> {
        let (unsynced, file, path, seq, dir_dirty) = {
            let mut w = self.writer.lock();
            (
                std::mem::take(&mut w.unsynced),
                Arc::clone(&w.file),
                w.path.clone(),
                w.seq,
                std::mem::replace(&mut w.dir_dirty, false),
            )
        };
        #[cfg(test)]
        {
            let d = *self.sync_delay.lock();
            if !d.is_zero() {
                std::thread::sleep(d);
            }
        }
        for (p, f) in &unsynced {
            self.fsync_file(p, f)?;
        }
        self.fsync_file(&path, &file)?;
        if dir_dirty {
            sync_dir(&self.dir).inspect_err(|_| self.poison())?;
        }
        Ok(seq)
    }

    /// Returns once everything up to sequence number `target` is durable. Group commit: while
    /// one caller runs an fsync, others wait for it and then one of them covers everything
    /// written in the meantime with a single further fsync.
    fn sync_through(&self, target: u64) -> Result<(), WalError> {
        let mut st = self.sync.lock();
        loop {
            self.check_poisoned()?;
            if st.synced >= target {
                return Ok(());
            }
            if st.syncing {
                self.sync_done.wait(&mut st);
                continue;
            }
            st.syncing = true;
            let res = MutexGuard::unlocked(&mut st, || self.sync_once());
            st.syncing = false;
            self.sync_done.notify_all();
            st.synced = st.synced.max(res?);
        }
    }

    /// Background loop of [`FsyncPolicy::Interval`]: at most one sync per interval, only when
    /// something was written since the last one.
    fn background_sync(&self, every: Duration) {
        let mut stop = self.stop.lock();
        loop {
            let deadline = Instant::now() + every;
            while !*stop && Instant::now() < deadline {
                self.stop_cv.wait_until(&mut stop, deadline);
            }
            if *stop {
                return;
            }
            let target = self.written_seq.load(Ordering::Acquire);
            let dirty = self.sync.lock().synced < target;
            if dirty && !self.poisoned.load(Ordering::Acquire) {
                if let Err(e) = MutexGuard::unlocked(&mut stop, || self.sync_through(target)) {
                    log::error!("WAL {}: background fsync failed: {e}", self.dir.display());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples_commit(i: u64) -> Vec<Record> {
        vec![Record::Samples(vec![RefSample {
            series_ref: i,
            t: i as i64,
            v: i as f64,
        }])]
    }

    /// With a slow fsync, concurrent committers must share fsyncs.
    #[test]
    fn group_commit_shares_fsyncs() {
        let dir = tempfile::tempdir().unwrap();
        let opts = WalOptions {
            fsync: FsyncPolicy::Always,
            ..WalOptions::default()
        };
        let (wal, _) = Wal::open(dir.path(), opts, |_| {}).unwrap();
        wal.set_sync_delay(Duration::from_millis(5));
        let threads = 8u64;
        let per_thread = 20u64;
        std::thread::scope(|s| {
            for t in 0..threads {
                let wal = &wal;
                s.spawn(move || {
                    for i in 0..per_thread {
                        wal.log(&samples_commit(t * 1000 + i)).unwrap();
                    }
                });
            }
        });
        let commits = threads * per_thread;
        let fsyncs = wal.fsync_count();
        assert!(fsyncs > 0);
        assert!(
            fsyncs * 2 < commits,
            "{fsyncs} fsyncs for {commits} commits: no group commit"
        );
        wal.close().unwrap();
        let mut n = 0;
        let stats = read_dir(dir.path(), |_| n += 1).unwrap();
        assert_eq!(n, commits);
        assert!(stats.corrupted.is_none());
    }

    /// Sequential commits with `Always` each get their own fsync.
    #[test]
    fn always_fsyncs_every_sequential_commit() {
        let dir = tempfile::tempdir().unwrap();
        let opts = WalOptions {
            fsync: FsyncPolicy::Always,
            ..WalOptions::default()
        };
        let (wal, _) = Wal::open(dir.path(), opts, |_| {}).unwrap();
        for i in 0..5 {
            wal.log(&samples_commit(i)).unwrap();
            assert_eq!(wal.fsync_count(), i + 1);
        }
    }

    #[test]
    fn never_does_not_fsync_until_close() {
        let dir = tempfile::tempdir().unwrap();
        let opts = WalOptions {
            fsync: FsyncPolicy::Never,
            segment_size: 64,
        };
        let (wal, _) = Wal::open(dir.path(), opts, |_| {}).unwrap();
        for i in 0..10 {
            wal.log(&samples_commit(i)).unwrap();
        }
        assert_eq!(wal.fsync_count(), 0);
        assert!(wal.segments().unwrap().len() > 1);
        wal.sync().unwrap();
        // every segment written since open was synced: the earlier ones and the current one
        assert_eq!(wal.fsync_count(), wal.segments().unwrap().len() as u64);
        wal.sync().unwrap();
        assert_eq!(wal.fsync_count(), wal.segments().unwrap().len() as u64);
    }

    #[test]
    fn interval_syncs_in_background_only_when_dirty() {
        let dir = tempfile::tempdir().unwrap();
        let opts = WalOptions {
            fsync: FsyncPolicy::Interval(Duration::from_millis(20)),
            ..WalOptions::default()
        };
        let (wal, _) = Wal::open(dir.path(), opts, |_| {}).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(wal.fsync_count(), 0, "nothing written, nothing to sync");
        wal.log(&samples_commit(1)).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while wal.fsync_count() == 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(wal.fsync_count(), 1);
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(wal.fsync_count(), 1, "clean log must not be synced again");
        wal.close().unwrap();
    }
}
