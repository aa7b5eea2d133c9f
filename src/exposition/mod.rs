//! Parsers for the Prometheus text exposition format (0.0.4) and OpenMetrics 1.0.
//!
//! [`Parser`] is a pull parser over a byte slice. It yields one [`Entry`] per line and
//! never copies the body: series names, label pairs and help texts borrow from the
//! input and are only unescaped (into an owned string) when they contain escapes.
//! Errors carry the 1-based line number; the parser never panics, whatever the input.
//!
//! The accepted syntax follows Prometheus's own parsers (`model/textparse`):
//!
//! * **Text format**: spaces and tabs may separate any two tokens; blank lines and
//!   `#` comments are allowed; timestamps are optional integer milliseconds (digits
//!   only); a missing final newline is fine.
//! * **OpenMetrics**: tokens are separated by exactly one space; only `# HELP`,
//!   `# TYPE`, `# UNIT` and `# EOF` comments exist; the body must end with `# EOF`
//!   (optionally followed by one newline) and nothing may follow it; timestamps are
//!   float seconds, converted to milliseconds by truncation (`int64(ts * 1000)`); a
//!   sample may carry an exemplar after ` # `, which is parsed and returned.
//! * Values use Go's `ParseFloat` syntax without hexadecimal floats or `_`:
//!   `1`, `-2.5e-3`, `NaN`, `+Inf`, `-Inf`, `inf`, `Infinity` (any case).
//! * Label values and (quoted) names unescape `\\`, `\"` and `\n`; other backslash
//!   sequences are kept as written. Help texts unescape `\\` and `\n` (text format)
//!   or the label-value escapes (OpenMetrics).
//! * Prometheus 3's quoted metric and label names (`{"my.metric", "a.b"="1"}`) are
//!   accepted in both formats.
//! * Values of `le` labels while the current `# TYPE` is `histogram`, and of
//!   `quantile` labels while it is `summary`, are normalised to OpenMetrics canonical
//!   float text (`1` → `1.0`, `1000000` → `1e+06`), as Prometheus does.
//!
//! Deliberate differences from Prometheus, all on malformed input: a raw line feed can
//! never appear inside a label value (the text-format lexer of Prometheus tolerates
//! it), a text-format `# HELP` or `# TYPE` name must be followed by whitespace or the
//! end of the line, and a NUL byte is an ordinary (invalid) character rather than an
//! end of input.

mod float;
mod parser;

use std::borrow::Cow;
use std::fmt;

pub use float::{
    format_openmetrics_float, parse_go_float, parse_millis, parse_seconds_to_millis,
    NORMAL_NAN_BITS,
};
pub use parser::{LabelIter, Parser, ParserState};

use crate::model::{Label, Labels, METRIC_NAME};

/// Which exposition format a body is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// The Prometheus text format, version 0.0.4.
    PrometheusText,
    /// OpenMetrics 1.0 text.
    OpenMetrics,
}

impl Format {
    /// The format for an HTTP `Content-Type` header value: OpenMetrics for
    /// `application/openmetrics-text`, the text format otherwise.
    pub fn from_content_type(ct: &str) -> Format {
        let media = ct.split(';').next().unwrap_or("").trim();
        if media.eq_ignore_ascii_case("application/openmetrics-text") {
            Format::OpenMetrics
        } else {
            Format::PrometheusText
        }
    }
}

/// A metric family type from a `# TYPE` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MetricType {
    /// `counter`
    Counter,
    /// `gauge`
    Gauge,
    /// `histogram`
    Histogram,
    /// `gaugehistogram` (OpenMetrics)
    GaugeHistogram,
    /// `summary`
    Summary,
    /// `info` (OpenMetrics)
    Info,
    /// `stateset` (OpenMetrics)
    StateSet,
    /// `unknown` (OpenMetrics) or `untyped` (text format); also the type before any
    /// `# TYPE` line.
    #[default]
    Unknown,
}

impl MetricType {
    /// The name as written in OpenMetrics.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
            MetricType::GaugeHistogram => "gaugehistogram",
            MetricType::Summary => "summary",
            MetricType::Info => "info",
            MetricType::StateSet => "stateset",
            MetricType::Unknown => "unknown",
        }
    }
}

impl fmt::Display for MetricType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A body could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// A line does not follow the format's grammar.
    #[error("line {line}: {reason}")]
    Syntax {
        /// 1-based line number.
        line: u64,
        /// What is wrong, with the start of the offending line.
        reason: String,
    },
}

