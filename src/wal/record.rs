//! Record framing and payload codecs (see the "WAL" section of `storage-format.md`).
//!
//! Everything that decodes bytes here treats them as untrusted: lengths and counts are checked
//! against what remains in the buffer before anything is allocated, and no path panics.

use super::{Record, RefSample, RefSeries, Tombstone, WalError};
use crate::model::Labels;

/// Magic bytes at the start of every segment file (the last byte is the format version).
pub(crate) const SEGMENT_MAGIC: [u8; 8] = *b"AIONWAL\x01";
/// Length of the segment header.
pub(crate) const SEGMENT_HEADER_LEN: usize = SEGMENT_MAGIC.len();
/// Bytes of framing before the payload: type (1) + payload length (4).
pub(crate) const FRAME_PREFIX_LEN: usize = 5;
/// Bytes of framing after the payload: CRC32 (4).
pub(crate) const FRAME_SUFFIX_LEN: usize = 4;
/// Total framing overhead per record.
pub(crate) const FRAME_OVERHEAD: usize = FRAME_PREFIX_LEN + FRAME_SUFFIX_LEN;

/// Record type byte of a series record.
pub(crate) const TYPE_SERIES: u8 = 1;
/// Record type byte of a samples record.
pub(crate) const TYPE_SAMPLES: u8 = 2;
/// Record type byte of a tombstones record.
pub(crate) const TYPE_TOMBSTONES: u8 = 3;
/// Record type byte of a compact series record (string back-references, ref deltas).
pub(crate) const TYPE_SERIES_V2: u8 = 4;
/// Record type byte of a compact samples record (per-sample value kinds, time deltas).
pub(crate) const TYPE_SAMPLES_V2: u8 = 5;

/// Smallest possible encoding of one sample: 1-byte ref delta, 1-byte time delta, 8-byte value.
const MIN_SAMPLE_LEN: usize = 10;
/// Smallest possible encoding of one series: 1-byte ref, 1-byte label count.
const MIN_SERIES_LEN: usize = 2;
/// Smallest possible encoding of one label: two 1-byte lengths.
const MIN_LABEL_LEN: usize = 2;

/// Why a frame or payload was rejected. Static strings keep the hot path allocation-free.
pub(crate) type DecodeError = &'static str;

#[inline]
pub(super) fn put_uvarint(buf: &mut Vec<u8>, mut x: u64) {
    while x >= 0x80 {
        buf.push((x as u8) | 0x80);
        x >>= 7;
    }
    buf.push(x as u8);
}

#[inline]
pub(super) fn zigzag(x: i64) -> u64 {
    ((x << 1) ^ (x >> 63)) as u64
}

#[inline]
pub(super) fn unzigzag(x: u64) -> i64 {
    ((x >> 1) as i64) ^ -((x & 1) as i64)
}

/// Reads an unsigned LEB128 varint (at most 10 bytes) and advances `b`.
#[inline(always)]
pub(super) fn uvarint(b: &mut &[u8]) -> Result<u64, DecodeError> {
    let s = *b;
    match s.split_first() {
        Some((&first, rest)) if first < 0x80 => {
            *b = rest;
            return Ok(u64::from(first));
        }
        Some(_) => {}
        None => return Err("truncated varint"),
    }
    let mut x = 0u64;
    let mut shift = 0u32;
    for (i, &byte) in s.iter().enumerate().take(10) {
        if byte < 0x80 {
            if i == 9 && byte > 1 {
                return Err("varint overflows 64 bits");
            }
            *b = s.get(i + 1..).unwrap_or(&[]);
            return Ok(x | (u64::from(byte) << shift));
        }
        x |= u64::from(byte & 0x7f) << shift;
        shift += 7;
    }
    Err("truncated or overlong varint")
}

