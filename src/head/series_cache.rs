//! The series an appender thread wrote to in earlier batches, kept for its next ones.
//!
//! An appender holds a strong reference on every series of its batch until the batch
//! is committed or dropped, so that a head truncation cannot remove a series with
//! samples on the way. Taking that reference from the head costs a shard lock and a
//! reference count increment, each an atomic instruction that waits for the series'
//! memory, and dropping it another: together the largest cost of an append by
//! reference. When a batch ends its references move here instead (recycled with the
//! appender's other buffers, per thread), and the thread's next batch takes them back
//! without touching any shared state.
//!
//! With each series the cache keeps the timestamp of its newest sample as the thread's
//! last commit left it: a lower bound of the series' newest timestamp (it only grows),
//! so an append newer than it is accepted without reading the series' memory, each a
//! cache miss on a large head; the commit, which locks the series anyway, re-checks. (An
//! append not newer than the cached timestamp reads the series, so a cached timestamp
//! that is too new would cost time, never correctness.)
//! [`NO_SAMPLE`] means "not known": read the series.
//!
//! [`NO_SAMPLE`]: super::series::NO_SAMPLE
//!
//! A cached reference keeps its series registered: a truncation only removes series
//! nobody else references. Every truncation therefore starts a new epoch of the head,
//! and a cache from an earlier epoch is emptied when an appender takes it; a series the
//! truncation had to keep is removed by [`Head::collect_kept`] once the threads that
//! wrote to it have started a new batch.
//!
//! [`Head::collect_kept`]: super::Head::collect_kept

use std::sync::Arc;

use super::series::MemSeries;
use super::SeriesRef;
use crate::model::Timestamp;

/// References per page (a power of two): pages are allocated for the ranges of
/// references a thread writes to, so references grown large by series churn cost only
/// an empty entry of the page table (16 bytes) per range no longer written.
const PAGE_BITS: u32 = 12;
const PAGE_LEN: usize = 1 << PAGE_BITS;

/// Pages beyond this index (references above 2^32) are not cached.
const MAX_PAGES: usize = 1 << 20;

/// Pages one cache allocates at most (4 MiB of slots, 262,144 references): a thread
/// that writes to more series caches only the first ranges it met, so that many
/// threads writing to a large head (remote write requests each on their own thread,
/// say) do not each hold a slot for every series.
const MAX_ALLOCATED_PAGES: usize = 64;

/// A cached series and the lower bound of its newest timestamp.
type Slot = Option<(Arc<MemSeries>, Timestamp)>;
type Page = Box<[Slot]>;

/// Series by reference, for one head and one epoch of it.
#[derive(Default)]
pub(super) struct SeriesCache {
    head: u64,
    epoch: u64,
    pages: Vec<Option<Page>>,
    /// Pages allocated in `pages`.
    allocated: usize,
}

impl SeriesCache {
    /// Makes the cache one of head `head` in epoch `epoch`, emptying it if it was
    /// another's.
    #[inline]
    pub(super) fn prepare(&mut self, head: u64, epoch: u64) {
        if self.head != head || self.epoch != epoch {
            self.clear();
            self.head = head;
            self.epoch = epoch;
        }
    }

    /// Drops every cached reference.
    pub(super) fn clear(&mut self) {
        self.pages.clear();
        self.allocated = 0;
    }

    /// Whether the cache may hold series of head `head`.
    pub(super) fn is_for(&self, head: u64) -> bool {
        self.head == head && self.allocated > 0
    }

    /// Cached series (counted: tests only).
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.pages
            .iter()
            .flatten()
            .flat_map(|p| p.iter())
            .flatten()
            .count()
    }

    /// Takes the series with reference `r` out of the cache, with a lower bound of its
    /// newest timestamp ([`NO_SAMPLE`](super::series::NO_SAMPLE) when not known).
    #[inline]
    pub(super) fn take(&mut self, r: SeriesRef) -> Option<(Arc<MemSeries>, Timestamp)> {
        let (page, slot) = split(r)?;
        self.pages.get_mut(page)?.as_mut()?.get_mut(slot)?.take()
    }

    /// Caches `s` under its reference `r` (replacing any series cached there) with
    /// `newest`, a lower bound of the series' newest timestamp
    /// ([`NO_SAMPLE`](super::series::NO_SAMPLE) when not known; a larger value only sends
    /// appends to the slower path).
    #[inline]
    pub(super) fn put(&mut self, r: SeriesRef, s: Arc<MemSeries>, newest: Timestamp) {
        let Some((page, slot)) = split(r) else {
            return;
        };
        let full = self.allocated >= MAX_ALLOCATED_PAGES;
        if page >= self.pages.len() {
            if full {
                return;
            }
            self.pages.resize_with(page + 1, || None);
        }
        let Some(p) = self.pages.get_mut(page) else {
            return;
        };
        if p.is_none() {
            if full {
                return;
            }
            self.allocated += 1;
        }
        let p = p.get_or_insert_with(|| (0..PAGE_LEN).map(|_| None).collect());
        if let Some(x) = p.get_mut(slot) {
            *x = Some((s, newest));
        }
    }
}

