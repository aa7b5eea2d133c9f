//! Gorilla-compressed sample chunks.
//!
//! A chunk holds up to [`MAX_SAMPLES_PER_CHUNK`] samples of one series. Timestamps are
//! stored as delta-of-deltas in variable-width buckets and values as the XOR with the
//! previous value, as in Facebook's Gorilla paper and Prometheus' XOR chunk; chunks whose
//! values are all integers store them as delta-of-deltas instead ([`ENCODING_INT`]). The
//! exact bit layout is documented in `storage-format.md` ("Chunks").
//!
//! [`XorChunk`] is the open, appendable form; [`ChunkData`] an immutable, validated,
//! cheaply clonable snapshot; both iterate with [`XorIter`].

mod data;
mod decode;
mod error;
mod xor;

pub use data::ChunkData;
pub(crate) use decode::XorDecoder;
pub use decode::XorIter;
pub use error::ChunkError;
pub use xor::XorChunk;

/// Chunks are cut at this many samples, as Prometheus does.
pub const MAX_SAMPLES_PER_CHUNK: usize = 120;

/// The most samples one chunk can encode (the header's sample count is a `u16`).
pub const MAX_ENCODABLE_SAMPLES: usize = u16::MAX as usize;

/// Value of the encoding byte (byte 0) for XOR chunks.
pub const ENCODING_XOR: u8 = 1;

/// Value of the encoding byte for chunks whose values are all integers, stored as
/// delta-of-deltas (timestamps as in XOR chunks).
pub const ENCODING_INT: u8 = 2;

/// Bytes of the fixed chunk header: encoding byte + little-endian `u16` sample count.
pub const HEADER_LEN: usize = 3;

/// The checksum stored alongside chunks: CRC-32 (IEEE polynomial, as computed by
/// `crc32fast`) over all the chunk's bytes, header included.
#[inline]
pub fn checksum(bytes: &[u8]) -> u32 {
    crc32fast::hash(bytes)
}

#[cfg(test)]
mod tests;