#[inline(always)]
pub(super) fn take_bytes<'a>(b: &mut &'a [u8], n: usize) -> Result<&'a [u8], DecodeError> {
    let s = *b;
    match (s.get(..n), s.get(n..)) {
        (Some(head), Some(rest)) => {
            *b = rest;
            Ok(head)
        }
        _ => Err("length exceeds record payload"),
    }
}

/// Reads a varint count and checks that `count * min_len` bytes can still follow.
#[inline]
pub(super) fn count(b: &mut &[u8], min_len: usize) -> Result<usize, DecodeError> {
    let n = uvarint(b)?;
    match usize::try_from(n) {
        Ok(n) if n <= b.len() / min_len => Ok(n),
        _ => Err("count exceeds record payload"),
    }
}

fn put_str(buf: &mut Vec<u8>, s: &str) {
    put_uvarint(buf, s.len() as u64);
    buf.extend_from_slice(s.as_bytes());
}

fn take_str<'a>(b: &mut &'a [u8]) -> Result<&'a str, DecodeError> {
    let n = uvarint(b)?;
    let n = usize::try_from(n).map_err(|_| "string length exceeds record payload")?;
    let bytes = take_bytes(b, n)?;
    std::str::from_utf8(bytes).map_err(|_| "label string is not UTF-8")
}

/// Appends one framed record (type, length, payload, CRC32) to `buf`.
pub(crate) fn encode_record(rec: &Record, buf: &mut Vec<u8>) -> Result<(), WalError> {
    let start = buf.len();
    let typ = match rec {
        Record::Series(_) => TYPE_SERIES_V2,
        Record::Samples(_) => TYPE_SAMPLES_V2,
        Record::Tombstones(_) => TYPE_TOMBSTONES,
    };
    buf.push(typ);
    buf.extend_from_slice(&[0; 4]);
    match rec {
        Record::Series(series) => super::compact::encode_series(series, buf),
        Record::Samples(samples) => super::compact::encode_samples(samples, buf),
        Record::Tombstones(t) => encode_tombstones(t, buf),
    }
    let payload_len = buf.len() - start - FRAME_PREFIX_LEN;
    let Ok(len32) = u32::try_from(payload_len) else {
        buf.truncate(start);
        return Err(WalError::RecordTooLarge(payload_len));
    };
    if let Some(len_field) = buf.get_mut(start + 1..start + FRAME_PREFIX_LEN) {
        len_field.copy_from_slice(&len32.to_le_bytes());
    }
    let crc = crc32fast::hash(buf.get(start..).unwrap_or(&[]));
    buf.extend_from_slice(&crc.to_le_bytes());
    Ok(())
}

/// Type 1 payload (no longer written; kept to test that old WALs still decode).
#[cfg(test)]
fn encode_series(series: &[RefSeries], buf: &mut Vec<u8>) {
    put_uvarint(buf, series.len() as u64);
    for s in series {
        put_uvarint(buf, s.series_ref);
        put_uvarint(buf, s.labels.len() as u64);
        for l in s.labels.iter() {
            put_str(buf, l.name);
            put_str(buf, l.value);
        }
    }
}

/// Type 2 payload (no longer written; kept to test that old WALs still decode).
#[cfg(test)]
fn encode_samples(samples: &[RefSample], buf: &mut Vec<u8>) {
    put_uvarint(buf, samples.len() as u64);
    let Some(first) = samples.first() else {
        return;
    };
    let base_t = first.t;
    buf.extend_from_slice(&base_t.to_le_bytes());
    buf.reserve(samples.len() * 12);
    let mut prev_ref = 0u64;
    for s in samples {
        put_uvarint(buf, zigzag(s.series_ref.wrapping_sub(prev_ref) as i64));
        put_uvarint(buf, zigzag(s.t.wrapping_sub(base_t)));
        buf.extend_from_slice(&s.v.to_bits().to_le_bytes());
        prev_ref = s.series_ref;
    }
}

fn put_labels(buf: &mut Vec<u8>, labels: &Labels) {
    put_uvarint(buf, labels.len() as u64);
    for l in labels.iter() {
        put_str(buf, l.name);
        put_str(buf, l.value);
    }
}

