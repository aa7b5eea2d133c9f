//! Head persistence, WAL checkpoints, compaction, retention, deletion and snapshots.

use std::fs;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::compact::{beyond_size, beyond_time, compaction_ranges, merge_blocks, plan_compaction};
use super::open::{list_checkpoints, set_aside, sort_blocks, CHECKPOINT_PREFIX};
use super::{add_interval, bump, DbError, DbStats, HeadTombstones, Inner};
use crate::block::{rechunk, Block, BlockMeta, BlockWriter, Interval};
use crate::fsutil::{create_tmp_dir, fsync_dir, publish_dir, remove_dir_atomic};
use crate::model::{Labels, Matcher, Sample, Timestamp};
use crate::wal::{FsyncPolicy, Record, RefSample, RefSeries, Tombstone, Wal, WalOptions};

/// Series per record in a checkpoint.
const CHECKPOINT_SERIES_BATCH: usize = 1000;
/// Samples per record in a checkpoint.
const CHECKPOINT_SAMPLES_BATCH: usize = 10_000;
/// Most compactions one maintenance pass runs.
const MAX_COMPACTIONS_PER_PASS: usize = 64;

/// Total apparent size of the files under `path`.
pub(crate) fn dir_size(path: &Path) -> u64 {
    let Ok(md) = fs::symlink_metadata(path) else {
        return 0;
    };
    if !md.is_dir() {
        return md.len();
    }
    let Ok(rd) = fs::read_dir(path) else {
        return 0;
    };
    rd.flatten()
        .map(|e| dir_size(&e.path()))
        .fold(0u64, u64::saturating_add)
}

/// Drops the samples of `v` inside `deleted`.
fn drop_deleted(v: &mut Vec<Sample>, deleted: Option<&Vec<Interval>>) {
    if let Some(d) = deleted {
        v.retain(|s| !d.iter().any(|iv| iv.contains(s.t)));
    }
}

/// Hard-links (or copies) the tree `src` to `dst`.
fn link_tree(src: &Path, dst: &Path) -> Result<(), DbError> {
    fs::create_dir_all(dst).map_err(DbError::io(dst))?;
    for e in fs::read_dir(src).map_err(DbError::io(src))? {
        let e = e.map_err(DbError::io(src))?;
        let from = e.path();
        let to = dst.join(e.file_name());
        if e.file_type().map_err(DbError::io(&from))?.is_dir() {
            link_tree(&from, &to)?;
        } else if fs::hard_link(&from, &to).is_err() {
            fs::copy(&from, &to).map_err(DbError::io(&from))?;
        }
    }
    Ok(())
}

impl Inner {
    pub(super) fn db_stats(&self) -> DbStats {
        let c = &self.counters;
        let get = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        DbStats {
            head: self.head.stats(),
            blocks: self.blocks.read().len() as u64,
            blocks_loaded: get(&c.blocks_loaded),
            corrupted_blocks: get(&c.corrupted_blocks),
            compactions: get(&c.compactions),
            compactions_failed: get(&c.compactions_failed),
            head_blocks_written: get(&c.head_blocks_written),
            head_truncations: get(&c.head_truncations),
            checkpoints: get(&c.checkpoints),
            retention_time_deleted: get(&c.retention_time_deleted),
            retention_size_deleted: get(&c.retention_size_deleted),
            bytes_on_disk: dir_size(&self.dir),
        }
    }

    /// Replaces the served blocks: removes those with ids in `remove`, adds `add`.
    fn swap_blocks(&self, remove: &[String], add: Vec<Block>) {
        let mut g = self.blocks.write();
        let mut v: Vec<Block> = g
            .iter()
            .filter(|b| !remove.contains(&b.meta().ulid))
            .cloned()
            .collect();
        v.extend(add);
        sort_blocks(&mut v);
        *g = Arc::new(v);
    }

