//! Exposition parser benchmarks: ns per sample over a realistic scrape body of about
//! 10k series (HTTP counters, classic histograms, gauges), in both formats.

use std::fmt::Write as _;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use aion::exposition::{Entry, Format, Parser};

const ROUTES: [(&str, &str); 8] = [
    ("GET", "/api/users"),
    ("GET", "/api/products"),
    ("GET", "/api/orders"),
    ("POST", "/api/orders"),
    ("GET", "/api/search"),
    ("POST", "/api/auth/login"),
    ("PUT", "/api/cart"),
    ("DELETE", "/api/cart"),
];
const LES: [&str; 12] = [
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1.0", "2.5", "5.0", "10.0", "+Inf",
];

/// A body of 64 instances x 157 series (10,048 samples). OpenMetrics bodies carry
/// timestamps in seconds and end with `# EOF`.
fn body(format: Format) -> (String, usize) {
    let om = format == Format::OpenMetrics;
    let ts = if om { " 1699920015.000" } else { "" };
    let mut out = String::new();
    let mut n = 0;
    out.push_str("# HELP http_requests_total Total HTTP requests.\n");
    out.push_str("# TYPE http_requests_total counter\n");
    for i in 0..64 {
        for (m, e) in ROUTES {
            for code in ["200", "400", "404", "500", "503"] {
                let v = 1000 * i + code.len() * 7;
                writeln!(out, "http_requests_total{{method=\"{m}\",endpoint=\"{e}\",status=\"{code}\",instance=\"app-{i:05}:8080\",job=\"api-gateway\"}} {v}{ts}").unwrap();
                n += 1;
            }
        }
    }
    out.push_str("# HELP http_request_duration_seconds Latency.\n");
    out.push_str("# TYPE http_request_duration_seconds histogram\n");
    for i in 0..64 {
        for (m, e) in ROUTES {
            let lbl = format!(
                "method=\"{m}\",endpoint=\"{e}\",instance=\"app-{i:05}:8080\",job=\"api-gateway\""
            );
            for (k, le) in LES.iter().enumerate() {
                writeln!(
                    out,
                    "http_request_duration_seconds_bucket{{{lbl},le=\"{le}\"}} {}{ts}",
                    100 * k + i
                )
                .unwrap();
            }
            writeln!(
                out,
                "http_request_duration_seconds_sum{{{lbl}}} {}{ts}",
                1234.5678901234 + i as f64
            )
            .unwrap();
            writeln!(
                out,
                "http_request_duration_seconds_count{{{lbl}}} {}{ts}",
                1200 + i
            )
            .unwrap();
            n += 14;
        }
    }
    for g in [
        "cpu_usage_percent",
        "memory_usage_percent",
        "processing_queue_size",
        "database_connections_active",
        "up",
    ] {
        writeln!(out, "# TYPE {g} gauge").unwrap();
        for i in 0..64 {
            writeln!(
                out,
                "{g}{{instance=\"app-{i:05}:8080\",job=\"api-gateway\"}} {}{ts}",
                37.123456789 + i as f64
            )
            .unwrap();
            n += 1;
        }
    }
    if om {
        out.push_str("# EOF\n");
    }
    (out, n)
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("exposition");
    for (name, format) in [
        ("text", Format::PrometheusText),
        ("openmetrics", Format::OpenMetrics),
    ] {
        let (b, n) = body(format);
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(format!("{name}/parse"), |bench| {
            bench.iter(|| {
                let mut sum = 0.0;
                for e in Parser::new(black_box(b.as_bytes()), format) {
                    if let Ok(Entry::Series(s)) = e {
                        sum += s.value;
                    }
                }
                sum
            })
        });
        g.bench_function(format!("{name}/parse_and_labels"), |bench| {
            bench.iter(|| {
                let mut count = 0usize;
                for e in Parser::new(black_box(b.as_bytes()), format) {
                    if let Ok(Entry::Series(s)) = e {
                        count += s.to_labels().map(|l| l.len()).unwrap_or(0);
                    }
                }
                count
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
