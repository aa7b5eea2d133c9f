//! Compaction planning and execution, and the retention rules. The planner and the
//! retention rules are pure functions over block metas so they can be tested alone.

use std::collections::BTreeMap;
use std::path::Path;

use crate::block::{rechunk, Block, BlockError, BlockMeta, BlockWriter};
use crate::chunk::ChunkData;
use crate::model::{Labels, Sample, Timestamp};

/// The compaction ranges: `block_range × 3^k` for k = 0, 1, ... while not above
/// `max_block_duration` (2 h, 6 h, 18 h, 54 h, ... by default, as Prometheus).
pub fn compaction_ranges(block_range: i64, max_block_duration: i64) -> Vec<i64> {
    let mut out = Vec::new();
    let mut r = block_range;
    while r > 0 && r <= max_block_duration.max(block_range) {
        out.push(r);
        match r.checked_mul(3) {
            Some(n) => r = n,
            None => break,
        }
    }
    out
}

/// Chooses blocks to merge into one, returning their ids (empty: nothing to do).
///
/// `metas` are the blocks served, in any order; `ranges` come from
/// [`compaction_ranges`]; `horizon` is the time before which no new data arrives (the
/// head's minimum time, or the end of the newest block when the head is empty).
///
/// 1. Overlapping blocks (from backfill, or a block cut from the head over data also in
///    an older block) are merged first: the first group of blocks, by time, whose
///    ranges overlap each other transitively.
/// 2. Then, for each range after the first (6 h, 18 h, ...), blocks are grouped by the
///    aligned window `[k·range, (k+1)·range)` that contains them entirely; the oldest
///    window with at least two blocks is chosen when it ends at or before `horizon`
///    (the head has moved past it, so no block will join it later).
pub fn plan_compaction(metas: &[BlockMeta], ranges: &[i64], horizon: Timestamp) -> Vec<String> {
    let mut sorted: Vec<&BlockMeta> = metas.iter().collect();
    sorted.sort_by(|a, b| (a.min_time, &a.ulid).cmp(&(b.min_time, &b.ulid)));
    // Overlaps.
    let mut group: Vec<&BlockMeta> = Vec::new();
    let mut group_max = i64::MIN;
    for m in &sorted {
        if !group.is_empty() && m.min_time < group_max {
            group.push(m);
            group_max = group_max.max(m.max_time);
            continue;
        }
        if group.len() > 1 {
            break;
        }
        group = vec![m];
        group_max = m.max_time;
    }
    if group.len() > 1 {
        return group.iter().map(|m| m.ulid.clone()).collect();
    }
    // Leveled ranges.
    for &r in ranges.iter().skip(1) {
        let mut windows: BTreeMap<i64, Vec<&BlockMeta>> = BTreeMap::new();
        for m in &sorted {
            let w = m.min_time.div_euclid(r).saturating_mul(r);
            if m.max_time <= w.saturating_add(r) {
                windows.entry(w).or_default().push(m);
            }
        }
        for (w, blocks) in windows {
            if blocks.len() >= 2 && w.saturating_add(r) <= horizon {
                return blocks.iter().map(|m| m.ulid.clone()).collect();
            }
        }
    }
    Vec::new()
}

/// Ids of the blocks whose data is entirely older than `now - retention_ms` (their
/// exclusive end is at or before it), oldest first. `retention_ms <= 0` means no
/// time retention.
pub fn beyond_time(metas: &[BlockMeta], now: Timestamp, retention_ms: i64) -> Vec<String> {
    if retention_ms <= 0 {
        return Vec::new();
    }
    let cutoff = now.saturating_sub(retention_ms);
    let mut old: Vec<&BlockMeta> = metas.iter().filter(|m| m.max_time <= cutoff).collect();
    old.sort_by(|a, b| (a.min_time, &a.ulid).cmp(&(b.min_time, &b.ulid)));
    old.into_iter().map(|m| m.ulid.clone()).collect()
}

/// Ids of the blocks to delete, oldest first, so that `other_bytes` (WAL, checkpoint
/// and anything else in the data directory) plus the sizes of the remaining blocks
/// fit in `limit_bytes`. `limit_bytes == 0` means no size retention.
pub fn beyond_size(blocks: &[(BlockMeta, u64)], other_bytes: u64, limit_bytes: u64) -> Vec<String> {
    if limit_bytes == 0 {
        return Vec::new();
    }
    let mut sorted: Vec<&(BlockMeta, u64)> = blocks.iter().collect();
    sorted.sort_by(|(a, _), (b, _)| (a.min_time, &a.ulid).cmp(&(b.min_time, &b.ulid)));
    let mut total = blocks
        .iter()
        .fold(other_bytes, |acc, (_, s)| acc.saturating_add(*s));
    let mut out = Vec::new();
    for (m, size) in sorted {
        if total <= limit_bytes {
            break;
        }
        total = total.saturating_sub(*size);
        out.push(m.ulid.clone());
    }
    out
}

type SeriesItem = (Labels, Vec<ChunkData>);

