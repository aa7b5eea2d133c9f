//! Bit-granular writer and reader, most significant bit first.
//!
//! The first bit written is the high bit of the first byte. A stream that does not end
//! on a byte boundary is padded with zero bits in its last byte.

/// Appends bits to a `Vec<u8>`, most significant bit first.
#[derive(Debug, Clone, Default)]
pub struct BitWriter {
    bytes: Vec<u8>,
    /// Unused low bits in the last byte (0..=7).
    free: u32,
}

#[inline]
fn low_mask(n: u32) -> u64 {
    if n >= 64 {
        u64::MAX
    } else {
        (1u64 << n) - 1
    }
}

impl BitWriter {
    /// Capacity beyond the written bytes that appending bits may use for a moment (it
    /// copies 8 bytes, then drops those it does not use): a buffer with this much spare
    /// room is not reallocated by the write that fills it.
    pub const WRITE_SLACK: usize = 8;

    /// An empty writer.
    pub fn new() -> Self {
        Self::default()
    }

    /// A writer that appends after the existing bytes of `bytes` (starting on a byte
    /// boundary).
    pub fn from_vec(bytes: Vec<u8>) -> Self {
        BitWriter { bytes, free: 0 }
    }

    /// An empty writer with room for `cap` bytes.
    pub fn with_capacity(cap: usize) -> Self {
        Self::from_vec(Vec::with_capacity(cap))
    }

    /// Appends one bit.
    #[inline]
    pub fn write_bit(&mut self, bit: bool) {
        self.write_bits(u64::from(bit), 1);
    }

    /// Appends the low `n` bits of `v` (high bit of those first). `n` above 64 is treated
    /// as 64; bits of `v` above `n` are ignored.
    #[inline(always)]
    pub fn write_bits(&mut self, v: u64, n: u32) {
        let mut n = n.min(64);
        let mut v = v & low_mask(n);
        if n == 0 {
            return;
        }
        if self.free > 0 {
            let take = self.free.min(n);
            let top = (v >> (n - take)) & low_mask(take);
            if let Some(last) = self.bytes.last_mut() {
                *last |= (top << (self.free - take)) as u8;
            }
            self.free -= take;
            n -= take;
            v &= low_mask(n);
            if n == 0 {
                return;
            }
        }
        // The rest starts on a byte boundary: append it left-aligned in one 8-byte copy,
        // then drop the bytes it does not use.
        let len = self.bytes.len();
        let nbytes = n.div_ceil(8) as usize;
        // (this copy is why a buffer needs `WRITE_SLACK` spare bytes)
        self.bytes.extend_from_slice(&(v << (64 - n)).to_be_bytes());
        self.bytes.truncate(len + nbytes);
        self.free = (nbytes as u32) * 8 - n;
    }

    /// Appends whole bytes. On a byte boundary this is a plain copy.
    pub fn write_bytes(&mut self, b: &[u8]) {
        if self.free == 0 {
            self.bytes.extend_from_slice(b);
        } else {
            for &x in b {
                self.write_bits(u64::from(x), 8);
            }
        }
    }

    /// Number of bits written (including any bytes the writer started with).
    pub fn bit_len(&self) -> u64 {
        (self.bytes.len() as u64) * 8 - u64::from(self.free)
    }

    /// The bytes written so far; the last byte is zero-padded.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Mutable access to the written bytes, e.g. to patch a fixed-size header. Changing
    /// bits that were not yet written (the padding) corrupts later writes.
    pub fn as_bytes_mut(&mut self) -> &mut [u8] {
        &mut self.bytes
    }

    /// Shrinks the buffer's capacity towards `min` bytes (never below what is written).
    pub fn shrink_to(&mut self, min: usize) {
        self.bytes.shrink_to(min);
    }

    /// Consumes the writer, returning its bytes.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

/// The position of a [`BitReader`] without the borrowed bytes, so that a decoder can be
/// stored next to an owner of the bytes and resumed later.
///
/// `buf` holds the next `valid` stream bits left-aligned; the bits below them are either
/// zero or the stream bits that follow, so peeking past `valid` never lies about data
/// that exists.
#[derive(Debug, Clone, Copy, Default)]
pub struct BitCursor {
    /// Index of the next byte to load into `buf`.
    pos: usize,
    buf: u64,
    valid: u32,
}

impl BitCursor {
    /// A cursor at byte `pos` of the stream.
    pub fn at_byte(pos: usize) -> Self {
        BitCursor {
            pos,
            buf: 0,
            valid: 0,
        }
    }

    /// The cursor's parts: the index of the next byte to load, the buffered bits
    /// (left-aligned) and how many of them are valid. For decoders that keep the cursor
    /// in locals.
    #[inline(always)]
    pub fn into_parts(self) -> (usize, u64, u32) {
        (self.pos, self.buf, self.valid)
    }

