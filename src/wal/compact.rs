//! Compact payload codecs of the series (type 4) and samples (type 5) records, the ones every
//! commit writes (see "Series record, compact" and "Samples record, compact" in
//! `storage-format.md`). The older types 1 and 2 are still decoded by `record.rs`.
//!
//! Decoding treats every byte as untrusted: counts are checked against the remaining payload
//! before anything is allocated, and no path panics.

use super::record::{count, put_uvarint, take_bytes, unzigzag, uvarint, zigzag, DecodeError};
use super::{RefSample, RefSeries};
use crate::model::Labels;

/// Value kind: a zig-zag varint integer `i`; the value is `i as f64`.
const KIND_INT: u64 = 0;
/// Value kinds 1..=8: the `n` most significant bytes of the value's bits follow (the others are
/// zero), most significant first.
const KIND_BYTES_MAX: u64 = 8;
/// Value kind: the same bits as the previous sample of the record (0.0 for the first).
const KIND_REPEAT: u64 = 9;
/// Low nibble of a head marking the long form: the kind is in the upper bits and the time
/// delta follows as its own zig-zag varint.
const LONG_FORM: u64 = 0xF;
/// Short-form time deltas must leave room for the kind nibble.
const SHORT_DT_LIMIT: u64 = 1 << 59;
/// Integers are stored as such only below this magnitude, where the varint stays short.
const INT_LIMIT: i64 = 1 << 48;

/// Smallest encoding of one sample: 1-byte ref delta and 1-byte head (kind "repeat").
const MIN_SAMPLE_LEN: usize = 2;
/// Smallest encoding of one series: 1-byte ref delta and 1-byte label count.
const MIN_SERIES_LEN: usize = 2;
/// Smallest encoding of one label: two 1-byte string references.
const MIN_LABEL_LEN: usize = 2;

#[inline]
fn varint_len(x: u64) -> u32 {
    // 1 byte per started group of 7 bits, at least 1
    (64 - (x | 1).leading_zeros()).div_ceil(7)
}

/// Appends the payload of a compact samples record.
pub(super) fn encode_samples(samples: &[RefSample], buf: &mut Vec<u8>) {
    put_uvarint(buf, samples.len() as u64);
    buf.reserve(samples.len() * 6);
    let (mut prev_ref, mut prev_t, mut prev_bits) = (0u64, 0i64, 0u64);
    for (i, s) in samples.iter().enumerate() {
        put_uvarint(buf, zigzag(s.series_ref.wrapping_sub(prev_ref) as i64));
        prev_ref = s.series_ref;
        let bits = s.v.to_bits();
        let (kind, int) = if i > 0 && bits == prev_bits {
            (KIND_REPEAT, 0)
        } else {
            let n = 8 - bits.trailing_zeros().min(63) / 8;
            let i = s.v as i64;
            if (i as f64).to_bits() == bits
                && (-INT_LIMIT..INT_LIMIT).contains(&i)
                && varint_len(zigzag(i)) <= n
            {
                (KIND_INT, zigzag(i))
            } else {
                (u64::from(n), 0)
            }
        };
        prev_bits = bits;
        let dt = zigzag(if i == 0 {
            s.t
        } else {
            s.t.wrapping_sub(prev_t)
        });
        prev_t = s.t;
        if dt < SHORT_DT_LIMIT {
            put_uvarint(buf, (dt << 4) | kind);
        } else {
            put_uvarint(buf, (kind << 4) | LONG_FORM);
            put_uvarint(buf, dt);
        }
        match kind {
            KIND_INT => put_uvarint(buf, int),
            KIND_REPEAT => {}
            n => {
                let be = bits.to_be_bytes();
                buf.extend_from_slice(be.get(..n as usize).unwrap_or(&be));
            }
        }
    }
}

