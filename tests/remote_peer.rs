//! Remote write, remote read and federation against the real peer: Debian's Prometheus
//! (2.42) remote-writes what it scrapes to Aion, reads Aion's data through
//! `remote_read`, and federates from Aion's `/federate`. The HTTP error cases of the
//! receiver are checked against the `aion` binary alone. Tests needing Prometheus print
//! `SKIP` and pass when it is not installed.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aion::remote::codec;
use aion::remote::proto::{
    Label, LabelMatcher, MatcherType, Query, ReadRequest, ReadResponse, Sample, TimeSeries,
    WriteRequest,
};
use common::{enc, request, Server};
use serde_json::Value;

const STALE_NAN: u64 = 0x7ff0_0000_0000_0002;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn prometheus_bin() -> Option<PathBuf> {
    ["/usr/bin/prometheus", "/usr/local/bin/prometheus"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// A Prometheus process, killed on drop.
struct Prom {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Drop for Prom {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_prometheus(config: &str) -> Option<Prom> {
    let bin = prometheus_bin()?;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("prometheus.yml");
    std::fs::write(&cfg, config).unwrap();
    let addr = format!("127.0.0.1:{}", common::free_port());
    let child = Command::new(bin)
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address={addr}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start prometheus");
    let p = Prom {
        child,
        addr,
        _dir: dir,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(r) = common::try_request(&p.addr, "GET", "/-/ready", None, &[]) {
            if r.status == 200 {
                return Some(p);
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("prometheus on {} not ready", p.addr);
}

/// A scrape target on a loopback port: a counter that counts scrapes, a gauge, a NaN,
/// and a series that disappears after the fourth scrape (so that Prometheus sends a
/// staleness marker for it).
struct Target {
    addr: String,
    scrapes: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Target {
    fn start() -> Target {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let scrapes = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (n, s) = (scrapes.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let Ok((mut c, _)) = l.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                let _ = c.set_nonblocking(false);
                let _ = c.set_read_timeout(Some(Duration::from_secs(2)));
                let mut buf = [0u8; 4096];
                let _ = c.read(&mut buf);
                let i = n.fetch_add(1, Ordering::Relaxed) + 1;
                let mut body = format!(
                    "# HELP demo_counter Scrapes served.\n# TYPE demo_counter counter\n\
                     demo_counter{{path=\"/a\"}} {i}\n\
                     # TYPE demo_gauge gauge\ndemo_gauge{{q=\"x\\\"y\"}} {}\n\
                     demo_nan NaN\n",
                    i as f64 * 0.25
                );
                if i <= 4 {
                    body.push_str("demo_flap 1\n");
                }
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = c.write_all(resp.as_bytes());
            }
        });
        Target {
            addr,
            scrapes,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn get_json(addr: &str, path: &str) -> Value {
    let r = request(addr, "GET", path, None, &[]);
    assert_eq!(r.status, 200, "GET {path} on {addr}: {}", r.text());
    r.json()
}

/// The result of a query, series sorted by labels, for comparison across servers.
fn result(addr: &str, path: &str) -> Vec<Value> {
    let v = get_json(addr, path);
    let mut r = v["data"]["result"].as_array().cloned().unwrap_or_default();
    r.sort_by_key(|s| s["metric"].to_string());
    r
}

fn series(labels: &[(&str, &str)], samples: &[(i64, f64)]) -> TimeSeries {
    TimeSeries {
        labels: labels
            .iter()
            .map(|(n, v)| Label {
                name: n.to_string(),
                value: v.to_string(),
            })
            .collect(),
        samples: samples
            .iter()
            .map(|&(timestamp, value)| Sample { value, timestamp })
            .collect(),
        exemplars: vec![],
        histograms: vec![],
    }
}

fn write_body(ts: Vec<TimeSeries>) -> Vec<u8> {
    codec::encode(&WriteRequest {
        timeseries: ts,
        metadata: vec![],
    })
}

fn post_write(addr: &str, body: &[u8], content_type: &str) -> common::Response {
    request(
        addr,
        "POST",
        "/api/v1/write",
        Some(body),
        &[
            ("Content-Type", content_type),
            ("Content-Encoding", "snappy"),
            ("X-Prometheus-Remote-Write-Version", "0.1.0"),
        ],
    )
}

fn write_config(dir: &Path, text: &str) -> String {
    let p = dir.join("aion.yml");
    std::fs::write(&p, text).unwrap();
    format!("--config.file={}", p.display())
}

const NO_SCRAPES: &str = "global:\n  external_labels:\n    site: aion\nscrape_configs: []\n";

#[test]
fn prometheus_remote_writes_to_aion_and_both_answer_the_same() {
    if prometheus_bin().is_none() {
        println!("SKIP: prometheus not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "scrape_configs: []\n");
    let aion = Server::start(
        &dir.path().join("data"),
        &[&cfg, "--web.enable-remote-write-receiver"],
    );
    let target = Target::start();
    let prom = start_prometheus(&format!(
        "global:\n  scrape_interval: 1s\n\
         scrape_configs:\n  - job_name: demo\n    static_configs:\n      - targets: ['{}']\n\
         remote_write:\n  - url: http://{}/api/v1/write\n    queue_config:\n      batch_send_deadline: 1s\n    metadata_config:\n      send_interval: 1s\n",
        target.addr, aion.addr
    ))
    .unwrap();
    let start = Instant::now();
    // Wait past the disappearance of demo_flap, so the compared window holds its
    // staleness marker.
    while target.scrapes.load(Ordering::Relaxed) < 9 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "target not scraped"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let mut last = (Vec::new(), Vec::new());
    let mut same = false;
    while start.elapsed() < Duration::from_secs(30) {
        let end = now_ms() / 1000 - 3;
        let path = format!(
            "/api/v1/query_range?query={}&start={}&end={end}&step=1",
            enc("{job=\"demo\"}"),
            end - 8
        );
        let p = result(&prom.addr, &path);
        let a = result(&aion.addr, &path);
        if !p.is_empty() && p == a {
            same = true;
            last = (p, a);
            break;
        }
        last = (p, a);
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(
        same,
        "Prometheus and Aion differ:\nprometheus: {:?}\naion: {:?}",
        last.0, last.1
    );
    let names: Vec<&str> = last
        .0
        .iter()
        .filter_map(|s| s["metric"]["__name__"].as_str())
        .collect();
    for want in ["demo_counter", "demo_gauge", "demo_nan", "up"] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    // demo_flap went stale in both: neither answers it at the end of the window.
    let now = now_ms() as f64 / 1000.0 - 3.0;
    let q = format!("/api/v1/query?query=demo_flap&time={now}");
    assert_eq!(result(&prom.addr, &q), Vec::<Value>::new());
    assert_eq!(result(&aion.addr, &q), Vec::<Value>::new());
    // Metadata sent alongside reaches /api/v1/metadata.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let m = get_json(&aion.addr, "/api/v1/metadata?metric=demo_counter");
        if m["data"]["demo_counter"][0]["type"] == "counter" {
            assert_eq!(m["data"]["demo_counter"][0]["help"], "Scrapes served.");
            break;
        }
        assert!(Instant::now() < deadline, "no metadata: {m}");
        std::thread::sleep(Duration::from_millis(300));
    }
    // The receiver counts what it received.
    let metrics = request(&aion.addr, "GET", "/metrics", None, &[]).text();
    assert!(
        metrics.contains("aion_remote_write_received_samples_total"),
        "no received-samples counter"
    );
}

#[test]
fn prometheus_reads_and_federates_from_aion() {
    if prometheus_bin().is_none() {
        println!("SKIP: prometheus not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), NO_SCRAPES);
    let aion = Server::start(
        &dir.path().join("data"),
        &[&cfg, "--web.enable-remote-write-receiver"],
    );
    let t0 = now_ms() - 20_000;
    let pts: Vec<(i64, f64)> = (0..20).map(|i| (t0 + i * 1000, i as f64 + 0.5)).collect();
    let mut stale_pts = pts.clone();
    stale_pts.push((t0 + 20_000, f64::from_bits(STALE_NAN)));
    let body = write_body(vec![
        series(&[("__name__", "rr_metric"), ("job", "push")], &pts),
        series(
            &[("__name__", "fed_metric"), ("job", "push"), ("k", "v\"q")],
            &pts,
        ),
        series(&[("__name__", "fed_stale"), ("job", "push")], &stale_pts),
    ]);
    let r = post_write(&aion.addr, &body, "application/x-protobuf");
    assert_eq!(r.status, 204, "{}", r.text());

    let prom = start_prometheus(&format!(
        "global:\n  scrape_interval: 1s\n\
         scrape_configs:\n  - job_name: federate\n    honor_labels: true\n    metrics_path: /federate\n    params:\n      'match[]': ['{{__name__=~\"fed_.*\"}}']\n    static_configs:\n      - targets: ['{a}']\n\
         remote_read:\n  - url: http://{a}/api/v1/read\n    read_recent: true\n    required_matchers:\n      __name__: rr_metric\n",
        a = aion.addr
    ))
    .unwrap();

    // Remote read: Prometheus has no rr_metric of its own; it answers with Aion's,
    // external label included.
    let now = now_ms() as f64 / 1000.0;
    let res = result(
        &prom.addr,
        &format!("/api/v1/query?query=rr_metric&time={now}"),
    );
    assert_eq!(res.len(), 1, "{res:?}");
    assert_eq!(
        res[0]["metric"],
        serde_json::json!({"__name__": "rr_metric", "job": "push", "site": "aion"})
    );
    assert_eq!(res[0]["value"][1], "19.5");
    let range = result(
        &prom.addr,
        &format!(
            "/api/v1/query_range?query=rr_metric&start={}&end={}&step=1",
            t0 / 1000 + 1,
            (t0 + 19_000) / 1000
        ),
    );
    assert_eq!(range[0]["values"].as_array().unwrap().len(), 19);

    // Federation: Prometheus scrapes /federate and stores Aion's latest samples.
    let deadline = Instant::now() + Duration::from_secs(20);
    let fed = loop {
        let now = now_ms() as f64 / 1000.0;
        let r = result(
            &prom.addr,
            &format!(
                "/api/v1/query?query={}&time={now}",
                enc("{__name__=~\"fed_.*\"}")
            ),
        );
        if !r.is_empty() {
            break r;
        }
        assert!(Instant::now() < deadline, "nothing federated");
        std::thread::sleep(Duration::from_millis(300));
    };
    // fed_stale ended with a staleness marker, so it is not federated.
    assert_eq!(fed.len(), 1, "{fed:?}");
    assert_eq!(
        fed[0]["metric"],
        serde_json::json!({"__name__": "fed_metric", "job": "push", "k": "v\"q", "site": "aion"})
    );
    assert_eq!(fed[0]["value"][1], "19.5");
    let targets = get_json(&prom.addr, "/api/v1/targets");
    assert_eq!(
        targets["data"]["activeTargets"][0]["health"], "up",
        "{targets}"
    );
}

#[test]
fn receiver_http_errors_and_limits() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), NO_SCRAPES);
    // Disabled by default, with Prometheus's answer.
    {
        let off = Server::start(&dir.path().join("off"), &[&cfg]);
        let r = post_write(&off.addr, &write_body(vec![]), "application/x-protobuf");
        assert_eq!(r.status, 404);
        assert!(r.text().contains("--web.enable-remote-write-receiver"));
    }
    let aion = Server::start(
        &dir.path().join("on"),
        &[&cfg, "--web.enable-remote-write-receiver"],
    );
    let t = now_ms();
    let good = series(&[("__name__", "ok_metric"), ("job", "t")], &[(t, 1.0)]);
    // Remote write 2.0 and other encodings: 415.
    let r = post_write(
        &aion.addr,
        &write_body(vec![good.clone()]),
        "application/x-protobuf;proto=io.prometheus.write.v2.Request",
    );
    assert_eq!(r.status, 415, "{}", r.text());
    let r = request(
        &aion.addr,
        "POST",
        "/api/v1/write",
        Some(&write_body(vec![good.clone()])),
        &[("Content-Encoding", "gzip")],
    );
    assert_eq!(r.status, 415);
    // Undecodable: 400.
    let r = post_write(&aion.addr, b"not snappy at all", "application/x-protobuf");
    assert_eq!(r.status, 400);
    // A bad series fails the whole request, and the good one is not stored.
    let bad = series(&[("job", "t"), ("__name__", "unsorted")], &[(t, 1.0)]);
    let r = post_write(
        &aion.addr,
        &write_body(vec![good.clone(), bad]),
        "application/x-protobuf",
    );
    assert_eq!(r.status, 400);
    assert!(r.text().contains("not sorted"), "{}", r.text());
    let q = format!("/api/v1/query?query=ok_metric&time={}", t as f64 / 1000.0);
    assert_eq!(result(&aion.addr, &q), Vec::<Value>::new());
    // Over the compressed limit, or announcing a huge decompressed size: 413.
    let big = vec![0u8; (32 << 20) + 1];
    let r = post_write(&aion.addr, &big, "application/x-protobuf");
    assert_eq!(r.status, 413);
    let r = post_write(&aion.addr, &[0x80, 0x80, 0x80, 0x80, 0x04], "");
    assert_eq!(r.status, 413);
    // The good request alone: 204, stored, counted.
    let r = post_write(&aion.addr, &write_body(vec![good]), "");
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(result(&aion.addr, &q).len(), 1);

    // Remote read with SAMPLES.
    let rr = ReadRequest {
        queries: vec![Query {
            start_timestamp_ms: t - 1000,
            end_timestamp_ms: t + 1000,
            matchers: vec![LabelMatcher {
                r#type: MatcherType::Eq as i32,
                name: "__name__".into(),
                value: "ok_metric".into(),
            }],
            hints: None,
        }],
        accepted_response_types: vec![0],
    };
    let r = request(
        &aion.addr,
        "POST",
        "/api/v1/read",
        Some(&codec::encode(&rr)),
        &[
            ("Content-Type", "application/x-protobuf"),
            ("Content-Encoding", "snappy"),
        ],
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-encoding"), Some("snappy"));
    let resp: ReadResponse = codec::decode(&r.body, 1 << 20).unwrap();
    let ts = &resp.results[0].timeseries;
    assert_eq!(ts.len(), 1);
    let names: Vec<&str> = ts[0].labels.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["__name__", "job", "site"]);
    assert_eq!(ts[0].samples[0].timestamp, t);
    // A client accepting only chunked streams gets frames of XOR chunks.
    let mut streamed = rr.clone();
    streamed.accepted_response_types = vec![1];
    let r = request(
        &aion.addr,
        "POST",
        "/api/v1/read",
        Some(&codec::encode(&streamed)),
        &[("Accept-Encoding", "gzip")],
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("application/x-streamed-protobuf; proto=prometheus.ChunkedReadResponse")
    );
    let body = &r.body;
    let (len, n) = (body[0] as usize, 1); // one-byte uvarint: a small frame
    assert!(len < 0x80);
    let crc = u32::from_be_bytes(body[n..n + 4].try_into().unwrap());
    let msg = &body[n + 4..];
    assert_eq!(msg.len(), len);
    assert_eq!(crc, aion::remote::chunked::crc32c(msg));
    let frame: aion::remote::chunked::ChunkedReadResponse = prost::Message::decode(msg).unwrap();
    let cs = &frame.chunked_series[0];
    assert_eq!(cs.labels.len(), 3);
    assert_eq!(cs.chunks[0].min_time_ms, t);
    assert_eq!(cs.chunks[0].r#type, 1);
    // An unknown response type only: 400.
    let mut unknown = rr.clone();
    unknown.accepted_response_types = vec![9];
    let r = request(
        &aion.addr,
        "POST",
        "/api/v1/read",
        Some(&codec::encode(&unknown)),
        &[],
    );
    assert_eq!(r.status, 400);

    // Federation needs a match[].
    assert_eq!(aion.get("/federate").status, 400);
    let r = aion.get(&format!("/federate?match[]={}", enc("{job=\"t\"}")));
    assert_eq!(r.status, 200);
    assert_eq!(
        r.text(),
        format!(
            "# TYPE ok_metric untyped\nok_metric{{job=\"t\",instance=\"\",site=\"aion\"}} 1 {t}\n"
        )
    );
}
