//! Query-of-death protection against the real binary: every limit answers with the error
//! type and status Prometheus uses, and the server keeps serving afterwards.

mod common;

use common::{enc, Server};

/// Asserts an API error with `errorType` and status, and returns its message.
#[track_caller]
fn api_error(r: &common::Response, status: u16, kind: &str) -> String {
    assert_eq!(r.status, status, "{}", r.text());
    let j = r.json();
    assert_eq!(j["status"], "error", "{}", r.text());
    assert_eq!(j["errorType"], kind, "{}", r.text());
    j["error"].as_str().unwrap_or_default().to_string()
}

#[track_caller]
fn still_serving(s: &Server) {
    let r = s.get("/api/v1/query?query=1%2B1");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"]["result"][1], "2");
}

#[test]
fn limits_answer_like_prometheus_and_the_server_survives() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(
        dir.path(),
        &["--query.max-samples=5000", "--query.timeout=2s"],
    );

    // Too many samples: execution / 422.
    let q = enc("max_over_time(vector(1)[3h:1s])");
    let e = api_error(
        &s.get(&format!("/api/v1/query?query={q}")),
        422,
        "execution",
    );
    assert_eq!(
        e,
        "query processing would load too many samples into memory in query execution"
    );
    still_serving(&s);
    let q = enc("vector(1)");
    let e = api_error(
        &s.get(&format!(
            "/api/v1/query_range?query={q}&start=0&end=10000&step=1"
        )),
        422,
        "execution",
    );
    assert!(e.contains("too many samples"), "{e}");

    // Too many points per series: bad_data / 400.
    let e = api_error(
        &s.get(&format!(
            "/api/v1/query_range?query={q}&start=0&end=100000&step=1"
        )),
        400,
        "bad_data",
    );
    assert!(
        e.starts_with("exceeded maximum resolution of 11,000 points"),
        "{e}"
    );

    // A regex whose compiled form is too big: a parse error (bad_data / 400).
    let q = enc("{__name__=~\"((a{100}){100}){100}\"}");
    let e = api_error(&s.get(&format!("/api/v1/query?query={q}")), 400, "bad_data");
    assert!(e.contains("exceeds size limit"), "{e}");
    let q = enc("label_replace(vector(1), \"a\", \"$1\", \"b\", \"((a{100}){100}){100}\")");
    let r = s.get(&format!("/api/v1/query?query={q}"));
    assert!(r.status == 400 || r.status == 422, "{}", r.text());
    assert!(r
        .text()
        .contains("invalid regular expression in label_replace()"));
    still_serving(&s);

    // Deep nesting: a parse error, not a stack overflow.
    let deep = format!("{}1{}", "(".repeat(5000), ")".repeat(5000));
    let r = s.post_form("/api/v1/query", &format!("query={}", enc(&deep)));
    let e = api_error(&r, 400, "bad_data");
    assert!(e.contains("nesting too deep"), "{e}");
    let unary = format!("{}1", "-".repeat(100_000));
    let r = s.post_form("/api/v1/query", &format!("query={}", enc(&unary)));
    api_error(&r, 400, "bad_data");
    let chain = vec!["1"; 100_000].join("+");
    let r = s.post_form("/api/v1/query", &format!("query={}", enc(&chain)));
    api_error(&r, 400, "bad_data");
    still_serving(&s);
}

#[test]
fn query_timeout_is_a_timeout_error() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(
        dir.path(),
        &["--query.timeout=100ms", "--query.max-samples=1000000000"],
    );
    // Millions of subquery steps: cannot finish in 100 ms.
    let q = enc("count_over_time(vector(1)[30d:1s])");
    let r = s.get(&format!(
        "/api/v1/query_range?query={q}&start=0&end=3600&step=60"
    ));
    let e = api_error(&r, 503, "timeout");
    assert!(e.starts_with("query timed out"), "{e}");
    still_serving(&s);
}

#[test]
fn head_series_limit_keeps_existing_series_and_reports_in_targets() {
    let dir = tempfile::tempdir().unwrap();
    // The built-in configuration scrapes Aion itself: a few hundred series, more than 50.
    let s = Server::start(dir.path(), &["--storage.tsdb.head-series-limit=50"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let err = loop {
        let j = s.get("/api/v1/targets").json();
        let e = j["data"]["activeTargets"][0]["lastError"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if !e.is_empty() {
            assert_eq!(j["data"]["activeTargets"][0]["health"], "up");
            break e;
        }
        assert!(std::time::Instant::now() < deadline, "no lastError: {j}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    assert!(err.contains("head series limit of 50"), "{err}");
    let r = s.get("/api/v1/query?query=prometheus_tsdb_head_series");
    let j = r.json();
    let n: f64 = j["data"]["result"][0]["value"][1]
        .as_str()
        .map(|v| v.parse().unwrap())
        .unwrap_or(50.0);
    assert!(n <= 50.0, "{j}");
    let m = s.get("/metrics").text();
    let rejected = m
        .lines()
        .find(|l| l.starts_with("aion_tsdb_head_series_limit_rejected_samples_total "))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    assert!(rejected > 0.0, "{m}");
    still_serving(&s);
}
