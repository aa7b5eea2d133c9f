//! Unit tests for the XOR chunk: edge cases and corruption.

use std::sync::Arc;

use super::*;
use crate::model::{Sample, STALE_NAN};

fn encode(samples: &[(i64, f64)]) -> XorChunk {
    let mut c = XorChunk::new();
    for &(t, v) in samples {
        c.append(t, v);
    }
    c
}

/// Decodes with `next_batch` in batches of `size` samples.
fn collect_batches(it: &mut XorIter<'_>, size: usize) -> Vec<Sample> {
    let mut out = Vec::new();
    let mut buf = vec![Sample::new(0, 0.0); size];
    loop {
        let n = it.next_batch(&mut buf);
        if n == 0 {
            return out;
        }
        assert!(n <= size);
        out.extend_from_slice(&buf[..n]);
    }
}

/// A xorshift64 generator of test data, from a non-zero seed.
fn xorshift(mut rng: u64) -> impl FnMut() -> u64 {
    move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    }
}

fn assert_roundtrip(samples: &[(i64, f64)]) {
    let mut c = encode(samples);
    assert_eq!(c.num_samples(), samples.len());
    let got: Vec<Sample> = c.iter().collect();
    assert_eq!(got.len(), samples.len());
    for size in [1, 3, 64, 200] {
        let batched = collect_batches(&mut c.iter(), size);
        assert_eq!(batched.len(), got.len(), "batch size {size}");
        assert!(batched.iter().zip(&got).all(|(a, b)| a.bit_eq(b)));
    }
    for (g, &(t, v)) in got.iter().zip(samples) {
        assert!(g.bit_eq(&Sample::new(t, v)), "got {g:?}, want ({t}, {v:?})");
    }
    let d = c.freeze();
    assert_eq!(d.bytes(), c.bytes());
    assert_eq!(d.num_samples(), samples.len());
    let d2 = ChunkData::from_bytes(Arc::from(c.bytes()), Some(d.crc())).unwrap();
    assert_eq!(d2.num_samples(), samples.len());
    assert_eq!(d2.min_time(), d.min_time());
    assert_eq!(d2.max_time(), d.max_time());
    assert_eq!(d2.crc(), checksum(c.bytes()));
    let got2: Vec<Sample> = d2.iter().collect();
    assert_eq!(got2.len(), samples.len());
    for (a, b) in got.iter().zip(&got2) {
        assert!(a.bit_eq(b));
    }
    if let (Some(first), Some(last)) = (samples.first(), samples.last()) {
        assert_eq!(c.min_time(), Some(first.0));
        assert_eq!(c.max_time(), Some(last.0));
        assert_eq!(d2.min_time(), first.0);
        assert_eq!(d2.max_time(), last.0);
    }
}

#[test]
fn empty_chunk() {
    let mut c = XorChunk::new();
    assert_eq!(c.num_samples(), 0);
    assert_eq!(c.min_time(), None);
    assert_eq!(c.max_time(), None);
    // Chunks start in integer mode.
    assert_eq!(c.bytes(), &[ENCODING_INT, 0, 0]);
    assert_eq!(c.iter().next(), None);
    let d = c.freeze();
    assert_eq!(d.num_samples(), 0);
    assert_eq!(d.min_time(), i64::MAX);
    assert_eq!(d.max_time(), i64::MIN);
    let d2 = ChunkData::from_bytes(Arc::from(c.bytes()), Some(d.crc())).unwrap();
    assert_eq!(d2.num_samples(), 0);
    assert_eq!(d2.iter().next(), None);
    assert!(d2.iter().err().is_none());
}

#[test]
fn one_sample() {
    assert_roundtrip(&[(1_700_000_000_000, 42.5)]);
    assert_roundtrip(&[(0, 0.0)]);
    assert_roundtrip(&[(-5, -1.0)]);
}

