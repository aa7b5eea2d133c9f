//! PromQL: parsing, evaluation and the test-script runner.
//!
//! - [`ast`] and [`parser`]: the expression tree and the parser ([`parse`]).
//! - [`func`]: the closed set of PromQL functions and their signatures.
//! - [`functions`]: pure implementations of the functions (range functions, math, buckets).
//! - [`engine`]: instant and range query evaluation over a [`crate::storage::Queryable`].
//! - [`value`]: query results.
//! - [`annotations`]: warnings and infos attached to a result.
//! - [`promqltest`]: the runner for `.test` scripts in the upstream `promqltest` format.

pub mod annotations;
pub mod ast;
pub mod engine;
pub(crate) mod eval;
pub mod func;
pub mod functions;
pub mod parser;
pub mod promqltest;
pub mod value;

pub use parser::{parse, ParseError};
