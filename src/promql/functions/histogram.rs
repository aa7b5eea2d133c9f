//! Bucket math for classic histograms (series with an `le` label):
//! `histogram_quantile` ([`bucket_quantile`]) and `histogram_fraction`
//! ([`bucket_fraction`]).
//!
//! Buckets are cumulative counts with their inclusive upper bound, in any order; the
//! functions sort them. The highest bucket must have the upper bound +Inf.

use std::cmp::Ordering;

/// One classic-histogram bucket: the cumulative count of observations `<= upper_bound`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    /// The inclusive upper bound (`le`).
    pub upper_bound: f64,
    /// The cumulative count.
    pub count: f64,
}

impl Bucket {
    /// A bucket from its `le` bound and count.
    pub fn new(upper_bound: f64, count: f64) -> Self {
        Bucket { upper_bound, count }
    }
}

/// Relative difference between neighbouring bucket counts below which the difference
/// is treated as floating-point noise and ignored.
pub const SMALL_DELTA_TOLERANCE: f64 = 1e-12;

/// The result of [`bucket_quantile`], with the facts needed for the "input to
/// histogram_quantile needed to be fixed for monotonicity" info annotation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BucketQuantile {
    /// The estimated quantile.
    pub value: f64,
    /// Some bucket count was lower than the one below it and was raised.
    pub forced_monotonic: bool,
    /// Some numerically insignificant difference between counts was ignored.
    pub fixed_precision: bool,
    /// The lowest upper bound whose count was raised (valid when `forced_monotonic`).
    pub min_bucket: f64,
    /// The highest upper bound whose count was raised (valid when `forced_monotonic`).
    pub max_bucket: f64,
    /// The largest amount by which a count was raised.
    pub max_diff: f64,
}

impl BucketQuantile {
    fn plain(value: f64) -> Self {
        BucketQuantile {
            value,
            forced_monotonic: false,
            fixed_precision: false,
            min_bucket: 0.0,
            max_bucket: 0.0,
            max_diff: 0.0,
        }
    }
}

/// Parses an `le` label value as Prometheus does (a Go float: decimal with optional
/// sign and exponent, `Inf`/`Infinity` with optional sign, `NaN` without sign, any
/// letter case). `None` when it is not a number. Hexadecimal floats are not accepted.
pub fn parse_le(s: &str) -> Option<f64> {
    if s.is_empty() || s.contains('_') {
        return None;
    }
    if let Some(rest) = s.strip_prefix(['+', '-']) {
        if rest.get(..3).is_some_and(|p| p.eq_ignore_ascii_case("nan")) {
            return None;
        }
    }
    s.parse::<f64>().ok()
}

fn sort_buckets(buckets: &mut [Bucket]) {
    // Upper bounds are not expected to be NaN; NaN compares equal to everything here.
    buckets.sort_by(|a, b| {
        a.upper_bound
            .partial_cmp(&b.upper_bound)
            .unwrap_or(Ordering::Equal)
    });
}

/// Merges buckets with the same upper bound by adding their counts. Input sorted.
fn coalesce(buckets: &mut Vec<Bucket>) {
    let mut out: Vec<Bucket> = Vec::with_capacity(buckets.len());
    for b in buckets.iter() {
        match out.last_mut() {
            Some(last) if last.upper_bound == b.upper_bound => last.count += b.count,
            _ => out.push(*b),
        }
    }
    *buckets = out;
}

/// Almost-equal on the relative scale, as Prometheus compares floats.
fn almost_equal(a: f64, b: f64, epsilon: f64) -> bool {
    const MIN_NORMAL: f64 = f64::MIN_POSITIVE;
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    let abs_sum = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || abs_sum < MIN_NORMAL {
        return diff < epsilon * MIN_NORMAL;
    }
    diff / abs_sum.min(f64::MAX) < epsilon
}

/// Silently levels numerically insignificant differences between neighbouring counts
/// (either direction), then raises every count that is below the previous accepted
/// count. Returns the facts for [`BucketQuantile`] (value unset).
fn ensure_monotonic(buckets: &mut [Bucket]) -> BucketQuantile {
    let mut r = BucketQuantile::plain(f64::NAN);
    r.min_bucket = f64::INFINITY;
    r.max_bucket = f64::NEG_INFINITY;
    let Some(first) = buckets.first() else {
        return r;
    };
    let mut prev = first.count;
    for b in buckets.iter_mut().skip(1) {
        let curr = b.count;
        if curr == prev {
            continue;
        }
        if almost_equal(prev, curr, SMALL_DELTA_TOLERANCE) {
            b.count = prev;
            r.fixed_precision = true;
            continue;
        }
        if curr < prev {
            b.count = prev;
            r.forced_monotonic = true;
            r.min_bucket = r.min_bucket.min(b.upper_bound);
            r.max_bucket = r.max_bucket.max(b.upper_bound);
            r.max_diff = r.max_diff.max(prev - curr);
            continue;
        }
        prev = curr;
    }
    r
}

