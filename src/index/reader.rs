//! Reading and validating an index file.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::ops::Range;

use roaring::RoaringBitmap;

use crate::fsutil::SharedBytes;
use crate::model::Labels;

use super::codec::{framed_section, Decoder};
use super::{
    section, split_chunk_ref, ChunkMeta, IndexError, PostingsSource, INDEX_MAGIC, TOC_LEN,
};

/// Smallest chunk record in a segment file: length varint, 3-byte chunk header, CRC.
const MIN_CHUNK_RECORD: u64 = 1 + 3 + 4;
/// Bytes before the first chunk of a segment file.
const SEGMENT_HEADER: u64 = 8;

/// One postings list's location.
#[derive(Debug, Clone, Copy)]
struct PostingsEntry {
    value: u32,
    /// Byte range inside the file.
    start: usize,
    end: usize,
}

/// A validated index over the bytes of an index file (usually a memory map).
///
/// [`IndexReader::open`] checks the header, the table of contents, every section's CRC
/// and the structure of every section (symbol order, label order, series order, chunk
/// metadata, every postings bitmap), so later reads only fail if the bytes change
/// underneath.
#[derive(Debug)]
pub struct IndexReader {
    data: SharedBytes,
    symbols: Vec<String>,
    series_base: usize,
    series_offsets: Vec<u32>,
    /// Ordinal (over the whole block, in index order) of each series' first chunk.
    first_chunk: Vec<u64>,
    /// Per label name (symbol ref, ascending), its values' postings (ascending).
    postings: Vec<(u32, Vec<PostingsEntry>)>,
    all: RoaringBitmap,
    time_range: Option<(i64, i64)>,
    num_chunks: u64,
}

impl IndexReader {
    /// Validates and opens an index. `segment_sizes[i]` is the size of chunk segment file
    /// number `i + 1`; every chunk reference must point inside one.
    pub fn open(data: SharedBytes, segment_sizes: &[u64]) -> Result<IndexReader, IndexError> {
        let file: &[u8] = &data;
        let header = Decoder::new(file, 0, section::HEADER);
        match file.get(..INDEX_MAGIC.len()) {
            Some(m) if m == INDEX_MAGIC => {}
            _ => return Err(header.err_at(0, "bad magic or version")),
        }
        let toc_start = file
            .len()
            .checked_sub(TOC_LEN)
            .filter(|&s| s >= INDEX_MAGIC.len())
            .ok_or_else(|| header.err_at(0, format!("file of {} bytes too short", file.len())))?;
        let toc_bytes = file.get(toc_start..).unwrap_or(&[]);
        let mut toc = Decoder::new(toc_bytes, toc_start as u64, section::TOC);
        let mut offs = [0u64; 4];
        for o in offs.iter_mut() {
            *o = toc.u64_le()?;
        }
        let stored = toc.u32_le()?;
        let actual = crc32fast::hash(toc_bytes.get(..TOC_LEN - 4).unwrap_or(&[]));
        if stored != actual {
            return Err(toc.err_at(
                toc_start as u64,
                format!("checksum mismatch: stored {stored:#010x}, computed {actual:#010x}"),
            ));
        }
        // Sections follow each other in a fixed order with no gaps, the last one ending
        // where the table of contents starts.
        let names = [
            section::SYMBOLS,
            section::SERIES,
            section::POSTINGS,
            section::POSTINGS_TABLE,
        ];
        let mut expect = INDEX_MAGIC.len();
        let mut bodies: Vec<Range<usize>> = Vec::with_capacity(4);
        for (off, name) in offs.iter().zip(names) {
            if *off != expect as u64 {
                return Err(toc.err_at(
                    toc_start as u64,
                    format!("{name} section at {off}, expected {expect}"),
                ));
            }
            let body = framed_section(file.get(..toc_start).unwrap_or(&[]), expect, name)?;
            expect = body.end + 4;
            bodies.push(body);
        }
        if expect != toc_start {
            return Err(toc.err_at(
                expect as u64,
                format!("{} unexplained bytes before the toc", toc_start - expect),
            ));
        }
        let [sym_body, series_body, postings_body, table_body] = match <[_; 4]>::try_from(bodies) {
            Ok(b) => b,
            Err(_) => return Err(toc.err_at(toc_start as u64, "missing sections")),
        };

        let symbols = read_symbols(file, sym_body)?;
        let mut reader = IndexReader {
            data: data.clone(),
            symbols,
            series_base: series_body.start,
            series_offsets: Vec::new(),
            first_chunk: Vec::new(),
            postings: Vec::new(),
            all: RoaringBitmap::new(),
            time_range: None,
            num_chunks: 0,
        };
        reader.read_series(file, series_body, segment_sizes)?;
        reader.read_postings(file, postings_body, table_body)?;
        Ok(reader)
    }

