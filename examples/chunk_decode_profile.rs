//! Decodes the chunk benchmark's data sets in a loop, for instruction-count profiling of
//! the decoder (`decode` is the function to single out; `BATCH` in the environment selects
//! the batched decoder, `decode_batch`). Usage:
//! `chunk_decode_profile [counter|gauge_few_digits|gauge_full|constant] [ROUNDS]`.

use std::hint::black_box;

use aion::chunk::MAX_SAMPLES_PER_CHUNK;
use aion::model::Sample;

#[path = "../benches/common/chunk_data.rs"]
mod chunk_data;

use chunk_data::{dataset, decode, decode_batch, encode};

fn main() {
    let mut args = std::env::args().skip(1);
    let kind = args.next().unwrap_or_else(|| "counter".to_string());
    let rounds: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(10);
    let batch = std::env::var_os("BATCH").is_some();
    let chunks = encode(&dataset(&kind));
    let mut buf = vec![Sample::new(0, 0.0); MAX_SAMPLES_PER_CHUNK];
    let mut acc = 0u64;
    for _ in 0..rounds {
        acc ^= if batch {
            decode_batch(black_box(&chunks), &mut buf)
        } else {
            decode(black_box(&chunks))
        };
    }
    println!("{acc:x}");
}
