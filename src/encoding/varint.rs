//! LEB128 variable-length integers (unsigned and zigzag-signed), as used by Protocol
//! Buffers and Go's `encoding/binary`.
//!
//! An unsigned value takes 7 bits per byte, least significant group first; the high bit
//! of each byte says whether another byte follows. A `u64` takes at most
//! [`MAX_VARINT_LEN`] bytes. Signed values are zigzag-mapped first
//! (`0, -1, 1, -2, ...` become `0, 1, 2, 3, ...`) so small magnitudes stay short.

/// The longest encoding of a `u64`, in bytes.
pub const MAX_VARINT_LEN: usize = 10;

/// Why a varint could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VarintError {
    /// The input ended before the last byte of the varint.
    #[error("varint truncated after {0} bytes")]
    Truncated(usize),
    /// The varint does not fit in 64 bits (too many bytes, or a 10th byte above 1).
    #[error("varint overflows 64 bits")]
    Overflow,
}

/// Maps a signed value to an unsigned one so that small magnitudes stay small.
#[inline]
pub fn zigzag_encode(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Inverse of [`zigzag_encode`].
#[inline]
pub fn zigzag_decode(u: u64) -> i64 {
    ((u >> 1) as i64) ^ -((u & 1) as i64)
}

/// Appends the unsigned varint encoding of `v` to `out`.
#[inline]
pub fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends the zigzag varint encoding of `v` to `out`.
#[inline]
pub fn put_varint(out: &mut Vec<u8>, v: i64) {
    put_uvarint(out, zigzag_encode(v));
}

/// Decodes an unsigned varint from the start of `buf`, returning the value and the
/// number of bytes it took.
pub fn get_uvarint(buf: &[u8]) -> Result<(u64, usize), VarintError> {
    let mut acc = UvarintAcc::default();
    for (i, &b) in buf.iter().enumerate() {
        if let Some(v) = acc.push(b)? {
            return Ok((v, i + 1));
        }
    }
    Err(VarintError::Truncated(buf.len()))
}

/// Decodes a zigzag varint from the start of `buf`, returning the value and the number
/// of bytes it took.
pub fn get_varint(buf: &[u8]) -> Result<(i64, usize), VarintError> {
    let (u, n) = get_uvarint(buf)?;
    Ok((zigzag_decode(u), n))
}

/// Incremental unsigned varint decoder: feed bytes one at a time with [`Self::push`].
#[derive(Debug, Default, Clone, Copy)]
pub struct UvarintAcc {
    value: u64,
    shift: u32,
}

impl UvarintAcc {
    /// Feeds the next byte; returns `Ok(Some(v))` when the varint is complete,
    /// `Ok(None)` when more bytes are needed.
    #[inline]
    pub fn push(&mut self, b: u8) -> Result<Option<u64>, VarintError> {
        if self.shift == 63 && b > 1 {
            return Err(VarintError::Overflow);
        }
        if self.shift > 63 {
            return Err(VarintError::Overflow);
        }
        self.value |= u64::from(b & 0x7f) << self.shift;
        if b < 0x80 {
            return Ok(Some(self.value));
        }
        self.shift += 7;
        Ok(None)
    }

    /// Bytes consumed so far.
    pub fn bytes_read(&self) -> usize {
        (self.shift / 7) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_edges() {
        let vals = [
            0u64,
            1,
            127,
            128,
            255,
            300,
            16383,
            16384,
            u32::MAX as u64,
            u64::MAX - 1,
            u64::MAX,
        ];
        for v in vals {
            let mut b = Vec::new();
            put_uvarint(&mut b, v);
            assert!(b.len() <= MAX_VARINT_LEN);
            assert_eq!(get_uvarint(&b), Ok((v, b.len())), "{v}");
        }
        for v in [0i64, -1, 1, -64, 64, i64::MIN, i64::MAX, -1_700_000_000_000] {
            let mut b = Vec::new();
            put_varint(&mut b, v);
            assert_eq!(get_varint(&b), Ok((v, b.len())), "{v}");
        }
    }

    #[test]
    fn known_bytes() {
        let mut b = Vec::new();
        put_uvarint(&mut b, 300);
        assert_eq!(b, [0xac, 0x02]);
        assert_eq!(zigzag_encode(-1), 1);
        assert_eq!(zigzag_encode(1), 2);
        assert_eq!(zigzag_encode(i64::MIN), u64::MAX);
    }

    #[test]
    fn errors() {
        assert_eq!(get_uvarint(&[]), Err(VarintError::Truncated(0)));
        assert_eq!(get_uvarint(&[0x80, 0x80]), Err(VarintError::Truncated(2)));
        let mut over = vec![0xff; 9];
        over.push(0x02);
        assert_eq!(get_uvarint(&over), Err(VarintError::Overflow));
        assert_eq!(get_uvarint(&[0xff; 11]), Err(VarintError::Overflow));
        // A non-minimal but in-range encoding is accepted.
        assert_eq!(get_uvarint(&[0x81, 0x00]), Ok((1, 2)));
    }
}
