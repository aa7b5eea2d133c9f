//! Load test: `aion` scrapes many fake targets on loopback while 50 Grafana-like clients
//! refresh a dashboard of range queries; reports query errors (must be 0), query latency
//! percentiles, the ingestion rate achieved and resident memory over time.
//!
//! By default it is a short smoke run (20 s, 20 targets × 500 series) that fits into
//! `cargo test`. The full run uses a release binary and 200 targets × 1,000 series scraped
//! every second (≥ 200,000 samples/s):
//!
//! ```sh
//! cargo build --release
//! AION_LOAD_SECS=300 AION_LOAD_BIN=target/release/aion \
//!   cargo test --release --test load -- --nocapture
//! ```
//!
//! Knobs (environment): `AION_LOAD_SECS`, `AION_LOAD_BIN`, `AION_LOAD_TARGETS`,
//! `AION_LOAD_SERIES` (per target), `AION_LOAD_CLIENTS` (50), `AION_LOAD_REFRESH_SECS`
//! (dashboard refresh, 10), `AION_LOAD_STEP_SECS` (range query step, 15; range 15 min).
//!
//! The dashboard is the seed guide's (request rate, 5xx ratio, p95/p50 latency from
//! histogram buckets, increase, queue size) with Grafana's usual `$instance` variable, so
//! a panel reads one target's series, plus two job-wide panels (top 5 instances by 5xx
//! rate and the count of healthy targets).

mod common;

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{enc, free_port, try_request, Server};

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn now_s() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

const BUCKETS: [&str; 11] = [
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "+Inf",
];
const STATUSES: [&str; 5] = ["200", "201", "404", "500", "503"];
/// Series per pod: 20 request counters, 4 size counters, 11 buckets, sum, count, 3 gauges.
const PER_POD: usize = 40;

/// What one target exposes: a line prefix per series and how its value moves.
struct Exposition {
    lines: Vec<(String, Kind)>,
}

#[derive(Clone, Copy)]
enum Kind {
    Counter(u64),
    Bucket(u64),
    Sum,
    Gauge(u64),
}

impl Exposition {
    fn new(series: usize) -> Exposition {
        let mut lines = Vec::with_capacity(series);
        let pods = series.div_ceil(PER_POD);
        for p in 0..pods {
            let pod = format!("pod-{p:03}");
            for e in 0..4 {
                for (k, s) in STATUSES.iter().enumerate() {
                    lines.push((
                        format!("http_requests_total{{endpoint=\"/api/e{e}\",status=\"{s}\",pod=\"{pod}\"}} "),
                        Kind::Counter(((5 - k) * (e + 1)) as u64),
                    ));
                }
                lines.push((
                    format!(
                        "http_response_size_bytes_total{{endpoint=\"/api/e{e}\",pod=\"{pod}\"}} "
                    ),
                    Kind::Counter(1000 + e as u64),
                ));
            }
            for (k, le) in BUCKETS.iter().enumerate() {
                lines.push((
                    format!("http_request_duration_seconds_bucket{{le=\"{le}\",pod=\"{pod}\"}} "),
                    Kind::Bucket(k as u64 + 1),
                ));
            }
            lines.push((
                format!("http_request_duration_seconds_sum{{pod=\"{pod}\"}} "),
                Kind::Sum,
            ));
            lines.push((
                format!("http_request_duration_seconds_count{{pod=\"{pod}\"}} "),
                Kind::Bucket(BUCKETS.len() as u64),
            ));
            for (g, name) in [
                "processing_queue_size",
                "cpu_usage_percent",
                "memory_usage_bytes",
            ]
            .iter()
            .enumerate()
            {
                lines.push((format!("{name}{{pod=\"{pod}\"}} "), Kind::Gauge(g as u64)));
            }
        }
        lines.truncate(series);
        Exposition { lines }
    }

    fn render(&self, n: u64, out: &mut String) {
        out.clear();
        for (i, (prefix, kind)) in self.lines.iter().enumerate() {
            out.push_str(prefix);
            let _ = match *kind {
                Kind::Counter(rate) => write!(out, "{}", 1_000 + n * rate),
                Kind::Bucket(k) => write!(out, "{}", n * k),
                Kind::Sum => write!(out, "{}", n as f64 * 3.7),
                Kind::Gauge(g) => write!(out, "{}", (n * 7 + i as u64 + g * 13) % 100),
            };
            out.push('\n');
        }
    }
}

/// Fake exporters: one blocking listener thread per target, a thread per connection.
struct Exporters {
    ports: Vec<u16>,
    stop: Arc<AtomicBool>,
}

