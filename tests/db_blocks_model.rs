//! Model test of the database over blocks: random batches of appends (committed or
//! rolled back), head persistence and compaction (forced often by a one-minute block
//! range), deletions, tombstone cleaning and reopens, checked after every step against
//! a `BTreeMap` model with full-range and random-range queries.

use std::collections::{BTreeMap, BTreeSet};

use aion::db::{Db, DbOptions, FsyncPolicy};
use aion::model::{Labels, MatchOp, Matcher};
use proptest::prelude::*;

const BLOCK_RANGE: i64 = 60_000;
const SERIES: usize = 5;

type Model = BTreeMap<Labels, BTreeMap<i64, u64>>;

#[derive(Debug, Clone)]
enum Op {
    /// Samples `(series, time step, value)`, then commit (or roll back).
    Batch(Vec<(usize, i64, u8)>, bool),
    Compact,
    /// Delete from series matching `s=~"a|b"` (or one series) the range
    /// `[now - back - len, now - back]`.
    Delete {
        series: usize,
        pair: bool,
        back: i64,
        len: i64,
    },
    CleanTombstones,
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        10 => (
            prop::collection::vec((0..SERIES, 1i64..12_000, any::<u8>()), 1..12),
            prop::bool::weighted(0.9)
        )
            .prop_map(|(v, c)| Op::Batch(v, c)),
        3 => Just(Op::Compact),
        1 => (0..SERIES, any::<bool>(), 0i64..200_000, 0i64..100_000)
            .prop_map(|(series, pair, back, len)| Op::Delete { series, pair, back, len }),
        1 => Just(Op::CleanTombstones),
        1 => Just(Op::Reopen),
    ]
}

fn labels(i: usize) -> Labels {
    Labels::from_pairs(&[("__name__", "m"), ("s", &i.to_string())])
}

fn opts() -> DbOptions {
    DbOptions::with_fsync(FsyncPolicy::Never)
        .block_range_ms(BLOCK_RANGE)
        .max_block_duration_ms(9 * BLOCK_RANGE)
        .retention_time_ms(0)
        .maintenance_interval(None)
        .replay_workers(1)
}

fn read(db: &Db, mint: i64, maxt: i64) -> Model {
    let q = db.querier(mint, maxt).unwrap();
    let got = q.select(&[]).unwrap();
    assert!(got.windows(2).all(|w| w[0].labels < w[1].labels));
    got.into_iter()
        .map(|s| {
            let samples = s.samples();
            assert!(samples.windows(2).all(|w| w[0].t < w[1].t), "{}", s.labels);
            assert!(!samples.is_empty(), "{} returned without samples", s.labels);
            let m = samples.iter().map(|x| (x.t, x.v.to_bits())).collect();
            (s.labels, m)
        })
        .collect()
}

fn restrict(model: &Model, mint: i64, maxt: i64) -> Model {
    if mint > maxt {
        return Model::new();
    }
    model
        .iter()
        .map(|(l, m)| {
            let r: BTreeMap<i64, u64> = m.range(mint..=maxt).map(|(k, v)| (*k, *v)).collect();
            (l.clone(), r)
        })
        .filter(|(_, m)| !m.is_empty())
        .collect()
}

