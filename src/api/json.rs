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
    if f.abs() < DIRECT_INT_LIMIT && f.trunc() == f && (f != 0.0 || f.is_sign_positive()) {
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
            let _ = write!(out, "{f}");
        }
    }
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
        push_str(out, &l.name);
        out.push(':');
        push_str(out, &l.value);
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
