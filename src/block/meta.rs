//! `meta.json`: a block's identity, time range, statistics and compaction lineage, and
//! block ids.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::BlockError;

/// The meta file format version written and accepted.
pub const META_VERSION: u32 = 1;

/// Section name of the meta file in corruption errors.
pub(crate) const SECTION: &str = "meta";

/// Counts of what a block holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BlockStats {
    /// Samples in all chunks.
    pub num_samples: u64,
    /// Series.
    pub num_series: u64,
    /// Chunks.
    pub num_chunks: u64,
}

/// Where a block comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CompactionMeta {
    /// 1 for a block cut from the head or written by backfill, one more than the highest
    /// parent's level for a compacted block.
    pub level: u32,
    /// Ids of the level-1 blocks whose data this block holds (itself for level 1).
    pub sources: Vec<String>,
    /// Ids of the blocks this one was compacted from (empty for level 1).
    pub parents: Vec<String>,
}

/// The contents of `meta.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockMeta {
    /// The block id: 26 characters of Crockford base32 (see [`new_ulid`]); also the
    /// directory name.
    pub ulid: String,
    /// Smallest timestamp the block may hold (inclusive, milliseconds).
    pub min_time: i64,
    /// End of the block's range (exclusive, milliseconds).
    pub max_time: i64,
    /// Counts.
    pub stats: BlockStats,
    /// Lineage.
    pub compaction: CompactionMeta,
    /// Format version ([`META_VERSION`]).
    pub version: u32,
}

/// The file form: the meta plus a CRC-32 of its canonical (compact) serialization.
#[derive(Serialize, Deserialize)]
struct MetaFile {
    #[serde(flatten)]
    meta: BlockMeta,
    checksum: u32,
}

impl BlockMeta {
    /// The CRC-32 of the compact JSON serialization of `self`.
    fn checksum(&self) -> Result<u32, serde_json::Error> {
        Ok(crc32fast::hash(&serde_json::to_vec(self)?))
    }

    /// The bytes of `meta.json`.
    pub(crate) fn encode(&self) -> Result<Vec<u8>, BlockError> {
        let file = MetaFile {
            meta: self.clone(),
            checksum: self
                .checksum()
                .map_err(|e| BlockError::InvalidInput(e.to_string()))?,
        };
        // No trailing newline: any truncation then breaks the JSON.
        serde_json::to_vec_pretty(&file).map_err(|e| BlockError::InvalidInput(e.to_string()))
    }

    /// Parses and validates `meta.json` bytes read from `path`.
    pub(crate) fn decode(bytes: &[u8], path: &Path) -> Result<BlockMeta, BlockError> {
        let corrupt = |offset: u64, reason: String| BlockError::Corrupt {
            path: path.to_path_buf(),
            section: SECTION,
            offset,
            reason,
        };
        let file: MetaFile = serde_json::from_slice(bytes)
            .map_err(|e| corrupt(json_offset(bytes, e.line(), e.column()), e.to_string()))?;
        let meta = file.meta;
        let actual = meta.checksum().map_err(|e| corrupt(0, e.to_string()))?;
        if actual != file.checksum {
            return Err(corrupt(
                0,
                format!(
                    "checksum mismatch: stored {:#010x}, computed {actual:#010x}",
                    file.checksum
                ),
            ));
        }
        if meta.version != META_VERSION {
            return Err(corrupt(0, format!("unsupported version {}", meta.version)));
        }
        if ulid_time_ms(&meta.ulid).is_none() {
            return Err(corrupt(0, format!("invalid block id {:?}", meta.ulid)));
        }
        if meta.min_time >= meta.max_time {
            return Err(corrupt(
                0,
                format!("empty time range [{}, {})", meta.min_time, meta.max_time),
            ));
        }
        Ok(meta)
    }
}

