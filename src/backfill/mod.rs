//! Backfill: turn an OpenMetrics file into persistent blocks, as
//! `promtool tsdb create-blocks-from openmetrics` does.
//!
//! Samples are grouped into block windows aligned to multiples of the block duration
//! (two hours by default; with a larger `max_block_duration`, the largest of 2h, 6h,
//! 18h, 54h, ... — Prometheus's exponential block ranges — that does not exceed it).
//! Each window with samples becomes one level-1 block whose time range is that of its
//! samples (`[first, last + 1)`), like promtool's. Every sample needs a timestamp;
//! within a window, a series' samples must come in time order (an identical duplicate
//! is dropped, a different value at the same timestamp is an error), as in promtool.
//!
//! The input is streamed, never held in memory whole:
//!
//! 1. A first pass reads the file once to find the time range and the number of
//!    samples per window (reading just each line's timestamp where that is
//!    unambiguous).
//! 2. Windows are grouped so that each group's compressed data stays within
//!    [`BackfillOptions::memory_budget`] (a window is never split). For each group,
//!    one thread parses the file while another encodes the group's samples into XOR
//!    chunks per series and window; then the group's blocks are written, two at a
//!    time.
//!
//! Blocks are written under a temporary directory inside the output directory and
//! renamed into place only when every block is complete: when anything fails
//! (malformed line, I/O error), the output directory gets no new block.

mod cli;
mod ingest;
mod progress;
mod reader;
mod scan;

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::time::Instant;

pub use cli::run_cli;

use crate::block::{new_ulid, BlockError, BlockMeta};
use crate::exposition::ParseError;
use crate::fsutil::{fsync_dir, TMP_FOR_CREATION};
use crate::model::Label;

/// The default (and smallest) block duration: two hours in milliseconds.
pub const DEFAULT_BLOCK_DURATION_MS: i64 = 2 * 60 * 60 * 1000;

/// Rough upper bound of in-memory bytes per sample while a window is being built
/// (compressed chunk bytes plus per-chunk and per-series bookkeeping).
const EST_BYTES_PER_SAMPLE: u64 = 4;

/// How a backfill runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackfillOptions {
    /// Longest block to create, in milliseconds. Values below two hours mean two
    /// hours ("anything less than 2h is ignored", as in promtool).
    pub max_block_duration_ms: i64,
    /// Labels set on every imported series (replacing labels of the same name), like
    /// promtool's `--label`.
    pub extra_labels: Vec<Label>,
    /// Show progress on stderr, updated in place (for terminals).
    pub progress: bool,
    /// Compressed bytes the windows being built at once may take; more windows mean
    /// more passes over the input.
    pub memory_budget: u64,
    /// Threads that write blocks concurrently.
    pub write_threads: usize,
}

impl Default for BackfillOptions {
    fn default() -> Self {
        BackfillOptions {
            max_block_duration_ms: DEFAULT_BLOCK_DURATION_MS,
            extra_labels: Vec::new(),
            progress: false,
            memory_budget: 1 << 30,
            write_threads: 2,
        }
    }
}

