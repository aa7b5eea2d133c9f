//! The chunk benchmark's data sets (scrapes every 15 s, 2% of them 1–25 ms late; counters,
//! gauges with few significant digits, full-precision gauges and constants) and the
//! decoding loops it times, shared by `benches/chunk.rs` and the profiling example
//! `examples/chunk_decode_profile.rs`.

use aion::chunk::{ChunkData, XorChunk, MAX_SAMPLES_PER_CHUNK};
use aion::model::Sample;

/// Chunks per benchmark iteration, so one iteration is long enough to time well.
pub const CHUNKS: usize = 100;

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

pub fn dataset(kind: &str) -> Vec<(Vec<i64>, Vec<f64>)> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    (0..CHUNKS)
        .map(|i| {
            let ts = timestamps(&mut rng, 1_700_000_000_000 + i as i64 * 1_800_000);
            (ts, values(kind, &mut rng))
        })
        .collect()
}

pub fn encode(data: &[(Vec<i64>, Vec<f64>)]) -> Vec<ChunkData> {
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

/// Decodes every sample with `next`, folding each timestamp and value into the result
/// (a cheap consumer that uses every bit, so nothing is optimised away).
#[inline(never)]
pub fn decode(chunks: &[ChunkData]) -> u64 {
    let mut acc = 0u64;
    for c in chunks {
        for s in c.iter() {
            acc = acc.wrapping_add(s.t as u64) ^ s.v.to_bits();
        }
    }
    acc
}

/// As [`decode`], with the batched decoder the querier uses to read whole chunks.
#[inline(never)]
pub fn decode_batch(chunks: &[ChunkData], buf: &mut [Sample]) -> u64 {
    let mut acc = 0u64;
    for c in chunks {
        let mut it = c.iter();
        loop {
            let n = it.next_batch(buf);
            if n == 0 {
                break;
            }
            for s in buf.iter().take(n) {
                acc = acc.wrapping_add(s.t as u64) ^ s.v.to_bits();
            }
        }
    }
    acc
}
