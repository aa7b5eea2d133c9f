//! Rebuilding the head from WAL records.
//!
//! [`Replay`] receives the records in WAL order on the reading thread. It resolves
//! series identities (a label set logged under two references is one series) and
//! partitions samples by series reference across worker threads, each owning its
//! series exclusively: series are built without locks in a dense vector, and samples
//! find their series through a reference index without hashing labels. Each worker
//! sees its series' records in WAL order, so the result equals a sequential replay.
//! With one worker the records are applied inline.

use std::collections::HashMap;
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

use roaring::RoaringBitmap;

use super::postings::MemPostings;
use super::series::{classify, MemSeries, Order, SeriesData};
use super::{label_hash, Head, HeadError, HeadOptions, StrMap, U64Map};
use crate::model::{Label, Labels, Timestamp};
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

/// A new series for a worker, with its label hash.
struct NewSeries {
    series_ref: u64,
    hash: u64,
    labels: Labels,
}

/// Work for one replay worker.
enum Msg {
    Series(Vec<NewSeries>),
    Samples(Vec<RefSample>),
}

/// A worker's series, ready to be registered in the head: (id, label hash, series)
/// and the postings of exactly those series.
struct Prepared {
    series: Vec<(u64, Arc<MemSeries>)>,
    postings: MemPostings,
    mint: Timestamp,
    maxt: Timestamp,
    outcome: ReplayOutcome,
}

/// Records in flight per worker before the reader waits.
const CHANNEL_DEPTH: usize = 64;

/// Most replay workers used when the count is chosen automatically.
const MAX_AUTO_WORKERS: usize = 4;

enum Target {
    Inline(Box<Replayer>),
    Workers {
        txs: Vec<SyncSender<Msg>>,
        handles: Vec<JoinHandle<Prepared>>,
    },
}