impl ParseError {
    /// The 1-based line number of the error.
    pub fn line(&self) -> u64 {
        match self {
            ParseError::Syntax { line, .. } => *line,
        }
    }
}

/// One entry of an exposition.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry<'a> {
    /// A sample line.
    Series(SeriesEntry<'a>),
    /// `# HELP name text`, with the text unescaped.
    Help {
        /// The metric family name.
        name: Cow<'a, str>,
        /// The help text.
        text: Cow<'a, str>,
    },
    /// `# TYPE name type`.
    Type {
        /// The metric family name.
        name: Cow<'a, str>,
        /// The declared type.
        kind: MetricType,
    },
    /// `# UNIT name unit` (OpenMetrics only).
    Unit {
        /// The metric family name.
        name: Cow<'a, str>,
        /// The unit (possibly empty).
        unit: &'a str,
    },
    /// Any other comment line (text format only), as written from the `#` on
    /// (invalid UTF-8 replaced).
    Comment(Cow<'a, str>),
    /// `# EOF` (OpenMetrics only); nothing follows it.
    Eof,
}

/// An exemplar attached to an OpenMetrics sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Exemplar<'a> {
    labels_raw: &'a [u8],
    /// The exemplar's value.
    pub value: f64,
    /// The exemplar's timestamp in milliseconds, if given.
    pub timestamp: Option<i64>,
}

impl<'a> Exemplar<'a> {
    /// The exemplar's labels, unescaped, in the order written.
    pub fn labels(&self) -> LabelIter<'a> {
        LabelIter::new(self.labels_raw, MetricType::Unknown)
    }
}

/// A sample line: series identity, value and optional timestamp.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesEntry<'a> {
    pub(crate) series: &'a [u8],
    pub(crate) name_raw: &'a [u8],
    pub(crate) name_quoted: bool,
    pub(crate) labels_raw: &'a [u8],
    pub(crate) repeats_previous: bool,
    pub(crate) kind: MetricType,
    /// The sample value (NaN as [`NORMAL_NAN_BITS`]).
    pub value: f64,
    /// The timestamp in milliseconds, if the line has one.
    pub timestamp: Option<i64>,
    /// The exemplar, if any (OpenMetrics only).
    pub exemplar: Option<Exemplar<'a>>,
    /// The 1-based line number.
    pub line: u64,
}

impl<'a> SeriesEntry<'a> {
    /// The series as written (metric name and label set, without value and
    /// timestamp). Equal text means equal labels, so it works as a cache key.
    pub fn series_text(&self) -> &'a [u8] {
        self.series
    }

    /// Whether this line's series text is the same as the previous sample line's
    /// (so callers that cache the previous series can reuse it). Only ever `true` for
    /// consecutive sample lines of one parser with no other entry between them.
    pub fn repeats_previous(&self) -> bool {
        self.repeats_previous
    }

    /// The metric name, unescaped.
    pub fn metric_name(&self) -> Cow<'a, str> {
        // The parser checked the name: ASCII, or valid UTF-8 when quoted.
        let name = std::str::from_utf8(self.name_raw).unwrap_or("");
        if self.name_quoted {
            parser::unescape(name)
        } else {
            Cow::Borrowed(name)
        }
    }

    /// The type in effect for this line (from the last `# TYPE` line).
    pub fn metric_type(&self) -> MetricType {
        self.kind
    }

    /// The labels other than the metric name, unescaped (and `le`/`quantile`
    /// normalised), in the order written.
    pub fn labels(&self) -> LabelIter<'a> {
        LabelIter::new(self.labels_raw, self.kind)
    }

    /// The full label set including `__name__`. Labels with empty values are kept.
    /// A label name that appears twice (or a `__name__` label next to the metric
    /// name) is an error.
    pub fn to_labels(&self) -> Result<Labels, ParseError> {
        let mut v: Vec<Label> = Vec::with_capacity(8);
        v.push(Label::new(METRIC_NAME, self.metric_name()));
        for (n, val) in self.labels() {
            v.push(Label::new(n, val));
        }
        v.sort_by(|a, b| a.name.cmp(&b.name));
        if let Some(w) = v
            .windows(2)
            .find(|w| matches!(w, [a, b] if a.name == b.name))
        {
            let name = w.first().map(|l| l.name.clone()).unwrap_or_default();
            return Err(ParseError::Syntax {
                line: self.line,
                reason: format!("label name {name:?} appears more than once"),
            });
        }
        Ok(Labels::from_sorted(v).unwrap_or_else(Labels::empty))
    }
}

#[cfg(test)]
mod tests;
