//! Rebuilding the head from WAL records.
//!
//! [`Replay`] receives the records in WAL order on the reading thread, which decodes
//! them. Each label set is hashed once: by the only worker when there is one (decoding
//! keeps the reader the busier of the two while series records come in), else by the
//! reader, which partitions series across the workers by label hash, so that a label
//! set logged under two references (one series) meets itself in one worker, which
//! resolves it; samples follow their reference to the same worker.
//! Each worker owns its series exclusively: they are built without locks in a dense
//! vector, and samples find their series through a reference index without hashing
//! labels. Each worker sees its series' records in WAL order, so the result equals a
//! sequential replay. Without workers the records are applied inline.

use std::collections::HashMap;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

use roaring::RoaringBitmap;

use super::postings::MemPostings;
use super::series::{classify, MemSeries, Order, SeriesData};
use super::{label_hash, Head, HeadError, HeadOptions, StrMap, U64Map};
use crate::model::{Labels, Timestamp};
use crate::wal::{Record, RefSample, RefSeries};

/// What a replay found beyond the samples it restored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReplayOutcome {
    /// Series restored.
    pub series: u64,
    /// Samples restored.
    pub samples: u64,
    /// Samples whose series reference was never declared (dropped).
    pub unknown_refs: u64,
    /// Samples dropped because they were not newer than their series' last sample.
    pub out_of_order: u64,
    /// Series records with a reference the index cannot hold (dropped).
    pub invalid_refs: u64,
}

/// "No position" in the dense reference index.
const NONE: u32 = u32::MAX;

struct ReplaySeries {
    series_ref: u64,
    hash: u64,
    labels: Labels,
    data: SeriesData,
}

/// Work for one replay worker.
enum Msg {
    /// Series as logged, with their label hashes (`None`: the worker computes them).
    Series(Vec<RefSeries>, Option<Vec<u64>>),
    Samples(Vec<RefSample>),
}

/// The series of one worker that hold samples, for [`build_series`].
type Built = Vec<ReplaySeries>;

/// Replayed series as the head holds them: (label hash, reference, series), built as
/// [`Head::install_series`] takes them.
fn build_series(
    list: Built,
) -> impl ExactSizeIterator<Item = (u64, super::SeriesRef, Arc<MemSeries>)> {
    list.into_iter().map(|rs| {
        let s = MemSeries::with_data(rs.series_ref, rs.labels, rs.data);
        (rs.hash, rs.series_ref, Arc::new(s))
    })
}

/// What a worker hands back when it is done, besides its series.
struct Prepared {
    postings: MemPostings,
    mint: Timestamp,
    maxt: Timestamp,
    outcome: ReplayOutcome,
    /// Highest valid reference seen by a worker that resolved series itself.
    max_ref: u64,
}

/// Records in flight per worker before the reader waits. Few: the reader decodes into
/// fresh buffers that the worker frees, and a deep queue keeps many of them alive at
/// once, so their memory is new to the process (page faults) instead of being reused
/// while still in the CPU cache. With 8 instead of 64, opening the restart benchmark's
/// WAL (100k series, 1 M samples) in a fresh process took about 5% less time.
const CHANNEL_DEPTH: usize = 8;

/// Most replay workers used when the count is chosen automatically.
const MAX_AUTO_WORKERS: usize = 4;

enum Target {
    Inline(Box<Replayer>),
    Workers {
        txs: Vec<SyncSender<Msg>>,
        /// Each worker's series, sent before it builds its postings.
        built: Vec<Receiver<Built>>,
        handles: Vec<JoinHandle<Prepared>>,
    },
}

/// Where the reading thread sends each series reference when there are several
/// workers: a series goes to the worker its label hash picks, so a label set logged
/// under two references meets itself in one worker, and samples follow their
/// reference.
#[derive(Default)]
struct Router {
    /// Reference → worker + 1 (0: not seen). Dense; see [`Replayer::MAX_DENSE_GAP`].
    dense: Vec<u8>,
    /// References too far beyond the dense range.
    sparse: U64Map<u8>,
    max_ref: u64,
    invalid_refs: u64,
    unknown_refs: u64,
}

impl Router {
    #[inline]
    fn worker(&self, r: u64) -> Option<usize> {
        let w = match usize::try_from(r).ok().and_then(|i| self.dense.get(i)) {
            Some(&w) => w,
            None => self.sparse.get(&r).copied().unwrap_or(0),
        };
        (w > 0).then(|| usize::from(w - 1))
    }

