//! Literal values: numbers (Go `ParseInt` base 0 falling back to `ParseFloat`),
//! Prometheus durations and quoted strings with Go escapes.

use nom::bytes::complete::take_while1;
use nom::character::complete::digit1;

/// Milliseconds per duration unit, ordered from largest to smallest.
const UNITS: [(&str, u64); 7] = [
    ("y", 365 * 24 * 3_600_000),
    ("w", 7 * 24 * 3_600_000),
    ("d", 24 * 3_600_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1000),
    ("ms", 1),
];

/// Largest duration Prometheus accepts: `time.Duration` is an `int64` of nanoseconds.
const MAX_DURATION_NS: u128 = i64::MAX as u128;

/// The value of a number token (`1`, `0x1F`, `017` (octal, as Go reads it), `1e3`, `.5`,
/// `Inf`, `NaN`, `1_000`).
pub(crate) fn number_value(text: &str) -> Result<f64, String> {
    if let Some(i) = parse_int_base0(text) {
        return Ok(i as f64);
    }
    match parse_go_float(text) {
        Some(v) => Ok(v),
        None if looks_decimal(text) => Err(format!(
            "error parsing number: strconv.ParseFloat: parsing {text:?}: value out of range"
        )),
        None => Err(format!(
            "error parsing number: strconv.ParseFloat: parsing {text:?}: invalid syntax"
        )),
    }
}

/// Whether `s` is a well-formed decimal float (so a failure can only be overflow).
fn looks_decimal(s: &str) -> bool {
    let clean: String = s.chars().filter(|c| *c != '_').collect();
    !clean.is_empty()
        && clean
            .bytes()
            .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-'))
        && clean.bytes().any(|c| c.is_ascii_digit())
}

/// Go's `strconv.ParseInt(s, 0, 64)` for unsigned input; `None` on any error.
fn parse_int_base0(s: &str) -> Option<i64> {
    let lower = s.to_ascii_lowercase();
    let (digits, radix, prefixed) = if let Some(r) = lower.strip_prefix("0x") {
        (r, 16, true)
    } else if let Some(r) = lower.strip_prefix("0o") {
        (r, 8, true)
    } else if let Some(r) = lower.strip_prefix("0b") {
        (r, 2, true)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (lower.get(1..).unwrap_or_default(), 8, true)
    } else {
        (lower.as_str(), 10, false)
    };
    if !underscores_ok(&lower, prefixed) {
        return None;
    }
    let clean: String = digits.chars().filter(|c| *c != '_').collect();
    if clean.is_empty() {
        return None;
    }
    i64::from_str_radix(&clean, radix).ok()
}

/// Underscores may only separate digits (or follow a base prefix).
fn underscores_ok(s: &str, prefixed: bool) -> bool {
    if !s.contains('_') {
        return true;
    }
    let b = s.as_bytes();
    for (i, c) in b.iter().enumerate() {
        if *c != b'_' {
            continue;
        }
        let prev = if i == 0 { None } else { b.get(i - 1) };
        let next = b.get(i + 1);
        let prev_ok = match prev {
            Some(p) => p.is_ascii_hexdigit() || (prefixed && i == 2 && b"xob".contains(p)),
            None => false,
        };
        let next_ok = matches!(next, Some(n) if n.is_ascii_hexdigit());
        if !prev_ok || !next_ok {
            return false;
        }
    }
    true
}

