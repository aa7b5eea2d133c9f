use super::*;
use crate::chunk::MAX_SAMPLES_PER_CHUNK;
use crate::model::{MatchOp, Sample, STALE_NAN};
use crate::wal::{Wal, WalOptions};

fn l(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs)
}

fn head() -> Head {
    Head::new(HeadOptions::default())
}

fn samples(h: &Head, labels: &Labels) -> Vec<(i64, u64)> {
    let ms: Vec<Matcher> = labels
        .iter()
        .map(|x| Matcher::equal(x.name, x.value))
        .collect();
    let got = h.select(&ms, i64::MIN, i64::MAX);
    got.into_iter()
        .filter(|s| &s.labels == labels)
        .flat_map(|s| s.samples())
        .map(|s| (s.t, s.v.to_bits()))
        .collect()
}

fn bits(v: &[(i64, f64)]) -> Vec<(i64, u64)> {
    v.iter().map(|&(t, v)| (t, v.to_bits())).collect()
}

#[test]
fn series_found_from_borrowed_pairs() {
    let h = head();
    let a = l(&[("__name__", "up"), ("job", "a")]);
    let mut app = h.appender();
    let ra = app.append(&a, 1000, 1.0).unwrap();
    app.commit().unwrap();
    let mut scratch = String::new();
    assert_eq!(
        h.series_ref_by_pairs(&[("__name__", "up"), ("job", "a")], &mut scratch),
        Some(ra)
    );
    for other in [
        &[("__name__", "up"), ("job", "b")][..],
        &[("__name__", "up")][..],
        &[("__name__", "up"), ("job", "a"), ("x", "1")][..],
        &[("__name__", "upjob"), ("", "a")][..],
    ] {
        assert_eq!(
            h.series_ref_by_pairs(other, &mut scratch),
            None,
            "{other:?}"
        );
    }
}

#[test]
fn append_commit_and_select() {
    let h = head();
    let a = l(&[("__name__", "up"), ("job", "a")]);
    let b = l(&[("__name__", "up"), ("job", "b")]);
    let mut app = h.appender();
    let ra = app.append(&a, 1000, 1.0).unwrap();
    let rb = app.append(&b, 1000, 2.0).unwrap();
    assert_ne!(ra, rb);
    app.append_ref(ra, 2000, 3.0).unwrap();
    // nothing is visible before commit
    assert!(h.select(&[], i64::MIN, i64::MAX).is_empty());
    let st = app.commit().unwrap();
    assert_eq!(st.samples_appended, 3);
    assert_eq!(st.series_created, 2);
    assert_eq!(samples(&h, &a), bits(&[(1000, 1.0), (2000, 3.0)]));
    assert_eq!(samples(&h, &b), bits(&[(1000, 2.0)]));
    let all = h.select(&[Matcher::equal("__name__", "up")], 0, 1500);
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].labels, a);
    assert_eq!(all[0].samples(), vec![Sample::new(1000, 1.0)]);
    // time range excludes b entirely
    assert_eq!(h.select(&[], 1500, 3000).len(), 1);
    let stats = h.stats();
    assert_eq!(stats.num_series, 2);
    assert_eq!(stats.samples_appended, 3);
    assert_eq!(stats.min_time, Some(1000));
    assert_eq!(stats.max_time, Some(2000));
    // the same labels map to the same reference
    assert_eq!(h.series_ref(&a), Some(ra));
    let mut app = h.appender();
    assert_eq!(app.append(&a, 3000, 1.0).unwrap(), ra);
}

#[test]
fn invalid_labels_and_unknown_refs_are_rejected() {
    let h = head();
    let mut app = h.appender();
    assert!(matches!(
        app.append(&l(&[("__name__", "1bad")]), 1, 1.0),
        Err(AppendError::InvalidLabels(_))
    ));
    assert!(matches!(
        app.append(&l(&[("bad-name", "x")]), 1, 1.0),
        Err(AppendError::InvalidLabels(_))
    ));
    assert!(matches!(
        app.append(&Labels::empty(), 1, 1.0),
        Err(AppendError::InvalidLabels(_))
    ));
    // only empty-valued labels: nothing left
    assert!(matches!(
        app.append(&l(&[("a", "")]), 1, 1.0),
        Err(AppendError::InvalidLabels(_))
    ));
    assert_eq!(app.append_ref(42, 1, 1.0), Err(AppendError::UnknownRef(42)));
    assert_eq!(h.stats().num_series, 0);
}

