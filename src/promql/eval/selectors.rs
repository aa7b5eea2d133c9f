//! Vector and matrix selectors, and sliding range windows over decoded samples.

use super::{EvalResult, Evaluator, MSeries, Sv, Val};
use crate::model::{is_stale_nan, Sample};
use crate::promql::ast::{MatrixSelector, VectorSelector};

/// The samples of one series for range windows, and how windows are placed per step.
pub(crate) struct RangeInput {
    /// Series with staleness markers removed, samples in time order.
    pub series: Vec<MSeries>,
    /// Window length (ms); windows are `(te - range, te]`.
    pub range: i64,
    /// `@` time, if pinned.
    pub at: Option<i64>,
    /// Offset (ms).
    pub offset: i64,
}

impl RangeInput {
    /// The window end for the evaluation time `t`.
    #[inline]
    pub fn window_end(&self, t: i64) -> i64 {
        self.at.unwrap_or(t).saturating_sub(self.offset)
    }
}

/// A moving window over one series' samples; evaluation times must not decrease.
pub(crate) struct Window<'a> {
    samples: &'a [Sample],
    lo: usize,
    hi: usize,
}

impl<'a> Window<'a> {
    pub fn new(samples: &'a [Sample]) -> Self {
        Window {
            samples,
            lo: 0,
            hi: 0,
        }
    }

    /// The samples with `start < t <= end`. `start` and `end` must not decrease between
    /// calls.
    pub fn slide(&mut self, start: i64, end: i64) -> &'a [Sample] {
        let s = self.samples;
        while self.hi < s.len() && s.get(self.hi).is_some_and(|x| x.t <= end) {
            self.hi += 1;
        }
        while self.lo < self.hi && s.get(self.lo).is_some_and(|x| x.t <= start) {
            self.lo += 1;
        }
        s.get(self.lo..self.hi).unwrap_or(&[])
    }

    /// The index range of the current window in the series' samples.
    pub fn bounds(&self) -> (usize, usize) {
        (self.lo, self.hi)
    }
}

impl<'s, 'a> Evaluator<'s, 'a> {
    /// `metric{...} offset o @ a`: the latest sample in `(te - lookback, te]`, unless it is
    /// a staleness marker.
    pub(crate) fn eval_vector_selector(&self, vs: &VectorSelector) -> EvalResult<Val> {
        let set = self.select(&vs.matchers)?;
        let n = self.n();
        let at = self.at_ms(vs.at);
        let lookback = self.sh.opts.lookback_delta_ms;
        let mut out: Vec<Vec<Sv>> = (0..n).map(|_| Vec::new()).collect();
        let mut total = 0usize;
        for (si, (labels, samples)) in set.iter().enumerate() {
            if si % 256 == 0 {
                self.check()?;
            }
            if let Some(a) = at {
                // pinned: one lookup, replicated
                if let Some(v) = lookup(samples, a.saturating_sub(vs.offset_ms), lookback) {
                    for step in out.iter_mut() {
                        step.push(Sv {
                            labels: labels.clone(),
                            v,
                            drop_name: false,
                        });
                    }
                    total += n;
                }
                continue;
            }
            let mut idx = 0usize;
            for (i, step) in out.iter_mut().enumerate() {
                let te = self.t(i).saturating_sub(vs.offset_ms);
                while idx < samples.len() && samples.get(idx).is_some_and(|s| s.t <= te) {
                    idx += 1;
                }
                if idx == 0 {
                    continue;
                }
                if let Some(s) = samples.get(idx - 1) {
                    if s.t > te.saturating_sub(lookback) && !is_stale_nan(s.v) {
                        step.push(Sv {
                            labels: labels.clone(),
                            v: s.v,
                            drop_name: false,
                        });
                        total += 1;
                    }
                }
            }
            self.check_samples(total)?;
        }
        self.check_samples(total)?;
        Ok(Val::Vector(out))
    }

    /// [`Self::eval_vector_selector`] (without `@`) as the series of a range query
    /// result, built directly instead of step by step: each series with its points in
    /// step order, series without points left out (the caller sorts them).
    pub(crate) fn vector_selector_series(&self, vs: &VectorSelector) -> EvalResult<Vec<MSeries>> {
        let set = self.select(&vs.matchers)?;
        let n = self.n();
        let lookback = self.sh.opts.lookback_delta_ms;
        let mut out = Vec::new();
        let mut total = 0usize;
        for (si, (labels, samples)) in set.iter().enumerate() {
            if si % 256 == 0 {
                self.check()?;
            }
            let mut points = Vec::new();
            let mut idx = 0usize;
            for i in 0..n {
                let t = self.t(i);
                let te = t.saturating_sub(vs.offset_ms);
                while idx < samples.len() && samples.get(idx).is_some_and(|s| s.t <= te) {
                    idx += 1;
                }
                if idx == 0 {
                    continue;
                }
                if let Some(s) = samples.get(idx - 1) {
                    if s.t > te.saturating_sub(lookback) && !is_stale_nan(s.v) {
                        if points.is_empty() {
                            points.reserve_exact(n - i);
                        }
                        points.push(Sample::new(t, s.v));
                        total += 1;
                    }
                }
            }
            self.check_samples(total)?;
            if !points.is_empty() {
                out.push(MSeries {
                    labels: labels.clone(),
                    samples: points,
                    drop_name: false,
                });
            }
        }
        self.check_samples(total)?;
        Ok(out)
    }

