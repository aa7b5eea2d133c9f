//! The tokenizer. It follows Prometheus's lexer states: statements, inside braces
//! (`{...}`, where keywords are plain identifiers) and inside brackets (`[...]`, where
//! only numbers, durations and `:` are expected). A lexical error becomes an
//! [`Tk::Error`] token that ends the stream, so the parser reports it only when it gets
//! there (as Prometheus does).

use nom::bytes::complete::take_while;
use nom::character::complete::satisfy;
use nom::combinator::recognize;
use nom::{IResult, Parser};

use super::literal::{scan_quoted, scan_raw};
use crate::promql::ast::AggOp;

/// Token kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tk {
    Ident,
    MetricIdent,
    Number,
    Duration,
    Str,
    LParen,
    RParen,
    LBrace,
    RBrace,
    LBracket,
    RBracket,
    Comma,
    Colon,
    At,
    /// `=`
    Eql,
    /// `=~`
    EqlRegex,
    /// `!~`
    NeqRegex,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    /// `==`
    Eqlc,
    /// `!=`
    Neq,
    Lss,
    Lte,
    Gtr,
    Gte,
    And,
    Or,
    Unless,
    Atan2,
    Agg(AggOp),
    By,
    Without,
    On,
    Ignoring,
    GroupLeft,
    GroupRight,
    Bool,
    Offset,
    Start,
    End,
    Eof,
    Error,
}

impl Tk {
    fn is_operator(self) -> bool {
        matches!(
            self,
            Tk::Add
                | Tk::Sub
                | Tk::Mul
                | Tk::Div
                | Tk::Mod
                | Tk::Pow
                | Tk::Eqlc
                | Tk::Neq
                | Tk::Lss
                | Tk::Lte
                | Tk::Gtr
                | Tk::Gte
                | Tk::And
                | Tk::Or
                | Tk::Unless
                | Tk::Atan2
                | Tk::EqlRegex
                | Tk::NeqRegex
                | Tk::At
        )
    }

    fn is_keyword(self) -> bool {
        matches!(
            self,
            Tk::By
                | Tk::Without
                | Tk::On
                | Tk::Ignoring
                | Tk::GroupLeft
                | Tk::GroupRight
                | Tk::Bool
                | Tk::Offset
        )
    }
}

/// One token.
#[derive(Clone, Debug)]
pub(crate) struct Token<'a> {
    pub(crate) kind: Tk,
    /// Byte offset of the first character.
    pub(crate) start: usize,
    /// Byte offset one past the last character.
    pub(crate) end: usize,
    /// The source text.
    pub(crate) text: &'a str,
    /// Unescaped value of a string token, or the message of an error token.
    pub(crate) value: String,
}

impl Token<'_> {
    /// How Prometheus describes the token in "unexpected ..." messages.
    pub(crate) fn desc(&self) -> String {
        let quoted = |s: &str| -> String {
            if s.chars().count() > 10 {
                let head: String = s.chars().take(10).collect();
                format!("{}...", go_quote(&head))
            } else {
                go_quote(s)
            }
        };
        match self.kind {
            Tk::Eof => "end of input".to_string(),
            Tk::Error => self.value.clone(),
            Tk::Ident => format!("identifier {}", go_quote(self.text)),
            Tk::MetricIdent => format!("metric identifier {}", go_quote(self.text)),
            Tk::Number => format!("number {}", quoted(self.text)),
            Tk::Duration => format!("duration {}", quoted(self.text)),
            Tk::Str => format!("string {}", quoted(self.text)),
            Tk::Agg(_) => format!("<aggr:{}>", self.text),
            k if k.is_operator() => format!("<op:{}>", self.text),
            k if k.is_keyword() => format!("<{}>", self.text),
            _ => quoted(self.text),
        }
    }
}

/// Quotes like Go's `%q` for strings.
pub(crate) fn go_quote(s: &str) -> String {
    crate::promql::ast::quote_string(s)
}

