//! One in-memory series: labels, frozen chunks and the open chunk.

use std::sync::atomic::{AtomicI64, Ordering};

use parking_lot::Mutex;

use crate::chunk::{ChunkData, XorChunk, MAX_SAMPLES_PER_CHUNK};
use crate::model::{Labels, Timestamp};
use crate::storage::SeriesChunk;

/// A series held by the head. Its data sits behind a mutex; the labels and reference
/// never change.
///
/// The field order is fixed so that what every commit touches (the published timestamp,
/// the lock and the front of the data) is contiguous: with 100k series these are cache
/// misses, and fewer lines mean fewer.
#[repr(C)]
pub(crate) struct MemSeries {
    /// Timestamp of the newest sample, readable without the lock ([`NO_SAMPLE`] when
    /// none). Written under the lock after `data` changed; it only grows, so a value
    /// read without the lock is never newer than the series' newest sample.
    last_t: AtomicI64,
    pub(crate) data: Mutex<SeriesData>,
    /// Read by appends only on the slow paths (the appender keeps its own copy).
    pub(crate) series_ref: u64,
    pub(crate) labels: Labels,
}

/// [`MemSeries::newest_hint`] of a series without samples. A sample at this timestamp
/// is possible, so the value only means "ask under the lock".
pub(crate) const NO_SAMPLE: Timestamp = i64::MIN;

impl MemSeries {
    pub(crate) fn new(series_ref: u64, labels: Labels) -> Self {
        Self::with_data(series_ref, labels, SeriesData::new())
    }

    pub(crate) fn with_data(series_ref: u64, labels: Labels, data: SeriesData) -> Self {
        MemSeries {
            series_ref,
            labels,
            last_t: AtomicI64::new(data.last().map_or(NO_SAMPLE, |l| l.0)),
            data: Mutex::new(data),
        }
    }

    /// The newest sample's timestamp as last published, read without the lock: a
    /// lower bound of the true one ([`NO_SAMPLE`] means unknown).
    #[inline]
    pub(crate) fn newest_hint(&self) -> Timestamp {
        self.last_t.load(Ordering::Acquire)
    }

    /// Publishes the newest timestamp; called with the data lock held, after appending.
    #[inline]
    pub(crate) fn publish_newest(&self, t: Timestamp) {
        self.last_t.store(t, Ordering::Release);
    }
}

/// How a sample relates to the newest sample of a series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Order {
    /// Newer than everything: append it.
    Newer,
    /// Same timestamp and bit-identical value: accept silently, store nothing.
    SameSample,
    /// Same timestamp, different value.
    Duplicate,
    /// Older than the newest sample.
    Older,
}

/// Classifies sample `(t, v_bits)` against the last sample `last` (if any).
#[inline]
pub(crate) fn classify(last: Option<(Timestamp, u64)>, t: Timestamp, v_bits: u64) -> Order {
    match last {
        None => Order::Newer,
        Some((lt, _)) if t > lt => Order::Newer,
        Some((lt, lv)) if t == lt => {
            if lv == v_bits {
                Order::SameSample
            } else {
                Order::Duplicate
            }
        }
        Some(_) => Order::Older,
    }
}

/// The mutable part of a series.
///
/// Every series of the head holds one, so it is packed: the full chunks are a boxed
/// slice (a chunk is cut every [`MAX_SAMPLES_PER_CHUNK`] samples, so reallocating it
/// then costs little and no spare capacity is kept), and the newest sample is two
/// words and a flag rather than an `Option` with its padding.
///
/// The fields an append touches come first, the full chunks (touched once per chunk)
/// last; see [`MemSeries`].
#[repr(C)]
pub(crate) struct SeriesData {
    /// The chunk being appended to.
    open: XorChunk,
    /// Timestamp and value bits of the newest sample, when `has_last`.
    last_t: Timestamp,
    last_v: u64,
    has_last: bool,
    /// Whether the series' labels have been written to the WAL.
    pub(crate) logged: bool,
    /// Full chunks, oldest first.
    chunks: Box<[ChunkData]>,
}

