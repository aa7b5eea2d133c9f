//! Chunk segment files: `chunks/000001`, `chunks/000002`, ...
//!
//! ```text
//! segment := magic:"AIONCHK\x01"  record*
//! record  := len:uvarint  chunk[len]  crc32(chunk):u32
//! ```
//!
//! `chunk` is the encoded chunk as [`ChunkData::bytes`] returns it (its first byte is the
//! encoding). A chunk is addressed by `segment << 32 | offset of its record`.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::chunk::{checksum, ChunkData, HEADER_LEN};
use crate::encoding::varint::{get_uvarint, put_uvarint};
use crate::fsutil::{MappedFile, SharedBytes};
use crate::index::{chunk_ref, split_chunk_ref, ChunkMeta, ChunkRef};

use super::BlockError;

/// Magic bytes and version at the start of every segment file.
pub const SEGMENT_MAGIC: [u8; 8] = *b"AIONCHK\x01";

/// A segment file is cut before it would grow past this size.
pub const MAX_SEGMENT_SIZE: u64 = 512 * 1024 * 1024;

/// Section name of chunk data in corruption errors.
pub(crate) const SECTION: &str = "chunk";
/// Section name of a segment file's header in corruption errors.
pub(crate) const HEADER_SECTION: &str = "chunk segment header";

/// File name of segment `n` (1-based).
pub(crate) fn segment_name(n: u32) -> String {
    format!("{n:06}")
}

/// Writes chunks into consecutive segment files.
#[derive(Debug)]
pub(crate) struct ChunkWriter {
    dir: PathBuf,
    max_size: u64,
    seg: u32,
    file: Option<BufWriter<File>>,
    offset: u64,
    sizes: Vec<u64>,
    scratch: Vec<u8>,
}

impl ChunkWriter {
    /// Creates `dir` and starts writing.
    pub(crate) fn new(dir: &Path, max_size: u64) -> Result<ChunkWriter, BlockError> {
        fs::create_dir_all(dir).map_err(BlockError::io(dir))?;
        Ok(ChunkWriter {
            dir: dir.to_path_buf(),
            max_size,
            seg: 0,
            file: None,
            offset: 0,
            sizes: Vec::new(),
            scratch: Vec::new(),
        })
    }

    fn path(&self) -> PathBuf {
        self.dir.join(segment_name(self.seg))
    }

    fn close_segment(&mut self) -> Result<(), BlockError> {
        if let Some(w) = self.file.take() {
            let path = self.path();
            let f = w.into_inner().map_err(|e| BlockError::Io {
                path: path.clone(),
                source: e.into_error(),
            })?;
            f.sync_all().map_err(BlockError::io(&path))?;
            self.sizes.push(self.offset);
        }
        Ok(())
    }

    fn cut(&mut self) -> Result<(), BlockError> {
        self.close_segment()?;
        self.seg = self
            .seg
            .checked_add(1)
            .ok_or_else(|| BlockError::InvalidInput("too many chunk segments".into()))?;
        let path = self.path();
        let f = File::create(&path).map_err(BlockError::io(&path))?;
        let mut w = BufWriter::with_capacity(1 << 20, f);
        w.write_all(&SEGMENT_MAGIC).map_err(BlockError::io(&path))?;
        self.file = Some(w);
        self.offset = SEGMENT_MAGIC.len() as u64;
        Ok(())
    }

    /// Appends a chunk and returns its reference.
    pub(crate) fn write(&mut self, c: &ChunkData) -> Result<ChunkRef, BlockError> {
        let bytes = c.bytes();
        self.scratch.clear();
        put_uvarint(&mut self.scratch, bytes.len() as u64);
        let record = (self.scratch.len() + bytes.len() + 4) as u64;
        let header = SEGMENT_MAGIC.len() as u64;
        if self.file.is_none() || (self.offset > header && self.offset + record > self.max_size) {
            self.cut()?;
        }
        let offset = u32::try_from(self.offset)
            .map_err(|_| BlockError::InvalidInput("chunk segment too large".into()))?;
        let path = self.path();
        let Some(w) = self.file.as_mut() else {
            return Err(BlockError::InvalidInput("no open chunk segment".into()));
        };
        let io = BlockError::io(&path);
        let r = w
            .write_all(&self.scratch)
            .and_then(|()| w.write_all(bytes))
            .and_then(|()| w.write_all(&c.crc().to_le_bytes()));
        r.map_err(io)?;
        self.offset += record;
        Ok(chunk_ref(self.seg, offset))
    }

    /// Flushes and fsyncs the last segment; returns the size of every segment.
    pub(crate) fn finish(mut self) -> Result<Vec<u64>, BlockError> {
        self.close_segment()?;
        Ok(std::mem::take(&mut self.sizes))
    }
}

/// The mapped segment files of a block.
#[derive(Debug)]
pub(crate) struct ChunkReader {
    segments: Vec<(PathBuf, SharedBytes)>,
    /// One bit per chunk ordinal: set once the chunk decoded completely and matched the
    /// index. Later loads then only verify the CRC (which proves the bytes are the ones
    /// validated) instead of decoding the whole chunk twice per query.
    validated: Vec<AtomicU64>,
}

