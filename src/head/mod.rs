//! The head: the in-memory, writable block holding the most recent samples.
//!
//! Series live in a registry sharded both by reference and by label hash, each series
//! behind its own mutex, with Gorilla-compressed chunks cut every
//! [`crate::chunk::MAX_SAMPLES_PER_CHUNK`] samples. An inverted index of roaring
//! bitmaps ([`MemPostings`]) answers label matchers.
//!
//! Series references are `u64` ids handed out in increasing order starting at 1. The
//! postings index stores them as `u32`, so one head holds at most `u32::MAX` series
//! over its lifetime; creating more fails with [`AppendError::TooManySeries`].
//!
//! Samples are accepted as Prometheus does with out-of-order ingestion disabled: a
//! sample older than its series' newest sample is rejected
//! ([`AppendError::OutOfOrder`]); one at the same timestamp is accepted silently when
//! its value is bit-identical (and not stored twice) and rejected otherwise
//! ([`AppendError::DuplicateSample`]); a sample older than the head's appendable window
//! is rejected ([`AppendError::OutOfBounds`]). The window is Prometheus's: when an
//! appender is created its lower bound is the head's newest timestamp minus half the
//! block range (`block_range_ms`, two hours by default); on an empty head the bound is
//! set by the first sample the appender receives. The window is checked first, so an
//! out-of-bounds sample never creates a series. Labels with an empty value are dropped
//! before a series is looked up (Prometheus treats them as absent).
//!
//! Rejections are returned per sample by [`Appender::append`] and
//! [`Appender::append_ref`], never abort the batch, and are counted in [`HeadStats`].
//! A commit locks the batch's series (in reference order), re-checks the samples
//! against what concurrent commits stored meanwhile, writes one WAL entry, applies the
//! samples and unlocks: each series' samples reach the WAL in the order they are
//! applied in memory, so replay rebuilds exactly the same head. Queries only lock one
//! series at a time and may wait for a commit touching it.
//!
//! Only series with at least one sample in the queried range are returned by
//! [`Head::select`], [`Head::label_names`] and [`Head::label_values`]; series created
//! by a rolled-back batch hold no samples and stay invisible (and are not logged).

mod appender;
mod cardinality;
mod postings;
mod replay;
mod series;
mod series_cache;
mod truncate;

use std::collections::{BTreeSet, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

pub(crate) use appender::StrictCommitError;
pub use appender::{Appender, CommitStats};
pub use cardinality::Cardinality;
pub use postings::MemPostings;
pub(crate) use replay::Replay;
pub use replay::ReplayOutcome;
pub use truncate::TruncateStats;

use crate::model::{LabelError, Labels, Matcher, Timestamp};
use crate::storage::Series;
use series::MemSeries;

/// Identifies a series in the head: handed out in increasing order from 1, stable for
/// the series' life in the head and across restarts (the WAL records it).
pub type SeriesRef = u64;

/// Default block range: two hours in milliseconds.
pub const DEFAULT_BLOCK_RANGE_MS: i64 = 2 * 60 * 60 * 1000;

/// Number of registry shards (a power of two).
const SHARDS: usize = 128;

/// Source of [`Head::id`].
static NEXT_HEAD_ID: AtomicU64 = AtomicU64::new(1);

/// A hold on one series of the head, for a caller that appends to the same series
/// again and again (a target's scrape cache): [`Appender::append_handle`] goes
/// straight to the series, without the lookup by reference. While a handle exists
/// the series stays in the head ([`Head::truncate_before`] only removes series nobody
/// holds), so a handle never goes stale. It belongs to one head (see [`Head::id`])
/// and must not be passed to an appender of another.
#[derive(Clone)]
pub(crate) struct SeriesHandle {
    series: Arc<MemSeries>,
    /// A copy of the series' reference: reading it from the series would be one more
    /// cache miss per append (it lies past the lines an append touches).
    series_ref: SeriesRef,
}

impl std::fmt::Debug for SeriesHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("SeriesHandle")
            .field(&self.series_ref)
            .finish()
    }
}

