use super::*;
use crate::model::{Labels, MatchOp, Sample};

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn opts() -> DbOptions {
    DbOptions::with_fsync(FsyncPolicy::Never)
}

#[test]
fn db_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Db>();
}

#[test]
fn second_open_is_locked_until_close() {
    let dir = tmp();
    let db = Db::open(dir.path(), opts()).unwrap();
    match Db::open(dir.path(), opts()) {
        Err(DbError::Locked { path }) => assert_eq!(path, dir.path()),
        other => panic!("expected Locked, got {other:?}"),
    }
    let msg = Db::open(dir.path(), opts()).unwrap_err().to_string();
    assert!(msg.contains("is locked by another process"), "{msg}");
    db.close().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    drop(db);
    // dropping releases the lock as well
    Db::open(dir.path(), opts()).unwrap().close().unwrap();
}

#[test]
fn data_survives_reopen() {
    let dir = tmp();
    let a = Labels::from_pairs(&[("__name__", "up"), ("job", "a")]);
    let b = Labels::from_pairs(&[("__name__", "up"), ("job", "b")]);
    let db = Db::open(dir.path(), opts()).unwrap();
    let mut app = db.appender();
    let ra = app.append(&a, 1000, 1.5).unwrap();
    app.append(&b, 1000, f64::NAN).unwrap();
    app.commit().unwrap();
    let mut app = db.appender();
    for t in 1..300 {
        app.append_ref(ra, 1000 + t * 10, t as f64).unwrap();
    }
    app.commit().unwrap();
    // rolled back: must not come back after reopen
    let mut app = db.appender();
    app.append_ref(ra, 99_999, 1.0).unwrap();
    app.append(&Labels::from_pairs(&[("__name__", "ghost")]), 5, 1.0)
        .unwrap();
    drop(app);
    let before = db.querier(i64::MIN, i64::MAX).unwrap().select(&[]).unwrap();
    let stats = db.stats();
    db.close().unwrap();

    let db = Db::open(dir.path(), opts()).unwrap();
    let after = db.querier(i64::MIN, i64::MAX).unwrap().select(&[]).unwrap();
    assert_eq!(after.len(), 2);
    assert_eq!(before.len(), after.len());
    for (x, y) in before.iter().zip(&after) {
        assert_eq!(x.labels, y.labels);
        let xs: Vec<_> = x.samples().iter().map(|s| (s.t, s.v.to_bits())).collect();
        let ys: Vec<_> = y.samples().iter().map(|s| (s.t, s.v.to_bits())).collect();
        assert_eq!(xs, ys);
    }
    assert_eq!(after[0].samples().len(), 300);
    assert!(after[1].samples()[0].v.is_nan());
    let st = db.stats();
    assert_eq!(st.samples_appended, stats.samples_appended);
    assert_eq!(st.num_series, 2);
    assert_eq!(st.max_time, Some(1000 + 299 * 10));
    assert_eq!(db.open_stats().head.samples, 301);
    // the reference survived, and appending continues after the last sample
    let mut app = db.appender();
    assert_eq!(app.append(&a, 1000 + 300 * 10, 0.0).unwrap(), ra);
    assert!(matches!(
        app.append(&a, 1000, 0.0),
        Err(crate::head::AppendError::OutOfOrder { .. })
    ));
    app.commit().unwrap();
    db.close().unwrap();
}

#[test]
fn queryable_trait_works() {
    let dir = tmp();
    let db = Db::open(dir.path(), opts()).unwrap();
    let mut app = db.appender();
    for (job, v) in [("a", 1.0), ("b", 2.0), ("c", 3.0)] {
        let ls = Labels::from_pairs(&[("__name__", "x"), ("job", job)]);
        app.append(&ls, 10, v).unwrap();
        app.append(&ls, 20, v * 10.0).unwrap();
    }
    app.commit().unwrap();
    let qa: &dyn Queryable = &db;
    let q = qa.querier(15, 30).unwrap();
    let m = [Matcher::new(MatchOp::RegexMatch, "job", "a|c").unwrap()];
    let got = q.select(&m).unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].labels.get("job"), Some("a"));
    assert_eq!(got[1].samples(), vec![Sample::new(20, 30.0)]);
    assert_eq!(q.label_values("job", &[]).unwrap(), vec!["a", "b", "c"]);
    assert_eq!(q.label_names(&m).unwrap(), vec!["__name__", "job"]);
}

