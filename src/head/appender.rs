//! Batched, transactional appends to the head.

use std::sync::Arc;

use parking_lot::MutexGuard;

use super::series::{classify, MemSeries, Order, SeriesData, NO_SAMPLE};
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
    /// Samples rejected as out of order (at append or, when another appender committed
    /// newer samples of the same series in between, at commit).
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
}

/// The appender's working memory, recycled per thread so steady-state batches do not
/// allocate or rehash.
#[derive(Default)]
struct Buffers {
    series: Vec<Arc<MemSeries>>,
    /// Newest (timestamp, value bits) per entry of `series`: committed or pending.
    /// Where `exact` is false, only the timestamp is known, as a lower bound read
    /// without the series lock; the value bits are then meaningless.
    last: Vec<Option<(Timestamp, u64)>>,
    exact: Vec<bool>,
    index: U64Map<u32>,
    samples: Vec<Pending>,
    /// Commit scratch: per-series state when locked, and as samples are accepted.
    base: Vec<Option<(Timestamp, u64)>>,
    cur: Vec<Option<(Timestamp, u64)>>,
    order: Vec<u32>,
    wal_samples: Vec<RefSample>,
}

/// Buffers larger than this (in entries) are dropped rather than recycled.
const MAX_RECYCLED: usize = 1 << 16;

impl Buffers {
    fn clear(&mut self) {
        self.series.clear();
        self.last.clear();
        self.exact.clear();
        self.index.clear();
        self.samples.clear();
        self.base.clear();
        self.cur.clear();
        self.order.clear();
        self.wal_samples.clear();
    }

    fn recyclable(&self) -> bool {
        self.series.capacity() <= MAX_RECYCLED
            && self.samples.capacity() <= MAX_RECYCLED
            && self.wal_samples.capacity() <= MAX_RECYCLED
            && self.index.capacity() <= MAX_RECYCLED
    }
}

thread_local! {
    static RECYCLED: std::cell::RefCell<Option<Buffers>> = const { std::cell::RefCell::new(None) };
}

