//! The XOR chunk encoder and decoder.

use crate::encoding::varint::{
    get_uvarint, zigzag_decode, zigzag_encode, UvarintAcc, MAX_VARINT_LEN,
};
use crate::encoding::{BitCursor, BitWriter};
use crate::model::Sample;

use super::{ChunkData, ChunkError, ENCODING_INT, ENCODING_XOR, HEADER_LEN, MAX_ENCODABLE_SAMPLES};

/// Payload widths of the delta-of-delta buckets, indexed by the number of leading one
/// bits of the bucket prefix (`0`, `10`, `110`, `1110`, `1111`).
const DOD_PAYLOAD_BITS: [u32; 5] = [0, 7, 14, 20, 64];
/// Prefix lengths matching [`DOD_PAYLOAD_BITS`].
const DOD_PREFIX_BITS: [u32; 5] = [1, 2, 3, 4, 4];

/// Payload widths of the integer value delta-of-delta buckets, indexed by the number of
/// leading one bits of the prefix (`0`, `10`, `110`, `1110`, `11110`, `111110`,
/// `111111`).
const INT_PAYLOAD_BITS: [u32; 7] = [0, 4, 8, 12, 16, 32, 64];
/// Prefix lengths matching [`INT_PAYLOAD_BITS`].
const INT_PREFIX_BITS: [u32; 7] = [1, 2, 3, 4, 5, 6, 6];

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

/// An open chunk that samples are appended to.
///
/// [`Self::bytes`] is always a complete, decodable chunk (the header's sample count is
/// updated on every append), so readers can snapshot it at any time.
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
        let mut w = BitWriter::with_capacity(32);
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
        *self = Self::with_encoding(false);
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
            (Some((a, na)), Some((b, nb))) => self.w.write_bits((a << nb) | b, na + nb),
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
        self.t = t;
        self.v = v;
        self.num += 1;
        let n = self.num.to_le_bytes();
        if let Some(h) = self.w.as_bytes_mut().get_mut(1..HEADER_LEN) {
            h.copy_from_slice(&n);
        }
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
                let head = (pre << 2) | 0b10;
                if pre_len + 2 + sig_old <= 64 {
                    self.w
                        .write_bits((head << sig_old) | (x >> trailing), pre_len + 2 + sig_old);
                } else {
                    self.w.write_bits(head, pre_len + 2);
                    self.w.write_bits(x >> trailing, sig_old);
                }
                return;
            }
        }
        // `sig_new` is 1..=64; 64 is stored as 0.
        let header = (pre << 13) | (0b11 << 11) | (u64::from(lead) << 6) | u64::from(sig_new & 63);
        if pre_len + 13 + sig_new <= 64 {
            self.w
                .write_bits((header << sig_new) | (x >> trail), pre_len + 13 + sig_new);
        } else {
            self.w.write_bits(header, pre_len + 13);
            self.w.write_bits(x >> trail, sig_new);
        }
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
        let (u, _) = get_uvarint(self.bytes().get(HEADER_LEN..)?).ok()?;
        Some(zigzag_decode(u))
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
        XorIter::new(self.bytes(), usize::from(self.num))
    }

    /// An immutable snapshot of the chunk (copies the bytes and computes the checksum).
    pub fn freeze(&self) -> ChunkData {
        let (min_t, max_t) = match self.min_time() {
            None => (i64::MAX, i64::MIN),
            Some(min_t) => (min_t, self.t),
        };
        ChunkData::from_parts(self.bytes().into(), min_t, max_t, self.num_samples())
    }
}

/// Decoding state after some samples: the bit position plus what the next sample is
/// coded against. `Copy`, so the hot loop keeps it in registers and the checked
/// (cold) path takes and returns it by value.
#[derive(Debug, Clone, Copy)]
struct State {
    cur: BitCursor,
    /// Samples decoded so far.
    read: usize,
    /// The last sample's timestamp, the last delta and the last value's bits.
    t: i64,
    delta: i64,
    v: u64,
    /// Current XOR window: significant bits (1..=64; 0 = no window yet) and trailing
    /// zeros.
    sig: u32,
    trailing: u32,
    /// Integer encoding: values are delta-of-deltas of `iv`.
    int: bool,
    iv: i64,
    ivdelta: i64,
}

