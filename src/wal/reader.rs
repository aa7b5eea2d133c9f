//! Segment listing and sequential replay (no repair; `Wal::open` repairs based on the result).

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::record::{decode_frame, next_frame, SEGMENT_HEADER_LEN, SEGMENT_MAGIC};
use super::{CorruptionInfo, Record, ReplayStats, WalError};
use crate::fsutil::MappedFile;

/// Number of digits in a segment file name.
pub(crate) const SEGMENT_NAME_DIGITS: usize = 8;
/// Largest segment number that fits the file name width.
pub(crate) const MAX_SEGMENT: u32 = 99_999_999;

pub(crate) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> WalError + '_ {
    move |source| WalError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Path of segment `n` in `dir`.
pub(crate) fn segment_path(dir: &Path, n: u32) -> PathBuf {
    dir.join(format!("{n:0width$}", width = SEGMENT_NAME_DIGITS))
}

fn parse_segment_name(name: &str) -> Option<u32> {
    if name.len() == SEGMENT_NAME_DIGITS && name.bytes().all(|b| b.is_ascii_digit()) {
        name.parse().ok()
    } else {
        None
    }
}

/// Segment numbers present in `dir`, ascending. Other files are ignored.
pub(crate) fn list_segments(dir: &Path) -> Result<Vec<u32>, WalError> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        if let Some(n) = entry.file_name().to_str().and_then(parse_segment_name) {
            out.push(n);
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// Like [`list_segments`], but fails when the numbers are not consecutive: a missing segment in
/// the middle means lost data that replay cannot silently skip over.
pub(crate) fn list_sequential_segments(dir: &Path) -> Result<Vec<u32>, WalError> {
    let segs = list_segments(dir)?;
    for w in segs.windows(2) {
        if let [prev, next] = *w {
            if prev.checked_add(1) != Some(next) {
                return Err(WalError::NonSequentialSegments { prev, next });
            }
        }
    }
    Ok(segs)
}

/// Reads a whole segment file into `buf` (cleared first), with as few reads as possible.
fn read_segment(path: &Path, buf: &mut Vec<u8>) -> Result<(), WalError> {
    buf.clear();
    let mut f = File::open(path).map_err(io_err(path))?;
    let len = f.metadata().map_err(io_err(path))?.len();
    buf.reserve(usize::try_from(len).unwrap_or(0));
    f.read_to_end(buf).map_err(io_err(path))?;
    Ok(())
}

/// Where replay stopped, and what follows it.
pub(crate) struct Damage {
    /// Segment holding the first bad record.
    pub segment: u32,
    /// Byte offset of the first bad record (0 when the segment header is bad).
    pub offset: u64,
    /// Length of that segment file.
    pub segment_len: u64,
    /// Segments after the damaged one.
    pub later: Vec<u32>,
}

/// Outcome of scanning one segment.
enum SegmentEnd {
    Clean,
    Damaged {
        offset: usize,
        reason: String,
        dropped_records: u64,
    },
}

/// Counts intact frames from `pos` on, stopping at the first invalid one.
fn count_intact_frames(data: &[u8], mut pos: usize) -> u64 {
    let mut n = 0;
    while let Some(rest) = data.get(pos..).filter(|r| !r.is_empty()) {
        match next_frame(rest) {
            Ok(f) => {
                n += 1;
                pos += f.total_len;
            }
            Err(_) => break,
        }
    }
    n
}

/// Counts the records a damaged segment still holds from `pos` (the damaged record itself,
/// when any of it exists, plus the intact records that can be found after it).
fn count_dropped_from(data: &[u8], pos: usize, skip: Option<usize>) -> u64 {
    if pos >= data.len() {
        return 0;
    }
    1 + skip.map_or(0, |len| count_intact_frames(data, pos + len))
}

/// Replays one segment's bytes through `on_record`, updating `stats`.
fn scan_segment(
    data: &[u8],
    is_last: bool,
    stats: &mut ReplayStats,
    on_record: &mut impl FnMut(Record),
) -> SegmentEnd {
    if data.is_empty() {
        // A zero-length last segment is what a crash right after creating it leaves behind.
        return if is_last {
            SegmentEnd::Clean
        } else {
            SegmentEnd::Damaged {
                offset: 0,
                reason: "empty segment followed by other segments".into(),
                dropped_records: 0,
            }
        };
    }
    if data.get(..SEGMENT_HEADER_LEN) != Some(&SEGMENT_MAGIC[..]) {
        let reason = if data.len() < SEGMENT_HEADER_LEN {
            "truncated segment header"
        } else {
            "bad segment header (magic or version)"
        };
        return SegmentEnd::Damaged {
            offset: 0,
            reason: reason.into(),
            dropped_records: count_intact_frames(data, SEGMENT_HEADER_LEN),
        };
    }
    let mut pos = SEGMENT_HEADER_LEN;
    while let Some(rest) = data.get(pos..).filter(|r| !r.is_empty()) {
        let frame = match next_frame(rest) {
            Ok(f) => f,
            Err((reason, skip)) => {
                return SegmentEnd::Damaged {
                    offset: pos,
                    reason: reason.into(),
                    dropped_records: count_dropped_from(data, pos, skip),
                };
            }
        };
        match decode_frame(&frame) {
            Ok(rec) => {
                stats.records += 1;
                match &rec {
                    Record::Series(s) => stats.series += s.len() as u64,
                    Record::Samples(s) => stats.samples += s.len() as u64,
                    Record::Tombstones(_) => {}
                }
                on_record(rec);
            }
            Err(reason) => {
                return SegmentEnd::Damaged {
                    offset: pos,
                    reason: format!("invalid record payload: {reason}"),
                    dropped_records: count_dropped_from(data, pos, Some(frame.total_len)),
                };
            }
        }
        pos += frame.total_len;
    }
    SegmentEnd::Clean
}

/// How replay gets at a segment's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Read into a buffer: for a WAL a writer may be appending to.
    Read,
    /// Mapped: only while no writer can exist (the WAL being opened under the data
    /// directory's lock) and nothing truncates the segments until the map is gone.
    /// Saves copying every segment into a buffer and faulting that buffer in.
    Map,
}