fn take_labels(b: &mut &[u8]) -> Result<Labels, DecodeError> {
    let nl = count(b, MIN_LABEL_LEN)?;
    let mut labels = Vec::with_capacity(nl);
    for _ in 0..nl {
        let name = take_str(b)?;
        let value = take_str(b)?;
        labels.push((name, value));
    }
    Labels::from_sorted_pairs(labels.iter().copied()).ok_or("label names not sorted and unique")
}

fn encode_tombstones(list: &[Tombstone], buf: &mut Vec<u8>) {
    put_uvarint(buf, list.len() as u64);
    for t in list {
        put_labels(buf, &t.labels);
        put_uvarint(buf, zigzag(t.min_time));
        put_uvarint(buf, zigzag(t.max_time));
    }
}

/// Smallest possible encoding of one tombstone: label count and two 1-byte times.
const MIN_TOMBSTONE_LEN: usize = 3;

fn decode_tombstones(mut b: &[u8]) -> Result<Vec<Tombstone>, DecodeError> {
    let n = count(&mut b, MIN_TOMBSTONE_LEN)?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let labels = take_labels(&mut b)?;
        let min_time = unzigzag(uvarint(&mut b)?);
        let max_time = unzigzag(uvarint(&mut b)?);
        out.push(Tombstone {
            labels,
            min_time,
            max_time,
        });
    }
    if !b.is_empty() {
        return Err("trailing bytes after tombstones");
    }
    Ok(out)
}

/// One frame read from a segment, validated (length in range, CRC matches, type known).
pub(crate) struct Frame<'a> {
    /// Record type byte.
    pub typ: u8,
    /// Payload bytes (CRC already verified).
    pub payload: &'a [u8],
    /// Bytes the whole frame occupies.
    pub total_len: usize,
}

/// Validates the frame at the start of `buf` (the rest of the segment).
///
/// On failure, the second element is the frame's total length when its length field at least
/// fits in `buf` (so a caller can skip over it when counting what follows), else `None`.
#[inline]
pub(crate) fn next_frame(buf: &[u8]) -> Result<Frame<'_>, (DecodeError, Option<usize>)> {
    let Some((prefix, rest)) = buf.split_first_chunk::<FRAME_PREFIX_LEN>() else {
        return Err(("torn record header", None));
    };
    let [typ, l0, l1, l2, l3] = *prefix;
    let len = u32::from_le_bytes([l0, l1, l2, l3]) as usize;
    let Some(total_len) = len.checked_add(FRAME_OVERHEAD).filter(|&t| t <= buf.len()) else {
        return Err(("torn record: length runs past the end of the segment", None));
    };
    let (Some(payload), Some(crc_bytes), Some(covered)) = (
        rest.get(..len),
        rest.get(len..len + FRAME_SUFFIX_LEN),
        buf.get(..FRAME_PREFIX_LEN + len),
    ) else {
        return Err(("torn record", None));
    };
    let stored = u32::from_le_bytes(crc_bytes.try_into().map_err(|_| ("torn record", None))?);
    if crc32fast::hash(covered) != stored {
        return Err(("checksum mismatch", Some(total_len)));
    }
    if !matches!(
        typ,
        TYPE_SERIES | TYPE_SAMPLES | TYPE_TOMBSTONES | TYPE_SERIES_V2 | TYPE_SAMPLES_V2
    ) {
        return Err(("unknown record type", Some(total_len)));
    }
    Ok(Frame {
        typ,
        payload,
        total_len,
    })
}

/// Decodes the payload of a validated frame.
pub(crate) fn decode_frame(frame: &Frame<'_>) -> Result<Record, DecodeError> {
    match frame.typ {
        TYPE_SERIES => decode_series(frame.payload).map(Record::Series),
        TYPE_SAMPLES => decode_samples(frame.payload).map(Record::Samples),
        TYPE_TOMBSTONES => decode_tombstones(frame.payload).map(Record::Tombstones),
        TYPE_SERIES_V2 => super::compact::decode_series(frame.payload).map(Record::Series),
        TYPE_SAMPLES_V2 => super::compact::decode_samples(frame.payload).map(Record::Samples),
        _ => Err("unknown record type"),
    }
}

