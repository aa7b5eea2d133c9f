//! Appends and commits the head benchmark's scrape-like batches (1000 samples with cached
//! references, `interval` fsync) to a head of many series, for instruction-count
//! profiling of the append path (`append_batches` is the function to single out; the
//! set-up before it creates the series). Usage:
//! `head_append_profile [SERIES] [BATCHES]` (defaults 100000 and 1000).

use std::time::{Duration, Instant};

use aion::db::FsyncPolicy;

#[path = "../benches/common/head_data.rs"]
mod head_data;

use head_data::{append_batches, setup, Cursor, BATCH};

fn main() {
    let mut args = std::env::args().skip(1);
    let series: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let batches: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(1000);
    let (_dir, db, refs) = setup(FsyncPolicy::Interval(Duration::from_secs(1)), series);
    let mut cur = Cursor::default();
    let start = Instant::now();
    append_batches(&db, &refs, &mut cur, batches);
    let ns = start.elapsed().as_nanos() as f64 / (batches as f64 * BATCH as f64);
    println!("{ns:.1} ns/sample");
}
