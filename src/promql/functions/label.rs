//! `label_replace` and `label_join` on one label set.
//!
//! Both are split in two: a constructor that validates the constant arguments once per
//! query (returning the error text Prometheus reports), and an `apply` that rewrites
//! one label set. Setting a label to the empty string removes it.

use regex::Regex;

use crate::model::{Labels, LabelsBuilder};

/// Whether `name` is a valid label name for these functions (Prometheus 3.x accepts any
/// non-empty UTF-8 string).
pub fn is_valid_label_name(name: &str) -> bool {
    !name.is_empty()
}

/// A compiled `label_replace(v, dst, replacement, src, regex)`.
#[derive(Debug, Clone)]
pub struct LabelReplace {
    dst: String,
    replacement: String,
    src: String,
    regex: Regex,
}

impl LabelReplace {
    /// Validates the arguments. The regex is fully anchored (`^(?s:regex)$`).
    ///
    /// Errors, with Prometheus's texts: `invalid regular expression in label_replace():
    /// REGEX` and `invalid destination label name in label_replace(): DST`.
    pub fn new(dst: &str, replacement: &str, src: &str, regex: &str) -> Result<Self, String> {
        let compiled = crate::model::goregex::compile_anchored(regex)
            .map_err(|_| format!("invalid regular expression in label_replace(): {regex}"))?;
        if !is_valid_label_name(dst) {
            return Err(format!(
                "invalid destination label name in label_replace(): {dst}"
            ));
        }
        Ok(LabelReplace {
            dst: dst.to_string(),
            replacement: replacement.to_string(),
            src: src.to_string(),
            regex: compiled,
        })
    }

    /// The destination label name.
    pub fn dst(&self) -> &str {
        &self.dst
    }

    /// Rewrites one label set: when the regex matches the value of `src` (empty when
    /// absent), `dst` is set to the expanded replacement (removed when that is empty).
    /// Returns `None` when the regex does not match (the labels stay as they are).
    pub fn apply(&self, labels: &Labels) -> Option<Labels> {
        let value = labels.get_or_empty(&self.src);
        let caps = self.regex.captures(value)?;
        let out = expand(&self.regex, &caps, &self.replacement);
        let mut b = LabelsBuilder::from(labels);
        b.set(&self.dst, &out);
        Some(b.labels())
    }
}

/// `label_replace` on one label set in one call (compiles the regex each time; use
/// [`LabelReplace`] to compile once). Returns the labels unchanged when the regex does
/// not match.
pub fn label_replace(
    labels: &Labels,
    dst: &str,
    replacement: &str,
    src: &str,
    regex: &str,
) -> Result<Labels, String> {
    let lr = LabelReplace::new(dst, replacement, src, regex)?;
    Ok(lr.apply(labels).unwrap_or_else(|| labels.clone()))
}

/// Expands `$1`, `${1}`, `$name` and `${name}` in `template` like Go's
/// `Regexp.ExpandString`: a name is the longest run of letters, digits and `_`; a number
/// is a group index (no leading zeros); unknown or unmatched groups expand to nothing;
/// `$$` is a literal `$`; a `$` not followed by a valid reference is kept as is.
pub fn expand(re: &Regex, caps: &regex::Captures<'_>, template: &str) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(pos) = rest.find('$') {
        out.push_str(rest.get(..pos).unwrap_or(""));
        rest = rest.get(pos + 1..).unwrap_or("");
        if let Some(r) = rest.strip_prefix('$') {
            out.push('$');
            rest = r;
            continue;
        }
        match extract_ref(rest) {
            None => out.push('$'),
            Some((name, after)) => {
                rest = after;
                if let Some(idx) = group_number(name) {
                    if let Some(m) = caps.get(idx) {
                        out.push_str(m.as_str());
                    }
                } else {
                    // The first group with this name that took part in the match.
                    let found = re
                        .capture_names()
                        .enumerate()
                        .filter(|(_, n)| *n == Some(name))
                        .find_map(|(i, _)| caps.get(i));
                    if let Some(m) = found {
                        out.push_str(m.as_str());
                    }
                }
            }
        }
    }
    out.push_str(rest);
    out
}