impl SeriesHandle {
    /// The series' reference.
    #[inline]
    pub(crate) fn series_ref(&self) -> SeriesRef {
        self.series_ref
    }

    #[inline]
    pub(crate) fn series(&self) -> &Arc<MemSeries> {
        &self.series
    }

    /// Reads the words an append and a commit touch first (the reference count, the
    /// published newest timestamp and the lock), so that the memory is on its way
    /// into the CPU cache before it is needed. Touching a few series ahead at once lets
    /// their cache misses overlap instead of being paid one after the other.
    #[inline]
    pub(crate) fn touch(&self) {
        std::hint::black_box(Arc::strong_count(&self.series));
        std::hint::black_box(self.series.newest_hint());
        std::hint::black_box(self.series.data.is_locked());
    }
}

/// A sample or series was not accepted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum AppendError {
    /// The label set is invalid.
    #[error("invalid labels: {0}")]
    InvalidLabels(#[from] LabelError),
    /// No series with this reference exists.
    #[error("unknown series reference {0}")]
    UnknownRef(SeriesRef),
    /// The sample is older than the newest sample of its series.
    #[error(
        "out of order sample: timestamp {t} is older than the series' newest sample at {max_t}"
    )]
    OutOfOrder {
        /// The rejected timestamp.
        t: Timestamp,
        /// The series' newest timestamp.
        max_t: Timestamp,
    },
    /// A different value at a timestamp the series already has.
    #[error("duplicate sample for timestamp {t} with a different value")]
    DuplicateSample {
        /// The timestamp.
        t: Timestamp,
    },
    /// The sample is older than the head accepts.
    #[error("out of bounds: timestamp {t} is older than the appendable minimum {min_valid}")]
    OutOfBounds {
        /// The rejected timestamp.
        t: Timestamp,
        /// The oldest timestamp the appender accepts.
        min_valid: Timestamp,
    },
    /// The sample would create a series beyond the head's series limit
    /// (`--storage.tsdb.head-series-limit`); samples of existing series are unaffected.
    #[error("head series limit reached: the head holds the maximum of {limit} series, new series are rejected")]
    SeriesLimit {
        /// The limit.
        limit: u64,
    },
    /// The head has handed out every series reference its index can hold.
    #[error("too many series: the head's index holds at most {} series", u32::MAX)]
    TooManySeries,
}

/// The head as a whole failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeadError {
    /// A WAL replay worker thread panicked.
    #[error("a WAL replay worker failed")]
    ReplayWorker,
}

/// Options of the head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadOptions {
    /// Block range in milliseconds; samples older than the head's newest timestamp minus
    /// half of it are out of bounds.
    pub block_range_ms: i64,
    /// Most series the head holds; appends that would create more are rejected with
    /// [`AppendError::SeriesLimit`]. 0 means no limit. Concurrent appenders may overshoot
    /// it by at most one series each; WAL replay is never limited.
    pub max_series: u64,
}

impl Default for HeadOptions {
    fn default() -> Self {
        HeadOptions {
            block_range_ms: DEFAULT_BLOCK_RANGE_MS,
            max_series: 0,
        }
    }
}

/// Counters and gauges describing the head.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HeadStats {
    /// Series in the head.
    pub num_series: u64,
    /// Samples stored since the head was opened (replayed ones included).
    pub samples_appended: u64,
    /// Samples rejected as out of order.
    pub out_of_order: u64,
    /// Samples rejected as duplicates with a different value.
    pub duplicate: u64,
    /// Samples rejected as out of bounds.
    pub out_of_bounds: u64,
    /// Samples rejected because they would have created a series beyond the limit.
    pub series_limited: u64,
    /// Oldest sample timestamp, if any sample is stored.
    pub min_time: Option<Timestamp>,
    /// Newest sample timestamp, if any sample is stored.
    pub max_time: Option<Timestamp>,
}

