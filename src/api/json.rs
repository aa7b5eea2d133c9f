//! JSON rendering of query results in Prometheus's exact number formats.
//!
//! Sample values are strings formatted like Go's `strconv.FormatFloat(f, 'f' or 'e', -1)`
//! (`"NaN"`, `"+Inf"`, `"1e-07"`); timestamps are unix seconds with up to 3 decimals.

use std::fmt::Write;

use crate::model::Labels;

/// Appends the decimal digits of `n` (with a `-` when negative), without going through
/// the formatting machinery: query results hold many timestamps and integral values.
pub fn push_int(out: &mut String, n: i64) {
    out.push_str(itoa::Buffer::new().format(n));
}

/// Integral values below this magnitude are printed as integers directly (they convert
/// to `i64` exactly and Go prints them without exponent or fraction).
const DIRECT_INT_LIMIT: f64 = 1e15;

/// Appends `f` as Prometheus renders a sample value (without quotes).
pub fn push_float(out: &mut String, f: f64) {
    if f.abs() < DIRECT_INT_LIMIT && (f as i64) as f64 == f && (f != 0.0 || f.is_sign_positive()) {
        push_int(out, f as i64);
    } else if f.is_nan() {
        out.push_str("NaN");
    } else if f == f64::INFINITY {
        out.push_str("+Inf");
    } else if f == f64::NEG_INFINITY {
        out.push_str("-Inf");
    } else {
        let abs = f.abs();
        if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
            // Go's 'e' format: shortest mantissa, exponent with sign and at least 2 digits.
            let s = format!("{f:e}");
            let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
            let (sign, digits) = match exp.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', exp),
            };
            let _ = write!(out, "{mant}e{sign}{digits:0>2}");
        } else {
            push_plain_decimal(out, f);
        }
    }
}

/// Appends finite, non-zero `f` in plain decimal notation with the shortest digits that
/// read back as `f` (what `{f}` prints). The digits come from `ryu`, which is several
/// times faster than the formatting machinery; only their layout is done here.
fn push_plain_decimal(out: &mut String, f: f64) {
    if !no_shortest_tie(f) {
        let _ = write!(out, "{f}");
        return;
    }
    let mut buf = ryu::Buffer::new();
    let s = buf.format_finite(f);
    if !s.as_bytes().contains(&b'e') {
        // Already plain (`ryu` writes magnitudes from 1e-5 to 1e16 so); integral
        // values carry a `.0` that Go does not print.
        out.push_str(s.strip_suffix(".0").unwrap_or(s));
        return;
    }
    let (neg, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (mant, exp) = match s.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.parse::<i32>().unwrap_or(0)),
        None => (s, 0),
    };
    let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
    // All significant digits, and where the decimal point falls in them.
    let mut digits = [0u8; 40];
    let mut nd = 0usize;
    let mut point = int.len() as i32 + exp;
    for b in int.bytes().chain(frac.bytes()) {
        if nd == 0 && b == b'0' {
            point -= 1;
            continue;
        }
        if let Some(d) = digits.get_mut(nd) {
            *d = b;
            nd += 1;
        }
    }
    while nd > 0 && digits.get(nd - 1) == Some(&b'0') {
        nd -= 1;
    }
    let digits = digits.get(..nd).unwrap_or(&[]);
    let digits = std::str::from_utf8(digits).unwrap_or("0");
    if neg {
        out.push('-');
    }
    if digits.is_empty() {
        out.push('0');
    } else if point <= 0 {
        out.push_str("0.");
        for _ in 0..-point {
            out.push('0');
        }
        out.push_str(digits);
    } else if point as usize >= digits.len() {
        out.push_str(digits);
        for _ in 0..point as usize - digits.len() {
            out.push('0');
        }
    } else {
        let (a, b) = digits.split_at(point as usize);
        out.push_str(a);
        out.push('.');
        out.push_str(b);
    }
}

/// Whether `f` surely has a single closest shortest decimal representation. Two
/// candidates can be equally close only when the exact decimal value of `f` has one digit
/// more than the shortest form (at most 18 significant digits) and ends in 5; there the
/// formatting machinery and `ryu` break the tie differently. A double `m * 2^e` with odd
/// `m` and `e < 0` has exactly the digits of `m * 5^-e`, at least
/// `(bits(m) - 1) * log10(2) - e * log10(5)` of them.
fn no_shortest_tie(f: f64) -> bool {
    let bits = f.to_bits();
    let exp = ((bits >> 52) & 0x7ff) as i64;
    let frac = bits & ((1u64 << 52) - 1);
    let (mut m, mut e) = if exp == 0 {
        (frac, -1074)
    } else {
        (frac | (1u64 << 52), exp - 1075)
    };
    if m == 0 {
        return false;
    }
    let tz = m.trailing_zeros();
    m >>= tz;
    e += i64::from(tz);
    if e >= 0 {
        return false;
    }
    let bit_len = i64::from(64 - m.leading_zeros());
    // in units of 1e-5 digits
    (bit_len - 1) * 30_103 + (-e) * 69_897 >= 19 * 100_000
}

