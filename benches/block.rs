//! Block benchmarks on a 10k-series block (240 samples per series, 15 s apart, values like
//! a counter and a noisy gauge): write throughput (chunks already encoded, fsyncs
//! included) and select latency for a single series, a 1% regex selection and all series
//! over a short range. Also prints the block's bytes per sample.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

use aion::block::{rechunk, Block, BlockWriter};
use aion::chunk::ChunkData;
use aion::model::{Labels, MatchOp, Matcher, Sample};

const SERIES: usize = 10_000;
const SAMPLES: usize = 240;
const STEP: i64 = 15_000;
const T0: i64 = 1_700_000_000_000;

fn labels(i: usize) -> Labels {
    Labels::from_pairs(&[
        (
            "__name__",
            if i.is_multiple_of(2) {
                "http_requests_total"
            } else {
                "cpu_usage"
            },
        ),
        ("instance", &format!("host-{}:9100", i / 10)),
        ("job", "node"),
        ("path", &format!("/api/{}", i % 10)),
    ])
}

fn data() -> Vec<(Labels, Vec<ChunkData>)> {
    let mut out: Vec<(Labels, Vec<ChunkData>)> = (0..SERIES)
        .map(|i| {
            let mut v = 0.0f64;
            let samples: Vec<Sample> = (0..SAMPLES)
                .map(|k| {
                    let t = T0 + k as i64 * STEP + if k % 7 == 3 { 1 } else { 0 };
                    v = if i.is_multiple_of(2) {
                        v + ((k * 31 + i) % 17) as f64
                    } else {
                        40.0 + ((k * 7919 + i * 104_729) % 1000) as f64 / 37.0
                    };
                    Sample::new(t, v)
                })
                .collect();
            (labels(i), rechunk(&samples))
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn write(parent: &std::path::Path, data: &[(Labels, Vec<ChunkData>)]) -> Block {
    let mut w = BlockWriter::new(parent, T0, T0 + 7_200_000).expect("writer");
    for (l, c) in data {
        w.add_series(l, c).expect("add");
    }
    let meta = w.finish(1, vec![], vec![]).expect("finish");
    Block::open(&parent.join(&meta.ulid)).expect("open")
}

fn bench(c: &mut Criterion) {
    let data = data();
    let total = (SERIES * SAMPLES) as u64;

    let mut g = c.benchmark_group("block_write");
    g.throughput(Throughput::Elements(total));
    g.sample_size(10);
    g.bench_function("10k_series_240_samples", |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                let dir = tempfile::tempdir().expect("dir");
                let start = Instant::now();
                let blk = write(dir.path(), &data);
                spent += start.elapsed();
                drop(blk);
            }
            let secs = spent.as_secs_f64() / iters as f64;
            println!("write: {:.0} samples/s", total as f64 / secs);
            spent
        })
    });
    g.finish();

    let dir = tempfile::tempdir().expect("dir");
    let blk = write(dir.path(), &data);
    let chunk_bytes: u64 = std::fs::read_dir(blk.dir().join("chunks"))
        .expect("chunks")
        .map(|e| e.expect("entry").metadata().expect("meta").len())
        .sum();
    println!(
        "block: {} bytes, {:.3} bytes/sample ({:.3} chunk files only, index {} bytes)",
        blk.size_bytes(),
        blk.size_bytes() as f64 / total as f64,
        chunk_bytes as f64 / total as f64,
        std::fs::metadata(blk.dir().join("index"))
            .expect("index")
            .len()
    );

    let mut g = c.benchmark_group("block_select");
    let one = vec![
        Matcher::equal("__name__", "http_requests_total"),
        Matcher::equal("instance", "host-250:9100"),
        Matcher::equal("path", "/api/4"),
    ];
    let pct = vec![
        Matcher::equal("job", "node"),
        Matcher::new(MatchOp::RegexMatch, "instance", "host-1[0-9]:9100").expect("re"),
    ];
    let all = vec![Matcher::new(MatchOp::RegexMatch, "job", "node|x").expect("re")];
    let end = T0 + SAMPLES as i64 * STEP;
    for (name, ms, mint, maxt) in [
        ("one_series_full_range", &one, T0, end),
        ("1pct_regex_full_range", &pct, T0, end),
        ("all_series_last_5m", &all, end - 300_000, end),
    ] {
        let n = blk.select(ms, mint, maxt).expect("select").len();
        g.bench_with_input(
            BenchmarkId::new(name, n),
            &(ms, mint, maxt),
            |b, (ms, mint, maxt)| {
                b.iter(|| {
                    let s = blk.select(ms, *mint, *maxt).expect("select");
                    let mut buf = Vec::new();
                    let mut k = 0usize;
                    for x in &s {
                        x.samples_into(&mut buf);
                        k += buf.len();
                    }
                    k
                })
            },
        );
    }
    g.bench_function("label_values_instance", |b| {
        b.iter(|| blk.label_values("instance", &[]).expect("values").len())
    });
    g.bench_function("open", |b| {
        b.iter(|| {
            Block::open(blk.dir())
                .expect("open")
                .meta()
                .stats
                .num_series
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