/// The smallest `i` in `0..n` for which `pred(i)` holds, assuming `pred` is false then
/// true; `n` if none. The midpoint sequence is that of Go's `sort.Search`.
fn bisect(n: usize, pred: impl Fn(usize) -> bool) -> usize {
    let (mut lo, mut hi) = (0usize, n);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if pred(mid) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    lo
}

/// `histogram_quantile(q, buckets)` for one classic histogram.
///
/// - NaN `q` gives NaN; `q < 0` gives -Inf; `q > 1` gives +Inf.
/// - Buckets are sorted by upper bound; without a +Inf bucket the result is NaN.
///   Buckets with the same bound are merged; non-monotonic counts are fixed (reported
///   in the result).
/// - Fewer than two buckets, or zero observations, give NaN.
/// - The quantile is interpolated linearly inside its bucket. The lowest bucket's lower
///   bound is 0 when its upper bound is positive; if the lowest bucket's upper bound is
///   <= 0, that bound is returned. A quantile in the +Inf bucket returns the second
///   highest upper bound.
///
/// `buckets` is left sorted (and may be shortened by merging).
pub fn bucket_quantile(q: f64, buckets: &mut Vec<Bucket>) -> BucketQuantile {
    if q.is_nan() {
        return BucketQuantile::plain(f64::NAN);
    }
    if q < 0.0 {
        return BucketQuantile::plain(f64::NEG_INFINITY);
    }
    if q > 1.0 {
        return BucketQuantile::plain(f64::INFINITY);
    }
    sort_buckets(buckets);
    match buckets.last() {
        Some(b) if b.upper_bound == f64::INFINITY => {}
        _ => return BucketQuantile::plain(f64::NAN),
    }
    coalesce(buckets);
    let mut r = ensure_monotonic(buckets);
    r.value = f64::NAN;

    let n = buckets.len();
    if n < 2 {
        return r;
    }
    let observations = buckets.get(n - 1).map_or(0.0, |b| b.count);
    if observations == 0.0 {
        return r;
    }
    let mut rank = q * observations;
    // First bucket (excluding +Inf) whose count reaches the rank. The bisection is the
    // exact one Prometheus uses, so that NaN counts (for which the predicate is not
    // monotonic) land in the same bucket.
    let b = bisect(n - 1, |i| buckets.get(i).is_some_and(|x| x.count >= rank));
    if b == n - 1 {
        r.value = buckets.get(n - 2).map_or(f64::NAN, |x| x.upper_bound);
        return r;
    }
    let (Some(cur), prev) = (
        buckets.get(b),
        b.checked_sub(1).and_then(|i| buckets.get(i)),
    ) else {
        return r;
    };
    if b == 0 && cur.upper_bound <= 0.0 {
        r.value = cur.upper_bound;
        return r;
    }
    let bucket_end = cur.upper_bound;
    let mut count = cur.count;
    let mut bucket_start = 0.0;
    if let Some(p) = prev {
        bucket_start = p.upper_bound;
        count -= p.count;
        rank -= p.count;
    }
    r.value = bucket_start + (bucket_end - bucket_start) * (rank / count);
    r
}

