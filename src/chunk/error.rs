//! What can be wrong with an encoded chunk.

/// A chunk failed validation or decoding. Bit offsets count from the first bit of the
/// chunk's bytes (the header included); byte offsets likewise.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChunkError {
    /// Fewer bytes than the fixed header.
    #[error("chunk too short: {len} bytes, the header alone takes {header} bytes")]
    TooShort {
        /// Length of the chunk in bytes.
        len: usize,
        /// Length of the header in bytes.
        header: usize,
    },
    /// The encoding byte (byte 0) names no encoding this version knows.
    #[error("unknown chunk encoding {encoding} at byte 0")]
    UnknownEncoding {
        /// The encoding byte found.
        encoding: u8,
    },
    /// The checksum over the chunk bytes is not the expected one.
    #[error("chunk checksum mismatch: expected {expected:#010x}, computed {actual:#010x}")]
    CrcMismatch {
        /// The checksum the caller expected (e.g. stored next to the chunk).
        expected: u32,
        /// The checksum of the bytes.
        actual: u32,
    },
    /// The bit stream ended in the middle of a sample.
    #[error("chunk truncated at bit {bit_offset} while decoding sample {sample} of {num_samples}")]
    Truncated {
        /// Bit offset where more data was needed.
        bit_offset: u64,
        /// Index of the sample being decoded.
        sample: usize,
        /// Number of samples the header announces.
        num_samples: usize,
    },
    /// A varint in the stream does not fit in 64 bits.
    #[error("invalid varint at bit {bit_offset} (sample {sample})")]
    InvalidVarint {
        /// Bit offset of the varint's first byte.
        bit_offset: u64,
        /// Index of the sample being decoded.
        sample: usize,
    },
    /// A value's XOR window is impossible (leading zeros + significant bits > 64).
    #[error(
        "invalid XOR window at bit {bit_offset} (sample {sample}): \
         {leading} leading zeros + {significant} significant bits > 64"
    )]
    InvalidXorWindow {
        /// Bit offset of the window header.
        bit_offset: u64,
        /// Index of the sample being decoded.
        sample: usize,
        /// Leading zero count read.
        leading: u32,
        /// Significant bit count read.
        significant: u32,
    },
    /// A value reuses the previous XOR window but no window was opened yet.
    #[error("XOR window reused before one was defined at bit {bit_offset} (sample {sample})")]
    NoXorWindow {
        /// Bit offset of the control bits.
        bit_offset: u64,
        /// Index of the sample being decoded.
        sample: usize,
    },
    /// A timestamp is not greater than the previous one.
    #[error(
        "timestamp {t} of sample {sample} is not after the previous one ({prev}), at bit {bit_offset}"
    )]
    NonIncreasingTimestamp {
        /// Bit offset just after the timestamp.
        bit_offset: u64,
        /// Index of the sample.
        sample: usize,
        /// The decoded timestamp.
        t: i64,
        /// The previous timestamp.
        prev: i64,
    },
    /// Bits remain after the last sample beyond the zero padding of the final byte.
    #[error("{bits} unexpected trailing bits after the last sample, from bit {bit_offset}")]
    TrailingData {
        /// Bit offset just after the last sample.
        bit_offset: u64,
        /// Number of bits left.
        bits: u64,
    },
}
