//! Backfill end to end: generated OpenMetrics files become blocks holding every sample
//! bit-exactly, aligned to block windows; bad input leaves nothing behind.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use aion::backfill::{create_blocks_from_openmetrics, BackfillOptions, DEFAULT_BLOCK_DURATION_MS};
use aion::block::Block;
use aion::model::{Labels, MatchOp, Matcher, Sample};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

type Expected = BTreeMap<Labels, Vec<Sample>>;

/// A series-major OpenMetrics file: counters, a histogram, gauges with full-precision
/// floats and special values, scraped every 15 s (some scrapes late) from `start_ms`
/// for `steps` steps. Returns the text and every sample by series.
fn generate(seed: u64, start_ms: i64, steps: i64) -> (String, Expected) {
    let mut rng = Rng(seed | 1);
    let mut out = String::new();
    let mut want = Expected::new();
    let ts: Vec<i64> = (0..steps)
        .map(|k| {
            let late = if rng.unit() < 0.05 {
                1 + (rng.next() % 25) as i64
            } else {
                0
            };
            start_ms + k * 15_000 + late
        })
        .collect();
    out.push_str("# HELP reqs Requests.\n# TYPE reqs counter\n");
    for inst in 0..6 {
        for code in ["200", "500"] {
            let labels = Labels::from_pairs(&[
                ("__name__", "reqs_total"),
                ("code", code),
                ("instance", &format!("app-{inst}:8080")),
                ("path", "/a \"quoted\" \\ path\nx"),
            ]);
            let mut v = (rng.next() % 1000) as f64;
            let s = want.entry(labels).or_default();
            for &t in &ts {
                v += (rng.next() % 50) as f64;
                writeln!(
                    out,
                    "reqs_total{{code=\"{code}\",instance=\"app-{inst}:8080\",path=\"/a \\\"quoted\\\" \\\\ path\\nx\"}} {v} {}.{:03}",
                    t / 1000,
                    t % 1000
                )
                .unwrap();
                s.push(Sample::new(t, v));
            }
        }
    }
    out.push_str("# TYPE lat histogram\n");
    for inst in 0..3 {
        for (le_in, le_out) in [("0.1", "0.1"), ("1", "1.0"), ("+Inf", "+Inf")] {
            let labels = Labels::from_pairs(&[
                ("__name__", "lat_bucket"),
                ("instance", &format!("app-{inst}:8080")),
                ("le", le_out),
            ]);
            let s = want.entry(labels).or_default();
            let mut v = 0.0;
            for &t in &ts {
                v += (rng.next() % 7) as f64;
                writeln!(
                    out,
                    "lat_bucket{{instance=\"app-{inst}:8080\",le=\"{le_in}\"}} {v} {}.{:03}",
                    t / 1000,
                    t % 1000
                )
                .unwrap();
                s.push(Sample::new(t, v));
            }
        }
    }
    out.push_str("# TYPE temp gauge\n");
    for inst in 0..4 {
        let labels = Labels::from_pairs(&[("__name__", "temp"), ("instance", &format!("{inst}"))]);
        let s = want.entry(labels).or_default();
        for (k, &t) in ts.iter().enumerate() {
            let (text, v) = match k % 97 {
                13 => (
                    "NaN".to_string(),
                    f64::from_bits(aion::exposition::NORMAL_NAN_BITS),
                ),
                29 => ("+Inf".to_string(), f64::INFINITY),
                31 => ("-Inf".to_string(), f64::NEG_INFINITY),
                _ => {
                    let v = 20.0 + 10.0 * rng.unit() - 1e-9 * rng.unit();
                    (format!("{v:?}"), v)
                }
            };
            writeln!(
                out,
                "temp{{instance=\"{inst}\"}} {text} {}.{:03}",
                t / 1000,
                t % 1000
            )
            .unwrap();
            s.push(Sample::new(t, v));
        }
    }
    out.push_str("# EOF\n");
    (out, want)
}

fn read_blocks(dir: &Path) -> (Vec<Block>, Expected) {
    let mut blocks = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        blocks.push(Block::open(&e.path()).unwrap());
    }
    blocks.sort_by_key(|b| b.meta().min_time);
    let mut got = Expected::new();
    let all = Matcher::new(MatchOp::RegexMatch, "__name__", ".+").unwrap();
    for b in &blocks {
        for s in b
            .select(std::slice::from_ref(&all), i64::MIN, i64::MAX)
            .unwrap()
        {
            got.entry(s.labels.clone()).or_default().extend(s.samples());
        }
    }
    (blocks, got)
}

