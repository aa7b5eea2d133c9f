//! Tombstones: deleted time intervals per series of a block.
//!
//! ```text
//! tombstones := magic:"AIONTMB\x01"  len:u32  body[len]  crc32(body):u32
//! body       := count:uvarint  entry{count}
//! entry      := id_delta:uvarint  n:uvarint  interval{n}
//! interval   := first: mint:zvarint  span:uvarint      (maxt = mint + span)
//!               next:  gap:uvarint   span:uvarint      (mint = previous maxt + gap, gap >= 1)
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use crate::encoding::varint::{put_uvarint, put_varint};
use crate::index::codec::{framed_section, Decoder};
use crate::index::IndexError;
use crate::model::Sample;

use super::BlockError;

/// Magic bytes and version at the start of a tombstones file.
pub const TOMBSTONES_MAGIC: [u8; 8] = *b"AIONTMB\x01";

/// Section name of the tombstones file in corruption errors.
pub(crate) const SECTION: &str = "tombstones";

/// A deleted time range, both ends inclusive (milliseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Interval {
    /// First deleted timestamp.
    pub min_time: i64,
    /// Last deleted timestamp.
    pub max_time: i64,
}

impl Interval {
    /// `[min_time, max_time]`.
    pub fn new(min_time: i64, max_time: i64) -> Self {
        Interval { min_time, max_time }
    }

    /// Whether `t` is inside.
    pub fn contains(&self, t: i64) -> bool {
        self.min_time <= t && t <= self.max_time
    }

    /// Whether `[mint, maxt]` overlaps this interval.
    pub fn overlaps(&self, mint: i64, maxt: i64) -> bool {
        self.min_time <= maxt && mint <= self.max_time
    }
}

/// Deleted intervals keyed by block-local series id. Intervals of a series are kept
/// sorted, merged when they overlap or touch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tombstones {
    map: BTreeMap<u32, Vec<Interval>>,
}

impl Tombstones {
    /// No deletions.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether nothing is deleted.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Number of series with deletions.
    pub fn num_series(&self) -> usize {
        self.map.len()
    }

    /// Deletes `iv` from series `id` (ignored when `min_time > max_time`).
    pub fn add(&mut self, id: u32, iv: Interval) {
        if iv.min_time > iv.max_time {
            return;
        }
        let list = self.map.entry(id).or_default();
        list.push(iv);
        list.sort_unstable();
        let mut merged: Vec<Interval> = Vec::with_capacity(list.len());
        for x in list.drain(..) {
            match merged.last_mut() {
                Some(last) if x.min_time <= last.max_time.saturating_add(1) => {
                    last.max_time = last.max_time.max(x.max_time);
                }
                _ => merged.push(x),
            }
        }
        *list = merged;
    }

    /// Adds every interval of `other`.
    pub fn merge(&mut self, other: &Tombstones) {
        for (id, ivs) in &other.map {
            for iv in ivs {
                self.add(*id, *iv);
            }
        }
    }

    /// The deleted intervals of series `id` (sorted, disjoint).
    pub fn get(&self, id: u32) -> &[Interval] {
        self.map.get(&id).map_or(&[], Vec::as_slice)
    }

