//! The `*_over_time` family and the other functions that reduce the samples of one
//! series in one range window to a single value: `changes`, `resets`, `deriv`,
//! `predict_linear`, `double_exponential_smoothing`.
//!
//! Precondition for every function here: `samples` are the float samples of one series
//! inside one range window, in time order, with staleness markers already removed by
//! the caller. A `None` result means "no output element for this series".

use crate::model::Sample;

use super::aggr::{kahan_sum_inc, quantile, variance_kahan};

/// `sum_over_time`: compensated (Kahan–Neumaier) sum of the values.
pub fn sum_over_time(samples: &[Sample]) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    let (mut sum, mut c) = (0.0, 0.0);
    for s in samples {
        (sum, c) = kahan_sum_inc(s.v, sum, c);
    }
    Some(if sum.is_infinite() { sum } else { sum + c })
}

/// `avg_over_time`: the mean, computed as Prometheus does: a compensated direct sum
/// divided by the count while the sum stays finite, falling back to a compensated
/// incremental mean from the first value whose addition would overflow.
pub fn avg_over_time(samples: &[Sample]) -> Option<f64> {
    let (first, rest) = samples.split_first()?;
    let mut sum = first.v;
    let mut count = 1.0;
    let (mut mean, mut c) = (0.0f64, 0.0f64);
    let mut incremental = false;
    for (i, s) in rest.iter().enumerate() {
        count = (i + 2) as f64;
        if !incremental {
            let (new_sum, new_c) = kahan_sum_inc(s.v, sum, c);
            if !new_sum.is_infinite() {
                sum = new_sum;
                c = new_c;
                continue;
            }
            incremental = true;
            mean = sum / (count - 1.0);
            c /= count - 1.0;
        }
        let q = (count - 1.0) / count;
        (mean, c) = kahan_sum_inc(s.v / count, q * mean, q * c);
    }
    Some(if incremental {
        mean + c
    } else {
        sum / count + c / count
    })
}

/// `count_over_time`: the number of samples.
pub fn count_over_time(samples: &[Sample]) -> Option<f64> {
    if samples.is_empty() {
        None
    } else {
        Some(samples.len() as f64)
    }
}

/// `last_over_time`: the most recent value.
pub fn last_over_time(samples: &[Sample]) -> Option<f64> {
    samples.last().map(|s| s.v)
}

/// `first_over_time`: the oldest value.
pub fn first_over_time(samples: &[Sample]) -> Option<f64> {
    samples.first().map(|s| s.v)
}

/// `present_over_time`: 1 when there is any sample.
pub fn present_over_time(samples: &[Sample]) -> Option<f64> {
    if samples.is_empty() {
        None
    } else {
        Some(1.0)
    }
}

/// `max_over_time`: the largest value. NaN values are skipped unless all values are
/// NaN; among equal values the first one wins.
pub fn max_over_time(samples: &[Sample]) -> Option<f64> {
    extreme(samples, |cur, best| cur > best).map(|s| s.v)
}

/// `min_over_time`: the smallest value, with the same NaN rule as [`max_over_time`].
pub fn min_over_time(samples: &[Sample]) -> Option<f64> {
    extreme(samples, |cur, best| cur < best).map(|s| s.v)
}

/// `ts_of_max_over_time`: the timestamp (seconds) of the last occurrence of the
/// maximum.
pub fn ts_of_max_over_time(samples: &[Sample]) -> Option<f64> {
    extreme(samples, |cur, best| cur >= best).map(|s| s.t as f64 / 1000.0)
}

/// `ts_of_min_over_time`: the timestamp (seconds) of the last occurrence of the
/// minimum.
pub fn ts_of_min_over_time(samples: &[Sample]) -> Option<f64> {
    extreme(samples, |cur, best| cur <= best).map(|s| s.t as f64 / 1000.0)
}

