//! `tsdb create-blocks-from openmetrics <input> [<output>]` on the command line.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::progress::{human_bytes, human_count};
use super::{create_blocks_from_openmetrics, BackfillOptions, BackfillSummary};
use crate::block::BlockMeta;
use crate::model::{is_valid_label_name, Label};

const USAGE: &str =
    "usage: tsdb create-blocks-from openmetrics [flags] <input file> [<output directory>]

Import samples from an OpenMetrics file and produce blocks (output directory default: data/).

flags:
  -r, --human-readable          print human readable values
  -q, --quiet                   do not print created blocks or the summary
      --max-block-duration=D    maximum duration created blocks may span (default 2h;
                                anything less than 2h is ignored)
      --label=NAME=VALUE        label to attach to every series (repeatable)
      --memory-budget=BYTES     memory for blocks being built at once (default 1GiB)
  -h, --help                    show this help";

/// Parses a Prometheus duration such as `2h`, `90m`, `1d12h` or `500ms` into
/// milliseconds.
pub fn parse_duration_ms(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut total: i64 = 0;
    if b.is_empty() {
        return None;
    }
    while i < b.len() {
        let start = i;
        while b.get(i).is_some_and(|c| c.is_ascii_digit()) {
            i += 1;
        }
        let n: i64 = s.get(start..i)?.parse().ok()?;
        let ustart = i;
        while b.get(i).is_some_and(|c| c.is_ascii_alphabetic()) {
            i += 1;
        }
        let unit: i64 = match s.get(ustart..i)? {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 7 * 86_400_000,
            "y" => 365 * 86_400_000,
            _ => return None,
        };
        total = total.checked_add(n.checked_mul(unit)?)?;
    }
    Some(total)
}

fn parse_size(s: &str) -> Option<u64> {
    let (num, mult) = [
        ("KiB", 1u64 << 10),
        ("MiB", 1 << 20),
        ("GiB", 1 << 30),
        ("B", 1),
    ]
    .iter()
    .find_map(|(suf, m)| s.strip_suffix(suf).map(|n| (n, *m)))
    .unwrap_or((s, 1));
    num.trim().parse::<u64>().ok()?.checked_mul(mult)
}

struct Args {
    input: PathBuf,
    output: PathBuf,
    human: bool,
    quiet: bool,
    opts: BackfillOptions,
}

fn parse_args(args: &[String]) -> Result<Option<Args>, String> {
    let mut positional = Vec::new();
    let mut human = false;
    let mut quiet = false;
    let mut opts = BackfillOptions::default();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if a.starts_with("--") => (f, Some(v.to_string())),
            _ => (a.as_str(), None),
        };
        let mut value = |name: &str| -> Result<String, String> {
            match &inline {
                Some(v) => Ok(v.clone()),
                None => it
                    .next()
                    .cloned()
                    .ok_or(format!("flag {name} needs a value")),
            }
        };
        match flag {
            "-h" | "--help" => return Ok(None),
            "-r" | "--human-readable" => human = true,
            "-q" | "--quiet" => quiet = true,
            "--max-block-duration" => {
                let v = value(flag)?;
                opts.max_block_duration_ms =
                    parse_duration_ms(&v).ok_or(format!("invalid duration {v:?}"))?;
            }
            "--label" => {
                let v = value(flag)?;
                let (n, val) = v
                    .split_once('=')
                    .ok_or(format!("invalid label {v:?}, expected NAME=VALUE"))?;
                if !is_valid_label_name(n) {
                    return Err(format!("invalid label name {n:?}"));
                }
                opts.extra_labels.push(Label::new(n, val.trim_matches('"')));
            }
            "--memory-budget" => {
                let v = value(flag)?;
                opts.memory_budget = parse_size(&v).ok_or(format!("invalid size {v:?}"))?;
            }
            f if f.starts_with('-') && f.len() > 1 => return Err(format!("unknown flag {f}")),
            _ => positional.push(a.clone()),
        }
    }
    let mut pos = positional.into_iter();
    match (pos.next().as_deref(), pos.next().as_deref()) {
        (Some("create-blocks-from"), Some("openmetrics")) => {}
        (Some("create-blocks-from"), Some(other)) => {
            return Err(format!(
                "unsupported input format {other:?} (only openmetrics)"
            ))
        }
        _ => return Err("expected: create-blocks-from openmetrics <input> [<output>]".into()),
    }
    let input = pos.next().ok_or("missing input file")?;
    let output = pos.next().unwrap_or_else(|| "data/".to_string());
    if let Some(extra) = pos.next() {
        return Err(format!("unexpected argument {extra:?}"));
    }
    Ok(Some(Args {
        input: input.into(),
        output: output.into(),
        human,
        quiet,
        opts,
    }))
}

/// Whether stderr is a terminal (`isatty(2)`, through the standard library's safe
/// wrapper).
fn stderr_is_terminal() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal()
}

