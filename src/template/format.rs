//! Number formatting as Go's `fmt` prints it, and Prometheus's humanize functions.

/// Splits a finite non-zero `v` into decimal digits and exponent (`d.ddd × 10^exp`),
/// rounded to `prec` significant digits (`None` = shortest round-trip).
fn digits(v: f64, prec: Option<usize>) -> (String, i32) {
    let s = match prec {
        Some(p) => format!("{:.*e}", p.saturating_sub(1), v.abs()),
        None => format!("{:e}", v.abs()),
    };
    let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i32 = e.parse().unwrap_or(0);
    (m.replace('.', ""), exp)
}

fn special(v: f64) -> Option<String> {
    if v.is_nan() {
        Some("NaN".to_string())
    } else if v.is_infinite() {
        Some(if v > 0.0 { "+Inf" } else { "-Inf" }.to_string())
    } else {
        None
    }
}

fn sci(neg: bool, digs: &str, exp: i32) -> String {
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    let mut it = digs.chars();
    out.push(it.next().unwrap_or('0'));
    let rest: String = it.collect();
    if !rest.is_empty() {
        out.push('.');
        out.push_str(&rest);
    }
    out.push('e');
    out.push(if exp < 0 { '-' } else { '+' });
    out.push_str(&format!("{:02}", exp.abs()));
    out
}

fn fixed(neg: bool, digs: &str, exp: i32) -> String {
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    let n = digs.len() as i32;
    if exp < 0 {
        out.push_str("0.");
        for _ in 0..(-exp - 1) {
            out.push('0');
        }
        out.push_str(digs);
    } else if exp + 1 >= n {
        out.push_str(digs);
        for _ in 0..(exp + 1 - n) {
            out.push('0');
        }
    } else {
        let (a, b) = digs.split_at((exp + 1) as usize);
        out.push_str(a);
        out.push('.');
        out.push_str(b);
    }
    out
}

/// Go's `%.<prec>g`.
pub fn go_format_g(v: f64, prec: usize) -> String {
    if let Some(s) = special(v) {
        return s;
    }
    let prec = prec.max(1);
    let neg = v.is_sign_negative() && v != 0.0;
    if v == 0.0 {
        return if v.is_sign_negative() { "-0" } else { "0" }.to_string();
    }
    let (d, exp) = digits(v, Some(prec));
    let d = d.trim_end_matches('0');
    let d = if d.is_empty() { "0" } else { d };
    if exp < -4 || exp >= prec as i32 {
        sci(neg, d, exp)
    } else {
        fixed(neg, d, exp)
    }
}

/// Go's `%v` (`strconv.FormatFloat(v, 'g', -1, 64)`).
pub fn go_format_v(v: f64) -> String {
    if let Some(s) = special(v) {
        return s;
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0" } else { "0" }.to_string();
    }
    let neg = v < 0.0;
    let (d, exp) = digits(v, None);
    let d = d.trim_end_matches('0');
    let d = if d.is_empty() { "0" } else { d };
    let nd = d.len() as i32;
    let dp = exp + 1;
    let mut eprec = 6;
    if eprec > nd && nd >= dp {
        eprec = nd;
    }
    if exp < -4 || exp >= eprec {
        sci(neg, d, exp)
    } else {
        fixed(neg, d, exp)
    }
}

/// Go's `strconv.FormatFloat(v, 'e', -1, 64)` (`1e+00`, `5.5e-02`).
pub fn go_format_e(v: f64) -> String {
    if let Some(s) = special(v) {
        return s;
    }
    if v == 0.0 {
        return if v.is_sign_negative() {
            "-0e+00"
        } else {
            "0e+00"
        }
        .to_string();
    }
    let (d, exp) = digits(v, None);
    let d = d.trim_end_matches('0');
    sci(v < 0.0, if d.is_empty() { "0" } else { d }, exp)
}

/// Prometheus's `humanize`: SI prefixes, 4 significant digits.
pub fn humanize(mut v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return go_format_g(v, 4);
    }
    let mut prefix = "";
    if v.abs() >= 1.0 {
        for p in ["k", "M", "G", "T", "P", "E", "Z", "Y"] {
            if v.abs() < 1000.0 {
                break;
            }
            prefix = p;
            v /= 1000.0;
        }
    } else {
        for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
            if v.abs() >= 1.0 {
                break;
            }
            prefix = p;
            v *= 1000.0;
        }
    }
    format!("{}{prefix}", go_format_g(v, 4))
}

