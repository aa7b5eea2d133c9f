//! Reads a file in pieces that end at line boundaries, with a bounded buffer.

use std::fs::File;
use std::io::{self, Read};

/// Initial buffer size: each read asks for this much.
const READ_SIZE: usize = 4 << 20;

/// Longest accepted line; a longer one is an error rather than unbounded memory.
pub(crate) const MAX_LINE: usize = 256 << 20;

/// Yields consecutive pieces of a file, each made of whole lines (the last piece may
/// end without a newline).
pub(crate) struct PieceReader {
    file: File,
    buf: Vec<u8>,
    /// Bytes of `buf` holding data.
    filled: usize,
    /// Length of the current piece (a prefix of `buf`).
    piece: usize,
    eof: bool,
    /// Bytes handed out in pieces so far.
    consumed: u64,
}

impl PieceReader {
    pub(crate) fn new(file: File) -> Self {
        PieceReader {
            file,
            buf: vec![0; READ_SIZE],
            filled: 0,
            piece: 0,
            eof: false,
            consumed: 0,
        }
    }

    /// Bytes handed out so far (the end offset of the current piece).
    pub(crate) fn consumed(&self) -> u64 {
        self.consumed
    }

    /// Advances to the next piece. Returns `None` at the end of the file.
    pub(crate) fn next_piece(&mut self) -> io::Result<Option<(&[u8], bool)>> {
        // Drop the previous piece, keeping the partial line after it.
        self.buf.copy_within(self.piece..self.filled, 0);
        self.filled -= self.piece;
        self.piece = 0;
        loop {
            if !self.eof && self.filled < self.buf.len() {
                let n = loop {
                    match self
                        .file
                        .read(self.buf.get_mut(self.filled..).unwrap_or(&mut []))
                    {
                        Ok(n) => break n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(e),
                    }
                };
                if n == 0 {
                    self.eof = true;
                } else {
                    self.filled += n;
                }
            }
            let data = self.buf.get(..self.filled).unwrap_or(&[]);
            if self.eof {
                if self.filled == 0 {
                    return Ok(None);
                }
                self.piece = self.filled;
                break;
            }
            if self.filled == self.buf.len() {
                match memchr::memrchr(b'\n', data) {
                    Some(i) => {
                        self.piece = i + 1;
                        break;
                    }
                    None => {
                        if self.buf.len() >= MAX_LINE {
                            return Err(io::Error::new(
                                io::ErrorKind::InvalidData,
                                format!("a line is longer than {MAX_LINE} bytes"),
                            ));
                        }
                        let len = self.buf.len() * 2;
                        self.buf.resize(len, 0);
                    }
                }
            }
        }
        self.consumed += self.piece as u64;
        let is_last = self.eof && self.piece == self.filled;
        Ok(Some((self.buf.get(..self.piece).unwrap_or(&[]), is_last)))
    }
}