/// Decodes the payload of a compact samples record.
pub(super) fn decode_samples(mut b: &[u8]) -> Result<Vec<RefSample>, DecodeError> {
    let n = count(&mut b, MIN_SAMPLE_LEN)?;
    let mut out = Vec::with_capacity(n);
    let (mut r, mut t, mut bits) = (0u64, 0i64, 0u64);
    for _ in 0..n {
        r = r.wrapping_add(unzigzag(uvarint(&mut b)?) as u64);
        let head = uvarint(&mut b)?;
        let (kind, dt) = if head & LONG_FORM == LONG_FORM {
            (head >> 4, uvarint(&mut b)?)
        } else {
            (head & LONG_FORM, head >> 4)
        };
        t = t.wrapping_add(unzigzag(dt));
        match kind {
            KIND_INT => bits = (unzigzag(uvarint(&mut b)?) as f64).to_bits(),
            KIND_REPEAT => {}
            1..=KIND_BYTES_MAX => {
                let bytes = take_bytes(&mut b, kind as usize)?;
                let mut be = [0u8; 8];
                if let Some(dst) = be.get_mut(..bytes.len()) {
                    dst.copy_from_slice(bytes);
                }
                bits = u64::from_be_bytes(be);
            }
            _ => return Err("unknown sample value kind"),
        }
        out.push(RefSample {
            series_ref: r,
            t,
            v: f64::from_bits(bits),
        });
    }
    if !b.is_empty() {
        return Err("trailing bytes after samples");
    }
    Ok(out)
}

/// Strings already written in the current series record, for back-references.
#[derive(Default)]
struct StringTable<'a> {
    index: std::collections::HashMap<&'a str, u64>,
}

impl<'a> StringTable<'a> {
    fn put(&mut self, buf: &mut Vec<u8>, s: &'a str) {
        if let Some(&i) = self.index.get(s) {
            put_uvarint(buf, i << 1);
        } else {
            let i = self.index.len() as u64;
            self.index.insert(s, i);
            put_uvarint(buf, ((s.len() as u64) << 1) | 1);
            buf.extend_from_slice(s.as_bytes());
        }
    }
}

/// Appends the payload of a compact series record.
pub(super) fn encode_series(series: &[RefSeries], buf: &mut Vec<u8>) {
    put_uvarint(buf, series.len() as u64);
    let mut table = StringTable::default();
    let mut prev_ref = 0u64;
    for s in series {
        put_uvarint(buf, zigzag(s.series_ref.wrapping_sub(prev_ref) as i64));
        prev_ref = s.series_ref;
        put_uvarint(buf, s.labels.len() as u64);
        for l in s.labels.iter() {
            table.put(buf, l.name);
            table.put(buf, l.value);
        }
    }
}

fn take_string<'a>(b: &mut &'a [u8], table: &mut Vec<&'a str>) -> Result<&'a str, DecodeError> {
    let x = uvarint(b)?;
    let i = usize::try_from(x >> 1).map_err(|_| "string reference out of range")?;
    if x & 1 == 0 {
        return table.get(i).copied().ok_or("string reference out of range");
    }
    let bytes = take_bytes(b, i)?;
    let s = std::str::from_utf8(bytes).map_err(|_| "label string is not UTF-8")?;
    table.push(s);
    Ok(s)
}

