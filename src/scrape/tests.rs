use std::time::Instant;

use super::scraper::{ScrapeOptions, Scraper};
use crate::config::RelabelConfig;
use crate::db::{Db, DbOptions};
use crate::exposition::Format;
use crate::model::{is_stale_nan, Labels, Matcher, Sample};

fn open_db() -> (tempfile::TempDir, Db) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), DbOptions::default()).unwrap();
    (dir, db)
}

fn target() -> Labels {
    Labels::from_pairs(&[("instance", "h:1"), ("job", "j")])
}

fn samples(db: &Db, name: &str) -> Vec<(Labels, Vec<Sample>)> {
    let q = db.querier(i64::MIN / 2, i64::MAX / 2).unwrap();
    q.select(&[Matcher::equal("__name__", name)])
        .unwrap()
        .into_iter()
        .map(|s| {
            let mut v = Vec::new();
            s.samples_into(&mut v);
            (s.labels.clone(), v)
        })
        .collect()
}

fn scrape(s: &mut Scraper, db: &Db, body: &str, t: i64) -> super::scraper::ScrapeOutcome {
    s.scrape(
        db,
        Ok((body.as_bytes(), Format::PrometheusText)),
        t,
        Instant::now(),
    )
}

fn opts() -> ScrapeOptions {
    ScrapeOptions {
        honor_timestamps: true,
        ..ScrapeOptions::default()
    }
}

#[test]
fn samples_get_target_labels_and_report_series() {
    let (_d, db) = open_db();
    let mut s = Scraper::new(target(), opts());
    let out = scrape(
        &mut s,
        &db,
        "# TYPE a counter\n# HELP a Help.\na{x=\"1\"} 5\nb 2\n",
        1000,
    );
    assert_eq!(out.error, None);
    assert_eq!(out.counts.scraped, 2);
    assert_eq!(out.counts.post_relabel, 2);
    assert_eq!(out.counts.series_added, 2);
    let a = samples(&db, "a");
    assert_eq!(
        a[0].0,
        Labels::from_pairs(&[
            ("__name__", "a"),
            ("instance", "h:1"),
            ("job", "j"),
            ("x", "1")
        ])
    );
    assert_eq!(a[0].1, vec![Sample { t: 1000, v: 5.0 }]);
    let up = samples(&db, "up");
    assert_eq!(
        up[0].0,
        Labels::from_pairs(&[("__name__", "up"), ("instance", "h:1"), ("job", "j")])
    );
    assert_eq!(up[0].1[0].v, 1.0);
    assert_eq!(samples(&db, "scrape_samples_scraped")[0].1[0].v, 2.0);
    assert_eq!(samples(&db, "scrape_series_added")[0].1[0].v, 2.0);
    assert_eq!(
        samples(&db, "scrape_samples_post_metric_relabeling")[0].1[0].v,
        2.0
    );
    assert_eq!(samples(&db, "scrape_duration_seconds").len(), 1);
    // Steady state: no new series.
    let out = scrape(
        &mut s,
        &db,
        "# TYPE a counter\n# HELP a Help.\na{x=\"1\"} 6\nb 2\n",
        2000,
    );
    assert_eq!(out.counts.series_added, 0);
    assert_eq!(samples(&db, "a")[0].1.len(), 2);
    let meta = s.take_metadata_if_changed().unwrap();
    assert!(meta.iter().any(|(n, m)| n == "a" && m.help == "Help."));
    assert!(s.take_metadata_if_changed().is_none());
}

#[test]
fn disappearing_series_get_one_staleness_marker() {
    let (_d, db) = open_db();
    let mut s = Scraper::new(target(), opts());
    scrape(&mut s, &db, "a 1\nb 1\n", 1000);
    scrape(&mut s, &db, "a 2\n", 2000);
    scrape(&mut s, &db, "a 3\n", 3000);
    let b = &samples(&db, "b")[0].1;
    assert_eq!(b.len(), 2);
    assert_eq!(b[1].t, 2000);
    assert!(is_stale_nan(b[1].v));
    // Back again: a fresh sample, then stale again when gone.
    scrape(&mut s, &db, "a 4\nb 5\n", 4000);
    scrape(&mut s, &db, "a 5\n", 5000);
    let b = &samples(&db, "b")[0].1;
    assert_eq!(b.len(), 4);
    assert_eq!(b[2], Sample { t: 4000, v: 5.0 });
    assert!(is_stale_nan(b[3].v) && b[3].t == 5000);
}