/// Payload widths of the integer buckets for 0..=5 leading ones, packed in bytes.
const INT_PAYLOAD_PACKED: u64 = (32 << 40) | (16 << 32) | (12 << 24) | (8 << 16) | (4 << 8);

/// Payload widths of the short delta-of-delta buckets packed in bytes, indexed by the
/// number of leading one bits (1..=3) of the prefix.
const DOD_PAYLOAD_PACKED: u32 = (20 << 24) | (14 << 16) | (7 << 8);

/// Decodes one sample straight from the 64-bit buffer. Returns `None`, having changed
/// nothing, whenever anything is unusual (not enough bits buffered at the end of the data,
/// the 64-bit timestamp bucket, very wide XOR windows, invalid data); the checked path
/// then redoes the sample.
#[inline(always)]
fn fast_step(mut st: State, data: &[u8]) -> Option<State> {
    st.cur.refill(data);
    let (w, valid) = st.cur.buffer();
    // Timestamp: delta-of-delta bucket.
    let (dod, n) = if (w as i64) >= 0 {
        (0i64, 1u32)
    } else {
        let ones = (!w).leading_zeros();
        if ones >= 4 {
            return None;
        }
        let payload = (DOD_PAYLOAD_PACKED >> (ones * 8)) & 0xff;
        let prefix = ones + 1;
        // The payload, left-aligned then shifted down arithmetically, sign-extends.
        (
            ((w << prefix) as i64) >> ((64 - payload) & 63),
            prefix + payload,
        )
    };
    if n > valid {
        return None;
    }
    st.cur.consume_small(n);
    let delta = st.delta.wrapping_add(dod);
    let t = st.t.wrapping_add(delta);
    if t <= st.t {
        return None;
    }
    if st.int {
        // Integer value: delta-of-delta bucket.
        st.cur.refill(data);
        let (w, valid) = st.cur.buffer();
        let (dod, n) = if (w as i64) >= 0 {
            (0i64, 1u32)
        } else {
            let ones = (!w).leading_zeros();
            if ones >= 6 {
                return None;
            }
            let payload = ((INT_PAYLOAD_PACKED >> (ones * 8)) & 0xff) as u32;
            let prefix = ones + 1;
            (
                ((w << prefix) as i64) >> ((64 - payload) & 63),
                prefix + payload,
            )
        };
        if n > valid {
            return None;
        }
        st.cur.consume_small(n);
        st.ivdelta = st.ivdelta.wrapping_add(dod);
        st.iv = st.iv.wrapping_add(st.ivdelta);
        st.v = (st.iv as f64).to_bits();
        st.t = t;
        st.delta = delta;
        st.read += 1;
        return Some(st);
    }
    // Value: `0` unchanged, `10` reuse the window, `11` new window.
    if st.cur.buffered() < 13 {
        st.cur.refill(data);
    }
    let (w, valid) = st.cur.buffer();
    if (w as i64) >= 0 {
        if valid < 1 {
            return None;
        }
        st.cur.consume_small(1);
    } else {
        if ((w << 1) as i64) >= 0 {
            if valid < 2 || st.sig == 0 {
                return None;
            }
            st.cur.consume_small(2);
        } else {
            let lead = ((w >> 57) & 31) as u32;
            let sig = ((w >> 51) & 63) as u32;
            // sig == 0 means 64: too wide for the fast path.
            if valid < 13 || sig == 0 || lead + sig > 64 {
                return None;
            }
            st.cur.consume_small(13);
            st.sig = sig;
            st.trailing = 64 - lead - sig;
        }
        let sig = st.sig;
        if st.cur.buffered() < sig {
            st.cur.refill(data);
        }
        let (w, valid) = st.cur.buffer();
        let x = if sig <= valid && sig < 64 {
            st.cur.consume_small(sig);
            w >> ((64 - sig) & 63)
        } else {
            // Wider than the buffer: the high part, a refill, then the low 32 bits.
            let hi_bits = sig.wrapping_sub(32);
            if sig <= 32 || hi_bits > valid {
                return None;
            }
            st.cur.consume_small(hi_bits);
            st.cur.refill(data);
            let (w2, valid2) = st.cur.buffer();
            if valid2 < 32 {
                return None;
            }
            st.cur.consume_small(32);
            ((w >> ((64 - hi_bits) & 63)) << 32) | (w2 >> 32)
        };
        st.v ^= x << (st.trailing & 63);
    }
    st.t = t;
    st.delta = delta;
    st.read += 1;
    Some(st)
}

