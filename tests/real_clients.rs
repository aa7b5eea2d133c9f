//! Real third-party clients against a running `aion`: Debian's promtool 2.42 and the PyPI
//! `prometheus-api-client`. Each test skips with a message when its client is not
//! installed, except under CI (where `.ci/run` installs them), where that is a failure.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::Server;

fn have(cmd: &str, args: &[&str]) -> bool {
    Command::new(cmd)
        .args(args)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn require(what: &str, present: bool) -> bool {
    if !present {
        if std::env::var_os("CI").is_some() {
            panic!("{what} is not installed, but CI must install it (.ci/run)");
        }
        eprintln!("SKIP: {what} is not installed");
    }
    present
}

fn wait_for(s: &Server, metric: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let r = s.get(&format!("/api/v1/query?query={}", common::enc(metric)));
        if r.status == 200 && !r.json()["data"]["result"].as_array().unwrap().is_empty() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{metric} never appeared");
}

fn promtool(args: &[&str]) -> (bool, String) {
    let o = Command::new("promtool").args(args).output().unwrap();
    let mut s = String::from_utf8_lossy(&o.stdout).into_owned();
    s.push_str(&String::from_utf8_lossy(&o.stderr));
    (o.status.success(), s)
}

#[test]
fn promtool_queries() {
    if !require("promtool", have("promtool", &["--version"])) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]);
    wait_for(&s, "prometheus_tsdb_head_series");
    let url = format!("http://{}", s.addr);

    let (ok, out) = promtool(&["query", "instant", &url, "1+1"]);
    assert!(ok, "{out}");
    assert!(out.contains("2"), "{out}");

    let (ok, out) = promtool(&["query", "instant", &url, "prometheus_tsdb_head_series"]);
    assert!(ok, "{out}");
    assert!(
        out.contains("prometheus_tsdb_head_series{") && out.contains("job=\"aion\""),
        "{out}"
    );

    let (ok, out) = promtool(&[
        "query",
        "instant",
        "-o",
        "json",
        &url,
        "prometheus_tsdb_head_series",
    ]);
    assert!(ok, "{out}");
    let v: serde_json::Value =
        serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(v[0]["metric"]["job"], "aion");

    let (ok, out) = promtool(&[
        "query",
        "range",
        "--step=15s",
        &url,
        "prometheus_tsdb_head_series",
    ]);
    assert!(ok, "{out}");
    assert!(out.contains("prometheus_tsdb_head_series{"), "{out}");

    let (ok, out) = promtool(&[
        "query",
        "series",
        "--match=prometheus_tsdb_head_series",
        &url,
    ]);
    assert!(ok, "{out}");
    assert!(
        out.contains("__name__=\"prometheus_tsdb_head_series\""),
        "{out}"
    );

    let (ok, out) = promtool(&["query", "labels", &url, "job"]);
    assert!(ok, "{out}");
    assert!(out.lines().any(|l| l.trim() == "aion"), "{out}");

    // A malformed query is reported as Prometheus reports it.
    let (ok, out) = promtool(&["query", "instant", &url, "sum("]);
    assert!(!ok);
    assert!(
        out.contains("bad_data") && out.contains("parse error"),
        "{out}"
    );
}

#[test]
fn prometheus_api_client_python() {
    let py = "python3";
    if !require(
        "python3 module prometheus_api_client",
        have(py, &["-c", "import prometheus_api_client"]),
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]);
    wait_for(&s, "prometheus_tsdb_head_series");
    let script = r#"
import sys, datetime
from prometheus_api_client import PrometheusConnect
p = PrometheusConnect(url=sys.argv[1], disable_ssl=True)
assert p.check_prometheus_connection(), "connection check failed"
names = p.all_metrics()
assert "prometheus_tsdb_head_series" in names, names
r = p.custom_query(query="prometheus_tsdb_head_series")
assert r and r[0]["metric"]["job"] == "aion", r
r = p.custom_query(query="1+1")
assert r[1] == "2", r
vals = p.get_label_values(label_name="job")
assert "aion" in vals, vals
# The client rounds both ends to whole seconds, so a range ending "now"
# can end before the first scrape of a server that started a moment ago.
# Ending a minute ahead keeps that scrape inside the range.
end = datetime.datetime.now() + datetime.timedelta(minutes=1)
start = end - datetime.timedelta(minutes=10)
r = p.custom_query_range(query="prometheus_tsdb_head_series", start_time=start, end_time=end, step="15")
assert r and r[0]["values"], r
print("ok")
"#;
    let o = Command::new(py)
        .args(["-c", script, &format!("http://{}", s.addr)])
        .output()
        .unwrap();
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success() && out.contains("ok"), "{out}");
}