/// A fast hasher for `u64` keys that are already well spread (references, hashes).
#[derive(Default, Clone, Copy)]
pub(crate) struct U64Hasher(u64);

impl Hasher for U64Hasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_u64(&mut self, x: u64) {
        let h = x.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        self.0 = h ^ (h >> 29);
    }
}

/// `HashMap` keyed by `u64` with [`U64Hasher`].
pub(crate) type U64Map<V> = HashMap<u64, V, BuildHasherDefault<U64Hasher>>;

const MIX: u64 = 0x9e37_79b9_7f4a_7c15;

/// Folds `bytes` into `h` eight bytes at a time.
#[inline]
fn mix_bytes(mut h: u64, bytes: &[u8]) -> u64 {
    let mut words = bytes.chunks_exact(8);
    for w in words.by_ref() {
        let mut a = [0u8; 8];
        a.copy_from_slice(w);
        h = (h.rotate_left(23) ^ u64::from_le_bytes(a)).wrapping_mul(MIX);
    }
    let rest = words.remainder();
    let mut a = [0u8; 8];
    if let Some(dst) = a.get_mut(..rest.len()) {
        dst.copy_from_slice(rest);
    }
    // the length separates "ab" + "c" from "a" + "bc"
    let tail = u64::from_le_bytes(a) ^ ((bytes.len() as u64) << 56);
    (h.rotate_left(23) ^ tail).wrapping_mul(MIX)
}

/// The head's hash of a label set, for its label-hash shards: word-at-a-time, much
/// cheaper than [`Labels::stable_hash`]'s byte-wise FNV on long label sets. Only ever
/// compared within one process.
#[inline]
pub(crate) fn label_hash(labels: &Labels) -> u64 {
    packed_hash(labels.packed())
}

/// [`label_hash`] of a label set's packed text ([`Labels::packed`]): the packed form is
/// canonical and length-prefixed, so hashing it whole is hashing the pairs.
#[inline]
fn packed_hash(text: &str) -> u64 {
    let mut h = mix_bytes(0, text.as_bytes());
    h ^= h >> 29;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^ (h >> 32)
}

/// A hasher for string keys (postings) built on the same mixing.
#[derive(Default, Clone, Copy)]
pub(crate) struct StrHasher(u64);

impl Hasher for StrHasher {
    fn finish(&self) -> u64 {
        let h = self.0 ^ (self.0 >> 29);
        h.wrapping_mul(0xbf58_476d_1ce4_e5b9) ^ (h >> 32)
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0 = mix_bytes(self.0, bytes);
    }
    fn write_u8(&mut self, b: u8) {
        self.0 = (self.0.rotate_left(23) ^ u64::from(b)).wrapping_mul(MIX);
    }
}

/// `HashMap` keyed by strings with [`StrHasher`].
pub(crate) type StrMap<K, V> = HashMap<K, V, BuildHasherDefault<StrHasher>>;

#[derive(Default)]
struct Counters {
    samples_appended: AtomicU64,
    out_of_order: AtomicU64,
    duplicate: AtomicU64,
    out_of_bounds: AtomicU64,
    series_limited: AtomicU64,
}

/// One shard of the reference → series map, at the slot [`ref_slot`] gives.
/// References are dense, so a vector beats a hash map (one cache miss per lookup).
type RefShard = RwLock<Vec<Option<Arc<MemSeries>>>>;
/// One shard of the label hash → series map (a hash may collide).
type HashShard = RwLock<U64Map<HashBucket>>;

/// The series sharing one label hash: almost always exactly one, held without an
/// allocation of its own. The rare list of colliding series is a boxed slice (no
/// spare capacity), which keeps an entry of the hash shard at 24 bytes rather than 40.
enum HashBucket {
    One(Arc<MemSeries>),
    Many(Box<[Arc<MemSeries>]>),
}

