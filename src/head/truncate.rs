//! Dropping data that has been persisted in a block, and reading the head for a WAL
//! checkpoint.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::series::MemSeries;
use super::{shard, Head, SeriesRef};
use crate::model::{Labels, Sample, Timestamp};
use crate::storage::Series;

/// What [`Head::truncate_before`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TruncateStats {
    /// Series removed because no sample was left and nothing referenced them.
    pub series_removed: u64,
    /// Series left without samples but kept because an appender, a reader, a scrape
    /// cache or an appender thread's series cache held them.
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
    /// registry and the postings, unless an appender, a reader or an appender thread's
    /// series cache still holds them: those are retried by [`Self::collect_kept`]. The
    /// head's minimum time becomes at least `t`.
    pub fn truncate_before(&self, t: Timestamp) -> TruncateStats {
        // Appender threads drop the series they cached once they see the new epoch;
        // this thread's cache is dropped now.
        self.gc_epoch.fetch_add(1, Ordering::AcqRel);
        super::appender::drop_thread_cache(self.id());
        // Series kept last time are found again below if still empty.
        self.kept_empty.lock().clear();
        let mut empty = Vec::new();
        for sh in self.by_ref.iter() {
            let series: Vec<_> = sh.read().iter().flatten().cloned().collect();
            for s in series {
                if !s.data.lock().truncate_before(t) {
                    empty.push(s);
                }
            }
        }
        let stats = self.remove_empty(empty);
        // All remaining and future samples are at or after `t` (the caller raised the
        // append floor), so `t` is a safe lower bound that concurrent commits can only
        // keep or lower towards their own (newer) samples.
        self.min_time.fetch_max(t, Ordering::AcqRel);
        stats
    }

    /// Retries removing the series the last truncation left without samples but kept
    /// because something held them (typically appender threads' series caches, which
    /// let go once those threads start a new batch). Series that received samples
    /// since are no longer candidates. Cheap when there are none; the database calls
    /// it on every maintenance pass.
    pub fn collect_kept(&self) -> TruncateStats {
        let list = std::mem::take(&mut *self.kept_empty.lock());
        if list.is_empty() {
            return TruncateStats::default();
        }
        self.remove_empty(list)
    }

    /// Removes the series of `empty` (each found without samples, and held by the
    /// list) that are still without samples and that nothing else references; keeps
    /// the others that are still empty for [`Self::collect_kept`].
    fn remove_empty(&self, empty: Vec<Arc<MemSeries>>) -> TruncateStats {
        let mut stats = TruncateStats::default();
        let mut kept = Vec::new();
        for s in empty {
            let hash = super::label_hash(&s.labels);
            let mut by_hash = shard(&self.by_hash, hash).write();
            let (ref_shard, ref_slot) = super::ref_slot(s.series_ref);
            let mut by_ref = shard(&self.by_ref, ref_shard).write();
            // Held by the two maps and by `s` only: nobody else can reach it while the
            // maps are locked, so it cannot get samples between the two checks below.
            // (The other order would let a commit add samples, and its appender let go
            // of the series, between them.)
            if Arc::strong_count(&s) != 3 {
                if s.data.lock().min_time().is_none() {
                    stats.series_kept_empty += 1;
                    kept.push(s);
                }
                continue;
            }
            if s.data.lock().min_time().is_some() {
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
        if !kept.is_empty() {
            let mut list = self.kept_empty.lock();
            list.extend(kept);
            // A truncation and a retry running at once could list a series twice,
            // which would keep it referenced for good.
            list.sort_unstable_by_key(|s| Arc::as_ptr(s) as usize);
            list.dedup_by(|a, b| Arc::ptr_eq(a, b));
        }
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