impl Drop for Appender<'_> {
    fn drop(&mut self) {
        // Dropping uncommitted samples is the rollback; keep the memory for the next
        // appender on this thread.
        let mut b = std::mem::take(&mut self.b);
        b.clear();
        if b.recyclable() {
            let _ = RECYCLED.try_with(|r| *r.borrow_mut() = Some(b));
        }
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
        Appender {
            head,
            wal,
            min_valid: head.max_time().map(|m| m.saturating_sub(half)),
            b: RECYCLED
                .try_with(|r| r.borrow_mut().take())
                .ok()
                .flatten()
                .unwrap_or_default(),
            stats: CommitStats::default(),
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
        let idx = match self.b.index.get(&r) {
            Some(&i) => i,
            None => self.add_series(series),
        };
        self.append_idx(idx, t, v)?;
        Ok(r)
    }

    /// Appends a sample to the series with reference `series_ref` (from
    /// [`Self::append`] or [`Head::series_ref`]).
    #[inline]
    pub fn append_ref(
        &mut self,
        series_ref: SeriesRef,
        t: Timestamp,
        v: f64,
    ) -> Result<(), AppendError> {
        self.check_bounds(t)?;
        let idx = match self.b.index.get(&series_ref) {
            Some(&i) => i,
            None => {
                let s = self
                    .head
                    .series_by_ref(series_ref)
                    .ok_or(AppendError::UnknownRef(series_ref))?;
                self.add_series(s)
            }
        };
        self.append_idx(idx, t, v)
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
        let idx = match self.b.index.get(&h.series_ref()) {
            Some(&i) => i,
            None => self.add_series(Arc::clone(h.series())),
        };
        self.append_idx(idx, t, v)
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

    fn add_series(&mut self, s: Arc<MemSeries>) -> u32 {
        let idx = self.b.series.len() as u32;
        self.b.index.insert(s.series_ref, idx);
        // The lock is only taken when the timestamp alone cannot classify a sample
        // (see `append_idx`).
        match s.newest_hint() {
            NO_SAMPLE => {
                self.b.last.push(s.data.lock().last());
                self.b.exact.push(true);
            }
            t => {
                self.b.last.push(Some((t, 0)));
                self.b.exact.push(false);
            }
        }
        self.b.series.push(s);
        idx
    }

    /// Replaces the lower bound of entry `i`'s newest sample with the exact one.
    #[cold]
    fn load_exact(&mut self, i: usize) {
        if let (Some(s), Some(last), Some(exact)) = (
            self.b.series.get(i),
            self.b.last.get_mut(i),
            self.b.exact.get_mut(i),
        ) {
            *last = s.data.lock().last();
            *exact = true;
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
        if self.b.exact.get(i) == Some(&false)
            && self
                .b
                .last
                .get(i)
                .is_some_and(|l| l.is_some_and(|(lt, _)| t <= lt))
        {
            self.load_exact(i);
        }
        let Some(last) = self.b.last.get_mut(i) else {
            return Err(AppendError::UnknownRef(0));
        };
        let bits = v.to_bits();
        match classify(*last, t, bits) {
            Order::Newer => {
                *last = Some((t, bits));
                if let Some(e) = self.b.exact.get_mut(i) {
                    *e = true;
                }
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
                Err(AppendError::OutOfOrder {
                    t,
                    max_t: last.map(|l| l.0).unwrap_or(i64::MIN),
                })
            }
        }
    }

    /// Number of samples waiting for commit.
    pub fn pending(&self) -> usize {
        self.b.samples.len()
    }

    /// Writes the batch to the WAL (one write: new series, then samples) and makes it
    /// visible. Samples that became out of order or duplicate because another appender
    /// committed to the same series since they were appended are dropped and counted.
    /// On a WAL error nothing of the batch is applied.
    pub fn commit(mut self) -> Result<CommitStats, DbError> {
        self.commit_inner()
    }

    /// Discards the batch.
    pub fn rollback(self) {}

    fn commit_inner(&mut self) -> Result<CommitStats, DbError> {
        if self.b.samples.is_empty() {
            return Ok(self.stats);
        }
        let b = &mut self.b;
        // Lock every series of the batch in reference order (a global order, so
        // concurrent commits cannot deadlock). Holding the locks across the WAL write
        // keeps the WAL order of each series' samples equal to the order in memory.
        let n = b.series.len();
        b.order.clear();
        b.order.extend(0..n as u32);
        let sorted = b
            .series
            .windows(2)
            .all(|w| matches!(w, [x, y] if x.series_ref < y.series_ref));
        if !sorted {
            let series = &b.series;
            b.order.sort_unstable_by_key(|&i| {
                series.get(i as usize).map(|s| s.series_ref).unwrap_or(0)
            });
        }
        let mut guards: Vec<Option<MutexGuard<'_, SeriesData>>> = (0..n).map(|_| None).collect();
        for &i in &b.order {
            if let (Some(s), Some(slot)) = (b.series.get(i as usize), guards.get_mut(i as usize)) {
                *slot = Some(s.data.lock());
            }
        }

        // Re-check against the state now (other appenders may have committed): drop
        // what no longer fits, keeping the rest in order.
        b.base.clear();
        b.base
            .extend(guards.iter().map(|g| g.as_ref().and_then(|g| g.last())));
        b.cur.clear();
        b.cur.extend_from_slice(&b.base);
        let mut ooo = 0u64;
        let mut dup = 0u64;
        let mut oob = 0u64;
        // Checked under the series locks: a block cut from the head raises the floor
        // before reading the series, so a sample either lands in that block or is
        // rejected here.
        let floor = self.head.append_floor();
        let cur = &mut b.cur;
        b.samples.retain(|p| {
            if p.t < floor {
                oob += 1;
                return false;
            }
            let Some(last) = cur.get_mut(p.idx as usize) else {
                return false;
            };
            let bits = p.v.to_bits();
            match classify(*last, p.t, bits) {
                Order::Newer => {
                    *last = Some((p.t, bits));
                    true
                }
                Order::SameSample => false,
                Order::Duplicate => {
                    dup += 1;
                    false
                }
                Order::Older => {
                    ooo += 1;
                    false
                }
            }
        });

        if let (Some(wal), false) = (self.wal, b.samples.is_empty()) {
            // Series that get samples in this commit and were never logged.
            let new_series: Vec<RefSeries> = b
                .series
                .iter()
                .zip(guards.iter())
                .zip(b.base.iter().zip(b.cur.iter()))
                .filter(|((_, g), (x, y))| x != y && g.as_ref().is_some_and(|g| !g.logged))
                .map(|((s, _), _)| RefSeries {
                    series_ref: s.series_ref,
                    labels: s.labels.clone(),
                })
                .collect();
            let mut samples = std::mem::take(&mut b.wal_samples);
            samples.clear();
            let series = &b.series;
            samples.extend(b.samples.iter().filter_map(|p| {
                series.get(p.idx as usize).map(|s| RefSample {
                    series_ref: s.series_ref,
                    t: p.t,
                    v: p.v,
                })
            }));
            let mut records = Vec::with_capacity(2);
            if !new_series.is_empty() {
                records.push(Record::Series(new_series));
            }
            records.push(Record::Samples(samples));
            let res = wal.log(&records);
            // keep the samples buffer for the next commit
            if let Some(Record::Samples(v)) = records.pop() {
                b.wal_samples = v;
            }
            res?;
        }

        let mut mint = i64::MAX;
        let mut maxt = i64::MIN;
        for p in &b.samples {
            if let (Some(Some(g)), Some(s)) =
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
