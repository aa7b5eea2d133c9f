//! Encodes an OpenMetrics file into 120-sample chunks and reports bytes per sample.
//!
//! The input is what `shared/bench/gen_openmetrics.py` produces (one sample per line,
//! `name{labels} value timestamp_seconds`). Samples are grouped by series, each series is
//! cut into chunks of [`MAX_SAMPLES_PER_CHUNK`] samples, and the chunk bytes (header
//! included) are summed. Each chunk uses integer or XOR values as `XorChunk` chooses.
//!
//! ```text
//! python3 ../shared/bench/gen_openmetrics.py --series 1000 --duration 6h --out small.om
//! cargo run --release --example chunk_bytes_per_sample -- small.om
//! ```

use std::collections::{BTreeMap, HashMap};
use std::error::Error;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::time::Instant;

use aion::chunk::{XorChunk, ENCODING_INT, MAX_SAMPLES_PER_CHUNK};

/// Per-chunk framing a chunk segment file adds around the chunk bytes: a length uvarint
/// (1–2 bytes for chunks this size) and a 4-byte checksum.
const FRAMING_BYTES: u64 = 2 + 4;

#[derive(Default, Clone, Copy)]
struct Totals {
    samples: u64,
    chunks: u64,
    int_chunks: u64,
    bytes: u64,
}

impl Totals {
    fn add(&mut self, c: &mut XorChunk) {
        if c.num_samples() > 0 {
            self.samples += c.num_samples() as u64;
            self.chunks += 1;
            if c.bytes().first() == Some(&ENCODING_INT) {
                self.int_chunks += 1;
            }
            self.bytes += c.bytes().len() as u64;
        }
    }

    fn per_sample(&self) -> f64 {
        self.bytes as f64 / self.samples.max(1) as f64
    }

    fn framed_per_sample(&self) -> f64 {
        (self.bytes + self.chunks * FRAMING_BYTES) as f64 / self.samples.max(1) as f64
    }
}

struct SeriesState {
    family: String,
    chunk: XorChunk,
    last_t: Option<i64>,
}

/// `1699920003.173` → 1699920003173 without going through a float.
fn parse_ts_ms(s: &str) -> Option<i64> {
    let (secs, frac) = match s.split_once('.') {
        Some((a, b)) => (a, b),
        None => (s, ""),
    };
    let secs: i64 = secs.parse().ok()?;
    let mut ms: i64 = 0;
    let mut digits = 0;
    for c in frac.chars().take(3) {
        ms = ms * 10 + i64::from(c.to_digit(10)?);
        digits += 1;
    }
    while digits < 3 {
        ms *= 10;
        digits += 1;
    }
    let ms = if secs < 0 { -ms } else { ms };
    secs.checked_mul(1000)?.checked_add(ms)
}

fn parse_value(s: &str) -> Option<f64> {
    match s {
        "+Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => s.parse().ok(),
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: chunk_bytes_per_sample FILE.om")?;
    let start = Instant::now();
    let mut reader = BufReader::with_capacity(1 << 20, File::open(&path)?);
    let mut series: HashMap<String, SeriesState> = HashMap::new();
    let mut families: BTreeMap<String, Totals> = BTreeMap::new();
    let mut total = Totals::default();
    let mut skipped = 0u64;
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            break;
        }
        let l = line.trim_end();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let parsed = l.rsplit_once(' ').and_then(|(rest, ts)| {
            let (key, v) = rest.rsplit_once(' ')?;
            Some((key, parse_value(v)?, parse_ts_ms(ts)?))
        });
        let Some((key, v, t)) = parsed else {
            skipped += 1;
            continue;
        };
        let st = match series.get_mut(key) {
            Some(st) => st,
            None => {
                let family = key.split('{').next().unwrap_or(key).to_string();
                series.entry(key.to_string()).or_insert(SeriesState {
                    family,
                    chunk: XorChunk::new(),
                    last_t: None,
                })
            }
        };
        if st.last_t.is_some_and(|last| t <= last) {
            skipped += 1;
            continue;
        }
        st.last_t = Some(t);
        st.chunk.append(t, v);
        if st.chunk.num_samples() >= MAX_SAMPLES_PER_CHUNK {
            total.add(&mut st.chunk);
            families
                .entry(st.family.clone())
                .or_default()
                .add(&mut st.chunk);
            st.chunk = XorChunk::new();
        }
    }
    for st in series.values_mut() {
        total.add(&mut st.chunk);
        families
            .entry(st.family.clone())
            .or_default()
            .add(&mut st.chunk);
    }
    println!("file: {path}");
    println!(
        "series: {}  samples: {}  chunks: {} ({} with integer values)  skipped lines: {}  ({:.1}s)",
        series.len(),
        total.samples,
        total.chunks,
        total.int_chunks,
        skipped,
        start.elapsed().as_secs_f64()
    );
    println!(
        "{:<40} {:>12} {:>10} {:>10}",
        "family", "samples", "B/sample", "framed"
    );
    for (name, t) in &families {
        println!(
            "{:<40} {:>12} {:>10.3} {:>10.3}",
            name,
            t.samples,
            t.per_sample(),
            t.framed_per_sample()
        );
    }
    println!(
        "{:<40} {:>12} {:>10.3} {:>10.3}",
        "TOTAL",
        total.samples,
        total.per_sample(),
        total.framed_per_sample()
    );
    println!(
        "bytes/sample: {:.3} (chunk bytes incl. 3-byte header); {:.3} with {} bytes of \
         per-chunk framing (length + checksum)",
        total.per_sample(),
        total.framed_per_sample(),
        FRAMING_BYTES
    );
    Ok(())
}