/// `histogram_fraction(lower, upper, buckets)` for one classic histogram: the estimated
/// fraction of observations in `[lower, upper]`, interpolating linearly inside buckets.
///
/// - Empty input, no +Inf bucket, zero observations, or a NaN bound give NaN.
/// - `lower >= upper` gives 0.
/// - The lowest bucket's lower bound is 0 when its upper bound is positive, else -Inf;
///   no observations are attributed to the part of a bucket that extends to ±Inf.
pub fn bucket_fraction(lower: f64, upper: f64, buckets: &mut Vec<Bucket>) -> f64 {
    if buckets.is_empty() {
        return f64::NAN;
    }
    sort_buckets(buckets);
    match buckets.last() {
        Some(b) if b.upper_bound == f64::INFINITY => {}
        _ => return f64::NAN,
    }
    coalesce(buckets);
    let count = buckets.last().map_or(0.0, |b| b.count);
    if count == 0.0 || lower.is_nan() || upper.is_nan() {
        return f64::NAN;
    }
    if lower >= upper {
        return 0.0;
    }

    let mut rank = 0.0;
    let (mut lower_rank, mut upper_rank) = (0.0, 0.0);
    let (mut lower_set, mut upper_set) = (false, false);
    let mut lower_bound = match buckets.first() {
        Some(b) if b.upper_bound <= 0.0 => f64::NEG_INFINITY,
        _ => 0.0,
    };
    let mut prev_upper: Option<f64> = None;
    for b in buckets.iter() {
        if let Some(p) = prev_upper {
            lower_bound = p;
        }
        prev_upper = Some(b.upper_bound);
        let upper_bound = b.upper_bound;
        let interpolate = |v: f64| -> f64 {
            if lower_bound == f64::NEG_INFINITY {
                return b.count;
            }
            rank + (b.count - rank) * (v - lower_bound) / (upper_bound - lower_bound)
        };
        if !lower_set && lower_bound >= lower {
            lower_rank = rank;
            lower_set = true;
        }
        if !upper_set && lower_bound >= upper {
            upper_rank = rank;
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        if !lower_set && lower_bound < lower && upper_bound > lower {
            lower_rank = interpolate(lower);
            lower_set = true;
        }
        if !upper_set && lower_bound < upper && upper_bound > upper {
            upper_rank = interpolate(upper);
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        rank = b.count;
    }
    if !lower_set || lower_rank > count {
        lower_rank = count;
    }
    if !upper_set || upper_rank > count {
        upper_rank = count;
    }
    (upper_rank - lower_rank) / count
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bs(pairs: &[(f64, f64)]) -> Vec<Bucket> {
        pairs.iter().map(|(u, c)| Bucket::new(*u, *c)).collect()
    }

    const INF: f64 = f64::INFINITY;

    #[test]
    fn quantile_special_q() {
        let mut b = bs(&[(1.0, 1.0), (INF, 2.0)]);
        assert!(bucket_quantile(f64::NAN, &mut b).value.is_nan());
        assert_eq!(bucket_quantile(-1.0, &mut b).value, f64::NEG_INFINITY);
        assert_eq!(bucket_quantile(1.01, &mut b).value, INF);
    }

    #[test]
    fn quantile_needs_inf_bucket_and_two_buckets() {
        let mut no_inf = bs(&[(1.0, 1.0), (2.0, 2.0)]);
        assert!(bucket_quantile(0.5, &mut no_inf).value.is_nan());
        let mut only_inf = bs(&[(INF, 5.0)]);
        assert!(bucket_quantile(0.5, &mut only_inf).value.is_nan());
        let mut empty = bs(&[(1.0, 0.0), (INF, 0.0)]);
        assert!(bucket_quantile(0.5, &mut empty).value.is_nan());
        let mut none: Vec<Bucket> = Vec::new();
        assert!(bucket_quantile(0.5, &mut none).value.is_nan());
    }

    #[test]
    fn quantile_interpolates() {
        // 10 obs <= 1, 20 <= 2, 30 <= 4, 40 total.
        let mut b = bs(&[(4.0, 30.0), (INF, 40.0), (1.0, 10.0), (2.0, 20.0)]);
        // rank 10 -> first bucket, 0 + 1 * 10/10.
        assert_eq!(bucket_quantile(0.25, &mut b).value, 1.0);
        // rank 20 -> second bucket end.
        assert_eq!(bucket_quantile(0.5, &mut b).value, 2.0);
        // rank 25 -> third bucket: 2 + 2 * 5/10.
        assert_eq!(bucket_quantile(0.625, &mut b).value, 3.0);
        // rank 36 -> +Inf bucket: second-highest bound.
        assert_eq!(bucket_quantile(0.9, &mut b).value, 4.0);
        // rank 0 -> first bucket with count >= 0: lower bound 0.
        assert_eq!(bucket_quantile(0.0, &mut b).value, 0.0);
        // Buckets left sorted.
        assert_eq!(b.first().unwrap().upper_bound, 1.0);
    }

    #[test]
    fn quantile_negative_first_bucket() {
        let mut b = bs(&[(-1.0, 5.0), (0.0, 10.0), (INF, 10.0)]);
        assert_eq!(bucket_quantile(0.2, &mut b).value, -1.0);
        // rank 7.5 -> bucket (-1, 0]: -1 + 1 * 2.5/5
        assert_eq!(bucket_quantile(0.75, &mut b).value, -0.5);
    }

    #[test]
    fn quantile_monotonicity_and_duplicates() {
        // 0.1:2, 1:1, 10:5, 100:4, 1000:9, +Inf:8
        let mut b = bs(&[
            (0.1, 2.0),
            (1.0, 1.0),
            (10.0, 5.0),
            (100.0, 4.0),
            (1000.0, 9.0),
            (INF, 8.0),
        ]);
        let r = bucket_quantile(0.5, &mut b);
        assert!(r.forced_monotonic);
        assert!(!r.fixed_precision);
        assert_eq!((r.min_bucket, r.max_bucket, r.max_diff), (1.0, INF, 1.0));
        // Fixed counts 2,2,5,5,9,9: rank 4.5 -> (1,10]: 1 + 9 * 2.5/3
        assert_eq!(r.value, 1.0 + 9.0 * 2.5 / 3.0);
        // Duplicate bounds are summed.
        let mut d = bs(&[(1.0, 1.0), (1.0, 1.0), (INF, 4.0)]);
        let r = bucket_quantile(0.5, &mut d);
        assert!(!r.forced_monotonic);
        assert_eq!(r.value, 1.0);
        assert_eq!(d.len(), 2);
    }

    #[test]
    fn quantile_with_nan_counts() {
        // A NaN count never reaches the rank; with 4 finite buckets the bisection
        // probes index 2 (NaN: not reached), then 3 (reached).
        let mut b = bs(&[
            (1.0, 1.0),
            (2.0, 2.0),
            (3.0, f64::NAN),
            (4.0, 4.0),
            (INF, 4.0),
        ]);
        let r = bucket_quantile(0.5, &mut b);
        // Rank 2 is searched among 1, 2, NaN, 4: the first probe (index 2, NaN) fails,
        // the second (index 3) succeeds, so the bucket is (3, 4], whose start count is
        // NaN: the interpolation gives NaN. (A different bisection order could stop at
        // another bucket and return a number.)
        assert!(r.value.is_nan(), "{}", r.value);
        // NaN observations in total: the rank is NaN, never reached: second-highest bound.
        let mut t = bs(&[(1.0, 1.0), (2.0, 2.0), (INF, f64::NAN)]);
        assert_eq!(bucket_quantile(0.5, &mut t).value, 2.0);
    }

    #[test]
    fn bisect_matches_first_true() {
        let v = [1, 3, 5, 7, 9];
        for target in 0..11 {
            let want = v.iter().position(|x| *x >= target).unwrap_or(v.len());
            assert_eq!(bisect(v.len(), |i| v[i] >= target), want);
        }
        assert_eq!(bisect(0, |_| true), 0);
    }

    #[test]
    fn quantile_tiny_deltas_are_ignored() {
        let mut b = bs(&[(1.0, 10.0), (2.0, 10.0 - 1e-14), (INF, 10.0)]);
        let r = bucket_quantile(0.5, &mut b);
        assert!(r.fixed_precision);
        assert!(!r.forced_monotonic);
        assert_eq!(r.value, 0.5);
    }

    #[test]
    fn fraction_basics() {
        let mut b = bs(&[(1.0, 10.0), (2.0, 20.0), (4.0, 30.0), (INF, 40.0)]);
        assert_eq!(bucket_fraction(0.0, 1.0, &mut b), 0.25);
        assert_eq!(bucket_fraction(0.0, 0.5, &mut b), 0.125);
        assert_eq!(bucket_fraction(1.0, 3.0, &mut b), 15.0 / 40.0);
        assert_eq!(bucket_fraction(f64::NEG_INFINITY, INF, &mut b), 1.0);
        // The +Inf bucket contributes nothing when interpolating inside it.
        assert_eq!(bucket_fraction(4.0, 100.0, &mut b), 0.0);
        assert_eq!(bucket_fraction(4.0, INF, &mut b), 0.25);
        assert_eq!(bucket_fraction(2.0, 2.0, &mut b), 0.0);
        assert_eq!(bucket_fraction(3.0, 2.0, &mut b), 0.0);
        assert!(bucket_fraction(f64::NAN, 2.0, &mut b).is_nan());
        assert!(bucket_fraction(0.0, f64::NAN, &mut b).is_nan());
        assert_eq!(bucket_fraction(-10.0, -5.0, &mut b), 0.0);
        assert_eq!(bucket_fraction(5.0, 10.0, &mut b), 0.0);
    }

    #[test]
    fn fraction_negative_buckets() {
        // First bound <= 0: lowest bucket reaches down to -Inf.
        let mut b = bs(&[(-2.0, 4.0), (0.0, 8.0), (2.0, 12.0), (INF, 16.0)]);
        // [-1, 1]: lower in (-2,0] at 4 + 4*1/2 = 6; upper in (0,2] at 8 + 4*1/2 = 10.
        assert_eq!(bucket_fraction(-1.0, 1.0, &mut b), 0.25);
        // A bound inside the -Inf bucket takes the bucket's whole count.
        assert_eq!(bucket_fraction(-3.0, 0.0, &mut b), 0.25);
        assert_eq!(bucket_fraction(f64::NEG_INFINITY, 0.0, &mut b), 0.5);
    }

    #[test]
    fn fraction_degenerate_input() {
        let mut none: Vec<Bucket> = Vec::new();
        assert!(bucket_fraction(0.0, 1.0, &mut none).is_nan());
        let mut no_inf = bs(&[(1.0, 1.0)]);
        assert!(bucket_fraction(0.0, 1.0, &mut no_inf).is_nan());
        let mut zero = bs(&[(1.0, 0.0), (INF, 0.0)]);
        assert!(bucket_fraction(0.0, 1.0, &mut zero).is_nan());
    }

    proptest::proptest! {
        /// histogram_fraction(-Inf, histogram_quantile(q)) is q again whenever the
        /// quantile falls into a finite bucket (positive bounds, increasing counts).
        #[test]
        fn fraction_inverts_quantile(
            steps in proptest::collection::vec((0.1f64..10.0, 1u32..20), 1..8),
            extra in 0u32..5,
            q in 0.0f64..=1.0,
        ) {
            let mut buckets = Vec::new();
            let (mut bound, mut count) = (0.0, 0.0);
            for (width, n) in &steps {
                bound += width;
                count += f64::from(*n);
                buckets.push(Bucket::new(bound, count));
            }
            let finite_total = count;
            let total = count + f64::from(extra);
            buckets.push(Bucket::new(INF, total));
            proptest::prop_assume!(q * total <= finite_total);
            let x = bucket_quantile(q, &mut buckets.clone()).value;
            let f = bucket_fraction(f64::NEG_INFINITY, x, &mut buckets);
            proptest::prop_assert!((f - q).abs() <= 1e-9, "q={} x={} f={}", q, x, f);
        }

        /// The quantile is monotonic in q and stays within [0, highest finite bound].
        #[test]
        fn quantile_is_monotonic(
            steps in proptest::collection::vec((0.1f64..10.0, 0u32..20), 1..8),
            q1 in 0.0f64..=1.0,
            q2 in 0.0f64..=1.0,
        ) {
            let mut buckets = Vec::new();
            let (mut bound, mut count) = (0.0, 0.0);
            for (width, n) in &steps {
                bound += width;
                count += f64::from(*n);
                buckets.push(Bucket::new(bound, count));
            }
            buckets.push(Bucket::new(INF, count + 1.0));
            let (lo, hi) = if q1 <= q2 { (q1, q2) } else { (q2, q1) };
            let a = bucket_quantile(lo, &mut buckets.clone()).value;
            let b = bucket_quantile(hi, &mut buckets).value;
            proptest::prop_assert!(a <= b + 1e-9 * b.abs(), "{} > {}", a, b);
            proptest::prop_assert!(a >= 0.0 && b <= bound + 1e-9);
        }
    }

    #[test]
    fn le_parsing() {
        assert_eq!(parse_le("0.5"), Some(0.5));
        assert_eq!(parse_le("+Inf"), Some(INF));
        assert_eq!(parse_le("inf"), Some(INF));
        assert_eq!(parse_le("1e3"), Some(1000.0));
        assert!(parse_le("NaN").unwrap().is_nan());
        assert_eq!(parse_le(""), None);
        assert_eq!(parse_le("Hello World"), None);
        assert_eq!(parse_le("1_0"), None);
        assert_eq!(parse_le(" 1"), None);
        assert_eq!(parse_le("-Infinity"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_le("+NaN"), None);
        assert_eq!(parse_le("1E-3"), Some(0.001));
    }
}
