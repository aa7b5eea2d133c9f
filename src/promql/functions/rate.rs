//! `rate`, `increase`, `delta` (extrapolated over the range window) and `irate`,
//! `idelta` (from the last two samples).
//!
//! Inputs are the float samples of one series inside one range window, in time order,
//! with staleness markers already removed by the caller.

use crate::model::Sample;

/// The shared implementation of `rate` (`is_counter`, `is_rate`), `increase`
/// (`is_counter`) and `delta` (neither), with Prometheus 3.x semantics.
///
/// `samples` are the samples selected for the window `(range_start_ms, range_end_ms]`
/// (left-open; `range_start_ms = eval_t - offset - range`, `range_end_ms = eval_t -
/// offset`). The result is `None` (no output element) for fewer than two samples.
///
/// - Counters: every decrease is a reset; the value before the reset is added back.
/// - The raw difference between the first and the last sample is extrapolated towards
///   both window edges: all the way when the gap to the edge is below 1.1 times the
///   average sample interval, otherwise by half an average interval.
/// - For counters the extrapolation before the first sample never goes below zero:
///   it stops where a straight line through the samples would reach 0.
/// - `rate` divides by the window length in seconds.
pub fn extrapolated_rate(
    samples: &[Sample],
    range_start_ms: i64,
    range_end_ms: i64,
    is_counter: bool,
    is_rate: bool,
) -> Option<f64> {
    extrapolated_rate_impl(
        samples,
        range_start_ms,
        range_end_ms,
        is_counter,
        is_rate,
        is_counter,
    )
}

/// [`extrapolated_rate`] for a counter window whose caller already knows whether any
/// sample is lower than the one before it (`may_reset`); when none is, the scan for
/// resets is skipped (the result is the same bit for bit).
pub fn counter_rate_known_resets(
    samples: &[Sample],
    range_start_ms: i64,
    range_end_ms: i64,
    is_rate: bool,
    may_reset: bool,
) -> Option<f64> {
    extrapolated_rate_impl(
        samples,
        range_start_ms,
        range_end_ms,
        true,
        is_rate,
        may_reset,
    )
}

#[inline(always)]
fn extrapolated_rate_impl(
    samples: &[Sample],
    range_start_ms: i64,
    range_end_ms: i64,
    is_counter: bool,
    is_rate: bool,
    scan_resets: bool,
) -> Option<f64> {
    let (first, last) = match samples {
        [first, .., last] => (*first, *last),
        _ => return None,
    };
    let num_minus_one = (samples.len() - 1) as f64;
    let mut result = last.v - first.v;
    if scan_resets {
        for w in samples.windows(2) {
            if let [prev, cur] = w {
                if cur.v < prev.v {
                    result += prev.v;
                }
            }
        }
    }

    let mut duration_to_start = (first.t - range_start_ms) as f64 / 1000.0;
    let mut duration_to_end = (range_end_ms - last.t) as f64 / 1000.0;
    let sampled_interval = (last.t - first.t) as f64 / 1000.0;
    let average_between = sampled_interval / num_minus_one;

    let threshold = average_between * 1.1;
    if duration_to_start >= threshold {
        duration_to_start = average_between / 2.0;
    }
    if is_counter {
        // A counter cannot go below zero: do not extrapolate past the point where the
        // line through the samples would reach zero.
        let mut duration_to_zero = duration_to_start;
        if result > 0.0 && first.v >= 0.0 {
            duration_to_zero = sampled_interval * (first.v / result);
        }
        if duration_to_zero < duration_to_start {
            duration_to_start = duration_to_zero;
        }
    }
    if duration_to_end >= threshold {
        duration_to_end = average_between / 2.0;
    }

    let mut factor = (sampled_interval + duration_to_start + duration_to_end) / sampled_interval;
    if is_rate {
        factor /= (range_end_ms - range_start_ms) as f64 / 1000.0;
    }
    Some(result * factor)
}

/// `rate(v[range])`: per-second average increase of a counter over the window.
pub fn rate(samples: &[Sample], range_start_ms: i64, range_end_ms: i64) -> Option<f64> {
    extrapolated_rate(samples, range_start_ms, range_end_ms, true, true)
}

/// `increase(v[range])`: increase of a counter over the window.
pub fn increase(samples: &[Sample], range_start_ms: i64, range_end_ms: i64) -> Option<f64> {
    extrapolated_rate(samples, range_start_ms, range_end_ms, true, false)
}

/// `delta(v[range])`: change of a gauge over the window.
pub fn delta(samples: &[Sample], range_start_ms: i64, range_end_ms: i64) -> Option<f64> {
    extrapolated_rate(samples, range_start_ms, range_end_ms, false, false)
}