/// The page and slot of reference `r`; `None` past [`MAX_PAGES`].
#[inline]
fn split(r: SeriesRef) -> Option<(usize, usize)> {
    let page = usize::try_from(r >> PAGE_BITS).ok()?;
    (page < MAX_PAGES).then_some((page, (r as usize) & (PAGE_LEN - 1)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::head::series::NO_SAMPLE;
    use crate::head::{Head, HeadOptions};
    use crate::model::Labels;

    fn series(head: &Head, name: &str) -> (SeriesRef, Arc<MemSeries>) {
        let l = Labels::from_pairs(&[("__name__", name)]);
        let (s, _) = head.get_or_create(&l).unwrap();
        (s.series_ref, s)
    }

    #[test]
    fn take_put_and_epochs() {
        let head = Head::new(HeadOptions::default());
        let (ra, a) = series(&head, "a");
        let (rb, b) = series(&head, "b");
        let mut c = SeriesCache::default();
        c.prepare(head.id(), 0);
        assert!(c.take(ra).is_none());
        c.put(ra, Arc::clone(&a), 7);
        c.put(rb, Arc::clone(&b), NO_SAMPLE);
        // A far reference gets its own page; one beyond the pages is not cached.
        c.put(ra + (5 << PAGE_BITS), Arc::clone(&a), NO_SAMPLE);
        c.put(u64::MAX, Arc::clone(&a), NO_SAMPLE);
        assert_eq!(c.len(), 3);
        let (s, newest) = c.take(ra).unwrap();
        assert!(Arc::ptr_eq(&s, &a));
        assert_eq!(newest, 7);
        drop(s);
        assert!(c.take(ra).is_none());
        assert!(c.take(u64::MAX).is_none());
        assert_eq!(c.len(), 2);
        assert!(c.is_for(head.id()));
        // Same head and epoch: kept. A new epoch or another head: emptied.
        c.prepare(head.id(), 0);
        assert_eq!(c.len(), 2);
        c.prepare(head.id(), 1);
        assert_eq!(c.len(), 0);
        assert!(c.take(rb).is_none());
        c.put(rb, Arc::clone(&b), NO_SAMPLE);
        c.prepare(head.id() + 1, 1);
        assert!(!c.is_for(head.id()));
        // Only the test's references are left.
        assert_eq!(Arc::strong_count(&b), 3);
    }

    #[test]
    fn allocated_pages_are_bounded() {
        let head = Head::new(HeadOptions::default());
        let (r, a) = series(&head, "a");
        let mut c = SeriesCache::default();
        c.prepare(head.id(), 0);
        for page in 0..MAX_ALLOCATED_PAGES as u64 + 10 {
            c.put(page << PAGE_BITS, Arc::clone(&a), NO_SAMPLE);
        }
        assert_eq!(c.len(), MAX_ALLOCATED_PAGES);
        // Allocated pages still take more series; others are not cached.
        c.put(1, Arc::clone(&a), NO_SAMPLE);
        c.put(
            (MAX_ALLOCATED_PAGES as u64 + 5) << PAGE_BITS,
            Arc::clone(&a),
            NO_SAMPLE,
        );
        assert_eq!(c.len(), MAX_ALLOCATED_PAGES + 1);
        assert_eq!(Arc::strong_count(&a), 3 + MAX_ALLOCATED_PAGES + 1);
        c.clear();
        c.put(r, Arc::clone(&a), NO_SAMPLE);
        assert_eq!(c.len(), 1);
    }
}
