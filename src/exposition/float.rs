//! Number syntax of the exposition formats: Go's `strconv.ParseFloat` (as Prometheus
//! uses it, without hexadecimal floats and digit separators) and the OpenMetrics
//! canonical float text.

/// The NaN bit pattern Go's `math.NaN()` returns and Prometheus stores for parsed
/// `NaN` values (`value.NormalNaN`).
pub const NORMAL_NAN_BITS: u64 = 0x7ff8_0000_0000_0001;

/// Powers of ten exactly representable as `f64`.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// Largest integer below which every integer is exactly representable as `f64`.
const EXACT_INT_LIMIT: u64 = 1 << 53;

/// Case-insensitive comparison of ASCII bytes.
fn eq_ignore_case(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.eq_ignore_ascii_case(y))
}

/// Parses `s` as Go's `strconv.ParseFloat(s, 64)` does, minus the forms Prometheus
/// refuses (hexadecimal floats, `_` separators): `[+-]digits[.digits][e[+-]digits]`
/// (at least one mantissa digit), `[+-]inf`/`[+-]infinity` and `nan` in any case.
/// A finite number too large for `f64` is an error (Go's `ErrRange`); one too small
/// rounds to zero. `NaN` gets the bit pattern [`NORMAL_NAN_BITS`].
pub fn parse_go_float(s: &[u8]) -> Option<f64> {
    if let Some(v) = parse_fast_decimal(s) {
        return Some(v);
    }
    parse_slow(s)
}

/// Exact fast path: `[-]digits[.digits]` (at most 19 characters) whose digits form an
/// integer below 2^53. The quotient of two exact
/// `f64` is correctly rounded, so this equals the correctly rounded decimal value.
#[inline]
fn parse_fast_decimal(s: &[u8]) -> Option<f64> {
    let (neg, digits) = match s.first()? {
        b'-' => (true, s.get(1..)?),
        _ => (false, s),
    };
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    let mut m: u64 = 0;
    let mut frac: Option<usize> = None;
    let mut nd = 0usize;
    for (i, &b) in digits.iter().enumerate() {
        match b {
            b'0'..=b'9' => {
                m = m * 10 + u64::from(b - b'0');
                nd += 1;
            }
            b'.' if frac.is_none() => frac = Some(i + 1),
            _ => return None,
        }
    }
    if nd == 0 || m >= EXACT_INT_LIMIT {
        return None;
    }
    let k = frac.map_or(0, |f| digits.len() - f);
    let v = m as f64 / *POW10.get(k)?;
    Some(if neg { -v } else { v })
}