fn assert_same(got: &Expected, want: &Expected) {
    assert_eq!(got.len(), want.len());
    for ((gl, gs), (wl, ws)) in got.iter().zip(want) {
        assert_eq!(gl, wl);
        assert_eq!(gs.len(), ws.len(), "{gl}");
        for (g, w) in gs.iter().zip(ws) {
            assert!(g.bit_eq(w), "{gl}: got {g:?}, want {w:?}");
        }
    }
}

#[test]
fn every_sample_lands_in_aligned_blocks() {
    let tmp = tempfile::tempdir().unwrap();
    // Starts 30 minutes into a window and spans 7 hours: 4 windows of 2h.
    let start = 1_699_920_000_000 + 30 * 60_000;
    let (text, want) = generate(7, start, 7 * 240);
    let input = tmp.path().join("in.om");
    std::fs::write(&input, &text).unwrap();
    let out = tmp.path().join("data");
    let summary =
        create_blocks_from_openmetrics(&input, &out, &BackfillOptions::default()).unwrap();
    let total: usize = want.values().map(Vec::len).sum();
    assert_eq!(summary.samples, total as u64);
    assert_eq!(summary.series, want.len() as u64);
    assert_eq!(summary.blocks.len(), 4);

    let (blocks, got) = read_blocks(&out);
    assert_eq!(blocks.len(), 4);
    assert_same(&got, &want);
    let d = DEFAULT_BLOCK_DURATION_MS;
    for b in &blocks {
        let m = b.meta();
        // Each block lies within one aligned window and spans exactly its samples.
        assert_eq!(
            m.min_time.div_euclid(d),
            (m.max_time - 1).div_euclid(d),
            "{m:?}"
        );
        assert_eq!(m.compaction.level, 1);
        let samples: Vec<i64> = want.values().flatten().map(|s| s.t).collect();
        let in_win: Vec<i64> = samples
            .iter()
            .copied()
            .filter(|t| t.div_euclid(d) == m.min_time.div_euclid(d))
            .collect();
        assert_eq!(m.min_time, *in_win.iter().min().unwrap());
        assert_eq!(m.max_time, in_win.iter().max().unwrap() + 1);
        assert_eq!(m.stats.num_samples, in_win.len() as u64);
    }
    // Nothing but the blocks in the output directory.
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 4);
}

#[test]
fn larger_block_duration_is_aligned_like_prometheus() {
    let tmp = tempfile::tempdir().unwrap();
    let start = 1_699_920_000_000 + 4 * 3_600_000; // 04:00, inside the 00:00-06:00 window
    let (text, want) = generate(11, start, 4 * 240); // until 08:00
    let input = tmp.path().join("in.om");
    std::fs::write(&input, &text).unwrap();
    let out = tmp.path().join("data");
    let opts = BackfillOptions {
        max_block_duration_ms: 24 * 3_600_000, // -> 18h blocks
        ..Default::default()
    };
    let s = create_blocks_from_openmetrics(&input, &out, &opts).unwrap();
    assert_eq!(s.block_duration_ms, 18 * 3_600_000);
    let (blocks, got) = read_blocks(&out);
    assert_same(&got, &want);
    let d = 18 * 3_600_000;
    let windows: Vec<i64> = blocks
        .iter()
        .map(|b| b.meta().min_time.div_euclid(d))
        .collect();
    for b in &blocks {
        let m = b.meta();
        assert_eq!(m.min_time.div_euclid(d), (m.max_time - 1).div_euclid(d));
    }
    let mut expect: Vec<i64> = want.values().flatten().map(|s| s.t.div_euclid(d)).collect();
    expect.sort();
    expect.dedup();
    assert_eq!(windows, expect);
}

#[test]
fn small_memory_budget_takes_several_passes_with_the_same_result() {
    let tmp = tempfile::tempdir().unwrap();
    let (text, want) = generate(3, 1_699_920_000_000, 3 * 240);
    let input = tmp.path().join("in.om");
    std::fs::write(&input, &text).unwrap();
    let out = tmp.path().join("data");
    let opts = BackfillOptions {
        memory_budget: 1,
        ..Default::default()
    };
    let s = create_blocks_from_openmetrics(&input, &out, &opts).unwrap();
    assert_eq!(s.blocks.len(), 2);
    let (_, got) = read_blocks(&out);
    assert_same(&got, &want);
}

