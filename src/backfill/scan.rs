//! First pass: the time range and the number of samples per block window, reading only
//! each line's timestamp where that is unambiguous.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use crate::exposition::{parse_seconds_to_millis, Entry, Format, Parser, ParserState};

use super::{BackfillError, Progress};

/// What the first pass found.
#[derive(Debug, Default)]
pub(crate) struct ScanResult {
    pub(crate) min_t: i64,
    pub(crate) max_t: i64,
    pub(crate) samples: u64,
    /// Samples per window index (`t.div_euclid(block_ms)`).
    pub(crate) per_window: HashMap<i64, u64>,
}

/// The timestamp of an OpenMetrics sample line without exemplar (no `#` in the line),
/// read from the end: `Some(Some(t))`, `Some(None)` when the line has no timestamp, and
/// `None` when the line must be parsed in full (including when it is malformed).
#[inline]
fn tail_timestamp(line: &[u8]) -> Option<Option<i64>> {
    let last = memchr::memrchr(b' ', line)?;
    let tail = line.get(last + 1..)?;
    let head = line.get(..last)?;
    // The token before the last one is the value when it does not end the series
    // text (which ends with `}` or is a bare metric name without spaces).
    match memchr::memrchr(b' ', head) {
        Some(prev) => {
            let tok = head.get(prev + 1..)?;
            if tok.is_empty() || tok.last() == Some(&b'}') || tok.contains(&b'"') {
                // `series value`: the last token is the value.
                return Some(None);
            }
            parse_seconds_to_millis(tail).map(Some)
        }
        None => Some(None),
    }
}

pub(crate) struct Scanner {
    pub(crate) result: ScanResult,
    block_ms: i64,
    state: ParserState,
    last_window: i64,
    last_count: u64,
}

impl Scanner {
    pub(crate) fn new(block_ms: i64) -> Self {
        Scanner {
            result: ScanResult {
                min_t: i64::MAX,
                max_t: i64::MIN,
                ..Default::default()
            },
            block_ms,
            state: ParserState::default(),
            last_window: i64::MIN,
            last_count: 0,
        }
    }

    #[inline]
    fn add(&mut self, t: i64) {
        let r = &mut self.result;
        r.min_t = r.min_t.min(t);
        r.max_t = r.max_t.max(t);
        r.samples += 1;
        let w = t.div_euclid(self.block_ms);
        if w != self.last_window {
            self.flush_window();
            self.last_window = w;
        }
        self.last_count += 1;
    }

    fn flush_window(&mut self) {
        if self.last_count > 0 {
            *self.result.per_window.entry(self.last_window).or_insert(0) += self.last_count;
        }
        self.last_count = 0;
    }

    /// Scans one piece (whole lines). Malformed lines the quick path cannot judge are
    /// parsed in full, so their errors carry the right line number.
    pub(crate) fn piece(
        &mut self,
        piece: &[u8],
        is_last: bool,
        progress: &Progress,
    ) -> Result<(), BackfillError> {
        let mut pos = 0;
        let mut lines = 0u64;
        let start_samples = self.result.samples;
        while pos < piece.len() {
            let rest = piece.get(pos..).unwrap_or(&[]);
            let (line, next, has_nl) = match memchr::memchr(b'\n', rest) {
                Some(n) => (rest.get(..n).unwrap_or(&[]), pos + n + 1, true),
                None => (rest, piece.len(), false),
            };
            let quick = if self.state.seen_eof
                || !has_nl
                || line.first().is_none_or(|&b| b == b'#')
                || memchr::memchr(b'#', line).is_some()
            {
                None
            } else {
                tail_timestamp(line)
            };
            match quick {
                Some(Some(t)) => {
                    self.state.line += 1;
                    self.add(t);
                }
                _ => {
                    // Full parse of this one line (keeps EOF and type state exact).
                    let one = piece.get(pos..next).unwrap_or(&[]);
                    let final_line = is_last && next >= piece.len();
                    let mut p = Parser::resume(one, Format::OpenMetrics, self.state, final_line);
                    for e in p.by_ref() {
                        if let Entry::Series(s) = e? {
                            match s.timestamp {
                                Some(t) => self.add(t),
                                None => return Err(BackfillError::NoTimestamp { line: s.line }),
                            }
                        }
                    }
                    self.state = p.state();
                }
            }
            lines += 1;
            pos = next;
        }
        if is_last && !self.state.seen_eof {
            // An empty final piece or one ending right after a line: the parser's own
            // end-of-input check reports the missing `# EOF`.
            let mut p = Parser::resume(&[], Format::OpenMetrics, self.state, true);
            if let Some(Err(e)) = p.next_entry() {
                return Err(e.into());
            }
        }
        progress.lines.fetch_add(lines, Ordering::Relaxed);
        progress
            .scanned_samples
            .fetch_add(self.result.samples - start_samples, Ordering::Relaxed);
        Ok(())
    }

    pub(crate) fn finish(mut self) -> ScanResult {
        self.flush_window();
        self.result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_timestamp_cases() {
        assert_eq!(tail_timestamp(b"a 1 2.5"), Some(Some(2500)));
        assert_eq!(tail_timestamp(b"a 1"), Some(None));
        assert_eq!(tail_timestamp(b"a{x=\"1\"} 1"), Some(None));
        assert_eq!(tail_timestamp(b"a{x=\"a b\"} 1"), Some(None));
        assert_eq!(tail_timestamp(b"a{x=\"a b\"} 1 3"), Some(Some(3000)));
        assert_eq!(tail_timestamp(b"a{x=\"a 5\"} 1"), Some(None));
        assert_eq!(tail_timestamp(b"a{x=\"a b\",y=\"1 2\"} 1"), Some(None));
        assert_eq!(tail_timestamp(b"a 1 x"), None);
        assert_eq!(tail_timestamp(b"a1"), None);
    }
}