    /// Stops serving and deletes the blocks with ids in `ids`; returns how many.
    fn delete_blocks(&self, ids: &[String]) -> Result<usize, DbError> {
        let dirs: Vec<_> = self
            .blocks
            .read()
            .iter()
            .filter(|b| ids.contains(&b.meta().ulid))
            .map(|b| b.dir().to_path_buf())
            .collect();
        self.swap_blocks(ids, Vec::new());
        for d in &dirs {
            remove_dir_atomic(d).map_err(DbError::io(d))?;
        }
        Ok(dirs.len())
    }

    /// Sets aside the blocks a read found damaged.
    fn set_aside_bad_blocks(&self) {
        let bad: Vec<String> = self.bad_blocks.lock().drain().collect();
        if bad.is_empty() {
            return;
        }
        let dirs: Vec<_> = self
            .blocks
            .read()
            .iter()
            .filter(|b| bad.contains(&b.meta().ulid))
            .map(|b| b.dir().to_path_buf())
            .collect();
        self.swap_blocks(&bad, Vec::new());
        for d in dirs {
            set_aside(&d);
        }
    }

    pub(super) fn run_maintenance(&self) -> Result<(), DbError> {
        let _g = self.maint.lock();
        self.compact_locked()?;
        self.retention_locked()?;
        Ok(())
    }