#[test]
fn empty_label_values_are_dropped() {
    let h = head();
    let mut app = h.appender();
    let r1 = app
        .append(&l(&[("__name__", "x"), ("a", "")]), 1, 1.0)
        .unwrap();
    let r2 = app.append(&l(&[("__name__", "x")]), 2, 2.0).unwrap();
    assert_eq!(r1, r2);
    app.commit().unwrap();
    let got = h.select(&[], 0, 10);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].labels, l(&[("__name__", "x")]));
}

#[test]
fn out_of_order_rejected_in_batch_and_across_commits() {
    let h = head();
    let a = l(&[("__name__", "m")]);
    let mut app = h.appender();
    let r = app.append(&a, 100, 1.0).unwrap();
    app.append_ref(r, 200, 2.0).unwrap();
    // within the batch
    assert_eq!(
        app.append_ref(r, 150, 9.0),
        Err(AppendError::OutOfOrder { t: 150, max_t: 200 })
    );
    let st = app.commit().unwrap();
    assert_eq!(st.samples_appended, 2);
    assert_eq!(st.out_of_order, 1);
    // against committed data
    let mut app = h.appender();
    assert_eq!(
        app.append_ref(r, 199, 9.0),
        Err(AppendError::OutOfOrder { t: 199, max_t: 200 })
    );
    app.append_ref(r, 300, 3.0).unwrap();
    app.commit().unwrap();
    assert_eq!(samples(&h, &a), bits(&[(100, 1.0), (200, 2.0), (300, 3.0)]));
    assert_eq!(h.stats().out_of_order, 2);
}

#[test]
fn duplicates_same_value_accepted_different_rejected() {
    let h = head();
    let a = l(&[("__name__", "m")]);
    let mut app = h.appender();
    let r = app.append(&a, 100, 1.0).unwrap();
    // identical duplicate in the same batch: accepted, stored once
    app.append_ref(r, 100, 1.0).unwrap();
    assert_eq!(
        app.append_ref(r, 100, 2.0),
        Err(AppendError::DuplicateSample { t: 100 })
    );
    app.commit().unwrap();
    let mut app = h.appender();
    app.append_ref(r, 100, 1.0).unwrap();
    assert_eq!(
        app.append_ref(r, 100, -1.0),
        Err(AppendError::DuplicateSample { t: 100 })
    );
    // NaNs compare by bits: the same NaN is a duplicate, the stale marker differs
    app.append_ref(r, 200, f64::NAN).unwrap();
    app.append_ref(r, 200, f64::NAN).unwrap();
    assert_eq!(
        app.append_ref(r, 200, STALE_NAN),
        Err(AppendError::DuplicateSample { t: 200 })
    );
    let st = app.commit().unwrap();
    assert_eq!(st.samples_appended, 1);
    assert_eq!(st.duplicate, 2);
    assert_eq!(samples(&h, &a), bits(&[(100, 1.0), (200, f64::NAN)]));
    let stats = h.stats();
    assert_eq!(stats.duplicate, 3);
    assert_eq!(stats.samples_appended, 2);
}

#[test]
fn out_of_bounds_uses_half_the_block_range() {
    let h = Head::new(HeadOptions {
        block_range_ms: 1000,
        ..HeadOptions::default()
    });
    let a = l(&[("__name__", "m")]);
    let b = l(&[("__name__", "n")]);
    let mut app = h.appender();
    // empty head: the first sample sets the bound (10_000 - 500)
    app.append(&a, 10_000, 1.0).unwrap();
    assert_eq!(
        app.append(&b, 9_499, 1.0),
        Err(AppendError::OutOfBounds {
            t: 9_499,
            min_valid: 9_500
        })
    );
    app.append(&b, 9_500, 1.0).unwrap();
    app.commit().unwrap();
    // the bound follows the head's newest sample
    let mut app = h.appender();
    app.append(&a, 20_000, 2.0).unwrap();
    app.commit().unwrap();
    let mut app = h.appender();
    assert!(matches!(
        app.append(&b, 19_499, 1.0),
        Err(AppendError::OutOfBounds { .. })
    ));
    app.append(&b, 19_500, 1.0).unwrap();
    let st = app.commit().unwrap();
    assert_eq!(st.out_of_bounds, 1);
    assert_eq!(h.stats().out_of_bounds, 2);
    assert_eq!(samples(&h, &b), bits(&[(9_500, 1.0), (19_500, 1.0)]));
}

