//! Relabelling rules (`relabel_configs`, `metric_relabel_configs`,
//! `alert_relabel_configs`) and their application to a label set, with every action
//! Prometheus has: replace, keep, drop, keepequal, dropequal, hashmod, labelmap,
//! labeldrop, labelkeep, lowercase, uppercase.

use std::fmt;

use regex::Regex;
use serde::{Deserialize, Deserializer};

use crate::model::goregex::compile_anchored;
use crate::model::{Labels, LabelsBuilder};
use crate::promql::functions::label::expand;

/// A relabelling action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RelabelAction {
    /// Set `target_label` to the expanded replacement when the regex matches.
    #[default]
    Replace,
    /// Drop the set unless the regex matches.
    Keep,
    /// Drop the set when the regex matches.
    Drop,
    /// Drop the set unless the source value equals the target label's value.
    KeepEqual,
    /// Drop the set when the source value equals the target label's value.
    DropEqual,
    /// Set `target_label` to a hash of the source value modulo `modulus`.
    HashMod,
    /// Copy labels whose names match to the expanded replacement name.
    LabelMap,
    /// Remove labels whose names match.
    LabelDrop,
    /// Remove labels whose names do not match.
    LabelKeep,
    /// Set `target_label` to the lowercased source value.
    Lowercase,
    /// Set `target_label` to the uppercased source value.
    Uppercase,
}

impl RelabelAction {
    /// The name as written in YAML.
    pub fn as_str(self) -> &'static str {
        match self {
            RelabelAction::Replace => "replace",
            RelabelAction::Keep => "keep",
            RelabelAction::Drop => "drop",
            RelabelAction::KeepEqual => "keepequal",
            RelabelAction::DropEqual => "dropequal",
            RelabelAction::HashMod => "hashmod",
            RelabelAction::LabelMap => "labelmap",
            RelabelAction::LabelDrop => "labeldrop",
            RelabelAction::LabelKeep => "labelkeep",
            RelabelAction::Lowercase => "lowercase",
            RelabelAction::Uppercase => "uppercase",
        }
    }
}

impl<'de> Deserialize<'de> for RelabelAction {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(match s.to_ascii_lowercase().as_str() {
            "replace" => RelabelAction::Replace,
            "keep" => RelabelAction::Keep,
            "drop" => RelabelAction::Drop,
            "keepequal" => RelabelAction::KeepEqual,
            "dropequal" => RelabelAction::DropEqual,
            "hashmod" => RelabelAction::HashMod,
            "labelmap" => RelabelAction::LabelMap,
            "labeldrop" => RelabelAction::LabelDrop,
            "labelkeep" => RelabelAction::LabelKeep,
            "lowercase" => RelabelAction::Lowercase,
            "uppercase" => RelabelAction::Uppercase,
            "" => return Err(serde::de::Error::custom("relabel action cannot be empty")),
            _ => {
                return Err(serde::de::Error::custom(format!(
                    "unknown relabel action {s:?}"
                )))
            }
        })
    }
}

/// A relabel regex: anchored at both ends, Go (RE2) syntax.
#[derive(Clone)]
pub struct RelabelRegex {
    src: String,
    re: Regex,
}

impl RelabelRegex {
    /// Compiles `src` anchored (`^(?s:src)$`).
    pub fn new(src: &str) -> Result<Self, String> {
        let re = compile_anchored(src).map_err(|e| format!("error parsing regexp: {e}"))?;
        Ok(RelabelRegex {
            src: src.to_string(),
            re,
        })
    }

    /// The regex as written.
    pub fn as_str(&self) -> &str {
        &self.src
    }

    /// Whether the whole of `s` matches.
    pub fn is_match(&self, s: &str) -> bool {
        self.re.is_match(s)
    }
}

impl Default for RelabelRegex {
    fn default() -> Self {
        match RelabelRegex::new(DEFAULT_REGEX) {
            Ok(r) => r,
            Err(e) => unreachable!("the default relabel regex compiles: {e}"),
        }
    }
}

impl PartialEq for RelabelRegex {
    fn eq(&self, o: &Self) -> bool {
        self.src == o.src
    }
}

impl fmt::Debug for RelabelRegex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.src)
    }
}

impl<'de> Deserialize<'de> for RelabelRegex {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        RelabelRegex::new(&s).map_err(serde::de::Error::custom)
    }
}

