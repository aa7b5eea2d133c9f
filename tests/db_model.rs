//! Model test: random appends, commits, rollbacks and reopens against a plain map.
//! After every step the database must answer random queries exactly as the model does,
//! and every append must be accepted or rejected exactly as the model predicts.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use aion::db::{Db, DbOptions, FsyncPolicy};
use aion::head::AppendError;
use aion::model::{Labels, MatchOp, Matcher, STALE_NAN};
use proptest::prelude::*;

/// Half of this is the out-of-bounds window; timestamps span several windows.
const BLOCK_RANGE: i64 = 400;

const POOL: &[&[(&str, &str)]] = &[
    &[("__name__", "a")],
    &[("__name__", "a"), ("job", "x")],
    &[("__name__", "a"), ("job", "y")],
    &[("__name__", "b"), ("job", "x")],
    &[("__name__", "b"), ("job", "x"), ("env", "p")],
    // normalizes to the first entry: empty values are dropped
    &[("__name__", "a"), ("env", "")],
    &[("job", "z")],
];

const VALUES: &[f64] = &[0.0, 1.0, -1.0, f64::NAN, STALE_NAN];

#[derive(Debug, Clone)]
enum Op {
    Append {
        series: usize,
        t: i64,
        v: usize,
        by_ref: bool,
    },
    Commit,
    Rollback,
    Reopen,
}

#[derive(Debug, Clone)]
struct Query {
    matchers: Vec<(MatchOp, &'static str, &'static str)>,
    mint: i64,
    maxt: i64,
    label: &'static str,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        12 => (0..POOL.len(), 0i64..1500, 0..VALUES.len(), any::<bool>())
            .prop_map(|(series, t, v, by_ref)| Op::Append { series, t, v, by_ref }),
        3 => Just(Op::Commit),
        1 => Just(Op::Rollback),
        1 => Just(Op::Reopen),
    ]
}

fn query() -> impl Strategy<Value = Query> {
    let name = prop::sample::select(vec!["__name__", "job", "env", "zz"]);
    let value = prop::sample::select(vec![
        "", "a", "b", "x", "z", "a|b", ".*", ".+", "x|", "[ab]", "p",
    ]);
    let op = prop::sample::select(vec![
        MatchOp::Equal,
        MatchOp::NotEqual,
        MatchOp::RegexMatch,
        MatchOp::RegexNoMatch,
    ]);
    (
        prop::collection::vec((op, name.clone(), value), 0..3),
        -10i64..1600,
        -10i64..1600,
        name,
    )
        .prop_map(|(matchers, mint, maxt, label)| Query {
            matchers,
            mint,
            maxt,
            label,
        })
}

/// Committed data: labels → time → value bits.
type Model = BTreeMap<Labels, BTreeMap<i64, u64>>;

fn normalized(i: usize) -> Labels {
    let pairs: Vec<(&str, &str)> = POOL[i]
        .iter()
        .copied()
        .filter(|(_, v)| !v.is_empty())
        .collect();
    Labels::from_pairs(&pairs)
}

fn check(db: &Db, model: &Model, q: &Query) {
    let matchers: Vec<Matcher> = q
        .matchers
        .iter()
        .map(|(op, n, v)| Matcher::new(*op, *n, *v).unwrap())
        .collect();
    let want: Vec<(Labels, Vec<(i64, u64)>)> = model
        .iter()
        .filter(|(l, _)| matchers.iter().all(|m| m.matches(l.get_or_empty(&m.name))))
        .map(|(l, s)| {
            let in_range: Vec<(i64, u64)> = if q.mint <= q.maxt {
                s.range(q.mint..=q.maxt).map(|(t, v)| (*t, *v)).collect()
            } else {
                Vec::new()
            };
            (l.clone(), in_range)
        })
        .filter(|(_, s)| !s.is_empty())
        .collect();
    let querier = db.querier(q.mint, q.maxt).unwrap();
    let got: Vec<(Labels, Vec<(i64, u64)>)> = querier
        .select(&matchers)
        .unwrap()
        .into_iter()
        .map(|s| {
            let samples = s.samples().iter().map(|x| (x.t, x.v.to_bits())).collect();
            (s.labels, samples)
        })
        .collect();
    assert_eq!(got, want, "select {matchers:?} in [{}, {}]", q.mint, q.maxt);

    let names: BTreeSet<String> = want
        .iter()
        .flat_map(|(l, _)| l.iter().map(|x| x.name.to_string()))
        .collect();
    assert_eq!(
        querier.label_names(&matchers).unwrap(),
        names.into_iter().collect::<Vec<_>>(),
        "label_names {matchers:?}"
    );
    let values: BTreeSet<String> = want
        .iter()
        .filter_map(|(l, _)| l.get(q.label).map(str::to_string))
        .collect();
    assert_eq!(
        querier.label_values(q.label, &matchers).unwrap(),
        values.into_iter().collect::<Vec<_>>(),
        "label_values {} {matchers:?}",
        q.label
    );
}