impl Default for HashBucket {
    fn default() -> Self {
        HashBucket::Many(Box::default())
    }
}

/// Adds `s` under `hash`.
fn bucket_push(map: &mut U64Map<HashBucket>, hash: u64, s: Arc<MemSeries>) {
    match map.entry(hash) {
        std::collections::hash_map::Entry::Vacant(e) => {
            e.insert(HashBucket::One(s));
        }
        std::collections::hash_map::Entry::Occupied(mut e) => e.get_mut().push(s),
    }
}

impl HashBucket {
    fn iter(&self) -> std::slice::Iter<'_, Arc<MemSeries>> {
        match self {
            HashBucket::One(s) => std::slice::from_ref(s).iter(),
            HashBucket::Many(v) => v.iter(),
        }
    }

    fn push(&mut self, s: Arc<MemSeries>) {
        match self {
            HashBucket::Many(v) if v.is_empty() => *self = HashBucket::One(s),
            HashBucket::Many(v) => {
                let mut list = std::mem::take(v).into_vec();
                list.push(s);
                *v = list.into_boxed_slice();
            }
            HashBucket::One(a) => *self = HashBucket::Many(Box::new([Arc::clone(a), s])),
        }
    }

    fn retain(&mut self, keep: impl FnMut(&Arc<MemSeries>) -> bool) {
        let mut v = match std::mem::take(self) {
            HashBucket::One(s) => vec![s],
            HashBucket::Many(v) => v.into_vec(),
        };
        v.retain(keep);
        *self = match v.pop() {
            Some(s) if v.is_empty() => HashBucket::One(s),
            Some(s) => {
                v.push(s);
                HashBucket::Many(v.into_boxed_slice())
            }
            None => HashBucket::Many(Box::default()),
        };
    }

    fn is_empty(&self) -> bool {
        matches!(self, HashBucket::Many(v) if v.is_empty())
    }
}

/// The in-memory head block. `Send + Sync`; appenders and queriers borrow it.
pub struct Head {
    /// Unique within the process: tells [`SeriesHandle`]s of different heads apart.
    id: u64,
    opts: HeadOptions,
    by_ref: Box<[RefShard]>,
    by_hash: Box<[HashShard]>,
    postings: RwLock<MemPostings>,
    next_ref: AtomicU64,
    num_series: AtomicU64,
    min_time: AtomicI64,
    max_time: AtomicI64,
    /// Samples older than this are out of bounds: their range is persisted in a block.
    append_floor: AtomicI64,
    /// Raised by every truncation: appender threads then drop the series they cached
    /// from earlier batches (see `series_cache`), so the truncation after can remove
    /// those left without samples.
    gc_epoch: AtomicU64,
    /// Series the last truncation left without samples but could not remove, retried
    /// by [`Self::collect_kept`].
    kept_empty: Mutex<Vec<Arc<MemSeries>>>,
    counters: Counters,
}

impl Drop for Head {
    fn drop(&mut self) {
        // Other threads' caches let go of this head's series when they next append
        // (to another head) or end.
        appender::drop_thread_cache(self.id);
    }
}

impl std::fmt::Debug for Head {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Head")
            .field("opts", &self.opts)
            .field("stats", &self.stats())
            .finish()
    }
}

/// Consecutive references share a shard of [`Head::by_ref`] in runs of this many (64
/// bytes of slots, one or two cache lines), so that appending to series in reference
/// order (as scrapes and bulk loads do) reads a line of slots per run rather than one
/// per series.
const REF_RUN: u64 = 8;

/// The shard of [`Head::by_ref`] holding reference `r` (for [`shard`]) and its slot
/// there.
#[inline]
fn ref_slot(r: SeriesRef) -> (u64, Option<usize>) {
    let run = r / REF_RUN;
    let slot = (run / SHARDS as u64) * REF_RUN + r % REF_RUN;
    (run, usize::try_from(slot).ok())
}

