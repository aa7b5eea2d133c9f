//! Lexical pieces of test scripts: durations, numbers, series descriptions and value
//! sequences (`1 2 _ stale 0+10x5 ...`).

use crate::model::{Label, Labels, STALE_NAN};

/// One expanded value of a sequence: `None` is an omitted step (`_`).
pub type SeqValue = Option<f64>;

/// Parses a Prometheus duration (`5m`, `1h30m`, `10s53ms`, `0`) into milliseconds.
/// Units must appear largest first, each at most once.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err("empty duration string".to_string());
    }
    const UNITS: [(&str, i64); 8] = [
        ("y", 365 * 24 * 3_600_000),
        ("w", 7 * 24 * 3_600_000),
        ("d", 24 * 3_600_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
        ("ms", 1),
        ("", 0),
    ];
    let b = s.as_bytes();
    let mut i = 0;
    let mut total: i64 = 0;
    let mut last_unit = 0usize;
    let mut any = false;
    while i < b.len() {
        let start = i;
        while i < b.len() && b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return Err(format!("not a valid duration string: {s:?}"));
        }
        let n: i64 = s
            .get(start..i)
            .and_then(|d| d.parse().ok())
            .ok_or_else(|| format!("not a valid duration string: {s:?}"))?;
        let ustart = i;
        while i < b.len() && b.get(i).is_some_and(u8::is_ascii_alphabetic) {
            i += 1;
        }
        let unit = s.get(ustart..i).unwrap_or("");
        let idx = UNITS
            .iter()
            .position(|(u, _)| *u == unit && !u.is_empty())
            .ok_or_else(|| format!("not a valid duration string: {s:?}"))?;
        if any && idx <= last_unit {
            return Err(format!("not a valid duration string: {s:?}"));
        }
        last_unit = idx;
        any = true;
        let mult = UNITS.get(idx).map(|(_, m)| *m).unwrap_or(0);
        total = n
            .checked_mul(mult)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| format!("duration out of range: {s:?}"))?;
    }
    Ok(total)
}

/// Parses a float as Go's `strconv.ParseFloat` accepts it in test files: decimal and
/// exponent forms, `Inf`/`+Inf`/`-Inf`/`NaN` in any case. Hex integers are accepted when
/// `allow_hex` (scalar result lines).
pub fn parse_number(s: &str, allow_hex: bool) -> Option<f64> {
    let lower = s.to_ascii_lowercase();
    let (neg, body) = match lower.as_bytes().first() {
        Some(b'-') => (true, lower.get(1..).unwrap_or("")),
        Some(b'+') => (false, lower.get(1..).unwrap_or("")),
        _ => (false, lower.as_str()),
    };
    let v = match body {
        "inf" | "infinity" => f64::INFINITY,
        "nan" => f64::NAN,
        _ => {
            if let Some(hex) = body.strip_prefix("0x") {
                if !allow_hex {
                    return None;
                }
                i64::from_str_radix(hex, 16).ok()? as f64
            } else {
                if body.is_empty()
                    || !body
                        .bytes()
                        .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'-' | b'+'))
                    || !body
                        .bytes()
                        .next()
                        .is_some_and(|c| c.is_ascii_digit() || c == b'.')
                {
                    return None;
                }
                body.parse::<f64>().ok()?
            }
        }
    };
    Some(if neg { -v } else { v })
}

/// A number, or a duration meaning its number of seconds (`1m` = 60).
fn parse_number_or_duration(s: &str) -> Option<f64> {
    if let Some(v) = parse_number(s, false) {
        return Some(v);
    }
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, s.get(1..)?),
        Some(b'+') => (false, s.get(1..)?),
        _ => (false, s),
    };
    let ms = parse_duration(body).ok()?;
    let v = ms as f64 / 1000.0;
    Some(if neg { -v } else { v })
}

/// Finds the `+`/`-` separating `A` and `B` in `A+B` / `A-B` (not a sign, not part of an
/// exponent).
fn split_step(s: &str) -> Option<(usize, char)> {
    let b = s.as_bytes();
    for (i, &c) in b.iter().enumerate().skip(1) {
        if c == b'+' || c == b'-' {
            let prev = b.get(i - 1).copied().unwrap_or(b' ');
            if prev == b'e' || prev == b'E' {
                // exponent sign unless the left part is a word like "Inf"/"NaN"
                let left = s.get(..i - 1).unwrap_or("");
                if left.bytes().any(|x| x.is_ascii_digit()) {
                    continue;
                }
            }
            return Some((i, c as char));
        }
    }
    None
}