/// `ts_of_first_over_time`: the timestamp (seconds) of the oldest sample.
pub fn ts_of_first_over_time(samples: &[Sample]) -> Option<f64> {
    samples.first().map(|s| s.t as f64 / 1000.0)
}

/// `ts_of_last_over_time`: the timestamp (seconds) of the newest sample.
pub fn ts_of_last_over_time(samples: &[Sample]) -> Option<f64> {
    samples.last().map(|s| s.t as f64 / 1000.0)
}

fn extreme(samples: &[Sample], better: impl Fn(f64, f64) -> bool) -> Option<Sample> {
    let mut best = *samples.first()?;
    for s in samples {
        if better(s.v, best.v) || best.v.is_nan() {
            best = *s;
        }
    }
    Some(best)
}

/// `quantile_over_time(q, ...)`: the φ-quantile of the values (see
/// [`super::aggr::quantile`] for the rules on NaN and out-of-range `q`).
pub fn quantile_over_time(q: f64, samples: &[Sample]) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    let mut values: Vec<f64> = samples.iter().map(|s| s.v).collect();
    Some(quantile(q, &mut values))
}

/// `stdvar_over_time`: population variance (compensated Welford).
pub fn stdvar_over_time(samples: &[Sample]) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    Some(variance_kahan(samples.iter().map(|s| s.v)))
}

/// `stddev_over_time`: population standard deviation.
pub fn stddev_over_time(samples: &[Sample]) -> Option<f64> {
    stdvar_over_time(samples).map(f64::sqrt)
}

/// `mad_over_time`: median absolute deviation from the median.
pub fn mad_over_time(samples: &[Sample]) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    let mut values: Vec<f64> = samples.iter().map(|s| s.v).collect();
    let median = quantile(0.5, &mut values);
    let mut dev: Vec<f64> = samples.iter().map(|s| (s.v - median).abs()).collect();
    Some(quantile(0.5, &mut dev))
}

/// `changes`: how many times the value changed between consecutive samples (two NaNs
/// in a row are no change).
pub fn changes(samples: &[Sample]) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    let n = samples
        .windows(2)
        .filter(|w| match w {
            [a, b] => b.v != a.v && !(a.v.is_nan() && b.v.is_nan()),
            _ => false,
        })
        .count();
    Some(n as f64)
}

/// `resets`: how many times the value decreased between consecutive samples.
pub fn resets(samples: &[Sample]) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    let n = samples
        .windows(2)
        .filter(|w| match w {
            [a, b] => b.v < a.v,
            _ => false,
        })
        .count();
    Some(n as f64)
}

/// Least-squares linear regression of the values over time (x in seconds relative to
/// `intercept_time_ms`), with compensated sums. Returns `(slope per second, value at
/// intercept_time_ms)`.
///
/// All values equal gives slope 0 and that value (NaN, NaN when the value is ±Inf).
/// Needs at least one sample; callers check for two.
pub fn linear_regression(samples: &[Sample], intercept_time_ms: i64) -> (f64, f64) {
    let Some(first) = samples.first() else {
        return (f64::NAN, f64::NAN);
    };
    let init_y = first.v;
    let mut const_y = true;
    let mut n = 0.0;
    let (mut sum_x, mut c_x) = (0.0, 0.0);
    let (mut sum_y, mut c_y) = (0.0, 0.0);
    let (mut sum_xy, mut c_xy) = (0.0, 0.0);
    let (mut sum_x2, mut c_x2) = (0.0, 0.0);
    for (i, s) in samples.iter().enumerate() {
        if const_y && i > 0 && s.v != init_y {
            const_y = false;
        }
        n += 1.0;
        let x = (s.t - intercept_time_ms) as f64 / 1e3;
        (sum_x, c_x) = kahan_sum_inc(x, sum_x, c_x);
        (sum_y, c_y) = kahan_sum_inc(s.v, sum_y, c_y);
        (sum_xy, c_xy) = kahan_sum_inc(x * s.v, sum_xy, c_xy);
        (sum_x2, c_x2) = kahan_sum_inc(x * x, sum_x2, c_x2);
    }
    if const_y {
        if init_y.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, init_y);
    }
    sum_x += c_x;
    sum_y += c_y;
    sum_xy += c_xy;
    sum_x2 += c_x2;
    let cov_xy = sum_xy - sum_x * sum_y / n;
    let var_x = sum_x2 - sum_x * sum_x / n;
    let slope = cov_xy / var_x;
    let intercept = sum_y / n - slope * sum_x / n;
    (slope, intercept)
}