#[test]
fn invalid_options_rejected() {
    let dir = tmp();
    assert!(matches!(
        Db::open(dir.path(), opts().block_range_ms(0)),
        Err(DbError::InvalidOptions(_))
    ));
}

/// Concurrent appenders on overlapping series, with a reader running alongside: every
/// sample is stored or counted as rejected, reads always see ordered series, and a
/// reopened database holds exactly what was in memory (the WAL order of each series
/// matches the order in which commits were applied).
#[test]
fn concurrent_writers_and_readers_agree_after_reopen() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let dir = tmp();
    let db = Db::open(dir.path(), opts()).unwrap();
    let labels: Vec<Labels> = (0..40)
        .map(|i| Labels::from_pairs(&[("__name__", "c"), ("i", &i.to_string())]))
        .collect();
    let done = AtomicBool::new(false);
    let attempted = 4 * 60 * labels.len() as u64;
    std::thread::scope(|s| {
        let reader = s.spawn(|| {
            let mut reads = 0u32;
            while !done.load(Ordering::Acquire) || reads == 0 {
                let q = db.querier(i64::MIN, i64::MAX).unwrap();
                let got = q.select(&[Matcher::equal("__name__", "c")]).unwrap();
                assert!(got.windows(2).all(|w| w[0].labels < w[1].labels));
                for series in &got {
                    let ts: Vec<i64> = series.samples().iter().map(|x| x.t).collect();
                    assert!(ts.windows(2).all(|w| w[0] < w[1]), "{}", series.labels);
                }
                reads += 1;
            }
        });
        let writers: Vec<_> = (0..4i64)
            .map(|th| {
                let db = &db;
                let labels = &labels;
                s.spawn(move || {
                    for round in 0..60i64 {
                        let mut app = db.appender();
                        // threads interleave timestamps on the same series, so commits
                        // conflict and some samples become out of order at commit time
                        for (i, l) in labels.iter().enumerate() {
                            let t = round * 4 + (th + i as i64) % 4;
                            let _ = app.append(l, t, (th * 1000 + round) as f64);
                        }
                        app.commit().unwrap();
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        done.store(true, Ordering::Release);
        reader.join().unwrap();
    });
    let st = db.stats();
    assert_eq!(
        st.samples_appended + st.out_of_order + st.duplicate,
        attempted,
        "{st:?}"
    );
    let snapshot = |db: &Db| -> Vec<(Labels, Vec<(i64, u64)>)> {
        db.querier(i64::MIN, i64::MAX)
            .unwrap()
            .select(&[])
            .unwrap()
            .into_iter()
            .map(|s| {
                let v = s.samples().iter().map(|x| (x.t, x.v.to_bits())).collect();
                (s.labels, v)
            })
            .collect()
    };
    let before = snapshot(&db);
    db.close().unwrap();
    for workers in [1, 3] {
        let db = Db::open(dir.path(), opts().replay_workers(workers)).unwrap();
        assert_eq!(snapshot(&db), before, "replay with {workers} workers");
        assert_eq!(db.stats().samples_appended, st.samples_appended);
        assert_eq!(db.open_stats().head.out_of_order, 0);
        db.close().unwrap();
    }
}

/// Options under which `Db::compact` persists a block, truncates the head and writes
/// a WAL checkpoint every second of samples.
fn checkpointing_opts() -> DbOptions {
    opts()
        .block_range_ms(1000)
        .retention_time_ms(0)
        .maintenance_interval(None)
}

/// Appends `(t * 100, t)` to `l` for each `t`, one commit each, compacting after every
/// tenth.
fn append_compacting(db: &Db, l: &Labels, ts: std::ops::Range<i64>) {
    for t in ts {
        let mut app = db.appender();
        app.append(l, t * 100, t as f64).unwrap();
        app.commit().unwrap();
        if t % 10 == 9 {
            db.compact().unwrap();
        }
    }
}

/// A WAL segment hold keeps checkpoints from deleting the segments a reader still
/// needs, across a reopen too; releasing it lets the next checkpoint delete them.
#[test]
fn wal_segment_hold_keeps_segments_until_released() {
    let dir = tmp();
    let o = checkpointing_opts();
    let db = Db::open(dir.path(), o.clone()).unwrap();
    let hold = db.wal_segment_hold();
    hold.hold_from(0);
    let l = Labels::from_pairs(&[("__name__", "x")]);
    append_compacting(&db, &l, 0..40);
    assert!(db.db_stats().checkpoints >= 2);
    let segs = db.inner.wal.segments().unwrap();
    assert_eq!(segs.first(), Some(&0), "held segment 0 kept: {segs:?}");
    db.close().unwrap();
    // Reopening replays from the checkpoint and leaves the older segments alone.
    let db = Db::open(dir.path(), o).unwrap();
    assert_eq!(db.inner.wal.segments().unwrap().first(), Some(&0));
    let all = db.querier(0, 10_000).unwrap().select(&[]).unwrap();
    let ts: Vec<i64> = all[0].samples().iter().map(|s| s.t).collect();
    assert_eq!(ts, (0..40).map(|t| t * 100).collect::<Vec<_>>());
    drop(hold);
    let mut app = db.appender();
    for t in 40..60 {
        app.append(&l, t * 100, t as f64).unwrap();
    }
    app.commit().unwrap();
    db.compact().unwrap();
    let segs = db.inner.wal.segments().unwrap();
    assert_ne!(segs.first(), Some(&0), "released: {segs:?}");
}

/// A series left without samples by a head truncation but kept (a scrape cache holds
/// it) keeps its series record in the checkpoint, so samples appended to it later
/// survive a crash once the segments holding its original record are deleted.
#[test]
fn series_kept_empty_survives_checkpoint_and_crash() {
    let dir = tmp();
    let o = checkpointing_opts();
    let db = Db::open(dir.path(), o.clone()).unwrap();
    let a = Labels::from_pairs(&[("__name__", "a")]);
    let b = Labels::from_pairs(&[("__name__", "b")]);
    let mut app = db.appender();
    let a_ref = app.append(&a, 100, 1.0).unwrap();
    app.commit().unwrap();
    let handle = db.head().handle(a_ref).unwrap();
    append_compacting(&db, &b, 1..60);
    assert!(db.db_stats().checkpoints >= 2);
    let segs = db.inner.wal.segments().unwrap();
    assert_ne!(segs.first(), Some(&0), "old segments deleted: {segs:?}");
    // `a` is still in the head, without samples, and gets a new one.
    let mut app = db.appender();
    assert_eq!(app.append(&a, 5_950, 2.0).unwrap(), a_ref);
    app.commit().unwrap();
    // A crash: the files as they are now, opened by another process.
    let copy = tmp();
    copy_dir(dir.path(), copy.path());
    drop(handle);
    drop(db);
    let db = Db::open(copy.path(), o).unwrap();
    let got = db
        .querier(5_900, 10_000)
        .unwrap()
        .select(&[crate::model::Matcher::new(MatchOp::Equal, "__name__", "a").unwrap()])
        .unwrap();
    assert_eq!(got.len(), 1, "series a after the crash");
    assert_eq!(got[0].samples(), vec![Sample::new(5_950, 2.0)]);
}

/// Copies a data directory except its lock file, as a crash would leave it.
fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dst);
        } else if e.file_name() != "lock" {
            std::fs::copy(e.path(), dst).unwrap();
        }
    }
}