/// Routes WAL records to the series they belong to; [`Replay::finish`] builds the
/// head.
pub(crate) struct Replay {
    /// First label set and reference seen for each label hash.
    by_hash: U64Map<(Labels, u64)>,
    /// Label sets whose hash collides with another's (rare): first reference.
    collided: HashMap<Labels, u64>,
    /// References that name an already known label set → the first reference.
    aliases: U64Map<u64>,
    max_ref: u64,
    invalid_refs: u64,
    target: Target,
}

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
        let target = if n == 0 {
            Target::Inline(Box::new(Replayer::new()))
        } else {
            let mut txs = Vec::with_capacity(n);
            let mut handles = Vec::with_capacity(n);
            for _ in 0..n {
                let (tx, rx) = sync_channel::<Msg>(CHANNEL_DEPTH);
                txs.push(tx);
                handles.push(std::thread::spawn(move || {
                    let mut r = Replayer::new();
                    for msg in rx {
                        match msg {
                            Msg::Series(list) => r.add_series_list(list),
                            Msg::Samples(samples) => r.add_samples(samples),
                        }
                    }
                    r.prepare()
                }));
            }
            Target::Workers { txs, handles }
        };
        Replay {
            by_hash: U64Map::default(),
            collided: HashMap::new(),
            aliases: U64Map::default(),
            max_ref: 0,
            invalid_refs: 0,
            target,
        }
    }

    /// Applies one record.
    pub(crate) fn on_record(&mut self, rec: Record) {
        match rec {
            Record::Series(list) => {
                let list = self.resolve_series(list);
                match &mut self.target {
                    Target::Inline(r) => r.add_series_list(list),
                    Target::Workers { txs, .. } if txs.len() == 1 => {
                        if let (Some(tx), false) = (txs.first(), list.is_empty()) {
                            let _ = tx.send(Msg::Series(list));
                        }
                    }
                    Target::Workers { txs, .. } => {
                        let n = txs.len() as u64;
                        let mut parts: Vec<Vec<NewSeries>> =
                            txs.iter().map(|_| Vec::new()).collect();
                        for s in list {
                            if let Some(p) = parts.get_mut((s.series_ref % n) as usize) {
                                p.push(s);
                            }
                        }
                        for (tx, p) in txs.iter().zip(parts) {
                            if !p.is_empty() {
                                // a worker only stops when the channel closes
                                let _ = tx.send(Msg::Series(p));
                            }
                        }
                    }
                }
            }
            Record::Samples(mut samples) => {
                if !self.aliases.is_empty() {
                    for s in &mut samples {
                        if let Some(&r) = self.aliases.get(&s.series_ref) {
                            s.series_ref = r;
                        }
                    }
                }
                match &mut self.target {
                    Target::Inline(r) => r.add_samples(samples),
                    Target::Workers { txs, .. } if txs.len() == 1 => {
                        if let (Some(tx), false) = (txs.first(), samples.is_empty()) {
                            let _ = tx.send(Msg::Samples(samples));
                        }
                    }
                    Target::Workers { txs, .. } => {
                        let n = txs.len();
                        let cap = samples.len() / n + 16;
                        let mut parts: Vec<Vec<RefSample>> =
                            txs.iter().map(|_| Vec::with_capacity(cap)).collect();
                        for s in samples {
                            if let Some(p) = parts.get_mut((s.series_ref % n as u64) as usize) {
                                p.push(s);
                            }
                        }
                        for (tx, p) in txs.iter().zip(parts) {
                            if !p.is_empty() {
                                let _ = tx.send(Msg::Samples(p));
                            }
                        }
                    }
                }
            }
            // Future record kinds carry nothing the head needs.
            #[allow(unreachable_patterns)]
            _ => {}
        }
    }

    /// Drops invalid references, turns a label set logged under a second reference
    /// into an alias of the first, and hashes each label set once.
    fn resolve_series(&mut self, list: Vec<RefSeries>) -> Vec<NewSeries> {
        let mut out = Vec::with_capacity(list.len());
        self.by_hash.reserve(list.len());
        for s in list {
            if s.series_ref == 0 || u32::try_from(s.series_ref).is_err() {
                self.invalid_refs += 1;
                continue;
            }
            self.max_ref = self.max_ref.max(s.series_ref);
            let hash = label_hash(&s.labels);
            let first = match self.by_hash.entry(hash) {
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert((s.labels.clone(), s.series_ref));
                    None
                }
                std::collections::hash_map::Entry::Occupied(e) if e.get().0 == s.labels => {
                    Some(e.get().1)
                }
                std::collections::hash_map::Entry::Occupied(_) => {
                    match self.collided.get(&s.labels) {
                        Some(&r) => Some(r),
                        None => {
                            self.collided.insert(s.labels.clone(), s.series_ref);
                            None
                        }
                    }
                }
            };
            match first {
                // logged again (by a later commit): nothing new
                Some(r) if r == s.series_ref => {}
                Some(r) => {
                    self.aliases.insert(s.series_ref, r);
                }
                None => out.push(NewSeries {
                    series_ref: s.series_ref,
                    hash,
                    labels: s.labels,
                }),
            }
        }
        out
    }

    /// The head holding everything replayed. Series without samples are dropped.
    pub(crate) fn finish(self, opts: HeadOptions) -> Result<(Head, ReplayOutcome), HeadError> {
        let prepared = match self.target {
            Target::Inline(r) => vec![r.prepare()],
            Target::Workers { txs, handles } => {
                drop(txs);
                let mut out = Vec::with_capacity(handles.len());
                for h in handles {
                    out.push(h.join().map_err(|_| HeadError::ReplayWorker)?);
                }
                out
            }
        };
        let head = Head::new(opts);
        let mut outcome = ReplayOutcome {
            invalid_refs: self.invalid_refs,
            ..ReplayOutcome::default()
        };
        let mut mint = i64::MAX;
        let mut maxt = i64::MIN;
        for p in prepared {
            outcome.samples += p.outcome.samples;
            outcome.unknown_refs += p.outcome.unknown_refs;
            outcome.out_of_order += p.outcome.out_of_order;
            outcome.series += p.series.len() as u64;
            mint = mint.min(p.mint);
            maxt = maxt.max(p.maxt);
            head.install_replayed(p.series, p.postings);
        }
        head.next_ref.store(
            self.max_ref.saturating_add(1),
            std::sync::atomic::Ordering::Relaxed,
        );
        head.note_appended(outcome.samples, mint, maxt);
        Ok((head, outcome))
    }
}