/// `deriv`: per-second slope of the least-squares line. `None` for fewer than two
/// samples.
pub fn deriv(samples: &[Sample]) -> Option<f64> {
    let [first, _, ..] = samples else {
        return None;
    };
    // Relative to the first sample's time to keep x small (float accuracy).
    Some(linear_regression(samples, first.t).0)
}

/// `predict_linear(v[range], t)`: the value the least-squares line predicts `duration_s`
/// seconds after the evaluation time `eval_t_ms`. `None` for fewer than two samples.
pub fn predict_linear(samples: &[Sample], eval_t_ms: i64, duration_s: f64) -> Option<f64> {
    if samples.len() < 2 {
        return None;
    }
    let (slope, intercept) = linear_regression(samples, eval_t_ms);
    Some(slope * duration_s + intercept)
}

/// Why `double_exponential_smoothing` rejected its factors.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SmoothingError {
    /// The smoothing factor is not in (0, 1).
    #[error("invalid smoothing factor. Expected: 0 < sf < 1, got: {}", fixed6(*.0))]
    SmoothingFactor(f64),
    /// The trend factor is not in (0, 1).
    #[error("invalid trend factor. Expected: 0 < tf < 1, got: {}", fixed6(*.0))]
    TrendFactor(f64),
}

/// A float with six decimals, infinities spelled `+Inf`/`-Inf` (Go's `%f`).
fn fixed6(v: f64) -> String {
    if v == f64::INFINITY {
        "+Inf".to_string()
    } else if v == f64::NEG_INFINITY {
        "-Inf".to_string()
    } else {
        format!("{v:.6}")
    }
}

/// `double_exponential_smoothing(v[range], sf, tf)` (Holt's linear method). Factors
/// outside (0, 1) are an error; fewer than two samples give `None`.
pub fn double_exponential_smoothing(
    samples: &[Sample],
    sf: f64,
    tf: f64,
) -> Result<Option<f64>, SmoothingError> {
    // NaN factors pass these checks (as upstream) and give a NaN result.
    if sf <= 0.0 || sf >= 1.0 {
        return Err(SmoothingError::SmoothingFactor(sf));
    }
    if tf <= 0.0 || tf >= 1.0 {
        return Err(SmoothingError::TrendFactor(tf));
    }
    let [first, second, ..] = samples else {
        return Ok(None);
    };
    let mut s0 = 0.0;
    let mut s1 = first.v;
    let mut b = second.v - first.v;
    for (i, s) in samples.iter().enumerate().skip(1) {
        let x = sf * s.v;
        if i > 1 {
            // Trend update (the first step keeps the initial trend).
            b = tf * (s1 - s0) + (1.0 - tf) * b;
        }
        let y = (1.0 - sf) * (s1 + b);
        s0 = s1;
        s1 = x + y;
    }
    Ok(Some(s1))
}