/// Go's `strconv.ParseFloat` for the forms the lexer produces.
fn parse_go_float(s: &str) -> Option<f64> {
    let lower = s.to_ascii_lowercase();
    if lower.starts_with("0x") {
        // Hexadecimal floats need a `p` exponent, which the lexer never produces.
        return None;
    }
    if !underscores_ok(&lower, false) {
        return None;
    }
    let clean: String = lower.chars().filter(|c| *c != '_').collect();
    match clean.as_str() {
        "inf" | "infinity" => return Some(f64::INFINITY),
        "nan" => return Some(f64::NAN),
        _ => {}
    }
    if !clean
        .bytes()
        .all(|c| c.is_ascii_digit() || c == b'.' || c == b'e' || c == b'+' || c == b'-')
    {
        return None;
    }
    // Go reports overflow ("value out of range") where Rust returns infinity.
    clean.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// Parses a Prometheus duration (`1h30m`, `5m`, `10s53ms`, `1y`, `0`) into milliseconds,
/// with the messages of Prometheus's `model.ParseDuration`.
pub(crate) fn duration_ms(s: &str) -> Result<i64, String> {
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err("empty duration string".to_string());
    }
    let invalid = || format!("not a valid duration string: {s:?}");
    let mut rest = s;
    let mut total_ns: u128 = 0;
    let mut last_unit: Option<usize> = None;
    while !rest.is_empty() {
        let (after_digits, digits) =
            digit1::<&str, nom::error::Error<&str>>(rest).map_err(|_| invalid())?;
        let value: u64 = digits.parse().map_err(|_| invalid())?;
        let (after_unit, unit) =
            take_while1::<_, &str, nom::error::Error<&str>>(|c: char| !c.is_ascii_digit())(
                after_digits,
            )
            .map_err(|_| invalid())?;
        let Some(pos) = UNITS.iter().position(|(u, _)| *u == unit) else {
            return Err(format!("unknown unit {unit:?} in duration {s:?}"));
        };
        if last_unit.is_some_and(|l| pos <= l) {
            return Err(invalid());
        }
        last_unit = Some(pos);
        let mult_ms = UNITS.get(pos).map_or(1, |(_, m)| *m);
        total_ns += u128::from(value) * u128::from(mult_ms) * 1_000_000;
        if total_ns > MAX_DURATION_NS {
            return Err("duration out of range".to_string());
        }
        rest = after_unit;
    }
    i64::try_from(total_ns / 1_000_000).map_err(|_| "duration out of range".to_string())
}

/// Converts a number of seconds used as a duration (`[10]`, `offset 1.5`) to
/// milliseconds as Prometheus does: rounded to whole nanoseconds, then truncated to
/// milliseconds. The caller checks the range first.
pub(crate) fn seconds_to_ms(secs: f64) -> i64 {
    let ns = (secs * 1e9).round();
    // `as` saturates; the caller has already rejected out-of-range values.
    (ns as i64) / 1_000_000
}

/// Formats a rune as Go's `%#U` does (`U+0071 'q'`).
fn go_rune_desc(c: char) -> String {
    if c.is_control() {
        format!("U+{:04X}", c as u32)
    } else {
        format!("U+{:04X} '{c}'", c as u32)
    }
}

