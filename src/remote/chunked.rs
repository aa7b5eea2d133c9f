//! The `STREAMED_XOR_CHUNKS` remote read response: a stream of frames, each
//! `uvarint(len) + CRC-32C(msg) (big-endian) + msg` where `msg` is a
//! `prometheus.ChunkedReadResponse` holding one series and its samples as XOR chunks in
//! Prometheus's chunk encoding (which differs from Aion's own on-disk chunks, so the
//! samples are re-encoded here).

use prost::encoding::encode_varint;

use crate::encoding::BitWriter;
use crate::model::Sample;

use super::proto::Label;
pub use super::proto::{Chunk, ChunkEncoding, ChunkedReadResponse, ChunkedSeries};

/// Content type of a streamed chunked read response.
pub const CONTENT_TYPE: &str =
    "application/x-streamed-protobuf; proto=prometheus.ChunkedReadResponse";

/// Samples per chunk, as Prometheus cuts them.
const SAMPLES_PER_CHUNK: usize = 120;

/// CRC-32 with the Castagnoli polynomial (Go's `crc32.MakeTable(crc32.Castagnoli)`),
/// the checksum of each frame.
pub fn crc32c(data: &[u8]) -> u32 {
    ::crc32c::crc32c(data)
}

/// Appends one frame holding `msg`.
pub fn push_frame(out: &mut Vec<u8>, msg: &[u8]) {
    encode_varint(msg.len() as u64, out);
    out.extend_from_slice(&crc32c(msg).to_be_bytes());
    out.extend_from_slice(msg);
}

/// Whether `x` fits the `nbits` delta-of-delta bucket of Prometheus's XOR chunks.
fn bit_range(x: i64, nbits: u32) -> bool {
    let lim = 1i64 << (nbits - 1);
    -(lim - 1) <= x && x <= lim
}

/// Encodes samples as one Prometheus XOR chunk (at most 65,535 samples).
pub fn xor_chunk(samples: &[Sample]) -> Vec<u8> {
    let mut w = BitWriter::from_vec(vec![0, 0]);
    let (mut t_prev, mut delta_prev, mut v_prev) = (0i64, 0i64, 0u64);
    let (mut leading, mut trailing) = (0xffu32, 0u32);
    let mut buf = Vec::with_capacity(10);
    for (i, s) in samples.iter().enumerate() {
        let bits = s.v.to_bits();
        match i {
            0 => {
                buf.clear();
                encode_varint(((s.t << 1) ^ (s.t >> 63)) as u64, &mut buf);
                w.write_bytes(&buf);
                w.write_bits(bits, 64);
            }
            _ => {
                let delta = s.t.wrapping_sub(t_prev);
                if i == 1 {
                    buf.clear();
                    encode_varint(delta as u64, &mut buf);
                    w.write_bytes(&buf);
                } else {
                    let dod = delta.wrapping_sub(delta_prev);
                    if dod == 0 {
                        w.write_bit(false);
                    } else if bit_range(dod, 14) {
                        w.write_bits(0b10, 2);
                        w.write_bits(dod as u64, 14);
                    } else if bit_range(dod, 17) {
                        w.write_bits(0b110, 3);
                        w.write_bits(dod as u64, 17);
                    } else if bit_range(dod, 20) {
                        w.write_bits(0b1110, 4);
                        w.write_bits(dod as u64, 20);
                    } else {
                        w.write_bits(0b1111, 4);
                        w.write_bits(dod as u64, 64);
                    }
                }
                delta_prev = delta;
                let x = bits ^ v_prev;
                if x == 0 {
                    w.write_bit(false);
                } else {
                    w.write_bit(true);
                    let lz = x.leading_zeros().min(31);
                    let tz = x.trailing_zeros();
                    if leading != 0xff && lz >= leading && tz >= trailing {
                        w.write_bit(false);
                        w.write_bits(x >> trailing, 64 - leading - trailing);
                    } else {
                        leading = lz;
                        trailing = tz;
                        let sig = 64 - lz - tz;
                        w.write_bit(true);
                        w.write_bits(u64::from(lz), 5);
                        w.write_bits(u64::from(sig), 6);
                        w.write_bits(x >> tz, sig);
                    }
                }
            }
        }
        t_prev = s.t;
        v_prev = bits;
    }
    let mut out = w.into_bytes();
    let n = u16::try_from(samples.len()).unwrap_or(u16::MAX);
    if let Some(h) = out.get_mut(0..2) {
        h.copy_from_slice(&n.to_be_bytes());
    }
    out
}

/// Largest frame Prometheus sends by default (`--storage.remote.read-max-bytes-in-frame`);
/// a series with more chunks than fit is split over several frames.
pub const MAX_BYTES_IN_FRAME: usize = 1 << 20;

/// Appends the frames of one series: its labels and its samples cut into chunks of
/// 120, split over several frames when they exceed [`MAX_BYTES_IN_FRAME`].
pub fn push_series(out: &mut Vec<u8>, query_index: i64, labels: Vec<Label>, samples: &[Sample]) {
    let label_bytes: usize = labels
        .iter()
        .map(|l| l.name.len() + l.value.len() + 4)
        .sum();
    let budget = MAX_BYTES_IN_FRAME.saturating_sub(label_bytes);
    let mut chunks: Vec<Chunk> = Vec::new();
    let mut used = 0usize;
    let mut parts = samples.chunks(SAMPLES_PER_CHUNK).peekable();
    while let Some(c) = parts.next() {
        let (Some(first), Some(last)) = (c.first(), c.last()) else {
            continue;
        };
        let data = xor_chunk(c);
        used += data.len() + 16;
        chunks.push(Chunk {
            min_time_ms: first.t,
            max_time_ms: last.t,
            r#type: ChunkEncoding::Xor as i32,
            data,
        });
        if used >= budget || parts.peek().is_none() {
            let msg = ChunkedReadResponse {
                chunked_series: vec![ChunkedSeries {
                    labels: labels.clone(),
                    chunks: std::mem::take(&mut chunks),
                }],
                query_index,
            };
            push_frame(out, &prost::Message::encode_to_vec(&msg));
            used = 0;
        }
    }
}

#[cfg(test)]
#[path = "chunked_tests.rs"]
mod tests;
