//! The XOR and integer chunk decoder: a fast path over a 64-bit buffer, a batch loop per
//! encoding, and a checked path that reports what is wrong and where.

use crate::encoding::varint::{get_uvarint, zigzag_decode, UvarintAcc};
use crate::encoding::BitCursor;
use crate::model::Sample;

use super::xor::{
    sign_extend, DOD_PAYLOAD_BITS, DOD_PREFIX_BITS, INT_PAYLOAD_BITS, INT_PREFIX_BITS,
};
use super::{ChunkError, ENCODING_INT, HEADER_LEN};

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
    fast_value(st, data, t, delta)
}

/// The value half of [`fast_step`]: decodes the value of the sample whose timestamp `t`
/// (and delta) was just decoded, and completes the sample. `None`, having changed
/// nothing the caller keeps, as for [`fast_step`].
#[inline(always)]
fn fast_value(mut st: State, data: &[u8], t: i64, delta: i64) -> Option<State> {
    if st.int {
        // Integer value: delta-of-delta bucket. Decoded like the timestamp's above but
        // written out: sharing one inlined function made gauge decoding 4-8% slower
        // (the loop's code layout), measured with `cargo bench --bench chunk`.
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

/// Decodes the first two samples of a chunk from the state before its first sample:
/// the first timestamp and value and the second timestamp's delta are varints (or the
/// 64-bit first value of an XOR chunk), all byte-aligned, so they are read straight from
/// the bytes; the second value as by [`fast_value`]. Returns the first sample and the
/// state after the second, or `None`, having changed nothing, for anything unusual (the
/// checked path then decodes both and reports what is wrong).
#[inline]
fn fast_start(mut st: State, data: &[u8]) -> Option<(Sample, State)> {
    let varint_at = |p: usize| get_uvarint(data.get(p..)?).ok();
    let int = data.first() == Some(&ENCODING_INT);
    let (z, n) = varint_at(HEADER_LEN)?;
    let t0 = zigzag_decode(z);
    let mut p = HEADER_LEN + n;
    if int {
        let (z, n) = varint_at(p)?;
        st.iv = zigzag_decode(z);
        st.v = (st.iv as f64).to_bits();
        p += n;
    } else {
        st.v = u64::from_be_bytes(*data.get(p..)?.first_chunk::<8>()?);
        p += 8;
    }
    let first = Sample::new(t0, f64::from_bits(st.v));
    let (d, n) = varint_at(p)?;
    let delta = d as i64;
    let t1 = t0.wrapping_add(delta);
    if t1 <= t0 {
        return None;
    }
    st.int = int;
    st.cur = BitCursor::at_byte(p + n);
    st.t = t0;
    st.read = 1;
    Some((first, fast_value(st, data, t1, delta)?))
}

/// The cursor `back` bits before `c` (which has consumed at least that many).
#[cold]
#[inline(never)]
fn rewind(c: BitCursor, data: &[u8], back: u32) -> BitCursor {
    cursor_at(data, c.bit_offset().saturating_sub(u64::from(back)))
}

/// A cursor at bit `bitpos` of `data` (at most `8 * data.len()`: a cursor cannot be
/// placed past the end).
fn cursor_at(data: &[u8], bitpos: u64) -> BitCursor {
    let mut c = BitCursor::at_byte((bitpos / 8) as usize);
    c.refill(data);
    c.consume((bitpos % 8) as u32);
    c
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

/// The most bits [`run_int`] takes for one sample: the 57 bits a word holds from its bit
/// position on, less the 7 that choose the next sample's buckets, less one to spare.
/// Wider samples (a 32-bit value bucket with a 14- or 20-bit timestamp bucket) go to the
/// per-sample path.
const MAX_PIPELINED_BITS: u32 = 57 - 7 - 1;

/// Decodes samples of an integer chunk into `out` on the fast path, with the decoding
/// state in locals so that it stays in registers. Stops before the first sample the fast
/// path declines (see [`fast_step`]) or that takes more than [`MAX_PIPELINED_BITS`], and
/// before two steady samples in a row (left to [`run_steady`]), and returns how many
/// samples were written. The caller guarantees `st.read >= 2`,
/// `st.int` and that `out` is no longer than the samples left.
#[inline(never)]
fn run_int(st: &mut State, data: &[u8], out: &mut [Sample]) -> usize {
    // The loop reads by bit position rather than through the cursor's buffer: each
    // sample loads the 8 bytes it starts in, so there is no count of buffered bits to
    // keep, refill or check.
    let mut bitpos = st.cur.bit_offset();
    let bit_len = data.len() as u64 * 8;
    let (mut t, mut delta) = (st.t, st.delta);
    let (mut iv, mut ivdelta) = (st.iv, st.ivdelta);
    let Some(mut top) = word_at(data, bitpos) else {
        return 0;
    };
    let mut n = 0;
    while let Some(slot) = out.get_mut(n) {
        // `top` is the sample's first bits as the previous sample's word held them:
        // choosing the bucket from it keeps this sample's load out of the chain of
        // dependent instructions from one sample to the next, which bounds the loop's
        // speed. A sample takes at most `MAX_PIPELINED_BITS`, so the 7 bits it needs
        // were in that word.
        let Some(w) = word_at(data, bitpos) else {
            break;
        };
        // Both fields are decoded before anything is consumed, so declining leaves the
        // position before the sample. They fit unless the data is truncated or a bucket
        // is very wide (the checked path then takes over).
        let (dod, vdod, k) = if top >> 62 == 0 {
            // Both zero (a steady series): a branch, predicted well on such runs, is
            // quicker than the lookup. Two or more such samples in a row are left to
            // [`run_steady`].
            if top >> 60 == 0 {
                break;
            }
            (0, 0, 2)
        } else if (top as i64) >= 0 {
            // A zero timestamp delta-of-delta: one lookup decodes the value field too.
            let e = INT_AFTER_ZERO_TABLE
                .get((top >> 57) as usize)
                .copied()
                .unwrap_or(BUCKET_DECLINE);
            (0, bucket_payload(w, e), e & 0xff)
        } else {
            let (dod, k1) = bucket_field(w, &DOD_TABLE, 60);
            let w2 = w.wrapping_shl(k1);
            let (vdod, k2) = bucket_field(w2, &INT_TABLE, 58);
            (dod, vdod, k1 + k2)
        };
        let nd = delta.wrapping_add(dod);
        let nt = t.wrapping_add(nd);
        let next = bitpos + u64::from(k);
        if nt <= t || k > MAX_PIPELINED_BITS || next > bit_len {
            break;
        }
        top = w.wrapping_shl(k);
        bitpos = next;
        ivdelta = ivdelta.wrapping_add(vdod);
        iv = iv.wrapping_add(ivdelta);
        *slot = Sample::new(nt, iv as f64);
        t = nt;
        delta = nd;
        n += 1;
    }
    st.cur = cursor_at(data, bitpos);
    st.t = t;
    st.delta = delta;
    st.read += n;
    st.iv = iv;
    st.ivdelta = ivdelta;
    st.v = (iv as f64).to_bits();
    n
}

/// The 64 bits of `data` from bit `bitpos` on, left-aligned; bits past the data's end
/// read as zero. At least 57 of them are the data's unless it ends sooner. `None` if the
/// data is shorter than 8 bytes.
#[inline(always)]
fn word_at(data: &[u8], bitpos: u64) -> Option<u64> {
    let byte = (bitpos >> 3) as usize;
    let raw = match data
        .get(byte..byte.wrapping_add(8))
        .and_then(|r| <[u8; 8]>::try_from(r).ok())
    {
        Some(b) => u64::from_be_bytes(b),
        None => {
            // The last bytes: the data's last 8 bytes, shifted past those before `byte`.
            let start = data.len().checked_sub(8)?;
            let last = data.get(start..)?.first_chunk::<8>()?;
            let skip = byte.saturating_sub(start) as u32 * 8;
            u64::from_be_bytes(*last).checked_shl(skip).unwrap_or(0)
        }
    };
    Some(raw << (bitpos & 7))
}

/// Loads bytes into the local cursor `(pos, buf, valid)` without a branch on how many are
/// buffered: reads the 8 bytes at `pos` and keeps whole bytes of them, leaving 56 to 63
/// bits buffered. Needs `valid <= 63` and 8 bytes at `pos`; otherwise [`refill_tail`]
/// loads what is left. Returns `false`, having changed nothing, if the data is shorter
/// than 8 bytes.
#[inline(always)]
fn refill_full(data: &[u8], pos: &mut usize, buf: &mut u64, valid: &mut u32) -> bool {
    match data.get(*pos..).and_then(|r| r.first_chunk::<8>()) {
        Some(b) if *valid <= 63 => {
            *buf |= u64::from_be_bytes(*b) >> *valid;
            *pos += ((63 - *valid) >> 3) as usize;
            *valid |= 56;
            true
        }
        _ => {
            let (ok, p, b, v) = refill_tail(data, *pos, *buf, *valid);
            (*pos, *buf, *valid) = (p, b, v);
            ok
        }
    }
}

/// The cold case of [`refill_full`]: fewer than 8 bytes after `pos` (or a full buffer).
/// Buffers at least 56 bits or all that are left, from the data's last 8 bytes shifted,
/// and never more than 63 (unlike [`BitCursor::refill`], which fills all 64): the XOR
/// loop relies on a 64-bit window never fitting the buffer, as it shifts by the window.
/// Takes and returns the cursor by value so that callers keep theirs in registers;
/// `false`, with the cursor unchanged, if the data is shorter than 8 bytes.
#[cold]
#[inline(never)]
fn refill_tail(data: &[u8], pos: usize, buf: u64, valid: u32) -> (bool, usize, u64, u32) {
    let len = data.len();
    let last = len
        .checked_sub(8)
        .and_then(|start| data.get(start..))
        .and_then(|r| r.first_chunk::<8>());
    let Some(last) = last else {
        return (false, pos, buf, valid);
    };
    let rem = len.saturating_sub(pos).min(7) as u32;
    if valid > 56 || rem == 0 {
        return (true, pos, buf, valid);
    }
    let word = u64::from_be_bytes(*last) << (8 * (8 - rem));
    let add = ((63 - valid) >> 3).min(rem);
    (
        true,
        pos + add as usize,
        buf | (word >> valid),
        valid + add * 8,
    )
}

/// As [`run_int`], for chunks with XOR values (stopping likewise before two steady
/// samples in a row). Both refills of a sample (before it, and after a value's control
/// bits and window) are unconditional, so that how wide the values are never becomes a
/// branch to mispredict.
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
        if !refill_full(data, &mut pos, &mut buf, &mut valid) || buf >> 60 == 0 {
            // The data's end, or two or more samples in a row on the grid with unchanged
            // values, which [`run_steady`] writes in one go.
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
            // The refill before the sample found 8 bytes of data, so this one cannot
            // fail; at least 56 bits are buffered after it unless the data ends.
            refill_full(data, &mut pos, &mut buf, &mut valid);
            let x = if s <= valid {
                // 1 <= s <= valid <= 63.
                let x = buf >> (64 - s);
                buf <<= s;
                valid -= s;
                x
            } else {
                // A window wider than the buffered bits (57 to 63 of them): its high
                // part, a refill, then its low 32 bits. Too few bits means the data
                // ends: back to the start of the sample for the per-sample path.
                let hi_bits = s.wrapping_sub(32);
                if s <= 32 || hi_bits > valid {
                    let c = rewind(BitCursor::from_parts(pos, buf, valid), data, head);
                    (pos, buf, valid) = c.into_parts();
                    break total - slots.len() - 1;
                }
                let hi = buf >> (64 - hi_bits);
                buf <<= hi_bits;
                valid -= hi_bits;
                refill_full(data, &mut pos, &mut buf, &mut valid);
                if valid < 32 {
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

/// Writes a run of samples coded `00` (on the grid, and with an unchanged value or, in
/// an integer chunk, an unchanged value delta), as many as the buffer holds and `out`
/// has room for, and returns how many: `0`, with the position unchanged (the cursor may
/// have buffered more bits), if there is no such sample or the timestamps would not
/// increase.
#[inline(never)]
fn run_steady(st: &mut State, data: &[u8], out: &mut [Sample]) -> usize {
    st.cur.refill(data);
    let (w, valid) = st.cur.buffer();
    let pairs = (w.leading_zeros().min(valid) / 2).min(out.len() as u32);
    let run_end = st
        .delta
        .checked_mul(i64::from(pairs))
        .and_then(|d| st.t.checked_add(d));
    if pairs == 0 || st.delta <= 0 || run_end.is_none() {
        return 0;
    }
    let (mut t, delta) = (st.t, st.delta);
    if st.int {
        let (mut iv, ivdelta) = (st.iv, st.ivdelta);
        for slot in out.iter_mut().take(pairs as usize) {
            t = t.wrapping_add(delta);
            iv = iv.wrapping_add(ivdelta);
            *slot = Sample::new(t, iv as f64);
        }
        st.iv = iv;
        st.v = (iv as f64).to_bits();
    } else {
        let f = f64::from_bits(st.v);
        for slot in out.iter_mut().take(pairs as usize) {
            t = t.wrapping_add(delta);
            *slot = Sample::new(t, f);
        }
    }
    st.cur.consume(2 * pairs);
    st.t = t;
    st.read += pairs as usize;
    pairs as usize
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
            if self.st.read == 0 && room >= 2 {
                if let Some((first, st)) = fast_start(self.st, data) {
                    self.st = st;
                    if let Some([a, b]) = out.get_mut(n..n + 2) {
                        *a = first;
                        *b = Sample::new(st.t, f64::from_bits(st.v));
                    }
                    n += 2;
                    continue;
                }
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
                let rest = out.get_mut(n..n + room - k).unwrap_or(&mut []);
                let k = run_steady(&mut self.st, data, rest);
                if k > 0 {
                    n += k;
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
