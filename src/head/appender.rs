//! Batched, transactional appends to the head.

use std::sync::Arc;

use parking_lot::MutexGuard;

use super::series::{classify, MemSeries, Order, SeriesData, NO_SAMPLE};
use super::series_cache::SeriesCache;
use super::{normalize_labels, AppendError, Head, SeriesHandle, SeriesRef, U64Map};
use crate::db::DbError;
use crate::model::{Labels, Timestamp};
use crate::wal::{Record, RefSample, RefSeries, Wal};

/// What a commit did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CommitStats {
    /// Samples stored.
    pub samples_appended: u64,
    /// Series created by this appender.
    pub series_created: u64,
    /// Samples rejected as out of order: at append, or at commit when another thread
    /// committed newer samples of the series since this thread last committed to it (or
    /// while this batch was open).
    pub out_of_order: u64,
    /// Samples rejected as duplicates with a different value.
    pub duplicate: u64,
    /// Samples rejected as out of bounds.
    pub out_of_bounds: u64,
}

#[derive(Clone, Copy)]
struct Pending {
    idx: u32,
    t: Timestamp,
    v: f64,
}

/// Collects samples and writes them atomically on [`Appender::commit`]: the WAL gets
/// one write holding the new series and all samples, then the samples become visible.
/// Dropping an appender without committing discards its samples (a rollback).
///
/// Series are created when first appended to, even if the batch is later rolled back
/// (they then hold no samples and are invisible to queries).
pub struct Appender<'a> {
    head: &'a Head,
    wal: Option<&'a Wal>,
    /// Oldest accepted timestamp; `None` until known (empty head).
    min_valid: Option<Timestamp>,
    b: Buffers,
    stats: CommitStats,
    /// Whether a sample the commit finds no longer fits refuses the whole batch (see
    /// [`Appender::commit_all_or_nothing`]).
    all_or_nothing: bool,
    /// The first such sample's series and what was wrong with it.
    refused: Option<(Labels, AppendError)>,
}

/// Why a commit dropped a sample (see [`StrictCommitError::Sample`]).
#[derive(Clone, Copy)]
enum Dropped {
    OutOfBounds,
    Duplicate,
    /// Older than the series' newest sample, at this timestamp.
    OutOfOrder(Timestamp),
}

/// Why [`Appender::commit_all_or_nothing`] stored nothing.
#[derive(Debug)]
pub(crate) enum StrictCommitError {
    /// A sample no longer fit its series at commit: another thread's commit made it out
    /// of order or a duplicate, or a block cut from the head made it out of bounds.
    Sample {
        /// The sample's series.
        labels: Labels,
        /// What was wrong.
        err: AppendError,
    },
    /// Writing the WAL failed.
    Db(DbError),
}

/// The appender's working memory, recycled per thread so steady-state batches do not
/// allocate or rehash.
struct Buffers {
    /// The batch's series, each with its reference, kept here so the commit need not
    /// read it from the series (another cache line).
    series: Vec<(Arc<MemSeries>, SeriesRef)>,
    /// Newest sample per entry of `series`: committed or pending.
    last: Vec<Newest>,
    /// Entry of each reference in `series`; only filled once a reference arrives that
    /// is not larger than all before it (see [`Buffers::find`]).
    index: U64Map<u32>,
    /// Whether `index` holds every entry of `series`.
    indexed: bool,
    /// Largest reference in `series` (0 when empty; references start at 1).
    max_ref: u64,
    /// Whether `series` is in increasing reference order.
    sorted: bool,
    samples: Vec<Pending>,
    /// Commit scratch: the series' newest sample as samples are accepted; after an
    /// applied commit, what `clear` gives the cache with each series.
    cur: Vec<Option<(Timestamp, u64)>>,
    /// Commit scratch: entries whose series is new to the WAL and already listed.
    listed: Vec<bool>,
    order: Vec<u32>,
    wal_samples: Vec<RefSample>,
    /// The series of this thread's earlier batches; `series` moves here when a batch
    /// ends and is taken back from here (see `series_cache`).
    cache: SeriesCache,
    /// Whether the batch was committed: `cur` then holds each series' newest sample,
    /// which goes to the cache with the series (a failed commit's would be too new:
    /// harmless, as an append not newer than the cached timestamp reads the series,
    /// but slower).
    applied: bool,
}

