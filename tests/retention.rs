//! Retention with an injected clock: by time (no block entirely older than the limit
//! survives a pass, everything newer stays readable) and by size (with steady ingestion
//! the data directory never exceeds the limit by more than 2% after a pass).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use aion::db::{parse_size, Db, DbOptions, FsyncPolicy};
use aion::model::Labels;

const BLOCK_RANGE: i64 = 60_000;
const SERIES: usize = 20;

fn labels(i: usize) -> Labels {
    Labels::from_pairs(&[("__name__", "r"), ("s", &i.to_string())])
}

fn opts(clock: &Arc<AtomicI64>) -> DbOptions {
    let c = Arc::clone(clock);
    DbOptions::with_fsync(FsyncPolicy::Never)
        .block_range_ms(BLOCK_RANGE)
        .maintenance_interval(None)
        .replay_workers(1)
        .clock(move || c.load(Ordering::SeqCst))
}

fn dir_size(p: &Path) -> u64 {
    let md = std::fs::symlink_metadata(p).unwrap();
    if !md.is_dir() {
        return md.len();
    }
    std::fs::read_dir(p)
        .unwrap()
        .map(|e| dir_size(&e.unwrap().path()))
        .sum()
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Appends one sample per series at the clock's time, then advances the clock.
fn ingest(db: &Db, clock: &AtomicI64, model: &mut BTreeMap<(usize, i64), f64>) {
    let t = clock.load(Ordering::SeqCst);
    let mut app = db.appender();
    for s in 0..SERIES {
        // hard-to-compress values, so blocks are as large as the WAL per sample
        let v = f64::from_bits(splitmix(t as u64 ^ (s as u64) << 50));
        app.append(&labels(s), t, v).unwrap();
        model.insert((s, t), v);
    }
    app.commit().unwrap();
    clock.fetch_add(1_000, Ordering::SeqCst);
}

#[test]
fn time_retention_deletes_exactly_the_old_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(AtomicI64::new(1_700_000_000_000));
    let retention = 10 * BLOCK_RANGE;
    let db = Db::open(dir.path(), opts(&clock).retention_time_ms(retention)).unwrap();
    let mut model = BTreeMap::new();
    for i in 0..1_800 {
        ingest(&db, &clock, &mut model);
        if i % 25 == 0 {
            db.run_maintenance().unwrap();
            let now = clock.load(Ordering::SeqCst);
            for b in db.blocks().iter() {
                assert!(
                    b.meta().max_time > now - retention,
                    "block [{}, {}) is entirely older than {}",
                    b.meta().min_time,
                    b.meta().max_time,
                    now - retention
                );
            }
            // everything inside the retention window is still there
            let lo = now - retention;
            let q = db.querier(lo, now).unwrap();
            let mut n = 0;
            for s in q.select(&[]).unwrap() {
                let id: usize = s.labels.get("s").unwrap().parse().unwrap();
                for x in s.samples() {
                    assert_eq!(model[&(id, x.t)].to_bits(), x.v.to_bits());
                    n += 1;
                }
            }
            assert_eq!(
                n,
                model
                    .range((0, lo)..)
                    .filter(|((_, t), _)| *t >= lo)
                    .count()
            );
        }
    }
    let st = db.db_stats();
    assert!(st.retention_time_deleted >= 5, "{st:?}");
    assert_eq!(st.retention_size_deleted, 0);
    // the oldest data is gone
    let q = db
        .querier(i64::MIN, clock.load(Ordering::SeqCst) - 2 * retention)
        .unwrap();
    assert!(q.select(&[]).unwrap().is_empty());
    drop(q);
    db.close().unwrap();
}

#[test]
fn time_retention_counts_from_the_newest_data_not_beyond() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(AtomicI64::new(0));
    let retention = 10 * BLOCK_RANGE;
    let db = Db::open(dir.path(), opts(&clock).retention_time_ms(retention)).unwrap();
    let mut model = BTreeMap::new();
    for _ in 0..400 {
        ingest(&db, &clock, &mut model);
    }
    db.run_maintenance().unwrap();
    let blocks = db.blocks().len();
    assert!(blocks >= 4, "{blocks}");
    // the writer stops and a year passes: the data is not older than the newest data
    clock.fetch_add(365 * 86_400_000, Ordering::SeqCst);
    db.run_maintenance().unwrap();
    assert_eq!(db.blocks().len(), blocks);
    assert_eq!(db.db_stats().retention_time_deleted, 0);
}

#[test]
fn size_retention_keeps_the_directory_within_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(AtomicI64::new(1_700_000_000_000));
    let limit = parse_size("300KB").unwrap();
    assert_eq!(limit, 300 * 1024);
    let db = Db::open(
        dir.path(),
        opts(&clock)
            .retention_time_ms(0)
            .retention_size_bytes(limit),
    )
    .unwrap();
    let mut model = BTreeMap::new();
    let mut max_seen = 0;
    for i in 0..3_000 {
        ingest(&db, &clock, &mut model);
        if i % 20 == 19 {
            db.run_maintenance().unwrap();
            let size = dir_size(dir.path());
            max_seen = max_seen.max(size);
            assert!(
                size as f64 <= limit as f64 * 1.02,
                "after pass {i}: {size} bytes on disk, limit {limit}"
            );
            assert_eq!(db.db_stats().bytes_on_disk, size);
        }
    }
    let st = db.db_stats();
    assert!(st.retention_size_deleted >= 1, "{st:?}");
    assert_eq!(st.retention_time_deleted, 0);
    // the limit was used, not undershot wildly: the newest data is all there
    assert!(max_seen > limit / 2, "{max_seen}");
    let now = clock.load(Ordering::SeqCst);
    let q = db.querier(now - BLOCK_RANGE, now).unwrap();
    let got: usize = q
        .select(&[])
        .unwrap()
        .iter()
        .map(|s| s.samples().len())
        .sum();
    assert_eq!(got, SERIES * 60);
    drop(q);
    db.close().unwrap();
}

#[test]
fn size_units_parse_as_prometheus() {
    assert_eq!(parse_size("0").unwrap(), 0);
    assert_eq!(parse_size("512B").unwrap(), 512);
    assert_eq!(parse_size("1KB").unwrap(), 1024);
    assert_eq!(parse_size("2MB").unwrap(), 2 << 20);
    assert_eq!(parse_size("1GB").unwrap(), 1 << 30);
    assert_eq!(parse_size("1TB").unwrap(), 1 << 40);
    assert_eq!(parse_size("1PB").unwrap(), 1 << 50);
    assert_eq!(parse_size("1EB").unwrap(), 1 << 60);
    assert!(parse_size("16EB").is_err());
    assert!(parse_size("1XB").is_err());
    assert!(parse_size("MB").is_err());
}