/// Scans a `"`- or `'`-quoted string whose opening quote has been consumed. Returns the
/// number of bytes consumed (including the closing quote) and the unescaped value, or a
/// lexer error message.
pub(crate) fn scan_quoted(input: &str, quote: char) -> Result<(usize, String), String> {
    let mut out: Vec<u8> = Vec::new();
    let mut chars = input.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c == quote {
            return Ok((i + c.len_utf8(), String::from_utf8_lossy(&out).into_owned()));
        }
        match c {
            '\n' => return Err("unterminated quoted string".to_string()),
            '\\' => {
                let Some((_, e)) = chars.next() else {
                    return Err("escape sequence not terminated".to_string());
                };
                let simple = match e {
                    'a' => Some('\u{7}'),
                    'b' => Some('\u{8}'),
                    'f' => Some('\u{c}'),
                    'n' => Some('\n'),
                    'r' => Some('\r'),
                    't' => Some('\t'),
                    'v' => Some('\u{b}'),
                    '\\' => Some('\\'),
                    e if e == quote => Some(e),
                    _ => None,
                };
                if let Some(s) = simple {
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(s.encode_utf8(&mut buf).as_bytes());
                    continue;
                }
                let (n, base, max, first): (usize, u32, u32, Option<char>) = match e {
                    '0'..='7' => (3, 8, 255, Some(e)),
                    'x' => (2, 16, 255, None),
                    'u' => (4, 16, 0x10FFFF, None),
                    'U' => (8, 16, 0x10FFFF, None),
                    other => {
                        return Err(format!("unknown escape sequence {}", go_rune_desc(other)))
                    }
                };
                let mut x: u32 = 0;
                for k in 0..n {
                    let d = if k == 0 && first.is_some() {
                        first
                    } else {
                        chars.next().map(|(_, d)| d)
                    };
                    let Some(d) = d else {
                        return Err("escape sequence not terminated".to_string());
                    };
                    match d.to_digit(base) {
                        Some(v) => x = x.saturating_mul(base).saturating_add(v),
                        None => {
                            return Err(format!(
                                "illegal character {} in escape sequence",
                                go_rune_desc(d)
                            ))
                        }
                    }
                }
                if x > max || (0xD800..0xE000).contains(&x) {
                    return Err("escape sequence is an invalid Unicode code point".to_string());
                }
                if e == 'u' || e == 'U' {
                    let ch = char::from_u32(x).unwrap_or('\u{FFFD}');
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                } else {
                    // \x and octal escapes denote single bytes.
                    out.push(u8::try_from(x).unwrap_or(u8::MAX));
                }
            }
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    Err("unterminated quoted string".to_string())
}

/// Scans a backquoted raw string whose opening quote has been consumed.
pub(crate) fn scan_raw(input: &str) -> Result<(usize, String), String> {
    match input.find('`') {
        Some(i) => Ok((i + 1, input.get(..i).unwrap_or_default().to_string())),
        None => Err("unterminated raw string".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(number_value("1").unwrap(), 1.0);
        assert_eq!(number_value("0x1F").unwrap(), 31.0);
        assert_eq!(number_value("0X1f").unwrap(), 31.0);
        assert_eq!(number_value("017").unwrap(), 15.0);
        assert_eq!(number_value("08").unwrap(), 8.0);
        assert_eq!(number_value("1e3").unwrap(), 1000.0);
        assert_eq!(number_value(".5").unwrap(), 0.5);
        assert_eq!(number_value("5.").unwrap(), 5.0);
        assert_eq!(number_value("1_000").unwrap(), 1000.0);
        assert_eq!(number_value("Inf").unwrap(), f64::INFINITY);
        assert_eq!(number_value("iNF").unwrap(), f64::INFINITY);
        assert!(number_value("NaN").unwrap().is_nan());
        assert_eq!(number_value("99999999999999999999").unwrap(), 1e20);
        assert!(number_value("1__0").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(duration_ms("5m").unwrap(), 300_000);
        assert_eq!(duration_ms("1h30m").unwrap(), 5_400_000);
        assert_eq!(duration_ms("10s53ms").unwrap(), 10_053);
        assert_eq!(duration_ms("1y").unwrap(), 365 * 86_400_000);
        assert_eq!(duration_ms("0").unwrap(), 0);
        assert_eq!(
            duration_ms("5m1h").unwrap_err(),
            "not a valid duration string: \"5m1h\""
        );
        assert_eq!(
            duration_ms("1hs").unwrap_err(),
            "unknown unit \"hs\" in duration \"1hs\""
        );
        assert_eq!(duration_ms("300y").unwrap_err(), "duration out of range");
    }

    #[test]
    fn strings() {
        assert_eq!(
            scan_quoted(r#"a\"b" x"#, '"').unwrap(),
            (5, "a\"b".to_string())
        );
        assert_eq!(
            scan_quoted(r"\n\t\x41\101\u00e9'", '\'').unwrap().1,
            "\n\tAAé"
        );
        assert_eq!(
            scan_quoted(r#"\q""#, '"').unwrap_err(),
            "unknown escape sequence U+0071 'q'"
        );
        assert_eq!(
            scan_quoted(r#"\'""#, '"').unwrap_err(),
            "unknown escape sequence U+0027 '''"
        );
        assert_eq!(
            scan_quoted("abc", '"').unwrap_err(),
            "unterminated quoted string"
        );
        assert_eq!(scan_raw(r"a\nb` x").unwrap(), (5, r"a\nb".to_string()));
    }
}