#[test]
fn full_chunk_realistic() {
    let mut s = Vec::new();
    let mut t = 1_700_000_000_000i64;
    let mut v = 0.0;
    for i in 0..MAX_SAMPLES_PER_CHUNK {
        t += 15_000 + if i % 7 == 3 { 13 } else { 0 };
        v += (i % 5) as f64;
        s.push((t, v));
    }
    assert_roundtrip(&s);
    let mut c = encode(&s);
    // Regular counters compress to a few bytes per sample at most.
    assert!(
        c.bytes().len() < 3 * MAX_SAMPLES_PER_CHUNK,
        "{}",
        c.bytes().len()
    );
}

#[test]
fn huge_deltas_and_extremes() {
    assert_roundtrip(&[(i64::MIN, 1.0), (i64::MAX, 2.0)]);
    assert_roundtrip(&[(i64::MIN, 1.0), (0, 2.0), (i64::MAX, 3.0)]);
    assert_roundtrip(&[(i64::MIN, 1.0), (i64::MIN + 1, 2.0), (i64::MAX, 3.0)]);
    assert_roundtrip(&[(i64::MAX - 2, 1.0), (i64::MAX - 1, 2.0), (i64::MAX, 3.0)]);
    assert_roundtrip(&[
        (-1, 1.0),
        (1 << 40, 2.0),
        ((1 << 40) + 1, 3.0),
        (1 << 62, 4.0),
    ]);
    // Every delta-of-delta bucket boundary.
    let mut s = vec![(0i64, 0.0), (1000, 0.0)];
    let mut t = 1000i64;
    let mut d = 1000i64;
    for dod in [
        0i64,
        63,
        -64,
        64,
        -65,
        8191,
        -8192,
        8192,
        -8193,
        524_287,
        -524_288,
        524_288,
        -524_289,
        1 << 40,
        -(1 << 39),
        0,
    ] {
        d += dod;
        t += d;
        s.push((t, 1.0));
    }
    assert_roundtrip(&s);
}

#[test]
fn negative_timestamps() {
    let s: Vec<(i64, f64)> = (0..120)
        .map(|i| (-1_000_000 + i * 15_000, i as f64))
        .collect();
    assert_roundtrip(&s);
}

#[test]
fn repeated_values() {
    let s: Vec<(i64, f64)> = (0..120).map(|i| (i * 1000, 3.25)).collect();
    assert_roundtrip(&s);
    let mut c = encode(&s);
    // Regular timestamps and constant values: one bit each after the second sample.
    assert!(
        c.bytes().len() <= HEADER_LEN + 1 + 8 + 2 + 1 + 30,
        "{}",
        c.bytes().len()
    );
}

#[test]
fn special_floats() {
    let specials = [
        STALE_NAN,
        f64::NAN,
        -f64::NAN,
        f64::from_bits(0x7ff8_0000_0000_0001),
        f64::from_bits(0xfff0_0000_0000_0001),
        f64::INFINITY,
        f64::NEG_INFINITY,
        0.0,
        -0.0,
        f64::MIN_POSITIVE,
        f64::from_bits(1),
        -f64::from_bits(1),
        f64::from_bits(0x000f_ffff_ffff_ffff),
        f64::MAX,
        f64::MIN,
        f64::EPSILON,
        1.0,
        STALE_NAN,
    ];
    let s: Vec<(i64, f64)> = specials
        .iter()
        .enumerate()
        .map(|(i, &v)| (i as i64, v))
        .collect();
    assert_roundtrip(&s);
    let rev: Vec<(i64, f64)> = specials
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &v)| (i as i64, v))
        .collect();
    assert_roundtrip(&rev);
}

#[test]
fn seek_semantics() {
    let s: Vec<(i64, f64)> = (0..10).map(|i| (i * 10, i as f64)).collect();
    let c = encode(&s);
    let mut it = c.iter();
    assert_eq!(it.seek(25).map(|x| x.t), Some(30));
    // Never backwards: the current sample satisfies the target.
    assert_eq!(it.seek(5).map(|x| x.t), Some(30));
    assert_eq!(it.seek(30).map(|x| x.t), Some(30));
    assert_eq!(it.next().map(|x| x.t), Some(40));
    assert_eq!(it.seek(90).map(|x| x.t), Some(90));
    assert_eq!(it.seek(91), None);
    assert_eq!(it.next(), None);
    assert!(it.err().is_none());
    let mut it = c.iter();
    assert_eq!(it.seek(i64::MIN).map(|x| x.t), Some(0));
    assert_eq!(it.next().map(|x| x.t), Some(10));
}