impl Exporters {
    fn start(targets: usize, series: usize) -> Exporters {
        let stop = Arc::new(AtomicBool::new(false));
        let expo = Arc::new(Exposition::new(series));
        let mut ports = Vec::new();
        for _ in 0..targets {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            ports.push(l.local_addr().unwrap().port());
            let stop = Arc::clone(&stop);
            let expo = Arc::clone(&expo);
            std::thread::spawn(move || {
                let scrapes = Arc::new(AtomicU64::new(0));
                for conn in l.incoming() {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let Ok(conn) = conn else { continue };
                    let (expo, scrapes, stop) =
                        (Arc::clone(&expo), Arc::clone(&scrapes), Arc::clone(&stop));
                    std::thread::spawn(move || serve(conn, &expo, &scrapes, &stop));
                }
            });
        }
        Exporters { ports, stop }
    }
}

impl Drop for Exporters {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for p in &self.ports {
            // wake the accept loop so it sees the flag
            let _ = TcpStream::connect(("127.0.0.1", *p));
        }
    }
}

fn serve(conn: TcpStream, expo: &Exposition, scrapes: &AtomicU64, stop: &AtomicBool) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
    let Ok(mut w) = conn.try_clone() else { return };
    let mut r = BufReader::new(conn);
    let mut line = String::new();
    let mut body = String::new();
    while !stop.load(Ordering::Relaxed) {
        let mut first = true;
        loop {
            line.clear();
            match r.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            if line.trim_end().is_empty() && !first {
                break;
            }
            first = false;
        }
        let n = scrapes.fetch_add(1, Ordering::Relaxed) + 1;
        expo.render(n, &mut body);
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        if w.write_all(head.as_bytes()).is_err() || w.write_all(body.as_bytes()).is_err() {
            return;
        }
    }
}

/// The dashboard's panels; `$i` is the instance chosen for this refresh.
const PANELS: [&str; 8] = [
    "sum by (status) (rate(http_requests_total{instance=\"$i\"}[1m]))",
    "sum(rate(http_requests_total{instance=\"$i\",status=~\"5..\"}[1m])) / sum(rate(http_requests_total{instance=\"$i\"}[1m]))",
    "histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{instance=\"$i\"}[1m])))",
    "histogram_quantile(0.50, sum by (le) (rate(http_request_duration_seconds_bucket{instance=\"$i\"}[1m])))",
    "sum by (pod) (increase(http_requests_total{instance=\"$i\"}[5m]))",
    "max by (pod) (processing_queue_size{instance=\"$i\"})",
    "topk(5, sum by (instance) (rate(http_requests_total{endpoint=\"/api/e0\",status=\"500\"}[1m])))",
    "count by (job) (up == 1)",
];

