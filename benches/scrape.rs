//! Scrape ingestion benchmarks over a realistic body (node-exporter-like families with
//! HELP/TYPE lines, labelled counters, a classic histogram and gauges, 10k samples):
//!
//! * `parse`: the exposition parser alone, per sample;
//! * `scrape_steady_state`: a whole scrape into a database (parse, cache lookup by
//!   series text, append by reference, staleness bookkeeping, report series, one
//!   commit), per sample.
//!
//! Besides criterion's output, each benchmark prints ns/sample.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use aion::db::{Db, DbOptions, FsyncPolicy};
use aion::exposition::{Format, Parser};
use aion::model::Labels;
use aion::scrape::{ScrapeOptions, Scraper};

/// A body of about `n` samples shaped like a busy application plus node metrics.
fn body(n: usize, seed: u64) -> (String, usize) {
    let mut s = String::new();
    let mut count = 0;
    let mut v = seed as f64;
    let _ = writeln!(s, "# HELP http_requests_total Total HTTP requests.");
    let _ = writeln!(s, "# TYPE http_requests_total counter");
    'outer: for route in 0.. {
        for method in ["GET", "POST"] {
            for status in ["200", "404", "500"] {
                v += 1.5;
                let _ = writeln!(
                    s,
                    "http_requests_total{{method=\"{method}\",endpoint=\"/api/v1/resource/{route}\",status=\"{status}\"}} {v}"
                );
                count += 1;
            }
        }
        for le in [
            "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf",
        ] {
            v += 1.0;
            let _ = writeln!(
                s,
                "http_request_duration_seconds_bucket{{method=\"GET\",endpoint=\"/api/v1/resource/{route}\",le=\"{le}\"}} {v}"
            );
            count += 1;
        }
        let _ = writeln!(
            s,
            "node_cpu_seconds_total{{cpu=\"{route}\",mode=\"idle\"}} {:.6}",
            v * 0.37
        );
        let _ = writeln!(
            s,
            "process_resident_memory_bytes{{shard=\"{route}\"}} {}",
            1.2e8 + v
        );
        count += 2;
        if count >= n {
            break 'outer;
        }
    }
    (s, count)
}

fn bench(c: &mut Criterion) {
    let (b0, n) = body(10_000, 0);
    let mut g = c.benchmark_group("scrape");
    g.throughput(Throughput::Elements(n as u64));
    g.measurement_time(Duration::from_secs(3));

    g.bench_function("parse", |b| {
        b.iter(|| {
            let mut p = Parser::new(b0.as_bytes(), Format::PrometheusText);
            let mut k = 0usize;
            while let Some(e) = p.next_entry() {
                if e.is_ok() {
                    k += 1;
                }
            }
            k
        })
    });

    let dir = tempfile::tempdir().expect("temp dir");
    let db = Db::open(dir.path(), DbOptions::with_fsync(FsyncPolicy::Never)).expect("open");
    let target = Labels::from_pairs(&[("instance", "app-1:8080"), ("job", "app")]);
    let mut scraper = Scraper::new(
        target,
        ScrapeOptions {
            honor_timestamps: true,
            ..ScrapeOptions::default()
        },
    );
    // Ten bodies with different values, cycled, so chunks see changing data.
    let bodies: Vec<String> = (0..10).map(|i| body(10_000, i * 7).0).collect();
    let mut t = 1_700_000_000_000i64;
    let out = scraper.scrape(
        &db,
        Ok((bodies[0].as_bytes(), Format::PrometheusText)),
        t,
        Instant::now(),
    );
    assert!(out.error.is_none(), "{:?}", out.error);
    let mut i = 0usize;
    g.bench_function("scrape_steady_state", |b| {
        b.iter(|| {
            t += 15_000;
            i += 1;
            let body = &bodies[i % bodies.len()];
            scraper.scrape(
                &db,
                Ok((body.as_bytes(), Format::PrometheusText)),
                t,
                Instant::now(),
            )
        })
    });
    g.finish();

    // A plain per-sample figure for the report.
    for (name, f) in [("parse", true), ("scrape_steady_state", false)] {
        let reps = 30;
        let start = Instant::now();
        for _ in 0..reps {
            if f {
                let mut p = Parser::new(b0.as_bytes(), Format::PrometheusText);
                while p.next_entry().is_some() {}
            } else {
                t += 15_000;
                i += 1;
                let body = &bodies[i % bodies.len()];
                let _ = scraper.scrape(
                    &db,
                    Ok((body.as_bytes(), Format::PrometheusText)),
                    t,
                    Instant::now(),
                );
            }
        }
        let ns = start.elapsed().as_nanos() as f64 / (reps * n) as f64;
        println!("{name}: {ns:.1} ns/sample ({n} samples per body)");
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
