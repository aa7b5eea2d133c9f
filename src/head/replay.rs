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

struct ReplaySeries {
    series_ref: u64,
    labels: Labels,
    data: SeriesData,
}

/// Accumulates WAL records into series; [`Replayer::finish`] builds the head.
pub(crate) struct Replayer {
    series: Vec<ReplaySeries>,
    /// Series reference → position in `series` (aliases included).
    by_ref: U64Map<u32>,
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
            by_ref: U64Map::default(),
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
                // Consecutive samples often hit the same series; remember the last one.
                let mut last_ref = u64::MAX;
                let mut last_pos = u32::MAX;
                for s in samples {
                    let pos = if s.series_ref == last_ref {
                        last_pos
                    } else {
                        match self.by_ref.get(&s.series_ref) {
                            Some(&p) => {
                                last_ref = s.series_ref;
                                last_pos = p;
                                p
                            }
                            None => {
                                self.outcome.unknown_refs += 1;
                                continue;
                            }
                        }
                    };
                    let Some(rs) = self.series.get_mut(pos as usize) else {
                        continue;
                    };
                    let bits = s.v.to_bits();
                    match classify(rs.data.last(), s.t, bits) {
                        Order::Newer => {
                            rs.data.append(s.t, s.v);
                            rs.data.logged = true;
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

    fn add_series(&mut self, series_ref: u64, labels: Labels) {
        if series_ref == 0 || u32::try_from(series_ref).is_err() {
            self.outcome.invalid_refs += 1;
            return;
        }
        if self.by_ref.contains_key(&series_ref) {
            // Logged again by a concurrent commit: same series.
            return;
        }
        self.max_ref = self.max_ref.max(series_ref);
        if let Some(&pos) = self.by_labels.get(&labels) {
            // Same labels under another reference: samples go to the first one.
            self.by_ref.insert(series_ref, pos);
            return;
        }
        let pos = self.series.len() as u32;
        self.by_labels.insert(labels.clone(), pos);
        self.by_ref.insert(series_ref, pos);
        self.series.push(ReplaySeries {
            series_ref,
            labels,
            data: SeriesData::new(),
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