/// A sample value formatted as Prometheus does.
pub fn format_float(f: f64) -> String {
    let mut s = String::new();
    push_float(&mut s, f);
    s
}

/// Appends a millisecond timestamp as unix seconds (`1`, `1.5` → `1.500`).
pub fn push_timestamp(out: &mut String, ms: i64) {
    let secs = ms.div_euclid(1000);
    let frac = ms.rem_euclid(1000);
    if frac == 0 {
        push_int(out, secs);
    } else if ms < 0 && secs < 0 {
        // Go prints the sign then |ms| split into seconds and millis.
        let a = -(ms as i128);
        let _ = write!(out, "-{}.{:03}", a / 1000, a % 1000);
    } else {
        push_int(out, secs);
        out.push('.');
        for d in [frac / 100, frac / 10 % 10, frac % 10] {
            out.push(char::from(b'0' + d as u8));
        }
    }
}

/// Appends a JSON string literal.
pub fn push_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Appends a label set as a JSON object with keys in name order.
pub fn push_labels(out: &mut String, labels: &Labels) {
    out.push('{');
    for (i, l) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_str(out, l.name);
        out.push(':');
        push_str(out, l.value);
    }
    out.push('}');
}

/// Appends `[t,"v"]`.
pub fn push_point(out: &mut String, t: i64, v: f64) {
    out.push('[');
    push_timestamp(out, t);
    out.push_str(",\"");
    push_float(out, v);
    out.push_str("\"]");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_like_go() {
        let cases = [
            (1.0, "1"),
            (0.004856074, "0.004856074"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (1e-7, "1e-07"),
            (1.5e21, "1.5e+21"),
            (1e20, "100000000000000000000"),
            (-2.5e-10, "-2.5e-10"),
            (1e100, "1e+100"),
            (0.000001, "0.000001"),
            (0.0, "0"),
            (-0.0, "-0"),
            (-3.0, "-3"),
            (123456789.0, "123456789"),
            (999999999999999.0, "999999999999999"),
            (1e15, "1000000000000000"),
            (-1e15, "-1000000000000000"),
            (9007199254740993.0, "9007199254740992"),
            (0.5, "0.5"),
            (-12.25, "-12.25"),
        ];
        for (f, want) in cases {
            assert_eq!(format_float(f), want, "{f}");
        }
    }

    #[test]
    fn plain_decimals_like_display() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let check = |f: f64| {
            if !f.is_finite() || f == 0.0 {
                return;
            }
            let mut s = String::new();
            push_plain_decimal(&mut s, f);
            assert_eq!(s, format!("{f}"), "{f:e}");
        };
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            check(f64::from_bits(x));
            // values of the magnitudes queries produce
            let m = (x >> 11) as f64 / (1u64 << 53) as f64;
            let e = (x % 40) as i32 - 12;
            check(m * 10f64.powi(e));
            check(-m * 10f64.powi(e));
            check((m * 1e6).round() / 1e3);
            // few fraction bits: ties between two shortest forms
            check((x >> 20) as f64 / 8.0);
            check((x >> 30) as f64 / 1024.0);
        }
        for f in [
            1e-7,
            1e-6,
            0.1,
            0.3,
            1.5,
            123.456,
            1e15,
            1e16,
            1.5e20,
            9.999e20,
            5e-324,
            1e-300,
            f64::MAX,
            f64::MIN_POSITIVE,
            0.30000000000000004,
            2.5e-5,
            1e21,
            1e22,
        ] {
            check(f);
            check(-f);
        }
    }

    #[test]
    fn integers_like_display() {
        for n in [
            0,
            5,
            9,
            10,
            99,
            100,
            101,
            -7,
            -10,
            1_795_590_000,
            i64::MAX,
            i64::MIN,
            i64::MIN + 1,
        ] {
            let mut s = String::new();
            push_int(&mut s, n);
            assert_eq!(s, n.to_string());
        }
    }

    #[test]
    fn timestamps_like_prometheus() {
        let mut s = String::new();
        for (ms, want) in [
            (2000, "2"),
            (1500, "1.500"),
            (1050, "1.050"),
            (-1500, "-1.500"),
            (0, "0"),
            (-2000, "-2"),
            (1_795_590_000_001, "1795590000.001"),
            (1_795_590_000_010, "1795590000.010"),
            (i64::MIN, "-9223372036854775.808"),
            (i64::MAX, "9223372036854775.807"),
        ] {
            s.clear();
            push_timestamp(&mut s, ms);
            assert_eq!(s, want);
        }
    }

    #[test]
    fn strings_escaped() {
        let mut s = String::new();
        push_str(&mut s, "a\"b\n<");
        assert_eq!(s, r#""a\"b\n\u003c""#);
    }
}