/// Quotes a rune like Go's `%q` for runes (`'x'`).
pub(crate) fn go_quote_rune(c: char) -> String {
    match c {
        '\'' => "'\\''".to_string(),
        '\\' => "'\\\\'".to_string(),
        '\n' => "'\\n'".to_string(),
        '\r' => "'\\r'".to_string(),
        '\t' => "'\\t'".to_string(),
        c if c.is_control() => format!("'\\x{:02x}'", c as u32),
        c => format!("'{c}'"),
    }
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

fn is_alpha(c: char) -> bool {
    c == '_' || c.is_ascii_alphabetic()
}

fn is_alnum(c: char) -> bool {
    is_alpha(c) || c.is_ascii_digit()
}

/// nom: an identifier that may contain colons (metric names, keywords).
fn word_with_colons(input: &str) -> IResult<&str, &str> {
    recognize((
        satisfy(|c| is_alpha(c) || c == ':'),
        take_while(|c: char| is_alnum(c) || c == ':'),
    ))
    .parse(input)
}

/// nom: a plain identifier (label names inside braces).
fn word(input: &str) -> IResult<&str, &str> {
    recognize((satisfy(is_alpha), take_while(is_alnum))).parse(input)
}

/// The keyword kind of a word (case-insensitive), if it is one.
fn keyword(word: &str) -> Option<Tk> {
    let lower = word.to_ascii_lowercase();
    if let Some(op) = AggOp::from_name(&lower) {
        return Some(Tk::Agg(op));
    }
    Some(match lower.as_str() {
        "and" => Tk::And,
        "or" => Tk::Or,
        "unless" => Tk::Unless,
        "atan2" => Tk::Atan2,
        "by" => Tk::By,
        "without" => Tk::Without,
        "on" => Tk::On,
        "ignoring" => Tk::Ignoring,
        "group_left" => Tk::GroupLeft,
        "group_right" => Tk::GroupRight,
        "bool" => Tk::Bool,
        "offset" => Tk::Offset,
        "start" => Tk::Start,
        "end" => Tk::End,
        "inf" | "nan" => Tk::Number,
        _ => return None,
    })
}

struct Lexer<'a> {
    src: &'a str,
    pos: usize,
    toks: Vec<Token<'a>>,
    paren_depth: i64,
    brace_open: bool,
    bracket_open: bool,
    got_colon: bool,
    got_duration: bool,
}

/// Splits `src` into tokens. The last token is [`Tk::Eof`] or [`Tk::Error`].
pub(crate) fn tokenize(src: &str) -> Vec<Token<'_>> {
    let mut l = Lexer {
        src,
        pos: 0,
        toks: Vec::new(),
        paren_depth: 0,
        brace_open: false,
        bracket_open: false,
        got_colon: false,
        got_duration: false,
    };
    l.run();
    l.toks
}

impl<'a> Lexer<'a> {
    fn rest(&self) -> &'a str {
        self.src.get(self.pos..).unwrap_or_default()
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn emit(&mut self, kind: Tk, len: usize) {
        self.emit_value(kind, len, String::new());
    }

    fn emit_value(&mut self, kind: Tk, len: usize, value: String) {
        let start = self.pos;
        let end = (start + len).min(self.src.len());
        self.toks.push(Token {
            kind,
            start,
            end,
            text: self.src.get(start..end).unwrap_or_default(),
            value,
        });
        self.pos = end;
    }

    /// Emits an error token at the current position; lexing stops.
    fn error(&mut self, msg: String) {
        let start = self.pos;
        self.toks.push(Token {
            kind: Tk::Error,
            start,
            end: self.src.len(),
            text: "",
            value: msg,
        });
    }

    fn run(&mut self) {
        loop {
            let done = if self.brace_open {
                self.inside_braces()
            } else if self.bracket_open {
                self.inside_brackets()
            } else {
                self.statement()
            };
            if done {
                return;
            }
        }
    }

    /// Skips whitespace and `#` comments. Returns whether anything was skipped.
    fn skip_space_and_comments(&mut self) -> bool {
        let before = self.pos;
        loop {
            let rest = self.rest();
            let trimmed = rest.trim_start_matches(is_space);
            self.pos += rest.len() - trimmed.len();
            if trimmed.starts_with('#') {
                let line_len = trimmed.find(['\n', '\r']).unwrap_or(trimmed.len());
                self.pos += line_len;
            } else {
                break;
            }
        }
        self.pos != before
    }

    /// Lexes a number or duration at the current position, with the acceptance rules
    /// (and error texts) of Prometheus's lexer.
    fn number_or_duration(&mut self) -> bool {
        let mut sc = Scanner::new(self.rest());
        if sc.scan_number() {
            self.emit(Tk::Number, sc.pos);
            return false;
        }
        if sc.accept_remaining_duration() {
            sc.backup();
            self.emit(Tk::Duration, sc.pos);
            return false;
        }
        let text = self.rest().get(..sc.pos).unwrap_or_default();
        self.error(format!("bad number or duration syntax: {}", go_quote(text)));
        true
    }