    fn read_series(
        &mut self,
        file: &[u8],
        body: Range<usize>,
        segment_sizes: &[u64],
    ) -> Result<(), IndexError> {
        let mut d = Decoder::new(
            file.get(body.clone()).unwrap_or(&[]),
            body.start as u64,
            section::SERIES,
        );
        // A series takes at least 4 bytes (label count, one label, chunk count).
        let n = d.count(4)?;
        let n32 = u32::try_from(n).map_err(|_| d.err("more than 2^32 series"))?;
        self.series_offsets.reserve(n);
        let mut prev_labels: Vec<(u32, u32)> = Vec::new();
        let mut labels: Vec<(u32, u32)> = Vec::new();
        let nsym = self.symbols.len();
        let mut tmin = i64::MAX;
        let mut tmax = i64::MIN;
        for _ in 0..n {
            let start = d.offset();
            let rel = u32::try_from(d.pos()).map_err(|_| d.err("series section too large"))?;
            self.series_offsets.push(rel);
            self.first_chunk.push(self.num_chunks);
            let nl = d.count(2)?;
            if nl == 0 {
                return Err(d.err_at(start, "series without labels"));
            }
            labels.clear();
            for _ in 0..nl {
                let at = d.offset();
                let name = d.uvarint32()?;
                let value = d.uvarint32()?;
                if name as usize >= nsym || value as usize >= nsym {
                    return Err(d.err_at(at, format!("symbol reference out of range ({nsym})")));
                }
                if let Some(&(prev, _)) = labels.last() {
                    if prev >= name {
                        return Err(d.err_at(at, "label names not strictly increasing"));
                    }
                }
                labels.push((name, value));
            }
            // Symbols are sorted, so comparing references compares strings.
            if !prev_labels.is_empty() && cmp_label_refs(&prev_labels, &labels) != Ordering::Less {
                return Err(d.err_at(start, "series not in strictly increasing label order"));
            }
            std::mem::swap(&mut prev_labels, &mut labels);
            let nc = d.count(3)?;
            let mut prev: Option<ChunkMeta> = None;
            for _ in 0..nc {
                let at = d.offset();
                let c = read_chunk_meta(&mut d, prev.as_ref())?;
                let (seg, off) = split_chunk_ref(c.chunk_ref);
                let size = (seg as usize)
                    .checked_sub(1)
                    .and_then(|i| segment_sizes.get(i))
                    .copied();
                let ok = size.is_some_and(|size| {
                    u64::from(off) >= SEGMENT_HEADER
                        && u64::from(off).saturating_add(MIN_CHUNK_RECORD) <= size
                });
                if !ok {
                    return Err(IndexError::ChunkOutOfRange {
                        segment: seg,
                        offset: off,
                        index_offset: at,
                    });
                }
                tmin = tmin.min(c.min_time);
                tmax = tmax.max(c.max_time);
                prev = Some(c);
                self.num_chunks += 1;
            }
        }
        if !d.is_empty() {
            return Err(d.err(format!("{} trailing bytes", d.remaining())));
        }
        if n32 > 0 {
            self.all.insert_range(0..n32);
        }
        if tmin <= tmax {
            self.time_range = Some((tmin, tmax));
        }
        Ok(())
    }