/// What a backfill did.
#[derive(Debug, Clone, PartialEq)]
pub struct BackfillSummary {
    /// Samples written into blocks.
    pub samples: u64,
    /// Distinct series imported.
    pub series: u64,
    /// The blocks created, in time order.
    pub blocks: Vec<BlockMeta>,
    /// The block duration used (milliseconds).
    pub block_duration_ms: i64,
    /// Bytes of input read (all passes).
    pub bytes_read: u64,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// A backfill failed; the output directory got no new block.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackfillError {
    /// Reading the input or writing the output failed.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The input is not valid OpenMetrics.
    #[error("parse error: {0}")]
    Parse(#[from] ParseError),
    /// A sample line has no timestamp.
    #[error("line {line}: expected timestamp for series, got none")]
    NoTimestamp {
        /// 1-based line number.
        line: u64,
    },
    /// A sample cannot be stored (order, duplicates, invalid labels).
    #[error("line {line}: {reason}")]
    InvalidSample {
        /// 1-based line number.
        line: u64,
        /// What is wrong.
        reason: String,
    },
    /// Writing a block failed.
    #[error("writing block: {0}")]
    Block(#[from] BlockError),
    /// Invalid options.
    #[error("{0}")]
    Options(String),
    /// A worker thread panicked.
    #[error("a backfill worker thread failed")]
    Worker,
    /// The encoder stopped early (it reports its own error).
    #[error("the sample encoder stopped")]
    EncoderStopped,
}

impl BackfillError {
    /// The input line the error is about, if any.
    pub fn line(&self) -> Option<u64> {
        match self {
            BackfillError::Parse(e) => Some(e.line()),
            BackfillError::NoTimestamp { line } => Some(*line),
            BackfillError::InvalidSample { line, .. } if *line > 0 => Some(*line),
            _ => None,
        }
    }
}

/// Counters shared with the progress display.
#[derive(Debug, Default)]
pub(crate) struct Progress {
    /// Input bytes processed, over all passes.
    pub(crate) bytes: AtomicU64,
    /// Lines seen by the first pass.
    pub(crate) lines: AtomicU64,
    /// Samples counted by the first pass.
    pub(crate) scanned_samples: AtomicU64,
    /// Samples handed to the encoder.
    pub(crate) samples: AtomicU64,
    /// Blocks written.
    pub(crate) blocks: AtomicU64,
    /// 0 = scanning, 1 = importing, 2 = writing blocks.
    pub(crate) phase: AtomicU8,
    pub(crate) done: AtomicBool,
}

/// The block duration promtool would use for `max_ms`: two hours, or the largest of
/// Prometheus's exponential block ranges (2h × 3^k, k < 10) not above `max_ms`.
pub fn compatible_block_duration(max_ms: i64) -> i64 {
    let mut d = DEFAULT_BLOCK_DURATION_MS;
    for _ in 1..10 {
        match d.checked_mul(3) {
            Some(next) if next <= max_ms => d = next,
            _ => break,
        }
    }
    d
}

/// Splits the windows `[first, last]` into consecutive groups whose estimated memory
/// stays within `budget` (each group has at least one window).
fn group_windows(
    per_window: &std::collections::HashMap<i64, u64>,
    first: i64,
    last: i64,
    budget: u64,
) -> Vec<(i64, i64)> {
    let mut wins: Vec<(i64, u64)> = per_window.iter().map(|(w, n)| (*w, *n)).collect();
    wins.sort_unstable();
    let mut groups = Vec::new();
    let mut start: Option<i64> = None;
    let mut acc = 0u64;
    let mut prev = first;
    for (w, n) in wins {
        let cost = n.saturating_mul(EST_BYTES_PER_SAMPLE);
        match start {
            None => {
                start = Some(w);
                acc = cost;
            }
            Some(s) if acc.saturating_add(cost) > budget => {
                groups.push((s, prev + 1));
                start = Some(w);
                acc = cost;
            }
            Some(_) => acc = acc.saturating_add(cost),
        }
        prev = w;
    }
    if let Some(s) = start {
        groups.push((s, last + 1));
    }
    groups
}

/// Removes the temporary directory (and any block already moved out of it) unless
/// disarmed.
struct Cleanup {
    tmp: PathBuf,
    moved: Vec<PathBuf>,
    armed: bool,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if self.armed {
            for m in &self.moved {
                let _ = fs::remove_dir_all(m);
            }
            let _ = fs::remove_dir_all(&self.tmp);
        }
    }
}

/// Imports the OpenMetrics file `input` into blocks under `output` (created if
/// missing). See the module documentation for the procedure and guarantees.
pub fn create_blocks_from_openmetrics(
    input: &Path,
    output: &Path,
    opts: &BackfillOptions,
) -> Result<BackfillSummary, BackfillError> {
    let started = Instant::now();
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| BackfillError::Io { path, source }
    };
    let block_ms = compatible_block_duration(opts.max_block_duration_ms);
    let total = fs::metadata(input).map_err(io(input))?.len();
    let progress = Progress::default();
    std::thread::scope(|sc| {
        let display = opts
            .progress
            .then(|| sc.spawn(|| progress::show(&progress, total, started)));
        let result = run(input, output, opts, block_ms, total, &progress, started);
        progress.done.store(true, Ordering::Release);
        if let Some(h) = display {
            let _ = h.join();
        }
        result
    })
}

