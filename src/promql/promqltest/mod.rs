//! The runner for PromQL test scripts.