    /// A cursor from the parts [`Self::into_parts`] returned (possibly advanced
    /// consistently since).
    #[inline(always)]
    pub fn from_parts(pos: usize, buf: u64, valid: u32) -> Self {
        BitCursor { pos, buf, valid }
    }

    /// Bits consumed from the start of the byte slice.
    #[inline]
    pub fn bit_offset(&self) -> u64 {
        (self.pos as u64) * 8 - u64::from(self.valid)
    }

    /// Bits left in `data` after the cursor.
    #[inline]
    pub fn bits_left(&self, data: &[u8]) -> u64 {
        (data.len() as u64) * 8 - self.bit_offset().min((data.len() as u64) * 8)
    }

    /// Loads bytes so that at least 57 bits are buffered, or all remaining bits are.
    #[inline(always)]
    pub fn refill(&mut self, data: &[u8]) {
        if self.valid > 56 {
            return;
        }
        let end = self.pos.wrapping_add(8);
        if let Some(chunk) = data.get(self.pos..end) {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            let word = u64::from_be_bytes(word);
            self.buf |= word >> self.valid;
            let add = (64 - self.valid) / 8;
            self.pos += add as usize;
            self.valid += add * 8;
        } else if self.pos < data.len() && self.valid <= 56 {
            // Fewer than 8 bytes left: load the last 8 bytes of the data and shift out
            // the ones already consumed.
            let len = data.len();
            match data.get(len.wrapping_sub(8)..) {
                Some(chunk) if len >= 8 => {
                    let mut word = [0u8; 8];
                    word.copy_from_slice(chunk);
                    let rem = (len - self.pos) as u32; // 1..=7
                    let word = u64::from_be_bytes(word) << (8 * (8 - rem));
                    self.buf |= word >> self.valid;
                    let add = ((64 - self.valid) / 8).min(rem);
                    self.pos += add as usize;
                    self.valid += add * 8;
                }
                _ => *self = self.refill_tail(data),
            }
        }
    }

    /// Refill near the end of the data, byte by byte. Takes and returns the cursor by
    /// value so that callers' cursors can stay in registers.
    #[cold]
    #[inline(never)]
    fn refill_tail(mut self, data: &[u8]) -> Self {
        while self.valid <= 56 {
            let Some(&b) = data.get(self.pos) else { break };
            self.buf |= u64::from(b) << (56 - self.valid);
            self.valid += 8;
            self.pos += 1;
        }
        self
    }

    /// The next `n` bits (`n <= 56`) without consuming them; `None` if fewer remain.
    #[inline]
    pub fn peek_bits(&mut self, data: &[u8], n: u32) -> Option<u64> {
        if self.valid < n {
            self.refill(data);
            if self.valid < n {
                return None;
            }
        }
        Some(self.buf.checked_shr(64 - n).unwrap_or(0))
    }

    /// Skips `n` buffered bits (at most [`Self::buffered`]; more is clamped to that).
    #[inline(always)]
    pub fn consume(&mut self, n: u32) {
        let n = n.min(self.valid);
        self.buf = self.buf.checked_shl(n).unwrap_or(0);
        self.valid -= n;
    }

    /// Skips `n` buffered bits where the caller knows `n < 64` and `n <= buffered()`
    /// (cheaper than [`Self::consume`]; otherwise the cursor is left inconsistent, though
    /// never unsafe: later reads still only return bits of the data or fail).
    #[inline(always)]
    pub fn consume_small(&mut self, n: u32) {
        self.buf <<= n & 63;
        self.valid = self.valid.saturating_sub(n);
    }

    /// The buffered bits, left-aligned, and how many of them are valid. Bits past the
    /// valid ones are zero or the stream bits that follow.
    #[inline(always)]
    pub fn buffer(&self) -> (u64, u32) {
        (self.buf, self.valid)
    }

    /// The buffered bits, left-aligned, after making sure at least `n` (`<= 56`) are
    /// buffered if the stream has them. Bits past the stream end read as zero.
    #[inline]
    pub fn peek_word(&mut self, data: &[u8], n: u32) -> u64 {
        if self.valid < n {
            self.refill(data);
        }
        self.buf
    }

    /// Number of buffered bits.
    #[inline(always)]
    pub fn buffered(&self) -> u32 {
        self.valid
    }

    /// Reads `n` bits (`n <= 64`) as the low bits of the result; `None` if fewer remain
    /// (the cursor is then left unchanged).
    #[inline]
    pub fn read_bits(&mut self, data: &[u8], n: u32) -> Option<u64> {
        if n > 56 {
            let saved = *self;
            let hi = self.read_bits(data, n.min(64) - 32);
            let lo = self.read_bits(data, 32);
            return match (hi, lo) {
                (Some(hi), Some(lo)) => Some((hi << 32) | lo),
                _ => {
                    *self = saved;
                    None
                }
            };
        }
        let v = self.peek_bits(data, n)?;
        self.consume(n);
        Some(v)
    }

