//! WAL benchmarks: replay rate (samples/s) and append throughput per fsync policy.

use std::time::{Duration, Instant};

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

use aion::model::Labels;
use aion::wal::{self, FsyncPolicy, Record, RefSample, RefSeries, Wal, WalOptions};

const REPLAY_SAMPLES: u64 = 1_000_000;
const SAMPLES_PER_RECORD: u64 = 1000;
const SERIES: u64 = 1000;

/// A scrape-like samples record: `SERIES` series, one sample each, at one timestamp.
fn samples_record(round: u64, per_record: u64) -> Record {
    Record::Samples(
        (0..per_record)
            .map(|i| RefSample {
                series_ref: i % SERIES + 1,
                t: 1_700_000_000_000 + (round * 15_000) as i64,
                v: (round * per_record + i) as f64 * 0.25,
            })
            .collect(),
    )
}

fn replay(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let opts = WalOptions {
        fsync: FsyncPolicy::Never,
        ..WalOptions::default()
    };
    let (w, _) = Wal::open(dir.path(), opts, |_| {}).expect("open");
    let series: Vec<RefSeries> = (1..=SERIES)
        .map(|r| RefSeries {
            series_ref: r,
            labels: Labels::from_pairs(&[
                ("__name__", "http_requests_total"),
                ("instance", &format!("host-{r}:9100")),
                ("job", "node"),
            ]),
        })
        .collect();
    w.log(&[Record::Series(series)]).expect("log series");
    for round in 0..REPLAY_SAMPLES / SAMPLES_PER_RECORD {
        w.log(&[samples_record(round, SAMPLES_PER_RECORD)])
            .expect("log samples");
    }
    w.close().expect("close");

    let mut g = c.benchmark_group("wal_replay");
    g.throughput(Throughput::Elements(REPLAY_SAMPLES));
    g.bench_function("1M_samples_in_records_of_1000", |b| {
        b.iter(|| {
            let mut n = 0usize;
            let mut sum = 0.0f64;
            let stats = wal::read_dir(dir.path(), |r| {
                if let Record::Samples(s) = r {
                    n += s.len();
                    sum += s.last().map_or(0.0, |x| x.v);
                }
            })
            .expect("replay");
            assert_eq!(stats.samples, REPLAY_SAMPLES);
            black_box((n, sum))
        })
    });
    g.finish();
}

fn log_throughput(c: &mut Criterion) {
    let mut g = c.benchmark_group("wal_log");
    let policies = [
        ("always", FsyncPolicy::Always),
        ("interval_1s", FsyncPolicy::Interval(Duration::from_secs(1))),
        ("never", FsyncPolicy::Never),
    ];
    for per_commit in [1u64, 100, 1000] {
        g.throughput(Throughput::Elements(per_commit));
        for (name, policy) in policies {
            let dir = tempfile::tempdir().expect("temp dir");
            let opts = WalOptions {
                fsync: policy,
                ..WalOptions::default()
            };
            let (w, _) = Wal::open(dir.path(), opts, |_| {}).expect("open");
            let rec = [samples_record(0, per_commit)];
            g.bench_with_input(
                BenchmarkId::new(name, format!("{per_commit}_samples_per_commit")),
                &rec,
                |b, rec| {
                    b.iter_custom(|iters| {
                        let start = Instant::now();
                        for _ in 0..iters {
                            w.log(rec).expect("log");
                        }
                        let took = start.elapsed();
                        // keep the disk footprint bounded between batches (not timed)
                        let seg = w.cut_segment().expect("cut");
                        w.truncate_before(seg).expect("truncate");
                        took
                    })
                },
            );
            w.close().expect("close");
        }
    }
    // group commit: 8 threads committing concurrently with `Always`
    let threads = 8u64;
    g.throughput(Throughput::Elements(threads * 100));
    let dir = tempfile::tempdir().expect("temp dir");
    let opts = WalOptions {
        fsync: FsyncPolicy::Always,
        ..WalOptions::default()
    };
    let (w, _) = Wal::open(dir.path(), opts, |_| {}).expect("open");
    let rec = [samples_record(0, 100)];
    let mut commits = 0u64;
    g.bench_function("always_8_threads/100_samples_per_commit", |b| {
        b.iter_custom(|iters| {
            commits += iters * threads;
            let start = Instant::now();
            std::thread::scope(|s| {
                for _ in 0..threads {
                    let (w, rec) = (&w, &rec);
                    s.spawn(move || {
                        for _ in 0..iters {
                            w.log(rec).expect("log");
                        }
                    });
                }
            });
            let took = start.elapsed();
            let seg = w.cut_segment().expect("cut");
            w.truncate_before(seg).expect("truncate");
            took
        })
    });
    eprintln!(
        "always_8_threads: {commits} commits, {} fsyncs",
        w.fsync_count()
    );
    w.close().expect("close");
    g.finish();
}

criterion_group!(benches, replay, log_throughput);
criterion_main!(benches);