/// Incremental `max_over_time` / `min_over_time` for windows that slide forward over
/// one series (both window ends non-decreasing from call to call), in amortised O(1)
/// per step. Results are bit-identical to [`max_over_time`] / [`min_over_time`] on the
/// same window: NaN values are skipped unless the window holds nothing else (then the
/// result is NaN), and among equal values the first one wins.
///
/// (`sum_over_time` and `avg_over_time` have no exact incremental form: compensated
/// summation cannot remove values from the front without changing the rounding.)
#[derive(Debug, Clone)]
pub struct SlidingExtreme<'a> {
    samples: &'a [Sample],
    is_max: bool,
    /// Indices of non-NaN candidates, values strictly decreasing (max) or increasing
    /// (min) from front to back; the front is the answer.
    deque: std::collections::VecDeque<usize>,
    /// One past the last index pushed so far.
    pushed: usize,
}

impl<'a> SlidingExtreme<'a> {
    /// A sliding maximum (`is_max`) or minimum over `samples`.
    pub fn new(samples: &'a [Sample], is_max: bool) -> Self {
        SlidingExtreme {
            samples,
            is_max,
            deque: std::collections::VecDeque::new(),
            pushed: 0,
        }
    }

    /// The extreme of `samples[lo..hi]`; `None` for an empty window. `lo` and `hi` must
    /// not decrease between calls (they are clamped to the series length).
    pub fn query(&mut self, lo: usize, hi: usize) -> Option<f64> {
        let hi = hi.min(self.samples.len());
        while self.pushed < hi {
            let i = self.pushed;
            self.pushed += 1;
            let Some(v) = self.samples.get(i).map(|s| s.v) else {
                break;
            };
            if v.is_nan() {
                continue;
            }
            // Drop candidates that the new value beats; keep equal earlier ones.
            while let Some(&back) = self.deque.back() {
                let bv = self.samples.get(back).map_or(f64::NAN, |s| s.v);
                let beaten = if self.is_max { v > bv } else { v < bv };
                if beaten {
                    self.deque.pop_back();
                } else {
                    break;
                }
            }
            self.deque.push_back(i);
        }
        while self.deque.front().is_some_and(|&f| f < lo) {
            self.deque.pop_front();
        }
        if lo >= hi {
            return None;
        }
        match self.deque.front() {
            Some(&f) => self.samples.get(f).map(|s| s.v),
            // Only NaN values in the window: the batch form ends on the last one.
            None => self.samples.get(hi - 1).map(|s| s.v),
        }
    }
}

/// Prefix counts of value changes (as [`changes`] counts them) or decreases (as
/// [`resets`] counts them) between neighbouring samples of one series, so that the
/// count for any window is one subtraction.
#[derive(Debug, Clone)]
pub struct PairEventPrefix {
    /// `prefix[i]`: events between samples `j-1` and `j` for all `j <= i`.
    prefix: Vec<u32>,
}

impl PairEventPrefix {
    /// Prefix counts for `changes` (NaN followed by NaN is no change).
    pub fn changes(samples: &[Sample]) -> Self {
        Self::build(samples, |a, b| b != a && !(a.is_nan() && b.is_nan()))
    }

    /// Prefix counts for `resets` (a decrease).
    pub fn resets(samples: &[Sample]) -> Self {
        Self::build(samples, |a, b| b < a)
    }

    fn build(samples: &[Sample], event: impl Fn(f64, f64) -> bool) -> Self {
        let mut prefix = Vec::with_capacity(samples.len());
        let mut n = 0u32;
        let mut prev: Option<f64> = None;
        for s in samples {
            if let Some(p) = prev {
                if event(p, s.v) {
                    n += 1;
                }
            }
            prefix.push(n);
            prev = Some(s.v);
        }
        PairEventPrefix { prefix }
    }

    /// The number of events inside the window `samples[lo..hi]`; `None` when the
    /// window is empty (as the batch functions).
    pub fn count(&self, lo: usize, hi: usize) -> Option<f64> {
        let hi = hi.min(self.prefix.len());
        if lo >= hi {
            return None;
        }
        let end = self.prefix.get(hi - 1)?;
        let start = self.prefix.get(lo)?;
        Some(f64::from(end - start))
    }
}

#[cfg(test)]
mod tests {
    use proptest::strategy::Strategy;

