//! Placeholder until the owner commits it.
