//! Scraping real targets: Debian's `prometheus-node-exporter` and a Python application
//! instrumented with `prometheus_client`, both on loopback ports, scraped by the real
//! `aion` binary; reloads; `aion check config`; the seed guide's configuration.
//! Without the node exporter binary or the Python package, those parts print `SKIP`.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use common::{enc, free_port, Server};

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct App {
    _proc: Proc,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    port: u16,
}

impl App {
    fn start() -> Option<App> {
        let ok = Command::new("python3")
            .args(["-c", "import prometheus_client"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            return None;
        }
        let port = free_port();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/testdata/scrape/app.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg(port.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready");
        Some(App {
            _proc: Proc(child),
            stdin,
            stdout,
            port,
        })
    }

    fn cmd(&mut self, c: &str) {
        writeln!(self.stdin, "{c}").unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ok");
    }
}

fn node_exporter() -> Option<(Proc, u16)> {
    let bin = [
        "/usr/bin/prometheus-node-exporter",
        "/usr/bin/node_exporter",
    ]
    .into_iter()
    .find(|p| Path::new(p).exists())?;
    let port = free_port();
    let child = Command::new(bin)
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let p = Proc(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some((p, port));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

fn query(s: &Server, q: &str) -> Vec<serde_json::Value> {
    let r = s.get(&format!("/api/v1/query?query={}", enc(q)));
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["data"]["result"].as_array().unwrap().clone()
}

/// Polls `q` until `ok` holds for its result.
fn wait_until(
    s: &Server,
    q: &str,
    ok: impl Fn(&[serde_json::Value]) -> bool,
) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = query(s, q);
        if ok(&r) {
            return r;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {q}: last {r:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn value(r: &[serde_json::Value]) -> f64 {
    r[0]["value"][1].as_str().unwrap().parse().unwrap()
}

fn targets(s: &Server) -> serde_json::Value {
    s.get("/api/v1/targets").json()["data"].clone()
}

fn write_config(dir: &Path, text: &str) -> std::path::PathBuf {
    let p = dir.join("prometheus.yml");
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn python_app_and_node_exporter_are_scraped_as_prometheus_would() {
    let Some(mut app) = App::start() else {
        println!("SKIP: python3 prometheus_client not installed");
        return;
    };
    let node = node_exporter();
    if node.is_none() {
        println!("SKIP (node part): prometheus-node-exporter not installed");
    }
    app.cmd("queue 7");
    app.cmd("conns 3");
    app.cmd("request GET /api 200 0.05");
    app.cmd("request GET /api 200 0.3");

    let dir = tempfile::tempdir().unwrap();
    let node_job = match &node {
        Some((_, port)) => format!(
            "  - job_name: node\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
        ),
        None => String::new(),
    };
    let base = format!(
        "global:\n  scrape_interval: 1s\n  external_labels: {{site: test}}\nscrape_configs:\n  - job_name: app\n    static_configs:\n      - targets: ['127.0.0.1:{}']\n        labels: {{team: core}}\n    metric_relabel_configs:\n      - source_labels: [__name__]\n        regex: 'python_gc_.*'\n        action: drop\n{node_job}",
        app.port
    );
    let bad = "  - job_name: unresolvable\n    static_configs:\n      - targets: ['analysis-service.invalid:8000']\n";
    let cfg = write_config(dir.path(), &format!("{base}{bad}"));
    let data = dir.path().join("data");
    let s = Server::start(
        &data,
        &[
            &format!("--config.file={}", cfg.display()),
            "--web.enable-lifecycle",
        ],
    );
    let inst = format!("127.0.0.1:{}", app.port);

    // The application's series with target labels, and the report series.
    wait_until(&s, "up{job=\"app\"} == 1", |r| r.len() == 1);
    let r = wait_until(&s, "processing_queue_size", |r| r.len() == 1);
    let m = &r[0]["metric"];
    assert_eq!(m["job"], "app");
    assert_eq!(m["instance"], inst.as_str());
    assert_eq!(m["team"], "core");
    assert_eq!(value(&r), 7.0);
    let r = query(
        &s,
        "http_requests_total{method=\"GET\",endpoint=\"/api\",status=\"200\"}",
    );
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(value(&r), 2.0);
    // Bucket boundaries as the client library writes them, normalised as Prometheus does.
    let r = query(&s, "http_request_duration_seconds_bucket{le=\"0.1\"}");
    assert_eq!(value(&r), 1.0);
    let r = query(&s, "http_request_duration_seconds_bucket{le=\"+Inf\"}");
    assert_eq!(value(&r), 2.0);
    assert_eq!(
        value(&query(&s, "http_request_duration_seconds_count")),
        2.0
    );
    assert!(query(&s, "{__name__=~\"python_gc_.*\"}").is_empty());
    for n in [
        "scrape_duration_seconds",
        "scrape_samples_scraped",
        "scrape_samples_post_metric_relabeling",
        "scrape_series_added",
    ] {
        let r = query(&s, &format!("{n}{{job=\"app\"}}"));
        assert_eq!(r.len(), 1, "{n}");
    }
    let scraped = value(&query(&s, "scrape_samples_scraped{job=\"app\"}"));
    let post = value(&query(
        &s,
        "scrape_samples_post_metric_relabeling{job=\"app\"}",
    ));
    assert!(post < scraped, "{post} < {scraped}");

    // Values the test changes show up in the next scrapes.
    app.cmd("queue 42");
    wait_until(&s, "processing_queue_size", |r| {
        r.len() == 1 && value(r) == 42.0
    });
    assert_eq!(value(&query(&s, "database_connections_active")), 3.0);

    // The node exporter's series.
    if node.is_some() {
        wait_until(&s, "up{job=\"node\"} == 1", |r| r.len() == 1);
        let r = wait_until(&s, "node_cpu_seconds_total{mode=\"idle\"}", |r| {
            !r.is_empty()
        });
        assert_eq!(r[0]["metric"]["job"], "node");
        assert!(r[0]["metric"]["cpu"].is_string());
        let r = query(&s, "node_exporter_build_info");
        assert_eq!(r.len(), 1);
    }

    // The unresolvable target is down with a clear error.
    wait_until(&s, "up{job=\"unresolvable\"} == 0", |r| r.len() == 1);
    let t = targets(&s);
    let active = t["activeTargets"].as_array().unwrap();
    let bad_t = active
        .iter()
        .find(|t| t["scrapePool"] == "unresolvable")
        .unwrap();
    assert_eq!(bad_t["health"], "down");
    let err = bad_t["lastError"].as_str().unwrap();
    assert!(err.contains("analysis-service.invalid"), "{err}");
    let app_t = active.iter().find(|t| t["scrapePool"] == "app").unwrap();
    assert_eq!(app_t["health"], "up");
    assert_eq!(app_t["lastError"], "");
    assert_eq!(app_t["scrapeUrl"], format!("http://{inst}/metrics"));
    assert_eq!(app_t["scrapeInterval"], "1s");
    assert_eq!(app_t["scrapeTimeout"], "1s");
    assert_eq!(app_t["labels"]["team"], "core");
    assert_eq!(app_t["discoveredLabels"]["__address__"], inst.as_str());
    assert_eq!(app_t["discoveredLabels"]["__metrics_path__"], "/metrics");

    // Metadata from the exposition.
    let r = s.get("/api/v1/targets/metadata?metric=processing_queue_size");
    let v = r.json();
    let md = v["data"].as_array().unwrap();
    assert_eq!(md.len(), 1, "{v}");
    assert_eq!(md[0]["type"], "gauge");
    assert_eq!(md[0]["help"], "Items waiting in the processing queue");
    assert_eq!(md[0]["target"]["job"], "app");
    // prometheus_client answers Prometheus's Accept header with OpenMetrics, whose
    // counter families are named without `_total`; metadata is keyed by family name.
    let v = s.get("/api/v1/metadata?metric=http_requests").json();
    assert_eq!(v["data"]["http_requests"][0]["type"], "counter", "{v}");
    assert_eq!(
        v["data"]["http_requests"][0]["help"], "Total HTTP requests",
        "{v}"
    );

    // Reload: drop the bad job and the node job; the app target keeps running.
    let before = app_t["lastScrape"].as_str().unwrap().to_string();
    write_config(dir.path(), &base.replace(&node_job, ""));
    assert_eq!(s.post_form("/-/reload", "").status, 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let t = targets(&s);
        let pools: Vec<String> = t["activeTargets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["scrapePool"].as_str().unwrap().to_string())
            .collect();
        if pools == ["app"] {
            let t = &t["activeTargets"][0];
            assert_ne!(t["lastScrape"].as_str().unwrap(), "0001-01-01T00:00:00Z");
            break;
        }
        assert!(Instant::now() < deadline, "{pools:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = before;
    // The removed targets' series become stale about two intervals later.
    wait_until(&s, "up{job=\"unresolvable\"}", |r| r.is_empty());
    if node.is_some() {
        wait_until(&s, "up{job=\"node\"}", |r| r.is_empty());
        wait_until(&s, "node_exporter_build_info", |r| r.is_empty());
    }
    assert_eq!(query(&s, "up{job=\"app\"}").len(), 1);

    // An invalid configuration keeps the running one and reports the failure.
    write_config(dir.path(), &format!("{base}    bogus_field: 1\n"));
    let r = s.post_form("/-/reload", "");
    assert_eq!(r.status, 500, "{}", r.text());
    assert!(r.text().contains("bogus_field"), "{}", r.text());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let m = s.get("/metrics").text();
        if m.contains("prometheus_config_last_reload_successful 0") {
            break;
        }
        assert!(Instant::now() < deadline, "{m}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let t = targets(&s);
    assert_eq!(t["activeTargets"].as_array().unwrap().len(), 1);
    app.cmd("queue 43");
    wait_until(&s, "processing_queue_size", |r| {
        r.len() == 1 && value(r) == 43.0
    });
}

#[test]
fn default_config_scrapes_aion_itself_once() {
    let dir = tempfile::tempdir().unwrap();
    // Run from a directory without prometheus.yml.
    let s = Server::start(dir.path(), &[]);
    let r = wait_until(&s, "up{job=\"aion\"}", |r| r.len() == 1);
    assert_eq!(r[0]["metric"]["instance"], s.addr.as_str());
    assert_eq!(value(&r), 1.0);
    let r = wait_until(&s, "prometheus_tsdb_head_series", |r| !r.is_empty());
    // Exactly one source of job="aion" samples.
    assert_eq!(r.len(), 1, "{r:?}");
    let t = targets(&s);
    assert_eq!(t["activeTargets"][0]["scrapePool"], "aion");
}

#[test]
fn check_config_reports_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let good =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/testdata/config/seed-prometheus.yml");
    let out = Command::new(env!("CARGO_BIN_EXE_aion"))
        .args(["check", "config"])
        .arg(&good)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("SUCCESS"));
    let bad = dir.path().join("bad.yml");
    std::fs::write(
        &bad,
        "scrape_configs:\n  - job_name: a\n    scrape_intervall: 5s\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_aion"))
        .args(["check", "config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("FAILED"), "{text}");
    assert!(text.contains("bad.yml"), "{text}");
    assert!(
        text.contains("line 3: field scrape_intervall not found in type config.ScrapeConfig"),
        "{text}"
    );
}

#[test]
fn seed_guide_config_loads_and_its_targets_are_down() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/testdata/config/seed-prometheus.yml"),
    )
    .unwrap()
    // Keep the test short: the same configuration with a 1s interval.
    .replace("scrape_interval: 15s", "scrape_interval: 1s")
    .replace("scrape_interval: 10s", "scrape_interval: 1s")
    // Nothing listens on the node exporter's default port here: use a closed one.
    .replace("localhost:9100", &format!("localhost:{}", free_port()));
    let cfg = write_config(dir.path(), &text);
    let s = Server::start(
        &dir.path().join("data"),
        &[&format!("--config.file={}", cfg.display())],
    );
    let r = wait_until(&s, "up", |r| r.len() == 5);
    for x in &r {
        assert_eq!(x["value"][1], "0", "{x}");
    }
    let t = targets(&s);
    for a in t["activeTargets"].as_array().unwrap() {
        assert_eq!(a["health"], "down");
        assert!(!a["lastError"].as_str().unwrap().is_empty());
    }
    let a = t["activeTargets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["scrapePool"] == "tracktion-analysis")
        .unwrap();
    assert!(
        a["lastError"]
            .as_str()
            .unwrap()
            .contains("analysis-service"),
        "{a}"
    );
}