    use super::*;

    fn series(step_ms: i64, vals: &[f64]) -> Vec<Sample> {
        vals.iter()
            .enumerate()
            .map(|(i, v)| Sample::new(i as i64 * step_ms, *v))
            .collect()
    }

    #[test]
    fn empty_input_gives_none() {
        let e: &[Sample] = &[];
        assert_eq!(sum_over_time(e), None);
        assert_eq!(avg_over_time(e), None);
        assert_eq!(count_over_time(e), None);
        assert_eq!(min_over_time(e), None);
        assert_eq!(max_over_time(e), None);
        assert_eq!(last_over_time(e), None);
        assert_eq!(first_over_time(e), None);
        assert_eq!(present_over_time(e), None);
        assert_eq!(quantile_over_time(0.5, e), None);
        assert_eq!(stddev_over_time(e), None);
        assert_eq!(changes(e), None);
        assert_eq!(resets(e), None);
        assert_eq!(deriv(e), None);
        assert_eq!(predict_linear(e, 0, 1.0), None);
        assert_eq!(mad_over_time(e), None);
    }

    #[test]
    fn simple_aggregates() {
        let s = series(1000, &[3.0, 1.0, 4.0, 1.0, 5.0]);
        assert_eq!(sum_over_time(&s), Some(14.0));
        assert_eq!(avg_over_time(&s), Some(2.8));
        assert_eq!(count_over_time(&s), Some(5.0));
        assert_eq!(min_over_time(&s), Some(1.0));
        assert_eq!(max_over_time(&s), Some(5.0));
        assert_eq!(first_over_time(&s), Some(3.0));
        assert_eq!(last_over_time(&s), Some(5.0));
        assert_eq!(present_over_time(&s), Some(1.0));
        assert_eq!(quantile_over_time(0.5, &s), Some(3.0));
        assert_eq!(ts_of_max_over_time(&s), Some(4.0));
        assert_eq!(ts_of_min_over_time(&s), Some(3.0));
        assert_eq!(ts_of_first_over_time(&s), Some(0.0));
        assert_eq!(ts_of_last_over_time(&s), Some(4.0));
        // median 3, deviations 0,2,1,2,2 -> median 2
        assert_eq!(mad_over_time(&s), Some(2.0));
    }

    #[test]
    fn single_sample() {
        let s = [Sample::new(5, 7.0)];
        assert_eq!(avg_over_time(&s), Some(7.0));
        assert_eq!(stdvar_over_time(&s), Some(0.0));
        assert_eq!(quantile_over_time(0.9, &s), Some(7.0));
        assert_eq!(changes(&s), Some(0.0));
        assert_eq!(resets(&s), Some(0.0));
        assert_eq!(deriv(&s), None);
    }

    #[test]
    fn min_max_nan_rules() {
        let s = series(1, &[f64::NAN, 2.0, f64::NAN, 1.0]);
        assert_eq!(max_over_time(&s), Some(2.0));
        assert_eq!(min_over_time(&s), Some(1.0));
        let all_nan = series(1, &[f64::NAN, f64::NAN]);
        assert!(max_over_time(&all_nan).unwrap().is_nan());
        let inf = series(1, &[1.0, f64::INFINITY, f64::NEG_INFINITY]);
        assert_eq!(max_over_time(&inf), Some(f64::INFINITY));
        assert_eq!(min_over_time(&inf), Some(f64::NEG_INFINITY));
    }

    #[test]
    fn sum_and_avg_with_inf_and_nan() {
        let s = series(1, &[1.0, f64::INFINITY, 2.0]);
        assert_eq!(sum_over_time(&s), Some(f64::INFINITY));
        assert_eq!(avg_over_time(&s), Some(f64::INFINITY));
        let n = series(1, &[1.0, f64::NAN]);
        assert!(sum_over_time(&n).unwrap().is_nan());
        assert!(avg_over_time(&n).unwrap().is_nan());
        let mixed = series(1, &[f64::INFINITY, f64::NEG_INFINITY]);
        assert!(avg_over_time(&mixed).unwrap().is_nan());
    }

