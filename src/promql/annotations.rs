//! Warnings and infos attached to query results, with Prometheus's exact texts.
//!
//! Every text starts with `PromQL warning: ` or `PromQL info: ` and ends with the
//! ` (line:col)` position of the expression it is about.

use std::fmt;

use crate::promql::ast::Span;

/// Whether an annotation is a warning or an info.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AnnotationKind {
    /// Something is probably wrong with the query or the data.
    Warning,
    /// A hint that may or may not indicate a problem.
    Info,
}

/// One annotation: its kind and full text (prefix, message and position).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Annotation {
    /// Warning or info.
    pub kind: AnnotationKind,
    /// The full text as Prometheus prints it.
    pub text: String,
}

impl fmt::Display for Annotation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn pos(query: &str, span: Span) -> String {
    let (l, c) = span.line_col(query);
    format!(" ({l}:{c})")
}

fn warn(query: &str, span: Span, msg: String) -> Annotation {
    Annotation {
        kind: AnnotationKind::Warning,
        text: format!("PromQL warning: {msg}{}", pos(query, span)),
    }
}

fn info(query: &str, span: Span, msg: String) -> Annotation {
    Annotation {
        kind: AnnotationKind::Info,
        text: format!("PromQL info: {msg}{}", pos(query, span)),
    }
}

/// Formats a float as Go's `%g` verb does for the values that appear in annotation
/// texts (`NaN`, `+Inf`, `-Inf`, shortest decimal otherwise).
pub fn go_float(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_string()
    } else if v == f64::INFINITY {
        "+Inf".to_string()
    } else if v == f64::NEG_INFINITY {
        "-Inf".to_string()
    } else {
        let exp = if v == 0.0 {
            0
        } else {
            v.abs().log10().floor() as i32
        };
        if !(-4..21).contains(&exp) {
            let s = format!("{v:e}");
            // Go prints e+06 / e-05 with at least two exponent digits
            match s.split_once('e') {
                Some((m, e)) => {
                    let (sign, digits) = match e.strip_prefix('-') {
                        Some(d) => ('-', d),
                        None => ('+', e),
                    };
                    format!("{m}e{sign}{digits:0>2}")
                }
                None => s,
            }
        } else {
            format!("{v}")
        }
    }
}

/// `quantile value should be between 0 and 1, got <q>`.
pub fn invalid_quantile(query: &str, span: Span, q: f64) -> Annotation {
    warn(
        query,
        span,
        format!(
            "quantile value should be between 0 and 1, got {}",
            go_float(q)
        ),
    )
}

/// `ratio value should be between -1 and 1, got <r>, capping to <cap>`.
pub fn invalid_ratio(query: &str, span: Span, r: f64, cap: f64) -> Annotation {
    warn(
        query,
        span,
        format!(
            "ratio value should be between -1 and 1, got {}, capping to {}",
            go_float(r),
            go_float(cap)
        ),
    )
}

/// `bucket label "le" is missing or has a malformed value of "<le>" for metric name "<m>"`.
pub fn bad_bucket_label(query: &str, span: Span, metric: &str, le: &str) -> Annotation {
    warn(
        query,
        span,
        format!(
            "bucket label \"le\" is missing or has a malformed value of {} for metric name {}",
            crate::promql::ast::quote_string(le),
            crate::promql::ast::quote_string(metric)
        ),
    )
}

/// `metric might not be a counter, name does not end in _total/_sum/_count/_bucket: "<m>"`.
pub fn possible_non_counter(query: &str, span: Span, metric: &str) -> Annotation {
    info(
        query,
        span,
        format!(
            "metric might not be a counter, name does not end in _total/_sum/_count/_bucket: {}",
            crate::promql::ast::quote_string(metric)
        ),
    )
}

/// `input to histogram_quantile needed to be fixed for monotonicity ...`.
pub fn histogram_quantile_forced_monotonicity(query: &str, span: Span, metric: &str) -> Annotation {
    info(
        query,
        span,
        format!(
            "input to histogram_quantile needed to be fixed for monotonicity (see https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile) for metric name {}",
            crate::promql::ast::quote_string(metric)
        ),
    )
}

/// `sort is ineffective for range queries since results are always ordered by labels`.
pub fn sort_in_range_query(query: &str, span: Span) -> Annotation {
    warn(
        query,
        span,
        "sort is ineffective for range queries since results are always ordered by labels"
            .to_string(),
    )
}

/// An ordered, de-duplicated set of annotations (Prometheus keys them by text).
#[derive(Clone, Debug, Default)]
pub struct Annotations {
    items: Vec<Annotation>,
}

impl Annotations {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `a` unless an identical annotation is present.
    pub fn add(&mut self, a: Annotation) {
        if !self.items.contains(&a) {
            self.items.push(a);
        }
    }

    /// The annotations in insertion order.
    pub fn into_vec(self) -> Vec<Annotation> {
        self.items
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_carry_positions() {
        let q = "sum(sort(series))";
        let a = sort_in_range_query(q, Span { start: 4, end: 16 });
        assert_eq!(
            a.text,
            "PromQL warning: sort is ineffective for range queries since results are always ordered by labels (1:5)"
        );
        let a = invalid_quantile(q, Span { start: 0, end: 1 }, f64::NAN);
        assert!(a.text.ends_with("got NaN (1:1)"));
        assert_eq!(go_float(1.5), "1.5");
        assert_eq!(go_float(-0.5), "-0.5");
        assert_eq!(go_float(1e21), "1e+21");
        let mut s = Annotations::new();
        s.add(a.clone());
        s.add(a);
        assert_eq!(s.into_vec().len(), 1);
    }
}
