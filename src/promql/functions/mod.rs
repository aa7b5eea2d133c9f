//! Pure implementations of PromQL functions.
