//! A selected series and its infallible sample iterator.

use std::sync::Arc;

use crate::model::{Labels, Sample, Timestamp};

/// One piece of a series' data, in time order.
#[derive(Debug, Clone)]
pub enum SeriesChunk {
    /// Samples already decoded (in-memory stores, tests).
    Decoded(Arc<[Sample]>),
}

impl SeriesChunk {
    fn samples_into(&self, mint: Timestamp, maxt: Timestamp, out: &mut Vec<Sample>) {
        match self {
            SeriesChunk::Decoded(s) => {
                let start = s.partition_point(|x| x.t < mint);
                let end = s.partition_point(|x| x.t <= maxt);
                if let Some(part) = s.get(start..end) {
                    out.extend_from_slice(part);
                }
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
        for c in &self.chunks {
            c.samples_into(self.mint, self.maxt, out);
        }
    }

    /// All samples in range.
    pub fn samples(&self) -> Vec<Sample> {
        let mut v = Vec::new();
        self.samples_into(&mut v);
        v
    }

    /// An iterator over the samples in range.
    pub fn iter(&self) -> SeriesIter {
        SeriesIter {
            samples: self.samples(),
            pos: 0,
        }
    }
}

/// Iterates a series' samples with `next` and `seek`.
#[derive(Debug, Clone)]
pub struct SeriesIter {
    samples: Vec<Sample>,
    pos: usize,
}

impl SeriesIter {
    /// Moves to the first sample with timestamp `>= t` (never backwards) and returns it.
    pub fn seek(&mut self, t: Timestamp) -> Option<Sample> {
        let rest = self.samples.get(self.pos..).unwrap_or(&[]);
        self.pos += rest.partition_point(|s| s.t < t);
        self.samples.get(self.pos).copied()
    }
}

impl Iterator for SeriesIter {
    type Item = Sample;
    fn next(&mut self) -> Option<Sample> {
        let s = self.samples.get(self.pos).copied();
        if s.is_some() {
            self.pos += 1;
        }
        s
    }
}