#[test]
fn rollback_and_drop_discard() {
    let h = head();
    let a = l(&[("__name__", "m")]);
    let mut app = h.appender();
    let r = app.append(&a, 1, 1.0).unwrap();
    app.rollback();
    {
        let mut app = h.appender();
        app.append_ref(r, 2, 2.0).unwrap();
        assert_eq!(app.pending(), 1);
        // dropped without commit
    }
    assert!(h.select(&[], i64::MIN, i64::MAX).is_empty());
    assert_eq!(h.stats().samples_appended, 0);
    assert_eq!(h.stats().max_time, None);
    // the series exists (created at append) but holds nothing; appending works
    let mut app = h.appender();
    app.append_ref(r, 1, 5.0).unwrap();
    app.commit().unwrap();
    assert_eq!(samples(&h, &a), bits(&[(1, 5.0)]));
}

#[test]
fn commit_rechecks_against_concurrent_commits() {
    let h = head();
    let a = l(&[("__name__", "m")]);
    let mut first = h.appender();
    let r = first.append(&a, 100, 1.0).unwrap();
    let mut second = h.appender();
    second.append_ref(r, 200, 2.0).unwrap();
    second.append_ref(r, 300, 3.0).unwrap();
    second.commit().unwrap();
    // `first` validated 100 against an empty series; at commit it is out of order
    let st = first.commit().unwrap();
    assert_eq!(st.samples_appended, 0);
    assert_eq!(st.out_of_order, 1);
    assert_eq!(samples(&h, &a), bits(&[(200, 2.0), (300, 3.0)]));
}

#[test]
fn chunks_are_cut_at_120_samples() {
    let h = head();
    let a = l(&[("__name__", "m")]);
    let n = MAX_SAMPLES_PER_CHUNK as i64;
    let mut app = h.appender();
    let r = app.append(&a, 0, 0.0).unwrap();
    for t in 1..(2 * n + 7) {
        app.append_ref(r, t, t as f64).unwrap();
    }
    app.commit().unwrap();
    let s = h.lookup(&a).unwrap();
    assert_eq!(s.data.lock().num_chunks(), 3);
    let got = h.select(&[], 0, i64::MAX);
    let want: Vec<(i64, u64)> = (0..(2 * n + 7))
        .map(|t| (t, (t as f64).to_bits()))
        .collect();
    assert_eq!(samples(&h, &a), want);
    assert_eq!(got[0].samples().len(), want.len());
    // a range inside the second chunk
    let mid = h.select(&[], n + 10, n + 12);
    assert_eq!(
        mid[0].samples(),
        vec![
            Sample::new(n + 10, (n + 10) as f64),
            Sample::new(n + 11, (n + 11) as f64),
            Sample::new(n + 12, (n + 12) as f64)
        ]
    );
}

#[test]
fn label_names_and_values_follow_matchers_and_time() {
    let h = head();
    let mut app = h.appender();
    app.append(&l(&[("__name__", "up"), ("job", "a")]), 10, 1.0)
        .unwrap();
    app.append(&l(&[("__name__", "up"), ("job", "b"), ("x", "1")]), 20, 1.0)
        .unwrap();
    app.append(&l(&[("__name__", "down"), ("zone", "eu")]), 30, 1.0)
        .unwrap();
    app.commit().unwrap();
    // a series created but never committed is invisible
    let mut app = h.appender();
    app.append(&l(&[("__name__", "ghost"), ("g", "1")]), 40, 1.0)
        .unwrap();
    app.rollback();
    assert_eq!(
        h.label_names(&[], i64::MIN, i64::MAX),
        vec!["__name__", "job", "x", "zone"]
    );
    assert_eq!(h.label_names(&[], 0, 15), vec!["__name__", "job"]);
    assert_eq!(
        h.label_values("__name__", &[], i64::MIN, i64::MAX),
        vec!["down", "up"]
    );
    assert_eq!(h.label_values("__name__", &[], 25, 40), vec!["down"]);
    let m = Matcher::new(MatchOp::NotEqual, "job", "a").unwrap();
    assert_eq!(
        h.label_values("__name__", std::slice::from_ref(&m), i64::MIN, i64::MAX),
        vec!["down", "up"]
    );
    assert_eq!(h.label_values("job", &[m], i64::MIN, i64::MAX), vec!["b"]);
    assert_eq!(
        h.label_names(&[Matcher::equal("job", "")], i64::MIN, i64::MAX),
        vec!["__name__", "zone"]
    );
}

