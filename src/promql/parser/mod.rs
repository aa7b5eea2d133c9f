//! The PromQL parser.