/// Parses a reference after `$`: `name` or `{name}`. Returns the name and the text
/// after it.
fn extract_ref(s: &str) -> Option<(&str, &str)> {
    let (brace, body) = match s.strip_prefix('{') {
        Some(b) => (true, b),
        None => (false, s),
    };
    let end = body
        .char_indices()
        .find(|(_, c)| !(c.is_alphanumeric() || *c == '_'))
        .map_or(body.len(), |(i, _)| i);
    if end == 0 {
        return None;
    }
    let name = body.get(..end)?;
    let mut after = body.get(end..)?;
    if brace {
        after = after.strip_prefix('}')?;
    }
    Some((name, after))
}

/// A group index: ASCII digits only, no leading zero (except "0"), below 1e8.
fn group_number(name: &str) -> Option<usize> {
    if !name.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if name.len() > 1 && name.starts_with('0') {
        return None;
    }
    let n: usize = name.parse().ok()?;
    if n >= 100_000_000 {
        return None;
    }
    Some(n)
}

/// A validated `label_join(v, dst, separator, src...)`.
#[derive(Debug, Clone)]
pub struct LabelJoin {
    dst: String,
    separator: String,
    srcs: Vec<String>,
}

impl LabelJoin {
    /// Validates the label names. Errors, with Prometheus's texts: `invalid source
    /// label name in label_join(): SRC` (checked first) and `invalid destination label
    /// name in label_join(): DST`.
    pub fn new(dst: &str, separator: &str, srcs: &[&str]) -> Result<Self, String> {
        for s in srcs {
            if !is_valid_label_name(s) {
                return Err(format!("invalid source label name in label_join(): {s}"));
            }
        }
        if !is_valid_label_name(dst) {
            return Err(format!(
                "invalid destination label name in label_join(): {dst}"
            ));
        }
        Ok(LabelJoin {
            dst: dst.to_string(),
            separator: separator.to_string(),
            srcs: srcs.iter().map(|s| s.to_string()).collect(),
        })
    }

    /// The destination label name.
    pub fn dst(&self) -> &str {
        &self.dst
    }

    /// Sets `dst` to the values of the source labels (empty for absent ones) joined by
    /// the separator; an empty result removes `dst`.
    pub fn apply(&self, labels: &Labels) -> Labels {
        let joined = self
            .srcs
            .iter()
            .map(|s| labels.get_or_empty(s))
            .collect::<Vec<_>>()
            .join(&self.separator);
        let mut b = LabelsBuilder::from(labels);
        b.set(&self.dst, &joined);
        b.labels()
    }
}

