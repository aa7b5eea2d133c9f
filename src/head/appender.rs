//! Batched, transactional appends to the head.

use std::sync::Arc;

use parking_lot::MutexGuard;

use super::series::{classify, MemSeries, Order, SeriesData};
use super::{normalize_labels, AppendError, Head, U64Map};
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
    series: Vec<Arc<MemSeries>>,
    /// Newest (timestamp, value bits) per entry of `series`: committed or pending.
    last: Vec<Option<(Timestamp, u64)>>,
    index: U64Map<u32>,
    samples: Vec<Pending>,
    stats: CommitStats,
}

impl std::fmt::Debug for Appender<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Appender")
            .field("pending_samples", &self.samples.len())
            .field("series", &self.series.len())
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
            series: Vec::new(),
            last: Vec::new(),
            index: U64Map::default(),
            samples: Vec::new(),
            stats: CommitStats::default(),
        }
    }

    /// Appends a sample to the series with `labels`, creating the series if needed,
    /// and returns its reference for [`Self::append_ref`]. Labels with an empty value
    /// are dropped first (Prometheus treats them as absent).
    pub fn append(&mut self, labels: &Labels, t: Timestamp, v: f64) -> Result<u64, AppendError> {
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
        let idx = match self.index.get(&r) {
            Some(&i) => i,
            None => self.add_series(series),
        };
        self.append_idx(idx, t, v)?;
        Ok(r)
    }

    /// Appends a sample to the series with reference `series_ref` (from
    /// [`Self::append`] or [`Head::series_ref`]).
    #[inline]
    pub fn append_ref(&mut self, series_ref: u64, t: Timestamp, v: f64) -> Result<(), AppendError> {
        let idx = match self.index.get(&series_ref) {
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

    fn add_series(&mut self, s: Arc<MemSeries>) -> u32 {
        let idx = self.series.len() as u32;
        self.index.insert(s.series_ref, idx);
        self.last.push(s.data.lock().last());
        self.series.push(s);
        idx
    }

    #[inline]
    fn append_idx(&mut self, idx: u32, t: Timestamp, v: f64) -> Result<(), AppendError> {
        let min_valid = match self.min_valid {
            Some(m) => m,
            None => {
                let m = t.saturating_sub(self.head.opts.block_range_ms / 2);
                self.min_valid = Some(m);
                m
            }
        };
        if t < min_valid {
            self.stats.out_of_bounds += 1;
            self.head.note_rejected(0, 0, 1);
            return Err(AppendError::OutOfBounds { t, min_valid });
        }
        let Some(last) = self.last.get_mut(idx as usize) else {
            return Err(AppendError::UnknownRef(0));
        };
        let bits = v.to_bits();
        match classify(*last, t, bits) {
            Order::Newer => {
                *last = Some((t, bits));
                self.samples.push(Pending { idx, t, v });
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
        self.samples.len()
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
        if self.samples.is_empty() {
            return Ok(self.stats);
        }
        // Lock every series of the batch in reference order (a global order, so
        // concurrent commits cannot deadlock). Holding the locks across the WAL write
        // keeps the WAL order of each series' samples equal to the order in memory.
        let mut order: Vec<u32> = (0..self.series.len() as u32).collect();
        let sorted = self
            .series
            .windows(2)
            .all(|w| matches!(w, [a, b] if a.series_ref < b.series_ref));
        if !sorted {
            order.sort_unstable_by_key(|&i| {
                self.series
                    .get(i as usize)
                    .map(|s| s.series_ref)
                    .unwrap_or(0)
            });
        }
        let mut guards: Vec<Option<MutexGuard<'_, SeriesData>>> =
            (0..self.series.len()).map(|_| None).collect();
        for &i in &order {
            if let (Some(s), Some(slot)) = (self.series.get(i as usize), guards.get_mut(i as usize))
            {
                *slot = Some(s.data.lock());
            }
        }

        // Re-check against the state now (other appenders may have committed): drop
        // what no longer fits, keeping the rest in order.
        let base: Vec<Option<(Timestamp, u64)>> = guards
            .iter()
            .map(|g| g.as_ref().and_then(|g| g.last()))
            .collect();
        let mut cur = base.clone();
        let mut ooo = 0u64;
        let mut dup = 0u64;
        self.samples.retain(|p| {
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
        let accepted = &self.samples;

        if let (Some(wal), false) = (self.wal, accepted.is_empty()) {
            // Series that get samples in this commit and were never logged.
            let new_series: Vec<RefSeries> = self
                .series
                .iter()
                .zip(guards.iter())
                .zip(base.iter().zip(cur.iter()))
                .filter(|((_, g), (b, c))| b != c && g.as_ref().is_some_and(|g| !g.logged))
                .map(|((s, _), _)| RefSeries {
                    series_ref: s.series_ref,
                    labels: s.labels.clone(),
                })
                .collect();
            let samples: Vec<RefSample> = accepted
                .iter()
                .filter_map(|p| {
                    self.series.get(p.idx as usize).map(|s| RefSample {
                        series_ref: s.series_ref,
                        t: p.t,
                        v: p.v,
                    })
                })
                .collect();
            let mut records = Vec::with_capacity(2);
            if !new_series.is_empty() {
                records.push(Record::Series(new_series));
            }
            records.push(Record::Samples(samples));
            wal.log(&records)?;
        }

        let mut mint = i64::MAX;
        let mut maxt = i64::MIN;
        for p in accepted {
            if let Some(Some(g)) = guards.get_mut(p.idx as usize) {
                g.append(p.t, p.v);
                g.logged = true;
                mint = mint.min(p.t);
                maxt = maxt.max(p.t);
            }
        }
        drop(guards);
        self.head.note_appended(accepted.len() as u64, mint, maxt);
        self.head.note_rejected(ooo, dup, 0);
        self.stats.samples_appended = accepted.len() as u64;
        self.stats.out_of_order += ooo;
        self.stats.duplicate += dup;
        self.samples.clear();
        Ok(self.stats)
    }
}
