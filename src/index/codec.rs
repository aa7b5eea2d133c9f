//! Checked little-endian and varint decoding for on-disk sections, with byte offsets for
//! error messages.

use crate::encoding::varint::{get_uvarint, get_varint};

use super::IndexError;

/// A read position in untrusted bytes. `base` is the file offset of `buf[0]`.
#[derive(Debug, Clone)]
pub(crate) struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
    base: u64,
    section: &'static str,
}

impl<'a> Decoder<'a> {
    pub(crate) fn new(buf: &'a [u8], base: u64, section: &'static str) -> Self {
        Decoder {
            buf,
            pos: 0,
            base,
            section,
        }
    }

    /// File offset of the next byte.
    pub(crate) fn offset(&self) -> u64 {
        self.base.saturating_add(self.pos as u64)
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    pub(crate) fn err(&self, reason: impl Into<String>) -> IndexError {
        self.err_at(self.offset(), reason)
    }

    pub(crate) fn err_at(&self, offset: u64, reason: impl Into<String>) -> IndexError {
        IndexError::Corrupt {
            section: self.section,
            offset,
            reason: reason.into(),
        }
    }

    pub(crate) fn uvarint(&mut self) -> Result<u64, IndexError> {
        let rest = self.buf.get(self.pos..).unwrap_or(&[]);
        let (v, n) = get_uvarint(rest).map_err(|e| self.err(e.to_string()))?;
        self.pos += n;
        Ok(v)
    }

    pub(crate) fn varint(&mut self) -> Result<i64, IndexError> {
        let rest = self.buf.get(self.pos..).unwrap_or(&[]);
        let (v, n) = get_varint(rest).map_err(|e| self.err(e.to_string()))?;
        self.pos += n;
        Ok(v)
    }

    /// A uvarint that must fit in `u32`.
    pub(crate) fn uvarint32(&mut self) -> Result<u32, IndexError> {
        let at = self.offset();
        let v = self.uvarint()?;
        u32::try_from(v).map_err(|_| self.err_at(at, format!("value {v} exceeds 32 bits")))
    }

    /// A count of items that each take at least `min_item_bytes`: rejected when the rest
    /// of the buffer could not hold them (so corrupt counts never drive allocations).
    pub(crate) fn count(&mut self, min_item_bytes: usize) -> Result<usize, IndexError> {
        let at = self.offset();
        let v = self.uvarint()?;
        let fits = usize::try_from(v)
            .ok()
            .filter(|&n| n.saturating_mul(min_item_bytes.max(1)) <= self.remaining());
        fits.ok_or_else(|| {
            self.err_at(
                at,
                format!("count {v} exceeds the {} bytes left", self.remaining()),
            )
        })
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], IndexError> {
        let end = self.pos.checked_add(n);
        match end.and_then(|e| self.buf.get(self.pos..e)) {
            Some(b) => {
                self.pos += n;
                Ok(b)
            }
            None => Err(self.err(format!("{n} bytes needed, {} left", self.remaining()))),
        }
    }

    pub(crate) fn u32_le(&mut self) -> Result<u32, IndexError> {
        let b = self.bytes(4)?;
        let mut a = [0u8; 4];
        a.copy_from_slice(b);
        Ok(u32::from_le_bytes(a))
    }

    pub(crate) fn u64_le(&mut self) -> Result<u64, IndexError> {
        let b = self.bytes(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
}

/// Reads the section framed as `len:u32 body crc32(body):u32` starting at `start` of
/// `file`, verifying bounds and CRC; returns the body's byte range in `file`.
pub(crate) fn framed_section(
    file: &[u8],
    start: usize,
    section: &'static str,
) -> Result<std::ops::Range<usize>, IndexError> {
    let mut d = Decoder::new(file.get(start..).unwrap_or(&[]), start as u64, section);
    let len = d.u32_le()? as usize;
    let body_start = start.saturating_add(4);
    let body = d.bytes(len).map_err(|_| {
        d.err_at(
            start as u64,
            format!("section length {len} runs past the end of the file"),
        )
    })?;
    let stored = d.u32_le().map_err(|_| {
        d.err_at(
            start as u64,
            format!("section length {len} leaves no room for the checksum"),
        )
    })?;
    let actual = crc32fast::hash(body);
    if stored != actual {
        return Err(d.err_at(
            start as u64,
            format!("checksum mismatch: stored {stored:#010x}, computed {actual:#010x}"),
        ));
    }
    Ok(body_start..body_start + len)
}

/// Appends `len:u32 body crc32(body):u32` to `out`.
pub(crate) fn put_framed(out: &mut Vec<u8>, body: &[u8]) -> Result<(), IndexError> {
    let len = u32::try_from(body.len())
        .map_err(|_| IndexError::InvalidInput(format!("section of {} bytes", body.len())))?;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(body);
    out.extend_from_slice(&crc32fast::hash(body).to_le_bytes());
    Ok(())
}
