//! # Aion
//!
//! An embedded, Prometheus-compatible time-series database.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
#![warn(missing_docs)]

pub mod chunk;
pub mod db;
pub mod encoding;
pub mod head;
pub mod model;
pub mod promql;
pub mod storage;
pub mod wal;
pub mod api;
pub mod server;
