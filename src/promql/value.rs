//! Query result values, as returned by the engine.

use std::fmt;

use crate::model::{Labels, Sample, Timestamp};

/// One element of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct InstantSample {
    /// The series' labels.
    pub labels: Labels,
    /// The evaluation timestamp in milliseconds.
    pub t: Timestamp,
    /// The value.
    pub v: f64,
}

/// One series of a range vector (matrix).
#[derive(Debug, Clone, PartialEq)]
pub struct RangeSeries {
    /// The series' labels.
    pub labels: Labels,
    /// Points in time order.
    pub samples: Vec<Sample>,
}

/// The result of a query.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A scalar at time `t`.
    Scalar {
        /// Evaluation time (ms).
        t: Timestamp,
        /// The value.
        v: f64,
    },
    /// A string at time `t`.
    String {
        /// Evaluation time (ms).
        t: Timestamp,
        /// The value.
        v: String,
    },
    /// An instant vector.
    Vector(Vec<InstantSample>),
    /// A range vector, series sorted by labels.
    Matrix(Vec<RangeSeries>),
}

impl Value {
    /// The PromQL type name (`scalar`, `string`, `vector`, `matrix`).
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Scalar { .. } => "scalar",
            Value::String { .. } => "string",
            Value::Vector(_) => "vector",
            Value::Matrix(_) => "matrix",
        }
    }
}

/// Formats a float as Prometheus does in text output (`+Inf`, `-Inf`, `NaN`, shortest
/// round-tripping decimal otherwise).
pub fn format_float(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_string()
    } else if v == f64::INFINITY {
        "+Inf".to_string()
    } else if v == f64::NEG_INFINITY {
        "-Inf".to_string()
    } else {
        format!("{v}")
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Scalar { t, v } => write!(f, "scalar: {} @[{t}]", format_float(*v)),
            Value::String { t, v } => write!(f, "string: {v:?} @[{t}]"),
            Value::Vector(vs) => {
                for s in vs {
                    writeln!(f, "{} => {} @[{}]", s.labels, format_float(s.v), s.t)?;
                }
                Ok(())
            }
            Value::Matrix(ms) => {
                for s in ms {
                    write!(f, "{} =>", s.labels)?;
                    for p in &s.samples {
                        write!(f, " {} @[{}]", format_float(p.v), p.t)?;
                    }
                    writeln!(f)?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_format_like_prometheus() {
        assert_eq!(format_float(f64::INFINITY), "+Inf");
        assert_eq!(format_float(f64::NEG_INFINITY), "-Inf");
        assert_eq!(format_float(f64::NAN), "NaN");
        assert_eq!(format_float(1.5), "1.5");
        assert_eq!(Value::Scalar { t: 0, v: 2.0 }.type_name(), "scalar");
    }
}