    #[test]
    fn avg_overflow_switches_to_incremental_mean() {
        // The direct sum overflows at the second value; the incremental mean stays
        // finite and within rounding of the true mean.
        let s = series(1, &[f64::MAX, f64::MAX, f64::MAX]);
        let a = avg_over_time(&s).unwrap();
        assert!(
            a.is_finite() && (a - f64::MAX).abs() <= f64::MAX * 1e-15,
            "{a}"
        );
        let t = series(1, &[f64::MAX, f64::MAX, -f64::MAX, -f64::MAX]);
        let b = avg_over_time(&t).unwrap();
        assert!(b.abs() <= f64::MAX * 1e-15, "{b}");
        // Compensation keeps small values exact next to large ones.
        let k = series(1, &[1.0, 1e100, 1.0, -1e100]);
        assert_eq!(sum_over_time(&k), Some(2.0));
        assert_eq!(avg_over_time(&k), Some(0.5));
    }

    #[test]
    fn variance() {
        let s = series(1, &[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]);
        assert_eq!(stdvar_over_time(&s), Some(4.0));
        assert_eq!(stddev_over_time(&s), Some(2.0));
        let n = series(1, &[1.0, f64::NAN]);
        assert!(stddev_over_time(&n).unwrap().is_nan());
    }

    #[test]
    fn changes_and_resets() {
        let s = series(1, &[1.0, 1.0, 2.0, 1.0, f64::NAN, f64::NAN, 3.0, 0.0]);
        // changes: 1->2, 2->1, 1->NaN, NaN->3, 3->0 = 5
        assert_eq!(changes(&s), Some(5.0));
        // resets: 2->1, 3->0 = 2 (NaN comparisons are false)
        assert_eq!(resets(&s), Some(2.0));
    }

    #[test]
    fn regression_known_slope() {
        // y = 3 + 0.5 * t_seconds, sampled every 10s from t=0 to 60s.
        let s: Vec<Sample> = (0..=6)
            .map(|i| Sample::new(i * 10_000, 3.0 + 0.5 * (i * 10) as f64))
            .collect();
        assert_eq!(deriv(&s), Some(0.5));
        // At t=60s the line is at 33; 100s later 83.
        assert_eq!(predict_linear(&s, 60_000, 100.0), Some(83.0));
        let (slope, intercept) = linear_regression(&s, 0);
        assert_eq!((slope, intercept), (0.5, 3.0));
    }

    #[test]
    fn regression_constant_values() {
        let s = series(1000, &[4.0, 4.0, 4.0]);
        assert_eq!(deriv(&s), Some(0.0));
        assert_eq!(predict_linear(&s, 10_000, 100.0), Some(4.0));
        let inf = series(1000, &[f64::INFINITY, f64::INFINITY]);
        assert!(deriv(&inf).unwrap().is_nan());
    }