    fn set_worker(&mut self, r: u64, w: usize) {
        let Ok(w) = u8::try_from(w + 1) else {
            return;
        };
        if let Ok(i) = usize::try_from(r) {
            if i < self.dense.len() + Replayer::MAX_DENSE_GAP {
                if self.dense.len() <= i {
                    self.dense.resize(i + 1, 0);
                }
                if let Some(x) = self.dense.get_mut(i) {
                    *x = w;
                }
                return;
            }
        }
        self.sparse.insert(r, w);
    }

    /// Splits series by worker, with their label hashes; invalid references are
    /// dropped here. A reference seen before stays with its worker.
    fn split_series(&mut self, list: Vec<RefSeries>, n: usize) -> Vec<(Vec<RefSeries>, Vec<u64>)> {
        let hashes = hashes(&list);
        let cap = share(list.len(), n);
        let mut parts: Vec<(Vec<RefSeries>, Vec<u64>)> = (0..n)
            .map(|_| (Vec::with_capacity(cap), Vec::with_capacity(cap)))
            .collect();
        for (s, h) in list.into_iter().zip(hashes) {
            if s.series_ref == 0 || u32::try_from(s.series_ref).is_err() {
                self.invalid_refs += 1;
                continue;
            }
            self.max_ref = self.max_ref.max(s.series_ref);
            let w = match self.worker(s.series_ref) {
                Some(w) => w,
                None => {
                    let w = ((h >> 32) % n as u64) as usize;
                    self.set_worker(s.series_ref, w);
                    w
                }
            };
            if let Some((list, hashes)) = parts.get_mut(w) {
                list.push(s);
                hashes.push(h);
            }
        }
        parts
    }

    /// Splits samples by the worker of their reference; those of unknown references
    /// are counted and dropped.
    fn split_samples(&mut self, samples: Vec<RefSample>, n: usize) -> Vec<Vec<RefSample>> {
        let cap = share(samples.len(), n);
        let mut parts: Vec<Vec<RefSample>> = (0..n).map(|_| Vec::with_capacity(cap)).collect();
        for s in samples {
            match self.worker(s.series_ref).and_then(|w| parts.get_mut(w)) {
                Some(p) => p.push(s),
                None => self.unknown_refs += 1,
            }
        }
        parts
    }
}

/// Routes WAL records to the series they belong to; [`Replay::finish`] builds the
/// head.
///
/// The reading thread decodes records; workers own disjoint sets of series, resolve
/// their identities, and append their samples. When the records are
/// all in, each worker hands its series over first; it builds their postings while the
/// calling thread builds the series and registers them in the head.
pub(crate) struct Replay {
    /// Used with several workers.
    router: Router,
    target: Target,
}

/// Most replay workers.
const MAX_WORKERS: usize = 64;

impl Replay {
    /// A replay using `workers` threads (0: one per available core besides the one
    /// reading and decoding the WAL, at most four, so two cores get one worker that
    /// applies records while the reader decodes the next ones, and one core replays
    /// inline; 1: inline on the calling thread).
    pub(crate) fn new(workers: usize) -> Self {
        let n = match workers {
            0 => std::thread::available_parallelism()
                .map(|n| n.get().saturating_sub(1))
                .unwrap_or(0)
                .min(MAX_AUTO_WORKERS),
            1 => 0,
            n => n,
        };
        Self::with_threads(n)
    }

    /// A replay with `n` worker threads besides the caller's (0: inline).
    pub(crate) fn with_threads(n: usize) -> Self {
        let n = n.min(MAX_WORKERS);
        if n == 0 {
            return Replay {
                router: Router::default(),
                target: Target::Inline(Box::new(Replayer::new())),
            };
        }
        let mut txs = Vec::with_capacity(n);
        let mut built = Vec::with_capacity(n);
        let mut handles = Vec::with_capacity(n);
        for _ in 0..n {
            let (tx, rx) = sync_channel::<Msg>(CHANNEL_DEPTH);
            let (out_tx, out_rx) = sync_channel::<Built>(1);
            txs.push(tx);
            built.push(out_rx);
            handles.push(std::thread::spawn(move || {
                let mut r = Replayer::new();
                for msg in rx {
                    match msg {
                        Msg::Series(list, hashes) => {
                            let hashes = hashes.unwrap_or_else(|| self::hashes(&list));
                            r.add_logged(list, &hashes);
                        }
                        Msg::Samples(samples) => r.add_samples(samples),
                    }
                }
                r.prepare(|series| {
                    // the receiver only goes away when the caller gave up
                    let _ = out_tx.send(series);
                })
            }));
        }
        Replay {
            router: Router::default(),
            target: Target::Workers {
                txs,
                built,
                handles,
            },
        }
    }

