//! The PromQL parser.
//!
//! [`parse`] turns a query into a type-checked [`Expr`]. It is built from small pieces:
//!
//! - [`lexer`]: tokens, with Prometheus's lexer states (statements, braces, brackets);
//!   the character-level scanners are `nom` parsers (see `literal`).
//! - `literal`: numbers (`0x1F`, `1e3`, `.5`, `Inf`, `NaN`), durations (`1h30m`) and
//!   strings (Go escapes in `"` and `'`, raw backquoted strings).
//! - `selector`: vector selectors and label matchers, ranges, subqueries, `offset`, `@`.
//! - `expr`: precedence climbing over binary operators, unary operators, parentheses,
//!   aggregations and function calls.
//! - `check`: type checking as Prometheus's `checkAST` does it.
//! - `series`: the label-set syntax of test-script series lines.
//!
//! Error messages follow Prometheus's wording; only the first error is reported.
//!
//! # Nesting limit
//!
//! Parsing recurses, so nesting is limited to [`MAX_DEPTH`] units: a unary operator or a
//! right-nested `^` costs one unit, parentheses, function calls and aggregations cost two
//! (at most 127 nested parentheses or calls). The finished tree is also at most
//! [`MAX_DEPTH`] levels high, which bounds chains of binary operators (`a + b + ...` with
//! at most 255 operators) and keeps later recursive walks (printing, type checking,
//! evaluation) shallow. Deeper input is rejected with an error instead of risking a stack
//! overflow; the limits are tested on a 2 MiB thread stack.

mod check;
mod error;
mod expr;
pub(crate) mod lexer;
mod literal;
mod selector;
mod series;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

pub use error::ParseError;
pub use series::parse_series_description;

use crate::promql::ast::{Expr, Span};
use lexer::{Tk, Token};

/// Deepest expression tree accepted.
pub const MAX_DEPTH: usize = 256;

/// Longest query accepted, in bytes.
pub const MAX_QUERY_LEN: usize = 1 << 20;

/// Parses and type-checks a PromQL expression.
pub fn parse(query: &str) -> Result<Expr, ParseError> {
    if query.len() > MAX_QUERY_LEN {
        return Err(ParseError::new(
            query,
            Span::new(0, 0),
            format!(
                "query too long: {} bytes (max {MAX_QUERY_LEN})",
                query.len()
            ),
        ));
    }
    let mut p = Parser::new(query);
    let mut expr = match p.top() {
        Ok(e) => e,
        Err(e) => return Err(p.deferred.take().unwrap_or(e)),
    };
    if let Some(e) = p.deferred.take() {
        return Err(e);
    }
    check::check(query, &mut expr)?;
    Ok(expr)
}

/// An expression with the height of its tree.
pub(crate) type Node = (Expr, usize);

/// Parser state over the token stream.
pub(crate) struct Parser<'a> {
    src: &'a str,
    toks: Vec<Token<'a>>,
    pos: usize,
    depth: usize,
    /// The first error that did not stop parsing (Prometheus keeps parsing after
    /// semantic errors and reports the first error found).
    deferred: Option<ParseError>,
}

impl<'a> Parser<'a> {
    pub(crate) fn new(src: &'a str) -> Self {
        Parser {
            src,
            toks: lexer::tokenize(src),
            pos: 0,
            depth: 0,
            deferred: None,
        }
    }

    /// Parses a whole query.
    fn top(&mut self) -> Result<Expr, ParseError> {
        if self.kind() == Tk::Eof {
            return Err(self.error(Span::new(0, 0), "no expression found in input"));
        }
        let (e, _) = self.expr(0)?;
        if self.kind() != Tk::Eof {
            return Err(self.unexpected("", ""));
        }
        Ok(e)
    }

    pub(crate) fn peek(&self) -> &Token<'a> {
        // The stream always ends with Eof or Error and `bump` never moves past it.
        let last = self.toks.len().saturating_sub(1);
        match self.toks.get(self.pos.min(last)) {
            Some(t) => t,
            None => &EOF_TOKEN,
        }
    }

    pub(crate) fn kind(&self) -> Tk {
        self.peek().kind
    }

    pub(crate) fn kind_at(&self, ahead: usize) -> Tk {
        let last = self.toks.len().saturating_sub(1);
        self.toks
            .get((self.pos + ahead).min(last))
            .map_or(Tk::Eof, |t| t.kind)
    }

    /// Consumes and returns the current token (never moves past the end).
    pub(crate) fn bump(&mut self) -> Token<'a> {
        let t = self.peek().clone();
        if !matches!(t.kind, Tk::Eof | Tk::Error) {
            self.pos += 1;
        }
        t
    }

    pub(crate) fn error(&self, span: Span, msg: impl Into<String>) -> ParseError {
        ParseError::new(self.src, span, msg)
    }

    /// Records an error without stopping; only the first one is kept.
    pub(crate) fn defer(&mut self, span: Span, msg: impl Into<String>) {
        if self.deferred.is_none() {
            self.deferred = Some(self.error(span, msg));
        }
    }

    /// "unexpected <current token> [in <context>][, expected <expected>]". A lexer error
    /// token reports the lexer's message instead.
    pub(crate) fn unexpected(&self, context: &str, expected: &str) -> ParseError {
        let t = self.peek();
        let span = Span::new(t.start, t.end);
        if t.kind == Tk::Error {
            return self.error(span, t.value.clone());
        }
        let mut msg = format!("unexpected {}", t.desc());
        if !context.is_empty() {
            msg.push_str(" in ");
            msg.push_str(context);
        }
        if !expected.is_empty() {
            msg.push_str(", expected ");
            msg.push_str(expected);
        }
        self.error(span, msg)
    }

    /// Increments the nesting depth, failing beyond [`MAX_DEPTH`].
    pub(crate) fn enter(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            let t = self.peek();
            return Err(self.error(
                Span::new(t.start, t.end),
                format!("expression nesting too deep (max {MAX_DEPTH})"),
            ));
        }
        Ok(())
    }

    pub(crate) fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    /// Fails when a tree of height `h` would exceed [`MAX_DEPTH`].
    pub(crate) fn check_height(&self, h: usize, span: Span) -> Result<(), ParseError> {
        if h > MAX_DEPTH {
            return Err(self.error(
                span,
                format!("expression nesting too deep (max {MAX_DEPTH})"),
            ));
        }
        Ok(())
    }
}

static EOF_TOKEN: Token<'static> = Token {
    kind: Tk::Eof,
    start: 0,
    end: 0,
    text: "",
    value: String::new(),
};