    fn string(&mut self, quote: char) -> bool {
        let body = self.rest().get(1..).unwrap_or_default();
        let res = if quote == '`' {
            scan_raw(body)
        } else {
            scan_quoted(body, quote)
        };
        match res {
            Ok((len, value)) => {
                self.emit_value(Tk::Str, len + 1, value);
                false
            }
            Err(msg) => {
                self.error(msg);
                true
            }
        }
    }

    /// Top-level state. Returns `true` when lexing is finished.
    fn statement(&mut self) -> bool {
        self.skip_space_and_comments();
        let Some(c) = self.peek() else {
            if self.paren_depth != 0 {
                self.error("unclosed left parenthesis".to_string());
            } else {
                self.emit(Tk::Eof, 0);
            }
            return true;
        };
        let next = self.rest().chars().nth(1);
        match c {
            ',' => self.emit(Tk::Comma, 1),
            '*' => self.emit(Tk::Mul, 1),
            '/' => self.emit(Tk::Div, 1),
            '%' => self.emit(Tk::Mod, 1),
            '+' => self.emit(Tk::Add, 1),
            '-' => self.emit(Tk::Sub, 1),
            '^' => self.emit(Tk::Pow, 1),
            '@' => self.emit(Tk::At, 1),
            '=' => match next {
                Some('=') => self.emit(Tk::Eqlc, 2),
                Some('~') => {
                    self.error("unexpected character after '=': '~'".to_string());
                    return true;
                }
                _ => self.emit(Tk::Eql, 1),
            },
            '!' => {
                if next == Some('=') {
                    self.emit(Tk::Neq, 2);
                } else {
                    let n = next.map_or("EOF".to_string(), go_quote_rune);
                    self.error(format!("unexpected character after '!': {n}"));
                    return true;
                }
            }
            '<' => {
                if next == Some('=') {
                    self.emit(Tk::Lte, 2)
                } else {
                    self.emit(Tk::Lss, 1)
                }
            }
            '>' => {
                if next == Some('=') {
                    self.emit(Tk::Gte, 2)
                } else {
                    self.emit(Tk::Gtr, 1)
                }
            }
            '0'..='9' => return self.number_or_duration(),
            '.' if next.is_some_and(|n| n.is_ascii_digit()) => return self.number_or_duration(),
            '"' | '\'' | '`' => return self.string(c),
            c if is_alpha(c) || c == ':' => {
                let Ok((_, w)) = word_with_colons(self.rest()) else {
                    self.error(format!("unexpected character: {}", go_quote_rune(c)));
                    return true;
                };
                let kind = match keyword(w) {
                    Some(k) => k,
                    None if w.contains(':') => Tk::MetricIdent,
                    None => Tk::Ident,
                };
                self.emit(kind, w.len());
            }
            '(' => {
                self.emit(Tk::LParen, 1);
                self.paren_depth += 1;
            }
            ')' => {
                self.emit(Tk::RParen, 1);
                self.paren_depth -= 1;
                if self.paren_depth < 0 {
                    self.toks.pop();
                    self.pos -= 1;
                    self.error("unexpected right parenthesis ')'".to_string());
                    return true;
                }
            }
            '{' => {
                self.emit(Tk::LBrace, 1);
                self.brace_open = true;
            }
            '[' => {
                self.emit(Tk::LBracket, 1);
                self.bracket_open = true;
                self.got_colon = false;
                self.got_duration = false;
            }
            ']' => {
                self.error("unexpected right bracket ']'".to_string());
                return true;
            }
            c => {
                self.error(format!("unexpected character: {}", go_quote_rune(c)));
                return true;
            }
        }
        false
    }

