//! The XOR and integer chunk encoder (the decoder is in `decode.rs`).

use std::sync::Arc;

use crate::encoding::varint::{get_uvarint, zigzag_decode, zigzag_encode, MAX_VARINT_LEN};
use crate::encoding::BitWriter;
use crate::model::Sample;

use super::decode::XorIter;
use super::{ChunkData, ENCODING_INT, ENCODING_XOR, HEADER_LEN, MAX_ENCODABLE_SAMPLES};

/// Payload widths of the delta-of-delta buckets, indexed by the number of leading one
/// bits of the bucket prefix (`0`, `10`, `110`, `1110`, `1111`).
pub(super) const DOD_PAYLOAD_BITS: [u32; 5] = [0, 7, 14, 20, 64];
/// Prefix lengths matching [`DOD_PAYLOAD_BITS`].
pub(super) const DOD_PREFIX_BITS: [u32; 5] = [1, 2, 3, 4, 4];

/// Payload widths of the integer value delta-of-delta buckets, indexed by the number of
/// leading one bits of the prefix (`0`, `10`, `110`, `1110`, `11110`, `111110`,
/// `111111`).
pub(super) const INT_PAYLOAD_BITS: [u32; 7] = [0, 4, 8, 12, 16, 32, 64];
/// Prefix lengths matching [`INT_PAYLOAD_BITS`].
pub(super) const INT_PREFIX_BITS: [u32; 7] = [1, 2, 3, 4, 5, 6, 6];

