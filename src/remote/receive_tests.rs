use prost::Message;

use super::*;
use crate::db::DbOptions;
use crate::model::{Matcher, STALE_NAN_BITS};
use crate::remote::proto::{
    Label as PLabel, MetricMetadata, Sample as PSample, TimeSeries, WriteRequest,
};

const NOW: i64 = 1_700_000_000_000;

fn ts(labels: &[(&str, &str)], samples: &[(i64, f64)]) -> TimeSeries {
    TimeSeries {
        labels: labels
            .iter()
            .map(|(n, v)| PLabel {
                name: n.to_string(),
                value: v.to_string(),
            })
            .collect(),
        samples: samples
            .iter()
            .map(|&(timestamp, value)| PSample { value, timestamp })
            .collect(),
        exemplars: vec![],
        histograms: vec![],
    }
}

fn body(series: Vec<TimeSeries>) -> Vec<u8> {
    WriteRequest {
        timeseries: series,
        metadata: vec![],
    }
    .encode_to_vec()
}

fn open() -> (tempfile::TempDir, Db) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), DbOptions::default()).unwrap();
    (dir, db)
}

fn all(db: &Db) -> Vec<(String, Vec<(i64, u64)>)> {
    let q = db.querier(i64::MIN / 2, i64::MAX / 2).unwrap();
    q.select(&[Matcher::new(crate::model::MatchOp::RegexMatch, "__name__", ".+").unwrap()])
        .unwrap()
        .into_iter()
        .map(|s| {
            (
                s.labels.to_string(),
                s.samples().iter().map(|x| (x.t, x.v.to_bits())).collect(),
            )
        })
        .collect()
}

#[test]
fn stores_samples_and_staleness_markers_bit_exact() {
    let (_d, db) = open();
    let meta = MetadataStore::new();
    let stale = f64::from_bits(STALE_NAN_BITS);
    let b = body(vec![
        ts(
            &[("__name__", "up"), ("instance", "a"), ("job", "j")],
            &[(NOW, 1.0), (NOW + 1000, stale)],
        ),
        ts(&[("__name__", "x"), ("empty", "")], &[(NOW, -2.5)]),
    ]);
    let st = apply_write(&db, &b, NOW, &meta).unwrap();
    assert_eq!(st.series, 2);
    assert_eq!(st.samples, 3);
    assert_eq!(st.appended, 3);
    let got = all(&db);
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].0, r#"{__name__="up", instance="a", job="j"}"#);
    assert_eq!(
        got[0].1,
        vec![(NOW, 1f64.to_bits()), (NOW + 1000, STALE_NAN_BITS)]
    );
    // the empty-valued label is dropped, as Aion does everywhere
    assert_eq!(got[1].0, r#"{__name__="x"}"#);
    // A second request for known series takes the reference path.
    let b = body(vec![ts(
        &[("__name__", "up"), ("instance", "a"), ("job", "j")],
        &[(NOW + 2000, 3.0)],
    )]);
    apply_write(&db, &b, NOW, &meta).unwrap();
    assert_eq!(all(&db)[0].1.len(), 3);
    // Re-sending the same samples (a retry) is accepted and stores nothing twice.
    apply_write(&db, &b, NOW, &meta).unwrap();
    assert_eq!(all(&db)[0].1.len(), 3);
}

#[test]
fn metadata_is_kept_per_family() {
    let (_d, db) = open();
    let meta = MetadataStore::new();
    let b = WriteRequest {
        timeseries: vec![],
        metadata: vec![MetricMetadata {
            r#type: 1,
            metric_family_name: "http_requests_total".into(),
            help: "Requests.".into(),
            unit: String::new(),
        }],
    }
    .encode_to_vec();
    let st = apply_write(&db, &b, NOW, &meta).unwrap();
    assert_eq!(st.metadata, 1);
    let snap = meta.snapshot();
    assert_eq!(snap.len(), 1);
    assert_eq!(snap[0].0, "http_requests_total");
    assert_eq!(snap[0].1.kind, "counter");
    assert_eq!(snap[0].1.help, "Requests.");
}