#[test]
fn next_batch_mixes_with_next_and_seek() {
    for frac in [0.0, 0.5] {
        let s: Vec<(i64, f64)> = (0..130).map(|i| (i * 10, i as f64 + frac)).collect();
        let c = encode(&s);
        let mut it = c.iter();
        let mut buf = [Sample::new(0, 0.0); 7];
        assert_eq!(it.next().map(|x| x.t), Some(0));
        assert_eq!(it.next_batch(&mut buf), 7);
        assert_eq!(buf.map(|x| x.t), [10, 20, 30, 40, 50, 60, 70]);
        // The sample last returned by the batch counts for `seek`.
        assert_eq!(it.seek(65).map(|x| x.t), Some(70));
        assert_eq!(it.next().map(|x| (x.t, x.v)), Some((80, 8.0 + frac)));
        assert_eq!(it.next_batch(&mut buf[..2]), 2);
        assert_eq!(buf[1].t, 100);
        assert_eq!(it.seek(1000).map(|x| x.t), Some(1000));
        let mut rest = [Sample::new(0, 0.0); 64];
        assert_eq!(it.next_batch(&mut rest), 29);
        assert_eq!(rest[28].t, 1290);
        assert_eq!(it.next_batch(&mut rest), 0);
        assert_eq!(it.next(), None);
        assert_eq!(it.seek(1290).map(|x| x.t), Some(1290));
        assert!(it.err().is_none());
    }
}

#[test]
fn header_errors() {
    assert!(matches!(
        ChunkData::from_bytes(Arc::from(&[][..]), None),
        Err(ChunkError::TooShort { len: 0, .. })
    ));
    assert!(matches!(
        ChunkData::from_bytes(Arc::from(&[1u8, 0][..]), None),
        Err(ChunkError::TooShort { len: 2, .. })
    ));
    assert!(matches!(
        ChunkData::from_bytes(Arc::from(&[9u8, 0, 0][..]), None),
        Err(ChunkError::UnknownEncoding { encoding: 9 })
    ));
    let mut c = encode(&[(1, 1.0), (2, 2.0)]);
    let d = c.freeze();
    assert!(matches!(
        ChunkData::from_bytes(Arc::from(c.bytes()), Some(d.crc() ^ 1)),
        Err(ChunkError::CrcMismatch { .. })
    ));
}

#[test]
fn corruption_is_reported() {
    let s: Vec<(i64, f64)> = (0..50)
        .map(|i| (i * 15_000 + (i % 3), (i * i) as f64 * 0.1))
        .collect();
    let mut c = encode(&s);
    let bytes = c.bytes().to_vec();
    // Truncation at every length fails (with a location) rather than panicking.
    for len in 0..bytes.len() {
        let r = ChunkData::from_bytes(Arc::from(&bytes[..len]), None);
        assert!(r.is_err(), "len {len}");
    }
    // A larger sample count than encoded runs out of bits. (The zero padding of the last
    // byte may decode as up to 3 extra "unchanged" samples of 2 bits each, which only the
    // checksum can catch; 10 extra samples cannot fit.)
    let mut more = bytes.clone();
    more[1] = 60;
    match ChunkData::from_bytes(Arc::from(more), None) {
        Err(ChunkError::Truncated {
            sample,
            num_samples,
            ..
        }) => {
            assert!((50..=53).contains(&sample), "{sample}");
            assert_eq!(num_samples, 60);
        }
        other => panic!("{other:?}"),
    }
    // A smaller count leaves trailing data.
    let mut fewer = bytes.clone();
    fewer[1] = 40;
    assert!(matches!(
        ChunkData::from_bytes(Arc::from(fewer), None),
        Err(ChunkError::TrailingData { .. })
    ));
    // An extra zero byte is trailing data too.
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(matches!(
        ChunkData::from_bytes(Arc::from(longer), None),
        Err(ChunkError::TrailingData { .. })
    ));
}

