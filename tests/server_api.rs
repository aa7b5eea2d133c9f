//! The real `aion` binary on a loopback port, driven with the request shapes Grafana and
//! promtool send (see CLIENT-SURFACE.md in the shared material), plus bad input.

mod common;

use std::time::{Duration, Instant};

use common::{enc, Server};

fn wait_for_series(s: &Server, metric: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let r = s.get(&format!("/api/v1/query?query={}", enc(metric)));
        if r.status == 200 && !r.json()["data"]["result"].as_array().unwrap().is_empty() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{metric} never appeared");
}

#[test]
fn grafana_request_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]);

    // Save & test: POST 1+1 at time=4 with timeout=2m.
    let r = s.post_form("/api/v1/query", "query=1%2B1&time=4&timeout=2m");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(
        r.json(),
        serde_json::json!({"status":"success","data":{"resultType":"scalar","result":[4,"2"]}})
    );

    // Own metrics are stored in-process as job="aion".
    wait_for_series(&s, "prometheus_tsdb_head_series");
    let r = s.get("/api/v1/query?query=prometheus_tsdb_head_series");
    let v = r.json();
    let m = &v["data"]["result"][0]["metric"];
    assert_eq!(m["job"], "aion");
    assert_eq!(m["instance"], s.addr.as_str());

    // query_range as a form POST with aligned start/end and a float step.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let (start, end) = ((now - 600) / 15 * 15, (now + 60) / 15 * 15);
    let r = s.post_form(
        "/api/v1/query_range",
        &format!(
            "query={}&start={start}&end={end}&step=15&timeout=2m",
            enc("prometheus_tsdb_head_series")
        ),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["data"]["resultType"], "matrix");
    let values = v["data"]["result"][0]["values"].as_array().unwrap();
    assert!(!values.is_empty());
    assert!(values[0][1].is_string());

    // Metric names for the metric browser.
    let r = s.get(&format!(
        "/api/v1/label/__name__/values?start={}&end={}&limit=40000",
        now - 3600,
        now + 60
    ));
    assert_eq!(r.status, 200);
    let names = r.json()["data"].as_array().unwrap().clone();
    assert!(
        names.iter().any(|n| n == "prometheus_tsdb_head_series"),
        "{names:?}"
    );
    // POST is not allowed there, as in Prometheus.
    assert_eq!(s.post_form("/api/v1/label/__name__/values", "").status, 405);

    // Labels (GET and POST) and series.
    let r = s.post_form(
        "/api/v1/labels",
        &format!("start={}&end={}", now - 3600, now + 60),
    );
    assert_eq!(r.status, 200);
    let labels = r.json()["data"].as_array().unwrap().clone();
    assert!(labels.iter().any(|n| n == "job"));
    let r = s.get(&format!(
        "/api/v1/series?match[]={}",
        enc("{__name__!=\"\"}")
    ));
    assert_eq!(r.status, 200);
    assert!(!r.json()["data"].as_array().unwrap().is_empty());
    let r = s.get("/api/v1/series");
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"], "no match[] parameter provided");

    // Metadata, the millisecond exemplar probe, rules, buildinfo without `features`.
    let r = s.get("/api/v1/metadata?limit=40000");
    assert_eq!(r.status, 200);
    assert!(r.json()["data"].is_object());
    let ms = now * 1000;
    let r = s.get(&format!(
        "/api/v1/query_exemplars?query=test&start={}&end={ms}",
        ms - 1_800_000
    ));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json(), serde_json::json!({"status":"success","data":[]}));
    let r = s.get("/api/v1/rules");
    assert_eq!(r.json()["data"], serde_json::json!({"groups": []}));
    let r = s.get("/api/v1/status/buildinfo");
    let b = r.json();
    assert_eq!(b["status"], "success");
    assert!(b["data"]["version"].is_string());
    assert!(b["data"].get("features").is_none());

    // Status endpoints.
    let t = s.get("/api/v1/status/tsdb").json();
    assert!(t["data"]["headStats"]["numSeries"].as_u64().unwrap() > 0);
    assert!(!t["data"]["seriesCountByMetricName"]
        .as_array()
        .unwrap()
        .is_empty());
    let f = s.get("/api/v1/status/flags").json();
    assert_eq!(f["data"]["query.lookback-delta"], "5m");
    assert_eq!(s.get("/api/v1/status/runtimeinfo").status, 200);
    assert_eq!(
        s.get("/api/v1/status/config").json()["data"]["yaml"]
            .as_str()
            .map(|y| y.contains("scrape_configs")),
        Some(true)
    );

    // Health, gzip, /metrics content type, OPTIONS.
    assert_eq!(s.get("/-/healthy").status, 200);
    let r = common::request(
        &s.addr,
        "GET",
        "/metrics",
        None,
        &[("Accept-Encoding", "gzip")],
    );
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    let r = s.get("/metrics");
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = r.text();
    assert!(text.contains("prometheus_http_requests_total{"));
    for name in [
        "prometheus_tsdb_head_series ",
        "prometheus_tsdb_wal_fsync_duration_seconds_count ",
        "prometheus_tsdb_compactions_total ",
        "prometheus_tsdb_time_retentions_total ",
        "prometheus_engine_query_duration_seconds_count{",
        "process_resident_memory_bytes ",
    ] {
        assert!(text.contains(name), "{name} missing from /metrics");
    }
    assert!(text.contains("# TYPE prometheus_tsdb_wal_fsync_duration_seconds summary\n"));
    assert_eq!(
        common::request(&s.addr, "OPTIONS", "/api/v1/query", None, &[]).status,
        204
    );
}