/// The shared implementation of `irate` (`is_rate`) and `idelta`: looks only at the last
/// two samples. `None` for fewer than two samples or when they share a timestamp.
///
/// For `irate`, a decrease between the two samples is a counter reset, and the result
/// is the last value divided by the interval.
pub fn instant_value(samples: &[Sample], is_rate: bool) -> Option<f64> {
    let (prev, last) = match samples {
        [.., prev, last] => (*prev, *last),
        _ => return None,
    };
    let interval_ms = last.t - prev.t;
    if interval_ms == 0 {
        return None;
    }
    let mut result = last.v;
    if !is_rate || last.v >= prev.v || last.v.is_nan() || prev.v.is_nan() {
        // A gauge, or a counter without a reset (NaN compares as no reset).
        result = last.v - prev.v;
    }
    if is_rate {
        result /= interval_ms as f64 / 1000.0;
    }
    Some(result)
}

/// `irate(v[range])`: per-second rate from the last two samples.
pub fn irate(samples: &[Sample]) -> Option<f64> {
    instant_value(samples, true)
}

/// `idelta(v[range])`: difference of the last two samples.
pub fn idelta(samples: &[Sample]) -> Option<f64> {
    instant_value(samples, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(step_ms: i64, vals: &[f64]) -> Vec<Sample> {
        vals.iter()
            .enumerate()
            .map(|(i, v)| Sample::new(i as i64 * step_ms, *v))
            .collect()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1.0)
    }

    #[test]
    fn too_few_samples() {
        assert_eq!(rate(&[], 0, 60_000), None);
        assert_eq!(rate(&[Sample::new(10_000, 1.0)], 0, 60_000), None);
        assert_eq!(irate(&[Sample::new(10_000, 1.0)]), None);
        assert_eq!(idelta(&[]), None);
    }

    #[test]
    fn full_window_extrapolates_to_edges() {
        // Samples every 10s at t=10..60s, window (0, 60s]: counter 10,20,..,60.
        let s: Vec<Sample> = (1..=6)
            .map(|i| Sample::new(i * 10_000, i as f64 * 10.0))
            .collect();
        // Raw increase 50 over 50s; gap to start 10s <= 1.1*10s so extrapolate fully,
        // but not past zero: zero point is 10s before the first sample -> 60 total.
        let inc = increase(&s, 0, 60_000).unwrap();
        assert!(close(inc, 60.0), "{inc}");
        assert!(close(rate(&s, 0, 60_000).unwrap(), 1.0));
    }

    #[test]
    fn counter_zero_point_limits_extrapolation() {
        // Samples at 30s..60s every 10s: 1, 11, 21, 31. Window (0, 60s].
        let s: Vec<Sample> = [1.0, 11.0, 21.0, 31.0]
            .iter()
            .enumerate()
            .map(|(i, v)| Sample::new(30_000 + i as i64 * 10_000, *v))
            .collect();
        // Gap to start 30s >= 11s -> half an interval (5s); zero point is 1s before the
        // first sample -> 1s. Gap to end 0. Factor (30+1)/30; result 30*31/30 = 31.
        assert!(close(increase(&s, 0, 60_000).unwrap(), 31.0));
        // delta (gauge) uses the 5s.
        assert!(close(delta(&s, 0, 60_000).unwrap(), 30.0 * 35.0 / 30.0));
    }

    #[test]
    fn counter_resets_are_added_back() {
        let s = series(10_000, &[5.0, 10.0, 2.0, 7.0]);
        // Raw: 7-5 = 2, plus 10 at the reset = 12 over 30s, window (-5s, 30s].
        // Start gap 5s < 11s -> full; zero point 30*5/12=12.5s > 5s keeps 5s. End gap 0.
        let inc = increase(&s, -5_000, 30_000).unwrap();
        assert!(close(inc, 12.0 * 35.0 / 30.0), "{inc}");
        // delta ignores resets.
        assert!(close(delta(&s, -5_000, 30_000).unwrap(), 2.0 * 35.0 / 30.0));
    }

    #[test]
    fn negative_first_value_does_not_use_zero_point() {
        let s = series(10_000, &[-10.0, 0.0, 10.0]);
        let inc = increase(&s, -10_000, 20_000).unwrap();
        assert!(close(inc, 20.0 * 30.0 / 20.0), "{inc}");
    }

    #[test]
    fn irate_and_idelta() {
        let s = series(10_000, &[1.0, 5.0, 9.0]);
        assert_eq!(irate(&s), Some(0.4));
        assert_eq!(idelta(&s), Some(4.0));
        // Reset: last value over the interval.
        let r = series(10_000, &[1.0, 9.0, 3.0]);
        assert_eq!(irate(&r), Some(0.3));
        assert_eq!(idelta(&r), Some(-6.0));
        // Equal timestamps give no result.
        assert_eq!(irate(&[Sample::new(5, 1.0), Sample::new(5, 2.0)]), None);
        // NaN is not a reset.
        let n = series(1_000, &[1.0, f64::NAN]);
        assert!(irate(&n).unwrap().is_nan());
    }

    #[test]
    fn nan_and_inf_propagate() {
        let s = series(10_000, &[0.0, f64::NAN, 2.0]);
        // NaN never compares as a decrease; the raw difference is finite.
        assert!(increase(&s, 0, 20_000).unwrap().is_finite());
        let i = series(10_000, &[0.0, 1.0, f64::INFINITY]);
        assert_eq!(delta(&i, 0, 20_000), Some(f64::INFINITY));
    }
}
