//! The label-set syntax of test-script series lines: `name`, `name{a="b", ...}` or
//! `{__name__="name", a="b"}`. Only `=` is allowed.

use super::lexer::Tk;
use super::{ParseError, Parser};
use crate::model::{Label, Labels, METRIC_NAME};
use crate::promql::ast::Span;

/// Parses the label set at the start of `s` and returns it with the rest of the line
/// (the values, leading whitespace removed).
///
/// ```
/// let (labels, rest) = aion::promql::parser::parse_series_description(
///     r#"http_requests{job="api"} 0+10x10"#,
/// ).unwrap();
/// assert_eq!(labels.get("__name__"), Some("http_requests"));
/// assert_eq!(labels.get("job"), Some("api"));
/// assert_eq!(rest, "0+10x10");
/// ```
pub fn parse_series_description(s: &str) -> Result<(Labels, &str), ParseError> {
    let mut p = Parser::new(s);
    let mut labels: Vec<Label> = Vec::new();
    let mut name = None;
    let mut end = 0;
    match p.kind() {
        Tk::Ident
        | Tk::MetricIdent
        | Tk::Agg(_)
        | Tk::By
        | Tk::Without
        | Tk::And
        | Tk::Or
        | Tk::Unless
        | Tk::Offset
        | Tk::Start
        | Tk::End => {
            let t = p.bump();
            end = t.end;
            name = Some(t.text.to_string());
        }
        Tk::LBrace => {}
        _ => return Err(p.unexpected("series description", "metric name or \"{\"")),
    }
    if p.kind() == Tk::LBrace {
        p.bump();
        loop {
            if p.kind() == Tk::RBrace {
                end = p.bump().end;
                break;
            }
            let label = match p.kind() {
                Tk::Ident => p.bump().text.to_string(),
                Tk::Str => {
                    let quoted = p.bump().value;
                    if !matches!(p.kind(), Tk::Eql) {
                        // A bare quoted string is the metric name.
                        labels.push(Label::new(METRIC_NAME, quoted));
                        match p.kind() {
                            Tk::Comma => {
                                p.bump();
                            }
                            Tk::RBrace => {}
                            _ => return Err(p.unexpected("label set", "\",\" or \"}\"")),
                        }
                        continue;
                    }
                    quoted
                }
                _ => return Err(p.unexpected("label set", "identifier or \"}\"")),
            };
            if p.kind() != Tk::Eql {
                return Err(p.unexpected("label set", "\"=\""));
            }
            p.bump();
            if p.kind() != Tk::Str {
                return Err(p.unexpected("label set", "string"));
            }
            let value = p.bump();
            labels.push(Label::new(label, value.value));
            match p.kind() {
                Tk::Comma => {
                    p.bump();
                }
                Tk::RBrace => {}
                _ => return Err(p.unexpected("label set", "\",\" or \"}\"")),
            }
        }
    }
    if let Some(n) = name {
        labels.push(Label::new(METRIC_NAME, n));
    }
    let rest = s.get(end..).unwrap_or_default();
    if !rest.is_empty() && !rest.starts_with(|c: char| c.is_whitespace()) {
        let t = p.peek();
        return Err(ParseError::new(
            s,
            Span::new(t.start, t.end),
            format!("unexpected {} in series description", t.desc()),
        ));
    }
    Ok((Labels::new(labels), rest.trim_start()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let (l, rest) = parse_series_description("a:b{x=\"1\", y='2',} 1 2 _ stale").unwrap();
        assert_eq!(l.to_string(), "{__name__=\"a:b\", x=\"1\", y=\"2\"}");
        assert_eq!(rest, "1 2 _ stale");
        let (l, rest) = parse_series_description("{__name__=\"m\", a=\"b\"} 0+1x3").unwrap();
        assert_eq!(l.get("__name__"), Some("m"));
        assert_eq!(rest, "0+1x3");
        let (l, rest) = parse_series_description("{} 9x10").unwrap();
        assert!(l.is_empty());
        assert_eq!(rest, "9x10");
        let (l, rest) = parse_series_description("metric").unwrap();
        assert_eq!(l.get("__name__"), Some("metric"));
        assert_eq!(rest, "");
        let (l, rest) = parse_series_description("{\"my.metric\", \"a.b\"=\"c\"} 1").unwrap();
        assert_eq!(l.get("__name__"), Some("my.metric"));
        assert_eq!(l.get("a.b"), Some("c"));
        assert_eq!(rest, "1");
        let (l, _) = parse_series_description("sum{by=\"x\"} 1").unwrap();
        assert_eq!(l.get("__name__"), Some("sum"));
        assert_eq!(l.get("by"), Some("x"));
    }

    #[test]
    fn errors() {
        let e = parse_series_description("a{b=~\"c\"} 1").unwrap_err();
        assert_eq!(
            e.message(),
            "unexpected <op:=~> in label set, expected \"=\""
        );
        let e = parse_series_description("a{b=\"c\" d=\"e\"}").unwrap_err();
        assert_eq!(
            e.message(),
            "unexpected identifier \"d\" in label set, expected \",\" or \"}\""
        );
    }
}