/// The integer a float holds exactly, if it does (bit for bit: not -0.0, NaN or ±Inf).
#[inline]
fn exact_int(v: f64) -> Option<i64> {
    let i = v as i64;
    ((i as f64).to_bits() == v.to_bits()).then_some(i)
}

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
pub(super) fn sign_extend(x: u64, n: u32) -> i64 {
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

/// The timestamp delta-of-delta field for `dod` (code and width), unless it needs the
/// 64-bit bucket.
#[inline(always)]
fn dod_field(dod: i64) -> Option<(u64, u32)> {
    let u = dod as u64;
    if dod == 0 {
        Some((0, 1))
    } else if fits_signed(dod, 7) {
        Some(((0b10 << 7) | (u & 0x7f), 2 + 7))
    } else if fits_signed(dod, 14) {
        Some(((0b110 << 14) | (u & 0x3fff), 3 + 14))
    } else if fits_signed(dod, 20) {
        Some(((0b1110 << 20) | (u & 0xf_ffff), 4 + 20))
    } else {
        None
    }
}

/// The integer value delta-of-delta field for `dod` (code and width), unless it needs
/// the 64-bit bucket.
#[inline(always)]
fn int_dod_field(dod: i64) -> Option<(u64, u32)> {
    if dod == 0 {
        return Some((0, 1));
    }
    for k in 1..INT_PAYLOAD_BITS.len() - 1 {
        let payload = INT_PAYLOAD_BITS.get(k).copied().unwrap_or(64);
        if fits_signed(dod, payload) {
            // `k` ones and a zero, then the payload.
            let prefix = ((1u64 << k) - 1) << 1;
            let mask = (1u64 << payload) - 1;
            return Some((
                (prefix << payload) | (dod as u64 & mask),
                k as u32 + 1 + payload,
            ));
        }
    }
    None
}

/// Writes sample count `num` into the header of chunk bytes `b`.
fn write_count(b: &mut [u8], num: u16) {
    if let Some(h) = b.get_mut(1..HEADER_LEN) {
        h.copy_from_slice(&num.to_le_bytes());
    }
}

/// An open chunk that samples are appended to.
///
/// Appends leave the header's sample count stale (rewriting it touched the chunk's first
/// cache line on every append): [`Self::bytes`] writes it before returning the bytes,
/// and [`Self::freeze`] writes it into its copy, so both are complete, decodable chunks.
///
/// While every value is an integer (exactly, bit for bit), values are stored as
/// delta-of-deltas of integers (encoding [`ENCODING_INT`]), which is about twice as
/// compact for counters and histogram buckets. The first other value re-encodes the
/// chunk with XOR values (encoding [`ENCODING_XOR`]).
#[derive(Debug, Clone)]
///
/// The fields are packed because every series of the head holds one open chunk: the
/// first sample's timestamp is read back from the bytes instead of being kept, the
/// sample count and the XOR window are narrow, and one word holds the last value (its
/// bits in XOR mode, the integer in integer mode).
pub struct XorChunk {
    w: BitWriter,
    t: i64,
    delta: i64,
    /// XOR mode: the last value's bits. Integer mode: the last value as an `i64`.
    v: u64,
    /// Integer mode: the last value delta.
    ivdelta: i64,
    num: u16,
    /// Current XOR window; `leading > 64` means no window yet.
    leading: u8,
    trailing: u8,
    int_mode: bool,
}

impl Default for XorChunk {
    fn default() -> Self {
        Self::new()
    }
}

impl XorChunk {
    /// An empty chunk.
    pub fn new() -> Self {
        Self::with_encoding(true)
    }

    fn with_encoding(int_mode: bool) -> Self {
        // Small at first and grown by doubling: most open chunks of a large head hold few
        // samples (new or short-lived series), and full chunks are copied out exactly.
        Self::in_buffer(Vec::with_capacity(32), int_mode)
    }

    /// Empties the chunk, keeping its buffer trimmed to the bytes the chunk held: a
    /// series' next chunk usually grows as large as its last, so this saves growing a
    /// new buffer step by step (each a reallocation and copy), and keeps no more memory
    /// than the full chunk needed.
    pub fn reset(&mut self) {
        let used = self.w.as_bytes().len();
        self.restart(true);
        self.w.shrink_to(used + BitWriter::WRITE_SLACK);
    }

    /// Empties the chunk into its own buffer, with encoding `int_mode`.
    fn restart(&mut self, int_mode: bool) {
        let mut buf = std::mem::take(&mut self.w).into_bytes();
        buf.clear();
        *self = Self::in_buffer(buf, int_mode);
    }

    /// An empty chunk writing into `buf` (empty).
    fn in_buffer(buf: Vec<u8>, int_mode: bool) -> Self {
        let mut w = BitWriter::from_vec(buf);
        let enc = if int_mode { ENCODING_INT } else { ENCODING_XOR };
        w.write_bytes(&[enc, 0, 0]);
        XorChunk {
            w,
            t: 0,
            delta: 0,
            v: 0,
            ivdelta: 0,
            num: 0,
            leading: u8::MAX,
            trailing: 0,
            int_mode,
        }
    }

    /// Re-encodes the samples so far with XOR values.
    #[cold]
    #[inline(never)]
    fn switch_to_xor(&mut self) {
        let samples: Vec<Sample> = self.iter().collect();
        self.restart(false);
        for s in samples {
            self.append(s.t, s.v);
        }
    }

    #[inline]
    fn append_int(&mut self, t: i64, i: i64) {
        let mut buf = [0u8; MAX_VARINT_LEN];
        match self.num {
            0 => {
                self.w
                    .write_bytes(encode_uvarint(&mut buf, zigzag_encode(t)));
                self.w
                    .write_bytes(encode_uvarint(&mut buf, zigzag_encode(i)));
            }
            1 => {
                let delta = t.wrapping_sub(self.t);
                self.w.write_bytes(encode_uvarint(&mut buf, delta as u64));
                let dv = i.wrapping_sub(self.v as i64);
                self.write_int_dod(dv);
                self.delta = delta;
                self.ivdelta = dv;
            }
            _ => {
                let delta = t.wrapping_sub(self.t);
                let dod = delta.wrapping_sub(self.delta);
                let dv = i.wrapping_sub(self.v as i64);
                let vdod = dv.wrapping_sub(self.ivdelta);
                if dod == 0 && vdod == 0 {
                    // A steady series: two zero bits.
                    self.w.write_bits(0, 2);
                } else {
                    self.write_int_fields(dod, vdod);
                }
                self.delta = delta;
                self.ivdelta = dv;
            }
        }
    }

    /// Writes the timestamp and integer value delta-of-deltas.
    #[inline]
    fn write_int_fields(&mut self, dod: i64, vdod: i64) {
        match (dod_field(dod), int_dod_field(vdod)) {
            // Both fields in one write (at most 24 + 38 bits).
            (Some((a, na)), Some((b, nb))) => self.write_pair(a, na, b, nb),
            _ => {
                self.write_dod(dod);
                self.write_int_dod(vdod);
            }
        }
    }

    #[inline(always)]
    fn write_int_dod(&mut self, dod: i64) {
        match int_dod_field(dod) {
            Some((code, n)) => self.w.write_bits(code, n),
            None => {
                // The last bucket: six ones, then all 64 bits.
                self.w.write_bits(0b11_1111, 6);
                self.w.write_bits(dod as u64, 64);
            }
        }
    }

    /// Appends a sample. The caller guarantees `t` is greater than the last appended
    /// timestamp (a chunk that breaks this fails validation when decoded) and that the
    /// chunk has fewer than [`MAX_ENCODABLE_SAMPLES`] samples (further samples are
    /// dropped).
    pub fn append(&mut self, t: i64, v: f64) {
        debug_assert!(self.num == 0 || t > self.t, "timestamps must increase");
        if usize::from(self.num) >= MAX_ENCODABLE_SAMPLES {
            debug_assert!(false, "chunk full");
            return;
        }
        let bits = v.to_bits();
        if self.int_mode {
            match exact_int(v) {
                Some(i) => {
                    self.append_int(t, i);
                    self.finish_append(t, i as u64);
                    return;
                }
                None => self.switch_to_xor(),
            }
        }
        match self.num {
            0 => {
                let mut buf = [0u8; MAX_VARINT_LEN];
                self.w
                    .write_bytes(encode_uvarint(&mut buf, zigzag_encode(t)));
                self.w.write_bits(bits, 64);
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
                let dod = delta.wrapping_sub(self.delta);
                match dod_field(dod) {
                    Some((code, n)) => self.write_value_after(bits, code, n),
                    None => {
                        self.write_dod(dod);
                        self.write_value(bits);
                    }
                }
                self.delta = delta;
            }
        }
        self.finish_append(t, bits);
    }

    #[inline(always)]
    fn finish_append(&mut self, t: i64, v: u64) {
        // The header's sample count is left stale (see `bytes`): rewriting it on every
        // append touched the chunk's first cache line besides the one appended to.
        self.t = t;
        self.v = v;
        self.num += 1;
    }

    #[inline(always)]
    fn write_dod(&mut self, dod: i64) {
        match dod_field(dod) {
            Some((code, n)) => self.w.write_bits(code, n),
            None => {
                self.w.write_bits(0b1111, 4);
                self.w.write_bits(dod as u64, 64);
            }
        }
    }

    #[inline(always)]
    fn write_value(&mut self, bits: u64) {
        self.write_value_after(bits, 0, 0);
    }

    /// Writes the `na` bits of `a`, then the `nb` bits of `b` (below `2^nb`): in one
    /// write when together they fit in 64 bits.
    #[inline(always)]
    fn write_pair(&mut self, a: u64, na: u32, b: u64, nb: u32) {
        if na + nb <= 64 {
            self.w.write_bits(a.wrapping_shl(nb) | b, na + nb);
        } else {
            self.w.write_bits(a, na);
            self.w.write_bits(b, nb);
        }
    }

    /// Writes the value `bits` after the `pre_len` (at most 24) bits of `pre`, in as few
    /// writes as the widths allow.
    #[inline(always)]
    fn write_value_after(&mut self, bits: u64, pre: u64, pre_len: u32) {
        let x = bits ^ self.v;
        if x == 0 {
            self.w.write_bits(pre << 1, pre_len + 1);
            return;
        }
        let lead = x.leading_zeros().min(MAX_LEADING);
        let trail = x.trailing_zeros();
        let sig_new = 64 - lead - trail;
        let (leading, trailing) = (u32::from(self.leading), u32::from(self.trailing));
        if leading <= 64 && lead >= leading && trail >= trailing {
            let sig_old = 64 - leading - trailing;
            // Reuse the window unless a fresh, tighter one is cheaper including its header.
            if sig_old <= sig_new + WINDOW_HEADER_BITS {
                self.write_pair((pre << 2) | 0b10, pre_len + 2, x >> trailing, sig_old);
                return;
            }
        }
        // `sig_new` is 1..=64; 64 is stored as 0.
        let header = (pre << 13) | (0b11 << 11) | (u64::from(lead) << 6) | u64::from(sig_new & 63);
        self.write_pair(header, pre_len + 13, x >> trail, sig_new);
        // `lead` is at most 31 and `trail` at most 63 (`x` is not zero).
        self.leading = lead as u8;
        self.trailing = trail as u8;
    }

    /// Number of samples appended.
    pub fn num_samples(&self) -> usize {
        usize::from(self.num)
    }

    /// Timestamp of the first sample, if any: the varint after the header.
    pub fn min_time(&self) -> Option<i64> {
        if self.num == 0 {
            return None;
        }
        let (u, _) = get_uvarint(self.w.as_bytes().get(HEADER_LEN..)?).ok()?;
        Some(zigzag_decode(u))
    }

    /// Timestamp of the last sample, if any.
    pub fn max_time(&self) -> Option<i64> {
        (self.num > 0).then_some(self.t)
    }

    /// The encoded chunk: header (encoding byte, sample count) and bit stream. Appends
    /// leave the header's count stale, so this writes it first (hence `&mut`).
    pub fn bytes(&mut self) -> &[u8] {
        write_count(self.w.as_bytes_mut(), self.num);
        self.w.as_bytes()
    }

    /// Reads the chunk's last byte and its length, so that a caller can load many
    /// chunks' ends into the cache with loads the CPU overlaps before appending.
    #[inline]
    pub(crate) fn touch(&self) -> u64 {
        let b = self.w.as_bytes();
        u64::from(b.last().copied().unwrap_or(0)) ^ b.len() as u64
    }

    /// Iterates the samples appended so far.
    pub fn iter(&self) -> XorIter<'_> {
        XorIter::new(self.w.as_bytes(), usize::from(self.num))
    }

    /// An immutable snapshot of the chunk (copies the bytes, with the sample count
    /// written into the copy's header, and computes the checksum).
    pub fn freeze(&self) -> ChunkData {
        let (min_t, max_t) = match self.min_time() {
            None => (i64::MAX, i64::MIN),
            Some(min_t) => (min_t, self.t),
        };
        let mut bytes: Arc<[u8]> = self.w.as_bytes().into();
        // A fresh `Arc` is unique, so `get_mut` always succeeds.
        if let Some(b) = Arc::get_mut(&mut bytes) {
            write_count(b, self.num);
        }
        ChunkData::from_parts(bytes, min_t, max_t, self.num_samples())
    }
}
