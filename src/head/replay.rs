//! Rebuilding the head from WAL records.
//!
//! Replay is single-threaded and owns every series exclusively until it finishes, so
//! series are built without locks in a dense vector, and samples find their series
//! through a reference map without hashing labels.

use std::collections::HashMap;
use std::sync::Arc;

use super::series::{classify, MemSeries, Order, SeriesData};
use super::{shard, Head, HeadOptions, U64Map};
use crate::model::{Labels, Timestamp};
use crate::wal::Record;

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
    labels: Labels,
    data: SeriesData,
}

/// Accumulates WAL records into series; [`Replayer::finish`] builds the head.
pub(crate) struct Replayer {
    series: Vec<ReplaySeries>,
    /// Series reference → position in `series` (aliases included), `u32::MAX` for
    /// none. References are dense, so this is a vector; see [`Self::MAX_DENSE_GAP`].
    dense: Vec<u32>,
    /// Positions of references too far beyond the dense range.
    sparse: U64Map<u32>,
    by_labels: HashMap<Labels, u32>,
    max_ref: u64,
    mint: Timestamp,
    maxt: Timestamp,
    outcome: ReplayOutcome,
}

impl Replayer {
    pub(crate) fn new() -> Self {
        Replayer {
            series: Vec::new(),
            dense: Vec::new(),
            sparse: U64Map::default(),
            by_labels: HashMap::new(),
            max_ref: 0,
            mint: i64::MAX,
            maxt: i64::MIN,
            outcome: ReplayOutcome::default(),
        }
    }

    /// Applies one record.
    pub(crate) fn on_record(&mut self, rec: Record) {
        match rec {
            Record::Series(list) => {
                for s in list {
                    self.add_series(s.series_ref, s.labels);
                }
            }
            Record::Samples(samples) => {
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
            // Future record kinds carry nothing the head needs.
            #[allow(unreachable_patterns)]
            _ => {}
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

    fn add_series(&mut self, series_ref: u64, labels: Labels) {
        if series_ref == 0 || u32::try_from(series_ref).is_err() {
            self.outcome.invalid_refs += 1;
            return;
        }
        if self.position(series_ref) != NONE {
            // Logged again by a concurrent commit: same series.
            return;
        }
        self.max_ref = self.max_ref.max(series_ref);
        if let Some(&pos) = self.by_labels.get(&labels) {
            // Same labels under another reference: samples go to the first one.
            self.set_position(series_ref, pos);
            return;
        }
        let pos = self.series.len() as u32;
        self.by_labels.insert(labels.clone(), pos);
        self.set_position(series_ref, pos);
        let mut data = SeriesData::new();
        // its series record is in the WAL
        data.logged = true;
        self.series.push(ReplaySeries {
            series_ref,
            labels,
            data,
        });
    }

    /// The head holding everything replayed. Series without samples are dropped.
    pub(crate) fn finish(self, opts: HeadOptions) -> (Head, ReplayOutcome) {
        let head = Head::new(opts);
        let mut outcome = self.outcome;
        for rs in self.series {
            if rs.data.last().is_none() {
                continue;
            }
            let Ok(id) = u32::try_from(rs.series_ref) else {
                continue;
            };
            let hash = rs.labels.stable_hash();
            let s = Arc::new(MemSeries::with_data(rs.series_ref, rs.labels, rs.data));
            shard(&head.by_hash, hash)
                .write()
                .entry(hash)
                .or_default()
                .push(Arc::clone(&s));
            head.insert(id, s);
            outcome.series += 1;
        }
        head.next_ref.store(
            self.max_ref.saturating_add(1),
            std::sync::atomic::Ordering::Relaxed,
        );
        head.note_appended(outcome.samples, self.mint, self.maxt);
        (head, outcome)
    }
}