    /// Every series id with its intervals, by id.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &[Interval])> {
        self.map.iter().map(|(id, v)| (*id, v.as_slice()))
    }

    /// Whether sample time `t` of series `id` is deleted.
    pub fn is_deleted(&self, id: u32, t: i64) -> bool {
        is_deleted(self.get(id), t)
    }

    /// The bytes of a tombstones file.
    pub fn encode(&self) -> Vec<u8> {
        let mut body = Vec::new();
        put_uvarint(&mut body, self.map.len() as u64);
        let mut prev_id: Option<u32> = None;
        for (&id, ivs) in &self.map {
            put_uvarint(&mut body, u64::from(id - prev_id.map_or(0, |p| p + 1)));
            prev_id = Some(id);
            put_uvarint(&mut body, ivs.len() as u64);
            let mut prev: Option<&Interval> = None;
            for iv in ivs {
                match prev {
                    None => put_varint(&mut body, iv.min_time),
                    Some(p) => put_uvarint(&mut body, iv.min_time.wrapping_sub(p.max_time) as u64),
                }
                put_uvarint(&mut body, iv.max_time.wrapping_sub(iv.min_time) as u64);
                prev = Some(iv);
            }
        }
        let mut out = Vec::with_capacity(body.len() + 16);
        out.extend_from_slice(&TOMBSTONES_MAGIC);
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(&body);
        out.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
        out
    }

    /// Parses and validates a tombstones file read from `path`.
    pub fn decode(bytes: &[u8], path: &Path) -> Result<Tombstones, BlockError> {
        Self::decode_inner(bytes).map_err(|e| BlockError::from_index(path, e))
    }

    fn decode_inner(bytes: &[u8]) -> Result<Tombstones, IndexError> {
        let d = Decoder::new(bytes, 0, SECTION);
        if bytes.get(..TOMBSTONES_MAGIC.len()) != Some(&TOMBSTONES_MAGIC[..]) {
            return Err(d.err_at(0, "bad magic or version"));
        }
        let body = framed_section(bytes, TOMBSTONES_MAGIC.len(), SECTION)?;
        if body.end + 4 != bytes.len() {
            return Err(d.err_at(
                (body.end + 4) as u64,
                "trailing bytes after the tombstones section",
            ));
        }
        let mut d = Decoder::new(
            bytes.get(body.clone()).unwrap_or(&[]),
            body.start as u64,
            SECTION,
        );
        let n = d.count(3)?;
        let mut t = Tombstones::new();
        let mut next_id: u64 = 0;
        for _ in 0..n {
            let at = d.offset();
            let id = next_id
                .checked_add(d.uvarint()?)
                .and_then(|x| u32::try_from(x).ok())
                .ok_or_else(|| d.err_at(at, "series id out of range"))?;
            next_id = u64::from(id) + 1;
            let k = d.count(2)?;
            if k == 0 {
                return Err(d.err_at(at, "series without intervals"));
            }
            let mut list: Vec<Interval> = Vec::with_capacity(k);
            for _ in 0..k {
                let at = d.offset();
                let min_time = match list.last() {
                    None => d.varint()?,
                    Some(p) => {
                        let gap = d.uvarint()?;
                        if gap < 2 {
                            return Err(d.err_at(at, "intervals overlap or touch"));
                        }
                        p.max_time
                            .checked_add_unsigned(gap)
                            .ok_or_else(|| d.err_at(at, "interval overflows"))?
                    }
                };
                let span = d.uvarint()?;
                let max_time = min_time
                    .checked_add_unsigned(span)
                    .ok_or_else(|| d.err_at(at, "interval overflows"))?;
                list.push(Interval { min_time, max_time });
            }
            t.map.insert(id, list);
        }
        if !d.is_empty() {
            return Err(d.err(format!("{} trailing bytes", d.remaining())));
        }
        Ok(t)
    }
}

/// Whether `t` falls in one of the sorted, disjoint `intervals`.
pub(crate) fn is_deleted(intervals: &[Interval], t: i64) -> bool {
    let i = intervals.partition_point(|iv| iv.max_time < t);
    intervals.get(i).is_some_and(|iv| iv.contains(t))
}

/// Drops the samples inside `intervals`.
pub(crate) fn retain_live(samples: &mut Vec<Sample>, intervals: &[Interval]) {
    if !intervals.is_empty() {
        samples.retain(|s| !is_deleted(intervals, s.t));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_merges_and_round_trips() {
        let mut t = Tombstones::new();
        t.add(5, Interval::new(10, 20));
        t.add(5, Interval::new(21, 30));
        t.add(5, Interval::new(40, 50));
        t.add(5, Interval::new(45, 60));
        t.add(0, Interval::new(i64::MIN, i64::MAX));
        t.add(7, Interval::new(3, 1));
        assert_eq!(t.get(5), &[Interval::new(10, 30), Interval::new(40, 60)]);
        assert!(t.get(7).is_empty());
        assert!(t.is_deleted(5, 30) && !t.is_deleted(5, 31) && t.is_deleted(0, -1));
        let bytes = t.encode();
        let p = Path::new("tombstones");
        assert_eq!(Tombstones::new().encode().len(), 17);
        assert_eq!(Tombstones::decode(&bytes, p).unwrap(), t);
        assert_eq!(
            Tombstones::decode(&Tombstones::new().encode(), p).unwrap(),
            Tombstones::new()
        );
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x10;
            assert!(Tombstones::decode(&b, p).is_err(), "flip at {i} undetected");
        }
        for n in 0..bytes.len() {
            assert!(
                Tombstones::decode(&bytes[..n], p).is_err(),
                "truncation at {n}"
            );
        }
    }
}
