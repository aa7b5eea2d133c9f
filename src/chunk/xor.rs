//! The XOR chunk encoder and decoder.

use crate::encoding::varint::{zigzag_decode, zigzag_encode, UvarintAcc, MAX_VARINT_LEN};
use crate::encoding::{BitCursor, BitWriter};
use crate::model::Sample;

use super::{ChunkData, ChunkError, ENCODING_XOR, HEADER_LEN, MAX_ENCODABLE_SAMPLES};

/// Payload widths of the delta-of-delta buckets, indexed by the number of leading one
/// bits of the bucket prefix (`0`, `10`, `110`, `1110`, `1111`).
const DOD_PAYLOAD_BITS: [u32; 5] = [0, 7, 14, 20, 64];
/// Prefix lengths matching [`DOD_PAYLOAD_BITS`].
const DOD_PREFIX_BITS: [u32; 5] = [1, 2, 3, 4, 4];

/// Leading-zero counts are stored in 5 bits.
const MAX_LEADING: u32 = 31;
/// Cost in bits of opening a new XOR window beyond reusing the old one.
const WINDOW_HEADER_BITS: u32 = 5 + 6;

/// Whether `x` fits in an `n`-bit two's complement field.
#[inline]
fn fits_signed(x: i64, n: u32) -> bool {
    let lim = 1i64 << (n - 1);
    (-lim..lim).contains(&x)
}

/// Sign-extends the low `n` bits of `x` (`n` in 0..=64).
#[inline]
fn sign_extend(x: u64, n: u32) -> i64 {
    let s = 64u32.wrapping_sub(n) & 63;
    if n == 0 {
        0
    } else {
        ((x << s) as i64) >> s
    }
}

fn encode_uvarint(buf: &mut [u8; MAX_VARINT_LEN], mut v: u64) -> &[u8] {
    let mut n = 0;
    for slot in buf.iter_mut() {
        n += 1;
        if v < 0x80 {
            *slot = v as u8;
            break;
        }
        *slot = (v as u8) | 0x80;
        v >>= 7;
    }
    buf.get(..n).unwrap_or(&[])
}

/// An open chunk that samples are appended to.
///
/// [`Self::bytes`] is always a complete, decodable chunk (the header's sample count is
/// updated on every append), so readers can snapshot it at any time.
#[derive(Debug, Clone)]
pub struct XorChunk {
    w: BitWriter,
    num: usize,
    min_t: i64,
    t: i64,
    delta: i64,
    v: u64,
    /// Current XOR window; `leading > 64` means no window yet.
    leading: u32,
    trailing: u32,
}

impl Default for XorChunk {
    fn default() -> Self {
        Self::new()
    }
}

impl XorChunk {
    /// An empty chunk.
    pub fn new() -> Self {
        let mut w = BitWriter::with_capacity(160);
        w.write_bytes(&[ENCODING_XOR, 0, 0]);
        XorChunk {
            w,
            num: 0,
            min_t: 0,
            t: 0,
            delta: 0,
            v: 0,
            leading: u32::MAX,
            trailing: 0,
        }
    }

    /// Appends a sample. The caller guarantees `t` is greater than the last appended
    /// timestamp (a chunk that breaks this fails validation when decoded) and that the
    /// chunk has fewer than [`MAX_ENCODABLE_SAMPLES`] samples (further samples are
    /// dropped).
    pub fn append(&mut self, t: i64, v: f64) {
        debug_assert!(self.num == 0 || t > self.t, "timestamps must increase");
        if self.num >= MAX_ENCODABLE_SAMPLES {
            debug_assert!(false, "chunk full");
            return;
        }
        let bits = v.to_bits();
        match self.num {
            0 => {
                let mut buf = [0u8; MAX_VARINT_LEN];
                self.w
                    .write_bytes(encode_uvarint(&mut buf, zigzag_encode(t)));
                self.w.write_bits(bits, 64);
                self.min_t = t;
            }
            1 => {
                let delta = t.wrapping_sub(self.t);
                let mut buf = [0u8; MAX_VARINT_LEN];
                self.w.write_bytes(encode_uvarint(&mut buf, delta as u64));
                self.write_value(bits);
                self.delta = delta;
            }
            _ => {
                let delta = t.wrapping_sub(self.t);
                self.write_dod(delta.wrapping_sub(self.delta));
                self.write_value(bits);
                self.delta = delta;
            }
        }
        self.t = t;
        self.v = bits;
        self.num += 1;
        let n = (self.num as u16).to_le_bytes();
        if let Some(h) = self.w.as_bytes_mut().get_mut(1..HEADER_LEN) {
            h.copy_from_slice(&n);
        }
    }

    #[inline]
    fn write_dod(&mut self, dod: i64) {
        let u = dod as u64;
        if dod == 0 {
            self.w.write_bits(0, 1);
        } else if fits_signed(dod, 7) {
            self.w.write_bits((0b10 << 7) | (u & 0x7f), 2 + 7);
        } else if fits_signed(dod, 14) {
            self.w.write_bits((0b110 << 14) | (u & 0x3fff), 3 + 14);
        } else if fits_signed(dod, 20) {
            self.w.write_bits((0b1110 << 20) | (u & 0xf_ffff), 4 + 20);
        } else {
            self.w.write_bits(0b1111, 4);
            self.w.write_bits(u, 64);
        }
    }