    fn read_postings(
        &mut self,
        file: &[u8],
        postings_body: Range<usize>,
        table_body: Range<usize>,
    ) -> Result<(), IndexError> {
        let mut d = Decoder::new(
            file.get(table_body.clone()).unwrap_or(&[]),
            table_body.start as u64,
            section::POSTINGS_TABLE,
        );
        let n = d.count(3)?;
        let nsym = self.symbols.len();
        let mut entries: Vec<(u32, u32, u64, u64)> = Vec::with_capacity(n);
        let mut prev_off = 0u64;
        for i in 0..n {
            let at = d.offset();
            let name = d.uvarint32()?;
            let value = d.uvarint32()?;
            let delta = d.uvarint()?;
            if name as usize >= nsym || value as usize >= nsym {
                return Err(d.err_at(at, format!("symbol reference out of range ({nsym})")));
            }
            if let Some(&(pn, pv, _, _)) = entries.last() {
                if (pn, pv) >= (name, value) {
                    return Err(d.err_at(at, "entries not in strictly increasing order"));
                }
            }
            if i == 0 && delta != 0 || i > 0 && delta == 0 {
                return Err(d.err_at(at, format!("bad postings offset delta {delta}")));
            }
            let off = prev_off
                .checked_add(delta)
                .ok_or_else(|| d.err_at(at, "postings offset overflows"))?;
            entries.push((name, value, off, at));
            prev_off = off;
        }
        if !d.is_empty() {
            return Err(d.err(format!("{} trailing bytes", d.remaining())));
        }
        let body_len = postings_body.len() as u64;
        let pd = Decoder::new(&[], postings_body.start as u64, section::POSTINGS);
        if entries.is_empty() && body_len != 0 {
            return Err(pd.err_at(postings_body.start as u64, "postings without a table entry"));
        }
        let nseries = self.series_offsets.len() as u64;
        for (i, &(name, value, off, at)) in entries.iter().enumerate() {
            let end = entries.get(i + 1).map_or(body_len, |e| e.2);
            if end <= off || end > body_len {
                return Err(d.err_at(at, format!("postings range {off}..{end} out of bounds")));
            }
            let start = postings_body.start + off as usize;
            let stop = postings_body.start + end as usize;
            let bytes = file.get(start..stop).unwrap_or(&[]);
            let bm = decode_bitmap(bytes)
                .map_err(|e| pd.err_at(start as u64, format!("bad postings list: {e}")))?;
            if bm.is_empty() || bm.max().is_some_and(|m| u64::from(m) >= nseries) {
                return Err(pd.err_at(start as u64, "postings list empty or out of range"));
            }
            let mut last: Option<u32> = None;
            for id in bm.iter() {
                if last.is_some_and(|l| l >= id) {
                    return Err(pd.err_at(start as u64, "postings list not sorted"));
                }
                last = Some(id);
            }
            let e = PostingsEntry {
                value,
                start,
                end: stop,
            };
            match self.postings.last_mut() {
                Some((n, list)) if *n == name => list.push(e),
                _ => self.postings.push((name, vec![e])),
            }
        }
        Ok(())
    }

    /// Number of series.
    pub fn num_series(&self) -> u32 {
        self.series_offsets.len() as u32
    }

    /// Number of chunk references.
    pub fn num_chunks(&self) -> u64 {
        self.num_chunks
    }

    /// The smallest chunk min time and largest chunk max time, `None` without chunks.
    pub fn time_range(&self) -> Option<(i64, i64)> {
        self.time_range
    }

    /// The sorted symbol table.
    pub fn symbols(&self) -> &[String] {
        &self.symbols
    }

