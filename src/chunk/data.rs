//! Immutable, validated chunks.

use std::fmt;
use std::sync::Arc;

use crate::fsutil::SharedBytes;
use crate::model::Sample;

use super::decode::{XorDecoder, XorIter};
use super::{checksum, ChunkError, ENCODING_INT, ENCODING_XOR, HEADER_LEN};

/// An immutable encoded chunk with its time range, sample count and checksum. Cloning
/// is cheap (the bytes are shared).
///
/// A `ChunkData` is only built from bytes that decoded completely, so iterating it never
/// fails. An empty chunk has `min_time() == i64::MAX` and `max_time() == i64::MIN`, so it
/// overlaps no time range.
#[derive(Clone)]
pub struct ChunkData {
    bytes: SharedBytes,
    min_t: i64,
    max_t: i64,
    num_samples: usize,
    crc: u32,
}

impl fmt::Debug for ChunkData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChunkData")
            .field("len", &self.bytes.len())
            .field("num_samples", &self.num_samples)
            .field("min_t", &self.min_t)
            .field("max_t", &self.max_t)
            .field("crc", &format_args!("{:#010x}", self.crc))
            .finish()
    }
}

impl ChunkData {
    /// From bytes the caller encoded itself (trusted).
    pub(crate) fn from_parts(bytes: Arc<[u8]>, min_t: i64, max_t: i64, num: usize) -> Self {
        let crc = checksum(&bytes);
        ChunkData {
            bytes: SharedBytes::from(bytes),
            min_t,
            max_t,
            num_samples: num,
            crc,
        }
    }

    /// Rebuilds a chunk from bytes that an earlier [`Self::from_bytes`] validated, whose
    /// checksum the caller has just verified to be `crc` again (so they are the same
    /// bytes): skips the full decode. `min_t`, `max_t` and `num` are what that validation
    /// found.
    pub(crate) fn from_revalidated(
        bytes: SharedBytes,
        crc: u32,
        min_t: i64,
        max_t: i64,
        num: usize,
    ) -> Self {
        ChunkData {
            bytes,
            min_t,
            max_t,
            num_samples: num,
            crc,
        }
    }

    /// Validates untrusted chunk bytes: header, checksum (when `expected_crc` is given),
    /// and a full decode of every sample (which yields the time range). Never panics.
    pub fn from_bytes(
        bytes: impl Into<SharedBytes>,
        expected_crc: Option<u32>,
    ) -> Result<ChunkData, ChunkError> {
        let bytes: SharedBytes = bytes.into();
        let header = bytes.get(..HEADER_LEN).ok_or(ChunkError::TooShort {
            len: bytes.len(),
            header: HEADER_LEN,
        })?;
        let (enc, n) = match *header {
            [enc, lo, hi] => (enc, usize::from(u16::from_le_bytes([lo, hi]))),
            _ => {
                return Err(ChunkError::TooShort {
                    len: bytes.len(),
                    header: HEADER_LEN,
                })
            }
        };
        if enc != ENCODING_XOR && enc != ENCODING_INT {
            return Err(ChunkError::UnknownEncoding { encoding: enc });
        }
        let crc = checksum(&bytes);
        if let Some(expected) = expected_crc {
            if expected != crc {
                return Err(ChunkError::CrcMismatch {
                    expected,
                    actual: crc,
                });
            }
        }
        let mut dec = XorDecoder::new(n);
        let mut min_t = i64::MAX;
        let mut max_t = i64::MIN;
        let mut batch = [Sample::new(0, 0.0); 64];
        loop {
            let k = dec.next_batch(&bytes, &mut batch);
            let got = batch.get(..k).unwrap_or(&[]);
            let (Some(first), Some(last)) = (got.first(), got.last()) else {
                break;
            };
            min_t = min_t.min(first.t);
            max_t = last.t;
        }
        if let Some(e) = dec.err() {
            return Err(e);
        }
        if dec.samples_read() != n {
            // Only reachable if decoding stopped without an error; kept as a guard.
            return Err(ChunkError::Truncated {
                bit_offset: dec.cursor().bit_offset(),
                sample: dec.samples_read(),
                num_samples: n,
            });
        }
        // Only zero padding may follow the last sample.
        let mut cur = dec.cursor();
        let at = cur.bit_offset();
        let left = cur.bits_left(&bytes);
        let padding_ok = left < 8 && cur.read_bits(&bytes, left as u32) == Some(0);
        if !padding_ok {
            return Err(ChunkError::TrailingData {
                bit_offset: at,
                bits: left,
            });
        }
        Ok(ChunkData {
            bytes,
            min_t,
            max_t,
            num_samples: n,
            crc,
        })
    }

    /// The encoded chunk (header and bit stream).
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The shared encoded bytes.
    pub fn shared_bytes(&self) -> &SharedBytes {
        &self.bytes
    }

    /// The checksum of [`Self::bytes`] (see [`super::checksum`]).
    pub fn crc(&self) -> u32 {
        self.crc
    }

    /// Timestamp of the first sample (`i64::MAX` when empty).
    pub fn min_time(&self) -> i64 {
        self.min_t
    }

    /// Timestamp of the last sample (`i64::MIN` when empty).
    pub fn max_time(&self) -> i64 {
        self.max_t
    }

    /// Number of samples.
    pub fn num_samples(&self) -> usize {
        self.num_samples
    }

    /// Iterates the samples.
    pub fn iter(&self) -> XorIter<'_> {
        XorIter::new(&self.bytes, self.num_samples)
    }

    pub(crate) fn decoder(&self) -> XorDecoder {
        XorDecoder::new(self.num_samples)
    }
}
