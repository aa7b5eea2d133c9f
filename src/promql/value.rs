//! Query result values.