fn decode_series(mut b: &[u8]) -> Result<Vec<RefSeries>, DecodeError> {
    let n = count(&mut b, MIN_SERIES_LEN)?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let series_ref = uvarint(&mut b)?;
        let labels = take_labels(&mut b)?;
        out.push(RefSeries { series_ref, labels });
    }
    if !b.is_empty() {
        return Err("trailing bytes after series");
    }
    Ok(out)
}

fn decode_samples(mut b: &[u8]) -> Result<Vec<RefSample>, DecodeError> {
    let n = uvarint(&mut b)?;
    if n == 0 {
        return if b.is_empty() {
            Ok(Vec::new())
        } else {
            Err("trailing bytes after samples")
        };
    }
    let Some((base, rest)) = b.split_first_chunk::<8>() else {
        return Err("truncated sample base timestamp");
    };
    b = rest;
    let base_t = i64::from_le_bytes(*base);
    let n = match usize::try_from(n) {
        Ok(n) if n <= b.len() / MIN_SAMPLE_LEN => n,
        _ => return Err("count exceeds record payload"),
    };
    let mut out = Vec::with_capacity(n);
    let mut r = 0u64;
    for _ in 0..n {
        r = r.wrapping_add(unzigzag(uvarint(&mut b)?) as u64);
        let t = base_t.wrapping_add(unzigzag(uvarint(&mut b)?));
        let Some((v, rest)) = b.split_first_chunk::<8>() else {
            return Err("truncated sample value");
        };
        b = rest;
        out.push(RefSample {
            series_ref: r,
            t,
            v: f64::from_bits(u64::from_le_bytes(*v)),
        });
    }
    if !b.is_empty() {
        return Err("trailing bytes after samples");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_round_trip_and_limits() {
        for x in [
            0u64,
            1,
            127,
            128,
            300,
            u32::MAX as u64,
            u64::MAX - 1,
            u64::MAX,
        ] {
            let mut buf = Vec::new();
            put_uvarint(&mut buf, x);
            let mut s = buf.as_slice();
            assert_eq!(uvarint(&mut s).unwrap(), x);
            assert!(s.is_empty());
            // every strict prefix is truncated
            for cut in 0..buf.len() {
                let mut s = &buf[..cut];
                assert!(uvarint(&mut s).is_err(), "{x} cut at {cut}");
            }
        }
        // 11 continuation bytes, and a 10th byte that overflows
        let mut s: &[u8] = &[0xff; 11];
        assert!(uvarint(&mut s).is_err());
        let mut s: &[u8] = &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        assert!(uvarint(&mut s).is_err());
        for x in [0i64, 1, -1, i64::MIN, i64::MAX, 12345, -98765] {
            assert_eq!(unzigzag(zigzag(x)), x);
        }
    }

    #[test]
    fn absurd_counts_are_rejected_without_allocating() {
        // a samples payload that claims u64::MAX samples
        let mut p = Vec::new();
        put_uvarint(&mut p, u64::MAX);
        p.extend_from_slice(&0i64.to_le_bytes());
        p.extend_from_slice(&[0; 20]);
        assert!(decode_samples(&p).is_err());
        // a series payload that claims 2^40 series
        let mut p = Vec::new();
        put_uvarint(&mut p, 1 << 40);
        p.extend_from_slice(&[0; 4]);
        assert!(decode_series(&p).is_err());
        // a label string longer than the payload
        let mut p = Vec::new();
        put_uvarint(&mut p, 1);
        put_uvarint(&mut p, 7);
        put_uvarint(&mut p, 1);
        put_uvarint(&mut p, 1 << 50);
        p.extend_from_slice(b"abc");
        assert!(decode_series(&p).is_err());
    }

    #[test]
    fn unsorted_or_non_utf8_labels_are_rejected() {
        let mut p = Vec::new();
        put_uvarint(&mut p, 1);
        put_uvarint(&mut p, 1);
        put_uvarint(&mut p, 2);
        put_str(&mut p, "b");
        put_str(&mut p, "1");
        put_str(&mut p, "a");
        put_str(&mut p, "2");
        assert_eq!(
            decode_series(&p).unwrap_err(),
            "label names not sorted and unique"
        );
        let mut p = Vec::new();
        put_uvarint(&mut p, 1);
        put_uvarint(&mut p, 1);
        put_uvarint(&mut p, 1);
        put_str(&mut p, "a");
        put_uvarint(&mut p, 2);
        p.extend_from_slice(&[0xc3, 0x28]);
        assert_eq!(decode_series(&p).unwrap_err(), "label string is not UTF-8");
    }

    #[test]
    fn tombstones_round_trip() {
        let rec = Record::Tombstones(vec![
            Tombstone {
                labels: Labels::from_pairs(&[("__name__", "up"), ("job", "a")]),
                min_time: -5,
                max_time: i64::MAX,
            },
            Tombstone {
                labels: Labels::from_pairs(&[("a", "b")]),
                min_time: i64::MIN,
                max_time: 7,
            },
        ]);
        let mut buf = Vec::new();
        encode_record(&rec, &mut buf).unwrap();
        let frame = next_frame(&buf).ok().unwrap();
        assert_eq!(frame.typ, TYPE_TOMBSTONES);
        assert_eq!(decode_frame(&frame).unwrap(), rec);
        // every truncation of the payload is rejected without panicking
        for cut in 0..frame.payload.len() {
            assert!(
                decode_tombstones(&frame.payload[..cut]).is_err(),
                "cut {cut}"
            );
        }
    }

    #[test]
    fn records_of_the_first_format_still_decode() {
        let series = vec![RefSeries {
            series_ref: 7,
            labels: Labels::from_pairs(&[("__name__", "up"), ("job", "a")]),
        }];
        let samples = vec![
            RefSample {
                series_ref: 7,
                t: 1000,
                v: 1.0,
            },
            RefSample {
                series_ref: 7,
                t: 2000,
                v: f64::from_bits(0x7ff0_0000_0000_0002),
            },
        ];
        let mut p = Vec::new();
        encode_series(&series, &mut p);
        let buf = frame_of(TYPE_SERIES, &p);
        let frame = next_frame(&buf).ok().unwrap();
        assert_eq!(decode_frame(&frame).unwrap(), Record::Series(series));
        let mut p = Vec::new();
        encode_samples(&samples, &mut p);
        let buf = frame_of(TYPE_SAMPLES, &p);
        let frame = next_frame(&buf).ok().unwrap();
        let Ok(Record::Samples(got)) = decode_frame(&frame) else {
            panic!("samples did not decode")
        };
        let bits = |s: &[RefSample]| -> Vec<(u64, i64, u64)> {
            s.iter()
                .map(|x| (x.series_ref, x.t, x.v.to_bits()))
                .collect()
        };
        assert_eq!(bits(&got), bits(&samples));
    }

    #[test]
    fn frame_rejects_bad_type_even_with_valid_crc() {
        let mut buf = vec![9u8, 0, 0, 0, 0];
        let crc = crc32fast::hash(&buf);
        buf.extend_from_slice(&crc.to_le_bytes());
        let err = next_frame(&buf).err().unwrap();
        assert_eq!(err, ("unknown record type", Some(9)));
    }

    fn frame_of(typ: u8, payload: &[u8]) -> Vec<u8> {
        let mut buf = vec![typ];
        buf.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        buf.extend_from_slice(payload);
        let crc = crc32fast::hash(&buf);
        buf.extend_from_slice(&crc.to_le_bytes());
        buf
    }

    proptest::proptest! {
        /// Garbage payloads behind valid framing reach the payload decoders: they must reject
        /// or decode, never panic, and never return more items than the bytes could hold.
        #[test]
        fn garbage_payloads_never_panic(
            typ in 1u8..=5,
            payload in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
        ) {
            let buf = frame_of(typ, &payload);
            let frame = next_frame(&buf).unwrap();
            match decode_frame(&frame) {
                Ok(Record::Samples(s)) => proptest::prop_assert!(s.len() * 2 <= payload.len()),
                Ok(Record::Series(s)) => proptest::prop_assert!(s.len() * MIN_SERIES_LEN <= payload.len()),
                Ok(Record::Tombstones(t)) => proptest::prop_assert!(t.len() * MIN_TOMBSTONE_LEN <= payload.len()),
                Err(_) => {}
            }
        }

        /// Any samples round-trip bit-exactly, whatever the refs, times and value bits.
        #[test]
        fn any_samples_round_trip(
            raw in proptest::collection::vec(
                (proptest::prelude::any::<u64>(), proptest::prelude::any::<i64>(), proptest::prelude::any::<u64>()),
                0..50,
            ),
        ) {
            let samples: Vec<RefSample> = raw
                .iter()
                .map(|&(r, t, v)| RefSample { series_ref: r, t, v: f64::from_bits(v) })
                .collect();
            let mut buf = Vec::new();
            encode_record(&Record::Samples(samples), &mut buf).unwrap();
            let frame = next_frame(&buf).unwrap();
            proptest::prop_assert_eq!(frame.total_len, buf.len());
            let Ok(Record::Samples(got)) = decode_frame(&frame) else {
                panic!("samples did not decode")
            };
            let got: Vec<(u64, i64, u64)> = got.iter().map(|s| (s.series_ref, s.t, s.v.to_bits())).collect();
            proptest::prop_assert_eq!(got, raw);
        }

        /// Any label sets round-trip, including empty names/values and multi-byte UTF-8.
        #[test]
        fn any_series_round_trip(
            raw in proptest::collection::vec(
                (proptest::prelude::any::<u64>(), proptest::collection::btree_map(".{0,8}", ".{0,12}", 0..6)),
                0..10,
            ),
        ) {
            let series: Vec<RefSeries> = raw
                .iter()
                .map(|(r, m)| RefSeries {
                    series_ref: *r,
                    labels: Labels::from_sorted(m.iter().map(|(n, v)| crate::model::Label::new(n.clone(), v.clone())).collect()).unwrap(),
                })
                .collect();
            let mut buf = Vec::new();
            encode_record(&Record::Series(series.clone()), &mut buf).unwrap();
            let frame = next_frame(&buf).unwrap();
            proptest::prop_assert_eq!(decode_frame(&frame).unwrap(), Record::Series(series));
        }
    }

    #[test]
    fn samples_with_extreme_refs_and_times_round_trip() {
        let samples = vec![
            RefSample {
                series_ref: u64::MAX,
                t: i64::MIN,
                v: f64::NAN,
            },
            RefSample {
                series_ref: 0,
                t: i64::MAX,
                v: -0.0,
            },
            RefSample {
                series_ref: 5,
                t: 0,
                v: f64::INFINITY,
            },
        ];
        let mut buf = Vec::new();
        encode_record(&Record::Samples(samples.clone()), &mut buf).unwrap();
        let frame = next_frame(&buf).unwrap();
        assert_eq!(frame.total_len, buf.len());
        let Record::Samples(got) = decode_frame(&frame).unwrap() else {
            panic!("wrong record kind")
        };
        assert_eq!(got.len(), samples.len());
        for (a, b) in got.iter().zip(&samples) {
            assert_eq!(
                (a.series_ref, a.t, a.v.to_bits()),
                (b.series_ref, b.t, b.v.to_bits())
            );
        }
    }
}
