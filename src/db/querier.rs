//! Reading head and blocks as one.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::{bump, DbError, HeadTombstones, Inner};
use crate::block::{Block, BlockError, Interval};
use crate::model::{Matcher, Sample, Timestamp};
use crate::storage::{Querier, Series, SeriesChunk, StorageError};

/// Reads the database over a fixed time range: the head and the blocks as they were
/// when the querier was created (a compaction or retention pass running meanwhile does
/// not disturb it). Series present in several sources (the head and blocks, or
/// overlapping blocks) are merged by labels; samples at the same timestamp from several
/// sources are returned once.
pub struct DbQuerier<'a> {
    inner: &'a Inner,
    blocks: Arc<Vec<Block>>,
    tombstones: Arc<HeadTombstones>,
    mint: Timestamp,
    maxt: Timestamp,
}

impl std::fmt::Debug for DbQuerier<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbQuerier")
            .field("blocks", &self.blocks.len())
            .field("mint", &self.mint)
            .field("maxt", &self.maxt)
            .finish()
    }
}

/// Drops the samples of `s` inside any of `deleted`.
fn retain_live(s: &mut Vec<Sample>, deleted: &[Interval]) {
    s.retain(|x| !deleted.iter().any(|iv| iv.contains(x.t)));
}

/// Merges samples of one series from several sources: sorted by time, one sample per
/// timestamp (the first source's).
fn merge_samples(parts: Vec<Vec<Sample>>) -> Vec<Sample> {
    let mut all: Vec<Sample> = parts.into_iter().flatten().collect();
    all.sort_by_key(|s| s.t);
    all.dedup_by_key(|s| s.t);
    all
}

impl<'a> DbQuerier<'a> {
    pub(super) fn new(inner: &'a Inner, mint: Timestamp, maxt: Timestamp) -> Self {
        DbQuerier {
            inner,
            blocks: Arc::clone(&inner.blocks.read()),
            tombstones: Arc::clone(&inner.tombstones.read()),
            mint,
            maxt,
        }
    }

    fn overlapping(&self) -> impl Iterator<Item = &Block> {
        let (mint, maxt) = (self.mint, self.maxt);
        self.blocks
            .iter()
            .filter(move |b| b.meta().min_time <= maxt && mint < b.meta().max_time)
    }

    /// Handles a block read error: damage is logged, counted and the block is set aside
    /// by the next maintenance while the query goes on without it; other errors fail
    /// the query.
    fn block_error(&self, b: &Block, e: BlockError) -> Result<(), DbError> {
        if e.is_corruption() {
            log::error!("block {} is damaged: {e}", b.dir().display());
            if self.inner.bad_blocks.lock().insert(b.meta().ulid.clone()) {
                bump(&self.inner.counters.corrupted_blocks, 1);
            }
            Ok(())
        } else {
            Err(e.into())
        }
    }

    /// The head's series with head tombstones applied.
    fn head_series(&self, matchers: &[Matcher]) -> Vec<Series> {
        let mut out = self.inner.head.select(matchers, self.mint, self.maxt);
        if self.tombstones.is_empty() {
            return out;
        }
        out.retain_mut(|s| {
            let Some(deleted) = self.tombstones.get(&s.labels) else {
                return true;
            };
            if !deleted.iter().any(|iv| iv.overlaps(self.mint, self.maxt)) {
                return true;
            }
            let mut v = s.samples();
            retain_live(&mut v, deleted);
            if v.is_empty() {
                return false;
            }
            *s = Series::new(
                s.labels.clone(),
                vec![SeriesChunk::Decoded(v.into())],
                self.mint,
                self.maxt,
            );
            true
        });
        out
    }

    /// The series matching all `matchers` with samples in range, sorted by labels.
    /// A missing label matches as `""`, so `{foo=""}` selects series without `foo`.
    pub fn select(&self, matchers: &[Matcher]) -> Result<Vec<Series>, DbError> {
        let mut parts: Vec<Series> = Vec::new();
        let mut sources = 0;
        for b in self.overlapping() {
            match b.select(matchers, self.mint, self.maxt) {
                Ok(v) => {
                    sources += 1;
                    parts.extend(v);
                }
                Err(e) => self.block_error(b, e)?,
            }
        }
        let head = self.head_series(matchers);
        if sources == 0 {
            return Ok(head);
        }
        parts.extend(head);
        // Stable: for equal labels, block order (by time) then the head.
        parts.sort_by(|a, b| a.labels.cmp(&b.labels));
        let mut out: Vec<Series> = Vec::with_capacity(parts.len());
        let mut group: Vec<Series> = Vec::new();
        let flush = |group: &mut Vec<Series>, out: &mut Vec<Series>| {
            if group.len() == 1 {
                out.extend(group.pop());
            } else if let Some(first) = group.first() {
                let labels = first.labels.clone();
                // Sources usually cover disjoint times (blocks, then the head): join
                // their chunks without decoding.
                let parts = match Series::concat(std::mem::take(group)) {
                    Ok(joined) => {
                        out.push(joined);
                        return;
                    }
                    Err(parts) => parts,
                };
                let merged = merge_samples(parts.into_iter().map(|s| s.samples()).collect());
                out.push(Series::new(
                    labels,
                    vec![SeriesChunk::Decoded(merged.into())],
                    self.mint,
                    self.maxt,
                ));
            }
            group.clear();
        };
        for s in parts {
            if group.first().is_some_and(|g| g.labels != s.labels) {
                flush(&mut group, &mut out);
            }
            group.push(s);
        }
        flush(&mut group, &mut out);
        Ok(out)
    }

    /// Sorted label names of the series matching `matchers`: in the head, those with
    /// samples in range; in blocks overlapping the range, all matching series.
    pub fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>, DbError> {
        let mut names: BTreeSet<String> = self
            .inner
            .head
            .label_names(matchers, self.mint, self.maxt)
            .into_iter()
            .collect();
        for b in self.overlapping() {
            match b.label_names(matchers) {
                Ok(v) => names.extend(v),
                Err(e) => self.block_error(b, e)?,
            }
        }
        Ok(names.into_iter().collect())
    }

    /// Sorted distinct values of `name` over the series matching `matchers` (as
    /// [`Self::label_names`]).
    pub fn label_values(&self, name: &str, matchers: &[Matcher]) -> Result<Vec<String>, DbError> {
        let mut values: BTreeSet<String> = self
            .inner
            .head
            .label_values(name, matchers, self.mint, self.maxt)
            .into_iter()
            .collect();
        for b in self.overlapping() {
            match b.label_values(name, matchers) {
                Ok(v) => values.extend(v),
                Err(e) => self.block_error(b, e)?,
            }
        }
        Ok(values.into_iter().collect())
    }
}

impl Querier for DbQuerier<'_> {
    fn select(&self, matchers: &[Matcher]) -> Result<Vec<Series>, StorageError> {
        DbQuerier::select(self, matchers).map_err(super::to_storage)
    }

    fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        DbQuerier::label_names(self, matchers).map_err(super::to_storage)
    }

    fn label_values(&self, name: &str, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        DbQuerier::label_values(self, name, matchers).map_err(super::to_storage)
    }
}