    fn same(a: Option<f64>, b: Option<f64>) -> bool {
        match (a, b) {
            (Some(x), Some(y)) => x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()),
            (None, None) => true,
            _ => false,
        }
    }

    #[test]
    fn sliding_extreme_examples() {
        let s = series(1, &[3.0, f64::NAN, 5.0, 5.0, -0.0, 0.0, 1.0]);
        let mut mx = SlidingExtreme::new(&s, true);
        assert_eq!(mx.query(0, 1), Some(3.0));
        assert_eq!(mx.query(0, 4), Some(5.0));
        assert_eq!(mx.query(3, 5), Some(5.0));
        assert!(mx.query(4, 6).unwrap().is_sign_negative()); // -0 came first
        assert_eq!(mx.query(6, 6), None);
        let n = series(1, &[f64::NAN, f64::NAN, 2.0]);
        let mut mn = SlidingExtreme::new(&n, false);
        assert!(mn.query(0, 2).unwrap().is_nan());
        assert_eq!(mn.query(1, 3), Some(2.0));
    }

    #[test]
    fn pair_events_examples() {
        let s = series(1, &[1.0, 1.0, 2.0, 1.0, f64::NAN, f64::NAN, 3.0, 0.0]);
        let c = PairEventPrefix::changes(&s);
        let r = PairEventPrefix::resets(&s);
        assert_eq!(c.count(0, 8), changes(&s));
        assert_eq!(r.count(0, 8), resets(&s));
        assert_eq!(c.count(2, 5), changes(&s[2..5]));
        assert_eq!(c.count(3, 3), None);
        assert_eq!(c.count(7, 8), Some(0.0));
    }

    proptest::proptest! {
        /// The sliding forms equal the batch functions on every window of a forward
        /// sweep, bit for bit.
        #[test]
        fn sliding_forms_match_batch(
            vals in proptest::collection::vec(
                proptest::prop_oneof![
                    (-3i32..4).prop_map(f64::from),
                    proptest::strategy::Just(f64::NAN),
                    proptest::strategy::Just(-0.0),
                    proptest::strategy::Just(f64::INFINITY),
                ],
                0..30,
            ),
            width in 0usize..8,
            step in 1usize..3,
        ) {
            let s = series(1, &vals);
            let mut mx = SlidingExtreme::new(&s, true);
            let mut mn = SlidingExtreme::new(&s, false);
            let ch = PairEventPrefix::changes(&s);
            let rs = PairEventPrefix::resets(&s);
            let mut hi = 0;
            while hi <= s.len() + 1 {
                let lo = hi.saturating_sub(width);
                let h = hi.min(s.len());
                let l = lo.min(h);
                let win = &s[l..h];
                proptest::prop_assert!(same(mx.query(lo, hi), max_over_time(win)));
                proptest::prop_assert!(same(mn.query(lo, hi), min_over_time(win)));
                proptest::prop_assert!(same(ch.count(lo, hi), changes(win)));
                proptest::prop_assert!(same(rs.count(lo, hi), resets(win)));
                hi += step;
            }
        }
    }

    #[test]
    fn smoothing() {
        assert!(double_exponential_smoothing(&[], 0.0, 0.5).is_err());
        assert!(double_exponential_smoothing(&[], 0.5, 1.0).is_err());
        assert_eq!(double_exponential_smoothing(&[], 0.5, 0.5), Ok(None));
        // A straight line is reproduced exactly.
        let s = series(1000, &[0.0, 1.0, 2.0, 3.0]);
        assert_eq!(double_exponential_smoothing(&s, 0.5, 0.5), Ok(Some(3.0)));
        // Hand-computed: sf=0.5, tf=0.5 over 0, 2, 2.
        // i=1: b=2, s1 = 0.5*2 + 0.5*(0+2) = 2. i=2: b = 0.5*(2-0) + 0.5*2 = 2,
        // s1 = 0.5*2 + 0.5*(2+2) = 3.
        let t = series(1000, &[0.0, 2.0, 2.0]);
        assert_eq!(double_exponential_smoothing(&t, 0.5, 0.5), Ok(Some(3.0)));
        assert_eq!(
            SmoothingError::SmoothingFactor(1.0).to_string(),
            "invalid smoothing factor. Expected: 0 < sf < 1, got: 1.000000"
        );
        assert_eq!(
            SmoothingError::TrendFactor(f64::NEG_INFINITY).to_string(),
            "invalid trend factor. Expected: 0 < tf < 1, got: -Inf"
        );
        assert_eq!(
            SmoothingError::TrendFactor(-0.25).to_string(),
            "invalid trend factor. Expected: 0 < tf < 1, got: -0.250000"
        );
    }
}