    /// Applies one record.
    pub(crate) fn on_record(&mut self, rec: Record) {
        match (rec, &mut self.target) {
            (Record::Series(list), Target::Inline(r)) => {
                let hashes = hashes(&list);
                r.add_logged(list, &hashes);
            }
            (Record::Samples(samples), Target::Inline(r)) => r.add_samples(samples),
            (Record::Series(list), Target::Workers { txs, .. }) => {
                if let [tx] = txs.as_slice() {
                    // The worker hashes: decoding and allocating the label sets keeps this
                    // thread busier than the worker while series records come in.
                    // A worker only stops when the channel closes.
                    let _ = tx.send(Msg::Series(list, None));
                    return;
                }
                let parts = self.router.split_series(list, txs.len());
                for (tx, (list, hashes)) in txs.iter().zip(parts) {
                    if !list.is_empty() {
                        let _ = tx.send(Msg::Series(list, Some(hashes)));
                    }
                }
            }
            (Record::Samples(samples), Target::Workers { txs, .. }) => {
                if let [tx] = txs.as_slice() {
                    let _ = tx.send(Msg::Samples(samples));
                    return;
                }
                let parts = self.router.split_samples(samples, txs.len());
                for (tx, p) in txs.iter().zip(parts) {
                    if !p.is_empty() {
                        let _ = tx.send(Msg::Samples(p));
                    }
                }
            }
            // Future record kinds carry nothing the head needs.
            #[allow(unreachable_patterns)]
            _ => {}
        }
    }

    /// The head holding everything replayed. Series without samples are dropped.
    pub(crate) fn finish(self, opts: HeadOptions) -> Result<(Head, ReplayOutcome), HeadError> {
        let head = Head::new(opts);
        let prepared = match self.target {
            Target::Inline(r) => {
                vec![r.prepare(|series| head.install_series(build_series(series)))]
            }
            Target::Workers {
                txs,
                built,
                handles,
            } => {
                drop(txs);
                // register each worker's series while it builds their postings
                for rx in built {
                    if let Ok(series) = rx.recv() {
                        head.install_series(build_series(series));
                    }
                }
                let mut out = Vec::with_capacity(handles.len());
                for h in handles {
                    out.push(h.join().map_err(|_| HeadError::ReplayWorker)?);
                }
                out
            }
        };
        let mut max_ref = self.router.max_ref;
        let mut outcome = ReplayOutcome {
            invalid_refs: self.router.invalid_refs,
            unknown_refs: self.router.unknown_refs,
            ..ReplayOutcome::default()
        };
        let mut mint = i64::MAX;
        let mut maxt = i64::MIN;
        for p in prepared {
            outcome.samples += p.outcome.samples;
            outcome.unknown_refs += p.outcome.unknown_refs;
            outcome.out_of_order += p.outcome.out_of_order;
            outcome.invalid_refs += p.outcome.invalid_refs;
            outcome.series += p.outcome.series;
            max_ref = max_ref.max(p.max_ref);
            mint = mint.min(p.mint);
            maxt = maxt.max(p.maxt);
            head.install_postings(p.postings);
        }
        head.next_ref.store(
            max_ref.saturating_add(1),
            std::sync::atomic::Ordering::Relaxed,
        );
        head.note_appended(outcome.samples, mint, maxt);
        Ok((head, outcome))
    }
}

/// Room for one of `n` parts of `len` items split by hash: the even share and a
/// margin, so that a part rarely has to grow.
fn share(len: usize, n: usize) -> usize {
    len / n.max(1) + len / 16 + 16
}

/// The label hash of each series.
fn hashes(list: &[RefSeries]) -> Vec<u64> {
    list.iter().map(|s| label_hash(&s.labels)).collect()
}