    fn symbol(&self, r: u32, d: &Decoder<'_>) -> Result<&str, IndexError> {
        self.symbols
            .get(r as usize)
            .map(String::as_str)
            .ok_or_else(|| d.err(format!("symbol reference {r} out of range")))
    }

    fn symbol_ref(&self, s: &str) -> Option<u32> {
        self.symbols
            .binary_search_by(|x| x.as_str().cmp(s))
            .ok()
            .map(|i| i as u32)
    }

    /// The labels and chunk metadata of series `id`.
    pub fn series(&self, id: u32) -> Result<(Labels, Vec<ChunkMeta>), IndexError> {
        let mut d = self.series_decoder(id)?;
        let nl = d.count(2)?;
        let mut labels = Vec::with_capacity(nl);
        for _ in 0..nl {
            let name = d.uvarint32()?;
            let value = d.uvarint32()?;
            labels.push((self.symbol(name, &d)?, self.symbol(value, &d)?));
        }
        let labels = Labels::from_sorted_pairs(labels.iter().copied())
            .ok_or_else(|| d.err("labels not sorted"))?;
        let nc = d.count(3)?;
        let mut chunks = Vec::with_capacity(nc);
        let mut prev = None;
        for _ in 0..nc {
            let c = read_chunk_meta(&mut d, prev.as_ref())?;
            chunks.push(c);
            prev = Some(c);
        }
        Ok((labels, chunks))
    }

    /// The block-wide ordinal of the first chunk of series `id` (chunks are numbered
    /// `0..num_chunks()` in index order), `None` for an unknown id.
    pub fn first_chunk_ordinal(&self, id: u32) -> Option<u64> {
        self.first_chunk.get(id as usize).copied()
    }

    /// The labels of series `id`, without decoding its chunk metadata.
    pub fn series_labels(&self, id: u32) -> Result<Labels, IndexError> {
        let mut d = self.series_decoder(id)?;
        let nl = d.count(2)?;
        let mut labels = Vec::with_capacity(nl);
        for _ in 0..nl {
            let name = d.uvarint32()?;
            let value = d.uvarint32()?;
            labels.push((self.symbol(name, &d)?, self.symbol(value, &d)?));
        }
        Labels::from_sorted_pairs(labels.iter().copied()).ok_or_else(|| d.err("labels not sorted"))
    }

    fn series_decoder(&self, id: u32) -> Result<Decoder<'_>, IndexError> {
        let d = Decoder::new(&[], self.series_base as u64, section::SERIES);
        let rel = *self
            .series_offsets
            .get(id as usize)
            .ok_or_else(|| d.err(format!("no series {id}")))? as usize;
        let start = self.series_base.saturating_add(rel);
        let bytes = self.data.get(start..).unwrap_or(&[]);
        Ok(Decoder::new(bytes, start as u64, section::SERIES))
    }

    /// All label names, sorted.
    pub fn label_names(&self) -> Vec<String> {
        self.postings
            .iter()
            .filter_map(|(n, _)| self.symbols.get(*n as usize).cloned())
            .collect()
    }

    /// All values of label `name`, sorted.
    pub fn label_values(&self, name: &str) -> Vec<String> {
        self.values_of(name)
            .iter()
            .filter_map(|e| self.symbols.get(e.value as usize).cloned())
            .collect()
    }

    fn values_of(&self, name: &str) -> &[PostingsEntry] {
        let Some(r) = self.symbol_ref(name) else {
            return &[];
        };
        match self.postings.binary_search_by_key(&r, |(n, _)| *n) {
            Ok(i) => self.postings.get(i).map_or(&[], |(_, l)| l.as_slice()),
            Err(_) => &[],
        }
    }

    fn load(&self, e: &PostingsEntry) -> Result<RoaringBitmap, IndexError> {
        let d = Decoder::new(&[], e.start as u64, section::POSTINGS);
        let bytes = self.data.get(e.start..e.end).unwrap_or(&[]);
        decode_bitmap(bytes).map_err(|err| d.err(format!("bad postings list: {err}")))
    }
}

