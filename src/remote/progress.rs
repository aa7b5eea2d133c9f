//! Where a remote write queue stands in the WAL, persisted so that a restart neither
//! loses nor resends samples.
//!
//! Every sample in the WAL has a [`Key`]: its segment, the byte offset of its record and
//! its index in that record. Samples are spread over shards by series reference, and a
//! shard sends its samples in WAL order, so "everything of shard `i` before key `K_i` is
//! done" describes a shard's progress exactly. The file records those keys; on start the
//! queue resumes reading at the smallest of them and skips every sample whose key lies
//! below its (old) shard's key. The file format is described in `storage-format.md`
//! ("Remote write progress").

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::fsutil::atomic::write_file_atomic;

/// The position of one sample in the WAL (ordered as the WAL is written).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct Key {
    /// Segment number.
    pub segment: u32,
    /// Byte offset of the record in the segment.
    pub offset: u64,
    /// Index of the sample in the record.
    pub index: u32,
}

impl Key {
    /// The first key of the record at `segment`/`offset`.
    pub fn record(segment: u32, offset: u64) -> Key {
        Key {
            segment,
            offset,
            index: 0,
        }
    }
}

/// Version written in the file.
pub const PROGRESS_VERSION: u32 = 1;

/// The content of a progress file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Progress {
    /// Format version ([`PROGRESS_VERSION`]).
    pub version: u32,
    /// The queue's identity (its name, or its URL when unnamed).
    pub queue: String,
    /// For each shard `i` (shard = series reference modulo the number of entries): every
    /// sample of that shard with a smaller key has been sent (or dropped as failed).
    pub shards: Vec<Key>,
}

impl Progress {
    /// The smallest shard key: where reading must resume.
    pub fn resume_at(&self) -> Option<Key> {
        self.shards.iter().min().copied()
    }

    /// Whether the sample of series `series_ref` at `key` was already handled.
    pub fn done(&self, series_ref: u64, key: Key) -> bool {
        let n = self.shards.len() as u64;
        if n == 0 {
            return false;
        }
        let i = usize::try_from(series_ref % n).unwrap_or(0);
        self.shards.get(i).is_some_and(|k| key < *k)
    }

    /// The largest shard key: from there on nothing can be skipped.
    pub fn last(&self) -> Option<Key> {
        self.shards.iter().max().copied()
    }
}

/// Directory of the progress files under the data directory.
pub const PROGRESS_DIR: &str = "remote_write";

/// Path of the progress file of the queue with identity `queue`.
pub fn progress_path(data_dir: &Path, queue: &str) -> PathBuf {
    let h = crate::config::remote::fnv64(queue.as_bytes());
    data_dir.join(PROGRESS_DIR).join(format!("{h:016x}.json"))
}

/// Reads a progress file; `Ok(None)` when there is none. A file for another identity
/// (a hash collision) or of another version is an error, as is bad JSON.
pub fn load(path: &Path, queue: &str) -> Result<Option<Progress>, String> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("reading {}: {e}", path.display())),
    };
    let p: Progress =
        serde_json::from_slice(&bytes).map_err(|e| format!("parsing {}: {e}", path.display()))?;
    if p.version != PROGRESS_VERSION {
        return Err(format!(
            "{}: unsupported version {}",
            path.display(),
            p.version
        ));
    }
    if p.queue != queue {
        return Err(format!(
            "{} belongs to queue {:?}, not {queue:?}",
            path.display(),
            p.queue
        ));
    }
    if p.shards.is_empty() {
        return Err(format!("{}: no shards", path.display()));
    }
    Ok(Some(p))
}

/// Writes a progress file atomically (temporary file, fsync, rename).
pub fn store(path: &Path, p: &Progress) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    }
    let bytes = serde_json::to_vec(p).map_err(|e| e.to_string())?;
    write_file_atomic(path, &bytes).map_err(|e| format!("writing {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skip_rule_and_round_trip() {
        let p = Progress {
            version: PROGRESS_VERSION,
            queue: "q".into(),
            shards: vec![
                Key::record(3, 100),
                Key {
                    segment: 3,
                    offset: 50,
                    index: 2,
                },
            ],
        };
        assert_eq!(
            p.resume_at(),
            Some(Key {
                segment: 3,
                offset: 50,
                index: 2
            })
        );
        // shard 1 (odd refs): done below (3, 50, 2)
        assert!(p.done(
            1,
            Key {
                segment: 3,
                offset: 50,
                index: 1
            }
        ));
        assert!(!p.done(
            1,
            Key {
                segment: 3,
                offset: 50,
                index: 2
            }
        ));
        // shard 0 (even refs): done below (3, 100, 0)
        assert!(p.done(
            2,
            Key {
                segment: 3,
                offset: 99,
                index: 7
            }
        ));
        assert!(!p.done(2, Key::record(3, 100)));
        assert!(p.done(4, Key::record(2, 900)));
        let dir = tempfile::tempdir().unwrap();
        let path = progress_path(dir.path(), "q");
        assert_eq!(load(&path, "q").unwrap(), None);
        store(&path, &p).unwrap();
        assert_eq!(load(&path, "q").unwrap(), Some(p));
        assert!(load(&path, "other").is_err());
        std::fs::write(&path, b"{not json").unwrap();
        assert!(load(&path, "q").is_err());
    }
}