/// Drops `v` on a short-lived thread, so freeing a large structure does not delay the
/// caller (when no thread can be started, `v` is dropped here).
fn drop_elsewhere<T: Send + 'static>(v: T) {
    let _ = std::thread::Builder::new()
        .name("replay-free".into())
        .spawn(move || drop(v));
}

/// The postings of `series` (ids with their labels), built in bulk: one id list per label
/// pair, then one bitmap per list. A pair equal to the one the previous series has at
/// the same position (common: series arrive grouped by target and metric) is found
/// without hashing.
fn build_postings(series: &[(u32, Labels)]) -> MemPostings {
    // Keyed by a label's packed text: one hash and one comparison per label.
    let mut index: StrMap<&str, usize> = StrMap::default();
    let mut lists: Vec<(&str, &str, Vec<u32>)> = Vec::new();
    let mut all = Vec::with_capacity(series.len());
    // packed text and list of each label position of the previous series
    let mut prev: Vec<(&str, usize)> = Vec::new();
    for (id, labels) in series {
        let id = *id;
        all.push(id);
        for (k, (text, l)) in labels.iter_packed().enumerate() {
            if prev.len() <= k {
                prev.push(("", usize::MAX));
            }
            let Some(slot) = prev.get_mut(k) else {
                continue;
            };
            if slot.0 != text {
                let list = *index.entry(text).or_insert_with(|| {
                    lists.push((l.name, l.value, Vec::new()));
                    lists.len() - 1
                });
                *slot = (text, list);
            }
            if let Some((_, _, ids)) = lists.get_mut(slot.1) {
                ids.push(id);
            }
        }
    }
    let mut postings = MemPostings::new();
    postings.add_bulk(
        lists
            .into_iter()
            .map(|(name, value, mut ids)| (name, value, sorted_bitmap(&mut ids))),
        sorted_bitmap(&mut all),
    );
    postings
}

/// A bitmap of `ids` (sorted in place first when needed).
fn sorted_bitmap(ids: &mut [u32]) -> RoaringBitmap {
    if !ids.is_sorted() {
        ids.sort_unstable();
    }
    RoaringBitmap::from_sorted_iter(ids.iter().copied())
        .unwrap_or_else(|_| ids.iter().copied().collect())
}

/// Accumulates the records of the series one worker owns.
struct Replayer {
    series: Vec<ReplaySeries>,
    /// Series reference → position in `series` (aliases included), `u32::MAX` for
    /// none. References are dense, so this is a vector; see [`Self::MAX_DENSE_GAP`].
    dense: Vec<u32>,
    /// Positions of references too far beyond the dense range.
    sparse: U64Map<u32>,
    /// Reference of the first series seen with each label hash.
    by_hash: U64Map<u64>,
    /// Label sets whose hash collides with another's (rare): first reference.
    collided: HashMap<Labels, u64>,
    /// References that name an already known label set → the first reference.
    aliases: U64Map<u64>,
    max_ref: u64,
    invalid_refs: u64,
    mint: Timestamp,
    maxt: Timestamp,
    outcome: ReplayOutcome,
}

impl Replayer {
    fn new() -> Self {
        Replayer {
            by_hash: U64Map::default(),
            collided: HashMap::new(),
            aliases: U64Map::default(),
            max_ref: 0,
            invalid_refs: 0,
            series: Vec::new(),
            dense: Vec::new(),
            sparse: U64Map::default(),
            mint: i64::MAX,
            maxt: i64::MIN,
            outcome: ReplayOutcome::default(),
        }
    }

    /// Adds series as logged (`hashes`: the label hash of each): drops invalid
    /// references, turns a label set logged under a second reference into an alias of
    /// the first, and adds the new series.
    fn add_logged(&mut self, list: Vec<RefSeries>, hashes: &[u64]) {
        self.by_hash.reserve(list.len());
        self.series.reserve(list.len());
        for (s, &hash) in list.into_iter().zip(hashes) {
            if s.series_ref == 0 || u32::try_from(s.series_ref).is_err() {
                self.invalid_refs += 1;
                continue;
            }
            self.max_ref = self.max_ref.max(s.series_ref);
            let first = match self.by_hash.get(&hash).copied() {
                None => {
                    self.by_hash.insert(hash, s.series_ref);
                    None
                }
                Some(r) if self.labels_of(r) == Some(&s.labels) => Some(r),
                Some(_) => match self.collided.get(&s.labels) {
                    Some(&r) => Some(r),
                    None => {
                        self.collided.insert(s.labels.clone(), s.series_ref);
                        None
                    }
                },
            };
            match first {
                // logged again (by a later commit): nothing new
                Some(r) if r == s.series_ref => {}
                Some(r) => {
                    self.aliases.insert(s.series_ref, r);
                }
                None => self.add_series(s.series_ref, hash, s.labels),
            }
        }
    }