impl SeriesData {
    pub(crate) fn new() -> Self {
        SeriesData {
            chunks: Box::default(),
            open: XorChunk::new(),
            last_t: 0,
            last_v: 0,
            has_last: false,
            logged: false,
        }
    }

    /// The newest sample's timestamp and value bits.
    #[inline]
    pub(crate) fn last(&self) -> Option<(Timestamp, u64)> {
        self.has_last.then_some((self.last_t, self.last_v))
    }

    /// Reads the parts of the series an append writes (the newest sample and the end of
    /// the open chunk's bytes) and returns a value depending on them, so that a
    /// caller can load many series' data into the cache with loads the CPU overlaps.
    #[inline]
    pub(crate) fn touch(&self) -> u64 {
        self.open.touch() ^ self.last_v ^ u64::from(self.has_last) ^ self.open.num_samples() as u64
    }

    /// Appends a sample the caller has checked is newer than [`Self::last`]. Cuts a new
    /// chunk when the open one holds [`MAX_SAMPLES_PER_CHUNK`] samples.
    #[inline]
    pub(crate) fn append(&mut self, t: Timestamp, v: f64) {
        if self.open.num_samples() >= MAX_SAMPLES_PER_CHUNK {
            self.cut();
        }
        self.open.append(t, v);
        self.last_t = t;
        self.last_v = v.to_bits();
        self.has_last = true;
    }

    /// Moves the open chunk to the full ones (a copy of exactly its size; the open
    /// chunk keeps its buffer for the next samples).
    #[cold]
    #[inline(never)]
    fn cut(&mut self) {
        let full = self.open.freeze();
        self.open.reset();
        let mut chunks = std::mem::take(&mut self.chunks).into_vec();
        chunks.reserve_exact(1);
        chunks.push(full);
        self.chunks = chunks.into_boxed_slice();
    }

    /// The oldest sample's timestamp.
    pub(crate) fn min_time(&self) -> Option<Timestamp> {
        match self.chunks.first() {
            Some(c) => Some(c.min_time()),
            None => self.open.min_time(),
        }
    }

    /// Whether any sample lies in `[mint, maxt]` — approximately: true when the series'
    /// time span overlaps the range.
    pub(crate) fn overlaps(&self, mint: Timestamp, maxt: Timestamp) -> bool {
        match (self.min_time(), self.last()) {
            (Some(lo), Some((hi, _))) => lo <= maxt && hi >= mint,
            _ => false,
        }
    }

    /// Whether at least one sample lies in `[mint, maxt]`. Decodes at most the chunks
    /// straddling the range's ends.
    pub(crate) fn has_samples_in(&self, mint: Timestamp, maxt: Timestamp) -> bool {
        if !self.overlaps(mint, maxt) {
            return false;
        }
        for c in self.chunks.iter() {
            let (lo, hi) = (c.min_time(), c.max_time());
            if hi < mint || lo > maxt {
                continue;
            }
            if (lo >= mint && hi <= maxt) || c.iter().seek(mint).is_some_and(|s| s.t <= maxt) {
                return true;
            }
        }
        match (self.open.min_time(), self.open.max_time()) {
            (Some(lo), Some(hi)) if hi >= mint && lo <= maxt => {
                (lo >= mint && hi <= maxt)
                    || self.open.iter().seek(mint).is_some_and(|s| s.t <= maxt)
            }
            _ => false,
        }
    }

    /// Drops every sample older than `t`: whole chunks ending before it, and the older
    /// part of a chunk straddling it (re-encoded). The newest sample is remembered even
    /// when nothing is left, so ordering checks stay intact. Returns whether any sample
    /// remains.
    pub(crate) fn truncate_before(&mut self, t: Timestamp) -> bool {
        if self.chunks.iter().any(|c| c.max_time() < t) {
            let mut chunks = std::mem::take(&mut self.chunks).into_vec();
            chunks.retain(|c| c.max_time() >= t);
            self.chunks = chunks.into_boxed_slice();
        }
        if let Some(first) = self.chunks.first_mut() {
            if first.min_time() < t {
                let mut c = XorChunk::new();
                for s in first.iter().filter(|s| s.t >= t) {
                    c.append(s.t, s.v);
                }
                *first = c.freeze();
            }
        }
        if self.open.min_time().is_some_and(|lo| lo < t) {
            let mut c = XorChunk::new();
            for s in self.open.iter().filter(|s| s.t >= t) {
                c.append(s.t, s.v);
            }
            self.open = c;
        }
        self.min_time().is_some()
    }

