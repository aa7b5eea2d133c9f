//! # Aion
//!
//! An embedded, Prometheus-compatible time-series database.
//!
//! Open a [`db::Db`] on a directory, append samples through an appender, commit, and
//! query with label matchers:
//!
//! ```
//! use aion::db::{Db, DbOptions};
//! use aion::model::{Labels, MatchOp, Matcher};
//!
//! let dir = std::env::temp_dir().join(format!("aion-doc-{}", std::process::id()));
//! let db = Db::open(&dir, DbOptions::default())?;
//!
//! let mut app = db.appender();
//! let up = Labels::from_pairs(&[("__name__", "up"), ("job", "api")]);
//! let r = app.append(&up, 1_000, 1.0)?;
//! app.append_ref(r, 2_000, 0.0)?;
//! app.commit()?;
//!
//! let q = db.querier(0, 10_000)?;
//! let series = q.select(&[Matcher::new(MatchOp::RegexMatch, "job", "api|web")?])?;
//! assert_eq!(series.len(), 1);
//! let ts: Vec<i64> = series[0].iter().map(|s| s.t).collect();
//! assert_eq!(ts, vec![1_000, 2_000]);
//!
//! db.close()?;
//! std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(unsafe_code)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
#![warn(missing_docs)]

pub mod api;
pub mod backfill;
pub mod block;
pub mod chunk;
pub mod config;
pub mod db;
pub mod encoding;
pub mod exposition;
pub mod fsutil;
#[doc(hidden)]
pub mod fuzzing;
pub mod head;
pub mod index;
pub mod model;
pub mod notifier;
pub mod promql;
pub mod remote;
pub mod rules;
pub mod scrape;
pub mod server;
pub mod storage;
pub mod template;
pub mod wal;
pub mod web;
