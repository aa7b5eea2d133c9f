//! Opening a data directory: blocks, checkpoint, WAL replay.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use super::lock::DirLock;
use super::{add_interval, Counters, DbError, DbOptions, HeadTombstones, Inner, OpenStats};
use crate::block::{Block, Interval};
use crate::fsutil::{cleanup_tmp_dirs, fsync_dir, remove_dir_atomic};
use crate::head::{HeadOptions, Replay};
use crate::wal::{Record, Wal};

/// Prefix of a checkpoint directory's name in the WAL directory.
pub(crate) const CHECKPOINT_PREFIX: &str = "checkpoint.";

/// Suffix given to a block directory that failed validation.
pub const CORRUPTED_SUFFIX: &str = ".corrupted";

/// Whether `name` looks like a block id (26 Crockford base32 characters).
pub(crate) fn is_block_name(name: &str) -> bool {
    name.len() == 26 && name.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Parses `checkpoint.NNNNNNNN`.
pub(crate) fn parse_checkpoint_name(name: &str) -> Option<u32> {
    let n = name.strip_prefix(CHECKPOINT_PREFIX)?;
    if n.len() == 8 && n.bytes().all(|b| b.is_ascii_digit()) {
        n.parse().ok()
    } else {
        None
    }
}

/// Checkpoints in `wal_dir`, ascending.
pub(crate) fn list_checkpoints(wal_dir: &Path) -> Result<Vec<(u32, PathBuf)>, DbError> {
    let mut out = Vec::new();
    for e in fs::read_dir(wal_dir).map_err(DbError::io(wal_dir))? {
        let e = e.map_err(DbError::io(wal_dir))?;
        if let Some(n) = e.file_name().to_str().and_then(parse_checkpoint_name) {
            out.push((n, e.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// Moves a damaged block out of the way as `<dir>.corrupted` (replacing an older one).
pub(crate) fn set_aside(dir: &Path) {
    let mut name = dir.as_os_str().to_owned();
    name.push(CORRUPTED_SUFFIX);
    let dest = PathBuf::from(name);
    if dest.exists() {
        let _ = fs::remove_dir_all(&dest);
    }
    match fs::rename(dir, &dest) {
        Ok(()) => {
            if let Some(p) = dir.parent() {
                let _ = fsync_dir(p);
            }
            log::error!("set aside damaged block as {}", dest.display());
        }
        Err(e) => log::error!("could not set aside damaged block {}: {e}", dir.display()),
    }
}

/// Loads every block in `dir`. Damaged blocks are set aside; blocks that a compacted
/// block lists as its parents are deleted (a compaction finished writing but was
/// killed before deleting them). Returns the blocks sorted by (min time, id) and how
/// many were set aside.
pub(crate) fn load_blocks(dir: &Path) -> Result<(Vec<Block>, u64), DbError> {
    let mut blocks = Vec::new();
    let mut corrupted = 0;
    for e in fs::read_dir(dir).map_err(DbError::io(dir))? {
        let e = e.map_err(DbError::io(dir))?;
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if !is_block_name(name) || !e.file_type().map_err(DbError::io(dir))?.is_dir() {
            continue;
        }
        let path = e.path();
        match Block::open(&path) {
            Ok(b) => blocks.push(b),
            Err(err) if err.is_corruption() => {
                log::error!("block {} failed validation: {err}", path.display());
                corrupted += 1;
                set_aside(&path);
            }
            Err(err) => {
                log::error!("block {} could not be opened: {err}", path.display());
                corrupted += 1;
                set_aside(&path);
            }
        }
    }
    let parents: HashSet<String> = blocks
        .iter()
        .flat_map(|b| b.meta().compaction.parents.iter().cloned())
        .collect();
    let mut kept = Vec::with_capacity(blocks.len());
    for b in blocks {
        if parents.contains(&b.meta().ulid) {
            log::info!(
                "removing block {} already compacted into another block",
                b.dir().display()
            );
            remove_dir_atomic(b.dir()).map_err(DbError::io(b.dir()))?;
        } else {
            kept.push(b);
        }
    }
    sort_blocks(&mut kept);
    Ok((kept, corrupted))
}

/// Sorts blocks by (min time, id).
pub(crate) fn sort_blocks(blocks: &mut [Block]) {
    blocks.sort_by(|a, b| {
        (a.meta().min_time, &a.meta().ulid).cmp(&(b.meta().min_time, &b.meta().ulid))
    });
}

pub(super) fn open(dir: &Path, opts: DbOptions) -> Result<Inner, DbError> {
    let dir = dir.to_path_buf();
    if opts.block_range_ms <= 0 {
        return Err(DbError::InvalidOptions(format!(
            "block_range_ms must be positive, got {}",
            opts.block_range_ms
        )));
    }
    if opts.retention_time_ms < 0 || opts.max_block_duration_ms < 0 {
        return Err(DbError::InvalidOptions(
            "retention time and max block duration must not be negative".into(),
        ));
    }
    fs::create_dir_all(&dir).map_err(DbError::io(&dir))?;
    let lock = DirLock::acquire(&dir)?;
    cleanup_tmp_dirs(&dir).map_err(DbError::io(&dir))?;
    let (blocks, corrupted) = load_blocks(&dir)?;
    let counters = Counters::default();
    counters
        .blocks_loaded
        .store(blocks.len() as u64, Ordering::Relaxed);
    counters
        .corrupted_blocks
        .store(corrupted, Ordering::Relaxed);
    // Samples before the end of the newest block are persisted already.
    let floor = blocks.iter().map(|b| b.meta().max_time).max();

    let wal_dir = dir.join("wal");
    fs::create_dir_all(&wal_dir).map_err(DbError::io(&wal_dir))?;
    cleanup_tmp_dirs(&wal_dir).map_err(DbError::io(&wal_dir))?;
    let mut checkpoints = list_checkpoints(&wal_dir)?;
    let newest = checkpoints.pop();
    for (_, old) in &checkpoints {
        remove_dir_atomic(old).map_err(DbError::io(old))?;
    }
    // Segments before the checkpoint are condensed in it: they are not replayed, and are
    // left for the next checkpoint to delete (a remote write queue may still need them).
    let first_segment = newest.as_ref().map_or(0, |(n, _)| *n);

    let mut replay = Replay::new(opts.replay_workers);
    let mut tombstones = HeadTombstones::new();
    let mut skipped = 0u64;
    let mut on_record = |rec: Record| match rec {
        Record::Samples(mut s) => {
            if let Some(floor) = floor {
                let before = s.len();
                s.retain(|x| x.t >= floor);
                skipped += (before - s.len()) as u64;
            }
            replay.on_record(Record::Samples(s));
        }
        Record::Tombstones(list) => {
            for t in list {
                add_interval(
                    &mut tombstones,
                    &t.labels,
                    Interval::new(t.min_time, t.max_time),
                );
            }
        }
        other => replay.on_record(other),
    };
    let checkpoint = match &newest {
        Some((_, path)) => {
            let st = crate::wal::read_dir(path, &mut on_record)?;
            if let Some(c) = &st.corrupted {
                log::error!(
                    "WAL checkpoint {}: {} in segment {:08} at offset {}; {} records dropped",
                    path.display(),
                    c.reason,
                    c.segment,
                    c.offset,
                    c.dropped_records
                );
            }
            Some(st)
        }
        None => None,
    };
    let (wal, wal_stats) =
        Wal::open_from(&wal_dir, opts.wal.clone(), first_segment, &mut on_record)?;
    let (head, outcome) = replay.finish(HeadOptions {
        block_range_ms: opts.block_range_ms,
        max_series: opts.max_head_series,
    })?;
    if let Some(floor) = floor {
        head.raise_append_floor(floor);
    }
    if outcome.unknown_refs > 0 || outcome.out_of_order > 0 || outcome.invalid_refs > 0 {
        log::warn!(
            "WAL replay in {}: dropped {} samples of unknown series, {} out-of-order \
             samples and {} series with invalid references",
            dir.display(),
            outcome.unknown_refs,
            outcome.out_of_order,
            outcome.invalid_refs
        );
    }
    Ok(Inner {
        dir,
        opts,
        head,
        wal,
        lock,
        open_stats: OpenStats {
            wal: wal_stats,
            checkpoint,
            head: outcome,
            skipped_persisted: skipped,
        },
        blocks: RwLock::new(Arc::new(blocks)),
        tombstones: RwLock::new(Arc::new(tombstones)),
        bad_blocks: Mutex::new(HashSet::new()),
        maint: Mutex::new(()),
        counters,
        wal_holds: Mutex::new(Vec::new()),
    })
}