    /// Number of chunks, the open one included when it has samples.
    pub(crate) fn num_chunks(&self) -> usize {
        self.chunks.len() + usize::from(self.open.num_samples() > 0)
    }

    /// Immutable copies of the chunks overlapping `[mint, maxt]`, oldest first.
    pub(crate) fn chunks_in(&self, mint: Timestamp, maxt: Timestamp) -> Vec<SeriesChunk> {
        let mut out = Vec::new();
        for c in self.chunks.iter() {
            if c.max_time() >= mint && c.min_time() <= maxt {
                out.push(SeriesChunk::Xor(c.clone()));
            }
        }
        if let (Some(lo), Some(hi)) = (self.open.min_time(), self.open.max_time()) {
            if hi >= mint && lo <= maxt {
                out.push(SeriesChunk::Xor(self.open.freeze()));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every series of the head holds these; a change of their size shows here.
    #[test]
    fn struct_sizes() {
        use std::mem::size_of;
        // bit writer 32, four words, the count, the XOR window and the mode flag
        assert_eq!(size_of::<XorChunk>(), 72);
        // the open chunk 72, the newest sample 16, two flags (padded to 8), full chunks 16
        assert_eq!(size_of::<SeriesData>(), 112);
        // published timestamp 8, the mutex 8 and the data, reference 8, labels 16
        assert_eq!(size_of::<MemSeries>(), 152);
    }

    #[test]
    fn classify_rules() {
        let last = Some((10, 1.5f64.to_bits()));
        assert_eq!(classify(None, 5, 0), Order::Newer);
        assert_eq!(classify(last, 11, 0), Order::Newer);
        assert_eq!(classify(last, 10, 1.5f64.to_bits()), Order::SameSample);
        assert_eq!(classify(last, 10, 2.0f64.to_bits()), Order::Duplicate);
        assert_eq!(classify(last, 9, 1.5f64.to_bits()), Order::Older);
        // NaN payloads are compared by bits
        let nan = Some((10, f64::NAN.to_bits()));
        assert_eq!(classify(nan, 10, f64::NAN.to_bits()), Order::SameSample);
        assert_eq!(
            classify(nan, 10, crate::model::STALE_NAN_BITS),
            Order::Duplicate
        );
    }

    #[test]
    fn cuts_chunks_at_max_samples() {
        let mut d = SeriesData::new();
        let n = MAX_SAMPLES_PER_CHUNK as i64;
        for t in 0..n {
            d.append(t, t as f64);
        }
        assert_eq!(d.num_chunks(), 1);
        assert_eq!(d.chunks.len(), 0);
        d.append(n, 0.0);
        assert_eq!(d.chunks.len(), 1);
        assert_eq!(d.num_chunks(), 2);
        let first = d.chunks.first().unwrap();
        assert_eq!(first.num_samples(), MAX_SAMPLES_PER_CHUNK);
        assert_eq!(first.min_time(), 0);
        assert_eq!(first.max_time(), n - 1);
        for t in n + 1..3 * n + 1 {
            d.append(t, 1.0);
        }
        assert_eq!(d.chunks.len(), 3);
        assert_eq!(d.open.num_samples(), 1);
        assert_eq!(d.min_time(), Some(0));
        assert_eq!(d.last().map(|l| l.0), Some(3 * n));
        // a range touching only the second chunk returns just that chunk
        let got = d.chunks_in(n + 5, n + 6);
        assert_eq!(got.len(), 1);
    }
}
