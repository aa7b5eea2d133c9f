//! Vector selectors, label matchers, range selectors, subqueries and the `offset` and
//! `@` modifiers.

use super::lexer::{Tk, Token};
use super::literal::{duration_ms, number_value, seconds_to_ms};
use super::{Node, ParseError, Parser};
use crate::model::{MatchOp, Matcher, METRIC_NAME};
use crate::promql::ast::{AtModifier, Expr, MatrixSelector, Span, SubqueryExpr, VectorSelector};

type PResult<T> = Result<T, ParseError>;

/// Largest duration, in seconds, that fits Go's `time.Duration` (nanoseconds in an i64).
const MAX_DURATION_SECS: f64 = 9_223_372_036.854_775;

/// A duration literal's value: exact milliseconds for duration tokens, seconds for
/// numbers.
#[derive(Clone, Copy)]
enum Literal {
    Ms(i64),
    Secs(f64),
}

impl Literal {
    fn seconds(self) -> f64 {
        match self {
            Literal::Ms(ms) => ms as f64 / 1000.0,
            Literal::Secs(s) => s,
        }
    }
}

fn match_op(kind: Tk) -> Option<MatchOp> {
    Some(match kind {
        Tk::Eql => MatchOp::Equal,
        Tk::Neq => MatchOp::NotEqual,
        Tk::EqlRegex => MatchOp::RegexMatch,
        Tk::NeqRegex => MatchOp::RegexNoMatch,
        _ => return None,
    })
}

/// Formats like Go's `%f`.
fn go_f(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_string()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_string()
    } else {
        format!("{v:.6}")
    }
}

impl<'a> Parser<'a> {
    /// `name`, `name{matchers}` or `{matchers}`. `name` is the already consumed name
    /// token.
    pub(crate) fn vector_selector(&mut self, name: Option<Token<'a>>) -> PResult<Node> {
        let start = name.as_ref().map_or_else(|| self.peek().start, |t| t.start);
        let mut end = name.as_ref().map_or(start, |t| t.end);
        let mut matchers = Vec::new();
        if self.kind() == Tk::LBrace {
            end = self.label_matchers(&mut matchers)?;
        }
        let name = name.map(|t| t.text.to_string());
        if let Some(n) = &name {
            matchers.push(Matcher::equal(METRIC_NAME, n.as_str()));
        }
        Ok((
            Expr::Vector(VectorSelector {
                name,
                matchers,
                offset_ms: 0,
                at: None,
                span: Span::new(start, end),
            }),
            1,
        ))
    }

    /// `{ [matcher {, matcher} [,]] }`. Returns the end offset of the closing brace.
    fn label_matchers(&mut self, out: &mut Vec<Matcher>) -> PResult<usize> {
        self.bump();
        loop {
            if self.kind() == Tk::RBrace {
                return Ok(self.bump().end);
            }
            self.label_matcher(out)?;
            match self.kind() {
                Tk::Comma => {
                    self.bump();
                }
                Tk::RBrace => {}
                _ => return Err(self.unexpected("label matching", "\",\" or \"}\"")),
            }
        }
    }

    /// `label op "value"`, `"label" op "value"` or `"metric name"`.
    fn label_matcher(&mut self, out: &mut Vec<Matcher>) -> PResult<()> {
        let first = self.peek().clone();
        let name = match first.kind {
            Tk::Ident => first.text.to_string(),
            Tk::Str => first.value.clone(),
            _ => return Err(self.unexpected("label matching", "identifier or \"}\"")),
        };
        self.bump();
        let Some(op) = match_op(self.kind()) else {
            if first.kind == Tk::Str {
                out.push(Matcher::equal(METRIC_NAME, name));
                return Ok(());
            }
            return Err(self.unexpected("label matching", "label matching operator"));
        };
        self.bump();
        if self.kind() != Tk::Str {
            return Err(self.unexpected("label matching", "string"));
        }
        let value = self.bump();
        match Matcher::new(op, name.as_str(), value.value.as_str()) {
            Ok(m) => out.push(m),
            Err(e) => {
                self.defer(Span::new(first.start, value.end), e.to_string());
                out.push(Matcher::equal(name, value.value));
            }
        }
        Ok(())
    }