fn run(ops: Vec<Op>, queries: Vec<(i64, i64)>) {
    let dir = tempfile::tempdir().unwrap();
    let mut db = Db::open(dir.path(), opts()).unwrap();
    let mut model = Model::new();
    let mut now = 0i64;
    for (step, op) in ops.into_iter().enumerate() {
        match op {
            Op::Batch(samples, commit) => {
                let mut app = db.appender();
                let mut pending = Vec::new();
                for (s, dt, v) in samples {
                    now += dt;
                    let v = f64::from(v) - 7.5;
                    app.append(&labels(s), now, v).unwrap();
                    pending.push((labels(s), now, v.to_bits()));
                }
                if commit {
                    let st = app.commit().unwrap();
                    assert_eq!(st.samples_appended as usize, pending.len());
                    for (l, t, v) in pending {
                        model.entry(l).or_default().insert(t, v);
                    }
                } else {
                    app.rollback();
                }
            }
            Op::Compact => db.compact().unwrap(),
            Op::Delete {
                series,
                pair,
                back,
                len,
            } => {
                let maxt = now - back;
                let mint = maxt - len;
                let m = if pair {
                    let re = format!("{}|{}", series, (series + 1) % SERIES);
                    Matcher::new(MatchOp::RegexMatch, "s", re).unwrap()
                } else {
                    Matcher::equal("s", series.to_string())
                };
                db.delete_series(std::slice::from_ref(&m), mint, maxt)
                    .unwrap();
                for (l, samples) in model.iter_mut() {
                    if m.matches(l.get_or_empty("s")) {
                        let doomed: Vec<i64> =
                            samples.range(mint..=maxt).map(|(k, _)| *k).collect();
                        for t in doomed {
                            samples.remove(&t);
                        }
                    }
                }
            }
            Op::CleanTombstones => {
                db.clean_tombstones().unwrap();
                assert!(db.blocks().iter().all(|b| b.tombstones().is_empty()));
            }
            Op::Reopen => {
                db.close().unwrap();
                db = Db::open(dir.path(), opts()).unwrap();
            }
        }
        let want = restrict(&model, i64::MIN, i64::MAX);
        assert_eq!(read(&db, i64::MIN, i64::MAX), want, "step {step}");
        let (a, b) = queries[step % queries.len()];
        let (lo, hi) = (now * a / 100, now * b / 100);
        assert_eq!(
            read(&db, lo, hi),
            restrict(&model, lo, hi),
            "step {step} [{lo}, {hi}]"
        );
        // label values come from whole blocks: at least the model's
        let vals: BTreeSet<String> = db
            .querier(i64::MIN, i64::MAX)
            .unwrap()
            .label_values("s", &[])
            .unwrap()
            .into_iter()
            .collect();
        for l in want.keys() {
            assert!(vals.contains(l.get_or_empty("s")), "step {step}: {l}");
        }
        // the head never writes below its floor, so blocks never overlap
        let blocks = db.blocks();
        for w in blocks.windows(2) {
            assert!(w[0].meta().max_time <= w[1].meta().min_time, "step {step}");
        }
    }
    // a final pass persists and compacts everything that is due and nothing changes
    db.compact().unwrap();
    assert_eq!(
        read(&db, i64::MIN, i64::MAX),
        restrict(&model, i64::MIN, i64::MAX)
    );
    let st = db.db_stats();
    db.close().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    assert_eq!(
        read(&db, i64::MIN, i64::MAX),
        restrict(&model, i64::MIN, i64::MAX)
    );
    assert_eq!(db.db_stats().blocks, st.blocks);
    assert_eq!(db.db_stats().corrupted_blocks, 0);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn db_with_blocks_matches_model(
        ops in prop::collection::vec(op(), 1..60),
        queries in prop::collection::vec((0i64..100, 0i64..110), 1..8),
    ) {
        run(ops, queries);
    }
}

/// A long deterministic run: many blocks, several compaction levels, a reopen at the
/// end; the persistence counters show that the machinery ran.
#[test]
fn long_run_persists_compacts_and_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    let mut model = Model::new();
    let mut t = 0;
    for round in 0..400 {
        let mut app = db.appender();
        for s in 0..SERIES {
            t += 500;
            let v = (round * 10 + s) as f64;
            app.append(&labels(s), t, v).unwrap();
            model.entry(labels(s)).or_default().insert(t, v.to_bits());
        }
        app.commit().unwrap();
        if round % 20 == 0 {
            db.compact().unwrap();
        }
    }
    db.compact().unwrap();
    let st = db.db_stats();
    assert!(st.head_blocks_written >= 10, "{st:?}");
    assert!(st.compactions >= 3, "{st:?}");
    assert!(st.checkpoints >= 10, "{st:?}");
    // the head holds only the recent part
    assert!(db.stats().min_time.unwrap() > t - 3 * BLOCK_RANGE);
    let levels: BTreeSet<u32> = db
        .blocks()
        .iter()
        .map(|b| b.meta().compaction.level)
        .collect();
    assert!(levels.iter().any(|&l| l >= 3), "{levels:?}");
    assert_eq!(read(&db, i64::MIN, i64::MAX), model);
    // only one checkpoint and few segments are left
    let wal: Vec<String> = std::fs::read_dir(dir.path().join("wal"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        wal.iter().filter(|n| n.starts_with("checkpoint.")).count(),
        1,
        "{wal:?}"
    );
    db.close().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    assert_eq!(read(&db, i64::MIN, i64::MAX), model);
    assert!(db.open_stats().checkpoint.is_some());
}