/// Formats milliseconds as Go's `time.Duration` does (`2h0m0s`, `1h59m59.999s`).
fn go_duration(ms: i64) -> String {
    let neg = ms < 0;
    let ms = ms.unsigned_abs();
    let (h, rest) = (ms / 3_600_000, ms % 3_600_000);
    let (m, rest) = (rest / 60_000, rest % 60_000);
    let (s, milli) = (rest / 1000, rest % 1000);
    let secs = if milli == 0 {
        format!("{s}s")
    } else {
        format!("{s}.{}s", format!("{milli:03}").trim_end_matches('0'))
    };
    let body = if h > 0 {
        format!("{h}h{m}m{secs}")
    } else if m > 0 {
        format!("{m}m{secs}")
    } else {
        secs
    };
    if neg {
        format!("-{body}")
    } else {
        body
    }
}

fn format_time(ms: i64, human: bool) -> String {
    if !human {
        return ms.to_string();
    }
    // Civil date from days since the epoch (proleptic Gregorian, UTC).
    let days = ms.div_euclid(86_400_000);
    let in_day = ms.rem_euclid(86_400_000);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} +0000 UTC",
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1000 % 60
    )
}

fn dir_size(p: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(p) else {
        return 0;
    };
    rd.flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_size(&e.path()),
            Ok(_) => e.metadata().map(|m| m.len()).unwrap_or(0),
            Err(_) => 0,
        })
        .sum()
}

fn print_blocks(blocks: &[BlockMeta], output: &Path, human: bool) {
    println!(
        "{:<26}  {:<29}  {:<29}  {:<13}  {:>11}  {:>10}  {:>10}  {:>10}",
        "BLOCK ULID",
        "MIN TIME",
        "MAX TIME",
        "DURATION",
        "NUM SAMPLES",
        "NUM CHUNKS",
        "NUM SERIES",
        "SIZE"
    );
    for b in blocks {
        let size = dir_size(&output.join(&b.ulid));
        let size = if human {
            human_bytes(size)
        } else {
            size.to_string()
        };
        println!(
            "{:<26}  {:<29}  {:<29}  {:<13}  {:>11}  {:>10}  {:>10}  {:>10}",
            b.ulid,
            format_time(b.min_time, human),
            format_time(b.max_time, human),
            go_duration(b.max_time - b.min_time),
            b.stats.num_samples,
            b.stats.num_chunks,
            b.stats.num_series,
            size
        );
    }
}

/// The one-line summary: samples, series, blocks, seconds and samples per second.
pub fn summary_line(s: &BackfillSummary) -> String {
    let rate = s.samples as f64 / s.seconds.max(1e-9);
    format!(
        "imported {} samples of {} series into {} blocks in {:.2}s ({} samples/s)",
        s.samples,
        s.series,
        s.blocks.len(),
        s.seconds,
        human_count(rate)
    )
}

/// Runs `create-blocks-from openmetrics <input> [<output>] [flags]` (the arguments
/// after `tsdb`) and returns the process exit code.
pub fn run_cli(args: &[String]) -> ExitCode {
    let mut a = match parse_args(args) {
        Ok(Some(a)) => a,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("error: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    a.opts.progress = !a.quiet && stderr_is_terminal();
    match create_blocks_from_openmetrics(&a.input, &a.output, &a.opts) {
        Ok(s) => {
            if !a.quiet {
                if !s.blocks.is_empty() {
                    print_blocks(&s.blocks, &a.output, a.human);
                }
                eprintln!("{}", summary_line(&s));
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("2h"), Some(7_200_000));
        assert_eq!(parse_duration_ms("1h30m"), Some(5_400_000));
        assert_eq!(parse_duration_ms("500ms"), Some(500));
        assert_eq!(parse_duration_ms("1d"), Some(86_400_000));
        assert_eq!(parse_duration_ms("2x"), None);
        assert_eq!(parse_duration_ms(""), None);
        assert_eq!(parse_duration_ms("h"), None);
        assert_eq!(go_duration(7_200_000), "2h0m0s");
        assert_eq!(go_duration(7_199_999), "1h59m59.999s");
        assert_eq!(go_duration(1500), "1.5s");
        assert_eq!(
            format_time(1_699_920_000_000, true),
            "2023-11-14 00:00:00 +0000 UTC"
        );
    }

    #[test]
    fn command_line() {
        let a = parse_args(&args("create-blocks-from openmetrics in.om"))
            .unwrap()
            .unwrap();
        assert_eq!(a.input, PathBuf::from("in.om"));
        assert_eq!(a.output, PathBuf::from("data/"));
        let a = parse_args(&args(
            "create-blocks-from -r --max-block-duration=6h openmetrics in.om out -q --label a=b",
        ))
        .unwrap()
        .unwrap();
        assert!(a.human && a.quiet);
        assert_eq!(a.output, PathBuf::from("out"));
        assert_eq!(a.opts.max_block_duration_ms, 6 * 3_600_000);
        assert_eq!(a.opts.extra_labels, vec![Label::new("a", "b")]);
        assert!(parse_args(&args("create-blocks-from json in.om")).is_err());
        assert!(parse_args(&args("create-blocks-from openmetrics")).is_err());
        assert!(parse_args(&args("create-blocks-from openmetrics a b c")).is_err());
        assert!(parse_args(&args("create-blocks-from openmetrics a --bogus")).is_err());
        assert!(parse_args(&args("--help")).unwrap().is_none());
    }
}