/// What an appender knows of a series' newest sample.
#[derive(Clone, Copy)]
struct Newest {
    t: Timestamp,
    bits: u64,
    kind: Known,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Known {
    /// The series has no sample.
    Nothing,
    /// `t` is a lower bound read without the series lock; `bits` is meaningless.
    LowerBound,
    /// `(t, bits)` is the newest sample.
    Exact,
}

impl Newest {
    fn exact(last: Option<(Timestamp, u64)>) -> Self {
        match last {
            Some((t, bits)) => Newest {
                t,
                bits,
                kind: Known::Exact,
            },
            None => Newest {
                t: 0,
                bits: 0,
                kind: Known::Nothing,
            },
        }
    }

    #[inline]
    fn get(&self) -> Option<(Timestamp, u64)> {
        (self.kind != Known::Nothing).then_some((self.t, self.bits))
    }
}

impl Default for Buffers {
    fn default() -> Self {
        Buffers {
            series: Vec::new(),
            last: Vec::new(),
            index: U64Map::default(),
            indexed: false,
            max_ref: 0,
            sorted: true,
            samples: Vec::new(),
            cur: Vec::new(),
            listed: Vec::new(),
            order: Vec::new(),
            wal_samples: Vec::new(),
            cache: SeriesCache::default(),
            applied: false,
        }
    }
}

/// Buffers larger than this (in entries) are dropped rather than recycled (the series
/// cache, bounded on its own, is kept).
const MAX_RECYCLED: usize = 1 << 16;

impl Buffers {
    /// Empties the batch, moving its series to the cache: with their newest timestamp
    /// when the batch was committed (it can only have grown since), else unknown.
    fn clear(&mut self) {
        let applied = std::mem::take(&mut self.applied);
        for (i, (s, r)) in self.series.drain(..).enumerate() {
            let newest = match self.cur.get(i) {
                Some(&Some((t, _))) if applied => t,
                _ => NO_SAMPLE,
            };
            self.cache.put(r, s, newest);
        }
        self.last.clear();
        if self.indexed {
            self.index.clear();
        }
        self.indexed = false;
        self.max_ref = 0;
        self.sorted = true;
        self.samples.clear();
        self.cur.clear();
        self.listed.clear();
        self.order.clear();
        self.wal_samples.clear();
    }

    fn recyclable(&self) -> bool {
        self.series.capacity() <= MAX_RECYCLED
            && self.samples.capacity() <= MAX_RECYCLED
            && self.wal_samples.capacity() <= MAX_RECYCLED
            && self.index.capacity() <= MAX_RECYCLED
    }

    /// The entry of reference `r`, if the batch has one. Batches usually come in
    /// increasing reference order with one sample per series, so a reference above all
    /// earlier ones is known to be new without a hash lookup; the index is only built
    /// once that shortcut fails.
    #[inline]
    fn find(&mut self, r: SeriesRef) -> Option<u32> {
        if r > self.max_ref {
            return None;
        }
        if !self.indexed {
            self.index.clear();
            self.index.extend(
                self.series
                    .iter()
                    .enumerate()
                    .map(|(i, &(_, r))| (r, i as u32)),
            );
            self.indexed = true;
        }
        self.index.get(&r).copied()
    }
}

thread_local! {
    static RECYCLED: std::cell::RefCell<Option<Buffers>> = const { std::cell::RefCell::new(None) };
}

/// Drops this thread's cached series of head `head` (see `series_cache`).
pub(super) fn drop_thread_cache(head: u64) {
    let _ = RECYCLED.try_with(|r| {
        if let Ok(mut r) = r.try_borrow_mut() {
            if let Some(b) = r.as_mut().filter(|b| b.cache.is_for(head)) {
                b.cache.clear();
            }
        }
    });
}

impl Drop for Appender<'_> {
    fn drop(&mut self) {
        // Dropping uncommitted samples is the rollback; keep the memory for the next
        // appender on this thread.
        let mut b = std::mem::take(&mut self.b);
        b.clear();
        if !b.recyclable() {
            b = Buffers {
                cache: std::mem::take(&mut b.cache),
                ..Buffers::default()
            };
        }
        let _ = RECYCLED.try_with(|r| {
            if let Ok(mut r) = r.try_borrow_mut() {
                *r = Some(b);
            }
        });
    }
}

