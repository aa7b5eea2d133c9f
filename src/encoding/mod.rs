//! Byte-level codecs with no I/O: bit streams and variable-length integers.
//!
//! Everything here that reads takes untrusted bytes: reads are checked and return
//! `Option`/`Result` instead of panicking.

pub mod bitstream;
pub mod varint;

pub use bitstream::{BitCursor, BitReader, BitWriter};
