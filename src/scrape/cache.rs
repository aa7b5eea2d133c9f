//! The per-target cache from the text of a series in a body (`name{labels}`) to its
//! series reference, laid out for the steady state.
//!
//! Targets expose their series in the same order on every scrape, and between two
//! scrapes of a target (seconds apart) the cache has usually left the CPU caches. So
//! entries live in one vector in body order and their texts in one contiguous buffer:
//! a lookup first compares the line with the entry after the previous hit, which walks
//! both arrays front to back (memory the prefetcher streams in), and only falls back
//! to hashing the text when that guess is wrong. A map from the hash of a text to the
//! newest entry with that hash (entries with the same hash are chained) serves the
//! fallback.
//!
//! An entry holds a [`SeriesHandle`] on its series, so a steady-state append goes
//! straight to the series; a hit also touches the series a few entries ahead, so
//! their cache misses overlap rather than come one after the other.
//!
//! Entries of series that disappeared are only flagged dead; the arrays are rebuilt
//! (live entries in the order of the last scrape) when a quarter of them are dead or
//! when many lines were found out of order, so the guess works again.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::head::SeriesHandle;

/// No entry (end of a hash chain).
const NONE: u32 = u32::MAX;

/// Entries whose series are touched together, this many entries ahead.
const AHEAD: usize = 16;

const DEAD: u8 = 1;
const DROPPED: u8 = 2;
const PREV_SEEN: u8 = 4;
const TRACK: u8 = 8;
/// Inserted from an OpenMetrics body.
const OM: u8 = 16;