#[test]
fn bad_input_gets_prometheus_errors_and_server_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &["--query.max-samples=100"]);
    let cases: &[(&str, u16, &str)] = &[
        ("/api/v1/query?query=sum(", 400, "bad_data"),
        ("/api/v1/query?query=1&time=yesterday", 400, "bad_data"),
        (
            "/api/v1/query_range?query=1&start=10&end=5&step=1",
            400,
            "bad_data",
        ),
        (
            "/api/v1/query_range?query=1&start=0&end=100000&step=1",
            400,
            "bad_data",
        ),
        (
            "/api/v1/query_range?query=1&start=0&end=10&step=0",
            400,
            "bad_data",
        ),
        (
            "/api/v1/query_range?query=1&start=0&end=10&step=1ns",
            400,
            "bad_data",
        ),
        ("/api/v1/query?query=1&timeout=1ns", 400, "bad_data"),
    ];
    for (path, code, kind) in cases {
        let r = s.get(path);
        assert_eq!(r.status, *code, "{path}: {}", r.text());
        let v = r.json();
        assert_eq!(v["status"], "error", "{path}");
        assert_eq!(v["errorType"], *kind, "{path}");
    }
    let r = s.get("/api/v1/query?query=sum(");
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .starts_with("invalid parameter \"query\": 1:"),
        "{}",
        r.text()
    );
    let r = s.get("/api/v1/query_range?query=1&start=0&end=100000&step=1");
    assert!(r.json()["error"]
        .as_str()
        .unwrap()
        .starts_with("exceeded maximum resolution of 11,000 points"));

    // Over the sample limit: 422 execution.
    wait_for_series(&s, "prometheus_http_requests_total");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // The end is a minute ahead: right after start-up Aion may have scraped itself only
    // once, possibly within the current second; the minute of steps covering that scrape
    // (through the lookback) loads more than 100 samples.
    let r = s.get(&format!(
        "/api/v1/query_range?query={}&start={}&end={}&step=1",
        enc("{__name__=~\".+\"}"),
        now - 3000,
        now + 60
    ));
    assert_eq!(r.status, 422, "{}", r.text());
    assert_eq!(r.json()["errorType"], "execution");

    // A huge body is refused, not buffered without bound.
    let big = vec![b'a'; 33 << 20];
    let r = common::try_request(
        &s.addr,
        "POST",
        "/api/v1/query",
        Some(&big),
        &[("Content-Type", "application/x-www-form-urlencoded")],
    );
    if let Ok(r) = r {
        assert_eq!(r.status, 400);
    }

    // Admin and lifecycle endpoints are refused when not enabled.
    let r = s.post_form("/api/v1/admin/tsdb/delete_series", "match[]=up");
    assert_eq!(r.json()["error"], "admin APIs disabled");
    assert_eq!(s.post_form("/-/quit", "").status, 403);

    // Still serving.
    let r = s.post_form("/api/v1/query", "query=1%2B1&time=4");
    assert_eq!(r.status, 200);
}