impl std::fmt::Debug for Appender<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Appender")
            .field("pending_samples", &self.b.samples.len())
            .field("series", &self.b.series.len())
            .field("stats", &self.stats)
            .finish()
    }
}

impl<'a> Appender<'a> {
    pub(crate) fn new(head: &'a Head, wal: Option<&'a Wal>) -> Self {
        let half = head.opts.block_range_ms / 2;
        let mut b: Buffers = RECYCLED
            .try_with(|r| r.try_borrow_mut().ok().and_then(|mut r| r.take()))
            .ok()
            .flatten()
            .unwrap_or_default();
        b.cache.prepare(head.id(), head.gc_epoch());
        Appender {
            head,
            wal,
            min_valid: head.max_time().map(|m| m.saturating_sub(half)),
            b,
            stats: CommitStats::default(),
            all_or_nothing: false,
            refused: None,
        }
    }

    /// Appends a sample to the series with `labels`, creating the series if needed,
    /// and returns its reference for [`Self::append_ref`]. Labels with an empty value
    /// are dropped first (Prometheus treats them as absent).
    pub fn append(
        &mut self,
        labels: &Labels,
        t: Timestamp,
        v: f64,
    ) -> Result<SeriesRef, AppendError> {
        self.check_bounds(t)?;
        let normalized = normalize_labels(labels);
        let labels = normalized.as_ref().unwrap_or(labels);
        let (series, created) = match self.head.lookup(labels) {
            Some(s) => (s, false),
            None => {
                labels.validate()?;
                self.head.get_or_create(labels)?
            }
        };
        if created {
            self.stats.series_created += 1;
        }
        let r = series.series_ref;
        match self.b.find(r) {
            Some(i) => self.append_idx(i, t, v)?,
            None => {
                let hint = series.newest_hint();
                self.append_new(series, r, hint, t, v)?
            }
        }
        Ok(r)
    }

    /// Appends a sample to the series with reference `series_ref` (from
    /// [`Self::append`] or [`Head::series_ref`]).
    ///
    /// A sample is checked against the newest one of its series as far as this thread
    /// knows it: after this thread's last commit to the series. A sample made out of
    /// order or a duplicate by another thread's commit since then is accepted here and
    /// dropped (and counted) by [`Self::commit`], as for appenders committing at the
    /// same time.
    #[inline]
    pub fn append_ref(
        &mut self,
        series_ref: SeriesRef,
        t: Timestamp,
        v: f64,
    ) -> Result<(), AppendError> {
        self.check_bounds(t)?;
        match self.b.find(series_ref) {
            Some(i) => self.append_idx(i, t, v),
            None => {
                let (s, hint) = match self.take_cached(series_ref) {
                    Some(cached) => cached,
                    None => self
                        .head
                        .series_and_hint(series_ref)
                        .ok_or(AppendError::UnknownRef(series_ref))?,
                };
                self.append_new(s, series_ref, hint, t, v)
            }
        }
    }

    /// Appends a sample to the series `h` holds, like [`Self::append_ref`] without the
    /// lookup of the series by reference. `h` must come from this appender's head (see
    /// [`Self::head_id`]).
    #[inline]
    pub(crate) fn append_handle(
        &mut self,
        h: &SeriesHandle,
        t: Timestamp,
        v: f64,
    ) -> Result<(), AppendError> {
        self.check_bounds(t)?;
        let r = h.series_ref();
        match self.b.find(r) {
            Some(i) => self.append_idx(i, t, v),
            None => {
                let (s, hint) = match self.take_cached(r) {
                    Some(cached) => cached,
                    None => {
                        let s = Arc::clone(h.series());
                        let hint = s.newest_hint();
                        (s, hint)
                    }
                };
                self.append_new(s, r, hint, t, v)
            }
        }
    }

    /// Takes series `r` from the thread's cache, with a lower bound of its newest
    /// timestamp (read from the series when the cache does not know it).
    #[inline]
    fn take_cached(&mut self, r: SeriesRef) -> Option<(Arc<MemSeries>, Timestamp)> {
        match self.b.cache.take(r)? {
            (s, NO_SAMPLE) => {
                let hint = s.newest_hint();
                Some((s, hint))
            }
            cached => Some(cached),
        }
    }

