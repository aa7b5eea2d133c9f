//! PromQL engine benchmarks over a realistic in-memory data set: 1,000 counter series,
//! 1,200 classic-histogram bucket series and 200 gauges, 6 hours at a 15 s interval.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};

use aion::model::{Labels, Sample};
use aion::promql::engine::{Engine, EngineOptions};
use aion::storage::MemStorage;

const INTERVAL_MS: i64 = 15_000;
const DURATION_MS: i64 = 6 * 3_600_000;
const LES: [&str; 12] = [
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf",
];

fn build() -> MemStorage {
    let db = MemStorage::new();
    let points = DURATION_MS / INTERVAL_MS;
    // counters: 10 jobs x 20 instances x 5 codes
    for job in 0..10i64 {
        for inst in 0..20i64 {
            for (ci, code) in ["200", "201", "400", "404", "500"].iter().enumerate() {
                let l = Labels::from_pairs(&[
                    ("__name__", "http_requests_total"),
                    ("job", &format!("job-{job}")),
                    ("instance", &format!("host-{inst}:9090")),
                    ("code", code),
                ]);
                let rate = (1 + job + inst + ci as i64) as f64;
                let mut v = 0.0;
                for i in 0..=points {
                    v += rate * (1.0 + ((i * 7 + inst) % 5) as f64 / 10.0);
                    db.add(&l, Sample::new(i * INTERVAL_MS, v));
                }
            }
        }
    }
    // histograms: 10 jobs x 10 instances x 12 buckets
    for job in 0..10i64 {
        for inst in 0..10i64 {
            for (bi, le) in LES.iter().enumerate() {
                let l = Labels::from_pairs(&[
                    ("__name__", "request_duration_seconds_bucket"),
                    ("job", &format!("job-{job}")),
                    ("instance", &format!("host-{inst}:9090")),
                    ("le", le),
                ]);
                let per_step = (bi + 1) as f64 * (1 + inst) as f64;
                for i in 0..=points {
                    db.add(&l, Sample::new(i * INTERVAL_MS, per_step * i as f64));
                }
            }
        }
    }
    // gauges: 10 jobs x 20 instances
    for job in 0..10i64 {
        for inst in 0..20i64 {
            let l = Labels::from_pairs(&[
                ("__name__", "memory_usage_bytes"),
                ("job", &format!("job-{job}")),
                ("instance", &format!("host-{inst}:9090")),
            ]);
            for i in 0..=points {
                let v = 1e9 + ((i * 31 + inst * 17 + job) % 1000) as f64 * 1e5;
                db.add(&l, Sample::new(i * INTERVAL_MS, v));
            }
        }
    }
    db
}

const QUERIES: [(&str, &str); 5] = [
    ("rate", "rate(http_requests_total[5m])"),
    (
        "sum_by_rate",
        "sum by (job) (rate(http_requests_total[5m]))",
    ),
    (
        "histogram_quantile",
        "histogram_quantile(0.95, sum by (le, job) (rate(request_duration_seconds_bucket[5m])))",
    ),
    ("avg_over_time", "avg_over_time(memory_usage_bytes[10m])"),
    ("topk", "topk(5, rate(http_requests_total[5m]))"),
];

fn bench(c: &mut Criterion) {
    let db = build();
    let engine = Engine::new(EngineOptions::default());
    let end = DURATION_MS;
    let mut g = c.benchmark_group("promql");
    g.sample_size(10);
    for (name, q) in QUERIES {
        g.bench_function(BenchmarkId::new("instant", name), |b| {
            b.iter(|| engine.instant_query(&db, q, end, None).expect("query"))
        });
        for step_s in [30, 60] {
            g.bench_function(BenchmarkId::new(format!("range_6h_{step_s}s"), name), |b| {
                b.iter(|| {
                    engine
                        .range_query(&db, q, 0, end, step_s * 1000, None)
                        .expect("query")
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