/// Byte offset of a 1-based line and column (serde_json's error position).
fn json_offset(bytes: &[u8], line: usize, column: usize) -> u64 {
    let mut off = 0usize;
    for (i, l) in bytes.split(|&b| b == b'\n').enumerate() {
        if i + 1 >= line {
            break;
        }
        off += l.len() + 1;
    }
    (off + column.saturating_sub(1)).min(bytes.len()) as u64
}

/// Crockford's base32 alphabet.
const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A new block id: 48 bits of the current time in milliseconds followed by 80 random
/// bits, written as 26 characters of Crockford base32 (the ULID layout), so ids sort by
/// creation time.
pub fn new_ulid() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
        & ((1 << 48) - 1);
    let random = |salt: u64| {
        let mut h = RandomState::new().build_hasher();
        h.write_u64(salt);
        h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        h.write_u32(std::process::id());
        h.write_u128(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        h.finish()
    };
    let rand80 = (u128::from(random(1)) << 16) ^ u128::from(random(2) & 0xffff);
    let v: u128 = (u128::from(ms) << 80) | (rand80 & ((1u128 << 80) - 1));
    encode_base32(v)
}

fn encode_base32(v: u128) -> String {
    let mut out = String::with_capacity(26);
    for i in (0..26).rev() {
        let idx = ((v >> (i * 5)) & 31) as usize;
        out.push(char::from(*CROCKFORD.get(idx).unwrap_or(&b'0')));
    }
    out
}

/// The creation time (milliseconds) encoded in a block id, `None` when `id` is not 26
/// upper-case Crockford base32 characters of at most 128 bits.
pub fn ulid_time_ms(id: &str) -> Option<u64> {
    if id.len() != 26 {
        return None;
    }
    let mut v: u128 = 0;
    for (i, c) in id.bytes().enumerate() {
        let d = CROCKFORD.iter().position(|&x| x == c)? as u128;
        if i == 0 && d > 7 {
            return None;
        }
        v = (v << 5) | d;
    }
    Some((v >> 80) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> BlockMeta {
        BlockMeta {
            ulid: new_ulid(),
            min_time: 0,
            max_time: 7_200_000,
            stats: BlockStats {
                num_samples: 10,
                num_series: 2,
                num_chunks: 3,
            },
            compaction: CompactionMeta {
                level: 1,
                sources: vec!["x".into()],
                parents: vec![],
            },
            version: META_VERSION,
        }
    }

    #[test]
    fn ulids_are_valid_unique_and_timed() {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let a = new_ulid();
        let b = new_ulid();
        assert_ne!(a, b);
        assert_eq!(a.len(), 26);
        let t = ulid_time_ms(&a).unwrap();
        assert!(t >= now && t < now + 60_000, "{t} vs {now}");
        assert_eq!(
            ulid_time_ms("01ARZ3NDEKTSV4RRFFQ69G5FAV"),
            Some(1_469_922_850_259)
        );
        assert_eq!(ulid_time_ms("81ARZ3NDEKTSV4RRFFQ69G5FAV"), None);
        assert_eq!(ulid_time_ms("01ARZ3NDEKTSV4RRFFQ69G5FA"), None);
        assert_eq!(ulid_time_ms("01ARZ3NDEKTSV4RRFFQ69G5FAU"), None);
    }

    #[test]
    fn round_trip_and_damage() {
        let m = meta();
        let bytes = m.encode().unwrap();
        let p = Path::new("b/meta.json");
        assert_eq!(BlockMeta::decode(&bytes, p).unwrap(), m);
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.contains("\"minTime\": 0"), "{text}");
        assert!(text.contains("\"numSamples\": 10"), "{text}");
        // A changed digit parses but fails the checksum.
        let bad = text.replace("\"numSamples\": 10", "\"numSamples\": 11");
        let e = BlockMeta::decode(bad.as_bytes(), p).unwrap_err();
        assert!(e.to_string().contains("checksum"), "{e}");
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x01;
            if let Ok(got) = BlockMeta::decode(&b, p) {
                assert_eq!(got, m, "byte {i} changed the meta undetected");
            }
        }
    }
}