/// Picks shard `i` (masked to the shard count) from a full shard array.
#[inline]
fn shard<T>(shards: &[T], i: u64) -> &T {
    // The arrays always hold `SHARDS` entries and the index is masked to that power
    // of two, so the fallback to the first shard is never taken.
    let idx = (i as usize) & (SHARDS - 1);
    match shards.get(idx) {
        Some(s) => s,
        None => shards.first().unwrap_or_else(|| unreachable_shard()),
    }
}

#[cold]
fn unreachable_shard() -> ! {
    unreachable!("shard arrays are never empty")
}

impl Head {
    /// An empty head.
    pub fn new(opts: HeadOptions) -> Self {
        Head {
            id: NEXT_HEAD_ID.fetch_add(1, Ordering::Relaxed),
            opts,
            by_ref: (0..SHARDS).map(|_| RwLock::default()).collect(),
            by_hash: (0..SHARDS).map(|_| RwLock::default()).collect(),
            postings: RwLock::new(MemPostings::new()),
            next_ref: AtomicU64::new(1),
            num_series: AtomicU64::new(0),
            min_time: AtomicI64::new(i64::MAX),
            max_time: AtomicI64::new(i64::MIN),
            append_floor: AtomicI64::new(i64::MIN),
            gc_epoch: AtomicU64::new(0),
            kept_empty: Mutex::new(Vec::new()),
            counters: Counters::default(),
        }
    }

    /// An identifier of this head, unique within the process.
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// The number of truncations so far: the epoch of appender threads' series caches.
    #[inline]
    pub(crate) fn gc_epoch(&self) -> u64 {
        self.gc_epoch.load(Ordering::Acquire)
    }

    /// A handle on the series with reference `r`, if it exists.
    pub(crate) fn handle(&self, r: SeriesRef) -> Option<SeriesHandle> {
        self.series_by_ref(r).map(|series| SeriesHandle {
            series_ref: series.series_ref,
            series,
        })
    }

    /// The options the head was built with.
    pub fn options(&self) -> HeadOptions {
        self.opts
    }