    /// A handle on the series with reference `r` (from [`Self::append`]) for
    /// [`Self::append_handle`].
    pub(crate) fn handle(&self, r: SeriesRef) -> Option<SeriesHandle> {
        self.head.handle(r)
    }

    /// The identifier of the head this appender writes to ([`SeriesHandle`]s of other
    /// heads must not be passed to it).
    pub(crate) fn head_id(&self) -> u64 {
        self.head.id()
    }

    /// Appends a sample to series `s` (reference `r`, not yet in the batch; `hint` is a
    /// lower bound of its newest timestamp, such as [`MemSeries::newest_hint`]).
    #[inline]
    fn append_new(
        &mut self,
        s: Arc<MemSeries>,
        r: SeriesRef,
        hint: Timestamp,
        t: Timestamp,
        v: f64,
    ) -> Result<(), AppendError> {
        if hint != NO_SAMPLE && t > hint {
            // Newer than the series (as far as this appender can tell; the commit
            // re-checks), the usual case: recorded at once, as `append_idx` would.
            let bits = v.to_bits();
            let idx = self.add_series(
                s,
                r,
                Newest {
                    t,
                    bits,
                    kind: Known::Exact,
                },
            );
            self.b.samples.push(Pending { idx, t, v });
            return Ok(());
        }
        // The lock is only taken when the timestamp alone cannot classify a sample
        // (see `append_idx`).
        let last = match hint {
            NO_SAMPLE => Newest::exact(s.data.lock().last()),
            t => Newest {
                t,
                bits: 0,
                kind: Known::LowerBound,
            },
        };
        let idx = self.add_series(s, r, last);
        self.append_idx(idx, t, v)
    }

    /// Adds series `s` with reference `r`, not yet in the batch, whose newest sample
    /// (committed, or pending in this batch) is known as `last`.
    #[inline(always)]
    fn add_series(&mut self, s: Arc<MemSeries>, r: SeriesRef, last: Newest) -> u32 {
        let b = &mut self.b;
        let idx = b.series.len() as u32;
        if r > b.max_ref {
            b.max_ref = r;
        } else {
            b.sorted = false;
        }
        if b.indexed {
            b.index.insert(r, idx);
        }
        b.last.push(last);
        b.series.push((s, r));
        idx
    }

    /// Replaces the lower bound of entry `i`'s newest sample with the exact one.
    #[cold]
    fn load_exact(&mut self, i: usize) {
        if let (Some((s, _)), Some(last)) = (self.b.series.get(i), self.b.last.get_mut(i)) {
            *last = Newest::exact(s.data.lock().last());
        }
    }

    /// Rejects samples older than the appender's window. Checked before anything
    /// else, as Prometheus does, so a rejected sample creates no series.
    #[inline]
    fn check_bounds(&mut self, t: Timestamp) -> Result<(), AppendError> {
        let min_valid = match self.min_valid {
            Some(m) => m,
            None => {
                let m = t.saturating_sub(self.head.opts.block_range_ms / 2);
                self.min_valid = Some(m);
                m
            }
        };
        let min_valid = min_valid.max(self.head.append_floor());
        if t < min_valid {
            self.stats.out_of_bounds += 1;
            self.head.note_rejected(0, 0, 1);
            return Err(AppendError::OutOfBounds { t, min_valid });
        }
        Ok(())
    }

    #[inline]
    fn append_idx(&mut self, idx: u32, t: Timestamp, v: f64) -> Result<(), AppendError> {
        let i = idx as usize;
        // A sample newer than the lower bound is newer than the series (as far as this
        // appender can tell; the commit re-checks). Anything else needs the exact newest
        // sample.
        if self
            .b
            .last
            .get(i)
            .is_some_and(|l| l.kind == Known::LowerBound && t <= l.t)
        {
            self.load_exact(i);
        }
        let Some(last) = self.b.last.get_mut(i) else {
            return Err(AppendError::UnknownRef(0));
        };
        let bits = v.to_bits();
        match classify(last.get(), t, bits) {
            Order::Newer => {
                *last = Newest {
                    t,
                    bits,
                    kind: Known::Exact,
                };
                self.b.samples.push(Pending { idx, t, v });
                Ok(())
            }
            Order::SameSample => Ok(()),
            Order::Duplicate => {
                self.stats.duplicate += 1;
                self.head.note_rejected(0, 1, 0);
                Err(AppendError::DuplicateSample { t })
            }
            Order::Older => {
                self.stats.out_of_order += 1;
                self.head.note_rejected(1, 0, 0);
                Err(AppendError::OutOfOrder { t, max_t: last.t })
            }
        }
    }

