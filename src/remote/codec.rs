//! Encoding and decoding of remote storage bodies: protobuf inside snappy's
//! block format (not the framed format), as Prometheus sends them.

use prost::Message;

/// Why a remote storage body could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The body is not valid snappy block data.
    #[error("snappy decode: {0}")]
    Snappy(#[from] snap::Error),
    /// The decompressed body is not a valid protobuf message.
    #[error("protobuf decode: {0}")]
    Protobuf(#[from] prost::DecodeError),
    /// The body claims to decompress to more than the allowed size.
    #[error("decompressed body of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Decompressed size announced by the snappy header.
        size: usize,
        /// The limit.
        limit: usize,
    },
}

/// Decompresses a snappy block and decodes the protobuf message inside.
///
/// `max_decoded` bounds the decompressed size, which snappy announces up
/// front, so a small hostile body cannot make us allocate gigabytes.
pub fn decode<M: Message + Default>(body: &[u8], max_decoded: usize) -> Result<M, CodecError> {
    let size = snap::raw::decompress_len(body)?;
    if size > max_decoded {
        return Err(CodecError::TooLarge {
            size,
            limit: max_decoded,
        });
    }
    let raw = snap::raw::Decoder::new().decompress_vec(body)?;
    // Decoding from `Bytes` lets `Bytes` fields share the buffer instead of copying.
    Ok(M::decode(prost::bytes::Bytes::from(raw))?)
}

/// Encodes a protobuf message and compresses it as a snappy block.
pub fn encode<M: Message>(msg: &M) -> Vec<u8> {
    let raw = msg.encode_to_vec();
    // Compressing a buffer we built ourselves only fails for inputs over
    // snappy's 4 GiB limit; fall back to an empty body in that impossible case
    // rather than panicking.
    snap::raw::Encoder::new()
        .compress_vec(&raw)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote::proto::{Label, Sample, TimeSeries, WriteRequest};

    #[test]
    fn write_request_round_trips() {
        let req = WriteRequest {
            timeseries: vec![TimeSeries {
                labels: vec![Label {
                    name: "__name__".into(),
                    value: "up".into(),
                }],
                samples: vec![Sample {
                    value: f64::from_bits(0x7ff0_0000_0000_0002),
                    timestamp: 1_700_000_000_000,
                }],
                exemplars: vec![],
                histograms: vec![],
            }],
            metadata: vec![],
        };
        let body = encode(&req);
        let back: WriteRequest = decode(&body, 1 << 20).expect("decodes");
        assert_eq!(back.timeseries[0].labels, req.timeseries[0].labels);
        assert_eq!(
            back.timeseries[0].samples[0].value.to_bits(),
            0x7ff0_0000_0000_0002
        );
    }

    #[test]
    fn garbage_and_oversized_bodies_are_errors() {
        assert!(decode::<WriteRequest>(b"\xff\xff\xff\xff\xff", 1 << 20).is_err());
        let big = encode(&WriteRequest {
            timeseries: vec![TimeSeries {
                labels: vec![Label {
                    name: "a".into(),
                    value: "x".repeat(4096),
                }],
                samples: vec![],
                exemplars: vec![],
                histograms: vec![],
            }],
            metadata: vec![],
        });
        assert!(matches!(
            decode::<WriteRequest>(&big, 1024),
            Err(CodecError::TooLarge { .. })
        ));
    }
}
