//! Persistent blocks: immutable directories holding the samples of one time range.
//!
//! ```text
//! <ulid>/
//!   meta.json      identity, time range, stats, compaction lineage (checksummed JSON)
//!   index          symbols, series, postings, postings offset table, toc (see `index`)
//!   chunks/000001  chunk segment files, each up to 512 MiB
//!   tombstones     deleted intervals per series
//! ```
//!
//! A block is written by [`BlockWriter`] into `<ulid>.tmp-for-creation`, fsynced and
//! renamed into place, and read by [`Block::open`], which validates every section before
//! serving anything. The byte layout of every file is documented in `storage-format.md`
//! ("Block directory" and the sections after it).

mod chunks;
mod meta;
mod reader;
mod tombstones;
mod writer;

use std::path::PathBuf;

pub use chunks::{MAX_SEGMENT_SIZE, SEGMENT_MAGIC};
pub use meta::{new_ulid, ulid_time_ms, BlockMeta, BlockStats, CompactionMeta, META_VERSION};
pub use reader::{Block, BlockQuerier};
pub use tombstones::{Interval, Tombstones, TOMBSTONES_MAGIC};
pub use writer::{rechunk, BlockWriter};

use crate::index::IndexError;

/// Name of the meta file inside a block directory.
pub const META_FILE: &str = "meta.json";
/// Name of the index file inside a block directory.
pub const INDEX_FILE: &str = "index";
/// Name of the chunk segment directory inside a block directory.
pub const CHUNKS_DIR: &str = "chunks";
/// Name of the tombstones file inside a block directory.
pub const TOMBSTONES_FILE: &str = "tombstones";

/// A block could not be written or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BlockError {
    /// An I/O error on a block file.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A block file failed validation (checksum or structure).
    #[error("corrupt block file {path}: {section} at byte {offset}: {reason}")]
    Corrupt {
        /// The damaged file.
        path: PathBuf,
        /// The section of the file (e.g. `symbols`, `postings`, `chunk`, `meta`).
        section: &'static str,
        /// Byte offset in the file where the problem was found.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// The caller broke the writer's contract (series order, chunk ranges).
    #[error("invalid block input: {0}")]
    InvalidInput(String),
}

impl BlockError {
    /// Whether this error means the block's bytes are damaged (as opposed to an I/O
    /// failure or a caller mistake).
    pub fn is_corruption(&self) -> bool {
        matches!(self, BlockError::Corrupt { .. })
    }

    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> BlockError {
        let path = path.into();
        move |source| BlockError::Io { path, source }
    }

    pub(crate) fn from_index(path: impl Into<PathBuf>, e: IndexError) -> BlockError {
        let path = path.into();
        match e {
            IndexError::Corrupt {
                section,
                offset,
                reason,
            } => BlockError::Corrupt {
                path,
                section,
                offset,
                reason,
            },
            e @ IndexError::ChunkOutOfRange { .. } => BlockError::Corrupt {
                path,
                section: crate::index::section::SERIES,
                offset: 0,
                reason: e.to_string(),
            },
            IndexError::InvalidInput(s) => BlockError::InvalidInput(s),
            IndexError::Io(source) => BlockError::Io { path, source },
        }
    }
}

#[cfg(test)]
mod tests;