    /// A number or duration used as a duration, with optional signs (`[10]`, `5m`,
    /// `-1h`), in milliseconds, with the span it covers. `many_signs` allows a chain of
    /// signs (inside brackets); `offset` allows one. Returns `None`, consuming nothing,
    /// when no literal starts here.
    fn duration_literal(&mut self, many_signs: bool) -> Option<(i64, Span)> {
        let start_pos = self.pos;
        let mut negative = false;
        let mut first_sign: Option<Span> = None;
        while matches!(self.kind(), Tk::Add | Tk::Sub) && (many_signs || first_sign.is_none()) {
            let t = self.bump();
            first_sign.get_or_insert(Span::new(t.start, t.end));
            negative ^= t.kind == Tk::Sub;
        }
        let t = self.peek().clone();
        let lit_span = Span::new(t.start, t.end);
        let value = match t.kind {
            Tk::Duration => duration_ms(t.text).map(Literal::Ms),
            Tk::Number => number_value(t.text).map(Literal::Secs),
            _ => {
                self.pos = start_pos;
                return None;
            }
        };
        self.bump();
        let span = first_sign.map_or(lit_span, |s| s.to(lit_span));
        let ms = match value {
            Err(msg) => {
                self.defer(lit_span, msg);
                0
            }
            Ok(lit) if lit.seconds().abs() > MAX_DURATION_SECS || lit.seconds().is_nan() => {
                self.defer(first_sign.unwrap_or(lit_span), "duration out of range");
                0
            }
            Ok(Literal::Ms(ms)) => ms,
            Ok(Literal::Secs(s)) => seconds_to_ms(s),
        };
        Some((if negative { -ms } else { ms }, span))
    }

    /// A range or step: a duration literal that must be positive.
    fn positive_duration(&mut self) -> Option<i64> {
        let (ms, span) = self.duration_literal(true)?;
        if ms <= 0 {
            self.defer(span, "duration must be greater than 0");
        }
        Some(ms)
    }

    /// `[range]` after a selector, or `[range:step]` after any expression.
    pub(crate) fn range_or_subquery(&mut self, e: Expr, h: usize) -> PResult<Node> {
        let open = self.bump();
        let Some(range_ms) = self.positive_duration() else {
            return Err(self.unexpected(
                "subquery or range selector",
                "number, duration, step(), or range()",
            ));
        };
        match self.kind() {
            Tk::RBracket => {
                let close = self.bump();
                let bracket_span = Span::new(open.start, close.end);
                let problem = match &e {
                    Expr::Vector(vs) if vs.offset_ms != 0 => {
                        Some("no offset modifiers allowed before range")
                    }
                    Expr::Vector(vs) if matches!(vs.at, Some(AtModifier::Timestamp(_))) => {
                        Some("no @ modifiers allowed before range")
                    }
                    Expr::Vector(_) => None,
                    _ => Some("ranges only allowed for vector selectors"),
                };
                if let Some(msg) = problem {
                    self.defer(bracket_span, msg);
                    return Ok((e, h));
                }
                let Expr::Vector(vs) = e else {
                    return Ok((e, h));
                };
                let span = Span::new(vs.span.start as usize, close.end);
                Ok((Expr::Matrix(MatrixSelector { vs, range_ms, span }), h))
            }
            Tk::Colon => {
                self.bump();
                let step = self.positive_duration();
                if self.kind() != Tk::RBracket {
                    return Err(if step.is_some() {
                        self.unexpected("subquery selector", "\"]\"")
                    } else {
                        self.unexpected(
                            "subquery selector",
                            "number, duration, step(), range(), or \"]\"",
                        )
                    });
                }
                let close = self.bump();
                let span = e.span().to(Span::new(close.start, close.end));
                let h = h + 1;
                self.check_height(h, span)?;
                Ok((
                    Expr::Subquery(SubqueryExpr {
                        expr: Box::new(e),
                        range_ms,
                        step_ms: step.filter(|s| *s != 0),
                        offset_ms: 0,
                        at: None,
                        span,
                    }),
                    h,
                ))
            }
            _ => Err(self.unexpected("subquery or range", "\":\" or \"]\"")),
        }
    }

