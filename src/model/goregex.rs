//! Go (RE2) regular expressions on top of Rust's `regex` crate.
//!
//! Prometheus compiles label matchers, `label_replace` and relabelling regexes with
//! Go's RE2 engine. Rust's `regex` accepts almost the same syntax, but a few constructs
//! mean different things; [`translate_go_regex`] rewrites those, and [`compile_anchored`]
//! builds the fully anchored, size-limited regex all three use.

use regex::Regex;

/// Upper bound on the compiled size of one regex, so a pathological pattern fails
/// with an error instead of consuming the server's memory.
pub const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Compiles `pattern` (Go syntax) anchored at both ends with `.` matching newlines,
/// as Prometheus anchors matcher and relabel regexes.
pub fn compile_anchored(pattern: &str) -> Result<Regex, regex::Error> {
    regex::RegexBuilder::new(&format!("^(?s:{})$", translate_go_regex(pattern)))
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
}

/// Rewrites a Go (RE2) regular expression into the equivalent pattern for Rust's
/// `regex` crate where the two dialects differ:
///
/// - `\d \D \w \W \s \S` are ASCII-only in Go (Rust's are Unicode-aware), inside and
///   outside bracket classes; `\b \B` are ASCII word boundaries.
/// - `{` that does not start a valid repetition (`{n}`, `{n,}`, `{n,m}`) is a literal.
/// - `\Q...\E` quotes its contents literally.
///
/// Everything else is passed through unchanged (the dialects agree on it, or the
/// pattern is invalid in both).
pub fn translate_go_regex(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 8);
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    // Inside a bracket class (Go has no nested classes; `[[:alpha:]]` is one class).
    let mut in_class = false;
    while let Some(&c) = chars.get(i) {
        match c {
            '\\' => {
                let Some(&n) = chars.get(i + 1) else {
                    out.push(c);
                    i += 1;
                    continue;
                };
                i += 2;
                match (n, in_class) {
                    ('d', false) => out.push_str("[0-9]"),
                    ('D', false) => out.push_str("[^0-9]"),
                    ('w', false) => out.push_str("[0-9A-Za-z_]"),
                    ('W', false) => out.push_str("[^0-9A-Za-z_]"),
                    ('s', false) => out.push_str("[\\t\\n\\f\\r ]"),
                    ('S', false) => out.push_str("[^\\t\\n\\f\\r ]"),
                    ('b', false) => out.push_str("(?-u:\\b)"),
                    ('B', false) => out.push_str("(?-u:\\B)"),
                    ('d', true) => out.push_str("0-9"),
                    ('D', true) => out.push_str("[^0-9]"),
                    ('w', true) => out.push_str("0-9A-Za-z_"),
                    ('W', true) => out.push_str("[^0-9A-Za-z_]"),
                    ('s', true) => out.push_str("\\t\\n\\f\\r "),
                    ('S', true) => out.push_str("[^\\t\\n\\f\\r ]"),
                    ('Q', false) => {
                        let mut lit = String::new();
                        while let Some(&q) = chars.get(i) {
                            if q == '\\' && chars.get(i + 1) == Some(&'E') {
                                i += 2;
                                break;
                            }
                            lit.push(q);
                            i += 1;
                        }
                        out.push_str(&regex::escape(&lit));
                    }
                    ('p' | 'P' | 'x', _) if chars.get(i) == Some(&'{') => {
                        // `\p{Greek}`, `\x{263a}`: copy the braced argument as is.
                        out.push('\\');
                        out.push(n);
                        while let Some(&q) = chars.get(i) {
                            out.push(q);
                            i += 1;
                            if q == '}' {
                                break;
                            }
                        }
                    }
                    _ => {
                        out.push('\\');
                        out.push(n);
                    }
                }
            }
            '[' if !in_class => {
                in_class = true;
                out.push('[');
                i += 1;
                // A `^` and then a `]` right after the opening bracket are literal.
                if chars.get(i) == Some(&'^') {
                    out.push('^');
                    i += 1;
                }
                if chars.get(i) == Some(&']') {
                    out.push_str("\\]");
                    i += 1;
                }
            }
            '[' if in_class && chars.get(i + 1) == Some(&':') => {
                // A POSIX class such as `[:alpha:]`: copy through its closing `:]`.
                let close = (i + 2..chars.len().saturating_sub(1))
                    .find(|&j| chars.get(j) == Some(&':') && chars.get(j + 1) == Some(&']'));
                match close {
                    Some(j) => {
                        out.extend(chars.get(i..j + 2).unwrap_or(&[]));
                        i = j + 2;
                    }
                    None => {
                        out.push_str("\\[");
                        i += 1;
                    }
                }
            }
            '[' => {
                // A literal `[` inside a class (Go); Rust would read a nested class.
                out.push_str("\\[");
                i += 1;
            }
            ']' if in_class => {
                in_class = false;
                out.push(']');
                i += 1;
            }
            '{' if !in_class => {
                let end = repetition_end(&chars, i);
                match end {
                    Some(e) => {
                        out.extend(chars.get(i..e).unwrap_or(&[]));
                        i = e;
                    }
                    None => {
                        out.push_str("\\{");
                        i += 1;
                    }
                }
            }
            '}' if !in_class => {
                out.push_str("\\}");
                i += 1;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// If `chars[start]` begins a valid repetition `{n}`, `{n,}` or `{n,m}`, the index just
/// past its closing brace.
fn repetition_end(chars: &[char], start: usize) -> Option<usize> {
    let mut i = start + 1;
    let digits = |i: &mut usize| {
        let from = *i;
        while chars.get(*i).is_some_and(|c| c.is_ascii_digit()) {
            *i += 1;
        }
        *i > from
    };
    if !digits(&mut i) {
        return None;
    }
    if chars.get(i) == Some(&',') {
        i += 1;
        digits(&mut i);
    }
    (chars.get(i) == Some(&'}')).then_some(i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_regex_dialect() {
        let m = |re: &str, s: &str| compile_anchored(re).unwrap().is_match(s);
        // Perl classes are ASCII-only, in and out of brackets.
        assert!(m(r"\d+", "123"));
        assert!(!m(r"\d+", "\u{661}\u{662}"));
        assert!(m(r"[\d_]+", "1_2"));
        assert!(!m(r"[\d]+", "\u{661}"));
        assert!(m(r"[^\d]+", "abc"));
        assert!(m(r"\D+", "\u{661}"));
        assert!(m(r"[a\D]+", "a-b"));
        assert!(!m(r"\w+", "straße"));
        assert!(m(r"\w+", "Az_09"));
        assert!(m(r"\s", "\t"));
        assert!(!m(r"\s", "\u{a0}"));
        assert!(!m(r"\s", "\u{b}"));
        assert!(m(r"a\bb|a b", "a b"));
        assert!(m(r".*\bx\b.*", "é x é"));
        // A brace that is not a repetition is a literal.
        assert!(m(r"x{", "x{"));
        assert!(m(r"a{1", "a{1"));
        assert!(m(r"{foo}", "{foo}"));
        assert!(m(r"a{2}", "aa"));
        assert!(m(r"a{1,}", "aaa"));
        assert!(m(r"a{1,2}b", "aab"));
        // \Q...\E quotes.
        assert!(m(r"\Q.*+\E!", ".*+!"));
        assert!(!m(r"\Q.*\E", "ab"));
        // Bracket subtleties.
        assert!(m(r"[]a]+", "]a"));
        assert!(m(r"[^]a]+", "bc"));
        assert!(m(r"[[:alpha:]]+", "abc"));
        assert!(m(r"[[a]+", "[a["));
        assert!(m(r"[a-c]+\]", "abc]"));
        // Passed through.
        assert!(m(r"(?i)ABC", "abc"));
        assert!(m(r"\pL+", "é"));
        assert!(m(r"\p{Greek}+x{2}", "αβxx"));
        assert!(m(r"[\p{Greek}a]+", "αa"));
        assert!(m(r"\x{263a}\x41", "\u{263a}A"));
        assert!(m(r"a\.b", "a.b"));
        assert!(m(r"\\d", "\\d"));
    }

    proptest::proptest! {
        /// Translation never panics, and translating a pattern made only of characters
        /// without special meaning leaves it unchanged.
        #[test]
        fn translation_is_total(p in r"[\\\[\]{}()dDwWsSbBQEpx0-9a,:^.*+?|-]{0,16}") {
            let t = translate_go_regex(&p);
            let _ = Regex::new(&t);
        }

        #[test]
        fn plain_text_is_unchanged(p in "[a-zA-Z0-9 _.=/-]{0,16}") {
            proptest::prop_assert_eq!(translate_go_regex(&p), p);
        }
    }
}
