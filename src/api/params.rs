//! Request parameters: URL query merged with a form body, times and durations parsed as
//! Prometheus does.

use crate::model::time::{parse_duration_ms, parse_rfc3339_ms};
use crate::model::Timestamp;

use super::error::ApiError;

/// The smallest and largest times accepted (Prometheus's MinTime/MaxTime, in ms).
pub const MIN_TIME: Timestamp = -9_223_309_901_257_974;
/// See [`MIN_TIME`].
pub const MAX_TIME: Timestamp = 9_223_309_901_257_974;

/// Decoded `application/x-www-form-urlencoded` pairs from the URL and the body.
#[derive(Debug, Default, Clone)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    /// Parses the URL query string and (for POST forms) the body.
    pub fn new(query: Option<&str>, body: Option<&[u8]>) -> Self {
        let mut pairs = Vec::new();
        // Go's r.Form puts body values before URL values.
        if let Some(b) = body {
            pairs.extend(parse_urlencoded(&String::from_utf8_lossy(b)));
        }
        if let Some(q) = query {
            pairs.extend(parse_urlencoded(q));
        }
        Params { pairs }
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first non-empty value of `name`.
    pub fn get_nonempty(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|v| !v.is_empty())
    }

    /// All values of `name` (e.g. `match[]`).
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// A time parameter, or `default` when absent.
    pub fn time_or(&self, name: &str, default: Timestamp) -> Result<Timestamp, ApiError> {
        match self.get_nonempty(name) {
            None => Ok(default),
            Some(v) => parse_time(v).map_err(|e| ApiError::invalid_param(name, e)),
        }
    }

    /// A `limit` parameter (0 or absent = no limit).
    pub fn limit(&self) -> Result<usize, ApiError> {
        match self.get_nonempty("limit") {
            None => Ok(0),
            Some(v) => match v.parse::<i64>() {
                Ok(n) if n >= 0 => Ok(n as usize),
                Ok(_) => Ok(0),
                Err(_) => Err(ApiError::bad_data(format!(
                    "cannot parse \"{v}\" to a valid limit"
                ))),
            },
        }
    }
}

/// Parses a time: unix seconds as a float, or RFC 3339.
pub fn parse_time(s: &str) -> Result<Timestamp, String> {
    if let Ok(f) = s.parse::<f64>() {
        if f.is_finite() {
            let ms = (f * 1000.0).round();
            if ms >= MIN_TIME as f64 && ms <= MAX_TIME as f64 {
                return Ok(ms as i64);
            }
            return Ok(if ms < 0.0 { MIN_TIME } else { MAX_TIME });
        }
    }
    if s == "-292273086-05-16T16:47:06Z" {
        return Ok(MIN_TIME);
    }
    if s == "292277025-08-18T07:12:54.999999999Z" {
        return Ok(MAX_TIME);
    }
    parse_rfc3339_ms(s).ok_or_else(|| format!("cannot parse \"{s}\" to a valid timestamp"))
}

/// Parses a duration: float seconds or a Prometheus duration string; result in ms.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    if let Ok(f) = s.parse::<f64>() {
        let ms = f * 1000.0;
        if ms.is_finite() && ms.abs() < 9.2e18 {
            return Ok(ms.round() as i64);
        }
        return Err(format!(
            "cannot parse \"{s}\" to a valid duration. It overflows int64"
        ));
    }
    parse_duration_ms(s).ok_or_else(|| format!("cannot parse \"{s}\" to a valid duration"))
}

fn parse_urlencoded(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// Decodes `%XX` escapes and `+` as space; invalid escapes are kept literally.
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        match c {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = b
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok());
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_and_query_merge() {
        let p = Params::new(Some("a=1&match%5B%5D=x"), Some(b"query=1%2B1&match[]=y"));
        assert_eq!(p.get("query"), Some("1+1"));
        assert_eq!(p.get("a"), Some("1"));
        assert_eq!(p.all("match[]"), vec!["y", "x"]);
    }

    #[test]
    fn times_and_durations() {
        assert_eq!(parse_time("4"), Ok(4000));
        assert_eq!(parse_time("1.5"), Ok(1500));
        assert_eq!(parse_time("1970-01-01T00:00:01Z"), Ok(1000));
        assert!(parse_time("abc").is_err());
        assert_eq!(parse_duration("15"), Ok(15_000));
        assert_eq!(parse_duration("0.5"), Ok(500));
        assert_eq!(parse_duration("1h30m"), Ok(5_400_000));
        assert!(parse_duration("1ns").is_err());
    }
}