    /// `offset [-]duration`.
    pub(crate) fn offset_modifier(&mut self, mut e: Expr) -> PResult<Expr> {
        self.bump();
        let Some((offset, _)) = self.duration_literal(false) else {
            return Err(self.unexpected("offset", "number, duration, step(), or range()"));
        };
        let end = self
            .toks
            .get(self.pos.saturating_sub(1))
            .map_or(0, |t| t.end);
        let span = e.span();
        let (slot, node_span) = match &mut e {
            Expr::Vector(vs) => (&mut vs.offset_ms, &mut vs.span),
            Expr::Matrix(m) => (&mut m.vs.offset_ms, &mut m.span),
            Expr::Subquery(s) => (&mut s.offset_ms, &mut s.span),
            _ => {
                self.defer(
                    span,
                    "offset modifier must be preceded by an instant vector selector or range vector selector or a subquery",
                );
                return Ok(e);
            }
        };
        if *slot != 0 {
            self.defer(span, "offset may not be set multiple times");
            return Ok(e);
        }
        *slot = offset;
        node_span.end = u32::try_from(end).unwrap_or(u32::MAX);
        Ok(e)
    }

    /// `@ <timestamp>`, `@ start()` or `@ end()`.
    pub(crate) fn at_modifier(&mut self, mut e: Expr) -> PResult<Expr> {
        self.bump();
        let at = match self.kind() {
            Tk::Start | Tk::End => {
                let which = self.bump();
                if self.kind() != Tk::LParen {
                    return Err(self.unexpected("", ""));
                }
                self.bump();
                if self.kind() != Tk::RParen {
                    return Err(self.unexpected("", ""));
                }
                self.bump();
                if which.kind == Tk::Start {
                    AtModifier::Start
                } else {
                    AtModifier::End
                }
            }
            _ => {
                let sign = match self.kind() {
                    Tk::Sub => {
                        self.bump();
                        -1.0
                    }
                    Tk::Add => {
                        self.bump();
                        1.0
                    }
                    _ => 1.0,
                };
                let t = self.peek().clone();
                let span = Span::new(t.start, t.end);
                let secs = match t.kind {
                    Tk::Number => number_value(t.text),
                    Tk::Duration => duration_ms(t.text).map(|ms| ms as f64 / 1000.0),
                    _ => return Err(self.unexpected("@", "timestamp")),
                };
                self.bump();
                let secs = match secs {
                    Ok(v) => sign * v,
                    Err(msg) => {
                        self.defer(span, msg);
                        0.0
                    }
                };
                if !secs.is_finite() || secs >= i64::MAX as f64 || secs <= i64::MIN as f64 {
                    self.defer(
                        e.span(),
                        format!("timestamp out of bounds for @ modifier: {}", go_f(secs)),
                    );
                    return Ok(e);
                }
                let ms = (secs * 1000.0).round();
                let ms = if ms >= i64::MAX as f64 {
                    i64::MAX
                } else if ms <= i64::MIN as f64 {
                    i64::MIN
                } else {
                    ms as i64
                };
                AtModifier::Timestamp(ms)
            }
        };
        let end = self
            .toks
            .get(self.pos.saturating_sub(1))
            .map_or(0, |t| t.end);
        let span = e.span();
        let (slot, node_span) = match &mut e {
            Expr::Vector(vs) => (&mut vs.at, &mut vs.span),
            Expr::Matrix(m) => (&mut m.vs.at, &mut m.span),
            Expr::Subquery(s) => (&mut s.at, &mut s.span),
            _ => {
                self.defer(
                    span,
                    "@ modifier must be preceded by an instant vector selector or range vector selector or a subquery",
                );
                return Ok(e);
            }
        };
        if slot.is_some() {
            self.defer(span, "@ <timestamp> may not be set multiple times");
            return Ok(e);
        }
        *slot = Some(at);
        node_span.end = u32::try_from(end).unwrap_or(u32::MAX);
        Ok(e)
    }
}