/// The cursor `back` bits before `c` (which has consumed at least that many).
#[cold]
#[inline(never)]
fn rewind(c: BitCursor, data: &[u8], back: u32) -> BitCursor {
    let off = c.bit_offset().saturating_sub(u64::from(back));
    let mut r = BitCursor::at_byte((off / 8) as usize);
    r.refill(data);
    r.consume((off % 8) as u32);
    r
}

/// A delta-of-delta bucket table entry: bits taken (prefix and payload), prefix length
/// and 64 minus the payload width, packed in bytes.
const fn bucket_entry(prefix: u32, payload: u32) -> u32 {
    (prefix + payload) | (prefix << 8) | ((64 - payload) << 16)
}

/// Entry for buckets the fast path leaves to the checked path: it takes more bits than
/// any buffer holds, so the sample is declined.
const BUCKET_DECLINE: u32 = 0xff;

/// Builds a table of the non-zero delta-of-delta buckets, indexed by the top `bits` bits
/// of the buffer: the integer value buckets if `int`, else the timestamp ones.
const fn bucket_table<const N: usize>(bits: u32, int: bool) -> [u32; N] {
    let mut t = [BUCKET_DECLINE; N];
    let mut rest: &mut [u32] = &mut t;
    let mut i = 0u64;
    while let [slot, tail @ ..] = rest {
        // Leading ones of `i` as a `bits`-bit number.
        let ones = (i << (64 - bits)).leading_ones();
        if ones >= 1 {
            let payload = if int {
                int_payload(ones)
            } else {
                dod_payload(ones)
            };
            if let Some(p) = payload {
                *slot = bucket_entry(ones + 1, p);
            }
        }
        rest = tail;
        i += 1;
    }
    t
}

/// Payload width of the timestamp bucket after `ones` leading ones (1..); `None` for the
/// 64-bit bucket.
const fn dod_payload(ones: u32) -> Option<u32> {
    match ones {
        1 => Some(7),
        2 => Some(14),
        3 => Some(20),
        _ => None,
    }
}

/// Payload width of the integer value bucket after `ones` leading ones (1..); `None` for
/// the 64-bit bucket.
const fn int_payload(ones: u32) -> Option<u32> {
    match ones {
        1 => Some(4),
        2 => Some(8),
        3 => Some(12),
        4 => Some(16),
        5 => Some(32),
        _ => None,
    }
}

/// Integer value delta-of-delta buckets after a zero timestamp delta-of-delta (a `0`
/// bit, the common case), indexed by the 6 bits after it: entries as [`bucket_entry`]
/// with the timestamp's bit counted in the prefix, so that one lookup decodes both
/// fields. A zero value field (`0`) has payload width 0 and shifts the `0` bit in
/// question down arithmetically, which yields 0.
const fn int_after_zero_table() -> [u32; 64] {
    let mut t = [BUCKET_DECLINE; 64];
    let mut rest: &mut [u32] = &mut t;
    let mut i = 0u64;
    while let [slot, tail @ ..] = rest {
        let ones = (i << 58).leading_ones();
        if ones == 0 {
            *slot = 2 | (1 << 8) | (63 << 16);
        } else if let Some(p) = int_payload(ones) {
            *slot = bucket_entry(ones + 2, p);
        }
        rest = tail;
        i += 1;
    }
    t
}

/// See [`int_after_zero_table`].
const INT_AFTER_ZERO_TABLE: [u32; 64] = int_after_zero_table();

