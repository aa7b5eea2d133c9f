//! Date functions: `year`, `month`, `day_of_month`, `day_of_week`, `day_of_year`,
//! `days_in_month`, `hour`, `minute`, all in UTC.
//!
//! The argument is a Unix timestamp in seconds. Like Prometheus, the fraction is
//! truncated towards zero before the calendar is computed (`-0.5` is second 0, i.e.
//! 1970-01-01). The proleptic Gregorian calendar is used for all years.
//!
//! NaN, ±Inf and values beyond the 64-bit seconds range have no calendar date; these
//! functions return NaN for them.

/// A calendar date and time of day in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    /// The year (may be negative or above 9999).
    pub year: i64,
    /// Month, 1..=12.
    pub month: u32,
    /// Day of the month, 1..=31.
    pub day: u32,
    /// Hour, 0..=23.
    pub hour: u32,
    /// Minute, 0..=59.
    pub minute: u32,
    /// Second, 0..=59.
    pub second: u32,
    /// Day of the week, 0 = Sunday .. 6 = Saturday.
    pub weekday: u32,
    /// Day of the year, 1..=366.
    pub yearday: u32,
}

/// Whether `year` is a leap year in the proleptic Gregorian calendar.
pub fn is_leap_year(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

/// The number of days in `month` (1..=12) of `year`.
pub fn days_in_month_of(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ => {
            if is_leap_year(year) {
                29
            } else {
                28
            }
        }
    }
}

/// The UTC calendar date of Unix second `secs`.
pub fn civil_from_unix(secs: i64) -> Civil {
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Days since 0000-03-01, split into 400-year eras (146097 days each).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy_mar = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365], from March 1st
    let mp = (5 * doy_mar + 2) / 153; // [0, 11], March = 0
    let day = (doy_mar - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    // Day of the year from January 1st.
    let cumulative = [0u32, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
    let before = cumulative
        .get(month.saturating_sub(1) as usize)
        .copied()
        .unwrap_or(0);
    let leap_extra = u32::from(month > 2 && is_leap_year(year));
    let yearday = before + leap_extra + day;
    // 1970-01-01 was a Thursday (4).
    let weekday = (days + 4).rem_euclid(7) as u32;
    Civil {
        year,
        month,
        day,
        hour: (sod / 3600) as u32,
        minute: (sod % 3600 / 60) as u32,
        second: (sod % 60) as u32,
        weekday,
        yearday,
    }
}

/// The calendar date of a timestamp in float seconds, or `None` when it has none (NaN,
/// ±Inf, out of the 64-bit range).
pub fn civil_from_seconds(v: f64) -> Option<Civil> {
    // 2^63 is exactly representable; anything at or above it does not fit an i64.
    // NaN and ±Inf are outside the range too.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    if !(-LIMIT..LIMIT).contains(&v) {
        return None;
    }
    Some(civil_from_unix(v.trunc() as i64))
}

fn date_fn(v: f64, f: impl Fn(&Civil) -> f64) -> f64 {
    civil_from_seconds(v).map_or(f64::NAN, |c| f(&c))
}

/// `year(v)`.
pub fn year(v: f64) -> f64 {
    date_fn(v, |c| c.year as f64)
}

/// `month(v)`: 1..=12.
pub fn month(v: f64) -> f64 {
    date_fn(v, |c| f64::from(c.month))
}

/// `day_of_month(v)`: 1..=31.
pub fn day_of_month(v: f64) -> f64 {
    date_fn(v, |c| f64::from(c.day))
}

/// `day_of_week(v)`: 0 (Sunday) ..= 6 (Saturday).
pub fn day_of_week(v: f64) -> f64 {
    date_fn(v, |c| f64::from(c.weekday))
}

/// `day_of_year(v)`: 1..=366.
pub fn day_of_year(v: f64) -> f64 {
    date_fn(v, |c| f64::from(c.yearday))
}

/// `days_in_month(v)`: 28..=31.
pub fn days_in_month(v: f64) -> f64 {
    date_fn(v, |c| f64::from(days_in_month_of(c.year, c.month)))
}

/// `hour(v)`: 0..=23.
pub fn hour(v: f64) -> f64 {
    date_fn(v, |c| f64::from(c.hour))
}

/// `minute(v)`: 0..=59.
pub fn minute(v: f64) -> f64 {
    date_fn(v, |c| f64::from(c.minute))
}

/// The timestamp in seconds that the date functions use when called without an
/// argument at evaluation time `t_ms` (`vector(time())`, truncated to whole seconds).
pub fn eval_time_seconds(t_ms: i64) -> f64 {
    // Integer division truncates towards zero, as the upstream `ts / 1000` does.
    (t_ms / 1000) as f64
}

