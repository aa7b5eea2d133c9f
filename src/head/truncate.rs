//! Dropping data that has been persisted in a block, and reading the head for a WAL
//! checkpoint.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::{shard, Head, SeriesRef};
use crate::model::{Labels, Sample, Timestamp};
use crate::storage::Series;

/// What [`Head::truncate_before`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TruncateStats {
    /// Series removed because no sample was left and nothing referenced them.
    pub series_removed: u64,
    /// Series left without samples but kept because an appender or reader held them.
    pub series_kept_empty: u64,
}

impl Head {
    /// The oldest timestamp appenders accept regardless of their window: everything
    /// older lies in the range of a persisted block.
    pub fn append_floor(&self) -> Timestamp {
        self.append_floor.load(Ordering::SeqCst)
    }

    /// Raises [`Self::append_floor`] to `t` (never lowers it). A commit checks the floor
    /// while it holds its series' locks, so once this returns, every sample older than
    /// `t` either is already visible in the head or will be rejected.
    pub fn raise_append_floor(&self, t: Timestamp) {
        self.append_floor.fetch_max(t, Ordering::SeqCst);
    }

    /// Drops every sample older than `t` (whole chunks, and the older part of a chunk
    /// straddling `t`), then removes the series left without samples from the
    /// registry and the postings, unless an appender or reader still holds them (they
    /// are collected by a later truncation). The head's minimum time becomes at least
    /// `t`.
    pub fn truncate_before(&self, t: Timestamp) -> TruncateStats {
        let mut stats = TruncateStats::default();
        let mut empty = Vec::new();
        for sh in self.by_ref.iter() {
            let series: Vec<_> = sh.read().iter().flatten().cloned().collect();
            for s in series {
                if !s.data.lock().truncate_before(t) {
                    empty.push(s);
                }
            }
        }
        for s in empty {
            let hash = super::label_hash(&s.labels);
            let mut by_hash = shard(&self.by_hash, hash).write();
            let (ref_shard, ref_slot) = super::ref_slot(s.series_ref);
            let mut by_ref = shard(&self.by_ref, ref_shard).write();
            // Held by the two maps and by `s`: nobody else can reach it now.
            let unreferenced = Arc::strong_count(&s) == 3;
            if !unreferenced || s.data.lock().min_time().is_some() {
                stats.series_kept_empty += 1;
                continue;
            }
            if let Some(list) = by_hash.get_mut(&hash) {
                list.retain(|x| !Arc::ptr_eq(x, &s));
                if list.is_empty() {
                    by_hash.remove(&hash);
                }
            }
            if let Some(slot) = ref_slot.and_then(|i| by_ref.get_mut(i)) {
                *slot = None;
            }
            if let Ok(id) = u32::try_from(s.series_ref) {
                self.postings.write().remove(id, &s.labels);
            }
            self.num_series.fetch_sub(1, Ordering::Relaxed);
            stats.series_removed += 1;
        }
        // All remaining and future samples are at or after `t` (the caller raised the
        // append floor), so `t` is a safe lower bound that concurrent commits can only
        // keep or lower towards their own (newer) samples.
        self.min_time.fetch_max(t, Ordering::AcqRel);
        stats
    }

    /// Calls `f` with the reference, labels and samples (oldest first) of every series
    /// in the head, in reference order; for writing a WAL checkpoint. Series without
    /// samples are included: one kept by a truncation (see [`Self::truncate_before`])
    /// has logged its series record once and never again, and samples appended to it
    /// later would find no record on replay once the segment holding it was deleted.
    /// Each series is locked only while its samples are decoded.
    pub fn for_each_series(&self, mut f: impl FnMut(SeriesRef, &Labels, Vec<Sample>)) {
        let mut all: Vec<_> = self
            .by_ref
            .iter()
            .flat_map(|sh| sh.read().iter().flatten().cloned().collect::<Vec<_>>())
            .collect();
        all.sort_by_key(|s| s.series_ref);
        for s in all {
            let chunks = s.data.lock().chunks_in(i64::MIN, i64::MAX);
            let samples = Series::new(s.labels.clone(), chunks, i64::MIN, i64::MAX).samples();
            f(s.series_ref, &s.labels, samples);
        }
    }
}
