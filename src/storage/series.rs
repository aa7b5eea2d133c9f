//! A selected series and its infallible sample iterator.

use std::sync::Arc;

use crate::chunk::ChunkData;
use crate::chunk::XorDecoder;
use crate::model::{Labels, Sample, Timestamp};

/// One piece of a series' data, in time order.
#[derive(Debug, Clone)]
pub enum SeriesChunk {
    /// Samples already decoded (in-memory stores, tests).
    Decoded(Arc<[Sample]>),
    /// A validated Gorilla XOR chunk.
    Xor(ChunkData),
}

impl SeriesChunk {
    /// Time of the first sample (`i64::MAX` when empty).
    pub fn min_time(&self) -> Timestamp {
        match self {
            SeriesChunk::Decoded(s) => s.first().map_or(Timestamp::MAX, |x| x.t),
            SeriesChunk::Xor(c) => c.min_time(),
        }
    }

    /// Time of the last sample (`i64::MIN` when empty).
    pub fn max_time(&self) -> Timestamp {
        match self {
            SeriesChunk::Decoded(s) => s.last().map_or(Timestamp::MIN, |x| x.t),
            SeriesChunk::Xor(c) => c.max_time(),
        }
    }

    fn samples_into(&self, mint: Timestamp, maxt: Timestamp, out: &mut Vec<Sample>) {
        match self {
            SeriesChunk::Decoded(s) => {
                let start = s.partition_point(|x| x.t < mint);
                let end = s.partition_point(|x| x.t <= maxt);
                if let Some(part) = s.get(start..end) {
                    out.extend_from_slice(part);
                }
            }
            SeriesChunk::Xor(c) => {
                if c.num_samples() == 0 || c.max_time() < mint || c.min_time() > maxt {
                    return;
                }
                // Decode the whole chunk in batches straight into `out`, then drop what
                // lies outside the range (samples are in time order).
                let start = out.len();
                out.resize(start + c.num_samples(), Sample::new(0, 0.0));
                let mut it = c.iter();
                let mut n = 0;
                while let Some(dst) = out.get_mut(start + n..) {
                    let k = it.next_batch(dst);
                    if k == 0 {
                        break;
                    }
                    n += k;
                }
                out.truncate(start + n);
                if c.min_time() >= mint && c.max_time() <= maxt {
                    return;
                }
                let part = out.get(start..).unwrap_or(&[]);
                let lo = part.partition_point(|x| x.t < mint);
                let hi = part.partition_point(|x| x.t <= maxt);
                out.truncate(start + hi);
                out.drain(start..start + lo.min(hi));
            }
        }
    }
}

/// A series as returned by [`super::Querier::select`]: labels plus its data restricted
/// to `[mint, maxt]`.
#[derive(Debug, Clone)]
pub struct Series {
    /// The series' labels.
    pub labels: Labels,
    chunks: Vec<SeriesChunk>,
    mint: Timestamp,
    maxt: Timestamp,
}

impl Series {
    /// A series from chunks in time order, restricted to `[mint, maxt]`.
    pub fn new(labels: Labels, chunks: Vec<SeriesChunk>, mint: Timestamp, maxt: Timestamp) -> Self {
        Series {
            labels,
            chunks,
            mint,
            maxt,
        }
    }

    /// Decodes all samples in range into `out` (cleared first). Decoding once and
    /// iterating over the slice is the fast path for the query engine.
    pub fn samples_into(&self, out: &mut Vec<Sample>) {
        out.clear();
        // Room for the samples in range up front, instead of growing (and copying)
        // chunk by chunk. A chunk that reaches outside the range counts with the share
        // of its time span inside it (an instant query reads a few minutes of chunks
        // that span hours): a close estimate for regularly spaced samples, and only an
        // estimate, since the vector still grows if needed.
        let estimate: usize = self
            .chunks
            .iter()
            .filter(|c| c.max_time() >= self.mint && c.min_time() <= self.maxt)
            .map(|c| {
                let n = match c {
                    SeriesChunk::Decoded(s) => s.len(),
                    SeriesChunk::Xor(x) => x.num_samples(),
                };
                let (lo, hi) = (c.min_time(), c.max_time());
                if lo >= self.mint && hi <= self.maxt {
                    return n;
                }
                let span = i128::from(hi) - i128::from(lo) + 1;
                let inside = i128::from(hi.min(self.maxt)) - i128::from(lo.max(self.mint)) + 1;
                let share = (n as i128).saturating_mul(inside.max(0)) / span.max(1);
                usize::try_from(share)
                    .unwrap_or(n)
                    .min(n)
                    .saturating_add(2)
                    .min(n)
            })
            .sum();
        out.reserve(estimate);
        for c in &self.chunks {
            c.samples_into(self.mint, self.maxt, out);
        }
    }

    /// Joins the parts of one series read from several sources (all with the same
    /// labels and time range) into one series without decoding anything, when every
    /// non-empty chunk ends strictly before the next one starts: then the joined series
    /// has exactly the samples of a sorted, deduplicated merge. Otherwise returns the
    /// parts unchanged.
    pub fn concat(parts: Vec<Series>) -> Result<Series, Vec<Series>> {
        let Some(head) = parts.first() else {
            return Err(parts);
        };
        let same = parts
            .iter()
            .all(|p| p.labels == head.labels && p.mint == head.mint && p.maxt == head.maxt);
        if !same {
            return Err(parts);
        }
        let mut last: Option<Timestamp> = None;
        for c in parts.iter().flat_map(|p| p.chunks.iter()) {
            let (lo, hi) = (c.min_time(), c.max_time());
            if lo > hi {
                continue; // empty
            }
            if last.is_some_and(|l| lo <= l) {
                return Err(parts);
            }
            last = Some(hi);
        }
        let mut it = parts.into_iter();
        let Some(mut out) = it.next() else {
            return Err(Vec::new());
        };
        for p in it {
            out.chunks.extend(p.chunks);
        }
        Ok(out)
    }