/// `timestamp(v)`: a sample's timestamp in seconds.
pub fn timestamp_seconds(t_ms: i64) -> f64 {
    t_ms as f64 / 1000.0
}

/// `time()`: the evaluation time in seconds.
pub fn time_seconds(eval_t_ms: i64) -> f64 {
    eval_t_ms as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch() {
        let c = civil_from_unix(0);
        assert_eq!(
            (c.year, c.month, c.day, c.hour, c.minute),
            (1970, 1, 1, 0, 0)
        );
        assert_eq!(c.weekday, 4);
        assert_eq!(c.yearday, 1);
        assert_eq!(year(0.0), 1970.0);
        assert_eq!(days_in_month(0.0), 31.0);
    }

    #[test]
    fn known_dates() {
        // 2006-01-02 22:04:05 UTC, a Monday.
        let v = 1_136_239_445.0;
        assert_eq!(year(v), 2006.0);
        assert_eq!(month(v), 1.0);
        assert_eq!(day_of_month(v), 2.0);
        assert_eq!(day_of_week(v), 1.0);
        assert_eq!(hour(v), 22.0);
        assert_eq!(minute(v), 4.0);
        assert_eq!(day_of_year(v), 2.0);
        // 2008-12-31 23:59:59 and 2009-01-01 00:00:00.
        assert_eq!(year(1_230_767_999.0), 2008.0);
        assert_eq!(year(1_230_768_000.0), 2009.0);
        // 2016-02-29 23:59:59 then 2016-03-01.
        assert_eq!(
            (month(1_456_790_399.0), day_of_month(1_456_790_399.0)),
            (2.0, 29.0)
        );
        assert_eq!(
            (month(1_456_790_400.0), day_of_month(1_456_790_400.0)),
            (3.0, 1.0)
        );
        assert_eq!(day_of_year(1_483_191_420.0), 366.0);
        assert_eq!(day_of_year(1_672_493_820.0), 365.0);
        assert_eq!(days_in_month(1_454_284_800.0), 29.0);
        assert_eq!(days_in_month(1_485_907_200.0), 28.0);
        // 2000-02-15 (leap: divisible by 400), 1900-02-15 (not leap).
        assert_eq!(days_in_month(950_572_800.0), 29.0);
        assert_eq!(days_in_month(-2_205_100_800.0), 28.0);
    }

    #[test]
    fn negative_and_fractional() {
        // -1 s is 1969-12-31 23:59:59, a Wednesday.
        let c = civil_from_unix(-1);
        assert_eq!(
            (c.year, c.month, c.day, c.hour, c.minute, c.second),
            (1969, 12, 31, 23, 59, 59)
        );
        assert_eq!(c.weekday, 3);
        assert_eq!(c.yearday, 365);
        // Truncation towards zero: -0.5 is second 0.
        assert_eq!(year(-0.5), 1970.0);
        assert_eq!(hour(-1.5), 23.0);
        assert_eq!(minute(59.9), 0.0);
        // 0001-01-01 is -62135596800 and was a Monday.
        let d = civil_from_unix(-62_135_596_800);
        assert_eq!((d.year, d.month, d.day, d.weekday), (1, 1, 1, 1));
    }

    #[test]
    fn every_day_of_a_span_is_consistent() {
        // Walk 1960..2040 day by day and check the calendar increments.
        let mut prev = civil_from_unix(-315_619_200); // 1960-01-01
        assert_eq!((prev.year, prev.month, prev.day), (1960, 1, 1));
        let mut t = -315_619_200i64;
        for _ in 0..(80 * 366) {
            t += 86_400;
            let c = civil_from_unix(t);
            assert_eq!(c.weekday, (prev.weekday + 1) % 7);
            if c.day == 1 {
                assert_eq!(prev.day, days_in_month_of(prev.year, prev.month));
            } else {
                assert_eq!(c.day, prev.day + 1);
            }
            if c.yearday == 1 {
                assert_eq!((c.month, c.day), (1, 1));
                assert_eq!(c.year, prev.year + 1);
            } else {
                assert_eq!(c.yearday, prev.yearday + 1);
            }
            prev = c;
        }
    }

    #[test]
    fn no_date_for_nan_or_inf() {
        assert!(year(f64::NAN).is_nan());
        assert!(month(f64::INFINITY).is_nan());
        assert!(hour(f64::NEG_INFINITY).is_nan());
        assert!(day_of_week(1e300).is_nan());
        assert!(!year(9.2e18).is_nan());
    }

    #[test]
    fn helpers() {
        assert_eq!(eval_time_seconds(1_999), 1.0);
        assert_eq!(eval_time_seconds(-1_999), -1.0);
        assert_eq!(timestamp_seconds(1_500), 1.5);
        assert_eq!(time_seconds(3_000_000), 3000.0);
    }
}
