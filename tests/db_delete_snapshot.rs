//! Deletion across head and blocks (surviving reopen, checkpoints and tombstone
//! cleaning), snapshots that open as data directories, and queriers that outlive the
//! blocks they read.

use std::collections::BTreeMap;
use std::path::Path;

use aion::db::{Db, DbOptions, FsyncPolicy};
use aion::model::{Labels, MatchOp, Matcher};

const BLOCK_RANGE: i64 = 60_000;

type Model = BTreeMap<(String, i64), u64>;

fn opts() -> DbOptions {
    DbOptions::with_fsync(FsyncPolicy::Never)
        .block_range_ms(BLOCK_RANGE)
        .max_block_duration_ms(9 * BLOCK_RANGE)
        .retention_time_ms(0)
        .maintenance_interval(None)
        .replay_workers(1)
}

fn ingest(db: &Db, model: &mut Model, from: i64, to: i64) {
    for i in from..to {
        let t = i * 1_000;
        let mut app = db.appender();
        for s in ["a", "b", "c"] {
            let l = Labels::from_pairs(&[("__name__", "d"), ("s", s)]);
            let v = (i * 3) as f64 + 0.5;
            app.append(&l, t, v).unwrap();
            model.insert((s.to_string(), t), v.to_bits());
        }
        app.commit().unwrap();
    }
}

fn read(db: &Db) -> Model {
    let q = db.querier(i64::MIN, i64::MAX).unwrap();
    let mut out = Model::new();
    for s in q.select(&[]).unwrap() {
        let id = s.labels.get("s").unwrap().to_string();
        for x in s.samples() {
            assert!(out.insert((id.clone(), x.t), x.v.to_bits()).is_none());
        }
    }
    out
}

fn delete(model: &mut Model, series: &[&str], mint: i64, maxt: i64) {
    model.retain(|(s, t), _| !(series.contains(&s.as_str()) && mint <= *t && *t <= maxt));
}

#[test]
fn deletion_spans_head_and_blocks_and_survives_everything() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    let mut model = Model::new();
    ingest(&db, &mut model, 0, 400);
    db.compact().unwrap();
    assert!(db.blocks().len() >= 2);
    let head_min = db.stats().min_time.unwrap();
    // a range across several blocks and into the head
    let (mint, maxt) = (100_000, head_min + 20_000);
    let m = [Matcher::new(MatchOp::RegexMatch, "s", "a|c").unwrap()];
    db.delete_series(&m, mint, maxt).unwrap();
    delete(&mut model, &["a", "c"], mint, maxt);
    assert_eq!(read(&db), model);
    assert!(db.blocks().iter().any(|b| !b.tombstones().is_empty()));

    // reopen: block tombstones from their files, head ones from the WAL
    db.close().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    assert_eq!(read(&db), model);

    // cleaning rewrites the blocks without tombstones; the data stays the same
    let n = db.clean_tombstones().unwrap();
    assert!(n >= 1);
    assert!(db.blocks().iter().all(|b| b.tombstones().is_empty()));
    assert_eq!(read(&db), model);
    db.close().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    assert_eq!(read(&db), model);
    assert!(db.blocks().iter().all(|b| b.tombstones().is_empty()));

    // the head moves on: the deleted head range is persisted without the deleted samples
    // and the WAL is checkpointed (the tombstone record goes with it while relevant)
    ingest(&db, &mut model, 400, 700);
    db.compact().unwrap();
    assert_eq!(read(&db), model);
    db.close().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    assert_eq!(read(&db), model);
}

#[test]
fn deleting_everything_in_a_block_range_leaves_no_empty_block_behind() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    let mut model = Model::new();
    ingest(&db, &mut model, 0, 200);
    db.compact().unwrap();
    let first = db.blocks()[0].meta().clone();
    db.delete_series(&[], first.min_time, first.max_time - 1)
        .unwrap();
    delete(
        &mut model,
        &["a", "b", "c"],
        first.min_time,
        first.max_time - 1,
    );
    db.clean_tombstones().unwrap();
    assert!(db.blocks().iter().all(|b| b.meta().ulid != first.ulid));
    assert!(!dir.path().join(&first.ulid).exists());
    assert_eq!(read(&db), model);
}

fn open_read(dir: &Path) -> Model {
    let db = Db::open(dir, opts()).unwrap();
    let m = read(&db);
    db.close().unwrap();
    m
}

#[test]
fn snapshot_opens_as_a_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    let mut model = Model::new();
    ingest(&db, &mut model, 0, 300);
    db.compact().unwrap();
    db.delete_series(&[Matcher::equal("s", "b")], 10_000, 20_000)
        .unwrap();
    delete(&mut model, &["b"], 10_000, 20_000);
    let head_min = db.stats().min_time.unwrap();

    let snap = tempfile::tempdir().unwrap();
    db.snapshot(snap.path().join("full"), true).unwrap();
    db.snapshot(snap.path().join("blocks"), false).unwrap();
    // the source keeps working and changing after the snapshot
    ingest(&db, &mut model.clone(), 300, 320);
    db.delete_series(&[], 0, 5_000).unwrap();

    assert_eq!(open_read(&snap.path().join("full")), model);
    let blocks_only: Model = model
        .iter()
        .filter(|((_, t), _)| *t < head_min)
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    assert_eq!(open_read(&snap.path().join("blocks")), blocks_only);
    db.close().unwrap();
}

#[test]
fn a_querier_outlives_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    let mut model = Model::new();
    ingest(&db, &mut model, 0, 250);
    // persist the head into level-1 blocks without compacting them yet
    db.compact().unwrap();
    let q = db.querier(i64::MIN, i64::MAX).unwrap();
    let before = db.blocks();
    ingest(&db, &mut model, 250, 1_500);
    db.compact().unwrap();
    db.apply_retention().unwrap();
    // the old blocks are gone from disk...
    assert!(before.iter().any(|b| !b.dir().exists()));
    // ...but the old querier still reads them
    let n: usize = q
        .select(&[])
        .unwrap()
        .iter()
        .map(|s| s.samples().len())
        .sum();
    assert!(n >= 3 * 200, "{n}");
    drop(q);
    assert_eq!(read(&db), model);
}