/// Merges `blocks` into one new block in `dir` covering their union range: series
/// merged by labels in order, samples de-duplicated by timestamp, tombstones applied.
/// Returns the new block's meta, or `None` when nothing is left (every sample deleted).
pub(crate) fn merge_blocks(
    dir: &Path,
    blocks: &[Block],
    level: u32,
) -> Result<Option<BlockMeta>, BlockError> {
    let (Some(mint), Some(maxt)) = (
        blocks.iter().map(|b| b.meta().min_time).min(),
        blocks.iter().map(|b| b.meta().max_time).max(),
    ) else {
        return Ok(None);
    };
    let mut sources: Vec<String> = blocks
        .iter()
        .flat_map(|b| b.meta().compaction.sources.iter().cloned())
        .collect();
    sources.sort();
    sources.dedup();
    let parents: Vec<String> = blocks.iter().map(|b| b.meta().ulid.clone()).collect();
    let mut writer = BlockWriter::new(dir, mint, maxt)?;
    let mut iters: Vec<_> = blocks.iter().map(|b| b.series_chunks()).collect();
    let mut heads: Vec<Option<SeriesItem>> = Vec::with_capacity(iters.len());
    for it in iters.iter_mut() {
        heads.push(it.next().transpose()?);
    }
    let mut written = 0u64;
    while let Some(min) = heads.iter().flatten().map(|(l, _)| l).min().cloned() {
        let mut parts: Vec<Vec<ChunkData>> = Vec::new();
        for (h, it) in heads.iter_mut().zip(iters.iter_mut()) {
            if h.as_ref().is_some_and(|(l, _)| *l == min) {
                if let Some((_, chunks)) = h.take() {
                    parts.push(chunks);
                }
                *h = it.next().transpose()?;
            }
        }
        let chunks = if parts.len() == 1 {
            parts.pop().unwrap_or_default()
        } else {
            let mut samples: Vec<Sample> = parts
                .iter()
                .flat_map(|cs| cs.iter().flat_map(ChunkData::iter))
                .collect();
            samples.sort_by_key(|s| s.t);
            samples.dedup_by_key(|s| s.t);
            rechunk(&samples)
        };
        if !chunks.is_empty() {
            writer.add_series(&min, &chunks)?;
            written += 1;
        }
    }
    if written == 0 {
        return Ok(None);
    }
    Ok(Some(writer.finish(level, sources, parents)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::{BlockStats, CompactionMeta, META_VERSION};

    const H: i64 = 3_600_000;

    fn meta(id: &str, min: i64, max: i64) -> BlockMeta {
        BlockMeta {
            ulid: id.to_string(),
            min_time: min,
            max_time: max,
            stats: BlockStats::default(),
            compaction: CompactionMeta {
                level: 1,
                sources: vec![id.to_string()],
                parents: vec![],
            },
            version: META_VERSION,
        }
    }

    #[test]
    fn ranges_grow_by_three() {
        assert_eq!(
            compaction_ranges(2 * H, 54 * H),
            vec![2 * H, 6 * H, 18 * H, 54 * H]
        );
        assert_eq!(compaction_ranges(2 * H, 53 * H), vec![2 * H, 6 * H, 18 * H]);
        assert_eq!(compaction_ranges(2 * H, H), vec![2 * H]);
    }

    #[test]
    fn planner_levels() {
        let r = compaction_ranges(2 * H, 54 * H);
        let a = meta("a", 0, 2 * H);
        let b = meta("b", 2 * H, 4 * H);
        let c = meta("c", 4 * H, 6 * H);
        // window [0, 6h) not closed while the head is at 4h
        assert!(plan_compaction(&[a.clone(), b.clone()], &r, 4 * H).is_empty());
        // head moved past it: the two blocks merge
        assert_eq!(
            plan_compaction(&[b.clone(), a.clone()], &r, 6 * H),
            vec!["a", "b"]
        );
        assert_eq!(
            plan_compaction(&[a.clone(), b.clone(), c.clone()], &r, 6 * H),
            vec!["a", "b", "c"]
        );
        // a single block per window: nothing
        let d = meta("d", 0, 6 * H);
        let e = meta("e", 6 * H, 12 * H);
        assert!(plan_compaction(std::slice::from_ref(&d), &r, 100 * H).is_empty());
        // two 6h blocks in the 18h window once the head passed 18h
        assert!(plan_compaction(&[d.clone(), e.clone()], &r, 17 * H).is_empty());
        assert_eq!(
            plan_compaction(&[d.clone(), e.clone()], &r, 18 * H),
            vec!["d", "e"]
        );
        // a block crossing a window boundary is not part of that window
        let x = meta("x", 5 * H, 7 * H);
        assert!(plan_compaction(&[x, meta("y", 7 * H, 9 * H)], &r[..2], 100 * H).is_empty());
    }

    #[test]
    fn planner_merges_overlaps_first() {
        let r = compaction_ranges(2 * H, 54 * H);
        let a = meta("a", 0, 2 * H);
        let b = meta("b", H, 3 * H);
        let c = meta("c", 10 * H, 12 * H);
        let d = meta("d", 11 * H, 13 * H);
        assert_eq!(
            plan_compaction(&[c.clone(), d.clone(), a.clone(), b.clone()], &r, 0),
            vec!["a", "b"]
        );
        assert_eq!(plan_compaction(&[c, d], &r, 0), vec!["c", "d"]);
        // touching is not overlapping
        assert!(plan_compaction(&[a, meta("e", 2 * H, 4 * H)], &r, 0).is_empty());
    }

    #[test]
    fn retention_rules() {
        let ms = [meta("a", 0, 10), meta("b", 10, 20), meta("c", 20, 30)];
        assert_eq!(beyond_time(&ms, 30, 10), vec!["a", "b"]);
        assert_eq!(beyond_time(&ms, 29, 10), vec!["a"]);
        assert!(beyond_time(&ms, 1000, 0).is_empty());
        let sized: Vec<(BlockMeta, u64)> = ms.iter().cloned().map(|m| (m, 100)).collect();
        assert!(beyond_size(&sized, 50, 350).is_empty());
        assert_eq!(beyond_size(&sized, 50, 349), vec!["a"]);
        assert_eq!(beyond_size(&sized, 50, 150), vec!["a", "b"]);
        assert_eq!(beyond_size(&sized, 500, 150), vec!["a", "b", "c"]);
        assert!(beyond_size(&sized, 500, 0).is_empty());
    }
}