    /// Inside `{...}`.
    fn inside_braces(&mut self) -> bool {
        self.skip_space_and_comments();
        let Some(c) = self.peek() else {
            self.error("unexpected end of input inside braces".to_string());
            return true;
        };
        let next = self.rest().chars().nth(1);
        match c {
            c if is_alpha(c) => {
                let len = word(self.rest()).map_or(1, |(_, w)| w.len());
                self.emit(Tk::Ident, len);
            }
            ',' => self.emit(Tk::Comma, 1),
            '"' | '\'' | '`' => return self.string(c),
            '=' => {
                if next == Some('~') {
                    self.emit(Tk::EqlRegex, 2)
                } else {
                    self.emit(Tk::Eql, 1)
                }
            }
            '!' => match next {
                Some('~') => self.emit(Tk::NeqRegex, 2),
                Some('=') => self.emit(Tk::Neq, 2),
                n => {
                    let n = n.map_or("EOF".to_string(), go_quote_rune);
                    self.error(format!("unexpected character after '!' inside braces: {n}"));
                    return true;
                }
            },
            '{' => {
                self.error("unexpected left brace '{'".to_string());
                return true;
            }
            '}' => {
                self.emit(Tk::RBrace, 1);
                self.brace_open = false;
            }
            c => {
                self.error(format!(
                    "unexpected character inside braces: {}",
                    go_quote_rune(c)
                ));
                return true;
            }
        }
        false
    }

    /// Inside `[...]`: numbers, durations, `:` and `]`.
    fn inside_brackets(&mut self) -> bool {
        self.skip_space_and_comments();
        let Some(c) = self.peek() else {
            self.error("unexpected end of input in duration expression".to_string());
            return true;
        };
        let next = self.rest().chars().nth(1);
        match c {
            ']' => {
                self.emit(Tk::RBracket, 1);
                self.bracket_open = false;
                self.got_colon = false;
            }
            ':' => {
                if !self.got_duration {
                    self.error(
                        "unexpected colon before duration in duration expression".to_string(),
                    );
                    return true;
                }
                if self.got_colon {
                    self.error("unexpected repeated colon in duration expression".to_string());
                    return true;
                }
                self.emit(Tk::Colon, 1);
                self.got_colon = true;
            }
            '0'..='9' => {
                self.got_duration = true;
                return self.number_or_duration();
            }
            '.' if next.is_some_and(|n| n.is_ascii_digit()) => {
                self.got_duration = true;
                return self.number_or_duration();
            }
            '+' => self.emit(Tk::Add, 1),
            '-' => self.emit(Tk::Sub, 1),
            '*' => self.emit(Tk::Mul, 1),
            '/' => self.emit(Tk::Div, 1),
            '%' => self.emit(Tk::Mod, 1),
            '^' => self.emit(Tk::Pow, 1),
            ',' => self.emit(Tk::Comma, 1),
            '(' => {
                self.emit(Tk::LParen, 1);
                self.paren_depth += 1;
            }
            ')' => {
                self.emit(Tk::RParen, 1);
                self.paren_depth -= 1;
                if self.paren_depth < 0 {
                    self.toks.pop();
                    self.pos -= 1;
                    self.error("unexpected right parenthesis ')'".to_string());
                    return true;
                }
            }
            c => {
                self.error(format!(
                    "unexpected character in duration expression: {}",
                    go_quote_rune(c)
                ));
                return true;
            }
        }
        false
    }
}

/// A character cursor for number and duration tokens, mirroring the accept/backup
/// style of Prometheus's lexer so that error texts cover the same characters.
struct Scanner<'s> {
    s: &'s str,
    pos: usize,
    last_width: usize,
}

impl<'s> Scanner<'s> {
    fn new(s: &'s str) -> Self {
        Scanner {
            s,
            pos: 0,
            last_width: 0,
        }
    }

    fn peek(&self) -> Option<char> {
        self.s.get(self.pos..).and_then(|r| r.chars().next())
    }