const DEFAULT_REGEX: &str = "(.*)";
const DEFAULT_SEPARATOR: &str = ";";
const DEFAULT_REPLACEMENT: &str = "$1";

fn default_separator() -> String {
    DEFAULT_SEPARATOR.into()
}
fn default_replacement() -> String {
    DEFAULT_REPLACEMENT.into()
}

/// One relabelling rule.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelabelConfig {
    /// Labels whose values are joined with `separator` to form the source value.
    #[serde(default)]
    pub source_labels: Vec<String>,
    /// Separator of the source values (`;`).
    #[serde(default = "default_separator")]
    pub separator: String,
    /// The regex (`(.*)`).
    #[serde(default)]
    pub regex: RelabelRegex,
    /// Modulus for `hashmod`.
    #[serde(default)]
    pub modulus: u64,
    /// The label written by `replace`, `hashmod`, `lowercase`, `uppercase` or compared
    /// by `keepequal`/`dropequal`.
    #[serde(default)]
    pub target_label: String,
    /// The replacement template (`$1`).
    #[serde(default = "default_replacement")]
    pub replacement: String,
    /// The action (`replace`).
    #[serde(default)]
    pub action: RelabelAction,
}

impl Default for RelabelConfig {
    fn default() -> Self {
        RelabelConfig {
            source_labels: Vec::new(),
            separator: default_separator(),
            regex: RelabelRegex::default(),
            modulus: 0,
            target_label: String::new(),
            replacement: default_replacement(),
            action: RelabelAction::Replace,
        }
    }
}

impl RelabelConfig {
    /// Checks the rule's fields against its action, with Prometheus's messages.
    pub fn validate(&self) -> Result<(), String> {
        use RelabelAction::*;
        let a = self.action;
        if self.modulus == 0 && a == HashMod {
            return Err("relabel configuration for hashmod requires non-zero modulus".into());
        }
        if matches!(
            a,
            Replace | HashMod | Lowercase | Uppercase | KeepEqual | DropEqual
        ) && self.target_label.is_empty()
        {
            return Err(format!(
                "relabel configuration for {} action requires 'target_label' value",
                a.as_str()
            ));
        }
        if matches!(a, KeepEqual | DropEqual)
            && (self.regex.as_str() != DEFAULT_REGEX
                || self.modulus != 0
                || self.separator != DEFAULT_SEPARATOR
                || self.replacement != DEFAULT_REPLACEMENT)
        {
            return Err(format!(
                "{} action requires only 'source_labels' and `target_label`, and no other fields",
                a.as_str()
            ));
        }
        if matches!(a, LabelDrop | LabelKeep)
            && (!self.source_labels.is_empty()
                || !self.target_label.is_empty()
                || self.modulus != 0
                || self.separator != DEFAULT_SEPARATOR
                || self.replacement != DEFAULT_REPLACEMENT)
        {
            return Err(format!(
                "{} action requires only 'regex', and no other fields",
                a.as_str()
            ));
        }
        Ok(())
    }

    fn source_value(&self, lb: &LabelsBuilder) -> String {
        let mut v = String::new();
        for (i, n) in self.source_labels.iter().enumerate() {
            if i > 0 {
                v.push_str(&self.separator);
            }
            v.push_str(lb.get(n).unwrap_or(""));
        }
        v
    }

