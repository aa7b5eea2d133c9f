//! Label sets: sorted by name, names unique, cheap to clone.

use std::fmt;
use std::sync::Arc;

/// The label that carries the metric name.
pub const METRIC_NAME: &str = "__name__";

/// The string type of label names and values: it derefs to `str`, compares, hashes and
/// orders like one, and keeps strings of up to 24 bytes inline, so that most labels
/// cost no heap allocation of their own (a head holds millions of them).
pub type LabelStr = compact_str::CompactString;

/// One name/value pair.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Label {
    /// Label name.
    pub name: LabelStr,
    /// Label value (any UTF-8).
    pub value: LabelStr,
}

impl Label {
    /// A label from a name and a value.
    pub fn new(name: impl Into<LabelStr>, value: impl Into<LabelStr>) -> Self {
        Label {
            name: name.into(),
            value: value.into(),
        }
    }
}

/// Why a name was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LabelError {
    /// The metric name does not match `[a-zA-Z_:][a-zA-Z0-9_:]*`.
    #[error("invalid metric name {0:?}")]
    InvalidMetricName(String),
    /// The label name does not match `[a-zA-Z_][a-zA-Z0-9_]*`.
    #[error("invalid label name {0:?}")]
    InvalidLabelName(String),
    /// The same label name appears twice in one set.
    #[error("label set has duplicate label name {0:?}")]
    DuplicateLabelName(String),
    /// A label set without any label.
    #[error("label set is empty")]
    Empty,
}

/// Whether `labels` are sorted by name with unique names.
fn sorted_unique(labels: &[Label]) -> bool {
    labels
        .windows(2)
        .all(|w| matches!(w, [a, b] if a.name < b.name))
}

/// Whether `name` is a valid metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`).
pub fn is_valid_metric_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    match bytes.next() {
        Some(b) if b.is_ascii_alphabetic() || b == b'_' || b == b':' => {}
        _ => return false,
    }
    bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
}

/// Whether `name` is a valid label name (`[a-zA-Z_][a-zA-Z0-9_]*`).
pub fn is_valid_label_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    match bytes.next() {
        Some(b) if b.is_ascii_alphabetic() || b == b'_' => {}
        _ => return false,
    }
    bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Checks a metric name, returning a descriptive error.
pub fn validate_metric_name(name: &str) -> Result<(), LabelError> {
    if is_valid_metric_name(name) {
        Ok(())
    } else {
        Err(LabelError::InvalidMetricName(name.to_string()))
    }
}

/// Checks a label name, returning a descriptive error.
pub fn validate_label_name(name: &str) -> Result<(), LabelError> {
    if is_valid_label_name(name) {
        Ok(())
    } else {
        Err(LabelError::InvalidLabelName(name.to_string()))
    }
}

/// An immutable, sorted set of labels with unique names. Cloning is an `Arc` bump.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Labels(Arc<[Label]>);

impl Labels {
    /// The empty label set.
    pub fn empty() -> Self {
        Labels(Arc::from(Vec::new()))
    }

    /// Builds a set from labels in any order. If a name repeats, the last value wins.
    pub fn new(mut labels: Vec<Label>) -> Self {
        labels.sort_by(|a, b| a.name.cmp(&b.name));
        // keep the last of each run of equal names
        let mut out: Vec<Label> = Vec::with_capacity(labels.len());
        for l in labels {
            match out.last_mut() {
                Some(prev) if prev.name == l.name => *prev = l,
                _ => out.push(l),
            }
        }
        Labels(Arc::from(out))
    }

    /// Builds a set from `(name, value)` pairs in any order.
    pub fn from_pairs<N: AsRef<str>, V: AsRef<str>>(pairs: &[(N, V)]) -> Self {
        Self::new(
            pairs
                .iter()
                .map(|(n, v)| Label::new(n.as_ref(), v.as_ref()))
                .collect(),
        )
    }

    /// Builds a set from labels already sorted by name with unique names.
    /// Returns `None` when they are not.
    pub fn from_sorted(labels: Vec<Label>) -> Option<Self> {
        sorted_unique(&labels).then(|| Labels(Arc::from(labels)))
    }

    /// Like [`Self::from_sorted`], taking the labels out of `labels` (left empty, with
    /// its capacity, for reuse) into a single allocation.
    pub fn from_sorted_drain(labels: &mut Vec<Label>) -> Option<Self> {
        let out = sorted_unique(labels).then(|| Labels(labels.drain(..).collect()));
        labels.clear();
        out
    }