/// `label_join` on one label set in one call.
pub fn label_join(labels: &Labels, dst: &str, sep: &str, srcs: &[&str]) -> Result<Labels, String> {
    Ok(LabelJoin::new(dst, sep, srcs)?.apply(labels))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs)
    }

    #[test]
    fn replace_basic() {
        let m = l(&[("__name__", "m"), ("src", "source-value-10")]);
        let out = label_replace(
            &m,
            "dst",
            "destination-value-$1",
            "src",
            "source-value-(.*)",
        )
        .unwrap();
        assert_eq!(out.get("dst"), Some("destination-value-10"));
        assert_eq!(out.get("src"), Some("source-value-10"));
        // The regex is anchored: a partial match does not count.
        let same = label_replace(&m, "dst", "x", "src", "value").unwrap();
        assert_eq!(same, m);
        // No match leaves the labels alone, even the destination.
        let m2 = l(&[("dst", "original"), ("src", "abc")]);
        assert_eq!(label_replace(&m2, "dst", "new", "src", "xyz").unwrap(), m2);
    }

    #[test]
    fn replace_empty_result_deletes_and_missing_src_matches_empty() {
        let m = l(&[("dst", "x"), ("src", "abc")]);
        let out = label_replace(&m, "dst", "", "src", "(.*)").unwrap();
        assert_eq!(out.get("dst"), None);
        // Absent source label is the empty string.
        let out = label_replace(&m, "new", "filled", "absent", "").unwrap();
        assert_eq!(out.get("new"), Some("filled"));
        let out = label_replace(&m, "new", "filled", "absent", ".+").unwrap();
        assert_eq!(out.get("new"), None);
    }

    #[test]
    fn replace_expansion_rules() {
        let re = Regex::new("^(?s:(?P<first>a+)(b+)(c)?)$").unwrap();
        let caps = re.captures("aabb").unwrap();
        assert_eq!(expand(&re, &caps, "$1-$2"), "aa-bb");
        assert_eq!(expand(&re, &caps, "${1}x"), "aax");
        // `$1x` names group "1x", which does not exist.
        assert_eq!(expand(&re, &caps, "$1x"), "");
        assert_eq!(expand(&re, &caps, "$first/${first}"), "aa/aa");
        // Unmatched and out-of-range groups expand to nothing.
        assert_eq!(expand(&re, &caps, "[$3][$9]"), "[][]");
        assert_eq!(expand(&re, &caps, "$$1"), "$1");
        assert_eq!(expand(&re, &caps, "cost: $"), "cost: $");
        assert_eq!(expand(&re, &caps, "${1"), "${1");
        assert_eq!(expand(&re, &caps, "$-"), "$-");
        assert_eq!(expand(&re, &caps, "$0"), "aabb");
        // Leading zeros make it a name, not a number.
        assert_eq!(expand(&re, &caps, "$01"), "");
    }

    #[test]
    fn replace_dot_matches_newline() {
        let m = l(&[("src", "a\nb")]);
        let out = label_replace(&m, "dst", "$1", "src", "(.*)").unwrap();
        assert_eq!(out.get("dst"), Some("a\nb"));
    }

    #[test]
    fn replace_errors() {
        let m = l(&[("src", "a")]);
        assert_eq!(
            label_replace(&m, "dst", "v", "src", "(.*").unwrap_err(),
            "invalid regular expression in label_replace(): (.*"
        );
        assert_eq!(
            label_replace(&m, "", "v", "src", "(.*)").unwrap_err(),
            "invalid destination label name in label_replace(): "
        );
        // Any non-empty UTF-8 name is valid in Prometheus 3.
        assert!(label_replace(&m, "my.label", "v", "src", "(.*)").is_ok());
    }

    #[test]
    fn join() {
        let m = l(&[("a", "1"), ("b", "2"), ("c", "3")]);
        let out = label_join(&m, "dst", ",", &["a", "b", "c"]).unwrap();
        assert_eq!(out.get("dst"), Some("1,2,3"));
        let out = label_join(&m, "dst", "-", &["a", "missing", "c"]).unwrap();
        assert_eq!(out.get("dst"), Some("1--3"));
        // Joining nothing, or only missing labels with an empty separator, deletes dst.
        let with_dst = l(&[("a", "1"), ("dst", "old")]);
        assert_eq!(
            label_join(&with_dst, "dst", "", &[]).unwrap().get("dst"),
            None
        );
        assert_eq!(
            label_join(&with_dst, "dst", "", &["x", "y"])
                .unwrap()
                .get("dst"),
            None
        );
        // The destination may be one of the sources.
        assert_eq!(
            label_join(&m, "a", "+", &["a", "b"]).unwrap().get("a"),
            Some("1+2")
        );
        assert_eq!(
            label_join(&m, "dst", ",", &["a", ""]).unwrap_err(),
            "invalid source label name in label_join(): "
        );
        assert_eq!(
            label_join(&m, "", ",", &["a"]).unwrap_err(),
            "invalid destination label name in label_join(): "
        );
    }
}