/// Each bad request is refused with a 4xx status and leaves nothing behind, not
/// even the valid series sent before the bad one in the same request.
#[test]
fn bad_requests_are_400_and_nothing_is_applied() {
    let (_d, db) = open();
    let meta = MetadataStore::new();
    let seed = body(vec![ts(&[("__name__", "old")], &[(NOW, 1.0)])]);
    apply_write(&db, &seed, NOW, &meta).unwrap();
    let before = all(&db);
    let good = ts(&[("__name__", "good"), ("a", "b")], &[(NOW, 1.0)]);
    let cases: Vec<(&str, TimeSeries)> = vec![
        (
            "out of order within the request",
            ts(&[("__name__", "m")], &[(NOW + 10, 1.0), (NOW, 2.0)]),
        ),
        (
            "older than stored",
            ts(&[("__name__", "old")], &[(NOW - 1, 1.0)]),
        ),
        (
            "duplicate timestamp, different value",
            ts(&[("__name__", "old")], &[(NOW, 2.0)]),
        ),
        (
            "unsorted labels",
            ts(&[("__name__", "m"), ("b", "1"), ("a", "1")], &[(NOW, 1.0)]),
        ),
        (
            "duplicate label name",
            ts(&[("__name__", "m"), ("a", "1"), ("a", "2")], &[(NOW, 1.0)]),
        ),
        (
            "empty label name",
            ts(&[("", "x"), ("__name__", "m")], &[(NOW, 1.0)]),
        ),
        ("no metric name", ts(&[("a", "1")], &[(NOW, 1.0)])),
        (
            "invalid metric name",
            ts(&[("__name__", "1bad")], &[(NOW, 1.0)]),
        ),
        (
            "invalid label name",
            ts(&[("__name__", "m"), ("a-b", "1")], &[(NOW, 1.0)]),
        ),
        (
            "too far in the future",
            ts(&[("__name__", "m")], &[(NOW + MAX_AHEAD_MS + 1, 1.0)]),
        ),
    ];
    for (what, bad) in cases {
        let b = body(vec![good.clone(), bad]);
        let err = apply_write(&db, &b, NOW, &meta).expect_err(what);
        assert_eq!(err.status(), 400, "{what}: {err}");
        assert_eq!(all(&db), before, "{what}: something was applied");
    }
    // Undecodable protobuf.
    let mut b = body(vec![good.clone()]);
    b.truncate(b.len() - 3);
    let err = apply_write(&db, &b, NOW, &meta).unwrap_err();
    assert_eq!(err.status(), 400, "{err}");
    // Invalid UTF-8 in a label value.
    let mut b = body(vec![ts(&[("__name__", "m"), ("a", "zz")], &[(NOW, 1.0)])]);
    let pos = b.windows(2).position(|w| w == b"zz").unwrap();
    b[pos] = 0xff;
    let err = apply_write(&db, &b, NOW, &meta).unwrap_err();
    assert_eq!(err.status(), 400, "{err}");
    assert_eq!(all(&db), before);
    // Metadata of a refused request is not kept either.
    let b = WriteRequest {
        timeseries: vec![ts(&[("a", "1")], &[(NOW, 1.0)])],
        metadata: vec![MetricMetadata {
            r#type: 2,
            metric_family_name: "m".into(),
            help: String::new(),
            unit: String::new(),
        }],
    }
    .encode_to_vec();
    assert!(apply_write(&db, &b, NOW, &meta).is_err());
    assert!(meta.snapshot().is_empty());
}

#[test]
fn a_sample_another_thread_made_out_of_order_refuses_the_request() {
    let (_d, db) = open();
    let meta = MetadataStore::new();
    let m = |t: i64, v: f64| body(vec![ts(&[("__name__", "m")], &[(t, v)])]);
    let good = ts(&[("__name__", "good")], &[(NOW, 1.0)]);
    for (what, t0, bad, want) in [
        ("older", NOW, (NOW + 1000, 2.0), "out of order"),
        (
            "duplicate",
            NOW + 10_000,
            (NOW + 12_000, 4.0),
            "duplicate sample",
        ),
    ] {
        apply_write(&db, &m(t0, 1.0), NOW, &meta).unwrap();
        // Another thread, with its own series cache, stores a newer sample of `m`.
        std::thread::scope(|s| {
            s.spawn(|| apply_write(&db, &m(t0 + 2000, 3.0), NOW, &meta).unwrap());
        });
        let before = all(&db);
        // Newer than what this thread saw of `m`: only the commit can tell.
        let b = body(vec![good.clone(), ts(&[("__name__", "m")], &[bad])]);
        let err = apply_write(&db, &b, NOW, &meta).expect_err(what);
        assert_eq!(err.status(), 400, "{what}: {err}");
        let msg = err.to_string();
        assert!(
            msg.contains(want) && msg.contains("{__name__=\"m\"}"),
            "{msg}"
        );
        assert_eq!(all(&db), before, "{what}: something was applied");
    }
    // The same sample again is accepted silently, as Prometheus does.
    let before = all(&db);
    apply_write(&db, &m(NOW + 12_000, 3.0), NOW, &meta).unwrap();
    assert_eq!(all(&db), before);
}

#[test]
fn histograms_and_exemplars_are_counted_not_stored() {
    let (_d, db) = open();
    let meta = MetadataStore::new();
    let mut s = ts(&[("__name__", "h")], &[(NOW, 1.0)]);
    s.histograms = vec![crate::remote::proto::Histogram {}; 2];
    s.exemplars = vec![crate::remote::proto::Exemplar {
        labels: vec![],
        value: 1.0,
        timestamp: NOW,
    }];
    let st = apply_write(&db, &body(vec![s]), NOW, &meta).unwrap();
    assert_eq!(st.histograms_skipped, 2);
    assert_eq!(st.exemplars_skipped, 1);
    assert_eq!(st.appended, 1);
}
