//! Progress display on a terminal, updated in place on stderr.

use std::io::Write;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::Progress;

/// Formats a byte count with binary units.
pub(crate) fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    let unit = UNITS.get(u).copied().unwrap_or("B");
    if u == 0 {
        format!("{n} {unit}")
    } else {
        format!("{v:.1} {unit}")
    }
}

/// Formats a count with an SI suffix (`14.5M`).
pub(crate) fn human_count(n: f64) -> String {
    if n >= 1e9 {
        format!("{:.2}G", n / 1e9)
    } else if n >= 1e6 {
        format!("{:.2}M", n / 1e6)
    } else if n >= 1e3 {
        format!("{:.1}k", n / 1e3)
    } else {
        format!("{n:.0}")
    }
}

/// Redraws the progress line every 200 ms until `p.done`.
pub(crate) fn show(p: &Progress, total: u64, started: Instant) {
    let mut err = std::io::stderr();
    // The first pass reads the file once and the import reads it once more.
    let work = total.saturating_mul(2).max(1);
    while !p.done.load(Ordering::Acquire) {
        std::thread::sleep(Duration::from_millis(200));
        let bytes = p.bytes.load(Ordering::Relaxed).min(work);
        let secs = started.elapsed().as_secs_f64().max(1e-3);
        let samples = p.samples.load(Ordering::Relaxed);
        let phase = match p.phase.load(Ordering::Relaxed) {
            0 => "scanning",
            1 => "importing",
            _ => "writing blocks",
        };
        let rate_b = bytes as f64 / secs;
        let left = if rate_b > 0.0 {
            format!("{:.0}s", (work - bytes) as f64 / rate_b)
        } else {
            "?".into()
        };
        let expected = p.scanned_samples.load(Ordering::Relaxed);
        let line = format!(
            "{phase}: {} of {} read, {} of {} samples, {} samples/s, {} left",
            human_bytes(bytes),
            human_bytes(work),
            human_count(samples as f64),
            human_count(expected as f64),
            human_count(samples as f64 / secs),
            left,
        );
        let _ = write!(err, "\r\x1b[K{line}");
        let _ = err.flush();
    }
    let _ = write!(err, "\r\x1b[K");
    let _ = err.flush();
}
