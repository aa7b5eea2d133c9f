//! XOR chunk benchmarks: encode and decode cost per sample over realistic data.
//!
//! Data mimics scrapes every 15 s where 2% of scrapes are 1–25 ms late; values are
//! counters, gauges with few significant digits, full-precision gauges and constants.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

use aion::chunk::{ChunkData, XorChunk, MAX_SAMPLES_PER_CHUNK};
use aion::model::Sample;

/// Chunks per benchmark iteration, so one iteration is long enough to time well.
const CHUNKS: usize = 100;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn timestamps(rng: &mut Rng, start: i64) -> Vec<i64> {
    (0..MAX_SAMPLES_PER_CHUNK as i64)
        .map(|i| {
            let late = if rng.unit() < 0.02 {
                1 + (rng.next() % 25) as i64
            } else {
                0
            };
            start + i * 15_000 + late
        })
        .collect()
}

fn values(kind: &str, rng: &mut Rng) -> Vec<f64> {
    let n = MAX_SAMPLES_PER_CHUNK;
    let mut out = Vec::with_capacity(n);
    let mut x: f64 = match kind {
        "counter" => (rng.next() % 10_000_000) as f64,
        "gauge_few_digits" => 50.0,
        "gauge_full" => 0.5,
        _ => 1.0,
    };
    for _ in 0..n {
        out.push(x);
        match kind {
            "counter" => x += (600.0 + 300.0 * rng.unit()).round(),
            // A percentage with one decimal.
            "gauge_few_digits" => {
                x = ((x + (rng.unit() - 0.5) * 4.0).clamp(0.0, 100.0) * 10.0).round() / 10.0
            }
            "gauge_full" => x = (x + (rng.unit() - 0.5) * 0.01).clamp(0.0, 1.0),
            _ => {}
        }
    }
    out
}

fn dataset(kind: &str) -> Vec<(Vec<i64>, Vec<f64>)> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    (0..CHUNKS)
        .map(|i| {
            let ts = timestamps(&mut rng, 1_700_000_000_000 + i as i64 * 1_800_000);
            (ts, values(kind, &mut rng))
        })
        .collect()
}

fn encode(data: &[(Vec<i64>, Vec<f64>)]) -> Vec<ChunkData> {
    data.iter()
        .map(|(ts, vs)| {
            let mut c = XorChunk::new();
            for (&t, &v) in ts.iter().zip(vs) {
                c.append(t, v);
            }
            c.freeze()
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let kinds = ["counter", "gauge_few_digits", "gauge_full", "constant"];
    let samples = (CHUNKS * MAX_SAMPLES_PER_CHUNK) as u64;

    let mut g = c.benchmark_group("chunk_encode");
    g.throughput(Throughput::Elements(samples));
    for kind in kinds {
        let data = dataset(kind);
        g.bench_with_input(BenchmarkId::from_parameter(kind), &data, |b, data| {
            b.iter(|| {
                let mut bytes = 0;
                for (ts, vs) in data {
                    let mut c = XorChunk::new();
                    for (&t, &v) in ts.iter().zip(vs) {
                        c.append(t, v);
                    }
                    bytes += black_box(c.bytes()).len();
                }
                bytes
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("chunk_decode");
    g.throughput(Throughput::Elements(samples));
    for kind in kinds {
        let chunks = encode(&dataset(kind));
        let bytes: usize = chunks.iter().map(|c| c.bytes().len()).sum();
        eprintln!("{kind}: {:.3} bytes/sample", bytes as f64 / samples as f64);
        g.bench_with_input(BenchmarkId::from_parameter(kind), &chunks, |b, chunks| {
            b.iter(|| {
                // A cheap consumer that uses every timestamp and value bit.
                let mut acc = 0u64;
                for c in chunks {
                    for s in c.iter() {
                        acc = acc.wrapping_add(s.t as u64) ^ s.v.to_bits();
                    }
                }
                acc
            })
        });
    }
    g.finish();

    // The batched decoder the querier uses to read whole chunks.
    let mut g = c.benchmark_group("chunk_decode_batch");
    g.throughput(Throughput::Elements(samples));
    for kind in kinds {
        let chunks = encode(&dataset(kind));
        g.bench_with_input(BenchmarkId::from_parameter(kind), &chunks, |b, chunks| {
            let mut buf = vec![Sample::new(0, 0.0); MAX_SAMPLES_PER_CHUNK];
            b.iter(|| {
                let mut acc = 0u64;
                for c in chunks {
                    let mut it = c.iter();
                    loop {
                        let n = it.next_batch(&mut buf);
                        if n == 0 {
                            break;
                        }
                        for s in &buf[..n] {
                            acc = acc.wrapping_add(s.t as u64) ^ s.v.to_bits();
                        }
                    }
                }
                acc
            })
        });
    }
    g.finish();

    // Validation cost on load: checksum plus a full decode.
    let mut g = c.benchmark_group("chunk_from_bytes");
    g.throughput(Throughput::Elements(samples));
    let chunks = encode(&dataset("counter"));
    let raw: Vec<(std::sync::Arc<[u8]>, u32)> = chunks
        .iter()
        .map(|c| (std::sync::Arc::from(c.bytes()), c.crc()))
        .collect();
    g.bench_function("counter", |b| {
        b.iter(|| {
            let mut n = 0;
            for (bytes, crc) in &raw {
                if let Ok(d) = ChunkData::from_bytes(bytes.clone(), Some(*crc)) {
                    n += d.num_samples();
                }
            }
            n
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