#[test]
fn replay_rebuilds_series_and_samples() {
    use crate::wal::{Record, RefSample, RefSeries};
    let a = l(&[("__name__", "a")]);
    let b = l(&[("__name__", "b")]);
    let rs = |series_ref: u64, labels: &Labels| RefSeries {
        series_ref,
        labels: labels.clone(),
    };
    let smp = |series_ref: u64, t: i64, v: f64| RefSample { series_ref, t, v };
    // inline, one worker resolving series itself, several behind a router
    for workers in [0, 1, 2, 3] {
        let mut r = Replay::with_threads(workers);
        r.on_record(Record::Series(vec![rs(3, &a), rs(7, &b), rs(0, &b)]));
        r.on_record(Record::Samples(vec![
            smp(3, 1, 1.0),
            smp(3, 2, 2.0),
            smp(9, 2, 2.0),
            smp(7, 5, 5.0),
            smp(3, 2, 2.0),
            smp(3, 1, 0.0),
        ]));
        // the same series logged again by a later commit, and the same labels under
        // another reference: both feed the first series
        r.on_record(Record::Series(vec![rs(3, &a), rs(12, &a)]));
        r.on_record(Record::Samples(vec![smp(12, 3, 3.0), smp(3, 4, 4.0)]));
        let (h, out) = r.finish(HeadOptions::default()).unwrap();
        assert_eq!(out.series, 2, "workers {workers}");
        assert_eq!(out.samples, 5);
        assert_eq!(out.unknown_refs, 1);
        assert_eq!(out.out_of_order, 1);
        assert_eq!(out.invalid_refs, 1);
        assert_eq!(
            samples(&h, &a),
            bits(&[(1, 1.0), (2, 2.0), (3, 3.0), (4, 4.0)])
        );
        assert_eq!(samples(&h, &b), bits(&[(5, 5.0)]));
        assert_eq!(h.series_ref(&a), Some(3));
        let st = h.stats();
        assert_eq!((st.min_time, st.max_time), (Some(1), Some(5)));
        assert_eq!(st.samples_appended, 5);
        // new series get references after the highest replayed one
        let mut app = h.appender();
        let c = app.append(&l(&[("__name__", "c")]), 6, 1.0).unwrap();
        assert_eq!(c, 13);
    }
}

#[test]
fn concurrent_appenders_on_shared_series() {
    let h = head();
    let labels: Vec<Labels> = (0..50)
        .map(|i| l(&[("__name__", "m"), ("i", &i.to_string())]))
        .collect();
    std::thread::scope(|s| {
        for th in 0..4i64 {
            let h = &h;
            let labels = &labels;
            s.spawn(move || {
                for round in 0..50i64 {
                    let mut app = h.appender();
                    for (i, ls) in labels.iter().enumerate() {
                        // every thread writes every series; each (thread, round) pair has
                        // its own timestamp so nothing is a duplicate
                        let _ = app.append(ls, round * 10 + th, i as f64);
                    }
                    app.commit().unwrap();
                }
            });
        }
    });
    let st = h.stats();
    assert_eq!(st.num_series, 50);
    // every series is strictly increasing and holds everything that was accepted
    let got = h.select(&[], i64::MIN, i64::MAX);
    assert_eq!(got.len(), 50);
    let mut total = 0;
    for s in &got {
        let ts: Vec<i64> = s.samples().iter().map(|x| x.t).collect();
        assert!(ts.windows(2).all(|w| w[0] < w[1]));
        total += ts.len() as u64;
    }
    assert_eq!(total, st.samples_appended);
    assert_eq!(
        st.samples_appended + st.out_of_order,
        4 * 50 * 50,
        "every sample is either stored or counted as rejected"
    );
}