#[test]
fn explicit_timestamps_are_not_stale_marked() {
    let (_d, db) = open_db();
    let mut s = Scraper::new(target(), opts());
    scrape(&mut s, &db, "a 1 500\n", 1000);
    scrape(&mut s, &db, "", 2000);
    let a = &samples(&db, "a")[0].1;
    assert_eq!(a, &vec![Sample { t: 500, v: 1.0 }]);
}

#[test]
fn failed_scrape_marks_previous_series_stale_and_up_zero() {
    let (_d, db) = open_db();
    let mut s = Scraper::new(target(), opts());
    scrape(&mut s, &db, "a 1\nb 1\n", 1000);
    let out = s.scrape(&db, Err("connection refused".into()), 2000, Instant::now());
    assert_eq!(out.error.as_deref(), Some("connection refused"));
    assert_eq!(out.stale_markers, 2);
    for n in ["a", "b"] {
        let v = &samples(&db, n)[0].1;
        assert!(is_stale_nan(v[1].v) && v[1].t == 2000, "{n}: {v:?}");
    }
    let up = &samples(&db, "up")[0].1;
    assert_eq!(up[1], Sample { t: 2000, v: 0.0 });
    // A second failure writes nothing more for the series.
    let out = s.scrape(&db, Err("x".into()), 3000, Instant::now());
    assert_eq!(out.stale_markers, 0);
    assert_eq!(samples(&db, "a")[0].1.len(), 2);
}

#[test]
fn bad_body_is_all_or_nothing() {
    let (_d, db) = open_db();
    let mut s = Scraper::new(target(), opts());
    scrape(&mut s, &db, "a 1\n", 1000);
    // A parse error after a good line: nothing of this body is stored.
    let out = scrape(&mut s, &db, "a 2\nc 3\nbad{ 4\n", 2000);
    let err = out.error.unwrap();
    assert!(err.contains("line 3"), "{err}");
    assert!(samples(&db, "c").is_empty() || samples(&db, "c")[0].1.is_empty());
    let a = &samples(&db, "a")[0].1;
    assert_eq!(a.len(), 2);
    assert!(is_stale_nan(a[1].v), "{a:?}");
    assert_eq!(samples(&db, "up")[0].1[1].v, 0.0);
    // Duplicate series fail the scrape too.
    let out = scrape(&mut s, &db, "a 5\na 6\n", 3000);
    assert!(out.error.unwrap().contains("duplicate"));
    // Invalid UTF-8 in a label value.
    let body = b"a{x=\"\xff\"} 1\n";
    let out = s.scrape(
        &db,
        Ok((body, Format::PrometheusText)),
        4000,
        Instant::now(),
    );
    assert!(out.error.is_some());
    // OpenMetrics without # EOF.
    let out = s.scrape(
        &db,
        Ok((b"a 1\n", Format::OpenMetrics)),
        5000,
        Instant::now(),
    );
    assert!(out.error.unwrap().to_lowercase().contains("eof"));
    // Recovery.
    let out = scrape(&mut s, &db, "a 7\n", 6000);
    assert_eq!(out.error, None);
    assert_eq!(samples(&db, "a")[0].1.last().unwrap().v, 7.0);
}

#[test]
fn honor_labels_and_exported_prefix() {
    let (_d, db) = open_db();
    let mut s = Scraper::new(target(), opts());
    scrape(&mut s, &db, "a{job=\"other\",exported_job=\"x\"} 1\n", 1000);
    let l = &samples(&db, "a")[0].0;
    assert_eq!(l.get("job"), Some("j"));
    assert_eq!(l.get("exported_job"), Some("x"));
    assert_eq!(l.get("exported_exported_job"), Some("other"));
    let (_d2, db2) = open_db();
    let mut s = Scraper::new(
        target(),
        ScrapeOptions {
            honor_labels: true,
            ..opts()
        },
    );
    scrape(&mut s, &db2, "a{job=\"other\"} 1\n", 1000);
    let l = &samples(&db2, "a")[0].0;
    assert_eq!(l.get("job"), Some("other"));
    assert_eq!(l.get("instance"), Some("h:1"));
}