    /// An appender that keeps samples in memory only (no WAL). Used by tests and by
    /// callers that want a volatile store.
    pub fn appender(&self) -> Appender<'_> {
        Appender::new(self, None)
    }

    /// Current counters.
    pub fn stats(&self) -> HeadStats {
        let min = self.min_time.load(Ordering::Acquire);
        let max = self.max_time.load(Ordering::Acquire);
        HeadStats {
            num_series: self.num_series.load(Ordering::Relaxed),
            samples_appended: self.counters.samples_appended.load(Ordering::Relaxed),
            out_of_order: self.counters.out_of_order.load(Ordering::Relaxed),
            duplicate: self.counters.duplicate.load(Ordering::Relaxed),
            out_of_bounds: self.counters.out_of_bounds.load(Ordering::Relaxed),
            series_limited: self.counters.series_limited.load(Ordering::Relaxed),
            min_time: (min != i64::MAX).then_some(min),
            max_time: (max != i64::MIN).then_some(max),
        }
    }

    /// The newest sample timestamp, if any.
    pub fn max_time(&self) -> Option<Timestamp> {
        let max = self.max_time.load(Ordering::Acquire);
        (max != i64::MIN).then_some(max)
    }

    /// The reference of the series with exactly these labels, if it exists.
    pub fn series_ref(&self, labels: &Labels) -> Option<SeriesRef> {
        let hash = label_hash(labels);
        let map = shard(&self.by_hash, hash).read();
        map.get(&hash)?
            .iter()
            .find(|s| &s.labels == labels)
            .map(|s| s.series_ref)
    }

    /// The reference of the series with exactly the labels `pairs` (sorted by name,
    /// names unique), if it exists. Lets a decoder find a series from borrowed label
    /// data without building a [`Labels`]: `scratch` receives their packed text.
    pub fn series_ref_by_pairs(
        &self,
        pairs: &[(&str, &str)],
        scratch: &mut String,
    ) -> Option<SeriesRef> {
        Labels::pack_into(scratch, pairs.iter().copied());
        let hash = packed_hash(scratch);
        let map = shard(&self.by_hash, hash).read();
        map.get(&hash)?
            .iter()
            .find(|s| s.labels.packed() == scratch.as_str())
            .map(|s| s.series_ref)
    }

    /// The series with exactly these labels, if it exists.
    pub(crate) fn lookup(&self, labels: &Labels) -> Option<Arc<MemSeries>> {
        let hash = label_hash(labels);
        let map = shard(&self.by_hash, hash).read();
        map.get(&hash)?
            .iter()
            .find(|s| &s.labels == labels)
            .cloned()
    }

    #[inline]
    pub(crate) fn series_by_ref(&self, r: u64) -> Option<Arc<MemSeries>> {
        let (sh, slot) = ref_slot(r);
        shard(&self.by_ref, sh).read().get(slot?)?.clone()
    }

    /// The series with reference `r` and its [`MemSeries::newest_hint`], read before
    /// the reference count is raised so the two memory accesses can overlap.
    #[inline]
    pub(crate) fn series_and_hint(&self, r: u64) -> Option<(Arc<MemSeries>, Timestamp)> {
        let (sh, slot) = ref_slot(r);
        let shard = shard(&self.by_ref, sh).read();
        let s = shard.get(slot?)?.as_ref()?;
        let hint = s.newest_hint();
        Some((Arc::clone(s), hint))
    }

    /// The series with `labels` (which must be validated, without empty values),
    /// created when missing. Returns whether it was created.
    pub(crate) fn get_or_create(
        &self,
        labels: &Labels,
    ) -> Result<(Arc<MemSeries>, bool), AppendError> {
        let hash = label_hash(labels);
        let lock = shard(&self.by_hash, hash);
        if let Some(s) = lock
            .read()
            .get(&hash)
            .and_then(|v| v.iter().find(|s| &s.labels == labels))
        {
            return Ok((Arc::clone(s), false));
        }
        let mut map = lock.write();
        if let Some(s) = map
            .get(&hash)
            .and_then(|v| v.iter().find(|s| &s.labels == labels))
        {
            return Ok((Arc::clone(s), false));
        }
        let limit = self.opts.max_series;
        if limit > 0 && self.num_series.load(Ordering::Relaxed) >= limit {
            self.counters.series_limited.fetch_add(1, Ordering::Relaxed);
            return Err(AppendError::SeriesLimit { limit });
        }
        let r = self.next_ref.fetch_add(1, Ordering::Relaxed);
        let id = u32::try_from(r).map_err(|_| AppendError::TooManySeries)?;
        let s = Arc::new(MemSeries::new(r, labels.clone()));
        self.insert(id, Arc::clone(&s));
        bucket_push(&mut map, hash, Arc::clone(&s));
        Ok((s, true))
    }

    /// Registers replayed series with unique labels and references, not yet in the
    /// head. Their postings follow with [`Self::install_postings`].
    ///
    /// `series` gives each series with its label hash and reference; it is consumed
    /// lazily, so a caller that builds each series in the iterator has it still in the
    /// cache when its reference count is raised here.
    pub(crate) fn install_series(
        &self,
        series: impl ExactSizeIterator<Item = (u64, SeriesRef, Arc<MemSeries>)>,
    ) {
        let n = series.len() as u64;
        // Group by shard first, so each shard is locked and grown once.
        let mut by_ref: Vec<Vec<(SeriesRef, Arc<MemSeries>)>> =
            (0..SHARDS).map(|_| Vec::new()).collect();
        let mut by_hash: Vec<Vec<(u64, Arc<MemSeries>)>> =
            (0..SHARDS).map(|_| Vec::new()).collect();
        for (hash, r, s) in series {
            if let Some(v) = by_ref.get_mut((ref_slot(r).0 as usize) & (SHARDS - 1)) {
                v.push((r, Arc::clone(&s)));
            }
            if let Some(v) = by_hash.get_mut((hash as usize) & (SHARDS - 1)) {
                v.push((hash, s));
            }
        }
        for (i, list) in by_ref.into_iter().enumerate() {
            let Some(top) = list.iter().filter_map(|&(r, _)| ref_slot(r).1).max() else {
                continue;
            };
            let mut v = shard(&self.by_ref, i as u64).write();
            if v.len() <= top {
                v.resize(top + 1, None);
            }
            for (r, s) in list {
                if let Some(x) = ref_slot(r).1.and_then(|slot| v.get_mut(slot)) {
                    *x = Some(s);
                }
            }
        }
        for (i, list) in by_hash.into_iter().enumerate() {
            if list.is_empty() {
                continue;
            }
            let mut map = shard(&self.by_hash, i as u64).write();
            map.reserve(list.len());
            for (hash, s) in list {
                bucket_push(&mut map, hash, s);
            }
        }
        self.num_series.fetch_add(n, Ordering::Relaxed);
    }

    /// Adds the postings of series registered by [`Self::install_series`].
    pub(crate) fn install_postings(&self, postings: MemPostings) {
        self.postings.write().merge(postings);
    }

    /// Registers `s` under its reference and in the postings. The caller holds the hash
    /// shard (or has exclusive access) and adds it there.
    fn insert(&self, id: u32, s: Arc<MemSeries>) {
        let r = s.series_ref;
        let labels = s.labels.clone();
        if let (sh, Some(slot)) = ref_slot(r) {
            let mut v = shard(&self.by_ref, sh).write();
            if v.len() <= slot {
                v.resize(slot + 1, None);
            }
            if let Some(x) = v.get_mut(slot) {
                *x = Some(s);
            }
        }
        self.postings.write().add(id, &labels);
        self.num_series.fetch_add(1, Ordering::Relaxed);
    }

    /// Records a committed time range and sample count.
    pub(crate) fn note_appended(&self, n: u64, mint: Timestamp, maxt: Timestamp) {
        if n == 0 {
            return;
        }
        self.counters
            .samples_appended
            .fetch_add(n, Ordering::Relaxed);
        self.min_time.fetch_min(mint, Ordering::AcqRel);
        self.max_time.fetch_max(maxt, Ordering::AcqRel);
    }

    pub(crate) fn note_rejected(&self, out_of_order: u64, duplicate: u64, out_of_bounds: u64) {
        if out_of_order > 0 {
            self.counters
                .out_of_order
                .fetch_add(out_of_order, Ordering::Relaxed);
        }
        if duplicate > 0 {
            self.counters
                .duplicate
                .fetch_add(duplicate, Ordering::Relaxed);
        }
        if out_of_bounds > 0 {
            self.counters
                .out_of_bounds
                .fetch_add(out_of_bounds, Ordering::Relaxed);
        }
    }

    /// The series matching `matchers` (see [`MemPostings::postings_for_matchers`])
    /// that have samples in `[mint, maxt]`, sorted by labels, with their chunks.
    pub fn select(&self, matchers: &[Matcher], mint: Timestamp, maxt: Timestamp) -> Vec<Series> {
        let ids = self.postings.read().postings_for_matchers(matchers);
        let mut out = Vec::new();
        for id in ids.iter() {
            let Some(s) = self.series_by_ref(u64::from(id)) else {
                continue;
            };
            let chunks = {
                let d = s.data.lock();
                if !d.has_samples_in(mint, maxt) {
                    continue;
                }
                d.chunks_in(mint, maxt)
            };
            out.push(Series::new(s.labels.clone(), chunks, mint, maxt));
        }
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        out
    }

    /// Series matching `matchers` whose samples overlap `[mint, maxt]`.
    fn matching_series(
        &self,
        matchers: &[Matcher],
        mint: Timestamp,
        maxt: Timestamp,
    ) -> Vec<Arc<MemSeries>> {
        let ids = self.postings.read().postings_for_matchers(matchers);
        ids.iter()
            .filter_map(|id| self.series_by_ref(u64::from(id)))
            .filter(|s| s.data.lock().has_samples_in(mint, maxt))
            .collect()
    }

    /// Sorted label names of the series matching `matchers` with samples in
    /// `[mint, maxt]`.
    pub fn label_names(
        &self,
        matchers: &[Matcher],
        mint: Timestamp,
        maxt: Timestamp,
    ) -> Vec<String> {
        let mut names = BTreeSet::new();
        for s in self.matching_series(matchers, mint, maxt) {
            for l in &s.labels {
                if !names.contains(l.name) {
                    names.insert(l.name.to_string());
                }
            }
        }
        names.into_iter().collect()
    }

    /// Sorted distinct values of label `name` over the series matching `matchers` with
    /// samples in `[mint, maxt]`.
    pub fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
        mint: Timestamp,
        maxt: Timestamp,
    ) -> Vec<String> {
        if matchers.is_empty() {
            // Walk the index: a value counts when any of its series has data in range.
            let candidates: Vec<(String, roaring::RoaringBitmap)> = {
                let p = self.postings.read();
                p.values(name)
                    .map(|(v, bm)| (v.to_string(), bm.clone()))
                    .collect()
            };
            let mut out: Vec<String> = candidates
                .into_iter()
                .filter(|(_, ids)| {
                    ids.iter().any(|id| {
                        self.series_by_ref(u64::from(id))
                            .is_some_and(|s| s.data.lock().has_samples_in(mint, maxt))
                    })
                })
                .map(|(v, _)| v)
                .collect();
            out.sort();
            return out;
        }
        let mut values = BTreeSet::new();
        for s in self.matching_series(matchers, mint, maxt) {
            if let Some(v) = s.labels.get(name) {
                if !values.contains(v) {
                    values.insert(v.to_string());
                }
            }
        }
        values.into_iter().collect()
    }
}

