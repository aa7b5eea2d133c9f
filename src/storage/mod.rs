//! Storage contracts: what the query engine, rules and scraping see of the database.
//!
//! Engine code (head, blocks, db) implements these traits; `promql` reads only through
//! them and never names a concrete store.

mod mem;
mod series;

pub use mem::MemStorage;
pub use series::{Series, SeriesChunk, SeriesIter};

use crate::model::{Matcher, Timestamp};

/// A storage read failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// An I/O error while reading.
    #[error("storage I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// Data on disk failed validation.
    #[error("corrupt data: {0}")]
    Corrupt(String),
    /// Anything else, with a description.
    #[error("{0}")]
    Other(String),
}

/// Something that can be queried over a time range.
pub trait Queryable: Send + Sync {
    /// A querier over samples with `mint <= t <= maxt` (both inclusive, milliseconds).
    fn querier(
        &self,
        mint: Timestamp,
        maxt: Timestamp,
    ) -> Result<Box<dyn Querier + '_>, StorageError>;
}

/// Reads series and label metadata within the querier's time range.
pub trait Querier {
    /// The series matching all `matchers`, sorted by labels, each restricted to the
    /// querier's time range. Series with no sample in range may be omitted.
    fn select(&self, matchers: &[Matcher]) -> Result<Vec<Series>, StorageError>;

    /// Sorted label names of series matching `matchers` (all series when empty).
    fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>, StorageError>;

    /// Sorted distinct values of `name` over series matching `matchers`.
    fn label_values(&self, name: &str, matchers: &[Matcher]) -> Result<Vec<String>, StorageError>;
}
