//! Label sets: sorted by name, names unique, cheap to clone.

use std::fmt;
use std::sync::Arc;

/// The label that carries the metric name.
pub const METRIC_NAME: &str = "__name__";

/// The string type of owned label names and values ([`Label`], and the head's postings
/// keys): it derefs to `str`, compares, hashes and orders like one, and keeps strings of
/// up to 24 bytes inline, so that most labels cost no heap allocation of their own.
/// ([`Labels`] keeps its labels packed in one string instead.)
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

/// A borrowed label of a [`Labels`] set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LabelRef<'a> {
    /// Label name.
    pub name: &'a str,
    /// Label value.
    pub value: &'a str,
}

impl LabelRef<'_> {
    /// An owned copy.
    pub fn to_label(&self) -> Label {
        Label::new(self.name, self.value)
    }
}

/// An immutable, sorted set of labels with unique names. Cloning is an `Arc` bump.
///
/// The labels are packed into one string: each name and each value is preceded by its
/// length in base-64 digits, least significant first, each digit a byte below `0x40`,
/// with `0x40` added to every digit but the last. All length bytes are ASCII, so the
/// whole is valid UTF-8 and names and values are slices of it. A set costs one
/// allocation of about the size of its text: a head holds one per series, and this is
/// most of a series' memory.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Labels(Arc<str>);

/// Appends the length prefix of a string of `n` bytes.
#[inline]
fn put_len(out: &mut String, mut n: usize) {
    loop {
        let digit = (n & 0x3f) as u8;
        n >>= 6;
        if n == 0 {
            out.push(char::from(digit));
            return;
        }
        out.push(char::from(digit | 0x40));
    }
}

#[inline]
fn put_str(out: &mut String, s: &str) {
    put_len(out, s.len());
    out.push_str(s);
}

/// Packed size of a string of `n` bytes.
#[inline]
fn packed_len(n: usize) -> usize {
    let mut digits = 1;
    let mut m = n >> 6;
    while m > 0 {
        digits += 1;
        m >>= 6;
    }
    digits + n
}

/// Iterator over the labels of a [`Labels`], in name order.
#[derive(Clone)]
pub struct LabelsIter<'a> {
    rest: &'a str,
}

impl<'a> LabelsIter<'a> {
    #[inline]
    fn take(&mut self) -> Option<&'a str> {
        let b = self.rest.as_bytes();
        let mut n = 0usize;
        let mut i = 0usize;
        loop {
            let &c = b.get(i)?;
            n |= usize::from(c & 0x3f).checked_shl(6 * i as u32)?;
            i += 1;
            if c & 0x40 == 0 {
                break;
            }
        }
        let end = i.checked_add(n)?;
        let out = self.rest.get(i..end)?;
        self.rest = self.rest.get(end..)?;
        Some(out)
    }
}

/// Iterator over the labels of a [`Labels`] with each label's packed text (see
/// [`Labels::iter_packed`]).
#[derive(Clone)]
pub struct PackedIter<'a> {
    inner: LabelsIter<'a>,
}

impl<'a> Iterator for PackedIter<'a> {
    type Item = (&'a str, LabelRef<'a>);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        let before = self.inner.rest;
        let l = self.inner.next()?;
        let used = before.len() - self.inner.rest.len();
        Some((before.get(..used)?, l))
    }
}

impl<'a> Iterator for LabelsIter<'a> {
    type Item = LabelRef<'a>;

    #[inline]
    fn next(&mut self) -> Option<LabelRef<'a>> {
        let name = self.take()?;
        let value = self.take()?;
        Some(LabelRef { name, value })
    }
}

/// Whether `pairs` are sorted by name with unique names.
fn sorted_unique_pairs<'a>(mut pairs: impl Iterator<Item = (&'a str, &'a str)>) -> bool {
    let Some((mut prev, _)) = pairs.next() else {
        return true;
    };
    for (name, _) in pairs {
        if name <= prev {
            return false;
        }
        prev = name;
    }
    true
}

impl Labels {
    /// The empty label set.
    pub fn empty() -> Self {
        Labels::default()
    }