    /// Checks every name: the metric name (if any) and all label names must be valid,
    /// and the set must not be empty.
    pub fn validate(&self) -> Result<(), LabelError> {
        if self.0.is_empty() {
            return Err(LabelError::Empty);
        }
        for l in self.0.iter() {
            if l.name == METRIC_NAME {
                validate_metric_name(&l.value)?;
            } else {
                validate_label_name(&l.name)?;
            }
        }
        Ok(())
    }

    /// The value of `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .binary_search_by(|l| l.name.as_str().cmp(name))
            .ok()
            .and_then(|i| self.0.get(i))
            .map(|l| l.value.as_str())
    }

    /// The value of `name`, or `""` when absent (Prometheus's convention).
    pub fn get_or_empty(&self, name: &str) -> &str {
        self.get(name).unwrap_or("")
    }

    /// Whether a label called `name` is present.
    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// The metric name, if any.
    pub fn metric_name(&self) -> Option<&str> {
        self.get(METRIC_NAME)
    }

    /// Number of labels.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Iterates the labels in name order.
    pub fn iter(&self) -> std::slice::Iter<'_, Label> {
        self.0.iter()
    }

    /// The labels as a slice.
    pub fn as_slice(&self) -> &[Label] {
        &self.0
    }

    /// A copy without the metric name.
    pub fn without_metric_name(&self) -> Labels {
        if self.has(METRIC_NAME) {
            self.filter(|l| l.name != METRIC_NAME)
        } else {
            self.clone()
        }
    }

    /// A copy without the given names.
    pub fn without(&self, names: &[&str]) -> Labels {
        self.filter(|l| !names.contains(&l.name.as_str()))
    }

    /// A copy keeping only the given names.
    pub fn keep_only(&self, names: &[&str]) -> Labels {
        self.filter(|l| names.contains(&l.name.as_str()))
    }

    /// A copy keeping the labels for which `keep` returns true.
    pub fn filter(&self, mut keep: impl FnMut(&Label) -> bool) -> Labels {
        Labels(
            self.0
                .iter()
                .filter(|l| keep(l))
                .cloned()
                .collect::<Vec<_>>()
                .into(),
        )
    }

    /// A builder starting from this set.
    pub fn builder(&self) -> LabelsBuilder {
        LabelsBuilder::from(self)
    }

    /// A 64-bit hash that is stable within and across processes (FNV-1a over names and
    /// values with separators). Never persisted as an identity; used for sharding and
    /// grouping.
    pub fn stable_hash(&self) -> u64 {
        stable_hash_pairs(self.0.iter().map(|l| (l.name.as_str(), l.value.as_str())))
    }
}

/// [`Labels::stable_hash`] of `(name, value)` pairs given in name order, without
/// building a [`Labels`] (decoders use it to find an existing series without
/// allocating).
pub fn stable_hash_pairs<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    for (name, value) in pairs {
        feed(name.as_bytes());
        feed(&[0xff]);
        feed(value.as_bytes());
        feed(&[0xff]);
    }
    h
}

impl Labels {
    /// Prometheus's `labels.Labels.Hash()` in its default (string-packed) build:
    /// xxHash64 (seed 0) over each name and value, each preceded by its length as
    /// one byte when under 255, otherwise `0xff` and three little-endian bytes. Used
    /// where Prometheus's choice of series depends on the hash, such as
    /// `limit_ratio`, so that Aion picks the same series.
    pub fn prometheus_hash(&self) -> u64 {
        let mut h = xxhash_rust::xxh64::Xxh64::new(0);
        let mut put = |s: &str| {
            let n = s.len();
            if n < 255 {
                h.update(&[n as u8]);
            } else {
                h.update(&[0xff, n as u8, (n >> 8) as u8, (n >> 16) as u8]);
            }
            h.update(s.as_bytes());
        };
        for l in self.0.iter() {
            put(&l.name);
            put(&l.value);
        }
        h.digest()
    }
}

impl fmt::Debug for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Prints `{a="1", b="2"}` with Go-style quoting, as Prometheus's `Labels.String()` does.
impl fmt::Display for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, l) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}={}", l.name, quote(&l.value))?;
        }
        f.write_str("}")
    }
}