    /// Reads one bit.
    #[inline]
    pub fn read_bit(&mut self, data: &[u8]) -> Option<bool> {
        self.read_bits(data, 1).map(|b| b != 0)
    }
}

/// Reads bits from a byte slice, most significant bit first. Every read is checked:
/// reading past the end returns `None` and never panics.
#[derive(Debug, Clone)]
pub struct BitReader<'a> {
    data: &'a [u8],
    cur: BitCursor,
}

impl<'a> BitReader<'a> {
    /// A reader at the first bit of `data`.
    pub fn new(data: &'a [u8]) -> Self {
        BitReader {
            data,
            cur: BitCursor::default(),
        }
    }

    /// A reader over `data` resuming at `cur`.
    pub fn resume(data: &'a [u8], cur: BitCursor) -> Self {
        BitReader { data, cur }
    }

    /// The reader's position, to resume later with [`Self::resume`].
    pub fn cursor(&self) -> BitCursor {
        self.cur
    }

    /// Bits consumed so far.
    pub fn bit_offset(&self) -> u64 {
        self.cur.bit_offset()
    }

    /// Bits not yet consumed.
    pub fn bits_left(&self) -> u64 {
        self.cur.bits_left(self.data)
    }

    /// Reads one bit.
    #[inline]
    pub fn read_bit(&mut self) -> Option<bool> {
        self.cur.read_bit(self.data)
    }

    /// Reads `n` bits (`n <= 64`, larger is treated as 64) into the low bits of the
    /// result.
    #[inline]
    pub fn read_bits(&mut self, n: u32) -> Option<u64> {
        self.cur.read_bits(self.data, n.min(64))
    }

    /// Reads 8 bits.
    #[inline]
    pub fn read_byte(&mut self) -> Option<u8> {
        self.read_bits(8).map(|b| b as u8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_then_read_mixed_widths() {
        let mut w = BitWriter::new();
        let items: Vec<(u64, u32)> = vec![
            (1, 1),
            (0, 1),
            (0b101, 3),
            (u64::MAX, 64),
            (0x1234, 13),
            (0, 0),
            (0xdead_beef_cafe, 57),
            (7, 3),
            (0x8000_0000_0000_0001, 64),
        ];
        for &(v, n) in &items {
            w.write_bits(v, n);
        }
        let total: u32 = items.iter().map(|x| x.1).sum();
        assert_eq!(w.bit_len(), u64::from(total));
        let bytes = w.into_bytes();
        assert_eq!(bytes.len(), (total as usize).div_ceil(8));
        let mut r = BitReader::new(&bytes);
        for &(v, n) in &items {
            let mask = if n == 64 { u64::MAX } else { (1u64 << n) - 1 };
            assert_eq!(r.read_bits(n), Some(v & mask), "width {n}");
        }
        assert_eq!(r.bit_offset(), u64::from(total));
        // Only zero padding is left.
        let pad = r.bits_left();
        assert!(pad < 8);
        assert_eq!(r.read_bits(pad as u32), Some(0));
        assert_eq!(r.read_bit(), None);
    }

    #[test]
    fn msb_first_layout() {
        let mut w = BitWriter::new();
        w.write_bit(true);
        w.write_bits(0b01, 2);
        assert_eq!(w.as_bytes(), &[0b1010_0000]);
        w.write_bits(0xff, 8);
        assert_eq!(w.as_bytes(), &[0b1011_1111, 0b1110_0000]);
    }

    #[test]
    fn from_vec_appends_after_prefix() {
        let mut w = BitWriter::from_vec(vec![0xaa, 0xbb]);
        w.write_bits(0b1, 1);
        w.write_bytes(&[0xff]);
        assert_eq!(w.as_bytes(), &[0xaa, 0xbb, 0xff, 0x80]);
        assert_eq!(w.bit_len(), 25);
    }

    #[test]
    fn reads_past_end_fail_without_moving() {
        let data = [0xf0u8, 0x0f, 0x55];
        let mut r = BitReader::new(&data);
        assert_eq!(r.read_bits(4), Some(0xf));
        assert_eq!(r.read_bits(64), None);
        assert_eq!(r.read_bits(21), None);
        assert_eq!(r.bit_offset(), 4);
        assert_eq!(r.read_bits(20), Some(0x0_0f55));
        assert_eq!(r.read_bit(), None);
        assert_eq!(r.read_bits(0), Some(0));
    }

    #[test]
    fn long_stream_every_alignment() {
        // 1000 values of varying widths exercise the 8-byte refill path and the tail path.
        let mut w = BitWriter::new();
        let mut expect = Vec::new();
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for i in 0..1000u32 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let n = (i * 7) % 65;
            w.write_bits(x, n);
            let mask = if n == 64 { u64::MAX } else { (1u64 << n) - 1 };
            expect.push((x & mask, n));
        }
        let bytes = w.into_bytes();
        let mut r = BitReader::new(&bytes);
        for (v, n) in expect {
            assert_eq!(r.read_bits(n), Some(v));
        }
    }
}