    /// Number of samples waiting for commit.
    pub fn pending(&self) -> usize {
        self.b.samples.len()
    }

    /// Writes the batch to the WAL (one write: new series, then samples) and makes it
    /// visible. Samples that another thread's commit made out of order or duplicate
    /// (see [`Self::append_ref`]) are dropped and counted.
    /// On a WAL error nothing of the batch is applied.
    pub fn commit(mut self) -> Result<CommitStats, DbError> {
        self.commit_inner()
    }

    /// Commits like [`Self::commit`], except that a sample the commit finds no longer
    /// fits its series (see [`Self::append_ref`]) refuses the whole batch: nothing is
    /// written and the first such sample is returned. For callers that answer a batch
    /// as a whole, such as the remote write receiver.
    pub(crate) fn commit_all_or_nothing(mut self) -> Result<CommitStats, StrictCommitError> {
        self.all_or_nothing = true;
        let stats = self.commit_inner().map_err(StrictCommitError::Db)?;
        match self.refused.take() {
            Some((labels, err)) => Err(StrictCommitError::Sample { labels, err }),
            None => Ok(stats),
        }
    }

    /// Discards the batch.
    pub fn rollback(self) {}

    fn commit_inner(&mut self) -> Result<CommitStats, DbError> {
        if self.b.samples.is_empty() {
            return Ok(self.stats);
        }
        let b = &mut self.b;
        let n = b.series.len();
        // The batch's series are spread over memory larger than the CPU caches. Read
        // each lock word first with plain loads, which the CPU overlaps, so that taking
        // the locks below (each an atomic that waits for the memory it touches) finds
        // them cached.
        let mut any_locked = false;
        for (s, _) in &b.series {
            any_locked |= s.data.is_locked();
        }
        std::hint::black_box(any_locked);

        // Lock every series of the batch in reference order (a global order, so
        // concurrent commits cannot deadlock). Holding the locks across the WAL write
        // keeps the WAL order of each series' samples equal to the order in memory.
        let mut guards: Vec<Option<MutexGuard<'_, SeriesData>>> = Vec::with_capacity(n);
        if b.sorted {
            guards.extend(b.series.iter().map(|(s, _)| Some(s.data.lock())));
        } else {
            guards.extend((0..n).map(|_| None));
            b.order.clear();
            b.order.extend(0..n as u32);
            let series = &b.series;
            b.order
                .sort_unstable_by_key(|&i| series.get(i as usize).map_or(0, |e| e.1));
            for &i in &b.order {
                if let (Some((s, _)), Some(slot)) =
                    (b.series.get(i as usize), guards.get_mut(i as usize))
                {
                    *slot = Some(s.data.lock());
                }
            }
        }
        // Same for the series' data and open chunks, now that reading them is allowed.
        let mut sum = 0u64;
        for g in guards.iter().flatten() {
            sum = sum.wrapping_add(g.touch());
        }
        std::hint::black_box(sum);

        // Re-check against the state now (other appenders may have committed): drop
        // what no longer fits, keeping the rest in order. The WAL samples are collected
        // on the way, and which series get samples.
        b.cur.clear();
        b.cur
            .extend(guards.iter().map(|g| g.as_ref().and_then(|g| g.last())));
        b.listed.clear();
        b.listed.resize(n, false);
        let mut ooo = 0u64;
        let mut dup = 0u64;
        let mut oob = 0u64;
        // Checked under the series locks: a block cut from the head raises the floor
        // before reading the series, so a sample either lands in that block or is
        // rejected here.
        let floor = self.head.append_floor();
        let logging = self.wal.is_some();
        let mut wal_samples = std::mem::take(&mut b.wal_samples);
        wal_samples.clear();
        if logging {
            wal_samples.reserve(b.samples.len());
        }
        let (cur, listed, series) = (&mut b.cur, &mut b.listed, &b.series);
        // The first sample dropped (entry, timestamp, why), for an all-or-nothing commit;
        // kept small so that the loop stays lean.
        let mut first_dropped: Option<(u32, Timestamp, Dropped)> = None;
        b.samples.retain(|p| {
            if p.t < floor {
                oob += 1;
                first_dropped.get_or_insert((p.idx, p.t, Dropped::OutOfBounds));
                return false;
            }
            let i = p.idx as usize;
            let (Some(last), Some(&(_, series_ref))) = (cur.get_mut(i), series.get(i)) else {
                return false;
            };
            let bits = p.v.to_bits();
            match classify(*last, p.t, bits) {
                Order::Newer => {
                    *last = Some((p.t, bits));
                    if logging {
                        wal_samples.push(RefSample {
                            series_ref,
                            t: p.t,
                            v: p.v,
                        });
                        if let Some(l) = listed.get_mut(i) {
                            *l = true;
                        }
                    }
                    true
                }
                Order::SameSample => false,
                Order::Duplicate => {
                    dup += 1;
                    first_dropped.get_or_insert((p.idx, p.t, Dropped::Duplicate));
                    false
                }
                Order::Older => {
                    ooo += 1;
                    let max_t = last.map_or(p.t, |l| l.0);
                    first_dropped.get_or_insert((p.idx, p.t, Dropped::OutOfOrder(max_t)));
                    false
                }
            }
        });
        if let (true, Some((idx, t, why))) = (self.all_or_nothing, first_dropped) {
            // Refused as a whole: nothing is written; the rejections are counted.
            let err = match why {
                Dropped::OutOfBounds => AppendError::OutOfBounds {
                    t,
                    min_valid: floor,
                },
                Dropped::Duplicate => AppendError::DuplicateSample { t },
                Dropped::OutOfOrder(max_t) => AppendError::OutOfOrder { t, max_t },
            };
            b.wal_samples = wal_samples;
            let labels = b
                .series
                .get(idx as usize)
                .map(|(s, _)| s.labels.clone())
                .unwrap_or_default();
            drop(guards);
            self.refused = Some((labels, err));
            self.head.note_rejected(ooo, dup, oob);
            self.stats.out_of_order += ooo;
            self.stats.duplicate += dup;
            self.stats.out_of_bounds += oob;
            return Ok(self.stats);
        }

        if let (Some(wal), false) = (self.wal, b.samples.is_empty()) {
            // Series that get samples in this commit and were never logged.
            let new_series: Vec<RefSeries> = b
                .series
                .iter()
                .zip(guards.iter())
                .zip(b.listed.iter())
                .filter(|((_, g), &l)| l && g.as_ref().is_some_and(|g| !g.logged))
                .map(|(((s, r), _), _)| RefSeries {
                    series_ref: *r,
                    labels: s.labels.clone(),
                })
                .collect();
            let mut records = Vec::with_capacity(2);
            if !new_series.is_empty() {
                records.push(Record::Series(new_series));
            }
            records.push(Record::Samples(wal_samples));
            let res = wal.log(&records);
            // keep the samples buffer for the next commit
            if let Some(Record::Samples(v)) = records.pop() {
                b.wal_samples = v;
            }
            res?;
        } else {
            b.wal_samples = wal_samples;
        }

        let mut mint = i64::MAX;
        let mut maxt = i64::MIN;
        for p in &b.samples {
            if let (Some(Some(g)), Some((s, _))) =
                (guards.get_mut(p.idx as usize), b.series.get(p.idx as usize))
            {
                g.append(p.t, p.v);
                s.publish_newest(p.t);
                g.logged = true;
                mint = mint.min(p.t);
                maxt = maxt.max(p.t);
            }
        }
        drop(guards);
        b.applied = true;
        let accepted = b.samples.len() as u64;
        b.samples.clear();
        self.head.note_appended(accepted, mint, maxt);
        self.head.note_rejected(ooo, dup, oob);
        self.stats.samples_appended = accepted;
        self.stats.out_of_order += ooo;
        self.stats.duplicate += dup;
        self.stats.out_of_bounds += oob;
        Ok(self.stats)
    }
}
