//! Building an index file.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use roaring::RoaringBitmap;

use crate::encoding::varint::{put_uvarint, put_varint};
use crate::model::Labels;

use super::codec::put_framed;
use super::{ChunkMeta, IndexError, INDEX_MAGIC};

/// Collects series in label order and writes the index file.
///
/// Series are buffered (labels are shared, so this costs their chunk metadata and the
/// postings) because the symbol table, which must come first, is known only at the end.
#[derive(Debug, Default)]
pub struct IndexWriter {
    series: Vec<(Labels, Vec<ChunkMeta>)>,
    postings: BTreeMap<String, BTreeMap<String, RoaringBitmap>>,
}

impl IndexWriter {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of series added.
    pub fn num_series(&self) -> usize {
        self.series.len()
    }

    /// Adds the next series. Labels must be non-empty, without empty names or values,
    /// and strictly greater than the previous series' labels. Chunks must be in time
    /// order without overlap, each with `min_time <= max_time`, and with strictly
    /// increasing references.
    pub fn add_series(&mut self, labels: &Labels, chunks: &[ChunkMeta]) -> Result<(), IndexError> {
        if labels.is_empty() {
            return Err(IndexError::InvalidInput("empty label set".into()));
        }
        if let Some(l) = labels
            .iter()
            .find(|l| l.name.is_empty() || l.value.is_empty())
        {
            return Err(IndexError::InvalidInput(format!(
                "label with an empty name or value in {labels}: {:?}",
                l.name
            )));
        }
        if let Some((prev, _)) = self.series.last() {
            if prev >= labels {
                return Err(IndexError::InvalidInput(format!(
                    "series {labels} added after {prev}: labels must strictly increase"
                )));
            }
        }
        let mut prev: Option<&ChunkMeta> = None;
        for c in chunks {
            if c.min_time > c.max_time {
                return Err(IndexError::InvalidInput(format!(
                    "chunk of {labels} with min time {} after max time {}",
                    c.min_time, c.max_time
                )));
            }
            if let Some(p) = prev {
                if c.min_time <= p.max_time || c.chunk_ref <= p.chunk_ref {
                    return Err(IndexError::InvalidInput(format!(
                        "chunks of {labels} overlap or are out of order"
                    )));
                }
            }
            prev = Some(c);
        }
        let id = u32::try_from(self.series.len())
            .map_err(|_| IndexError::InvalidInput("more than 2^32 series".into()))?;
        for l in labels {
            self.postings
                .entry(l.name.to_string())
                .or_default()
                .entry(l.value.to_string())
                .or_default()
                .insert(id);
        }
        self.series.push((labels.clone(), chunks.to_vec()));
        Ok(())
    }

    /// Writes the index to `path` (created or truncated) and fsyncs it. Returns the file
    /// size in bytes.
    pub fn write(self, path: &Path) -> Result<u64, IndexError> {
        // Symbol table: every distinct name and value, sorted.
        let mut symbol_set: BTreeSet<&str> = BTreeSet::new();
        for (name, values) in &self.postings {
            symbol_set.insert(name);
            for v in values.keys() {
                symbol_set.insert(v);
            }
        }
        let symbols: Vec<&str> = symbol_set.into_iter().collect();
        let refs: HashMap<&str, u64> = symbols
            .iter()
            .enumerate()
            .map(|(i, s)| (*s, i as u64))
            .collect();
        let sym = |s: &str| -> Result<u64, IndexError> {
            refs.get(s)
                .copied()
                .ok_or_else(|| IndexError::InvalidInput(format!("symbol {s:?} not indexed")))
        };

        let mut body = Vec::new();
        put_uvarint(&mut body, symbols.len() as u64);
        for s in &symbols {
            put_uvarint(&mut body, s.len() as u64);
            body.extend_from_slice(s.as_bytes());
        }
        let mut file = Vec::with_capacity(body.len() + 64);
        file.extend_from_slice(&INDEX_MAGIC);
        let symbols_off = file.len() as u64;
        put_framed(&mut file, &body)?;

        let out = File::create(path)?;
        let mut w = BufWriter::with_capacity(1 << 20, out);
        w.write_all(&file)?;
        let mut written = file.len() as u64;
        drop(file);

        // Series.
        let series_off = written;
        body.clear();
        put_uvarint(&mut body, self.series.len() as u64);
        for (labels, chunks) in &self.series {
            put_uvarint(&mut body, labels.len() as u64);
            for l in labels {
                put_uvarint(&mut body, sym(l.name)?);
                put_uvarint(&mut body, sym(l.value)?);
            }
            put_uvarint(&mut body, chunks.len() as u64);
            let mut prev: Option<&ChunkMeta> = None;
            for c in chunks {
                match prev {
                    None => {
                        put_varint(&mut body, c.min_time);
                        put_uvarint(&mut body, c.max_time.wrapping_sub(c.min_time) as u64);
                        put_uvarint(&mut body, c.chunk_ref);
                    }
                    Some(p) => {
                        put_uvarint(&mut body, c.min_time.wrapping_sub(p.max_time) as u64);
                        put_uvarint(&mut body, c.max_time.wrapping_sub(c.min_time) as u64);
                        put_uvarint(&mut body, c.chunk_ref.wrapping_sub(p.chunk_ref));
                    }
                }
                prev = Some(c);
            }
        }
        written += write_framed(&mut w, &body)?;

        // Postings lists and the offset table.
        let postings_off = written;
        body.clear();
        let mut table = Vec::new();
        let mut entries = 0u64;
        let mut prev_off = 0u64;
        for (name, values) in &self.postings {
            let name_ref = sym(name)?;
            for (value, bm) in values {
                let off = body.len() as u64;
                bm.serialize_into(&mut body)?;
                put_uvarint(&mut table, name_ref);
                put_uvarint(&mut table, sym(value)?);
                put_uvarint(&mut table, off - prev_off);
                prev_off = off;
                entries += 1;
            }
        }
        written += write_framed(&mut w, &body)?;
        let table_off = written;
        body.clear();
        put_uvarint(&mut body, entries);
        body.extend_from_slice(&table);
        written += write_framed(&mut w, &body)?;

        // Table of contents.
        let mut toc = Vec::with_capacity(super::TOC_LEN);
        for off in [symbols_off, series_off, postings_off, table_off] {
            toc.extend_from_slice(&off.to_le_bytes());
        }
        let crc = crc32fast::hash(&toc);
        toc.extend_from_slice(&crc.to_le_bytes());
        w.write_all(&toc)?;
        written += toc.len() as u64;

        let f = w.into_inner().map_err(|e| IndexError::Io(e.into_error()))?;
        f.sync_all()?;
        Ok(written)
    }
}

fn write_framed(w: &mut impl Write, body: &[u8]) -> Result<u64, IndexError> {
    let len = u32::try_from(body.len())
        .map_err(|_| IndexError::InvalidInput(format!("section of {} bytes", body.len())))?;
    w.write_all(&len.to_le_bytes())?;
    w.write_all(body)?;
    w.write_all(&crc32fast::hash(body).to_le_bytes())?;
    Ok(body.len() as u64 + 8)
}
