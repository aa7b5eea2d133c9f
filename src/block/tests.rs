use super::*;
use crate::model::{MatchOp, Matcher, Sample};

fn samples(start: i64, n: usize, step: i64) -> Vec<Sample> {
    (0..n)
        .map(|i| Sample::new(start + i as i64 * step, i as f64 * 1.5))
        .collect()
}

#[test]
fn write_open_select() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = BlockWriter::new(dir.path(), 0, 10_000).unwrap();
    let a = crate::model::Labels::from_pairs(&[("__name__", "up"), ("job", "a")]);
    let b = crate::model::Labels::from_pairs(&[("__name__", "up"), ("job", "b")]);
    w.add_series(&a, &rechunk(&samples(0, 300, 10))).unwrap();
    w.add_series(&b, &rechunk(&samples(5, 10, 100))).unwrap();
    // Out of order is rejected.
    assert!(w.add_series(&a, &rechunk(&samples(0, 1, 1))).is_err());
    let meta = w.finish(1, vec![], vec![]).unwrap();
    assert_eq!(meta.stats.num_series, 2);
    assert_eq!(meta.stats.num_samples, 310);
    assert_eq!(meta.stats.num_chunks, 4);
    assert_eq!(meta.compaction.sources, vec![meta.ulid.clone()]);

    let blk = Block::open(&dir.path().join(&meta.ulid)).unwrap();
    assert_eq!(blk.meta(), &meta);
    assert!(blk.size_bytes() > 0);
    let all = blk.select(&[], 0, 10_000).unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].labels, a);
    assert_eq!(all[0].samples(), samples(0, 300, 10));
    assert_eq!(all[1].samples(), samples(5, 10, 100));
    let m = Matcher::new(MatchOp::RegexMatch, "job", "b|c").unwrap();
    let got = blk.select(std::slice::from_ref(&m), 100, 305).unwrap();
    assert_eq!(got.len(), 2 - 1);
    let want_b: Vec<Sample> = samples(5, 10, 100)
        .into_iter()
        .filter(|s| (100..=305).contains(&s.t))
        .collect();
    assert_eq!(got[0].samples(), want_b);
    // A range between the samples of both series selects nothing.
    let got = blk.select(&[], 106, 109).unwrap();
    assert_eq!(got.len(), 0);
    assert_eq!(blk.label_names(&[]).unwrap(), vec!["__name__", "job"]);
    assert_eq!(blk.label_values("job", &[]).unwrap(), vec!["a", "b"]);
    assert_eq!(blk.label_values("job", &[m]).unwrap(), vec!["b"]);

    // Tombstones.
    let (blk2, n) = blk
        .delete(&[Matcher::equal("job", "a")], 100, 1_000)
        .unwrap();
    assert_eq!(n, 1);
    let want: Vec<Sample> = samples(0, 300, 10)
        .into_iter()
        .filter(|s| !(100..=1_000).contains(&s.t))
        .collect();
    assert_eq!(blk2.select(&[], 0, 10_000).unwrap()[0].samples(), want);
    let reopened = Block::open(blk.dir()).unwrap();
    assert_eq!(reopened.tombstones(), blk2.tombstones());
    let compacted: Vec<_> = reopened.series_chunks().map(|r| r.unwrap()).collect();
    assert_eq!(compacted.len(), 2);
    let got: Vec<Sample> = compacted[0].1.iter().flat_map(|c| c.iter()).collect();
    assert_eq!(got, want);
}

#[test]
fn empty_block_and_unfinished_writer() {
    let dir = tempfile::tempdir().unwrap();
    let w = BlockWriter::new(dir.path(), 0, 10).unwrap();
    drop(w);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    let w = BlockWriter::new(dir.path(), 0, 10).unwrap();
    let meta = w.finish(1, vec![], vec![]).unwrap();
    let blk = Block::open(&dir.path().join(&meta.ulid)).unwrap();
    assert!(blk.select(&[], 0, 100).unwrap().is_empty());
    assert!(blk.label_names(&[]).unwrap().is_empty());
    assert_eq!(blk.series_chunks().count(), 0);
}

#[test]
fn chunks_outside_range_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = BlockWriter::new(dir.path(), 100, 200).unwrap();
    let a = crate::model::Labels::from_pairs(&[("a", "1")]);
    assert!(w.add_series(&a, &rechunk(&samples(150, 10, 10))).is_err());
    assert!(w.add_series(&a, &rechunk(&samples(99, 2, 10))).is_err());
    w.add_series(&a, &rechunk(&samples(100, 10, 10))).unwrap();
}

#[test]
fn block_is_send_sync_and_queryable() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Block>();

    let dir = tempfile::tempdir().unwrap();
    let mut w = BlockWriter::new(dir.path(), 1_000, 2_000).unwrap();
    let a = crate::model::Labels::from_pairs(&[("__name__", "up"), ("job", "a")]);
    w.add_series(&a, &rechunk(&samples(1_000, 10, 10))).unwrap();
    let meta = w.finish(1, vec![], vec![]).unwrap();
    let blk = Block::open(&dir.path().join(&meta.ulid)).unwrap();
    let q: &dyn crate::storage::Queryable = &blk;
    let inside = q.querier(1_050, 1_060).unwrap();
    assert_eq!(inside.select(&[]).unwrap()[0].samples().len(), 2);
    assert_eq!(inside.label_names(&[]).unwrap(), vec!["__name__", "job"]);
    assert_eq!(inside.label_values("job", &[]).unwrap(), vec!["a"]);
    let outside = q.querier(2_000, 3_000).unwrap();
    assert!(outside.select(&[]).unwrap().is_empty());
    assert!(outside.label_names(&[]).unwrap().is_empty());
    assert!(outside.label_values("job", &[]).unwrap().is_empty());
    let e: crate::storage::StorageError = BlockError::Corrupt {
        path: "x/index".into(),
        section: "toc",
        offset: 3,
        reason: "bad".into(),
    }
    .into();
    assert!(e.to_string().contains("x/index"), "{e}");
}