/// Predicts what one append does. `last` is the series' newest sample as the appender
/// sees it; returns the expected result and updates the pending state.
fn predict(
    min_valid: &mut Option<i64>,
    last: Option<(i64, u64)>,
    t: i64,
    bits: u64,
) -> Result<bool, AppendError> {
    let mv = *min_valid.get_or_insert(t - BLOCK_RANGE / 2);
    if t < mv {
        return Err(AppendError::OutOfBounds { t, min_valid: mv });
    }
    match last {
        Some((lt, _)) if t < lt => Err(AppendError::OutOfOrder { t, max_t: lt }),
        Some((lt, lb)) if t == lt && lb != bits => Err(AppendError::DuplicateSample { t }),
        Some((lt, _)) if t == lt => Ok(false),
        _ => Ok(true),
    }
}

fn run(ops: Vec<(Op, Query)>, replay_workers: usize) {
    let dir = tempfile::tempdir().unwrap();
    let opts = DbOptions::with_fsync(FsyncPolicy::Never)
        .block_range_ms(BLOCK_RANGE)
        .replay_workers(replay_workers);
    let mut db = Db::open(dir.path(), opts.clone()).unwrap();
    let mut model: Model = BTreeMap::new();
    let mut refs: HashMap<Labels, u64> = HashMap::new();
    let mut rejected = (0u64, 0u64, 0u64);
    let mut appended = 0u64;
    let mut i = 0;
    while i < ops.len() {
        let mut app = db.appender();
        let head_max = model
            .values()
            .filter_map(|s| s.keys().next_back())
            .max()
            .copied();
        let mut min_valid = head_max.map(|m| m - BLOCK_RANGE / 2);
        let mut pending: BTreeMap<Labels, BTreeMap<i64, u64>> = BTreeMap::new();
        let mut end = None;
        while let Some((op, q)) = ops.get(i) {
            i += 1;
            match op {
                Op::Append {
                    series,
                    t,
                    v,
                    by_ref,
                } => {
                    let labels = normalized(*series);
                    let bits = VALUES[*v].to_bits();
                    let last = pending
                        .get(&labels)
                        .and_then(|p| p.iter().next_back())
                        .or_else(|| model.get(&labels).and_then(|s| s.iter().next_back()))
                        .map(|(t, b)| (*t, *b));
                    let want = predict(&mut min_valid, last, *t, bits);
                    let got = match refs.get(&labels) {
                        Some(&r) if *by_ref => app.append_ref(r, *t, VALUES[*v]),
                        _ => app.append(&pool_labels(*series), *t, VALUES[*v]).map(|r| {
                            refs.insert(labels.clone(), r);
                        }),
                    };
                    match (&want, &got) {
                        (Ok(_), Ok(())) => {}
                        (Err(w), Err(g)) => assert_eq!(w, g),
                        _ => panic!("append {labels} {t} {bits:x}: want {want:?}, got {got:?}"),
                    }
                    match want {
                        Ok(true) => {
                            pending.entry(labels).or_default().insert(*t, bits);
                        }
                        Ok(false) => {}
                        Err(AppendError::OutOfOrder { .. }) => rejected.0 += 1,
                        Err(AppendError::DuplicateSample { .. }) => rejected.1 += 1,
                        Err(AppendError::OutOfBounds { .. }) => rejected.2 += 1,
                        Err(e) => panic!("unexpected prediction {e}"),
                    }
                }
                other => {
                    end = Some(other.clone());
                    check(&db, &model, q);
                    break;
                }
            }
            // pending samples are invisible
            check(&db, &model, q);
        }
        let n_pending: u64 = pending.values().map(|s| s.len() as u64).sum();
        match end {
            Some(Op::Commit) => {
                let st = app.commit().unwrap();
                assert_eq!(st.samples_appended, n_pending);
                for (l, s) in pending {
                    model.entry(l).or_default().extend(s);
                }
            }
            Some(Op::Reopen) => {
                drop(app);
                db.close().unwrap();
                db = Db::open(dir.path(), opts.clone()).unwrap();
                refs.clear();
            }
            Some(Op::Rollback) => app.rollback(),
            _ => drop(app),
        }
        if let Some((_, q)) = ops.get(i.saturating_sub(1)) {
            check(&db, &model, q);
        }
        match end {
            Some(Op::Commit) => appended += n_pending,
            Some(Op::Reopen) => {
                // a reopened head counts what it replayed, and no rejections yet
                appended = model.values().map(|s| s.len() as u64).sum();
                rejected = (0, 0, 0);
                assert_eq!(db.stats().num_series, model.len() as u64);
            }
            _ => {}
        }
        let st = db.stats();
        assert_eq!(st.samples_appended, appended);
        assert_eq!(
            (st.out_of_order, st.duplicate, st.out_of_bounds),
            rejected,
            "rejection counters"
        );
        let max = model.values().filter_map(|s| s.keys().next_back()).max();
        let min = model.values().filter_map(|s| s.keys().next()).min();
        assert_eq!(st.max_time, max.copied());
        assert_eq!(st.min_time, min.copied());
    }
    db.close().unwrap();
}

fn pool_labels(i: usize) -> Labels {
    Labels::from_pairs(POOL[i])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn db_matches_model(
        ops in prop::collection::vec((op(), query()), 1..80),
        replay_workers in 1usize..4,
    ) {
        run(ops, replay_workers);
    }
}
