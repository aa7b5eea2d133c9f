//! Shared vocabulary of the engine: labels, matchers and samples. No I/O.

pub mod goregex;
mod labels;
mod matcher;
mod sample;
pub mod time;

pub use labels::{is_valid_label_name, is_valid_metric_name, quote, stable_hash_pairs, LabelError};
pub use labels::{
    validate_label_name, validate_metric_name, Label, LabelRef, LabelStr, Labels, LabelsBuilder,
    LabelsIter, PackedIter, METRIC_NAME,
};
pub use matcher::{MatchOp, Matcher, MatcherError};
pub use sample::{is_stale_nan, Sample, Timestamp, STALE_NAN, STALE_NAN_BITS};