/// Non-zero timestamp delta-of-delta buckets by the top 4 buffer bits.
const DOD_TABLE: [u32; 16] = bucket_table(4, false);
/// Non-zero integer value delta-of-delta buckets by the top 6 buffer bits.
const INT_TABLE: [u32; 64] = bucket_table(6, true);

/// The payload of the bucket `e` at the top of `w`, sign-extended: shifted up past the
/// prefix, then arithmetically down.
#[inline(always)]
fn bucket_payload(w: u64, e: u32) -> i64 {
    (w.wrapping_shl(e >> 8) as i64).wrapping_shr(e >> 16)
}

/// The delta-of-delta (or integer value delta) field at the top of `w` using the bucket
/// table `table` (indexed by the bits of `w` above `index_shift`), and its width in bits: a leading `0` bit is a zero; otherwise the table gives the bucket, or
/// [`BUCKET_DECLINE`] for prefixes the fast path leaves to the checked one.
#[inline(always)]
fn bucket_field(w: u64, table: &[u32], index_shift: u32) -> (i64, u32) {
    if (w as i64) >= 0 {
        return (0, 1);
    }
    let e = table
        .get((w >> index_shift) as usize)
        .copied()
        .unwrap_or(BUCKET_DECLINE);
    (bucket_payload(w, e), e & 0xff)
}

/// Loads bytes into the local cursor `(pos, buf, valid)` so that at least 56 bits are
/// buffered, or all that are left (the invariants of [`BitCursor::refill`]). Returns
/// `false`, having changed nothing, if the data is shorter than 8 bytes. Calls nothing, so
/// that decoding loops keep their state in registers.
#[inline(always)]
fn refill_parts(data: &[u8], pos: &mut usize, buf: &mut u64, valid: &mut u32) -> bool {
    if *valid > 56 {
        return true;
    }
    let add = (63 - *valid) >> 3;
    if let Some(b) = data.get(*pos..pos.wrapping_add(8)) {
        let mut word = [0u8; 8];
        word.copy_from_slice(b);
        *buf |= u64::from_be_bytes(word) >> *valid;
        *pos += add as usize;
        *valid += add * 8;
        return true;
    }
    // Fewer than 8 bytes left: the last 8 bytes of the data, shifted.
    let len = data.len();
    let Some(b) = data
        .get(len.wrapping_sub(8)..)
        .and_then(|r| r.first_chunk::<8>())
    else {
        return false;
    };
    let rem = len.saturating_sub(*pos).min(7) as u32;
    if rem > 0 {
        let word = u64::from_be_bytes(*b) << (8 * (8 - rem));
        *buf |= word >> *valid;
        let add = add.min(rem);
        *pos += add as usize;
        *valid += add * 8;
    }
    true
}