    /// Applies the rule to a builder; `false` means the label set is dropped.
    pub fn apply(&self, lb: &mut LabelsBuilder) -> bool {
        use RelabelAction::*;
        let val = self.source_value(lb);
        match self.action {
            Drop => {
                if self.regex.is_match(&val) {
                    return false;
                }
            }
            Keep => {
                if !self.regex.is_match(&val) {
                    return false;
                }
            }
            DropEqual => {
                if lb.get(&self.target_label).unwrap_or("") == val {
                    return false;
                }
            }
            KeepEqual => {
                if lb.get(&self.target_label).unwrap_or("") != val {
                    return false;
                }
            }
            Replace => {
                let Some(caps) = self.regex.re.captures(&val) else {
                    return true;
                };
                let target = expand(&self.regex.re, &caps, &self.target_label);
                if !is_valid_utf8_label_name(&target) {
                    return true;
                }
                let res = expand(&self.regex.re, &caps, &self.replacement);
                if res.is_empty() {
                    lb.del(&target);
                } else {
                    lb.set(&target, &res);
                }
            }
            Lowercase => {
                lb.set(&self.target_label, &val.to_lowercase());
            }
            Uppercase => {
                lb.set(&self.target_label, &val.to_uppercase());
            }
            HashMod => {
                let d = md5(val.as_bytes());
                let mut h: u64 = 0;
                for b in d.iter().skip(8) {
                    h = (h << 8) | u64::from(*b);
                }
                let m = h.checked_rem(self.modulus).unwrap_or(0);
                lb.set(&self.target_label, &m.to_string());
            }
            LabelMap => {
                let current = lb.labels();
                for l in current.iter() {
                    if let Some(caps) = self.regex.re.captures(l.name) {
                        let name = expand(&self.regex.re, &caps, &self.replacement);
                        lb.set(&name, l.value);
                    }
                }
            }
            LabelDrop => {
                lb.retain(|l| !self.regex.is_match(&l.name));
            }
            LabelKeep => {
                lb.retain(|l| self.regex.is_match(&l.name));
            }
        }
        true
    }
}

/// Prometheus 3 accepts any non-empty UTF-8 label name.
fn is_valid_utf8_label_name(s: &str) -> bool {
    !s.is_empty()
}

/// Applies `rules` in order; `None` when a rule drops the set.
pub fn process(labels: &Labels, rules: &[RelabelConfig]) -> Option<Labels> {
    if rules.is_empty() {
        return Some(labels.clone());
    }
    let mut lb = labels.builder();
    for r in rules {
        if !r.apply(&mut lb) {
            return None;
        }
    }
    Some(lb.labels())
}

/// MD5 (RFC 1321), used only by `hashmod` to pick the same shard Prometheus picks.
pub fn md5(input: &[u8]) -> [u8; 16] {
    const S: [u32; 64] = [
        7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9, 14, 20, 5, 9, 14, 20, 5,
        9, 14, 20, 5, 9, 14, 20, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 6, 10,
        15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
    ];
    let k: [u32; 64] =
        std::array::from_fn(|i| ((i as f64 + 1.0).sin().abs() * 4_294_967_296.0) as u32);
    let mut a0: u32 = 0x6745_2301;
    let mut b0: u32 = 0xefcd_ab89;
    let mut c0: u32 = 0x98ba_dcfe;
    let mut d0: u32 = 0x1032_5476;
    let mut msg = input.to_vec();
    let bit_len = (input.len() as u64).wrapping_mul(8);
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bit_len.to_le_bytes());
    for chunk in msg.chunks_exact(64) {
        let mut m = [0u32; 16];
        for (w, c) in m.iter_mut().zip(chunk.chunks_exact(4)) {
            *w = u32::from_le_bytes([
                c.first().copied().unwrap_or(0),
                c.get(1).copied().unwrap_or(0),
                c.get(2).copied().unwrap_or(0),
                c.get(3).copied().unwrap_or(0),
            ]);
        }
        let (mut a, mut b, mut c, mut d) = (a0, b0, c0, d0);
        for i in 0..64usize {
            let (f, g) = match i / 16 {
                0 => ((b & c) | (!b & d), i),
                1 => ((d & b) | (!d & c), (5 * i + 1) % 16),
                2 => (b ^ c ^ d, (3 * i + 5) % 16),
                _ => (c ^ (b | !d), (7 * i) % 16),
            };
            let f = f
                .wrapping_add(a)
                .wrapping_add(k.get(i).copied().unwrap_or(0))
                .wrapping_add(m.get(g).copied().unwrap_or(0));
            a = d;
            d = c;
            c = b;
            b = b.wrapping_add(f.rotate_left(S.get(i).copied().unwrap_or(0)));
        }
        a0 = a0.wrapping_add(a);
        b0 = b0.wrapping_add(b);
        c0 = c0.wrapping_add(c);
        d0 = d0.wrapping_add(d);
    }
    let mut out = [0u8; 16];
    for (i, w) in [a0, b0, c0, d0].iter().enumerate() {
        if let Some(dst) = out.get_mut(i * 4..i * 4 + 4) {
            dst.copy_from_slice(&w.to_le_bytes());
        }
    }
    out
}