/// Decodes the payload of a compact series record.
pub(super) fn decode_series(mut b: &[u8]) -> Result<Vec<RefSeries>, DecodeError> {
    let n = count(&mut b, MIN_SERIES_LEN)?;
    let mut out = Vec::with_capacity(n);
    let mut table: Vec<&str> = Vec::new();
    let mut r = 0u64;
    let mut scratch: Vec<(&str, &str)> = Vec::new();
    for _ in 0..n {
        r = r.wrapping_add(unzigzag(uvarint(&mut b)?) as u64);
        let nl = count(&mut b, MIN_LABEL_LEN)?;
        scratch.clear();
        scratch.reserve(nl);
        for _ in 0..nl {
            let name = take_string(&mut b, &mut table)?;
            let value = take_string(&mut b, &mut table)?;
            scratch.push((name, value));
        }
        let labels = Labels::from_sorted_pairs(scratch.iter().copied())
            .ok_or("label names not sorted and unique")?;
        out.push(RefSeries {
            series_ref: r,
            labels,
        });
    }
    if !b.is_empty() {
        return Err("trailing bytes after series");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples_round_trip(samples: &[RefSample]) -> Vec<u8> {
        let mut buf = Vec::new();
        encode_samples(samples, &mut buf);
        let got = decode_samples(&buf).unwrap();
        assert_eq!(got.len(), samples.len());
        for (a, b) in got.iter().zip(samples) {
            assert_eq!(
                (a.series_ref, a.t, a.v.to_bits()),
                (b.series_ref, b.t, b.v.to_bits())
            );
        }
        for cut in 0..buf.len() {
            assert!(decode_samples(&buf[..cut]).is_err(), "cut at {cut}");
        }
        buf
    }

    #[test]
    fn value_kinds_round_trip_and_stay_small() {
        let vals = [
            0.0,
            -0.0,
            1.0,
            -1.0,
            1234.0,
            0.25,
            1e300,
            f64::NAN,
            f64::from_bits(0x7ff0_0000_0000_0002),
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::MIN_POSITIVE / 3.0,
            (1u64 << 53) as f64,
            -((1u64 << 60) as f64),
            9.223372036854776e18,
            0.1,
            0.1,
        ];
        let samples: Vec<RefSample> = vals
            .iter()
            .enumerate()
            .map(|(i, &v)| RefSample {
                series_ref: 100 + i as u64,
                t: 1_700_000_000_000,
                v,
            })
            .collect();
        samples_round_trip(&samples);
        // a scrape of integer counters at one timestamp: 3–4 bytes a sample
        let scrape: Vec<RefSample> = (0..1000u64)
            .map(|i| RefSample {
                series_ref: 5000 + i,
                t: 1_700_000_000_000,
                v: (i * 37 % 5000) as f64,
            })
            .collect();
        let buf = samples_round_trip(&scrape);
        assert!(buf.len() <= 4 * 1000 + 16, "{} bytes", buf.len());
    }

    #[test]
    fn extreme_time_and_ref_deltas_use_the_long_form() {
        let samples = [
            RefSample {
                series_ref: u64::MAX,
                t: i64::MIN,
                v: 1.5,
            },
            RefSample {
                series_ref: 0,
                t: i64::MAX,
                v: 1.5,
            },
            RefSample {
                series_ref: 1 << 63,
                t: 0,
                v: -2.0,
            },
        ];
        samples_round_trip(&samples);
        samples_round_trip(&[]);
    }

    #[test]
    fn bad_kinds_and_references_are_rejected() {
        // one sample whose head names kind 10
        let mut p = Vec::new();
        put_uvarint(&mut p, 1);
        put_uvarint(&mut p, 2);
        put_uvarint(&mut p, 10);
        assert_eq!(decode_samples(&p).unwrap_err(), "unknown sample value kind");
        // a series whose first string is a back-reference
        let mut p = Vec::new();
        put_uvarint(&mut p, 1);
        put_uvarint(&mut p, 2);
        put_uvarint(&mut p, 1);
        put_uvarint(&mut p, 0);
        put_uvarint(&mut p, 0);
        assert_eq!(
            decode_series(&p).unwrap_err(),
            "string reference out of range"
        );
    }

    #[test]
    fn repeated_strings_are_referenced() {
        let series: Vec<RefSeries> = (0..100u64)
            .map(|i| RefSeries {
                series_ref: i + 1,
                labels: Labels::from_pairs(&[
                    ("__name__", "http_requests_total"),
                    ("instance", "host-1:9100"),
                    ("job", "node"),
                    ("shard", &(i % 10).to_string()),
                ]),
            })
            .collect();
        let mut buf = Vec::new();
        encode_series(&series, &mut buf);
        // after the first series: ref delta, count and 8 one-byte references
        assert!(buf.len() < 100 * 10 + 80, "{} bytes", buf.len());
        assert_eq!(decode_series(&buf).unwrap(), series);
        for cut in 0..buf.len() {
            assert!(decode_series(&buf[..cut]).is_err(), "cut at {cut}");
        }
    }
}
