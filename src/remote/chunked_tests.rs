use super::*;

/// A reader of Prometheus's XOR chunks written from the format's description (as Go's
/// `xorIterator` reads them), to check the encoder.
struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Bits<'_> {
    fn bit(&mut self) -> u64 {
        let b = self.data[self.pos / 8] >> (7 - self.pos % 8) & 1;
        self.pos += 1;
        u64::from(b)
    }
    fn bits(&mut self, n: u32) -> u64 {
        (0..n).fold(0, |acc, _| (acc << 1) | self.bit())
    }
    fn uvarint(&mut self) -> u64 {
        let mut x = 0u64;
        for i in 0.. {
            let b = self.bits(8);
            x |= (b & 0x7f) << (7 * i);
            if b < 0x80 {
                break;
            }
        }
        x
    }
}

fn decode(chunk: &[u8]) -> Vec<(i64, u64)> {
    let n = u16::from_be_bytes([chunk[0], chunk[1]]) as usize;
    let mut r = Bits {
        data: &chunk[2..],
        pos: 0,
    };
    let mut out = Vec::new();
    let (mut t, mut delta, mut v) = (0i64, 0i64, 0u64);
    let (mut leading, mut trailing) = (0u32, 0u32);
    for i in 0..n {
        if i == 0 {
            let z = r.uvarint();
            t = ((z >> 1) as i64) ^ -((z & 1) as i64);
            v = r.bits(64);
            out.push((t, v));
            continue;
        }
        if i == 1 {
            delta = r.uvarint() as i64;
        } else {
            let mut prefix = 0;
            for _ in 0..4 {
                if r.bit() == 0 {
                    break;
                }
                prefix += 1;
            }
            let sz = [0, 14, 17, 20, 64][prefix];
            let mut dod = 0i64;
            if sz == 64 {
                dod = r.bits(64) as i64;
            } else if sz > 0 {
                let mut b = r.bits(sz) as i64;
                if b > 1 << (sz - 1) {
                    b -= 1 << sz;
                }
                dod = b;
            }
            delta += dod;
        }
        t += delta;
        if r.bit() == 1 {
            if r.bit() == 1 {
                leading = r.bits(5) as u32;
                let mut m = r.bits(6) as u32;
                if m == 0 {
                    m = 64;
                }
                trailing = 64 - leading - m;
            }
            let m = 64 - leading - trailing;
            v ^= r.bits(m) << trailing;
        }
        out.push((t, v));
    }
    out
}

#[test]
fn crc32c_known_value() {
    // The check value of CRC-32C.
    assert_eq!(crc32c(b"123456789"), 0xe306_9283);
}

#[test]
fn one_sample_chunk_bytes() {
    let c = xor_chunk(&[Sample::new(1000, 1.0)]);
    assert_eq!(c, vec![0, 1, 0xd0, 0x0f, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0]);
}

#[test]
fn chunks_round_trip_through_every_bucket() {
    // Deltas of deltas on both sides of each bucket's bounds, odd values, NaN, the
    // staleness marker, negative timestamps.
    let dods = [
        0i64,
        1,
        -1,
        8192,
        -8191,
        -8192,
        8193,
        65536,
        -65535,
        -65536,
        65537,
        524288,
        -524287,
        -524288,
        524289,
        1 << 40,
        -(1 << 40),
        0,
        0,
    ];
    let values = [
        1.0,
        1.0,
        2.5,
        -0.0,
        f64::NAN,
        f64::from_bits(0x7ff0_0000_0000_0002),
        f64::INFINITY,
        1e-300,
        123456.789,
        123456.7891,
        0.1,
        0.2,
        0.3,
        f64::MIN_POSITIVE,
        f64::MAX,
        -5.0,
        7.0,
        7.0,
        8.0,
        9.0,
    ];
    let mut t = -5_000i64;
    let mut delta = 15_000i64;
    let mut samples = vec![Sample::new(t, values[0])];
    for (i, d) in dods.iter().enumerate() {
        delta += d;
        t += delta;
        samples.push(Sample::new(t, values[(i + 1) % values.len()]));
    }
    let got = decode(&xor_chunk(&samples));
    let want: Vec<(i64, u64)> = samples.iter().map(|s| (s.t, s.v.to_bits())).collect();
    assert_eq!(got, want);
}

#[test]
fn frames_carry_length_checksum_and_message() {
    let mut out = Vec::new();
    let samples: Vec<Sample> = (0..250).map(|i| Sample::new(i * 1000, i as f64)).collect();
    let labels = vec![Label {
        name: "__name__".into(),
        value: "x".into(),
    }];
    push_series(&mut out, 3, labels.clone(), &samples);
    // one frame: uvarint length, big-endian CRC-32C, message
    let len = prost::encoding::decode_varint(&mut out.as_slice()).unwrap() as usize;
    let head = out.len() - len - 4;
    let crc = u32::from_be_bytes(out[head..head + 4].try_into().unwrap());
    let msg = &out[head + 4..];
    assert_eq!(crc, crc32c(msg));
    let m: ChunkedReadResponse = prost::Message::decode(msg).unwrap();
    assert_eq!(m.query_index, 3);
    let s = &m.chunked_series[0];
    assert_eq!(s.labels, labels);
    assert_eq!(s.chunks.len(), 3);
    assert_eq!(s.chunks[1].min_time_ms, 120_000);
    assert_eq!(s.chunks[1].max_time_ms, 239_000);
    let all: Vec<(i64, u64)> = s.chunks.iter().flat_map(|c| decode(&c.data)).collect();
    assert_eq!(all.len(), 250);
    assert_eq!(all[249], (249_000, 249f64.to_bits()));
}