    /// All samples in range.
    pub fn samples(&self) -> Vec<Sample> {
        let mut v = Vec::new();
        self.samples_into(&mut v);
        v
    }

    /// An iterator over the samples in range. It decodes lazily, chunk by chunk, and
    /// skips chunks entirely outside the range or before a `seek` target.
    pub fn iter(&self) -> SeriesIter {
        SeriesIter {
            chunks: self.chunks.clone(),
            idx: 0,
            pos: ChunkPos::Start,
            mint: self.mint,
            maxt: self.maxt,
            at: None,
            done: self.mint > self.maxt,
        }
    }
}

/// Where a [`SeriesIter`] is inside its current chunk.
#[derive(Debug, Clone)]
enum ChunkPos {
    /// Not started yet.
    Start,
    /// Index of the next sample of a decoded chunk.
    Decoded(usize),
    /// Decoder of an XOR chunk.
    Xor(XorDecoder),
}

/// Iterates a series' samples with `next` and `seek`.
#[derive(Debug, Clone)]
pub struct SeriesIter {
    chunks: Vec<SeriesChunk>,
    idx: usize,
    pos: ChunkPos,
    mint: Timestamp,
    maxt: Timestamp,
    /// The sample last returned.
    at: Option<Sample>,
    done: bool,
}

impl SeriesIter {
    /// Moves to the first sample with timestamp `>= t` (never backwards) and returns it.
    pub fn seek(&mut self, t: Timestamp) -> Option<Sample> {
        if self.done {
            return None;
        }
        if let Some(s) = self.at {
            if s.t >= t {
                return Some(s);
            }
        }
        let target = t.max(self.mint);
        self.advance(target)
    }

    /// Returns the first sample with `t >= target` from the current position on.
    fn advance(&mut self, target: Timestamp) -> Option<Sample> {
        while !self.done {
            let Some(chunk) = self.chunks.get(self.idx) else {
                return self.finish();
            };
            if chunk.max_time() < target {
                self.idx += 1;
                self.pos = ChunkPos::Start;
                continue;
            }
            let found = match (chunk, &mut self.pos) {
                (SeriesChunk::Decoded(s), pos) => {
                    let from = match pos {
                        ChunkPos::Decoded(i) => *i,
                        _ => 0,
                    };
                    let i = match s.get(from) {
                        Some(x) if x.t >= target => from,
                        _ => {
                            let rest = s.get(from..).unwrap_or(&[]);
                            from + rest.partition_point(|x| x.t < target)
                        }
                    };
                    *pos = ChunkPos::Decoded(i + 1);
                    s.get(i).copied()
                }
                (SeriesChunk::Xor(c), pos) => {
                    if !matches!(pos, ChunkPos::Xor(_)) {
                        *pos = ChunkPos::Xor(c.decoder());
                    }
                    match pos {
                        ChunkPos::Xor(d) => d.seek(c.bytes(), target),
                        _ => None,
                    }
                }
            };
            match found {
                Some(s) if s.t > self.maxt => return self.finish(),
                Some(s) => {
                    self.at = Some(s);
                    return Some(s);
                }
                None => {
                    self.idx += 1;
                    self.pos = ChunkPos::Start;
                }
            }
        }
        None
    }

    fn finish(&mut self) -> Option<Sample> {
        self.done = true;
        self.at = None;
        self.chunks = Vec::new();
        None
    }
}

impl Iterator for SeriesIter {
    type Item = Sample;
    fn next(&mut self) -> Option<Sample> {
        if self.done {
            return None;
        }
        // Strictly after the last sample returned (timestamps strictly increase).
        let target = match self.at {
            Some(s) => s.t.saturating_add(1).max(self.mint),
            None => self.mint,
        };
        if self.at.is_some_and(|s| s.t == Timestamp::MAX) {
            return self.finish();
        }
        self.advance(target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(labels: &Labels, ts: &[i64]) -> Series {
        let samples: Vec<Sample> = ts.iter().map(|&t| Sample::new(t, t as f64)).collect();
        Series::new(
            labels.clone(),
            vec![SeriesChunk::Decoded(samples.into())],
            0,
            1000,
        )
    }

    #[test]
    fn concat_joins_disjoint_parts_and_refuses_overlaps() {
        let l = Labels::from_pairs(&[("__name__", "m")]);
        let joined = Series::concat(vec![part(&l, &[1, 2]), part(&l, &[]), part(&l, &[3, 5])])
            .map_err(|_| "refused")
            .unwrap();
        let ts: Vec<i64> = joined.samples().iter().map(|s| s.t).collect();
        assert_eq!(ts, vec![1, 2, 3, 5]);
        assert_eq!(joined.iter().map(|s| s.t).collect::<Vec<_>>(), ts);
        // Same timestamp in two parts, or out of order: the caller must merge.
        assert!(Series::concat(vec![part(&l, &[1, 2]), part(&l, &[2, 3])]).is_err());
        assert!(Series::concat(vec![part(&l, &[5]), part(&l, &[1])]).is_err());
        let other = Labels::from_pairs(&[("__name__", "n")]);
        let parts = Series::concat(vec![part(&l, &[1]), part(&other, &[2])]).unwrap_err();
        assert_eq!(parts.len(), 2);
    }
}