fn run(
    input: &Path,
    output: &Path,
    opts: &BackfillOptions,
    block_ms: i64,
    total: u64,
    progress: &Progress,
    started: Instant,
) -> Result<BackfillSummary, BackfillError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| BackfillError::Io { path, source }
    };
    // Pass 1.
    let mut scanner = scan::Scanner::new(block_ms);
    {
        let file = File::open(input).map_err(io(input))?;
        let mut reader = reader::PieceReader::new(file);
        loop {
            let before = reader.consumed();
            let Some((piece, is_last)) = reader.next_piece().map_err(io(input))? else {
                scanner.piece(&[], true, progress)?;
                break;
            };
            scanner.piece(piece, is_last, progress)?;
            progress
                .bytes
                .fetch_add(reader.consumed() - before, Ordering::Relaxed);
            if is_last {
                break;
            }
        }
    }
    let scan = scanner.finish();
    let mut summary = BackfillSummary {
        samples: 0,
        series: 0,
        blocks: Vec::new(),
        block_duration_ms: block_ms,
        bytes_read: total,
        seconds: 0.0,
    };
    if scan.samples == 0 {
        summary.seconds = started.elapsed().as_secs_f64();
        return Ok(summary);
    }
    let first = scan.min_t.div_euclid(block_ms);
    let last = scan.max_t.div_euclid(block_ms);
    let groups = group_windows(&scan.per_window, first, last, opts.memory_budget);

    fs::create_dir_all(output).map_err(io(output))?;
    let tmp = output.join(format!("backfill-{}{TMP_FOR_CREATION}", new_ulid()));
    fs::create_dir(&tmp).map_err(io(&tmp))?;
    let mut cleanup = Cleanup {
        tmp: tmp.clone(),
        moved: Vec::new(),
        armed: true,
    };

    // Pass 2, per group.
    progress.phase.store(1, Ordering::Relaxed);
    let mut table = ingest::SeriesTable::default();
    for (lo, hi) in groups {
        let params = ingest::IngestParams {
            input,
            block_ms,
            lo,
            hi,
            extra: &opts.extra_labels,
            progress,
        };
        let out = ingest::ingest_group(&params, &mut table)?;
        summary.bytes_read += total;
        summary.samples += out.samples;
        progress.phase.store(2, Ordering::Relaxed);
        let metas = ingest::write_blocks(out.windows, &table.labels, &tmp, opts.write_threads)?;
        progress
            .blocks
            .fetch_add(metas.len() as u64, Ordering::Relaxed);
        summary.blocks.extend(metas);
        progress.phase.store(1, Ordering::Relaxed);
    }
    summary.series = table.len() as u64;

    // Publish: move every block out of the temporary directory.
    for m in &summary.blocks {
        let from = tmp.join(&m.ulid);
        let to = output.join(&m.ulid);
        fs::rename(&from, &to).map_err(io(&to))?;
        cleanup.moved.push(to);
    }
    fsync_dir(output).map_err(io(output))?;
    cleanup.armed = false;
    fs::remove_dir_all(&tmp).map_err(io(&tmp))?;
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_durations_follow_exponential_ranges() {
        let h = 3_600_000;
        assert_eq!(compatible_block_duration(0), 2 * h);
        assert_eq!(compatible_block_duration(h), 2 * h);
        assert_eq!(compatible_block_duration(2 * h), 2 * h);
        assert_eq!(compatible_block_duration(5 * h), 2 * h);
        assert_eq!(compatible_block_duration(6 * h), 6 * h);
        assert_eq!(compatible_block_duration(24 * h), 18 * h);
        assert_eq!(compatible_block_duration(i64::MAX), 2 * h * 3i64.pow(9));
    }

    #[test]
    fn windows_grouped_within_budget() {
        let per: std::collections::HashMap<i64, u64> = [(10, 100), (11, 100), (12, 100), (14, 100)]
            .into_iter()
            .collect();
        assert_eq!(group_windows(&per, 10, 14, 1 << 20), vec![(10, 15)]);
        assert_eq!(group_windows(&per, 10, 14, 800), vec![(10, 12), (12, 15)]);
        assert_eq!(
            group_windows(&per, 10, 14, 1),
            vec![(10, 11), (11, 12), (12, 13), (14, 15)]
        );
    }
}