    /// Consumes one character (none at the end).
    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        self.last_width = c.map_or(0, char::len_utf8);
        self.pos += self.last_width;
        c
    }

    fn backup(&mut self) {
        self.pos -= self.last_width;
        self.last_width = 0;
    }

    fn is(&self, valid: &str) -> bool {
        self.peek().is_some_and(|c| valid.contains(c))
    }

    fn accept(&mut self, valid: &str) -> bool {
        if self.is(valid) {
            self.next();
            true
        } else {
            false
        }
    }

    fn accept_run(&mut self, valid: &str) {
        while self.accept(valid) {}
    }

    /// Scans a decimal, hexadecimal or floating-point number; `true` when it is
    /// well-formed and not followed by an alphanumeric character.
    fn scan_number(&mut self) -> bool {
        const DEC: &str = "0123456789";
        const HEX: &str = "0123456789abcdefABCDEF";
        let mut digits = DEC;
        if self.accept("0") && self.accept("xX") {
            self.accept("_");
            digits = HEX;
        }
        self.accept(".");
        self.accept(digits);
        let mut dot = false;
        let mut exp = false;
        loop {
            let more = self
                .peek()
                .is_some_and(|c| digits.contains(c) || "._eE".contains(c));
            if !more {
                break;
            }
            if self.is(".") && dot {
                self.accept(".");
                return false;
            }
            if self.is("eE") && exp {
                self.accept("eE");
                return false;
            }
            if self.accept(".") {
                dot = true;
                if self.accept("_.") || digits == HEX {
                    return false;
                }
                continue;
            }
            if self.accept("eE") {
                exp = true;
                self.accept("+-");
                if self.accept("._eE") || self.peek().is_none() {
                    return false;
                }
                continue;
            }
            if self.accept("_") {
                if self.accept("._eE") || self.peek().is_none() {
                    return false;
                }
                continue;
            }
            self.accept_run(digits);
        }
        if self.pos == 0 {
            return false;
        }
        !self.peek().is_some_and(is_alnum)
    }

    /// After a number: unit letters and further `<digits><unit>` groups.
    fn accept_remaining_duration(&mut self) -> bool {
        if !self.accept("smhdwy") {
            return false;
        }
        self.accept("s");
        while self.accept("0123456789") {
            self.accept_run("0123456789");
            if !self.accept("smhdw") {
                return false;
            }
            self.accept("s");
        }
        !self.next().is_some_and(is_alnum)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(s: &str) -> Vec<Tk> {
        tokenize(s).into_iter().map(|t| t.kind).collect()
    }

    #[test]
    fn basic_tokens() {
        assert_eq!(
            kinds("sum by (a) (rate(x[5m:1m]))"),
            vec![
                Tk::Agg(AggOp::Sum),
                Tk::By,
                Tk::LParen,
                Tk::Ident,
                Tk::RParen,
                Tk::LParen,
                Tk::Ident,
                Tk::LParen,
                Tk::Ident,
                Tk::LBracket,
                Tk::Duration,
                Tk::Colon,
                Tk::Duration,
                Tk::RBracket,
                Tk::RParen,
                Tk::RParen,
                Tk::Eof
            ]
        );
        assert_eq!(
            kinds("a:b{c=~\"x\", d!~'y'} >= bool 1e3"),
            vec![
                Tk::MetricIdent,
                Tk::LBrace,
                Tk::Ident,
                Tk::EqlRegex,
                Tk::Str,
                Tk::Comma,
                Tk::Ident,
                Tk::NeqRegex,
                Tk::Str,
                Tk::RBrace,
                Tk::Gte,
                Tk::Bool,
                Tk::Number,
                Tk::Eof
            ]
        );
        assert_eq!(
            kinds("Inf NaN # comment"),
            vec![Tk::Number, Tk::Number, Tk::Eof]
        );
        assert_eq!(kinds("{by=\"x\"}")[1], Tk::Ident);
    }

    #[test]
    fn lexer_errors() {
        let last = |s: &str| tokenize(s).pop().unwrap().value;
        assert_eq!(last("(a"), "unclosed left parenthesis");
        assert_eq!(last("a)"), "unexpected right parenthesis ')'");
        assert_eq!(last("{a=\"b\""), "unexpected end of input inside braces");
        assert_eq!(last("a & b"), "unexpected character: '&'");
        assert_eq!(last("1abc"), "bad number or duration syntax: \"1\"");
        assert_eq!(last("2.5."), "bad number or duration syntax: \"2.5.\"");
        assert_eq!(last("100..4"), "bad number or duration syntax: \"100..\"");
        assert_eq!(last("0deadbeef"), "bad number or duration syntax: \"0de\"");
        assert_eq!(last("5mx"), "bad number or duration syntax: \"5mx\"");
        assert_eq!(last("1e"), "bad number or duration syntax: \"1e\"");
        assert_eq!(last("."), "unexpected character: '.'");
        assert_eq!(last("\"abc"), "unterminated quoted string");
    }

    #[test]
    fn descriptions() {
        let d = |s: &str| tokenize(s)[0].desc();
        assert_eq!(d("+"), "<op:+>");
        assert_eq!(d("foo"), "identifier \"foo\"");
        assert_eq!(d("1"), "number \"1\"");
        assert_eq!(d("sum"), "<aggr:sum>");
        assert_eq!(d("by"), "<by>");
        assert_eq!(d("("), "\"(\"");
        assert_eq!(d(""), "end of input");
        assert_eq!(d("\"hello world\""), "string \"\\\"hello wor\"...");
    }
}
