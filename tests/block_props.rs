//! Model test of persistent blocks: random series (random label sets, random samples
//! including NaN, the staleness marker and infinities, random chunk cuts) are written to
//! a block, which is reopened and must answer random selects, label queries, deletions
//! and full scans exactly as a plain map does.

use std::collections::{BTreeMap, BTreeSet};

use aion::block::{rechunk, Block, BlockWriter};
use aion::chunk::{ChunkData, XorChunk};
use aion::model::{Labels, MatchOp, Matcher, Sample, STALE_NAN};
use proptest::prelude::*;

const MINT: i64 = 1_000;
const MAXT: i64 = 5_000; // exclusive

const NAMES: &[&str] = &["__name__", "a", "b", "job"];
const VALUES: &[&str] = &["x", "y", "z", "up", "1", "x y"];
const FLOATS: &[f64] = &[
    0.0,
    -0.0,
    1.0,
    -2.5,
    1e300,
    f64::NAN,
    STALE_NAN,
    f64::INFINITY,
    f64::NEG_INFINITY,
    f64::MIN_POSITIVE,
];

type Model = BTreeMap<Labels, Vec<Sample>>;

fn label_set() -> impl Strategy<Value = Labels> {
    prop::collection::btree_map(
        prop::sample::select(NAMES.to_vec()),
        prop::sample::select(VALUES.to_vec()),
        1..4,
    )
    .prop_map(|m| {
        let pairs: Vec<(&str, &str)> = m.into_iter().collect();
        Labels::from_pairs(&pairs)
    })
}

fn series_samples() -> impl Strategy<Value = Vec<Sample>> {
    (
        prop::collection::btree_set(MINT..MAXT, 0..300),
        prop::collection::vec((0..FLOATS.len(), any::<f64>(), any::<bool>()), 300),
    )
        .prop_map(|(ts, vals)| {
            ts.into_iter()
                .zip(vals)
                .map(|(t, (i, r, special))| Sample::new(t, if special { FLOATS[i] } else { r }))
                .collect()
        })
}

#[derive(Debug, Clone)]
struct Query {
    matchers: Vec<(MatchOp, &'static str, &'static str)>,
    mint: i64,
    maxt: i64,
    label: &'static str,
}

fn query() -> impl Strategy<Value = Query> {
    let name = prop::sample::select(vec!["__name__", "a", "b", "job", "zz"]);
    let value = prop::sample::select(vec![
        "", "x", "y", "up", "x|y", ".*", ".+", "x|", "[xy]", "x y", "u.",
    ]);
    let op = prop::sample::select(vec![
        MatchOp::Equal,
        MatchOp::NotEqual,
        MatchOp::RegexMatch,
        MatchOp::RegexNoMatch,
    ]);
    (
        prop::collection::vec((op, name.clone(), value), 0..3),
        MINT - 100..MAXT + 100,
        MINT - 100..MAXT + 100,
        name,
    )
        .prop_map(|(matchers, mint, maxt, label)| Query {
            matchers,
            mint,
            maxt,
            label,
        })
}

fn matchers(q: &[(MatchOp, &'static str, &'static str)]) -> Vec<Matcher> {
    q.iter()
        .map(|(op, n, v)| Matcher::new(*op, *n, *v).unwrap())
        .collect()
}

fn matching<'a>(
    model: &'a Model,
    ms: &'a [Matcher],
) -> impl Iterator<Item = (&'a Labels, &'a Vec<Sample>)> {
    model
        .iter()
        .filter(move |(l, _)| ms.iter().all(|m| m.matches(l.get_or_empty(&m.name))))
}

/// Cuts `samples` into chunks at the given (sorted, deduplicated) positions.
fn cut(samples: &[Sample], cuts: &[usize]) -> Vec<ChunkData> {
    let mut out = Vec::new();
    let mut c = XorChunk::new();
    for (i, s) in samples.iter().enumerate() {
        if c.num_samples() > 0 && cuts.contains(&i) {
            out.push(c.freeze());
            c = XorChunk::new();
        }
        c.append(s.t, s.v);
    }
    if c.num_samples() > 0 {
        out.push(c.freeze());
    }
    out
}

fn bits(s: &[Sample]) -> Vec<(i64, u64)> {
    s.iter().map(|x| (x.t, x.v.to_bits())).collect()
}