/// Quotes `s` with Go's `strconv.Quote` rules.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() => {
                let n = c as u32;
                if n <= 0xffff {
                    out.push_str(&format!("\\u{n:04x}"));
                } else {
                    out.push_str(&format!("\\U{n:08x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl<'a> IntoIterator for &'a Labels {
    type Item = &'a Label;
    type IntoIter = std::slice::Iter<'a, Label>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// Mutable construction of a label set. Setting an empty value deletes the label, as in
/// Prometheus.
#[derive(Debug, Clone, Default)]
pub struct LabelsBuilder {
    labels: Vec<Label>,
}

impl LabelsBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `name` to `value`; an empty value deletes `name`.
    pub fn set(&mut self, name: &str, value: &str) -> &mut Self {
        if value.is_empty() {
            return self.del(name);
        }
        match self.labels.binary_search_by(|l| l.name.as_str().cmp(name)) {
            Ok(i) => {
                if let Some(l) = self.labels.get_mut(i) {
                    l.value = value.into();
                }
            }
            Err(i) => self.labels.insert(i, Label::new(name, value)),
        }
        self
    }

    /// Deletes `name` if present.
    pub fn del(&mut self, name: &str) -> &mut Self {
        if let Ok(i) = self.labels.binary_search_by(|l| l.name.as_str().cmp(name)) {
            self.labels.remove(i);
        }
        self
    }

    /// The current value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.labels
            .binary_search_by(|l| l.name.as_str().cmp(name))
            .ok()
            .and_then(|i| self.labels.get(i))
            .map(|l| l.value.as_str())
    }

    /// Keeps only labels for which `keep` returns true.
    pub fn retain(&mut self, keep: impl FnMut(&Label) -> bool) -> &mut Self {
        self.labels.retain(keep);
        self
    }

    /// The finished label set.
    pub fn labels(&self) -> Labels {
        Labels(Arc::from(self.labels.clone()))
    }
}

impl From<&Labels> for LabelsBuilder {
    fn from(l: &Labels) -> Self {
        LabelsBuilder {
            labels: l.0.to_vec(),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn prometheus_hash_matches_the_string_packed_layout() {
        // Reference values: xxHash64 of the length-prefixed encoding, computed
        // independently.
        let l = |p: &[(&str, &str)]| Labels::from_pairs(p);
        assert_eq!(
            l(&[("__name__", "up"), ("job", "node")]).prometheus_hash(),
            0x169f_7118_f893_6ba5
        );
        let long = "x".repeat(300);
        assert_eq!(
            l(&[("a", long.as_str())]).prometheus_hash(),
            0x7334_729f_4d20_ea0b
        );
        assert_eq!(Labels::default().prometheus_hash(), 0xef46_db37_51d8_e999);
    }

    use super::*;

    #[test]
    fn sorted_and_deduplicated() {
        let l = Labels::from_pairs(&[("b", "2"), ("a", "1"), ("b", "3")]);
        assert_eq!(l.to_string(), r#"{a="1", b="3"}"#);
        assert_eq!(l.get("b"), Some("3"));
        assert_eq!(l.get("c"), None);
    }

    #[test]
    fn names_validated() {
        assert!(is_valid_metric_name("a:b_c9"));
        assert!(!is_valid_metric_name("9a"));
        assert!(!is_valid_metric_name(""));
        assert!(is_valid_label_name("_a9"));
        assert!(!is_valid_label_name("a:b"));
        assert!(!is_valid_label_name("a-b"));
        let bad = Labels::from_pairs(&[("__name__", "1x")]);
        assert_eq!(
            bad.validate(),
            Err(LabelError::InvalidMetricName("1x".into()))
        );
        assert_eq!(Labels::empty().validate(), Err(LabelError::Empty));
    }

    #[test]
    fn builder_empty_value_deletes() {
        let l = Labels::from_pairs(&[("a", "1"), ("b", "2")]);
        let mut b = l.builder();
        b.set("a", "").set("c", "3");
        assert_eq!(b.labels().to_string(), r#"{b="2", c="3"}"#);
    }

    #[test]
    fn quoting_matches_go() {
        assert_eq!(quote("a\"b\\c\nd"), r#""a\"b\\c\nd""#);
    }

    #[test]
    fn ordering_is_lexicographic_by_pairs() {
        let a = Labels::from_pairs(&[("a", "1")]);
        let b = Labels::from_pairs(&[("a", "1"), ("b", "1")]);
        let c = Labels::from_pairs(&[("a", "2")]);
        assert!(a < b && b < c);
    }
}