/// Hash of a series text: FxHash over 8-byte words with a final avalanche, so both the
/// low bits (bucket) and the high bits (tag) of the map's hash are well mixed.
#[inline]
pub(crate) fn text_hash(bytes: &[u8]) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mut h = bytes.len() as u64;
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        h = (h.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(K);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut w = [0u8; 8];
        if let Some(dst) = w.get_mut(..rest.len()) {
            dst.copy_from_slice(rest);
        }
        h = (h.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(K);
    }
    // The finaliser of MurmurHash3.
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// Passes an already mixed `u64` through.
#[derive(Default, Clone, Copy)]
pub(crate) struct PassHasher(u64);

impl Hasher for PassHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.0 = i;
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

/// One cached series.
#[derive(Debug, Clone)]
pub(crate) struct Slot {
    key_off: usize,
    key_len: u32,
    /// Next entry with the same text hash.
    chain: u32,
    /// The series (`None` when dropped, or once dead).
    pub handle: Option<SeriesHandle>,
    /// The scrape that last saw the series.
    pub last_iter: u64,
    /// The timestamp of its sample in that scrape.
    pub last_t: i64,
    /// Line order within the scrape of `last_iter`.
    seq: u32,
    flags: u8,
}

impl Slot {
    #[inline]
    fn has(&self, f: u8) -> bool {
        self.flags & f != 0
    }

    #[inline]
    fn set(&mut self, f: u8, on: bool) {
        if on {
            self.flags |= f;
        } else {
            self.flags &= !f;
        }
    }

    /// Whether `metric_relabel_configs` dropped the series.
    #[inline]
    pub fn dropped(&self) -> bool {
        self.has(DROPPED)
    }

    /// Whether the series was in the scrape before `last_iter`.
    #[inline]
    pub fn prev_seen(&self) -> bool {
        self.has(PREV_SEEN)
    }

    #[inline]
    pub fn set_prev_seen(&mut self, on: bool) {
        self.set(PREV_SEEN, on);
    }

    /// Whether staleness is tracked for the series.
    #[inline]
    pub fn track(&self) -> bool {
        self.has(TRACK)
    }

    #[inline]
    pub fn set_track(&mut self, on: bool) {
        self.set(TRACK, on);
    }

    #[inline]
    fn dead(&self) -> bool {
        self.has(DEAD)
    }
}

/// Result of a lookup that found nothing: the text's hash, for the insert.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Miss(u64);

/// The series cache of one target.
#[derive(Debug, Default)]
pub(crate) struct SeriesCache {
    slots: Vec<Slot>,
    keys: Vec<u8>,
    index: HashMap<u64, u32, BuildHasherDefault<PassHasher>>,
    /// The slot expected for the next line.
    cursor: usize,
    live: usize,
    dead: usize,
    /// Lines of this scrape found through the map rather than at the cursor.
    out_of_place: usize,
    /// Lines of this scrape so far.
    seq: u32,
    /// Entries added in this scrape.
    inserted: usize,
}

impl SeriesCache {
    /// Number of live entries.
    pub fn len(&self) -> usize {
        self.live
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        *self = SeriesCache::default();
    }

    /// Starts a scrape: the guess starts at the first entry.
    pub fn begin(&mut self) {
        self.cursor = 0;
        self.out_of_place = 0;
        self.seq = 0;
        self.inserted = 0;
    }

    #[inline]
    fn key_of(&self, s: &Slot) -> &[u8] {
        self.keys
            .get(s.key_off..s.key_off + s.key_len as usize)
            .unwrap_or(&[])
    }

    /// The text expected for the next line (the entry at the cursor), if it was
    /// inserted from a body of the same format (`om`: OpenMetrics); empty otherwise.
    #[inline]
    pub fn expected(&mut self, om: bool) -> &[u8] {
        while self.slots.get(self.cursor).is_some_and(Slot::dead) {
            self.cursor += 1;
        }
        match self.slots.get(self.cursor) {
            Some(s) if s.has(OM) == om => self.key_of(s),
            _ => &[],
        }
    }

    /// The entry at the cursor, when the line's series text is known to equal
    /// [`Self::expected`]'s (a lookup without the comparison).
    #[inline]
    pub fn take_expected(&mut self) -> Option<usize> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let i = self.cursor;
        let s = self.slots.get_mut(i).filter(|s| !s.dead())?;
        s.seq = seq;
        self.cursor += 1;
        self.touch_ahead(i);
        Some(i)
    }

    /// Every [`AHEAD`] entries, touches the series of the next [`AHEAD`] entries after
    /// those (see [`SeriesHandle::touch`]).
    #[inline]
    fn touch_ahead(&self, i: usize) {
        if i.is_multiple_of(AHEAD) {
            if let Some(next) = self
                .slots
                .get(i + AHEAD..(i + 2 * AHEAD).min(self.slots.len()))
            {
                for h in next.iter().filter_map(|s| s.handle.as_ref()) {
                    h.touch();
                }
            }
        }
    }

    /// The live entry for `key`.
    #[inline]
    pub fn lookup(&mut self, key: &[u8]) -> Result<usize, Miss> {
        self.seq = self.seq.wrapping_add(1);
        while self.slots.get(self.cursor).is_some_and(Slot::dead) {
            self.cursor += 1;
        }
        let seq = self.seq;
        if let Some(s) = self.slots.get(self.cursor) {
            if self.key_of(s) == key {
                let i = self.cursor;
                self.cursor += 1;
                if let Some(s) = self.slots.get_mut(i) {
                    s.seq = seq;
                }
                self.touch_ahead(i);
                return Ok(i);
            }
        }
        let h = text_hash(key);
        let mut i = self.index.get(&h).copied().unwrap_or(NONE);
        while let Some(s) = self.slots.get(i as usize) {
            if !s.dead() && self.key_of(s) == key {
                self.out_of_place += 1;
                self.cursor = i as usize + 1;
                if let Some(s) = self.slots.get_mut(i as usize) {
                    s.seq = seq;
                }
                return Ok(i as usize);
            }
            i = s.chain;
        }
        Err(Miss(h))
    }

    /// The entry at `i` (from [`Self::lookup`] or [`Self::insert`]).
    #[inline]
    pub fn slot_mut(&mut self, i: usize) -> Option<&mut Slot> {
        self.slots.get_mut(i)
    }

    /// Adds an entry for `key` (not in the cache: `miss` comes from its lookup).
    /// `series` is `None` when the series is dropped; `om` says whether the text
    /// comes from an OpenMetrics body.
    #[allow(clippy::too_many_arguments)]
    pub fn insert(
        &mut self,
        key: &[u8],
        miss: Miss,
        series: Option<SeriesHandle>,
        iter: u64,
        t: i64,
        track: bool,
        om: bool,
    ) {
        let Ok(key_len) = u32::try_from(key.len()) else {
            // A series text of 4 GiB cannot be cached; it is looked up again.
            return;
        };
        let Ok(idx) = u32::try_from(self.slots.len()) else {
            return;
        };
        if idx == NONE {
            return;
        }
        let key_off = self.keys.len();
        self.keys.extend_from_slice(key);
        let chain = self.index.insert(miss.0, idx).unwrap_or(NONE);
        let mut flags = if series.is_some() { 0 } else { DROPPED };
        if track {
            flags |= TRACK;
        }
        if om {
            flags |= OM;
        }
        self.slots.push(Slot {
            key_off,
            key_len,
            chain,
            handle: series,
            last_iter: iter,
            last_t: t,
            seq: self.seq,
            flags,
        });
        self.live += 1;
        self.inserted += 1;
    }

    /// Visits every live entry.
    pub fn for_each_live(&mut self, mut f: impl FnMut(&mut Slot)) {
        for s in self.slots.iter_mut() {
            if !s.dead() {
                f(s);
            }
        }
    }

    /// Ends a scrape: visits every live entry and drops those for which `keep` returns
    /// false (letting go of their series); then rebuilds the arrays if they need it.
    pub fn sweep(&mut self, mut keep: impl FnMut(&mut Slot) -> bool) {
        let mut died = 0usize;
        for s in self.slots.iter_mut() {
            if s.dead() {
                continue;
            }
            if !keep(s) {
                s.flags |= DEAD;
                s.handle = None;
                died += 1;
            }
        }
        self.live -= died;
        self.dead += died;
        if self.dead * 4 > self.slots.len() || self.out_of_place > 16 + self.live / 32 {
            self.rebuild();
        } else if self.inserted * 2 > self.slots.len() {
            // Mostly new (the first scrape of a target): give back the room the
            // arrays grew by; later scrapes rarely add much.
            self.slots.shrink_to_fit();
            self.keys.shrink_to_fit();
        }
    }

    /// Live entries in the order they were last seen, texts packed again, map rebuilt.
    fn rebuild(&mut self) {
        let mut order: Vec<u32> = (0..self.slots.len() as u32)
            .filter(|&i| self.slots.get(i as usize).is_some_and(|s| !s.dead()))
            .collect();
        let slots = &self.slots;
        order.sort_unstable_by_key(|&i| {
            slots
                .get(i as usize)
                .map_or((0, 0), |s| (s.last_iter, s.seq))
        });
        let mut keys = Vec::with_capacity(
            self.keys.len().min(
                order
                    .iter()
                    .filter_map(|&i| slots.get(i as usize))
                    .map(|s| s.key_len as usize)
                    .sum(),
            ),
        );
        let mut new_slots = Vec::with_capacity(order.len());
        let mut index: HashMap<u64, u32, BuildHasherDefault<PassHasher>> = HashMap::default();
        index.reserve(order.len());
        for &i in &order {
            let Some(s) = self.slots.get_mut(i as usize) else {
                continue;
            };
            let key = self
                .keys
                .get(s.key_off..s.key_off + s.key_len as usize)
                .unwrap_or(&[]);
            let idx = new_slots.len() as u32;
            let hash = text_hash(key);
            let key_off = keys.len();
            keys.extend_from_slice(key);
            new_slots.push(Slot {
                key_off,
                chain: index.insert(hash, idx).unwrap_or(NONE),
                handle: s.handle.take(),
                ..*s
            });
        }
        self.slots = new_slots;
        self.keys = keys;
        self.index = index;
        self.live = self.slots.len();
        self.dead = 0;
        self.cursor = 0;
        self.out_of_place = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::head::{Head, HeadOptions};
    use crate::model::Labels;

    /// Handles on series `x0`, `x1`, ... of `head`.
    fn handles(head: &Head, n: usize) -> Vec<SeriesHandle> {
        let mut app = head.appender();
        (0..n)
            .map(|i| {
                let r = app
                    .append(
                        &Labels::from_pairs(&[("__name__", format!("x{i}"))]),
                        0,
                        0.0,
                    )
                    .unwrap();
                app.handle(r).unwrap()
            })
            .collect()
    }

    fn get(c: &mut SeriesCache, k: &str) -> Option<usize> {
        c.lookup(k.as_bytes()).ok()
    }

    #[test]
    fn lookups_in_and_out_of_order_and_rebuilds() {
        let head = Head::new(HeadOptions::default());
        let hs = handles(&head, 4);
        let mut c = SeriesCache::default();
        c.begin();
        for (n, k) in ["a", "b", "c", "d"].iter().enumerate() {
            let m = c.lookup(k.as_bytes()).unwrap_err();
            c.insert(k.as_bytes(), m, Some(hs[n].clone()), 1, 0, true, false);
        }
        assert_eq!(c.len(), 4);
        // Same order: every line at the cursor.
        c.begin();
        for (n, k) in ["a", "b", "c", "d"].iter().enumerate() {
            let i = get(&mut c, k).unwrap();
            let h = c.slot_mut(i).unwrap().handle.as_ref().unwrap();
            assert_eq!(h.series_ref(), hs[n].series_ref());
            c.slot_mut(i).unwrap().last_iter = 2;
        }
        assert_eq!(c.out_of_place, 0);
        // Other order, two missing and an unknown text.
        c.begin();
        for k in ["d", "a"] {
            let i = get(&mut c, k).unwrap();
            c.slot_mut(i).unwrap().last_iter = 3;
        }
        assert!(get(&mut c, "e").is_none());
        assert!(get(&mut c, "").is_none());
        c.sweep(|s| s.last_iter >= 3);
        assert_eq!(c.len(), 2);
        assert!(get(&mut c, "b").is_none());
        assert!(get(&mut c, "c").is_none());
        // Half the entries died: rebuilt in the order of the last scrape.
        c.begin();
        for k in ["d", "a"] {
            let i = get(&mut c, k).unwrap();
            c.slot_mut(i).unwrap().last_iter = 4;
        }
        assert_eq!(c.out_of_place, 0, "rebuilt in the last order");
    }

    /// One per cached series; a change of its size shows here.
    #[test]
    fn slot_size() {
        assert_eq!(std::mem::size_of::<Slot>(), 56);
    }

    #[test]
    fn colliding_hashes_are_chained() {
        let head = Head::new(HeadOptions::default());
        let hs = handles(&head, 2);
        let mut c = SeriesCache::default();
        c.begin();
        // Same hash forced for two texts: both stay reachable.
        for (n, k) in ["x", "y"].iter().enumerate() {
            c.insert(
                k.as_bytes(),
                Miss(7),
                Some(hs[n].clone()),
                1,
                0,
                true,
                false,
            );
        }
        c.cursor = 5;
        let find = |k: &str| {
            let mut i = c.index.get(&7).copied().unwrap_or(NONE);
            while let Some(s) = c.slots.get(i as usize) {
                if c.key_of(s) == k.as_bytes() {
                    return s.handle.as_ref().map(SeriesHandle::series_ref);
                }
                i = s.chain;
            }
            None
        };
        assert_eq!(find("x"), Some(hs[0].series_ref()));
        assert_eq!(find("y"), Some(hs[1].series_ref()));
        assert_eq!(find("z"), None);
    }
}