/// Expands one whitespace-separated item of a value sequence.
pub fn expand_item(item: &str, out: &mut Vec<SeqValue>) -> Result<(), String> {
    let err = || format!("invalid value {item:?}");
    if item == "_" {
        out.push(None);
        return Ok(());
    }
    if item == "stale" {
        out.push(Some(STALE_NAN));
        return Ok(());
    }
    // A trailing `x<digits>` is a repeat count.
    let (head, count) = match item.rfind('x') {
        Some(p)
            if p > 0
                && item.len() > p + 1
                && item
                    .get(p + 1..)
                    .is_some_and(|d| d.bytes().all(|c| c.is_ascii_digit())) =>
        {
            let k: usize = item
                .get(p + 1..)
                .and_then(|d| d.parse().ok())
                .ok_or_else(err)?;
            (item.get(..p).unwrap_or(""), Some(k))
        }
        _ => (item, None),
    };
    match count {
        None => {
            out.push(Some(parse_number_or_duration(head).ok_or_else(err)?));
        }
        Some(k) => {
            if head == "_" {
                out.extend(std::iter::repeat_n(None, k));
                return Ok(());
            }
            if head == "stale" {
                out.extend(std::iter::repeat_n(Some(STALE_NAN), k + 1));
                return Ok(());
            }
            let (a, b) = match split_step(head) {
                Some((p, sign)) => {
                    let a =
                        parse_number_or_duration(head.get(..p).unwrap_or("")).ok_or_else(err)?;
                    let b = parse_number_or_duration(head.get(p + 1..).unwrap_or(""))
                        .ok_or_else(err)?;
                    (a, if sign == '-' { -b } else { b })
                }
                None => (parse_number_or_duration(head).ok_or_else(err)?, 0.0),
            };
            let mut cur = a;
            out.push(Some(cur));
            for _ in 0..k {
                cur += b;
                out.push(Some(cur));
            }
        }
    }
    Ok(())
}