/// Prometheus's `humanize1024`.
pub fn humanize1024(mut v: f64) -> String {
    if v.abs() <= 1.0 || !v.is_finite() {
        return go_format_g(v, 4);
    }
    let mut prefix = "";
    for p in ["ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"] {
        if v.abs() < 1024.0 {
            break;
        }
        prefix = p;
        v /= 1024.0;
    }
    format!("{}{prefix}", go_format_g(v, 4))
}

/// Prometheus's `humanizeDuration` of seconds.
pub fn humanize_duration(mut v: f64) -> String {
    if !v.is_finite() {
        return go_format_g(v, 4);
    }
    if v == 0.0 {
        return format!("{}s", go_format_g(v, 4));
    }
    if v.abs() >= 1.0 {
        let sign = if v < 0.0 { "-" } else { "" };
        v = v.abs();
        let d = v as i64;
        let (s, m, h, days) = (d % 60, (d / 60) % 60, (d / 3600) % 24, d / 86400);
        if days != 0 {
            return format!("{sign}{days}d {h}h {m}m {s}s");
        }
        if h != 0 {
            return format!("{sign}{h}h {m}m {s}s");
        }
        if m != 0 {
            return format!("{sign}{m}m {s}s");
        }
        return format!("{sign}{}s", go_format_g(v, 4));
    }
    let mut prefix = "";
    for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
        if v.abs() >= 1.0 {
            break;
        }
        prefix = p;
        v *= 1000.0;
    }
    format!("{}{prefix}s", go_format_g(v, 4))
}

/// Prometheus's `humanizePercentage` of a ratio.
pub fn humanize_percentage(v: f64) -> String {
    format!("{}%", go_format_g(v * 100.0, 4))
}

/// Prometheus's `humanizeTimestamp`: Go's `time.Time.String()` in UTC.
pub fn humanize_timestamp(v: f64) -> String {
    if !v.is_finite() {
        return go_format_g(v, 4);
    }
    // As Prometheus: nanoseconds truncated to a millisecond timestamp.
    let ms = ((v * 1e9) as i64) / 1_000_000;
    let secs = ms.div_euclid(1000);
    let nanos = ms.rem_euclid(1000) * 1_000_000;
    let days = secs.div_euclid(86400);
    let sod = secs.rem_euclid(86400);
    let (y, mo, d) = crate::model::time::civil_from_days(days);
    let mut out = format!(
        "{y:04}-{mo:02}-{d:02} {:02}:{:02}:{:02}",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    );
    if nanos > 0 {
        let f = format!("{nanos:09}");
        out.push('.');
        out.push_str(f.trim_end_matches('0'));
    }
    out.push_str(" +0000 UTC");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_g_matches_go() {
        assert_eq!(go_format_g(1234.5, 4), "1234");
        assert_eq!(go_format_g(12345.0, 4), "1.234e+04");
        assert_eq!(go_format_g(1.5, 4), "1.5");
        assert_eq!(go_format_g(0.00001234, 4), "1.234e-05");
        assert_eq!(go_format_g(0.001234, 4), "0.001234");
        assert_eq!(go_format_v(3.0), "3");
        assert_eq!(go_format_e(1.0), "1e+00");
        assert_eq!(go_format_e(0.055), "5.5e-02");
        assert_eq!(go_format_v(0.1), "0.1");
        assert_eq!(go_format_v(1e6), "1e+06");
        assert_eq!(go_format_v(123456.0), "123456");
        assert_eq!(go_format_v(123456789.0), "1.23456789e+08");
        assert_eq!(go_format_v(0.0001), "0.0001");
        assert_eq!(go_format_v(0.00001), "1e-05");
        assert_eq!(go_format_v(f64::INFINITY), "+Inf");
    }

    #[test]
    fn humanizers() {
        assert_eq!(humanize(1234567.0), "1.235M");
        assert_eq!(humanize(0.0012), "1.2m");
        assert_eq!(humanize(0.0), "0");
        assert_eq!(humanize(12.0), "12");
        assert_eq!(humanize1024(1024.0), "1ki");
        assert_eq!(humanize1024(1048576.0 * 3.0), "3Mi");
        assert_eq!(humanize_duration(0.0), "0s");
        assert_eq!(humanize_duration(1.0), "1s");
        assert_eq!(humanize_duration(62.0), "1m 2s");
        assert_eq!(humanize_duration(90061.0), "1d 1h 1m 1s");
        assert_eq!(humanize_duration(0.5), "500ms");
        assert_eq!(humanize_percentage(0.1234567), "12.35%");
        assert_eq!(
            humanize_timestamp(1435065584.128),
            "2015-06-23 13:19:44.128 +0000 UTC"
        );
        assert_eq!(humanize_timestamp(0.0), "1970-01-01 00:00:00 +0000 UTC");
    }
}