    pub(super) fn compact_locked(&self) -> Result<(), DbError> {
        // Series a truncation had to keep (appender threads held them) are usually
        // free by the next pass.
        self.head.collect_kept();
        self.set_aside_bad_blocks();
        while self.persist_head_once()? {}
        for _ in 0..MAX_COMPACTIONS_PER_PASS {
            match self.compact_once() {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    bump(&self.counters.compactions_failed, 1);
                    if let DbError::Block(b) = &e {
                        if b.is_corruption() {
                            // A parent is damaged: set it aside and go on.
                            log::error!("compaction of {} failed: {e}", self.dir.display());
                            if let crate::block::BlockError::Corrupt { path, .. } = b {
                                let blocks = self.blocks.read().clone();
                                let mut bad = self.bad_blocks.lock();
                                for blk in blocks.iter().filter(|x| path.starts_with(x.dir())) {
                                    if bad.insert(blk.meta().ulid.clone()) {
                                        bump(&self.counters.corrupted_blocks, 1);
                                    }
                                }
                            }
                            self.set_aside_bad_blocks();
                            continue;
                        }
                    }
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// The block range the head should persist next, if it spans more than 1.5 block
    /// ranges.
    fn head_persist_range(&self) -> Option<(Timestamp, Timestamp)> {
        let st = self.head.stats();
        let (lo, hi) = (st.min_time?, st.max_time?);
        let r = self.opts.block_range_ms;
        let span = hi.checked_sub(lo)?;
        if span.saturating_mul(2) <= r.saturating_mul(3) {
            return None;
        }
        let a = lo.div_euclid(r).checked_mul(r)?;
        Some((a, a.checked_add(r)?))
    }

    /// Writes the samples of the head in `[mint, maxt)` (head tombstones applied) as a
    /// level-1 block in `dir`; `None` when there are none.
    fn write_head_block(
        &self,
        dir: &Path,
        mint: Timestamp,
        maxt: Timestamp,
    ) -> Result<Option<BlockMeta>, DbError> {
        let series = self.head.select(&[], mint, maxt.saturating_sub(1));
        if series.is_empty() {
            return Ok(None);
        }
        let tomb = Arc::clone(&self.tombstones.read());
        let mut w = BlockWriter::new(dir, mint, maxt)?;
        let mut n = 0;
        for s in series {
            let mut v = s.samples();
            drop_deleted(&mut v, tomb.get(&s.labels));
            if v.is_empty() {
                continue;
            }
            w.add_series(&s.labels, &rechunk(&v))?;
            n += 1;
        }
        if n == 0 {
            return Ok(None);
        }
        Ok(Some(w.finish(1, Vec::new(), Vec::new())?))
    }

    /// Persists the head's oldest block range when due: block, head truncation, WAL
    /// checkpoint. Returns whether it did.
    fn persist_head_once(&self) -> Result<bool, DbError> {
        let Some((mint, maxt)) = self.head_persist_range() else {
            return Ok(false);
        };
        // From here on no commit adds samples before `maxt`.
        self.head.raise_append_floor(maxt);
        if let Some(meta) = self.write_head_block(&self.dir, mint, maxt)? {
            let block = Block::open(&self.dir.join(&meta.ulid))?;
            self.swap_blocks(&[], vec![block]);
            bump(&self.counters.head_blocks_written, 1);
        }
        self.head.truncate_before(maxt);
        bump(&self.counters.head_truncations, 1);
        self.checkpoint(maxt)?;
        Ok(true)
    }

    /// Writes `wal/checkpoint.N` (N: a newly cut segment) holding every series of the
    /// head with its samples and the head tombstones still relevant at `floor`, then
    /// deletes older checkpoints and the segments before N.
    fn checkpoint(&self, floor: Timestamp) -> Result<(), DbError> {
        let wal_dir = self.wal.dir().to_path_buf();
        // Everything committed before the cut is in the head now (a commit holds its
        // series' locks from the WAL write until its samples are in memory, and the
        // head is read below series by series under those locks).
        let seg = self.wal.cut_segment()?;
        let name = format!("{CHECKPOINT_PREFIX}{seg:08}");
        let tmp = create_tmp_dir(&wal_dir, &name).map_err(DbError::io(&wal_dir))?;
        let res = self.write_checkpoint(&tmp, floor);
        if res.is_err() {
            // e.g. a full disk: do not leave the partial checkpoint taking space
            let _ = fs::remove_dir_all(&tmp);
        }
        res?;
        publish_dir(&tmp, &wal_dir, &name).map_err(DbError::io(&tmp))?;
        for (n, path) in list_checkpoints(&wal_dir)? {
            if n < seg {
                remove_dir_atomic(&path).map_err(DbError::io(&path))?;
            }
        }
        self.wal.truncate_before(self.truncation_limit(seg))?;
        bump(&self.counters.checkpoints, 1);
        Ok(())
    }

    /// Writes the checkpoint's records into the directory `tmp` and closes it.
    fn write_checkpoint(&self, tmp: &Path, floor: Timestamp) -> Result<(), DbError> {
        let opts = WalOptions {
            fsync: FsyncPolicy::Never,
            ..WalOptions::default()
        };
        let (cp, _) = Wal::open(tmp, opts, |_| {})?;
        let mut series: Vec<RefSeries> = Vec::new();
        let mut samples: Vec<RefSample> = Vec::new();
        let mut err = None;
        let flush = |series: &mut Vec<RefSeries>, samples: &mut Vec<RefSample>| {
            let mut recs = Vec::with_capacity(2);
            if !series.is_empty() {
                recs.push(Record::Series(std::mem::take(series)));
            }
            if !samples.is_empty() {
                recs.push(Record::Samples(std::mem::take(samples)));
            }
            cp.log(&recs)
        };
        self.head.for_each_series(|r, labels, v| {
            if err.is_some() {
                return;
            }
            series.push(RefSeries {
                series_ref: r,
                labels: labels.clone(),
            });
            samples.extend(v.iter().map(|s| RefSample {
                series_ref: r,
                t: s.t,
                v: s.v,
            }));
            if series.len() >= CHECKPOINT_SERIES_BATCH || samples.len() >= CHECKPOINT_SAMPLES_BATCH
            {
                if let Err(e) = flush(&mut series, &mut samples) {
                    err = Some(e);
                }
            }
        });
        if let Some(e) = err {
            return Err(e.into());
        }
        flush(&mut series, &mut samples)?;
        // Tombstones that can still hide head samples.
        let kept: HeadTombstones = {
            let mut g = self.tombstones.write();
            let mut m = (**g).clone();
            for list in m.values_mut() {
                list.retain(|iv| iv.max_time >= floor);
            }
            m.retain(|_, l| !l.is_empty());
            *g = Arc::new(m.clone());
            m
        };
        let tomb: Vec<Tombstone> = kept
            .iter()
            .flat_map(|(l, ivs)| {
                ivs.iter().map(move |iv| Tombstone {
                    labels: l.clone(),
                    min_time: iv.min_time,
                    max_time: iv.max_time,
                })
            })
            .collect();
        if !tomb.is_empty() {
            cp.log(&[Record::Tombstones(tomb)])?;
        }
        cp.close()?;
        Ok(())
    }

    /// The first WAL segment to keep after a checkpoint at `seg`: `seg`, or the oldest
    /// segment a WAL reader holds, except that held segments last written before the
    /// time retention are deleted anyway.
    fn truncation_limit(&self, seg: u32) -> u32 {
        let held = {
            let mut holds = self.wal_holds.lock();
            holds.retain(|w| w.strong_count() > 0);
            holds
                .iter()
                .filter_map(std::sync::Weak::upgrade)
                .map(|a| a.load(std::sync::atomic::Ordering::Acquire))
                .min()
                .unwrap_or(u32::MAX)
        };
        let mut limit = seg.min(held);
        if limit < seg && self.opts.retention_time_ms > 0 {
            let cutoff = (self.opts.clock)().saturating_sub(self.opts.retention_time_ms);
            for s in self.wal.segments().unwrap_or_default() {
                if s >= seg {
                    break;
                }
                let old = std::fs::metadata(self.wal.dir().join(format!("{s:08}")))
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
                    .is_some_and(|d| (d.as_millis() as i64) < cutoff);
                if old {
                    limit = limit.max(s + 1);
                }
            }
        }
        limit
    }

    /// The time before which no new data arrives.
    fn horizon(&self) -> Timestamp {
        match self.head.stats().min_time {
            Some(t) if self.head.stats().max_time.is_some() => t,
            _ => self
                .blocks
                .read()
                .iter()
                .map(|b| b.meta().max_time)
                .max()
                .unwrap_or(i64::MIN),
        }
    }

    /// Runs one planned compaction; returns whether there was one.
    fn compact_once(&self) -> Result<bool, DbError> {
        let blocks = Arc::clone(&self.blocks.read());
        let metas: Vec<BlockMeta> = blocks.iter().map(|b| b.meta().clone()).collect();
        let ranges = compaction_ranges(
            self.opts.block_range_ms,
            self.opts.effective_max_block_duration_ms(),
        );
        let plan = plan_compaction(&metas, &ranges, self.horizon());
        if plan.is_empty() {
            return Ok(false);
        }
        let parents: Vec<Block> = blocks
            .iter()
            .filter(|b| plan.contains(&b.meta().ulid))
            .cloned()
            .collect();
        let level = parents
            .iter()
            .map(|b| b.meta().compaction.level)
            .max()
            .unwrap_or(0)
            .saturating_add(1);
        self.replace_blocks(&parents, level)?;
        bump(&self.counters.compactions, 1);
        Ok(true)
    }

    /// Writes `parents` merged as one block, serves it instead of them and deletes them.
    fn replace_blocks(&self, parents: &[Block], level: u32) -> Result<(), DbError> {
        let ids: Vec<String> = parents.iter().map(|b| b.meta().ulid.clone()).collect();
        let add = match merge_blocks(&self.dir, parents, level)? {
            Some(meta) => vec![Block::open(&self.dir.join(&meta.ulid))?],
            None => Vec::new(),
        };
        self.swap_blocks(&ids, add);
        for b in parents {
            remove_dir_atomic(b.dir()).map_err(DbError::io(b.dir()))?;
        }
        Ok(())
    }

    pub(super) fn retention_locked(&self) -> Result<usize, DbError> {
        let mut deleted = 0;
        let metas: Vec<BlockMeta> = self
            .blocks
            .read()
            .iter()
            .map(|b| b.meta().clone())
            .collect();
        // Time retention counts back from the clock, but never from beyond the newest
        // data: a database holding only old data (an import, or a stopped writer) is
        // not emptied by the passing of time alone, as in Prometheus.
        let newest = metas
            .iter()
            .map(|m| m.max_time.saturating_sub(1))
            .chain(self.head.stats().max_time)
            .max();
        let old = match newest {
            Some(newest) => {
                let reference = (self.opts.clock)().min(newest);
                beyond_time(&metas, reference, self.opts.retention_time_ms)
            }
            None => Vec::new(),
        };
        if !old.is_empty() {
            let n = self.delete_blocks(&old)?;
            bump(&self.counters.retention_time_deleted, n as u64);
            deleted += n;
        }
        if self.opts.retention_size_bytes > 0 {
            let sized: Vec<(BlockMeta, u64)> = self
                .blocks
                .read()
                .iter()
                .map(|b| (b.meta().clone(), dir_size(b.dir())))
                .collect();
            let blocks_total = sized.iter().fold(0u64, |a, (_, s)| a.saturating_add(*s));
            let other = dir_size(&self.dir).saturating_sub(blocks_total);
            let big = beyond_size(&sized, other, self.opts.retention_size_bytes);
            if !big.is_empty() {
                let n = self.delete_blocks(&big)?;
                bump(&self.counters.retention_size_deleted, n as u64);
                deleted += n;
            }
        }
        Ok(deleted)
    }

    pub(super) fn delete_locked(
        &self,
        matchers: &[Matcher],
        mint: Timestamp,
        maxt: Timestamp,
    ) -> Result<(), DbError> {
        if mint > maxt {
            return Ok(());
        }
        let labels: Vec<Labels> = self
            .head
            .select(matchers, mint, maxt)
            .into_iter()
            .map(|s| s.labels)
            .collect();
        if !labels.is_empty() {
            let rec: Vec<Tombstone> = labels
                .iter()
                .map(|l| Tombstone {
                    labels: l.clone(),
                    min_time: mint,
                    max_time: maxt,
                })
                .collect();
            self.wal.log(&[Record::Tombstones(rec)])?;
            let mut g = self.tombstones.write();
            let mut m = (**g).clone();
            for l in &labels {
                add_interval(&mut m, l, Interval::new(mint, maxt));
            }
            *g = Arc::new(m);
        }
        let blocks = Arc::clone(&self.blocks.read());
        for b in blocks.iter() {
            let m = b.meta();
            if m.min_time > maxt || m.max_time <= mint {
                continue;
            }
            let (nb, n) = b.delete(matchers, mint, maxt)?;
            if n > 0 {
                let mut g = self.blocks.write();
                let v: Vec<Block> = g
                    .iter()
                    .map(|x| {
                        if x.meta().ulid == m.ulid {
                            nb.clone()
                        } else {
                            x.clone()
                        }
                    })
                    .collect();
                *g = Arc::new(v);
            }
        }
        Ok(())
    }

    pub(super) fn clean_tombstones_locked(&self) -> Result<usize, DbError> {
        let blocks = Arc::clone(&self.blocks.read());
        let mut n = 0;
        for b in blocks.iter().filter(|b| !b.tombstones().is_empty()) {
            self.replace_blocks(std::slice::from_ref(b), b.meta().compaction.level)?;
            n += 1;
        }
        Ok(n)
    }

    pub(super) fn snapshot_locked(&self, dir: &Path, with_head: bool) -> Result<(), DbError> {
        fs::create_dir_all(dir).map_err(DbError::io(dir))?;
        let blocks = Arc::clone(&self.blocks.read());
        for b in blocks.iter() {
            let name = &b.meta().ulid;
            let tmp = create_tmp_dir(dir, name).map_err(DbError::io(dir))?;
            link_tree(b.dir(), &tmp)?;
            publish_dir(&tmp, dir, name).map_err(DbError::io(&tmp))?;
        }
        if with_head {
            let st = self.head.stats();
            if let (Some(lo), Some(hi)) = (st.min_time, st.max_time) {
                self.write_head_block(dir, lo, hi.saturating_add(1))?;
            }
        }
        fsync_dir(dir).map_err(DbError::io(dir))?;
        Ok(())
    }
}