#[test]
fn metric_relabel_and_limits() {
    let (_d, db) = open_db();
    let rules: Vec<RelabelConfig> =
        serde_yaml::from_str("- source_labels: [__name__]\n  regex: 'go_.*'\n  action: drop\n")
            .unwrap();
    let mut s = Scraper::new(
        target(),
        ScrapeOptions {
            metric_relabel: std::sync::Arc::new(rules),
            sample_limit: 2,
            ..opts()
        },
    );
    let out = scrape(&mut s, &db, "go_a 1\ngo_b 1\na 1\nb 1\n", 1000);
    assert_eq!(out.error, None);
    assert_eq!(out.counts.scraped, 4);
    assert_eq!(out.counts.post_relabel, 2);
    assert!(samples(&db, "go_a").is_empty());
    let out = scrape(&mut s, &db, "go_a 1\na 2\nb 2\nc 2\n", 2000);
    assert_eq!(out.error.as_deref(), Some("sample limit exceeded"));
    assert_eq!(samples(&db, "up")[0].1[1].v, 0.0);
    assert!(samples(&db, "c").is_empty() || samples(&db, "c")[0].1.is_empty());

    let (_d2, db2) = open_db();
    let mut s = Scraper::new(
        target(),
        ScrapeOptions {
            label_limit: 3,
            ..opts()
        },
    );
    let out = scrape(&mut s, &db2, "a{x=\"1\",y=\"2\"} 1\n", 1000);
    assert!(out.error.unwrap().starts_with("label_limit exceeded"));
}

#[test]
fn end_of_run_marks_everything_stale() {
    let (_d, db) = open_db();
    let mut s = Scraper::new(target(), opts());
    scrape(&mut s, &db, "a 1\n", 1000);
    s.end_of_run(&db, 2000);
    for n in ["a", "up", "scrape_duration_seconds", "scrape_series_added"] {
        let v = &samples(&db, n)[0].1;
        assert!(
            is_stale_nan(v.last().unwrap().v) && v.last().unwrap().t == 2000,
            "{n}"
        );
    }
}

#[test]
fn head_series_limit_drops_new_series_and_reports_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(
        dir.path(),
        DbOptions {
            max_head_series: 7,
            ..DbOptions::default()
        },
    )
    .unwrap();
    let mut s = Scraper::new(target(), opts());
    // 5 report series + a + b fill the head.
    let out = scrape(&mut s, &db, "a 1\nb 2\n", 1000);
    assert_eq!((out.error.as_deref(), out.warning.as_deref()), (None, None));
    let out = scrape(&mut s, &db, "a 1\nb 2\nc 3\nd 4\n", 2000);
    assert_eq!(out.error, None, "the scrape itself succeeds");
    let w = out.warning.unwrap();
    assert!(
        w.starts_with("2 samples of new series rejected: head series limit of 7"),
        "{w}"
    );
    assert_eq!(out.counts.series_limited, 2);
    assert_eq!(
        samples(&db, "a")[0].1.len(),
        2,
        "existing series keep ingesting"
    );
    assert!(samples(&db, "c").is_empty());
    assert_eq!(samples(&db, "up")[0].1.last().unwrap().v, 1.0);
    assert_eq!(db.stats().series_limited, 2);
}

#[test]
fn cached_series_follow_the_database() {
    // The cache holds series of the database it scraped into; another one starts over.
    let (_d1, db1) = open_db();
    let (_d2, db2) = open_db();
    let mut s = Scraper::new(target(), opts());
    for t in [1000, 2000] {
        assert_eq!(scrape(&mut s, &db1, "a 1\nb 2\n", t).error, None);
    }
    let out = scrape(&mut s, &db2, "a 3\nb 4\n", 3000);
    assert_eq!(out.error, None);
    assert_eq!(out.counts.series_added, 2);
    for (name, v) in [("a", 3.0), ("b", 4.0)] {
        let got = samples(&db2, name);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].1, vec![Sample { t: 3000, v }]);
        assert_eq!(samples(&db1, name)[0].1.len(), 2);
    }
}

#[test]
fn cached_series_survive_head_truncation() {
    // Series a target still exposes are never removed from the head under its cache.
    let (_d, db) = open_db();
    let mut s = Scraper::new(target(), opts());
    assert_eq!(scrape(&mut s, &db, "a 1\nb 2\n", 1000).error, None);
    db.head().raise_append_floor(5000);
    db.head().truncate_before(5000);
    let out = scrape(&mut s, &db, "a 5\nb 6\n", 6000);
    assert_eq!(out.error, None);
    assert_eq!(out.counts.series_added, 0);
    for (name, v) in [("a", 5.0), ("b", 6.0)] {
        assert_eq!(samples(&db, name)[0].1, vec![Sample { t: 6000, v }]);
    }
}