    /// Packs pairs known to be sorted with unique names.
    fn pack<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)> + Clone) -> Self {
        let size = pairs
            .clone()
            .map(|(n, v)| packed_len(n.len()) + packed_len(v.len()))
            .sum();
        if size == 0 {
            return Labels::default();
        }
        let mut out = String::with_capacity(size);
        Self::pack_into(&mut out, pairs);
        Labels(Arc::from(out))
    }

    /// Writes into `out` (cleared first) the packed text (see [`Self::packed`]) of the
    /// set with these pairs, which must be sorted by name with unique names: lets a
    /// decoder compare borrowed label data with stored sets without building one.
    pub fn pack_into<'a>(out: &mut String, pairs: impl Iterator<Item = (&'a str, &'a str)>) {
        out.clear();
        for (n, v) in pairs {
            put_str(out, n);
            put_str(out, v);
        }
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
        Self::pack(out.iter().map(|l| (l.name.as_str(), l.value.as_str())))
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
        Self::from_sorted_pairs(labels.iter().map(|l| (l.name.as_str(), l.value.as_str())))
    }

    /// Builds a set from `(name, value)` pairs already sorted by name with unique
    /// names, without owned intermediate labels (for decoders). Returns `None` when
    /// they are not sorted and unique.
    pub fn from_sorted_pairs<'a>(
        pairs: impl Iterator<Item = (&'a str, &'a str)> + Clone,
    ) -> Option<Self> {
        sorted_unique_pairs(pairs.clone()).then(|| Self::pack(pairs))
    }

    /// Checks every name: the metric name (if any) and all label names must be valid,
    /// and the set must not be empty.
    pub fn validate(&self) -> Result<(), LabelError> {
        if self.is_empty() {
            return Err(LabelError::Empty);
        }
        for l in self.iter() {
            if l.name == METRIC_NAME {
                validate_metric_name(l.value)?;
            } else {
                validate_label_name(l.name)?;
            }
        }
        Ok(())
    }

    /// The value of `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        for l in self.iter() {
            match l.name.cmp(name) {
                std::cmp::Ordering::Less => {}
                std::cmp::Ordering::Equal => return Some(l.value),
                std::cmp::Ordering::Greater => return None,
            }
        }
        None
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
        self.iter().count()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Iterates the labels in name order.
    #[inline]
    pub fn iter(&self) -> LabelsIter<'_> {
        LabelsIter { rest: &self.0 }
    }

    /// Iterates the labels in name order, each with its packed text: its name and value
    /// with their length prefixes, one contiguous slice. Two labels are equal exactly
    /// when their packed texts are, so one comparison or one hash of the text stands for
    /// two of the name and the value.
    #[inline]
    pub fn iter_packed(&self) -> PackedIter<'_> {
        PackedIter { inner: self.iter() }
    }

    /// The packed form (see [`Labels`]): equal sets have equal packed forms, so it can
    /// be hashed or compared as a whole.
    #[inline]
    pub fn packed(&self) -> &str {
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
        self.filter(|l| !names.contains(&l.name))
    }

    /// A copy keeping only the given names.
    pub fn keep_only(&self, names: &[&str]) -> Labels {
        self.filter(|l| names.contains(&l.name))
    }

    /// A copy keeping the labels for which `keep` returns true.
    pub fn filter(&self, mut keep: impl FnMut(&LabelRef<'_>) -> bool) -> Labels {
        let kept: Vec<LabelRef<'_>> = self.iter().filter(|l| keep(l)).collect();
        Self::pack(kept.iter().map(|l| (l.name, l.value)))
    }

    /// A builder starting from this set.
    pub fn builder(&self) -> LabelsBuilder {
        LabelsBuilder::from(self)
    }

    /// A 64-bit hash that is stable within and across processes (FNV-1a over names and
    /// values with separators). Never persisted as an identity; used for sharding and
    /// grouping.
    pub fn stable_hash(&self) -> u64 {
        stable_hash_pairs(self.iter().map(|l| (l.name, l.value)))
    }
}

impl PartialOrd for Labels {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Lexicographic by `(name, value)` pairs, as a list of labels orders.
impl Ord for Labels {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        if Arc::ptr_eq(&self.0, &other.0) {
            return std::cmp::Ordering::Equal;
        }
        self.iter().cmp(other.iter())
    }
}

/// [`Labels::stable_hash`] of `(name, value)` pairs given in name order, without
/// building a [`Labels`].
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
        for l in self.iter() {
            put(l.name);
            put(l.value);
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
        for (i, l) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}={}", l.name, quote(l.value))?;
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
    type Item = LabelRef<'a>;
    type IntoIter = LabelsIter<'a>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
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
        Labels::pack(
            self.labels
                .iter()
                .map(|l| (l.name.as_str(), l.value.as_str())),
        )
    }
}

impl From<&Labels> for LabelsBuilder {
    fn from(l: &Labels) -> Self {
        LabelsBuilder {
            labels: l.iter().map(|l| l.to_label()).collect(),
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
    fn packed_form_round_trips_any_lengths_and_text() {
        let lens = [0usize, 1, 63, 64, 65, 4095, 4096, 4097, 262_144, 300_000];
        for &n in &lens {
            let long = "é".repeat(n / 2) + &"x".repeat(n % 2);
            let pairs = [
                ("__name__", "m"),
                ("a", ""),
                ("b", long.as_str()),
                ("z\u{1F600}", "ü"),
            ];
            let l = Labels::from_pairs(&pairs);
            let got: Vec<(&str, &str)> = l.iter().map(|l| (l.name, l.value)).collect();
            assert_eq!(got, pairs.to_vec(), "length {n}");
            assert_eq!(l.len(), 4);
            assert_eq!(l.get("b"), Some(long.as_str()));
            assert_eq!(l.get("a"), Some(""));
            assert_eq!(l.get("c"), None);
            assert_eq!(l.get("0"), None);
            assert_eq!(l.builder().labels(), l);
            assert_eq!(Labels::from_sorted_pairs(pairs.iter().copied()), Some(l));
        }
        assert_eq!(
            Labels::from_sorted_pairs([("b", "1"), ("a", "1")].into_iter()),
            None
        );
        assert_eq!(
            Labels::from_sorted_pairs([("a", "1"), ("a", "2")].into_iter()),
            None
        );
        assert!(Labels::empty().is_empty() && Labels::empty().iter().next().is_none());
    }

    #[test]
    fn equality_and_hash_follow_the_pairs() {
        use std::collections::HashSet;
        // the same text split differently between name and value is a different set
        let a = Labels::from_pairs(&[("ab", "c")]);
        let b = Labels::from_pairs(&[("a", "bc")]);
        assert_ne!(a, b);
        let set: HashSet<Labels> = [a.clone(), b.clone(), a.clone()].into_iter().collect();
        assert_eq!(set.len(), 2);
        assert_eq!(a, Labels::from_pairs(&[("ab", "c")]));
        assert!(b < a);
    }

    #[test]
    fn ordering_is_lexicographic_by_pairs() {
        let a = Labels::from_pairs(&[("a", "1")]);
        let b = Labels::from_pairs(&[("a", "1"), ("b", "1")]);
        let c = Labels::from_pairs(&[("a", "2")]);
        assert!(a < b && b < c);
    }
}