#[test]
fn non_increasing_timestamps_are_rejected() {
    // A second delta of zero is representable but invalid.
    let mut bytes = vec![ENCODING_XOR, 2, 0];
    bytes.push(2); // zigzag(1)
    bytes.extend_from_slice(&1.0f64.to_bits().to_be_bytes());
    bytes.push(0); // delta 0
    bytes.push(0); // value unchanged + padding
    match ChunkData::from_bytes(Arc::from(bytes), None) {
        Err(ChunkError::NonIncreasingTimestamp {
            sample: 1,
            t: 1,
            prev: 1,
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn iterator_reports_error_after_none() {
    let s: Vec<(i64, f64)> = (0..20).map(|i| (i * 1000, i as f64 * 1.5)).collect();
    let mut c = encode(&s);
    let all = c.bytes();
    let bytes = &all[..all.len() - 4];
    let mut it = XorIter::new(bytes, 20);
    let n = it.by_ref().count();
    assert!(n < 20);
    assert!(matches!(it.err(), Some(ChunkError::Truncated { .. })));
    assert_eq!(it.next(), None);
    let e = it.err().unwrap();
    assert!(e.to_string().contains("bit"), "{e}");
}

/// The fast decode path must agree with the checked path on every input, valid or not:
/// same samples, same error.
#[test]
fn fast_path_agrees_with_checked_path_on_damaged_data() {
    let mut next = xorshift(0x2545_f491_4f6c_dd1du64);
    let mut base = Vec::new();
    for k in 0..20 {
        let mut c = XorChunk::new();
        let mut t = 1_700_000_000_000i64;
        let mut v = 100.0f64;
        for i in 0..120 {
            t += 15_000
                + if next().is_multiple_of(10) {
                    (next() % 50) as i64 - 25
                } else {
                    0
                };
            v = match k % 4 {
                0 => v + (next() % 1000) as f64,
                1 => (v + (next() % 100) as f64 / 10.0 - 5.0).abs(),
                2 => f64::from_bits(next()),
                _ => v + if i % 10 == 0 { 1.0 } else { 0.0 },
            };
            c.append(t, v);
        }
        base.push(c.bytes().to_vec());
    }
    let mut cases = 0;
    for b in &base {
        for _ in 0..200 {
            let mut d = b.clone();
            match next() % 3 {
                0 => {
                    let i = 3 + (next() as usize) % (d.len() - 3);
                    d[i] ^= 1 << (next() % 8);
                }
                1 => {
                    let n = 3 + (next() as usize) % (d.len() - 3);
                    d.truncate(n);
                }
                _ => {
                    for _ in 0..4 {
                        let i = 3 + (next() as usize) % (d.len() - 3);
                        d[i] = next() as u8;
                    }
                }
            }
            let total = if next().is_multiple_of(4) {
                (next() % 200) as usize
            } else {
                120
            };
            let (want, want_err) = decode::decode_checked_only(&d, total);
            let mut it = XorIter::new(&d, total);
            let got: Vec<Sample> = it.by_ref().collect();
            assert_eq!(got.len(), want.len());
            assert!(got.iter().zip(&want).all(|(a, b)| a.bit_eq(b)));
            assert_eq!(it.err(), want_err);
            // The batched decoder agrees too, whatever the batch size, and reports the
            // error only once every good sample was returned.
            let size = [1, 5, 16, 64, 300][(next() % 5) as usize];
            let mut it = XorIter::new(&d, total);
            let batched = collect_batches(&mut it, size);
            assert_eq!(batched.len(), want.len());
            assert!(batched.iter().zip(&want).all(|(a, b)| a.bit_eq(b)));
            assert_eq!(it.err(), want_err);
            assert_eq!(it.next_batch(&mut [Sample::new(0, 0.0); 4]), 0);
            cases += 1;
        }
    }
    assert_eq!(cases, 4000);
}

/// Every truncation of chunks of each kind (steady and jittery integers, few-digit and
/// full-precision floats, integer and fractional constants, runs of unchanged fractional
/// values, ...): the batched decoder, which reads the last bytes differently from the
/// rest, returns exactly the samples the checked path decodes before the data ends, then
/// the same error.
#[test]
fn batched_decoding_of_every_truncation_matches_the_checked_path() {
    let mut next = xorshift(0x9e37_79b9_7f4a_7c15u64);
    for kind in 0..10 {
        let mut c = XorChunk::new();
        // Kind 6 starts at 0 with 1 ms steps, so that its first samples fit in fewer
        // than 8 bytes and the loops meet data that short.
        let (mut t, mut v) = if kind == 6 {
            (0i64, 0.0f64)
        } else {
            (1_700_000_000_000i64, 50.0f64)
        };
        for i in 0..120 {
            t += match kind {
                6 => 1,
                // Jumps in every timestamp bucket, the 64-bit one included.
                7 => 15_000 + [0, 50, 5_000, 300_000, 40_000_000][(next() % 5) as usize],
                _ => {
                    15_000
                        + if next().is_multiple_of(8) {
                            (next() % 30) as i64
                        } else {
                            0
                        }
                }
            };
            v = match kind {
                0 => v + 600.0,
                6 => v + 1.0,
                // Integer steps in every value bucket, up to the 64-bit one.
                7 => v + [1.0, 100.0, 3e4, 3e9, 1e15][(next() % 5) as usize],
                1 => v + (next() % 700) as f64,
                2 => ((v + (next() % 40) as f64 / 10.0 - 2.0).abs() * 10.0).round() / 10.0,
                3 => v + (next() % 1000) as f64 / 1e5,
                4 => v,
                // Runs of unchanged values in XOR chunks: a fractional constant, and a
                // fractional value that changes every few samples.
                8 => 50.5,
                9 => v + if i % 5 == 0 { 0.25 } else { 0.0 },
                _ => {
                    if i % 7 == 0 {
                        f64::from_bits(next())
                    } else {
                        v + 0.5
                    }
                }
            };
            c.append(t, v);
        }
        let full = c.bytes().to_vec();
        for len in 0..=full.len() {
            let d = &full[..len];
            let (want, want_err) = decode::decode_checked_only(d, 120);
            for size in [1, 7, 120] {
                let mut it = XorIter::new(d, 120);
                let got = collect_batches(&mut it, size);
                assert_eq!(
                    got.len(),
                    want.len(),
                    "kind {kind}, {len} bytes, batch {size}"
                );
                assert!(got.iter().zip(&want).all(|(a, b)| a.bit_eq(b)));
                assert_eq!(it.err(), want_err, "kind {kind}, {len} bytes");
            }
            if len == full.len() {
                assert_eq!(want.len(), 120);
                assert_eq!(want_err, None);
            }
        }
    }
}

#[test]
fn integer_values_use_the_integer_encoding() {
    let mut s = Vec::new();
    let mut v = 2_733_257.0;
    for i in 0..120i64 {
        s.push((1_700_000_000_000 + i * 15_000, v));
        v += (600 + (i * 37) % 300) as f64;
    }
    assert_roundtrip(&s);
    let mut c = encode(&s);
    assert_eq!(c.bytes()[0], ENCODING_INT);
    // Value delta-of-deltas within +-150 take 14 bits at most; XOR takes more.
    assert!(c.bytes().len() < 120 * 2, "{}", c.bytes().len());
    let mut x = XorChunk::new();
    x.append(0, 0.5);
    for &(t, v) in &s {
        x.append(t, v);
    }
    assert_eq!(x.bytes()[0], ENCODING_XOR);
    assert!(c.bytes().len() < x.bytes().len());
}

#[test]
fn integer_extremes_round_trip() {
    let two63 = 9_223_372_036_854_775_808.0f64;
    assert_roundtrip(&[(1, two63), (2, -two63), (3, two63), (4, 0.0), (5, -two63)]);
    assert_roundtrip(&[
        (1, 9_007_199_254_740_992.0),
        (2, -9_007_199_254_740_992.0),
        (3, 1.0),
    ]);
    let big: Vec<(i64, f64)> = (0..120)
        .map(|i| {
            (
                i,
                if i % 2 == 0 {
                    (1i64 << 62) as f64
                } else {
                    -((1i64 << 61) as f64)
                },
            )
        })
        .collect();
    assert_roundtrip(&big);
    assert_eq!(encode(&big).bytes()[0], ENCODING_INT);
    // Every bucket boundary of the value delta-of-delta.
    let mut vals = vec![0i64, 0];
    let mut d = 0i64;
    for dod in [
        0i64,
        7,
        -8,
        8,
        -9,
        127,
        -128,
        128,
        -129,
        2047,
        -2048,
        2048,
        -2049,
        32767,
        -32768,
        32768,
        -32769,
        (1 << 31) - 1,
        -(1 << 31),
        1 << 31,
        -(1 << 31) - 1,
        1 << 40,
        0,
    ] {
        d += dod;
        vals.push(vals.last().unwrap() + d);
    }
    let s: Vec<(i64, f64)> = vals
        .iter()
        .enumerate()
        .map(|(i, &v)| (i as i64, v as f64))
        .collect();
    assert_roundtrip(&s);
    assert_eq!(encode(&s).bytes()[0], ENCODING_INT);
}

#[test]
fn wide_integer_samples_among_narrow_ones() {
    // Every tenth sample has a 20-bit timestamp bucket and a 32-bit value bucket (62
    // bits), more than the batched integer loop takes per sample; the samples around it
    // are narrow and decoded by that loop again.
    // The interval and the value's slope change at once, so the sample after a wide one
    // has a zero timestamp delta-of-delta and a narrow value bucket.
    let mut t = 1_700_000_000_000i64;
    let mut v = 1_000i64;
    let mut slope = 600i64;
    let s: Vec<(i64, f64)> = (0..120)
        .map(|i| {
            if i % 10 == 5 {
                slope = if slope == 600 { 1 << 30 } else { 600 };
            }
            t += if slope == 600 { 15_000 } else { 315_000 };
            v += slope + (i % 3) * 1_000;
            (t, v as f64)
        })
        .collect();
    assert_roundtrip(&s);
    assert_eq!(encode(&s).bytes()[0], ENCODING_INT);
}

#[test]
fn non_integer_value_switches_to_xor() {
    for odd in [
        0.5,
        -0.0,
        f64::NAN,
        STALE_NAN,
        f64::INFINITY,
        1e300,
        f64::from_bits(1),
    ] {
        for at in [0usize, 1, 2, 60, 119] {
            let mut s: Vec<(i64, f64)> = (0..120)
                .map(|i| (i as i64 * 1000, (i * 3) as f64))
                .collect();
            s[at].1 = odd;
            assert_roundtrip(&s);
            let mut c = encode(&s);
            assert_eq!(c.bytes()[0], ENCODING_XOR, "{odd:?} at {at}");
            // Before the odd value the chunk was still integer-encoded.
            if at > 0 {
                assert_eq!(encode(&s[..at]).bytes()[0], ENCODING_INT);
            }
        }
    }
}

#[test]
fn reset_chunk_encodes_like_a_new_one() {
    // XOR mode, then integers, then XOR again: each encoding starts afresh.
    let xor = [(1, 1.5), (2, 2.25), (4, -0.0), (9, f64::NAN)];
    let ints = [(10, 3.0), (20, 5.0), (30, 7.0)];
    let mut c = encode(&xor);
    for next in [&ints[..], &xor[..], &[]] {
        c.reset();
        assert_eq!(c.num_samples(), 0);
        assert_eq!((c.min_time(), c.max_time()), (None, None));
        for &(t, v) in next {
            c.append(t, v);
        }
        assert_eq!(c.bytes(), encode(next).bytes());
        let got: Vec<Sample> = c.iter().collect();
        assert_eq!(got.len(), next.len());
        assert!(got
            .iter()
            .zip(next)
            .all(|(g, &(t, v))| g.bit_eq(&Sample::new(t, v))));
    }
}
