//! Reading a WAL that is still being written, for consumers that follow it (remote
//! write): records of one segment from a byte offset, stopping without error at an
//! incomplete tail, which a later call may find complete.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use super::reader::{io_err, list_segments, segment_path};
use super::record::{decode_frame, next_frame, SEGMENT_HEADER_LEN, SEGMENT_MAGIC};
use super::{Record, WalError};

/// A record and the byte range it occupies in its segment.
#[derive(Debug, Clone, PartialEq)]
pub struct TailRecord {
    /// Offset of the record's first byte.
    pub offset: u64,
    /// Offset just past the record (where the next one starts).
    pub end: u64,
    /// The decoded record.
    pub record: Record,
}

/// What a [`read_segment_from`] call found.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TailRead {
    /// Complete, valid records from the requested offset on, in order.
    pub records: Vec<TailRecord>,
    /// Where reading stopped: the end of the last complete record (or the start offset).
    pub next_offset: u64,
    /// Set when bytes follow `next_offset` that do not form a valid record (yet): a
    /// commit being written, or damage. The reason is for logs.
    pub incomplete: Option<String>,
}

/// Segment numbers present in the WAL directory `dir`, ascending.
pub fn segment_numbers(dir: &Path) -> Result<Vec<u32>, WalError> {
    list_segments(dir)
}

/// Reads the records of segment `segment` of the WAL in `dir` that start at or after
/// byte `offset` (0 or the header length for the first record). At most `max_bytes`
/// bytes are read per call (at least one whole record), so a large segment is consumed
/// in pieces.
pub fn read_segment_from(
    dir: &Path,
    segment: u32,
    offset: u64,
    max_bytes: usize,
) -> Result<TailRead, WalError> {
    let path = segment_path(dir, segment);
    let mut f = File::open(&path).map_err(io_err(&path))?;
    let len = f.metadata().map_err(io_err(&path))?.len();
    let start = offset.max(SEGMENT_HEADER_LEN as u64);
    let mut out = TailRead {
        next_offset: start,
        ..TailRead::default()
    };
    if len < SEGMENT_HEADER_LEN as u64 {
        out.next_offset = offset;
        out.incomplete = (len > 0).then(|| "truncated segment header".to_string());
        return Ok(out);
    }
    if offset < SEGMENT_HEADER_LEN as u64 {
        let mut head = [0u8; SEGMENT_HEADER_LEN];
        f.read_exact(&mut head).map_err(io_err(&path))?;
        if head != SEGMENT_MAGIC {
            out.next_offset = 0;
            out.incomplete = Some("bad segment header (magic or version)".into());
            return Ok(out);
        }
    }
    if start >= len {
        return Ok(out);
    }
    f.seek(SeekFrom::Start(start)).map_err(io_err(&path))?;
    let mut buf = Vec::new();
    let want = usize::try_from(len - start).unwrap_or(usize::MAX);
    (&mut f)
        .take(u64::try_from(want.min(max_bytes.max(1))).unwrap_or(u64::MAX))
        .read_to_end(&mut buf)
        .map_err(io_err(&path))?;
    let mut pos = 0usize;
    while let Some(rest) = buf.get(pos..).filter(|r| !r.is_empty()) {
        match next_frame(rest) {
            Ok(frame) => match decode_frame(&frame) {
                Ok(record) => {
                    let off = start + pos as u64;
                    pos += frame.total_len;
                    out.records.push(TailRecord {
                        offset: off,
                        end: start + pos as u64,
                        record,
                    });
                }
                Err(reason) => {
                    out.incomplete = Some(format!("invalid record payload: {reason}"));
                    break;
                }
            },
            Err((reason, _)) => {
                // A record cut by the read limit is read whole next time.
                if out.records.is_empty() && buf.len() < want {
                    return read_segment_from(dir, segment, offset, want);
                }
                if buf.len() == want {
                    out.incomplete = Some(reason.to_string());
                }
                break;
            }
        }
    }
    out.next_offset = start + pos as u64;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::{FsyncPolicy, RefSample, RefSeries, Wal, WalOptions};
    use super::*;
    use crate::model::Labels;
    use std::io::Write;

    fn samples(i: u64) -> Record {
        Record::Samples(vec![RefSample {
            series_ref: 1,
            t: i as i64,
            v: i as f64,
        }])
    }

    #[test]
    fn follows_appends_torn_tail_and_rollover() {
        let dir = tempfile::tempdir().unwrap();
        let opts = WalOptions {
            fsync: FsyncPolicy::Never,
            segment_size: 200,
        };
        let (wal, _) = Wal::open(dir.path(), opts, |_| {}).unwrap();
        wal.log(&[Record::Series(vec![RefSeries {
            series_ref: 1,
            labels: Labels::from_pairs(&[("__name__", "x")]),
        }])])
        .unwrap();
        let r = read_segment_from(dir.path(), 0, 0, 1 << 20).unwrap();
        assert_eq!(r.records.len(), 1);
        assert!(r.incomplete.is_none());
        wal.log(&[samples(1)]).unwrap();
        // small read limit: still whole records
        let r2 = read_segment_from(dir.path(), 0, r.next_offset, 3).unwrap();
        assert_eq!(r2.records.len(), 1);
        assert_eq!(r2.records[0].record, samples(1));
        // a torn tail: half a record appended by hand
        let mut buf = Vec::new();
        super::super::record::encode_record(&samples(2), &mut buf).unwrap();
        let path = segment_path(dir.path(), 0);
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(&buf[..buf.len() / 2]).unwrap();
        let r3 = read_segment_from(dir.path(), 0, r2.next_offset, 1 << 20).unwrap();
        assert!(r3.records.is_empty());
        assert!(r3.incomplete.is_some());
        assert_eq!(r3.next_offset, r2.next_offset);
        f.write_all(&buf[buf.len() / 2..]).unwrap();
        let r4 = read_segment_from(dir.path(), 0, r2.next_offset, 1 << 20).unwrap();
        assert_eq!(r4.records.len(), 1);
        assert!(r4.incomplete.is_none());
        drop(f);
        for i in 3..40 {
            wal.log(&[samples(i)]).unwrap();
        }
        let segs = segment_numbers(dir.path()).unwrap();
        assert!(segs.len() > 1, "segments rolled over");
        let mut seen = Vec::new();
        for s in segs {
            let mut off = 0;
            loop {
                let r = read_segment_from(dir.path(), s, off, 1 << 20).unwrap();
                if r.records.is_empty() {
                    break;
                }
                off = r.next_offset;
                seen.extend(r.records.into_iter().map(|x| x.record));
            }
        }
        let ts: Vec<i64> = seen
            .iter()
            .filter_map(|r| match r {
                Record::Samples(s) => Some(s[0].t),
                _ => None,
            })
            .collect();
        assert_eq!(ts, (1..40).collect::<Vec<_>>());
    }
}