impl ChunkReader {
    /// Maps every segment in `dir`. Names must be `000001`, `000002`, ... without gaps;
    /// each must start with [`SEGMENT_MAGIC`].
    pub(crate) fn open(dir: &Path) -> Result<ChunkReader, BlockError> {
        let mut numbers = Vec::new();
        for entry in fs::read_dir(dir).map_err(BlockError::io(dir))? {
            let entry = entry.map_err(BlockError::io(dir))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let parsed = (name.len() == 6 && name.bytes().all(|b| b.is_ascii_digit()))
                .then(|| name.parse::<u32>().ok())
                .flatten();
            match parsed {
                Some(n) => numbers.push(n),
                // Not a segment name (an editor's backup, a file manager's index...):
                // segments are found by name, so it does not matter, as in Prometheus.
                None => log::warn!("ignoring {} (not a chunk segment)", entry.path().display()),
            }
        }
        numbers.sort_unstable();
        let mut segments = Vec::with_capacity(numbers.len());
        for (i, n) in numbers.into_iter().enumerate() {
            let path = dir.join(segment_name(n));
            if n as usize != i + 1 {
                let expected = u32::try_from(i + 1).unwrap_or(u32::MAX);
                return Err(BlockError::Corrupt {
                    path: dir.join(segment_name(expected)),
                    section: HEADER_SECTION,
                    offset: 0,
                    reason: format!("missing segment (segment {n} follows {i})"),
                });
            }
            let map = MappedFile::open(&path).map_err(BlockError::io(&path))?;
            if map.as_slice().get(..SEGMENT_MAGIC.len()) != Some(&SEGMENT_MAGIC[..]) {
                return Err(BlockError::Corrupt {
                    path,
                    section: HEADER_SECTION,
                    offset: 0,
                    reason: "bad magic or version".into(),
                });
            }
            segments.push((path, SharedBytes::from_mapped(Arc::new(map))));
        }
        Ok(ChunkReader {
            segments,
            validated: Vec::new(),
        })
    }

    /// Sizes the validation cache for `num_chunks` chunks.
    pub(crate) fn set_num_chunks(&mut self, num_chunks: u64) {
        let words = usize::try_from(num_chunks.div_ceil(64)).unwrap_or(0);
        self.validated = (0..words).map(|_| AtomicU64::new(0)).collect();
    }

    fn is_validated(&self, ordinal: u64) -> bool {
        let word = usize::try_from(ordinal / 64).ok();
        word.and_then(|w| self.validated.get(w))
            .is_some_and(|a| a.load(Ordering::Relaxed) & (1 << (ordinal % 64)) != 0)
    }

    fn mark_validated(&self, ordinal: u64) {
        let word = usize::try_from(ordinal / 64).ok();
        if let Some(a) = word.and_then(|w| self.validated.get(w)) {
            a.fetch_or(1 << (ordinal % 64), Ordering::Relaxed);
        }
    }

    /// Sizes of the segment files, in order.
    pub(crate) fn sizes(&self) -> Vec<u64> {
        self.segments.iter().map(|(_, b)| b.len() as u64).collect()
    }

    /// Total bytes of all segments.
    pub(crate) fn total_size(&self) -> u64 {
        self.segments.iter().map(|(_, b)| b.len() as u64).sum()
    }

    /// Loads the chunk `meta` refers to (chunk number `ordinal` of the block), verifying
    /// its CRC; the first time, also decoding it completely and checking its time range
    /// and sample count against `meta`. The bytes are shared with the mapping.
    pub(crate) fn chunk(&self, meta: &ChunkMeta, ordinal: u64) -> Result<ChunkData, BlockError> {
        let (seg, off) = split_chunk_ref(meta.chunk_ref);
        let Some((path, bytes)) = (seg as usize)
            .checked_sub(1)
            .and_then(|i| self.segments.get(i))
        else {
            return Err(BlockError::InvalidInput(format!(
                "chunk reference to missing segment {seg}"
            )));
        };
        let corrupt = |offset: usize, reason: String| BlockError::Corrupt {
            path: path.clone(),
            section: SECTION,
            offset: offset as u64,
            reason,
        };
        let off = off as usize;
        let rest = bytes.get(off..).unwrap_or(&[]);
        let (len, n) = get_uvarint(rest).map_err(|e| corrupt(off, e.to_string()))?;
        let start = off + n;
        let end = usize::try_from(len)
            .ok()
            .and_then(|l| start.checked_add(l))
            .filter(|&e| e.checked_add(4).is_some_and(|x| x <= bytes.len()))
            .ok_or_else(|| corrupt(off, format!("chunk of {len} bytes runs past the file")))?;
        let mut crc = [0u8; 4];
        crc.copy_from_slice(bytes.get(end..end + 4).unwrap_or(&[0; 4]));
        let crc = u32::from_le_bytes(crc);
        let data = bytes
            .slice(start..end)
            .ok_or_else(|| corrupt(off, "chunk out of bounds".into()))?;
        if self.is_validated(ordinal) {
            let actual = checksum(&data);
            if actual != crc {
                return Err(corrupt(
                    off,
                    format!(
                        "chunk checksum mismatch: expected {crc:#010x}, computed {actual:#010x}"
                    ),
                ));
            }
            let num = match data.get(1..HEADER_LEN) {
                Some(&[lo, hi]) => usize::from(u16::from_le_bytes([lo, hi])),
                _ => return Err(corrupt(off, "chunk header truncated".into())),
            };
            return Ok(ChunkData::from_revalidated(
                data,
                crc,
                meta.min_time,
                meta.max_time,
                num,
            ));
        }
        let c = ChunkData::from_bytes(data, Some(crc)).map_err(|e| corrupt(off, e.to_string()))?;
        if c.num_samples() == 0 || c.min_time() != meta.min_time || c.max_time() != meta.max_time {
            return Err(corrupt(
                off,
                format!(
                    "chunk holds [{}, {}] ({} samples), the index says [{}, {}]",
                    c.min_time(),
                    c.max_time(),
                    c.num_samples(),
                    meta.min_time,
                    meta.max_time
                ),
            ));
        }
        self.mark_validated(ordinal);
        Ok(c)
    }
}