/// Replays every intact record in `dir`, in order, stopping at the first damaged one.
/// Returns the statistics and, when something was damaged, where.
pub(crate) fn replay(
    dir: &Path,
    on_record: impl FnMut(Record),
) -> Result<(ReplayStats, Option<Damage>), WalError> {
    replay_from(dir, 0, Access::Read, on_record)
}

/// Like [`replay`], for the segments numbered `first` and up only (older segments are
/// neither read nor repaired).
pub(crate) fn replay_from(
    dir: &Path,
    first: u32,
    access: Access,
    mut on_record: impl FnMut(Record),
) -> Result<(ReplayStats, Option<Damage>), WalError> {
    let mut segs = list_sequential_segments(dir)?;
    segs.retain(|&s| s >= first);
    let mut stats = ReplayStats::default();
    let mut buf = Vec::new();
    for (i, &seg) in segs.iter().enumerate() {
        let path = segment_path(dir, seg);
        let mapped;
        let data: &[u8] = match access {
            Access::Map => {
                mapped = MappedFile::open(&path).map_err(io_err(&path))?;
                mapped.as_slice()
            }
            Access::Read => {
                read_segment(&path, &mut buf)?;
                &buf
            }
        };
        let is_last = i + 1 == segs.len();
        stats.segments += 1;
        let SegmentEnd::Damaged {
            offset,
            reason,
            dropped_records,
        } = scan_segment(data, is_last, &mut stats, &mut on_record)
        else {
            continue;
        };
        let segment_len = data.len() as u64;
        let offset = offset as u64;
        let later: Vec<u32> = segs.get(i + 1..).unwrap_or(&[]).to_vec();
        let mut info = CorruptionInfo {
            segment: seg,
            offset,
            dropped_records,
            dropped_bytes: segment_len - offset,
            reason,
        };
        for &l in &later {
            let p = segment_path(dir, l);
            read_segment(&p, &mut buf)?;
            info.dropped_bytes += buf.len() as u64;
            info.dropped_records += count_intact_frames(&buf, SEGMENT_HEADER_LEN);
        }
        stats.corrupted = Some(info);
        return Ok((
            stats,
            Some(Damage {
                segment: seg,
                offset,
                segment_len,
                later,
            }),
        ));
    }
    Ok((stats, None))
}