    #[inline]
    fn write_value(&mut self, bits: u64) {
        let x = bits ^ self.v;
        if x == 0 {
            self.w.write_bits(0, 1);
            return;
        }
        let lead = x.leading_zeros().min(MAX_LEADING);
        let trail = x.trailing_zeros();
        let sig_new = 64 - lead - trail;
        if self.leading <= 64 && lead >= self.leading && trail >= self.trailing {
            let sig_old = 64 - self.leading - self.trailing;
            // Reuse the window unless a fresh, tighter one is cheaper including its header.
            if sig_old <= sig_new + WINDOW_HEADER_BITS {
                self.w.write_bits(0b10, 2);
                self.w.write_bits(x >> self.trailing, sig_old);
                return;
            }
        }
        // `sig_new` is 1..=64; 64 is stored as 0.
        let header = (0b11 << 11) | (u64::from(lead) << 6) | u64::from(sig_new & 63);
        self.w.write_bits(header, 2 + 5 + 6);
        self.w.write_bits(x >> trail, sig_new);
        self.leading = lead;
        self.trailing = trail;
    }

    /// Number of samples appended.
    pub fn num_samples(&self) -> usize {
        self.num
    }

    /// Timestamp of the first sample, if any.
    pub fn min_time(&self) -> Option<i64> {
        (self.num > 0).then_some(self.min_t)
    }

    /// Timestamp of the last sample, if any.
    pub fn max_time(&self) -> Option<i64> {
        (self.num > 0).then_some(self.t)
    }

    /// The encoded chunk: header (encoding byte, sample count) and bit stream.
    pub fn bytes(&self) -> &[u8] {
        self.w.as_bytes()
    }

    /// Iterates the samples appended so far.
    pub fn iter(&self) -> XorIter<'_> {
        XorIter::new(self.bytes(), self.num)
    }

    /// An immutable snapshot of the chunk (copies the bytes and computes the checksum).
    pub fn freeze(&self) -> ChunkData {
        let (min_t, max_t) = match self.num {
            0 => (i64::MAX, i64::MIN),
            _ => (self.min_t, self.t),
        };
        ChunkData::from_parts(self.bytes().into(), min_t, max_t, self.num)
    }
}

/// Decoder state independent of the borrowed bytes, so owners of the bytes (such as a
/// series iterator holding a [`ChunkData`]) can keep it next to them.
#[derive(Debug, Clone)]
pub(crate) struct XorDecoder {
    cur: BitCursor,
    total: usize,
    read: usize,
    t: i64,
    delta: i64,
    v: u64,
    leading: u32,
    trailing: u32,
    /// The last sample returned, for `seek`.
    at: Option<Sample>,
    err: Option<ChunkError>,
}

impl XorDecoder {
    /// A decoder for a chunk whose header announced `total` samples.
    pub(crate) fn new(total: usize) -> Self {
        XorDecoder {
            cur: BitCursor::at_byte(HEADER_LEN),
            total,
            read: 0,
            t: 0,
            delta: 0,
            v: 0,
            leading: u32::MAX,
            trailing: 0,
            at: None,
            err: None,
        }
    }

    #[cold]
    #[inline(never)]
    fn fail(&mut self, e: ChunkError) -> Option<Sample> {
        self.err = Some(e);
        self.total = self.read;
        self.at = None;
        None
    }

    #[cold]
    #[inline(never)]
    fn truncated(&mut self) -> Option<Sample> {
        let e = ChunkError::Truncated {
            bit_offset: self.cur.bit_offset(),
            sample: self.read,
            num_samples: self.total,
        };
        self.fail(e)
    }

    fn read_uvarint(&mut self, data: &[u8]) -> Result<u64, ChunkError> {
        let start = self.cur.bit_offset();
        let mut acc = UvarintAcc::default();
        loop {
            let Some(b) = self.cur.read_bits(data, 8) else {
                return Err(ChunkError::Truncated {
                    bit_offset: self.cur.bit_offset(),
                    sample: self.read,
                    num_samples: self.total,
                });
            };
            match acc.push(b as u8) {
                Ok(Some(v)) => return Ok(v),
                Ok(None) => {}
                Err(_) => {
                    return Err(ChunkError::InvalidVarint {
                        bit_offset: start,
                        sample: self.read,
                    })
                }
            }
        }
    }