fn check_queries(block: &Block, model: &Model, queries: &[Query]) -> Result<(), TestCaseError> {
    for q in queries {
        let ms = matchers(&q.matchers);
        let got = block.select(&ms, q.mint, q.maxt).unwrap();
        let want: Vec<(Labels, Vec<Sample>)> = matching(model, &ms)
            .map(|(l, s)| {
                let part: Vec<Sample> = s
                    .iter()
                    .filter(|x| q.mint <= x.t && x.t <= q.maxt)
                    .copied()
                    .collect();
                (l.clone(), part)
            })
            .filter(|(_, s)| !s.is_empty())
            .collect();
        prop_assert_eq!(got.len(), want.len(), "query {:?}", q);
        for (g, (wl, ws)) in got.iter().zip(&want) {
            prop_assert_eq!(&g.labels, wl);
            prop_assert_eq!(bits(&g.samples()), bits(ws), "series {}", wl);
            // The lazy iterator agrees with the eager decode.
            let it: Vec<Sample> = g.iter().collect();
            prop_assert_eq!(bits(&it), bits(ws));
        }

        // Label queries ignore time and see every series with data in the block.
        let present: Model = model
            .iter()
            .filter(|(_, s)| !s.is_empty())
            .map(|(l, s)| (l.clone(), s.clone()))
            .collect();
        let names: BTreeSet<String> = matching(&present, &ms)
            .flat_map(|(l, _)| l.iter().map(|x| x.name.to_string()).collect::<Vec<_>>())
            .collect();
        prop_assert_eq!(
            block.label_names(&ms).unwrap(),
            names.into_iter().collect::<Vec<_>>()
        );
        let values: BTreeSet<String> = matching(&present, &ms)
            .filter_map(|(l, _)| l.get(q.label).map(str::to_string))
            .collect();
        prop_assert_eq!(
            block.label_values(q.label, &ms).unwrap(),
            values.into_iter().collect::<Vec<_>>()
        );
    }
    Ok(())
}

fn check_scan(block: &Block, model: &Model) -> Result<(), TestCaseError> {
    let scanned: Vec<(Labels, Vec<ChunkData>)> =
        block.series_chunks().map(|r| r.unwrap()).collect();
    let want: Vec<(&Labels, &Vec<Sample>)> = model.iter().filter(|(_, s)| !s.is_empty()).collect();
    prop_assert_eq!(scanned.len(), want.len());
    for ((gl, gc), (wl, ws)) in scanned.iter().zip(want) {
        prop_assert_eq!(gl, wl);
        let got: Vec<Sample> = gc.iter().flat_map(|c| c.iter()).collect();
        prop_assert_eq!(bits(&got), bits(ws));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn block_agrees_with_model(
        series in prop::collection::btree_map(label_set(), (series_samples(), prop::collection::vec(0usize..300, 0..6), any::<bool>()), 0..12),
        queries in prop::collection::vec(query(), 1..12),
        deletions in prop::collection::vec((query(), MINT - 50..MAXT + 50, 0i64..2_000), 0..3),
        segment_size in prop::sample::select(vec![64u64, 1024, 512 * 1024 * 1024]),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut w = BlockWriter::with_segment_size(dir.path(), MINT, MAXT, segment_size).unwrap();
        let mut model = Model::new();
        for (labels, (samples, cuts, standard)) in &series {
            let chunks = if *standard { rechunk(samples) } else { cut(samples, cuts) };
            w.add_series(labels, &chunks).unwrap();
            if !samples.is_empty() {
                model.insert(labels.clone(), samples.clone());
            }
        }
        let meta = w.finish(1, vec![], vec![]).unwrap();
        prop_assert_eq!(meta.stats.num_series as usize, model.len());
        prop_assert_eq!(
            meta.stats.num_samples as usize,
            model.values().map(Vec::len).sum::<usize>()
        );
        let block = Block::open(&dir.path().join(&meta.ulid)).unwrap();
        check_queries(&block, &model, &queries)?;
        check_scan(&block, &model)?;

        // Deletions, persisted and reopened.
        let mut block = block;
        for (q, start, len) in &deletions {
            let ms = matchers(&q.matchers);
            let (b, _) = block.delete(&ms, *start, start + len).unwrap();
            block = b;
            let hit: Vec<Labels> = matching(&model, &ms).map(|(l, _)| l.clone()).collect();
            for l in hit {
                if let Some(s) = model.get_mut(&l) {
                    s.retain(|x| x.t < *start || x.t > start + len);
                }
            }
        }
        let reopened = Block::open(block.dir()).unwrap();
        prop_assert_eq!(reopened.tombstones(), block.tombstones());
        check_queries(&reopened, &model, &queries)?;
        check_scan(&reopened, &model)?;
    }
}