/// Decodes samples of an integer chunk into `out` on the fast path, with the decoding
/// state in locals so that it stays in registers. Stops before the first sample the fast
/// path declines (see [`fast_step`]) and returns how many samples were written. The
/// caller guarantees `st.read >= 2`, `st.int` and that `out` is no longer than the
/// samples left.
#[inline(never)]
fn run_int(st: &mut State, data: &[u8], out: &mut [Sample]) -> usize {
    let (mut pos, mut buf, mut valid) = st.cur.into_parts();
    let (mut t, mut delta) = (st.t, st.delta);
    let (mut iv, mut ivdelta) = (st.iv, st.ivdelta);
    let total = out.len();
    let mut slots = out.iter_mut();
    let n = loop {
        let Some(slot) = slots.next() else {
            break total;
        };
        if !refill_parts(data, &mut pos, &mut buf, &mut valid) {
            break total - slots.len() - 1;
        }
        // Both fields are decoded from the buffer before anything is consumed, so
        // declining leaves the cursor before the sample. They fit unless the data is
        // truncated or a bucket is very wide (the checked path then takes over).
        let (dod, vdod, k) = if buf >> 62 == 0 {
            // Both zero (a steady series): a branch, predicted well on such runs, is
            // quicker than the lookup.
            (0, 0, 2)
        } else if (buf as i64) >= 0 {
            // A zero timestamp delta-of-delta: one lookup decodes the value field too.
            let e = INT_AFTER_ZERO_TABLE
                .get((buf >> 57) as usize)
                .copied()
                .unwrap_or(BUCKET_DECLINE);
            (0, bucket_payload(buf, e), e & 0xff)
        } else {
            let (dod, k1) = bucket_field(buf, &DOD_TABLE, 60);
            let w = buf.wrapping_shl(k1);
            let (vdod, k2) = bucket_field(w, &INT_TABLE, 58);
            (dod, vdod, k1 + k2)
        };
        let nd = delta.wrapping_add(dod);
        let nt = t.wrapping_add(nd);
        if nt <= t || k > valid {
            break total - slots.len() - 1;
        }
        buf = buf.wrapping_shl(k);
        valid -= k;
        ivdelta = ivdelta.wrapping_add(vdod);
        iv = iv.wrapping_add(ivdelta);
        *slot = Sample::new(nt, iv as f64);
        t = nt;
        delta = nd;
    };
    st.cur = BitCursor::from_parts(pos, buf, valid);
    st.t = t;
    st.delta = delta;
    st.read += n;
    st.iv = iv;
    st.ivdelta = ivdelta;
    st.v = (iv as f64).to_bits();
    n
}

/// As [`run_int`], for chunks with XOR values.
#[inline(never)]
fn run_xor(st: &mut State, data: &[u8], out: &mut [Sample]) -> usize {
    let (mut pos, mut buf, mut valid) = st.cur.into_parts();
    let (mut t, mut delta) = (st.t, st.delta);
    let (mut v, mut sig, mut trailing) = (st.v, st.sig, st.trailing);
    let total = out.len();
    let mut slots = out.iter_mut();
    let n = loop {
        let Some(slot) = slots.next() else {
            break total;
        };
        if !refill_parts(data, &mut pos, &mut buf, &mut valid) {
            break total - slots.len() - 1;
        }
        // The timestamp and the value's control bits (and window header) are decoded
        // from the buffer before anything is consumed, so declining there leaves the
        // cursor before the sample.
        let (dod, k1) = bucket_field(buf, &DOD_TABLE, 60);
        let nd = delta.wrapping_add(dod);
        let nt = t.wrapping_add(nd);
        if nt <= t || k1 > 24 {
            break total - slots.len() - 1;
        }
        // Value: `0` unchanged, `10` reuse the window, `11` new window.
        let w = buf << k1;
        if (w as i64) >= 0 {
            if k1 + 1 > valid {
                break total - slots.len() - 1;
            }
            buf <<= k1 + 1;
            valid -= k1 + 1;
        } else {
            // Both cases are decoded and one is picked without a branch: which one
            // comes next is data, and a mispredicted branch costs more than both.
            let new_window = ((w << 1) as i64) < 0;
            let lead = ((w >> 57) & 31) as u32;
            let new_sig = ((w >> 51) & 63) as u32;
            let s = if new_window { new_sig } else { sig };
            let tr = if new_window {
                64u32.wrapping_sub(lead).wrapping_sub(new_sig)
            } else {
                trailing
            };
            let head = k1 + if new_window { 13 } else { 2 };
            // s == 0: no window yet, or a new one of 64 bits (too wide for the fast
            // path); a new window must also fit in 64 bits.
            if s == 0 || (new_window && lead + new_sig > 64) || head > valid {
                break total - slots.len() - 1;
            }
            buf <<= head;
            valid -= head;
            if valid < s && !refill_parts(data, &mut pos, &mut buf, &mut valid) {
                let c = rewind(BitCursor::from_parts(pos, buf, valid), data, head);
                (pos, buf, valid) = c.into_parts();
                break total - slots.len() - 1;
            }
            let x = if s <= valid {
                let x = buf >> (64 - s);
                buf = buf.wrapping_shl(s);
                valid -= s;
                x
            } else {
                // Wider than the buffer: the high part, a refill, then the low 32 bits.
                // Too few bits means truncated data: back to the start of the sample for
                // the checked path.
                let hi_bits = s.wrapping_sub(32);
                if s <= 32 || hi_bits > valid {
                    let c = rewind(BitCursor::from_parts(pos, buf, valid), data, head);
                    (pos, buf, valid) = c.into_parts();
                    break total - slots.len() - 1;
                }
                let hi = buf >> (64 - hi_bits);
                buf <<= hi_bits;
                valid -= hi_bits;
                if !refill_parts(data, &mut pos, &mut buf, &mut valid) || valid < 32 {
                    let c = rewind(BitCursor::from_parts(pos, buf, valid), data, head + hi_bits);
                    (pos, buf, valid) = c.into_parts();
                    break total - slots.len() - 1;
                }
                let lo = buf >> 32;
                buf <<= 32;
                valid -= 32;
                (hi << 32) | lo
            };
            v ^= x << tr;
            sig = s;
            trailing = tr;
        }
        *slot = Sample::new(nt, f64::from_bits(v));
        t = nt;
        delta = nd;
    };
    st.cur = BitCursor::from_parts(pos, buf, valid);
    st.t = t;
    st.delta = delta;
    st.read += n;
    st.v = v;
    st.sig = sig;
    st.trailing = trailing;
    n
}

