//! The persistent series index of a block: a symbol table, the series with their chunk
//! references, label postings as roaring bitmaps, a postings offset table and a table of
//! contents, each section protected by a CRC-32. The byte layout is documented in
//! `storage-format.md` ("Index").
//!
//! Series get dense block-local ids `0..n` in label order, so a postings bitmap iterates
//! series in label order. Matchers are evaluated by [`postings_for_matchers`], the same
//! code the head's in-memory postings use.

pub(crate) mod codec;
mod postings;
mod reader;
mod writer;

pub use postings::{postings_for_matchers, PostingsSource};
pub use reader::IndexReader;
pub use writer::IndexWriter;

/// Magic bytes and version at the start of an index file.
pub const INDEX_MAGIC: [u8; 8] = *b"AIONIDX\x01";

/// Size of the table of contents at the end of an index file: four `u64` section
/// offsets and a CRC-32.
pub const TOC_LEN: usize = 4 * 8 + 4;

/// Names of the index sections, as used in corruption errors.
pub mod section {
    /// The file header (magic and version).
    pub const HEADER: &str = "index header";
    /// The symbol table.
    pub const SYMBOLS: &str = "symbols";
    /// The series section.
    pub const SERIES: &str = "series";
    /// The postings lists.
    pub const POSTINGS: &str = "postings";
    /// The postings offset table.
    pub const POSTINGS_TABLE: &str = "postings offset table";
    /// The table of contents.
    pub const TOC: &str = "toc";
}

/// Where a chunk lives: segment file number in the high 32 bits, byte offset of the
/// chunk's record inside that file in the low 32 bits.
pub type ChunkRef = u64;

/// Builds a [`ChunkRef`].
pub fn chunk_ref(segment: u32, offset: u32) -> ChunkRef {
    (u64::from(segment) << 32) | u64::from(offset)
}

/// Splits a [`ChunkRef`] into segment file number and offset.
pub fn split_chunk_ref(r: ChunkRef) -> (u32, u32) {
    ((r >> 32) as u32, r as u32)
}

/// A chunk's entry in the index: its time range (both inclusive) and location.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkMeta {
    /// Timestamp of the first sample.
    pub min_time: i64,
    /// Timestamp of the last sample.
    pub max_time: i64,
    /// Location in the chunk segment files.
    pub chunk_ref: ChunkRef,
}

/// The index could not be written or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IndexError {
    /// Bytes failed validation.
    #[error("corrupt {section} at byte {offset}: {reason}")]
    Corrupt {
        /// The section (see [`section`]).
        section: &'static str,
        /// Byte offset in the file where the problem was found.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// A chunk reference points past the end of its segment file, or to a segment that
    /// does not exist: with the index intact, the chunk files are damaged (truncated or
    /// missing).
    #[error("chunk reference {segment}:{offset} (index byte {index_offset}) points outside the chunk files")]
    ChunkOutOfRange {
        /// Segment file number.
        segment: u32,
        /// Byte offset in the segment file.
        offset: u32,
        /// Where the reference is in the index file.
        index_offset: u64,
    },
    /// The caller broke the writer's contract (order of series, limits).
    #[error("invalid index input: {0}")]
    InvalidInput(String),
    /// An I/O error while writing.
    #[error("index I/O error: {0}")]
    Io(#[from] std::io::Error),
}