/// Drops labels with an empty value: Prometheus treats them as absent.
pub(crate) fn normalize_labels(labels: &Labels) -> Option<Labels> {
    if labels.iter().any(|l| l.value.is_empty()) {
        Some(labels.filter(|l| !l.value.is_empty()))
    } else {
        None
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod registry_tests {
    use super::*;

    /// Every series has an entry in a hash shard; a change of its size shows here.
    #[test]
    fn hash_entry_size() {
        assert_eq!(std::mem::size_of::<(u64, HashBucket)>(), 24);
    }

    #[test]
    fn colliding_buckets_keep_every_series() {
        let a = Arc::new(MemSeries::new(1, Labels::from_pairs(&[("a", "1")])));
        let b = Arc::new(MemSeries::new(2, Labels::from_pairs(&[("a", "2")])));
        let mut map = U64Map::default();
        bucket_push(&mut map, 7, Arc::clone(&a));
        bucket_push(&mut map, 7, Arc::clone(&b));
        let refs = |m: &U64Map<HashBucket>| -> Vec<u64> {
            m.get(&7)
                .map(|x| x.iter().map(|s| s.series_ref).collect())
                .unwrap_or_default()
        };
        assert_eq!(refs(&map), vec![1, 2]);
        if let Some(x) = map.get_mut(&7) {
            x.retain(|s| s.series_ref != 1);
        }
        assert_eq!(refs(&map), vec![2]);
        if let Some(x) = map.get_mut(&7) {
            x.retain(|_| false);
            assert!(x.is_empty());
        }
    }
}