/// Decodes one sample with every read checked; reports what is wrong and where.
#[cold]
#[inline(never)]
fn checked_step(mut st: State, data: &[u8], total: usize) -> Result<State, ChunkError> {
    let truncated = |cur: &BitCursor, read: usize| ChunkError::Truncated {
        bit_offset: cur.bit_offset(),
        sample: read,
        num_samples: total,
    };
    let read_uvarint = |cur: &mut BitCursor, read: usize| -> Result<u64, ChunkError> {
        let start = cur.bit_offset();
        let mut acc = UvarintAcc::default();
        loop {
            let b = cur.read_bits(data, 8).ok_or_else(|| truncated(cur, read))?;
            match acc.push(b as u8) {
                Ok(Some(v)) => return Ok(v),
                Ok(None) => {}
                Err(_) => {
                    return Err(ChunkError::InvalidVarint {
                        bit_offset: start,
                        sample: read,
                    })
                }
            }
        }
    };
    if st.read == 0 {
        st.int = data.first() == Some(&ENCODING_INT);
        let z = read_uvarint(&mut st.cur, 0)?;
        st.t = zigzag_decode(z);
        if st.int {
            st.iv = zigzag_decode(read_uvarint(&mut st.cur, 0)?);
            st.v = (st.iv as f64).to_bits();
        } else {
            st.v = st
                .cur
                .read_bits(data, 64)
                .ok_or_else(|| truncated(&st.cur, 0))?;
        }
        st.read = 1;
        return Ok(st);
    }
    let delta = if st.read == 1 {
        read_uvarint(&mut st.cur, 1)? as i64
    } else {
        let w = st.cur.peek_word(data, 4);
        let ones = (!w).leading_zeros().min(4) as usize;
        let prefix = DOD_PREFIX_BITS.get(ones).copied().unwrap_or(4);
        let payload = DOD_PAYLOAD_BITS.get(ones).copied().unwrap_or(64);
        st.cur
            .read_bits(data, prefix)
            .ok_or_else(|| truncated(&st.cur, st.read))?;
        let raw = st
            .cur
            .read_bits(data, payload)
            .ok_or_else(|| truncated(&st.cur, st.read))?;
        st.delta.wrapping_add(sign_extend(raw, payload))
    };
    let t = st.t.wrapping_add(delta);
    if t <= st.t {
        return Err(ChunkError::NonIncreasingTimestamp {
            bit_offset: st.cur.bit_offset(),
            sample: st.read,
            t,
            prev: st.t,
        });
    }
    if st.int {
        let w = st.cur.peek_word(data, 6);
        let ones = (!w).leading_zeros().min(6) as usize;
        let prefix = INT_PREFIX_BITS.get(ones).copied().unwrap_or(6);
        let payload = INT_PAYLOAD_BITS.get(ones).copied().unwrap_or(64);
        st.cur
            .read_bits(data, prefix)
            .ok_or_else(|| truncated(&st.cur, st.read))?;
        let raw = st
            .cur
            .read_bits(data, payload)
            .ok_or_else(|| truncated(&st.cur, st.read))?;
        let dod = sign_extend(raw, payload);
        // The first value delta is coded against a previous delta of 0.
        let prev = if st.read == 1 { 0 } else { st.ivdelta };
        st.ivdelta = prev.wrapping_add(dod);
        st.iv = st.iv.wrapping_add(st.ivdelta);
        st.v = (st.iv as f64).to_bits();
        st.t = t;
        st.delta = delta;
        st.read += 1;
        return Ok(st);
    }
    let control_at = st.cur.bit_offset();
    let same = !st
        .cur
        .read_bit(data)
        .ok_or_else(|| truncated(&st.cur, st.read))?;
    if !same {
        let new_window = st
            .cur
            .read_bit(data)
            .ok_or_else(|| truncated(&st.cur, st.read))?;
        if new_window {
            let h = st
                .cur
                .read_bits(data, 11)
                .ok_or_else(|| truncated(&st.cur, st.read))?;
            let lead = ((h >> 6) & 31) as u32;
            let sig = match (h & 63) as u32 {
                0 => 64,
                s => s,
            };
            if lead + sig > 64 {
                return Err(ChunkError::InvalidXorWindow {
                    bit_offset: control_at,
                    sample: st.read,
                    leading: lead,
                    significant: sig,
                });
            }
            st.sig = sig;
            st.trailing = 64 - lead - sig;
        } else if st.sig == 0 {
            return Err(ChunkError::NoXorWindow {
                bit_offset: control_at,
                sample: st.read,
            });
        }
        let sig = st.sig;
        let x = st
            .cur
            .read_bits(data, sig)
            .ok_or_else(|| truncated(&st.cur, st.read))?;
        st.v ^= x << st.trailing;
    }
    st.t = t;
    st.delta = delta;
    st.read += 1;
    Ok(st)
}