#[test]
fn series_without_samples_in_range_are_omitted() {
    let h = head();
    let a = l(&[("__name__", "m")]);
    let mut app = h.appender();
    let r = app.append(&a, 10, 1.0).unwrap();
    app.append_ref(r, 500, 2.0).unwrap();
    app.commit().unwrap();
    // the series spans the range but has no sample inside it
    assert!(h.select(&[], 100, 200).is_empty());
    assert!(h.label_names(&[], 100, 200).is_empty());
    assert!(h.label_values("__name__", &[], 100, 200).is_empty());
    assert_eq!(h.select(&[], 100, 500).len(), 1);
    assert_eq!(h.select(&[], 10, 10).len(), 1);
    // the same across frozen chunks
    let mut app = h.appender();
    for t in 0..300 {
        app.append_ref(r, 1000 + t * 10, 0.0).unwrap();
    }
    app.append_ref(r, 10_000, 0.0).unwrap();
    app.commit().unwrap();
    assert!(h.select(&[], 3991, 9999).is_empty());
    assert_eq!(h.select(&[], 3990, 3990).len(), 1);
    assert!(h.select(&[], 501, 999).is_empty());
}

#[test]
fn out_of_bounds_sample_creates_no_series() {
    let h = Head::new(HeadOptions {
        block_range_ms: 1000,
        ..HeadOptions::default()
    });
    let mut app = h.appender();
    app.append(&l(&[("__name__", "m")]), 10_000, 1.0).unwrap();
    app.commit().unwrap();
    let mut app = h.appender();
    assert!(matches!(
        app.append(&l(&[("__name__", "new")]), 0, 1.0),
        Err(AppendError::OutOfBounds { .. })
    ));
    // checked before the labels, too
    assert!(matches!(
        app.append(&l(&[("__name__", "1bad")]), 0, 1.0),
        Err(AppendError::OutOfBounds { .. })
    ));
    assert!(matches!(
        app.append_ref(12345, 0, 1.0),
        Err(AppendError::OutOfBounds { .. })
    ));
    assert_eq!(h.stats().num_series, 1);
    assert_eq!(h.stats().out_of_bounds, 3);
}

#[test]
fn series_limit_rejects_only_new_series() {
    let h = Head::new(HeadOptions {
        max_series: 2,
        ..HeadOptions::default()
    });
    let (a, b, c) = (
        l(&[("__name__", "a")]),
        l(&[("__name__", "b")]),
        l(&[("__name__", "c")]),
    );
    let mut app = h.appender();
    app.append(&a, 1, 1.0).unwrap();
    app.append(&b, 1, 1.0).unwrap();
    assert_eq!(
        app.append(&c, 1, 1.0),
        Err(AppendError::SeriesLimit { limit: 2 })
    );
    app.commit().unwrap();
    // Existing series keep ingesting; the new one stays out.
    let mut app = h.appender();
    app.append(&a, 2, 2.0).unwrap();
    assert!(app.append(&c, 2, 1.0).is_err());
    app.commit().unwrap();
    assert_eq!(samples(&h, &a).len(), 2);
    assert!(samples(&h, &c).is_empty());
    let st = h.stats();
    assert_eq!((st.num_series, st.series_limited), (2, 2));
    assert!(AppendError::SeriesLimit { limit: 2 }
        .to_string()
        .contains("head series limit"));
}

#[test]
fn appender_threads_cache_series_per_head() {
    // Two heads whose first series share reference 1: a thread's cached series of one
    // head never stands in for the other's.
    let (h1, h2) = (head(), head());
    let (a, b) = (l(&[("__name__", "a")]), l(&[("__name__", "b")]));
    let mut app = h1.appender();
    let r = app.append(&a, 1000, 1.0).unwrap();
    app.commit().unwrap();
    let mut app = h2.appender();
    assert_eq!(app.append(&b, 1000, 2.0).unwrap(), r);
    app.commit().unwrap();
    for (h, v) in [(&h1, 3.0), (&h2, 4.0), (&h1, 5.0)] {
        let mut app = h.appender();
        app.append_ref(r, 2000 + v as i64, v).unwrap();
        // A cached series is still checked against its newest sample.
        assert!(matches!(
            app.append_ref(r, 1000, 9.0),
            Err(AppendError::OutOfOrder { .. })
        ));
        app.commit().unwrap();
    }
    assert_eq!(
        samples(&h1, &a),
        bits(&[(1000, 1.0), (2003, 3.0), (2005, 5.0)])
    );
    assert_eq!(samples(&h2, &b), bits(&[(1000, 2.0), (2004, 4.0)]));
}