#[test]
fn sigterm_flushes_and_restart_keeps_data() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]);
    wait_for_series(&s, "prometheus_tsdb_head_series");
    let before = s
        .get("/api/v1/query?query=count(%7B__name__%3D~%22.%2B%22%7D)")
        .json();
    let n_before: f64 = before["data"]["result"][0]["value"][1]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(s.terminate(), Some(0));
    let s = Server::start(dir.path(), &["--web.enable-lifecycle"]);
    let after = s
        .get("/api/v1/query?query=count(%7B__name__%3D~%22.%2B%22%7D)")
        .json();
    let n_after: f64 = after["data"]["result"][0]["value"][1]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(n_after >= n_before, "{n_after} < {n_before}");
    // Lifecycle quit works when enabled.
    assert_eq!(s.post_form("/-/quit", "").status, 200);
    let mut s = s;
    let deadline = Instant::now() + Duration::from_secs(20);
    while s.child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "did not quit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn admin_api_deletes_and_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &["--web.enable-admin-api"]);
    wait_for_series(&s, "prometheus_tsdb_head_series");
    // GET is not allowed on admin endpoints.
    assert_eq!(s.get("/api/v1/admin/tsdb/clean_tombstones").status, 405);
    let r = s.post_form("/api/v1/admin/tsdb/delete_series", "");
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"], "no match[] parameter provided");

    let r = s.post_form(
        "/api/v1/admin/tsdb/delete_series",
        &format!("match[]={}", enc("prometheus_tsdb_head_series")),
    );
    assert_eq!(r.status, 204, "{}", r.text());
    let r = s.get("/api/v1/query?query=prometheus_tsdb_head_series");
    assert_eq!(
        r.json()["data"]["result"],
        serde_json::json!([]),
        "{}",
        r.text()
    );
    let r = s.get("/api/v1/query?query=prometheus_tsdb_head_max_time");
    assert!(!r.json()["data"]["result"].as_array().unwrap().is_empty());
    assert_eq!(
        s.post_form("/api/v1/admin/tsdb/clean_tombstones", "")
            .status,
        204
    );

    let r = s.post_form("/api/v1/admin/tsdb/snapshot", "");
    assert_eq!(r.status, 200, "{}", r.text());
    let name = r.json()["data"]["name"].as_str().unwrap().to_string();
    let snap = dir.path().join("snapshots").join(&name);
    assert!(snap.is_dir(), "{}", snap.display());
    drop(s);
    // The snapshot opens as a data directory and holds the data.
    let db = aion::db::Db::open(&snap, aion::db::DbOptions::default()).unwrap();
    let q = db.querier(i64::MIN / 2, i64::MAX / 2).unwrap();
    let m = [aion::model::Matcher::equal(
        "__name__",
        "prometheus_tsdb_head_max_time",
    )];
    assert!(!q.select(&m).unwrap().is_empty());
    let m = [aion::model::Matcher::equal(
        "__name__",
        "prometheus_tsdb_head_series",
    )];
    assert!(q.select(&m).unwrap().is_empty());
}