/// Decoder state independent of the borrowed bytes, so owners of the bytes (such as a
/// series iterator holding a [`ChunkData`]) can keep it next to them.
#[derive(Debug, Clone)]
pub(crate) struct XorDecoder {
    st: State,
    /// Samples announced by the header; lowered to the samples read on error.
    total: usize,
    err: Option<ChunkError>,
}

impl XorDecoder {
    /// A decoder for a chunk whose header announced `total` samples.
    pub(crate) fn new(total: usize) -> Self {
        XorDecoder {
            st: State {
                cur: BitCursor::at_byte(HEADER_LEN),
                read: 0,
                t: 0,
                delta: 0,
                v: 0,
                sig: 0,
                trailing: 0,
                int: false,
                iv: 0,
                ivdelta: 0,
            },
            total,
            err: None,
        }
    }

    /// Decodes the next sample from `data` (the same bytes every call).
    #[inline(always)]
    pub(crate) fn next(&mut self, data: &[u8]) -> Option<Sample> {
        if self.st.read >= 2 && self.st.read < self.total {
            if let Some(st) = fast_step(self.st, data) {
                self.st = st;
                return Some(Sample::new(st.t, f64::from_bits(st.v)));
            }
        }
        if self.st.read >= self.total {
            return None;
        }
        match checked_step(self.st, data, self.total) {
            Ok(st) => {
                self.st = st;
                Some(Sample::new(st.t, f64::from_bits(st.v)))
            }
            Err(e) => {
                self.err = Some(e);
                self.total = self.st.read;
                None
            }
        }
    }