    /// The labels of the series `r` names.
    fn labels_of(&self, r: u64) -> Option<&Labels> {
        self.series
            .get(self.position(r) as usize)
            .map(|rs| &rs.labels)
    }

    fn add_samples(&mut self, mut samples: Vec<RefSample>) {
        if !self.aliases.is_empty() {
            for s in &mut samples {
                if let Some(&r) = self.aliases.get(&s.series_ref) {
                    s.series_ref = r;
                }
            }
        }
        for s in samples {
            let pos = self.position(s.series_ref);
            if pos == NONE {
                self.outcome.unknown_refs += 1;
                continue;
            }
            let Some(rs) = self.series.get_mut(pos as usize) else {
                continue;
            };
            let bits = s.v.to_bits();
            match classify(rs.data.last(), s.t, bits) {
                Order::Newer => {
                    rs.data.append(s.t, s.v);
                    self.outcome.samples += 1;
                    if s.t < self.mint {
                        self.mint = s.t;
                    }
                    if s.t > self.maxt {
                        self.maxt = s.t;
                    }
                }
                Order::SameSample => {}
                Order::Duplicate | Order::Older => self.outcome.out_of_order += 1,
            }
        }
    }

    /// A reference may extend the dense index by at most this many slots beyond the
    /// series seen so far; farther ones (only from damaged or foreign data) go to a
    /// hash map so a single huge reference cannot allocate gigabytes.
    const MAX_DENSE_GAP: usize = 1 << 20;

    #[inline]
    fn position(&self, r: u64) -> u32 {
        match usize::try_from(r).ok().and_then(|i| self.dense.get(i)) {
            Some(&p) => p,
            None => self.sparse.get(&r).copied().unwrap_or(NONE),
        }
    }

    fn set_position(&mut self, r: u64, pos: u32) {
        if let Ok(i) = usize::try_from(r) {
            if i < self.dense.len() + self.series.len() + Self::MAX_DENSE_GAP {
                if self.dense.len() <= i {
                    self.dense.resize(i + 1, NONE);
                }
                if let Some(x) = self.dense.get_mut(i) {
                    *x = pos;
                }
                return;
            }
        }
        self.sparse.insert(r, pos);
    }

    /// Adds a series with a valid reference and labels not seen before (a reference
    /// already in use keeps its first series).
    fn add_series(&mut self, series_ref: u64, hash: u64, labels: Labels) {
        if self.position(series_ref) != NONE {
            return;
        }
        let pos = self.series.len() as u32;
        self.set_position(series_ref, pos);
        let mut data = SeriesData::new();
        // its series record is in the WAL
        data.logged = true;
        self.series.push(ReplaySeries {
            series_ref,
            hash,
            labels,
            data,
        });
    }

    /// Hands the series holding samples to `hand_over` (with workers, the calling
    /// thread, idle by then, builds and registers them meanwhile), then builds their
    /// postings.
    fn prepare(mut self, hand_over: impl FnOnce(Built)) -> Prepared {
        self.series
            .retain(|rs| rs.data.last().is_some() && u32::try_from(rs.series_ref).is_ok());
        let ids: Vec<(u32, Labels)> = self
            .series
            .iter()
            .filter_map(|rs| Some((u32::try_from(rs.series_ref).ok()?, rs.labels.clone())))
            .collect();
        let series = std::mem::take(&mut self.series);
        let mut outcome = self.outcome;
        outcome.series = ids.len() as u64;
        outcome.invalid_refs = self.invalid_refs;
        let max_ref = self.max_ref;
        hand_over(series);
        let postings = build_postings(&ids);
        drop_elsewhere((ids, self.by_hash, self.collided, self.dense, self.sparse));
        Prepared {
            postings,
            mint: self.mint,
            maxt: self.maxt,
            outcome,
            max_ref,
        }
    }
}