impl PostingsSource for IndexReader {
    type Error = IndexError;

    fn all_postings(&self) -> Result<Cow<'_, RoaringBitmap>, IndexError> {
        Ok(Cow::Borrowed(&self.all))
    }

    fn postings(
        &self,
        name: &str,
        value: &str,
    ) -> Result<Option<Cow<'_, RoaringBitmap>>, IndexError> {
        let list = self.values_of(name);
        let found = list.binary_search_by(|e| {
            self.symbols
                .get(e.value as usize)
                .map_or(Ordering::Less, |v| v.as_str().cmp(value))
        });
        match found.ok().and_then(|i| list.get(i)) {
            Some(e) => Ok(Some(Cow::Owned(self.load(e)?))),
            None => Ok(None),
        }
    }

    fn union_values(
        &self,
        name: &str,
        keep: &mut dyn FnMut(&str) -> bool,
    ) -> Result<RoaringBitmap, IndexError> {
        let mut out = RoaringBitmap::new();
        for e in self.values_of(name) {
            let v = self
                .symbols
                .get(e.value as usize)
                .map_or("", String::as_str);
            if keep(v) {
                out |= self.load(e)?;
            }
        }
        Ok(out)
    }
}

fn decode_bitmap(bytes: &[u8]) -> Result<RoaringBitmap, String> {
    let mut r = bytes;
    let bm = RoaringBitmap::deserialize_from(&mut r).map_err(|e| e.to_string())?;
    if !r.is_empty() {
        return Err(format!("{} trailing bytes", r.len()));
    }
    Ok(bm)
}

fn cmp_label_refs(a: &[(u32, u32)], b: &[(u32, u32)]) -> Ordering {
    a.cmp(b)
}

fn read_symbols(file: &[u8], body: Range<usize>) -> Result<Vec<String>, IndexError> {
    let mut d = Decoder::new(
        file.get(body.clone()).unwrap_or(&[]),
        body.start as u64,
        section::SYMBOLS,
    );
    let n = d.count(1)?;
    let mut out: Vec<String> = Vec::with_capacity(n);
    for _ in 0..n {
        let at = d.offset();
        let len = d.count(1)?;
        let bytes = d.bytes(len)?;
        let s = std::str::from_utf8(bytes).map_err(|_| d.err_at(at, "symbol is not UTF-8"))?;
        if out.last().is_some_and(|p| p.as_str() >= s) {
            return Err(d.err_at(at, "symbols not strictly increasing"));
        }
        out.push(s.to_string());
    }
    if !d.is_empty() {
        return Err(d.err(format!("{} trailing bytes", d.remaining())));
    }
    Ok(out)
}

fn read_chunk_meta(d: &mut Decoder<'_>, prev: Option<&ChunkMeta>) -> Result<ChunkMeta, IndexError> {
    let at = d.offset();
    let (min_time, chunk_ref_base) = match prev {
        None => (d.varint()?, 0),
        Some(p) => {
            let gap = d.uvarint()?;
            if gap == 0 {
                return Err(d.err_at(at, "chunk overlaps the previous one"));
            }
            let t = p
                .max_time
                .checked_add_unsigned(gap)
                .ok_or_else(|| d.err_at(at, "chunk time overflows"))?;
            (t, p.chunk_ref)
        }
    };
    let span = d.uvarint()?;
    let max_time = min_time
        .checked_add_unsigned(span)
        .ok_or_else(|| d.err_at(at, "chunk time overflows"))?;
    let r = d.uvarint()?;
    if prev.is_some() && r == 0 {
        return Err(d.err_at(at, "chunk reference not increasing"));
    }
    let chunk_ref = chunk_ref_base
        .checked_add(r)
        .ok_or_else(|| d.err_at(at, "chunk reference overflows"))?;
    Ok(ChunkMeta {
        min_time,
        max_time,
        chunk_ref,
    })
}