    /// Decodes the next samples into `out`, as many as fit and are left; returns how
    /// many were written. `0` means the end of the chunk or corrupt data (see
    /// [`Self::err`]); an error is only reported by a call that wrote nothing, so the
    /// samples before it are all returned first.
    pub(crate) fn next_batch(&mut self, data: &[u8], out: &mut [Sample]) -> usize {
        let mut n = 0;
        loop {
            let left = self.total.saturating_sub(self.st.read);
            let rest = out.get_mut(n..).unwrap_or(&mut []);
            let room = rest.len().min(left);
            if room == 0 {
                return n;
            }
            if self.st.read >= 2 {
                let dst = rest.get_mut(..room).unwrap_or(&mut []);
                let k = if self.st.int {
                    run_int(&mut self.st, data, dst)
                } else {
                    run_xor(&mut self.st, data, dst)
                };
                n += k;
                if k == room {
                    continue;
                }
                // The last bytes, or an unusual sample: the per-sample fast path.
                if let Some(st) = fast_step(self.st, data) {
                    self.st = st;
                    if let Some(slot) = out.get_mut(n) {
                        *slot = Sample::new(st.t, f64::from_bits(st.v));
                    }
                    n += 1;
                    continue;
                }
            }
            // A sample the fast paths declined (or one of the first two).
            match checked_step(self.st, data, self.total) {
                Ok(st) => {
                    self.st = st;
                    if let Some(slot) = out.get_mut(n) {
                        *slot = Sample::new(st.t, f64::from_bits(st.v));
                    }
                    n += 1;
                }
                Err(e) => {
                    if n == 0 {
                        self.err = Some(e);
                        self.total = self.st.read;
                    }
                    return n;
                }
            }
        }
    }

    /// See [`XorIter::seek`].
    #[inline]
    pub(crate) fn seek(&mut self, data: &[u8], t: i64) -> Option<Sample> {
        if self.st.read > 0 && self.err.is_none() && self.st.t >= t {
            return Some(Sample::new(self.st.t, f64::from_bits(self.st.v)));
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
        self.st.cur
    }

    pub(crate) fn samples_read(&self) -> usize {
        self.st.read
    }

    pub(crate) fn remaining(&self) -> usize {
        self.total.saturating_sub(self.st.read)
    }
}

/// Iterates a chunk's samples in time order. Allocation-free.
///
/// `next` returns `None` at the end of the chunk or on corrupt data; [`Self::err`] tells
/// the two apart. Chunks obtained from [`ChunkData::from_bytes`] were fully validated, so
/// their iterators never fail. [`Self::next_batch`] decodes many samples per call, which
/// is faster where the caller wants them all.
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
    /// backwards: if the sample last returned (by `next`, `next_batch` or `seek`) already
    /// has a timestamp `>= t`, it is returned again and the position is unchanged (this
    /// holds after the end too, as in Prometheus). The next call to `next` returns the
    /// sample after the one returned here.
    #[inline]
    pub fn seek(&mut self, t: i64) -> Option<Sample> {
        self.dec.seek(self.data, t)
    }

    /// Decodes the next samples into `out`, as many as fit and are left, and returns how
    /// many were written: `0` at the end of the chunk or on corrupt data (see
    /// [`Self::err`]; the samples before an error are all returned first). Can be mixed
    /// with `next` and `seek`.
    #[inline]
    pub fn next_batch(&mut self, out: &mut [Sample]) -> usize {
        self.dec.next_batch(self.data, out)
    }

    /// The error that ended iteration, if the data was corrupt.
    pub fn err(&self) -> Option<ChunkError> {
        self.dec.err()
    }
}

impl Iterator for XorIter<'_> {
    type Item = Sample;

    #[inline(always)]
    fn next(&mut self) -> Option<Sample> {
        self.dec.next(self.data)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.dec.remaining()))
    }
}

/// Decodes with the checked path only, for differential tests of the fast path.
#[cfg(test)]
pub(crate) fn decode_checked_only(data: &[u8], total: usize) -> (Vec<Sample>, Option<ChunkError>) {
    let mut st = XorDecoder::new(total).st;
    let mut out = Vec::new();
    while st.read < total {
        match checked_step(st, data, total) {
            Ok(next) => {
                st = next;
                out.push(Sample::new(st.t, f64::from_bits(st.v)));
            }
            Err(e) => return (out, Some(e)),
        }
    }
    (out, None)
}
