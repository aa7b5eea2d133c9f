//! Label matchers: `=`, `!=`, `=~`, `!~`.

use std::fmt;

use regex::Regex;

use super::labels::quote;

/// The matching operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchOp {
    /// `=`
    Equal,
    /// `!=`
    NotEqual,
    /// `=~` (fully anchored)
    RegexMatch,
    /// `!~` (fully anchored)
    RegexNoMatch,
}

impl fmt::Display for MatchOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::RegexMatch => "=~",
            MatchOp::RegexNoMatch => "!~",
        })
    }
}

/// A matcher could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MatcherError {
    /// The regular expression does not compile.
    #[error("invalid regular expression {pattern:?}: {reason}")]
    InvalidRegex {
        /// The pattern as written.
        pattern: String,
        /// Why it failed.
        reason: String,
    },
}

/// Matches one label's value. A missing label matches as the empty string, so
/// `{foo=""}` selects series without `foo`.
#[derive(Clone)]
pub struct Matcher {
    /// The label name.
    pub name: String,
    /// The operation.
    pub op: MatchOp,
    /// The value or pattern as written.
    pub value: String,
    re: Option<Regex>,
}

impl Matcher {
    /// Builds a matcher, compiling the regex (anchored at both ends, `.` matching
    /// newlines, as Prometheus 3 does) for `=~` and `!~`.
    pub fn new(
        op: MatchOp,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<Self, MatcherError> {
        let name = name.into();
        let value = value.into();
        let re = match op {
            MatchOp::RegexMatch | MatchOp::RegexNoMatch => Some(compile_anchored(&value)?),
            MatchOp::Equal | MatchOp::NotEqual => None,
        };
        Ok(Matcher {
            name,
            op,
            value,
            re,
        })
    }

    /// `name="value"`.
    pub fn equal(name: impl Into<String>, value: impl Into<String>) -> Self {
        Matcher {
            name: name.into(),
            op: MatchOp::Equal,
            value: value.into(),
            re: None,
        }
    }

    /// Whether `value` (the label's value, `""` when the label is missing) matches.
    #[inline]
    pub fn matches(&self, value: &str) -> bool {
        match (self.op, &self.re) {
            (MatchOp::Equal, _) => self.value == value,
            (MatchOp::NotEqual, _) => self.value != value,
            (MatchOp::RegexMatch, Some(re)) => re.is_match(value),
            (MatchOp::RegexNoMatch, Some(re)) => !re.is_match(value),
            // unreachable by construction: regex ops always carry a compiled regex
            (MatchOp::RegexMatch | MatchOp::RegexNoMatch, None) => false,
        }
    }

    /// Whether this matcher matches the empty string (and so series lacking the label).
    pub fn matches_empty(&self) -> bool {
        self.matches("")
    }

    /// For `=~` patterns that are a plain alternation of literals (`a|b|c`), the literals.
    /// Lets an index answer with postings lookups instead of scanning values.
    pub fn set_matches(&self) -> Option<Vec<String>> {
        if self.op != MatchOp::RegexMatch {
            return None;
        }
        let mut out = Vec::new();
        for part in self.value.split('|') {
            if part.chars().any(|c| "\\.+*?()[]{}^$|".contains(c)) {
                return None;
            }
            out.push(part.to_string());
        }
        Some(out)
    }
}

fn compile_anchored(pattern: &str) -> Result<Regex, MatcherError> {
    super::goregex::compile_anchored(pattern).map_err(|e| MatcherError::InvalidRegex {
        pattern: pattern.to_string(),
        reason: e.to_string(),
    })
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.op == other.op && self.value == other.value
    }
}

impl Eq for Matcher {}

impl fmt::Debug for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}{}", self.name, self.op, quote(&self.value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regex_is_anchored() {
        let m = Matcher::new(MatchOp::RegexMatch, "a", "fo+").unwrap();
        assert!(m.matches("foo"));
        assert!(!m.matches("xfoo"));
        assert!(!m.matches("foox"));
        let dot = Matcher::new(MatchOp::RegexMatch, "a", "a.b").unwrap();
        assert!(dot.matches("a\nb"));
    }

    #[test]
    fn regex_uses_go_semantics() {
        // Go's \d and \w are ASCII-only, and a brace that is no repetition is literal.
        let d = Matcher::new(MatchOp::RegexMatch, "a", r"\d+").unwrap();
        assert!(d.matches("42"));
        assert!(!d.matches("\u{661}\u{662}"));
        let w = Matcher::new(MatchOp::RegexNoMatch, "a", r"\w+").unwrap();
        assert!(w.matches("straße"));
        let b = Matcher::new(MatchOp::RegexMatch, "a", "x{").unwrap();
        assert!(b.matches("x{"));
    }

    #[test]
    fn empty_value_semantics() {
        assert!(Matcher::equal("foo", "").matches_empty());
        assert!(!Matcher::new(MatchOp::NotEqual, "foo", "")
            .unwrap()
            .matches_empty());
        assert!(Matcher::new(MatchOp::RegexMatch, "foo", ".*")
            .unwrap()
            .matches_empty());
    }

    #[test]
    fn bad_regex_is_an_error() {
        assert!(matches!(
            Matcher::new(MatchOp::RegexMatch, "a", "("),
            Err(MatcherError::InvalidRegex { .. })
        ));
    }

    #[test]
    fn set_matches_extracts_literals() {
        let m = Matcher::new(MatchOp::RegexMatch, "a", "x|y|z").unwrap();
        assert_eq!(m.set_matches().unwrap(), vec!["x", "y", "z"]);
        assert!(Matcher::new(MatchOp::RegexMatch, "a", "x.*")
            .unwrap()
            .set_matches()
            .is_none());
    }
}
