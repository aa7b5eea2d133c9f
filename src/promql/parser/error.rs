//! The parser's error type.

use crate::promql::ast::Span;

/// A query could not be parsed or failed type checking.
///
/// Displays as Prometheus does: `"{line}:{col}: parse error: {message}"`, with a 1-based
/// line and a 1-based column counted in bytes (as Prometheus counts it).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{line}:{col}: parse error: {message}")]
#[non_exhaustive]
pub struct ParseError {
    /// Where in the query the problem is (byte offsets).
    pub span: Span,
    /// The message without position, e.g. `unexpected end of input`.
    pub message: String,
    /// 1-based line of `span.start`.
    pub line: usize,
    /// 1-based column (in bytes, like Prometheus) of `span.start`.
    pub col: usize,
}

impl ParseError {
    /// An error at `span` of `query`.
    pub fn new(query: &str, span: Span, message: impl Into<String>) -> Self {
        let (line, col) = span.line_col(query);
        ParseError {
            span,
            message: message.into(),
            line,
            col,
        }
    }

    /// The message without the position prefix.
    pub fn message(&self) -> &str {
        &self.message
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_has_line_and_column() {
        let q = "foo +\n  bar(";
        let e = ParseError::new(q, Span::new(8, 9), "unexpected end of input");
        assert_eq!(e.to_string(), "2:3: parse error: unexpected end of input");
        assert_eq!(e.message(), "unexpected end of input");
    }
}
