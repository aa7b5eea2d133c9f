//! XOR chunk benchmarks: encode and decode cost per sample over realistic data.
//!
//! Data mimics scrapes every 15 s where 2% of scrapes are 1–25 ms late; values are
//! counters, gauges with few significant digits, full-precision gauges and constants.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

use aion::chunk::{ChunkData, XorChunk, MAX_SAMPLES_PER_CHUNK};
use aion::model::Sample;

#[path = "common/chunk_data.rs"]
mod chunk_data;

use chunk_data::{dataset, decode, decode_batch, encode, CHUNKS};

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
            b.iter(|| decode(chunks))
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
            b.iter(|| decode_batch(chunks, &mut buf))
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