/// Expands a whitespace-separated value sequence.
pub fn expand_values(s: &str) -> Result<Vec<SeqValue>, String> {
    let mut out = Vec::new();
    for item in s.split_whitespace() {
        expand_item(item, &mut out)?;
    }
    Ok(out)
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// Reads a double-quoted, single-quoted or backquoted string literal with Go escapes
/// starting at byte `i` of `s`. Returns the value and the byte index after it.
pub fn read_quoted(s: &str, i: usize) -> Result<(String, usize), String> {
    let mut chars = s.get(i..).unwrap_or("").char_indices();
    let (_, q) = chars.next().ok_or("expected a string")?;
    if q != '"' && q != '\'' && q != '`' {
        return Err(format!(
            "expected a quoted string at {:?}",
            s.get(i..).unwrap_or("")
        ));
    }
    let mut out = String::new();
    while let Some((j, c)) = chars.next() {
        if c == q {
            return Ok((out, i + j + c.len_utf8()));
        }
        if c == '\\' && q != '`' {
            let (_, e) = chars.next().ok_or("unterminated escape")?;
            match e {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                'a' => out.push('\u{7}'),
                'b' => out.push('\u{8}'),
                'f' => out.push('\u{c}'),
                'v' => out.push('\u{b}'),
                '\\' => out.push('\\'),
                '"' => out.push('"'),
                '\'' => out.push('\''),
                'x' | 'u' | 'U' => {
                    let n = match e {
                        'x' => 2,
                        'u' => 4,
                        _ => 8,
                    };
                    let mut hex = String::new();
                    for _ in 0..n {
                        hex.push(chars.next().ok_or("short escape")?.1);
                    }
                    let v = u32::from_str_radix(&hex, 16).map_err(|e| e.to_string())?;
                    if e == 'x' {
                        // a raw byte; only ASCII is representable in a Rust string
                        out.push(char::from_u32(v).ok_or("bad escape")?);
                    } else {
                        out.push(char::from_u32(v).ok_or("bad escape")?);
                    }
                }
                '0'..='7' => {
                    let mut oct = String::from(e);
                    for _ in 0..2 {
                        oct.push(chars.next().ok_or("short escape")?.1);
                    }
                    let v = u32::from_str_radix(&oct, 8).map_err(|e| e.to_string())?;
                    out.push(char::from_u32(v).ok_or("bad escape")?);
                }
                other => return Err(format!("unknown escape sequence \\{other}")),
            }
        } else {
            out.push(c);
        }
    }
    Err("unterminated string".to_string())
}

/// Parses a series description `name{l="v", ...} <values>` into labels and the rest of
/// the line (the values part).
pub fn parse_series_desc(line: &str) -> Result<(Labels, &str), String> {
    let mut labels: Vec<Label> = Vec::new();
    let s = line.trim_start();
    let mut i = 0;
    let mut it = s.char_indices().peekable();
    if let Some(&(_, c)) = it.peek() {
        if is_name_start(c) {
            let end = s
                .char_indices()
                .find(|&(_, c)| !is_name_char(c))
                .map(|(j, _)| j)
                .unwrap_or(s.len());
            labels.push(Label::new("__name__", s.get(..end).unwrap_or("")));
            i = end;
        }
    }
    let skip_ws = |s: &str, mut i: usize| {
        while s.get(i..).is_some_and(|r| r.starts_with([' ', '\t'])) {
            i += 1;
        }
        i
    };
    if s.get(i..).is_some_and(|r| r.starts_with('{')) {
        i += 1;
        loop {
            i = skip_ws(s, i);
            let rest = s.get(i..).unwrap_or("");
            if rest.starts_with('}') {
                i += 1;
                break;
            }
            // label name or a quoted string (a quoted name, or a bare quoted metric name)
            let (name, ni) = if rest.starts_with('"') || rest.starts_with('\'') {
                read_quoted(s, i)?
            } else {
                let end = rest
                    .char_indices()
                    .find(|&(_, c)| !is_name_char(c))
                    .map(|(j, _)| j)
                    .unwrap_or(rest.len());
                if end == 0 {
                    return Err(format!("unexpected character in series: {rest:?}"));
                }
                (rest.get(..end).unwrap_or("").to_string(), i + end)
            };
            i = skip_ws(s, ni);
            let rest = s.get(i..).unwrap_or("");
            if rest.starts_with('=') {
                i = skip_ws(s, i + 1);
                let (val, vi) = read_quoted(s, i)?;
                labels.push(Label::new(name, val));
                i = skip_ws(s, vi);
            } else {
                labels.push(Label::new("__name__", name));
            }
            let rest = s.get(i..).unwrap_or("");
            if rest.starts_with(',') {
                i += 1;
            } else if !rest.starts_with('}') {
                return Err(format!("expected ',' or '}}' in series: {rest:?}"));
            }
        }
    } else if labels.is_empty() {
        return Err(format!("invalid series description {line:?}"));
    }
    let mut seen = std::collections::HashSet::new();
    for l in &labels {
        if !seen.insert(l.name.clone()) {
            return Err(format!("duplicate label name {:?}", l.name));
        }
    }
    Ok((Labels::new(labels), s.get(i..).unwrap_or("")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::is_stale_nan;

    fn vals(s: &str) -> Vec<SeqValue> {
        expand_values(s).unwrap()
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5m").unwrap(), 300_000);
        assert_eq!(parse_duration("1m30s").unwrap(), 90_000);
        assert_eq!(parse_duration("10s53ms").unwrap(), 10_053);
        assert_eq!(parse_duration("0").unwrap(), 0);
        assert_eq!(parse_duration("1h").unwrap(), 3_600_000);
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("1s1m").is_err());
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_number("1", false), Some(1.0));
        assert_eq!(parse_number("-2.5", false), Some(-2.5));
        assert_eq!(parse_number("1e3", false), Some(1000.0));
        assert_eq!(parse_number(".5", false), Some(0.5));
        assert_eq!(parse_number("+Inf", false), Some(f64::INFINITY));
        assert_eq!(parse_number("-inf", false), Some(f64::NEG_INFINITY));
        assert!(parse_number("NaN", false).unwrap().is_nan());
        assert_eq!(parse_number("0x10", true), Some(16.0));
        assert_eq!(parse_number("0x10", false), None);
        assert_eq!(parse_number("abc", false), None);
        assert_eq!(parse_number("-0.2e-6", false), Some(-0.2e-6));
    }

    #[test]
    fn expansions() {
        assert_eq!(vals("1 2 _ 4"), vec![Some(1.0), Some(2.0), None, Some(4.0)]);
        assert_eq!(vals("_x3"), vec![None, None, None]);
        assert_eq!(vals("1x2"), vec![Some(1.0); 3]);
        assert_eq!(
            vals("0+10x3"),
            vec![Some(0.0), Some(10.0), Some(20.0), Some(30.0)]
        );
        assert_eq!(
            vals("-2+4x3"),
            vec![Some(-2.0), Some(2.0), Some(6.0), Some(10.0)]
        );
        assert_eq!(vals("10-2x2"), vec![Some(10.0), Some(8.0), Some(6.0)]);
        assert_eq!(vals("1m"), vec![Some(60.0)]);
        assert_eq!(vals("1e3+1e1x1"), vec![Some(1000.0), Some(1010.0)]);
        let s = vals("1 stale");
        assert!(is_stale_nan(s[1].unwrap()));
        assert_eq!(vals("Inf"), vec![Some(f64::INFINITY)]);
        assert_eq!(vals("-Inf"), vec![Some(f64::NEG_INFINITY)]);
    }

    #[test]
    fn series_descriptions() {
        let (l, rest) = parse_series_desc(r#"http_requests{job="api", instance="0"} 1 2"#).unwrap();
        assert_eq!(l.get("__name__"), Some("http_requests"));
        assert_eq!(l.get("job"), Some("api"));
        assert_eq!(rest.trim(), "1 2");
        let (l, rest) = parse_series_desc("{} 5").unwrap();
        assert!(l.is_empty());
        assert_eq!(rest.trim(), "5");
        let (l, _) = parse_series_desc(r#"{__name__="a:b", x="q\"z"} 1"#).unwrap();
        assert_eq!(l.get("__name__"), Some("a:b"));
        assert_eq!(l.get("x"), Some("q\"z"));
        let (l, _) = parse_series_desc("metric 1").unwrap();
        assert_eq!(l.len(), 1);
    }
}