/// The postings of the series holding samples, built in bulk: one id list per label
/// pair, then one bitmap per list. A pair equal to the one the previous series has at
/// the same position (common: series arrive grouped by target and metric) is found
/// without hashing.
fn build_postings(series: &[ReplaySeries]) -> MemPostings {
    let mut index: StrMap<&str, StrMap<&str, usize>> = StrMap::default();
    let mut lists: Vec<(&str, &str, Vec<u32>)> = Vec::new();
    let mut all = Vec::with_capacity(series.len());
    // list of each label position of the previous series
    let mut prev: Vec<usize> = Vec::new();
    let mut prev_labels: &[Label] = &[];
    for rs in series {
        if rs.data.last().is_none() {
            continue;
        }
        let Ok(id) = u32::try_from(rs.series_ref) else {
            continue;
        };
        all.push(id);
        let labels = rs.labels.as_slice();
        if prev.len() < labels.len() {
            prev.resize(labels.len(), usize::MAX);
        }
        for ((l, p), slot) in labels
            .iter()
            .zip(prev_labels.iter().map(Some).chain(std::iter::repeat(None)))
            .zip(prev.iter_mut())
        {
            let same = p.is_some_and(|p| p.name == l.name && p.value == l.value);
            if !same {
                let values = index.entry(l.name.as_str()).or_default();
                *slot = *values.entry(l.value.as_str()).or_insert_with(|| {
                    lists.push((l.name.as_str(), l.value.as_str(), Vec::new()));
                    lists.len() - 1
                });
            }
            if let Some((_, _, ids)) = lists.get_mut(*slot) {
                ids.push(id);
            }
        }
        prev_labels = labels;
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
    mint: Timestamp,
    maxt: Timestamp,
    outcome: ReplayOutcome,
}

impl Replayer {
    fn new() -> Self {
        Replayer {
            series: Vec::new(),
            dense: Vec::new(),
            sparse: U64Map::default(),
            mint: i64::MAX,
            maxt: i64::MIN,
            outcome: ReplayOutcome::default(),
        }
    }

    fn add_series_list(&mut self, list: Vec<NewSeries>) {
        self.series.reserve(list.len());
        for s in list {
            self.add_series(s);
        }
    }

    fn add_samples(&mut self, samples: Vec<RefSample>) {
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

    /// Adds a series (the router has checked the reference and resolved aliases).
    fn add_series(&mut self, s: NewSeries) {
        if self.position(s.series_ref) != NONE {
            return;
        }
        let pos = self.series.len() as u32;
        self.set_position(s.series_ref, pos);
        let mut data = SeriesData::new();
        // its series record is in the WAL
        data.logged = true;
        self.series.push(ReplaySeries {
            series_ref: s.series_ref,
            hash: s.hash,
            labels: s.labels,
            data,
        });
    }

    /// Builds the series holding samples and their postings, ready for the head (on the
    /// worker's thread, so workers do this in parallel).
    fn prepare(self) -> Prepared {
        let postings = build_postings(&self.series);
        let mut series = Vec::with_capacity(self.series.len());
        for rs in self.series {
            if rs.data.last().is_none() || u32::try_from(rs.series_ref).is_err() {
                continue;
            }
            let s = Arc::new(MemSeries::with_data(rs.series_ref, rs.labels, rs.data));
            series.push((rs.hash, s));
        }
        Prepared {
            series,
            postings,
            mint: self.mint,
            maxt: self.maxt,
            outcome: self.outcome,
        }
    }
}
