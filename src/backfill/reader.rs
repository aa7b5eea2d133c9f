//! Reads a file in pieces that end at line boundaries, with a bounded buffer.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};

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
    /// Bytes still to read (the end of the range).
    left: u64,
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
            left: u64::MAX,
        }
    }

    /// A reader of bytes `[start, end)` of `file`.
    pub(crate) fn range(mut file: File, start: u64, end: u64) -> io::Result<Self> {
        file.seek(SeekFrom::Start(start))?;
        let mut r = Self::new(file);
        r.left = end.saturating_sub(start);
        Ok(r)
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
                let room = self.buf.len() - self.filled;
                let want = room.min(usize::try_from(self.left).unwrap_or(usize::MAX));
                let n = loop {
                    let dst = self
                        .buf
                        .get_mut(self.filled..self.filled + want)
                        .unwrap_or(&mut []);
                    if dst.is_empty() {
                        break 0;
                    }
                    match self.file.read(dst) {
                        Ok(n) => break n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(e),
                    }
                };
                if n == 0 {
                    self.eof = true;
                } else {
                    self.filled += n;
                    self.left -= n as u64;
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

/// The offset just after the first newline at or after `from` (the start of the next
/// line), or `None` when there is none.
pub(crate) fn next_line_start(file: &mut File, from: u64) -> io::Result<Option<u64>> {
    file.seek(SeekFrom::Start(from))?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut at = from;
    loop {
        let n = match file.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if n == 0 {
            return Ok(None);
        }
        if let Some(i) = memchr::memchr(b'\n', buf.get(..n).unwrap_or(&[])) {
            return Ok(Some(at + i as u64 + 1));
        }
        at += n as u64;
    }
}