#[cold]
fn parse_slow(s: &[u8]) -> Option<f64> {
    let (neg, body) = match s.first()? {
        b'+' => (false, s.get(1..)?),
        b'-' => (true, s.get(1..)?),
        _ => (false, s),
    };
    if eq_ignore_case(body, b"inf") || eq_ignore_case(body, b"infinity") {
        return Some(if neg {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        });
    }
    if eq_ignore_case(s, b"nan") {
        return Some(f64::from_bits(NORMAL_NAN_BITS));
    }
    // Decimal syntax check.
    let mut i = 0;
    let mut mantissa_digits = 0;
    while let Some(b'0'..=b'9') = body.get(i) {
        i += 1;
        mantissa_digits += 1;
    }
    if body.get(i) == Some(&b'.') {
        i += 1;
        while let Some(b'0'..=b'9') = body.get(i) {
            i += 1;
            mantissa_digits += 1;
        }
    }
    if mantissa_digits == 0 {
        return None;
    }
    if matches!(body.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(body.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let start = i;
        while let Some(b'0'..=b'9') = body.get(i) {
            i += 1;
        }
        if i == start {
            return None;
        }
    }
    if i != body.len() {
        return None;
    }
    // Syntax is plain ASCII decimal from here on.
    let text = std::str::from_utf8(s).ok()?;
    let v: f64 = text.parse().ok()?;
    if v.is_infinite() {
        // Go reports overflow as an error.
        return None;
    }
    Some(v)
}

/// A timestamp in seconds (OpenMetrics) to milliseconds, truncated toward zero as
/// Prometheus does (`int64(ts * 1000)`). `None` for syntax errors, NaN, infinities and
/// values outside the `i64` millisecond range.
#[inline]
pub fn parse_seconds_to_millis(s: &[u8]) -> Option<i64> {
    let f = parse_go_float(s)?;
    let ms = f * 1000.0;
    // i64::MAX as f64 rounds up to 2^63, so the upper bound must be exclusive.
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    if !(-TWO_63..TWO_63).contains(&ms) {
        return None;
    }
    Some(ms as i64)
}

/// A text-format timestamp: decimal digits only (no sign), as `int64` milliseconds.
#[inline]
pub fn parse_millis(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 19 {
        return None;
    }
    let mut v: i64 = 0;
    for &b in s {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(i64::from(b - b'0'))?;
    }
    Some(v)
}

/// Formats `f` as OpenMetrics canonical float text, the way Prometheus normalises
/// `le` and `quantile` label values: `NaN`, `+Inf`, `-Inf`, otherwise Go's shortest
/// `%g` form (`1e+06`, `0.005`, `1.5e-07`) with `.0` appended when it has neither a
/// decimal point nor an exponent (`1` → `1.0`).
pub fn format_openmetrics_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".to_string();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.to_string();
    }
    // Rust's `{:e}` gives the shortest round-trip digits: `-1.2345e-7`, `0e0`.
    let sci = format!("{f:e}");
    let (mant, exp) = match sci.split_once('e') {
        Some(x) => x,
        None => return sci,
    };
    let exp: i32 = exp.parse().unwrap_or(0);
    let (neg, mant) = match mant.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mant),
    };
    let digits: String = mant.chars().filter(|c| *c != '.').collect();
    let mut out = String::with_capacity(digits.len() + 8);
    if neg {
        out.push('-');
    }
    if !(-4..6).contains(&exp) {
        // d[.ddd]e±XX
        let mut chars = digits.chars();
        if let Some(first) = chars.next() {
            out.push(first);
        }
        let rest: String = chars.collect();
        if !rest.is_empty() {
            out.push('.');
            out.push_str(&rest);
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        let a = exp.unsigned_abs();
        if a < 10 {
            out.push('0');
        }
        out.push_str(&a.to_string());
        return out;
    }
    // Fixed notation: the decimal point goes after `exp + 1` digits.
    let dp = exp + 1;
    if dp <= 0 {
        out.push_str("0.");
        for _ in 0..(-dp) {
            out.push('0');
        }
        out.push_str(&digits);
    } else {
        let dp = dp as usize;
        if digits.len() <= dp {
            out.push_str(&digits);
            for _ in digits.len()..dp {
                out.push('0');
            }
        } else {
            out.push_str(digits.get(..dp).unwrap_or(""));
            out.push('.');
            out.push_str(digits.get(dp..).unwrap_or(""));
        }
    }
    if !out.contains('.') {
        out.push_str(".0");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Option<f64> {
        parse_go_float(s.as_bytes())
    }

    #[test]
    fn go_float_syntax() {
        assert_eq!(p("1"), Some(1.0));
        assert_eq!(p("-1.5"), Some(-1.5));
        assert_eq!(p("+1.5"), Some(1.5));
        assert_eq!(p("1."), Some(1.0));
        assert_eq!(p(".5"), Some(0.5));
        assert_eq!(p("1e3"), Some(1000.0));
        assert_eq!(p("1E+3"), Some(1000.0));
        assert_eq!(p("2.5e-3"), Some(0.0025));
        assert_eq!(p("0.1"), Some(0.1));
        assert_eq!(p("123456789012345678901234"), Some(1.2345678901234568e23));
        assert_eq!(p("1e-400"), Some(0.0));
        assert_eq!(p("+Inf"), Some(f64::INFINITY));
        assert_eq!(p("-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(p("Infinity"), Some(f64::INFINITY));
        assert_eq!(p("-INFINITY"), Some(f64::NEG_INFINITY));
        assert_eq!(p("NaN").map(f64::to_bits), Some(NORMAL_NAN_BITS));
        assert_eq!(p("nan").map(f64::to_bits), Some(NORMAL_NAN_BITS));
        for bad in [
            "", "+", "-", ".", "e5", "1e", "1e+", "1.2.3", "0x10", "0x1p-2", "1_000", "infin",
            "+nan", "-NaN", "1e400", "-1e400", " 1", "1 ", "--1", "1f", "١",
        ] {
            assert_eq!(p(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn fast_path_is_correctly_rounded() {
        for s in [
            "0.1",
            "0.3",
            "37.123456789012345",
            "1699920000.015",
            "9007199254740991",
            "9007199254740993",
            "0.000000000000000000001",
            "123.456",
        ] {
            assert_eq!(p(s), s.parse::<f64>().ok(), "{s}");
        }
    }

    #[test]
    fn seconds_truncate_like_go() {
        assert_eq!(
            parse_seconds_to_millis(b"1699920000.015"),
            Some(1_699_920_000_015)
        );
        assert_eq!(parse_seconds_to_millis(b"1.5"), Some(1500));
        assert_eq!(parse_seconds_to_millis(b"-0.0015"), Some(-1));
        assert_eq!(parse_seconds_to_millis(b"1e3"), Some(1_000_000));
        assert_eq!(parse_seconds_to_millis(b"NaN"), None);
        assert_eq!(parse_seconds_to_millis(b"+Inf"), None);
        assert_eq!(parse_seconds_to_millis(b"1e17"), None);
        assert_eq!(parse_millis(b"123"), Some(123));
        assert_eq!(parse_millis(b"-1"), None);
        assert_eq!(parse_millis(b"99999999999999999999"), None);
    }

    #[test]
    fn openmetrics_float_text() {
        let cases: &[(f64, &str)] = &[
            (1.0, "1.0"),
            (0.005, "0.005"),
            (2.5, "2.5"),
            (10.0, "10.0"),
            (100000.0, "100000.0"),
            (1e6, "1e+06"),
            (1234567.0, "1.234567e+06"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (1e100, "1e+100"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (-2.0, "-2.0"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (f64::NAN, "NaN"),
            (0.1 + 0.2, "0.30000000000000004"),
        ];
        for (f, want) in cases {
            assert_eq!(format_openmetrics_float(*f), *want, "{f}");
        }
    }
}
