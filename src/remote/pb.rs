//! A minimal zero-copy protobuf reader for the hot path of the remote write receiver:
//! strings and nested messages are borrowed from the decompressed body instead of being
//! copied into owned `String`s and `Vec`s as a derived decoder would.

/// Why a protobuf message could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PbError {
    /// The message ends inside a field.
    #[error("protobuf: unexpected end of message")]
    Truncated,
    /// A varint is longer than 10 bytes.
    #[error("protobuf: varint overflow")]
    VarintOverflow,
    /// A wire type this reader does not accept (groups or an unknown value).
    #[error("protobuf: unsupported wire type {0}")]
    WireType(u8),
    /// A field has a wire type its schema does not allow.
    #[error("protobuf: field {field} has wire type {wire_type}, expected {expected}")]
    WrongType {
        /// Field number.
        field: u32,
        /// Wire type found.
        wire_type: u8,
        /// Wire type expected.
        expected: u8,
    },
    /// A string field is not valid UTF-8.
    #[error("protobuf: string field {0} is not valid UTF-8")]
    Utf8(u32),
}

/// Wire type of varints.
pub const VARINT: u8 = 0;
/// Wire type of 64-bit fixed-width values (`double`, `fixed64`).
pub const FIXED64: u8 = 1;
/// Wire type of length-delimited values (strings, bytes, messages).
pub const LEN: u8 = 2;
/// Wire type of 32-bit fixed-width values.
pub const FIXED32: u8 = 5;

/// Reads the fields of one message in order.
#[derive(Debug, Clone, Copy)]
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over the encoded message `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    /// The next field's number and wire type, or `None` at the end of the message.
    #[inline]
    pub fn key(&mut self) -> Result<Option<(u32, u8)>, PbError> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let k = self.varint()?;
        let wire_type = (k & 7) as u8;
        let field = u32::try_from(k >> 3).map_err(|_| PbError::VarintOverflow)?;
        Ok(Some((field, wire_type)))
    }

    /// A varint.
    #[inline]
    pub fn varint(&mut self) -> Result<u64, PbError> {
        let mut x = 0u64;
        for (i, &b) in self.buf.iter().enumerate().take(10) {
            x |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                self.buf = self.buf.get(i + 1..).unwrap_or_default();
                return Ok(x);
            }
        }
        if self.buf.len() >= 10 {
            Err(PbError::VarintOverflow)
        } else {
            Err(PbError::Truncated)
        }
    }

    /// A little-endian 64-bit value.
    #[inline]
    pub fn fixed64(&mut self) -> Result<u64, PbError> {
        let (head, rest) = self
            .buf
            .split_first_chunk::<8>()
            .ok_or(PbError::Truncated)?;
        self.buf = rest;
        Ok(u64::from_le_bytes(*head))
    }

    /// A length-delimited value.
    #[inline]
    pub fn bytes(&mut self) -> Result<&'a [u8], PbError> {
        let n = usize::try_from(self.varint()?).map_err(|_| PbError::Truncated)?;
        if n > self.buf.len() {
            return Err(PbError::Truncated);
        }
        let (v, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(v)
    }

    /// A length-delimited value of field `field`, checked to be UTF-8.
    #[inline]
    pub fn str(&mut self, field: u32) -> Result<&'a str, PbError> {
        std::str::from_utf8(self.bytes()?).map_err(|_| PbError::Utf8(field))
    }

    /// Skips a value of wire type `wire_type`.
    pub fn skip(&mut self, wire_type: u8) -> Result<(), PbError> {
        match wire_type {
            VARINT => self.varint().map(|_| ()),
            FIXED64 => self.fixed64().map(|_| ()),
            LEN => self.bytes().map(|_| ()),
            FIXED32 => {
                let rest = self.buf.get(4..).ok_or(PbError::Truncated)?;
                self.buf = rest;
                Ok(())
            }
            other => Err(PbError::WireType(other)),
        }
    }
}

/// Checks that `field` has wire type `expected`.
#[inline]
pub fn expect(field: u32, wire_type: u8, expected: u8) -> Result<(), PbError> {
    if wire_type == expected {
        Ok(())
    } else {
        Err(PbError::WrongType {
            field,
            wire_type,
            expected,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_prost_writes() {
        use crate::remote::proto::{Label, Sample};
        use prost::Message;
        let l = Label {
            name: "job".into(),
            value: "ä".into(),
        }
        .encode_to_vec();
        let mut r = Reader::new(&l);
        assert_eq!(r.key().unwrap(), Some((1, LEN)));
        assert_eq!(r.str(1).unwrap(), "job");
        assert_eq!(r.key().unwrap(), Some((2, LEN)));
        assert_eq!(r.str(2).unwrap(), "ä");
        assert_eq!(r.key().unwrap(), None);
        let s = Sample {
            value: -1.5,
            timestamp: -7,
        }
        .encode_to_vec();
        let mut r = Reader::new(&s);
        assert_eq!(r.key().unwrap(), Some((1, FIXED64)));
        assert_eq!(f64::from_bits(r.fixed64().unwrap()), -1.5);
        assert_eq!(r.key().unwrap(), Some((2, VARINT)));
        assert_eq!(r.varint().unwrap() as i64, -7);
    }

    #[test]
    fn bad_input_is_an_error() {
        assert_eq!(Reader::new(&[0x80]).varint(), Err(PbError::Truncated));
        assert_eq!(
            Reader::new(&[0xff; 11]).varint(),
            Err(PbError::VarintOverflow)
        );
        assert_eq!(Reader::new(&[0x0a, 5, b'a']).key().map(|_| ()), Ok(()));
        let mut r = Reader::new(&[0x0a, 5, b'a']);
        r.key().unwrap();
        assert_eq!(r.bytes(), Err(PbError::Truncated));
        let mut r = Reader::new(&[0x0a, 1, 0xff]);
        r.key().unwrap();
        assert_eq!(r.str(1), Err(PbError::Utf8(1)));
        assert_eq!(Reader::new(&[0x0b]).key().map(|_| ()), Ok(()));
        assert_eq!(Reader::new(&[]).skip(3), Err(PbError::WireType(3)));
    }
}
