//! Writes an OpenMetrics file into 2-hour blocks and reports on-disk bytes per sample:
//! all block files, chunk segment files only, and index only.
//!
//! The input is what `shared/bench/gen_openmetrics.py` produces (one sample per line,
//! `name{labels} value timestamp_seconds`, `#` comment lines). Blocks are aligned to
//! multiples of two hours, as Prometheus does for backfilled data.
//!
//! ```text
//! python3 ../shared/bench/gen_openmetrics.py --series 1000 --duration 6h --out w.om
//! cargo run --release --example block_bytes_per_sample -- w.om [OUT_DIR]
//! ```

use std::collections::BTreeMap;
use std::error::Error;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::time::Instant;

use aion::block::{rechunk, Block, BlockWriter};
use aion::model::{Label, Labels, Sample};

const BLOCK_RANGE: i64 = 2 * 3600 * 1000;

/// `1699920003.173` → 1699920003173 without going through a float.
fn parse_ts_ms(s: &str) -> Option<i64> {
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let mut ms: i64 = secs.parse::<i64>().ok()?.checked_mul(1000)?;
    let mut scale = 100;
    for c in frac.chars().take(3) {
        ms += i64::from(c.to_digit(10)?) * scale;
        scale /= 10;
    }
    Some(ms)
}

/// Parses `name{a="1",b="2"} value ts` (label values may contain `\"`, `\\`, `\n`).
fn parse_line(line: &str) -> Option<(Labels, Sample)> {
    let (name, rest) = match line.find('{') {
        Some(i) => (&line[..i], &line[i + 1..]),
        None => {
            let i = line.find(' ')?;
            (&line[..i], &line[i..])
        }
    };
    let mut labels = vec![Label::new("__name__", name)];
    let mut rest = rest;
    if line.contains('{') {
        loop {
            rest = rest.trim_start_matches(',');
            if let Some(r) = rest.strip_prefix('}') {
                rest = r;
                break;
            }
            let eq = rest.find('=')?;
            let lname = &rest[..eq];
            let mut value = String::new();
            let mut chars = rest[eq + 1..].strip_prefix('"')?.char_indices();
            let end = loop {
                let (i, c) = chars.next()?;
                match c {
                    '"' => break i,
                    '\\' => match chars.next()?.1 {
                        'n' => value.push('\n'),
                        c => value.push(c),
                    },
                    c => value.push(c),
                }
            };
            labels.push(Label::new(lname, &value));
            rest = &rest[eq + 2 + end + 1..];
        }
    }
    let mut it = rest.split_whitespace();
    let v: f64 = it.next()?.parse().ok()?;
    let t = parse_ts_ms(it.next()?)?;
    Some((Labels::new(labels), Sample::new(t, v)))
}

fn main() -> Result<(), Box<dyn Error>> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: block_bytes_per_sample FILE.om")?;
    let start = Instant::now();
    let mut series: BTreeMap<Labels, Vec<Sample>> = BTreeMap::new();
    let mut n = 0u64;
    for line in BufReader::new(File::open(&path)?).lines() {
        let line = line?;
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let (l, s) = parse_line(&line).ok_or_else(|| format!("bad line: {line}"))?;
        series.entry(l).or_default().push(s);
        n += 1;
    }
    for s in series.values_mut() {
        s.sort_by_key(|x| x.t);
        s.dedup_by_key(|x| x.t);
    }
    let samples: u64 = series.values().map(|s| s.len() as u64).sum();
    println!(
        "parsed {n} lines, {} series, {samples} samples in {:.1?}",
        series.len(),
        start.elapsed()
    );

    let lo = series
        .values()
        .filter_map(|s| s.first())
        .map(|x| x.t)
        .min()
        .ok_or("no samples")?;
    let hi = series
        .values()
        .filter_map(|s| s.last())
        .map(|x| x.t)
        .max()
        .ok_or("no samples")?;
    // Blocks go to the directory given as second argument (kept), or a temporary one.
    let tmp = tempfile::tempdir()?;
    let out_dir = std::env::args()
        .nth(2)
        .map_or_else(|| tmp.path().to_path_buf(), std::path::PathBuf::from);
    std::fs::create_dir_all(&out_dir)?;
    let write_start = Instant::now();
    let mut blocks = Vec::new();
    let mut from = lo.div_euclid(BLOCK_RANGE) * BLOCK_RANGE;
    while from <= hi {
        let to = from + BLOCK_RANGE;
        let mut w = BlockWriter::new(out_dir.as_path(), from, to)?;
        for (l, s) in &series {
            let a = s.partition_point(|x| x.t < from);
            let b = s.partition_point(|x| x.t < to);
            if a < b {
                w.add_series(l, &rechunk(&s[a..b]))?;
            }
        }
        blocks.push(w.finish(1, vec![], vec![])?);
        from = to;
    }
    let secs = write_start.elapsed().as_secs_f64();

    let (mut total, mut chunks, mut index, mut got) = (0u64, 0u64, 0u64, 0u64);
    for m in &blocks {
        let dir = out_dir.as_path().join(&m.ulid);
        let b = Block::open(&dir)?;
        total += b.size_bytes();
        index += std::fs::metadata(dir.join("index"))?.len();
        for e in std::fs::read_dir(dir.join("chunks"))? {
            chunks += e?.metadata()?.len();
        }
        got += m.stats.num_samples;
    }
    assert_eq!(got, samples, "every sample lands in exactly one block");
    let per = |b: u64| b as f64 / samples as f64;
    println!(
        "{} blocks written in {secs:.2} s ({:.0} samples/s)",
        blocks.len(),
        samples as f64 / secs
    );
    println!(
        "bytes/sample: total {:.3}, chunks only {:.3}, index only {:.3}",
        per(total),
        per(chunks),
        per(index)
    );
    Ok(())
}