/// Runs a backfill that must fail at `line`, and checks the output directory is as
/// before (one unrelated file).
fn assert_fails_at(text: &str, line: u64) {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in.om");
    std::fs::write(&input, text).unwrap();
    let out = tmp.path().join("data");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("keep.txt"), "x").unwrap();
    let opts = BackfillOptions {
        memory_budget: 1, // several groups: blocks of early groups exist when it fails
        ..Default::default()
    };
    let err = create_blocks_from_openmetrics(&input, &out, &opts).unwrap_err();
    assert_eq!(err.line(), Some(line), "{err}");
    assert!(err.to_string().contains(&format!("line {line}")), "{err}");
    let left: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(left, vec!["keep.txt".to_string()]);
}

#[test]
fn malformed_line_fails_with_its_number_and_leaves_no_block() {
    let (text, _) = generate(5, 1_699_920_000_000, 3 * 240);
    let mut lines: Vec<&str> = text.lines().collect();
    let k = lines.len() - 10;
    lines[k] = "temp{instance=\"0\" 1 1699920000.000";
    let bad = lines.join("\n") + "\n";
    assert_fails_at(&bad, k as u64 + 1);
    // A bad value.
    lines[k] = "temp{instance=\"0\"} 1.2.3 1699920000.000";
    assert_fails_at(&(lines.join("\n") + "\n"), k as u64 + 1);
    // No timestamp.
    lines[k] = "temp{instance=\"0\"} 1";
    assert_fails_at(&(lines.join("\n") + "\n"), k as u64 + 1);
    // Out of order within a window.
    let (text, _) = generate(5, 1_699_920_000_000, 3 * 240);
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let k = lines.iter().rposition(|l| l.starts_with("temp{")).unwrap() - 3;
    let prev_ts = lines[k - 1].rsplit(' ').next().unwrap().to_string();
    let mut parts: Vec<&str> = lines[k].split(' ').collect();
    let old = prev_ts.parse::<f64>().unwrap() - 1.0;
    let new_ts = format!("{old:.3}");
    *parts.last_mut().unwrap() = &new_ts;
    lines[k] = parts.join(" ");
    assert_fails_at(&(lines.join("\n") + "\n"), k as u64 + 1);
}

#[test]
fn missing_eof_and_data_after_eof_fail() {
    let (text, _) = generate(9, 1_699_920_000_000, 100);
    let n = text.lines().count() as u64;
    assert_fails_at(text.trim_end_matches("# EOF\n"), n);
    assert_fails_at(&(text.clone() + "temp 1 1\n"), n + 1);
}

#[test]
fn empty_input_creates_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in.om");
    std::fs::write(&input, "# EOF\n").unwrap();
    let out = tmp.path().join("data");
    let s = create_blocks_from_openmetrics(&input, &out, &BackfillOptions::default()).unwrap();
    assert_eq!(s.samples, 0);
    assert!(s.blocks.is_empty());
}

#[test]
fn command_line_prints_blocks_and_a_summary() {
    let tmp = tempfile::tempdir().unwrap();
    let (text, want) = generate(21, 1_699_920_000_000, 600);
    let input = tmp.path().join("in.om");
    std::fs::write(&input, &text).unwrap();
    let out = tmp.path().join("out");
    let res = Command::new(env!("CARGO_BIN_EXE_aion"))
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&input)
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let stdout = String::from_utf8_lossy(&res.stdout);
    assert!(stdout.starts_with("BLOCK ULID"), "{stdout}");
    assert_eq!(stdout.lines().count(), 3, "{stdout}");
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    let total: usize = want.values().map(Vec::len).sum();
    assert!(
        stderr.contains(&format!(
            "imported {total} samples of {} series into 2 blocks",
            want.len()
        )),
        "{stderr}"
    );
    let (_, got) = read_blocks(&out);
    assert_same(&got, &want);

    // A malformed file: exit status 1, the error names the line.
    std::fs::write(&input, "a 1 1\nb{ 1 1\n# EOF\n").unwrap();
    let out2 = tmp.path().join("out2");
    let res = Command::new(env!("CARGO_BIN_EXE_aion"))
        .args(["tsdb", "create-blocks-from", "openmetrics", "--quiet"])
        .arg(&input)
        .arg(&out2)
        .output()
        .unwrap();
    assert_eq!(res.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&res.stderr).contains("line 2"));
    assert!(!out2.exists() || std::fs::read_dir(&out2).unwrap().count() == 0);
}