    /// Decodes the next sample from `data` (the same bytes every call).
    #[inline]
    pub(crate) fn next(&mut self, data: &[u8]) -> Option<Sample> {
        if self.read >= self.total {
            return None;
        }
        let t = if self.read >= 2 {
            // Delta-of-delta bucket.
            let w = self.cur.peek_word(data, 24);
            let ones = (!w).leading_zeros().min(4) as usize;
            let prefix = DOD_PREFIX_BITS.get(ones).copied().unwrap_or(4);
            let payload = DOD_PAYLOAD_BITS.get(ones).copied().unwrap_or(64);
            if self.cur.read_bits(data, prefix).is_none() {
                return self.truncated();
            }
            let Some(raw) = self.cur.read_bits(data, payload) else {
                return self.truncated();
            };
            self.delta = self.delta.wrapping_add(sign_extend(raw, payload));
            self.t.wrapping_add(self.delta)
        } else if self.read == 1 {
            match self.read_uvarint(data) {
                Ok(d) => {
                    self.delta = d as i64;
                    self.t.wrapping_add(self.delta)
                }
                Err(e) => return self.fail(e),
            }
        } else {
            let z = match self.read_uvarint(data) {
                Ok(z) => z,
                Err(e) => return self.fail(e),
            };
            let Some(v) = self.cur.read_bits(data, 64) else {
                return self.truncated();
            };
            self.t = zigzag_decode(z);
            self.v = v;
            return Some(self.emit());
        };
        if t <= self.t {
            let e = ChunkError::NonIncreasingTimestamp {
                bit_offset: self.cur.bit_offset(),
                sample: self.read,
                t,
                prev: self.t,
            };
            return self.fail(e);
        }
        self.t = t;
        // Value: `0` same, `10` reuse window, `11` new window.
        let w = self.cur.peek_word(data, 13);
        if w >> 63 == 0 {
            if self.cur.read_bits(data, 1).is_none() {
                return self.truncated();
            }
            return Some(self.emit());
        }
        let control_at = self.cur.bit_offset();
        if (w >> 62) & 1 == 0 {
            if self.cur.read_bits(data, 2).is_none() {
                return self.truncated();
            }
            if self.leading > 64 {
                let e = ChunkError::NoXorWindow {
                    bit_offset: control_at,
                    sample: self.read,
                };
                return self.fail(e);
            }
        } else {
            let Some(h) = self.cur.read_bits(data, 13) else {
                return self.truncated();
            };
            let lead = ((h >> 6) & 31) as u32;
            let sig = match (h & 63) as u32 {
                0 => 64,
                s => s,
            };
            if lead + sig > 64 {
                let e = ChunkError::InvalidXorWindow {
                    bit_offset: control_at,
                    sample: self.read,
                    leading: lead,
                    significant: sig,
                };
                return self.fail(e);
            }
            self.leading = lead;
            self.trailing = 64 - lead - sig;
        }
        let sig = 64 - self.leading - self.trailing;
        let Some(x) = self.cur.read_bits(data, sig) else {
            return self.truncated();
        };
        self.v ^= x << self.trailing;
        Some(self.emit())
    }

    #[inline]
    fn emit(&mut self) -> Sample {
        self.read += 1;
        let s = Sample::new(self.t, f64::from_bits(self.v));
        self.at = Some(s);
        s
    }

    /// See [`XorIter::seek`].
    #[inline]
    pub(crate) fn seek(&mut self, data: &[u8], t: i64) -> Option<Sample> {
        if let Some(s) = self.at {
            if s.t >= t {
                return Some(s);
            }
        }
        loop {
            let s = self.next(data)?;
            if s.t >= t {
                return Some(s);
            }
        }
    }

    pub(crate) fn err(&self) -> Option<ChunkError> {
        self.err.clone()
    }

    pub(crate) fn cursor(&self) -> BitCursor {
        self.cur
    }

    pub(crate) fn samples_read(&self) -> usize {
        self.read
    }
}

/// Iterates a chunk's samples in time order. Allocation-free.
///
/// `next` returns `None` at the end of the chunk or on corrupt data; [`Self::err`] tells
/// the two apart. Chunks obtained from [`ChunkData::from_bytes`] were fully validated, so
/// their iterators never fail.
#[derive(Debug, Clone)]
pub struct XorIter<'a> {
    data: &'a [u8],
    dec: XorDecoder,
}

impl<'a> XorIter<'a> {
    /// An iterator over `num_samples` samples of the chunk `data` (header included).
    pub(crate) fn new(data: &'a [u8], num_samples: usize) -> Self {
        XorIter {
            data,
            dec: XorDecoder::new(num_samples),
        }
    }

    /// Advances to the first sample with timestamp `>= t` and returns it. Never moves
    /// backwards: if the sample last returned (by `next` or `seek`) already has a
    /// timestamp `>= t`, it is returned again and the position is unchanged. The next
    /// call to `next` returns the sample after the one returned here.
    #[inline]
    pub fn seek(&mut self, t: i64) -> Option<Sample> {
        self.dec.seek(self.data, t)
    }

    /// The error that ended iteration, if the data was corrupt.
    pub fn err(&self) -> Option<ChunkError> {
        self.dec.err()
    }
}

impl Iterator for XorIter<'_> {
    type Item = Sample;

    #[inline]
    fn next(&mut self) -> Option<Sample> {
        self.dec.next(self.data)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.dec.total.saturating_sub(self.dec.read);
        (0, Some(n))
    }
}