#[test]
fn series_cached_by_another_thread_are_collected_later() {
    let h = head();
    let (a, b, c) = (
        l(&[("__name__", "a")]),
        l(&[("__name__", "b")]),
        l(&[("__name__", "c")]),
    );
    let mut app = h.appender();
    app.append(&a, 1000, 1.0).unwrap();
    let rc = app.append(&c, 6000, 1.0).unwrap();
    app.commit().unwrap();
    // Another thread appends to `b` and keeps it in its cache while it waits.
    let (go, wait) = std::sync::mpsc::channel::<()>();
    let (done, finished) = std::sync::mpsc::channel::<()>();
    std::thread::scope(|sc| {
        let (h, b) = (&h, &b);
        sc.spawn(move || {
            let mut app = h.appender();
            app.append(b, 1000, 2.0).unwrap();
            app.commit().unwrap();
            done.send(()).unwrap();
            wait.recv().unwrap();
            // A new batch of this thread, for another series, lets `b` go.
            let mut app = h.appender();
            app.append_ref(rc, 9000, 3.0).unwrap();
            app.commit().unwrap();
            done.send(()).unwrap();
        });
        finished.recv().unwrap();
        h.raise_append_floor(5000);
        // `a` is in this thread's cache, which the truncation drops; `b` is in the
        // other thread's.
        let st = h.truncate_before(5000);
        assert_eq!((st.series_removed, st.series_kept_empty), (1, 1));
        assert!(h.series_ref(&a).is_none());
        assert!(h.series_ref(b).is_some());
        // Still held.
        let st = h.collect_kept();
        assert_eq!((st.series_removed, st.series_kept_empty), (0, 1));
        go.send(()).unwrap();
        finished.recv().unwrap();
    });
    let st = h.collect_kept();
    assert_eq!((st.series_removed, st.series_kept_empty), (1, 0));
    assert!(h.series_ref(&b).is_none());
    assert_eq!(h.collect_kept(), TruncateStats::default());
    assert_eq!(samples(&h, &c), bits(&[(6000, 1.0), (9000, 3.0)]));
}

#[test]
fn cached_newest_timestamps_are_lower_bounds() {
    let h = head();
    let a = l(&[("__name__", "a")]);
    let mut app = h.appender();
    let r = app.append(&a, 1000, 1.0).unwrap();
    app.commit().unwrap();
    // Another thread commits a newer sample; this thread's cache still says 1000.
    std::thread::scope(|sc| {
        sc.spawn(|| {
            let mut app = h.appender();
            app.append_ref(r, 3000, 3.0).unwrap();
            app.commit().unwrap();
        });
    });
    // Newer than what this thread knows, so accepted at append; the commit finds it
    // out of order, drops and counts it, as for any concurrent commit.
    let mut app = h.appender();
    app.append_ref(r, 2000, 2.0).unwrap();
    let st = app.commit().unwrap();
    assert_eq!((st.samples_appended, st.out_of_order), (0, 1));
    // That commit read the series' newest sample: rejected at append now.
    let mut app = h.appender();
    assert!(matches!(
        app.append_ref(r, 2500, 2.5),
        Err(AppendError::OutOfOrder { max_t: 3000, .. })
    ));
    app.append_ref(r, 3000, 3.0).unwrap();
    assert!(matches!(
        app.append_ref(r, 3000, 9.0),
        Err(AppendError::DuplicateSample { t: 3000 })
    ));
    // A rolled back sample is not remembered as the newest.
    app.append_ref(r, 5000, 5.0).unwrap();
    app.rollback();
    let mut app = h.appender();
    app.append_ref(r, 4000, 4.0).unwrap();
    assert_eq!(app.commit().unwrap().samples_appended, 1);
    // Nor is a sample whose commit failed to reach the WAL.
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = Wal::open(dir.path(), WalOptions::default(), |_| {}).unwrap();
    wal.fail_logs_for_tests(true);
    let mut app = Appender::new(&h, Some(&wal));
    app.append_ref(r, 7000, 7.0).unwrap();
    assert!(app.commit().is_err());
    wal.fail_logs_for_tests(false);
    let mut app = Appender::new(&h, Some(&wal));
    app.append_ref(r, 6000, 6.0).unwrap();
    assert_eq!(app.commit().unwrap().samples_appended, 1);
    assert_eq!(
        samples(&h, &a),
        bits(&[(1000, 1.0), (3000, 3.0), (4000, 4.0), (6000, 6.0)])
    );
}