fn metric(addr: &str, name: &str) -> Option<f64> {
    let r = try_request(addr, "GET", "/metrics", None, &[]).ok()?;
    r.text()
        .lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn start_server(bin: &Path, data: &Path, cfg: &Path) -> Server {
    let addr = format!("127.0.0.1:{}", free_port());
    let child = Command::new(bin)
        .arg(format!("--web.listen-address={addr}"))
        .arg(format!("--storage.tsdb.path={}", data.display()))
        .arg(format!("--config.file={}", cfg.display()))
        .arg("--query.max-concurrency=20")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start aion");
    let s = Server {
        child,
        addr,
        dir: data.to_path_buf(),
    };
    s.wait_ready(Duration::from_secs(60));
    s
}

#[test]
fn scrape_and_dashboards_under_load() {
    let full = std::env::var("AION_LOAD_SECS").is_ok();
    let secs = env_num("AION_LOAD_SECS", 20);
    let targets = env_num("AION_LOAD_TARGETS", if full { 200 } else { 20 }) as usize;
    let series = env_num("AION_LOAD_SERIES", if full { 1000 } else { 500 }) as usize;
    let clients = env_num("AION_LOAD_CLIENTS", 50) as usize;
    let refresh = Duration::from_secs(env_num("AION_LOAD_REFRESH_SECS", 10));
    let step = env_num("AION_LOAD_STEP_SECS", 15);
    let bin = std::env::var_os("AION_LOAD_BIN")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_aion").into());
    eprintln!(
        "load: {secs} s, {targets} targets × {series} series every 1 s, {clients} clients \
         refreshing {} panels every {refresh:?} (15 min range, step {step} s), binary {}",
        PANELS.len(),
        bin.display()
    );

    let tmp = tempfile::tempdir().unwrap();
    let exporters = Exporters::start(targets, series);
    let list: Vec<String> = exporters
        .ports
        .iter()
        .map(|p| format!("\"127.0.0.1:{p}\""))
        .collect();
    let cfg = tmp.path().join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: load\n    static_configs:\n      - targets: [{}]\n",
            list.join(", ")
        ),
    )
    .unwrap();
    let server = start_server(&bin, &tmp.path().join("data"), &cfg);
    let addr = server.addr.clone();
    let pid = server.child.id();
    // warm-up: every target scraped at least once
    std::thread::sleep(Duration::from_secs(3));

    let stop = Arc::new(AtomicBool::new(false));
    // (panel, seconds)
    let latencies: Arc<Mutex<Vec<(usize, f64)>>> = Arc::new(Mutex::new(Vec::new()));
    let errors: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(Vec::new()));
    let ports = exporters.ports.clone();
    let mut handles = Vec::new();
    for c in 0..clients {
        let (stop, lat, errs, addr, ports) = (
            Arc::clone(&stop),
            Arc::clone(&latencies),
            Arc::clone(&errors),
            addr.clone(),
            ports.clone(),
        );
        handles.push(std::thread::spawn(move || {
            // clients start spread over one refresh interval, as browsers do
            std::thread::sleep(refresh.mul_f64(c as f64 / clients as f64));
            let mut k = c;
            while !stop.load(Ordering::Relaxed) {
                let t0 = Instant::now();
                k = k.wrapping_mul(31).wrapping_add(7);
                let inst = format!("127.0.0.1:{}", ports[k % ports.len()]);
                let end = now_s();
                for (pi, panel) in PANELS.iter().enumerate() {
                    let q = panel.replace("$i", &inst);
                    let body = format!(
                        "query={}&start={:.3}&end={:.3}&step={step}",
                        enc(&q),
                        end - 900.0,
                        end
                    );
                    let s = Instant::now();
                    let r = try_request(
                        &addr,
                        "POST",
                        "/api/v1/query_range",
                        Some(body.as_bytes()),
                        &[("Content-Type", "application/x-www-form-urlencoded")],
                    );
                    let took = s.elapsed().as_secs_f64();
                    match r {
                        Ok(r) if r.status == 200 && r.text().contains("\"success\"") => {
                            lat.lock().unwrap().push((pi, took))
                        }
                        Ok(r) => {
                            errs.lock()
                                .unwrap()
                                .push(format!("{q}: {} {}", r.status, r.text()))
                        }
                        Err(e) => errs.lock().unwrap().push(format!("{q}: {e}")),
                    }
                }
                let spent = t0.elapsed();
                if spent < refresh {
                    std::thread::sleep(refresh - spent);
                }
            }
        }));
    }

    let appended =
        |a: &str| metric(a, "prometheus_tsdb_head_samples_appended_total").unwrap_or(0.0);
    let start = Instant::now();
    let a0 = appended(&addr);
    let mut peak = 0u64;
    let mut last_report = Instant::now();
    let mut last_a = a0;
    let mut timeline = Vec::new();
    while start.elapsed() < Duration::from_secs(secs) {
        std::thread::sleep(Duration::from_secs(1));
        let rss = rss_kib(pid);
        peak = peak.max(rss);
        if last_report.elapsed() >= Duration::from_secs(30)
            || start.elapsed() >= Duration::from_secs(secs)
        {
            let a = appended(&addr);
            let rate = (a - last_a) / last_report.elapsed().as_secs_f64();
            let line = format!(
                "t={:>4.0}s rss={:.0} MiB samples/s={:.0} queries={}",
                start.elapsed().as_secs_f64(),
                rss as f64 / 1024.0,
                rate,
                latencies.lock().unwrap().len()
            );
            eprintln!("load: {line}");
            timeline.push(line);
            last_a = a;
            last_report = Instant::now();
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let a1 = appended(&addr);
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.join().unwrap();
    }
    let healthy = {
        let r = try_request(
            &addr,
            "GET",
            &format!("/api/v1/query?query={}", enc("sum(up)")),
            None,
            &[],
        )
        .unwrap();
        r.json()["data"]["result"][0]["value"][1]
            .as_str()
            .unwrap_or("0")
            .to_string()
    };
    drop(server);
    drop(exporters);

    let all = latencies.lock().unwrap().clone();
    for (pi, panel) in PANELS.iter().enumerate() {
        let mut l: Vec<f64> = all.iter().filter(|x| x.0 == pi).map(|x| x.1).collect();
        l.sort_by(f64::total_cmp);
        eprintln!(
            "load: panel {pi}: p50 {:.1} ms, p99 {:.1} ms  {panel}",
            percentile(&l, 0.5) * 1e3,
            percentile(&l, 0.99) * 1e3
        );
    }
    let mut lat: Vec<f64> = all.iter().map(|x| x.1).collect();
    lat.sort_by(f64::total_cmp);
    let errs = errors.lock().unwrap().clone();
    let rate = (a1 - a0) / elapsed;
    eprintln!(
        "load: {} queries, {} errors; latency p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        lat.len(),
        errs.len(),
        percentile(&lat, 0.5) * 1e3,
        percentile(&lat, 0.9) * 1e3,
        percentile(&lat, 0.99) * 1e3,
        lat.last().copied().unwrap_or(f64::NAN) * 1e3
    );
    eprintln!(
        "load: ingestion {rate:.0} samples/s (offered {} samples/s), {healthy} of {targets} targets up; peak RSS {:.0} MiB",
        targets * (series + 5),
        peak as f64 / 1024.0
    );
    assert!(
        errs.is_empty(),
        "query errors: {:?}",
        &errs[..errs.len().min(5)]
    );
    assert!(!lat.is_empty(), "no query completed");
    assert!(rate > 0.0, "nothing was ingested");
    assert!(peak > 0 && peak < 16 << 20, "peak RSS {peak} KiB");
}