    /// Like [`Self::eval_vector_selector`], but the value is the sample's own timestamp in
    /// seconds (for `timestamp(selector)`).
    pub(crate) fn eval_vector_selector_timestamps(
        &self,
        vs: &VectorSelector,
    ) -> EvalResult<Vec<Vec<Sv>>> {
        let set = self.select(&vs.matchers)?;
        let n = self.n();
        let at = self.at_ms(vs.at);
        let lookback = self.sh.opts.lookback_delta_ms;
        let mut out: Vec<Vec<Sv>> = (0..n).map(|_| Vec::new()).collect();
        for (labels, samples) in set.iter() {
            for (i, step) in out.iter_mut().enumerate() {
                let te = at.unwrap_or(self.t(i)).saturating_sub(vs.offset_ms);
                let idx = samples.partition_point(|s| s.t <= te);
                if idx == 0 {
                    continue;
                }
                if let Some(s) = samples.get(idx - 1) {
                    if s.t > te.saturating_sub(lookback) && !is_stale_nan(s.v) {
                        step.push(Sv {
                            labels: labels.clone(),
                            v: s.t as f64 / 1000.0,
                            drop_name: false,
                        });
                    }
                }
            }
        }
        Ok(out)
    }

    /// The decoded series of a matrix selector, ready for windowing.
    pub(crate) fn range_input_selector(&self, ms: &MatrixSelector) -> EvalResult<RangeInput> {
        let set = self.select(&ms.vs.matchers)?;
        let series = match std::rc::Rc::try_unwrap(set) {
            // The last user of the selection: take the samples instead of copying them.
            Ok(owned) => owned
                .into_iter()
                .map(|(labels, mut samples)| {
                    samples.retain(|s| !is_stale_nan(s.v));
                    MSeries {
                        labels,
                        samples,
                        drop_name: false,
                    }
                })
                .collect(),
            Err(set) => set
                .iter()
                .map(|(labels, samples)| MSeries {
                    labels: labels.clone(),
                    samples: samples
                        .iter()
                        .copied()
                        .filter(|s| !is_stale_nan(s.v))
                        .collect(),
                    drop_name: false,
                })
                .collect(),
        };
        Ok(RangeInput {
            series,
            range: ms.range_ms,
            at: self.at_ms(ms.vs.at),
            offset: ms.vs.offset_ms,
        })
    }

    /// A matrix selector as a query result (instant queries only).
    pub(crate) fn eval_matrix_selector(&self, ms: &MatrixSelector) -> EvalResult<Val> {
        let input = self.range_input_selector(ms)?;
        Ok(Val::Matrix(self.range_input_to_matrix(input)))
    }

    /// The window at the (single) evaluation time, as a matrix.
    pub(crate) fn range_input_to_matrix(&self, input: RangeInput) -> Vec<MSeries> {
        let te = input.window_end(self.start);
        let ts = te.saturating_sub(input.range);
        let mut out = Vec::new();
        for s in input.series {
            let samples: Vec<Sample> = s
                .samples
                .into_iter()
                .filter(|p| p.t > ts && p.t <= te)
                .collect();
            if samples.is_empty() {
                continue;
            }
            out.push(MSeries {
                labels: s.labels,
                samples,
                drop_name: s.drop_name,
            });
        }
        out
    }
}

/// The value of the latest sample at or before `te` within the lookback window, unless
/// it is a staleness marker.
fn lookup(samples: &[Sample], te: i64, lookback: i64) -> Option<f64> {
    let idx = samples.partition_point(|s| s.t <= te);
    let s = samples.get(idx.checked_sub(1)?)?;
    if s.t > te.saturating_sub(lookback) && !is_stale_nan(s.v) {
        Some(s.v)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_slides_left_open() {
        let s: Vec<Sample> = (0..10).map(|i| Sample::new(i * 10, i as f64)).collect();
        let mut w = Window::new(&s);
        assert_eq!(w.slide(-5, 0).len(), 1);
        let got = w.slide(10, 30);
        assert_eq!(got.iter().map(|x| x.t).collect::<Vec<_>>(), vec![20, 30]);
        let got = w.slide(30, 30);
        assert!(got.is_empty());
        let got = w.slide(80, 200);
        assert_eq!(got.iter().map(|x| x.t).collect::<Vec<_>>(), vec![90]);
    }
}
