//! Opening and querying a block.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::chunk::ChunkData;
use crate::fsutil::{write_file_atomic, MappedFile, SharedBytes};
use crate::index::{postings_for_matchers, ChunkMeta, IndexError, IndexReader};
use crate::model::{LabelStr, Labels, Matcher, Sample};
use crate::storage::{Querier, Queryable, Series, SeriesChunk, StorageError};

use super::chunks::{self, segment_name, ChunkReader};
use super::meta::{self, BlockMeta};
use super::tombstones::{retain_live, Interval, Tombstones};
use super::writer::rechunk;
use super::{BlockError, CHUNKS_DIR, INDEX_FILE, META_FILE, TOMBSTONES_FILE};

/// The immutable parts of an open block, shared between [`Block`] values that differ
/// only in their tombstones.
#[derive(Debug)]
struct Shared {
    dir: PathBuf,
    meta: BlockMeta,
    index: IndexReader,
    chunks: ChunkReader,
    index_path: PathBuf,
    size: u64,
}

/// An open, validated block. `Send + Sync`; share it in an `Arc`.
#[derive(Debug, Clone)]
pub struct Block {
    shared: Arc<Shared>,
    tombstones: Arc<Tombstones>,
    tombstones_size: u64,
}

impl Block {
    /// Opens the block in `dir`, validating `meta.json` (checksum, version, range), the
    /// index (header, table of contents, every section's CRC and structure), the chunk
    /// segment headers, every chunk reference and the tombstones. Chunk CRCs are verified
    /// when chunks are loaded. Never panics on damaged files.
    pub fn open(dir: &Path) -> Result<Block, BlockError> {
        let meta_path = dir.join(META_FILE);
        let meta_bytes = fs::read(&meta_path).map_err(BlockError::io(&meta_path))?;
        let meta = BlockMeta::decode(&meta_bytes, &meta_path)?;
        let mut chunks = ChunkReader::open(&dir.join(CHUNKS_DIR))?;
        let index_path = dir.join(INDEX_FILE);
        let map = MappedFile::open(&index_path).map_err(BlockError::io(&index_path))?;
        let index_size = map.len() as u64;
        let sizes = chunks.sizes();
        let index = IndexReader::open(SharedBytes::from_mapped(Arc::new(map)), &sizes).map_err(
            |e| match e {
                // The index is intact (its checksums passed), so the segment is damaged.
                IndexError::ChunkOutOfRange {
                    segment,
                    offset,
                    index_offset,
                } => {
                    let size = (segment as usize)
                        .checked_sub(1)
                        .and_then(|i| sizes.get(i))
                        .copied();
                    BlockError::Corrupt {
                        path: dir.join(CHUNKS_DIR).join(segment_name(segment)),
                        section: chunks::SECTION,
                        offset: size.unwrap_or(0).min(u64::from(offset)),
                        reason: match size {
                            Some(size) => format!(
                                "segment of {size} bytes is too short for the chunk at \
                                 {offset} referenced at index byte {index_offset}"
                            ),
                            None => {
                                format!("missing segment, referenced at index byte {index_offset}")
                            }
                        },
                    }
                }
                e => BlockError::from_index(&index_path, e),
            },
        )?;
        chunks.set_num_chunks(index.num_chunks());
        let meta_err = |reason: String| BlockError::Corrupt {
            path: meta_path.clone(),
            section: meta::SECTION,
            offset: 0,
            reason,
        };
        if meta.stats.num_series != u64::from(index.num_series())
            || meta.stats.num_chunks != index.num_chunks()
        {
            return Err(meta_err(format!(
                "stats say {} series and {} chunks, the index holds {} and {}",
                meta.stats.num_series,
                meta.stats.num_chunks,
                index.num_series(),
                index.num_chunks()
            )));
        }
        if let Some((lo, hi)) = index.time_range() {
            if lo < meta.min_time || hi >= meta.max_time {
                return Err(meta_err(format!(
                    "chunks span [{lo}, {hi}], outside the block range [{}, {})",
                    meta.min_time, meta.max_time
                )));
            }
        }
        let tomb_path = dir.join(TOMBSTONES_FILE);
        let tomb_bytes = fs::read(&tomb_path).map_err(BlockError::io(&tomb_path))?;
        let tombstones = Tombstones::decode(&tomb_bytes, &tomb_path)?;
        if let Some((id, _)) = tombstones.iter().last() {
            if id >= index.num_series() {
                return Err(BlockError::Corrupt {
                    path: tomb_path,
                    section: super::tombstones::SECTION,
                    offset: 0,
                    reason: format!("series id {id} out of range"),
                });
            }
        }
        let size = meta_bytes.len() as u64 + index_size + chunks.total_size();
        Ok(Block {
            shared: Arc::new(Shared {
                dir: dir.to_path_buf(),
                meta,
                index,
                chunks,
                index_path,
                size,
            }),
            tombstones: Arc::new(tombstones),
            tombstones_size: tomb_bytes.len() as u64,
        })
    }

    /// The block's meta.
    pub fn meta(&self) -> &BlockMeta {
        &self.shared.meta
    }

    /// The block's directory.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// Total size of the block's files in bytes.
    pub fn size_bytes(&self) -> u64 {
        self.shared.size + self.tombstones_size
    }

    /// The block's index.
    pub fn index(&self) -> &IndexReader {
        &self.shared.index
    }

    /// The deleted intervals.
    pub fn tombstones(&self) -> &Tombstones {
        &self.tombstones
    }

    /// Replaces the tombstones file atomically with `tombstones` and returns the block as
    /// it now reads (sharing this block's mappings). Series ids must exist in the block.
    pub fn with_tombstones(&self, tombstones: Tombstones) -> Result<Block, BlockError> {
        if let Some((id, _)) = tombstones.iter().last() {
            if id >= self.shared.index.num_series() {
                return Err(BlockError::InvalidInput(format!(
                    "tombstone for series {id}, the block has {}",
                    self.shared.index.num_series()
                )));
            }
        }
        let path = self.dir().join(TOMBSTONES_FILE);
        let bytes = tombstones.encode();
        write_file_atomic(&path, &bytes).map_err(BlockError::io(&path))?;
        Ok(Block {
            shared: self.shared.clone(),
            tombstones: Arc::new(tombstones),
            tombstones_size: bytes.len() as u64,
        })
    }

    /// Adds deletions of `[mint, maxt]` (inclusive) for every series matching `matchers`
    /// and persists them (see [`Self::with_tombstones`]). Returns the updated block and
    /// how many series got an interval.
    pub fn delete(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<(Block, usize), BlockError> {
        let ids = self.postings(matchers)?;
        let mut t = (*self.tombstones).clone();
        let mut n = 0;
        for id in ids.iter() {
            let (_, metas) = self.series_meta(id)?;
            if metas
                .iter()
                .any(|c| c.min_time <= maxt && mint <= c.max_time)
            {
                t.add(id, Interval::new(mint, maxt));
                n += 1;
            }
        }
        Ok((self.with_tombstones(t)?, n))
    }

    fn index_err(&self, e: IndexError) -> BlockError {
        BlockError::from_index(&self.shared.index_path, e)
    }

    fn postings(&self, matchers: &[Matcher]) -> Result<roaring::RoaringBitmap, BlockError> {
        postings_for_matchers(&self.shared.index, matchers).map_err(|e| self.index_err(e))
    }

    /// Like [`Self::postings`], without series whose every sample is deleted by
    /// tombstones (label queries must not show series that no longer hold data).
    fn live_postings(&self, matchers: &[Matcher]) -> Result<roaring::RoaringBitmap, BlockError> {
        let mut ids = self.postings(matchers)?;
        let mut dead = Vec::new();
        for (id, deleted) in self.tombstones.iter() {
            if deleted.is_empty() || !ids.contains(id) || self.has_live_sample(id, deleted)? {
                continue;
            }
            dead.push(id);
        }
        for id in dead {
            ids.remove(id);
        }
        Ok(ids)
    }

    fn has_live_sample(&self, id: u32, deleted: &[Interval]) -> Result<bool, BlockError> {
        let (_, metas) = self.series_meta(id)?;
        let first = self.first_chunk(id)?;
        for (j, c) in metas.iter().enumerate() {
            if !deleted.iter().any(|iv| iv.overlaps(c.min_time, c.max_time)) {
                return Ok(true);
            }
            let data = self.shared.chunks.chunk(c, first + j as u64)?;
            let mut s: Vec<Sample> = data.iter().collect();
            retain_live(&mut s, deleted);
            if !s.is_empty() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn series_meta(&self, id: u32) -> Result<(Labels, Vec<ChunkMeta>), BlockError> {
        self.shared.index.series(id).map_err(|e| self.index_err(e))
    }

    fn first_chunk(&self, id: u32) -> Result<u64, BlockError> {
        self.shared.index.first_chunk_ordinal(id).ok_or_else(|| {
            BlockError::InvalidInput(format!("no series {id} in block {}", self.meta().ulid))
        })
    }

    /// The series matching `matchers` with at least one sample in `[mint, maxt]` (both
    /// inclusive), sorted by labels. Chunks are shared with the memory map as
    /// [`SeriesChunk::Xor`] after their CRC is verified; chunks that tombstones cut into
    /// are returned decoded without the deleted samples.
    pub fn select(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<Series>, BlockError> {
        let m = self.meta();
        if mint > maxt || maxt < m.min_time || mint >= m.max_time {
            return Ok(Vec::new());
        }
        let ids = self.postings(matchers)?;
        let mut out = Vec::new();
        for id in ids.iter() {
            let (labels, metas) = self.series_meta(id)?;
            let deleted = self.tombstones.get(id);
            let first = self.first_chunk(id)?;
            let mut chunks = Vec::new();
            for (j, c) in metas.iter().enumerate() {
                if c.max_time < mint || c.min_time > maxt {
                    continue;
                }
                let data = self.shared.chunks.chunk(c, first + j as u64)?;
                if deleted.iter().any(|iv| iv.overlaps(c.min_time, c.max_time)) {
                    let mut s: Vec<Sample> = data.iter().collect();
                    retain_live(&mut s, deleted);
                    if !s.is_empty() {
                        chunks.push(SeriesChunk::Decoded(s.into()));
                    }
                } else {
                    chunks.push(SeriesChunk::Xor(data));
                }
            }
            if chunks.iter().any(|c| has_sample_in(c, mint, maxt)) {
                out.push(Series::new(labels, chunks, mint, maxt));
            }
        }
        Ok(out)
    }

    /// Sorted label names of the series matching `matchers` (all series when empty).
    pub fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>, BlockError> {
        if matchers.is_empty() && self.tombstones.is_empty() {
            return Ok(self.shared.index.label_names());
        }
        let mut names = BTreeSet::new();
        for id in self.live_postings(matchers)?.iter() {
            let labels = self
                .shared
                .index
                .series_labels(id)
                .map_err(|e| self.index_err(e))?;
            for l in &labels {
                if !names.contains(l.name) {
                    names.insert(LabelStr::from(l.name));
                }
            }
        }
        Ok(names.into_iter().map(String::from).collect())
    }

    /// Sorted distinct values of `name` over the series matching `matchers`.
    pub fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
    ) -> Result<Vec<String>, BlockError> {
        if matchers.is_empty() && self.tombstones.is_empty() {
            return Ok(self.shared.index.label_values(name));
        }
        let mut values = BTreeSet::new();
        for id in self.live_postings(matchers)?.iter() {
            let labels = self
                .shared
                .index
                .series_labels(id)
                .map_err(|e| self.index_err(e))?;
            if let Some(v) = labels.get(name) {
                if !values.contains(v) {
                    values.insert(v.to_string());
                }
            }
        }
        Ok(values.into_iter().collect())
    }

    /// Every series with all its chunks, in label order, for compaction. Tombstones are
    /// applied: a series with deletions is re-chunked from its remaining samples, and a
    /// series with nothing left is skipped.
    pub fn series_chunks(
        &self,
    ) -> impl Iterator<Item = Result<(Labels, Vec<ChunkData>), BlockError>> + '_ {
        (0..self.shared.index.num_series()).filter_map(move |id| self.load_series(id).transpose())
    }

    fn load_series(&self, id: u32) -> Result<Option<(Labels, Vec<ChunkData>)>, BlockError> {
        let (labels, metas) = self.series_meta(id)?;
        let first = self.first_chunk(id)?;
        let mut chunks = Vec::with_capacity(metas.len());
        for (j, c) in metas.iter().enumerate() {
            chunks.push(self.shared.chunks.chunk(c, first + j as u64)?);
        }
        let deleted = self.tombstones.get(id);
        let touched = metas
            .iter()
            .any(|c| deleted.iter().any(|iv| iv.overlaps(c.min_time, c.max_time)));
        if touched {
            let mut samples: Vec<Sample> = chunks.iter().flat_map(ChunkData::iter).collect();
            retain_live(&mut samples, deleted);
            chunks = rechunk(&samples);
        }
        Ok((!chunks.is_empty()).then_some((labels, chunks)))
    }
}

/// Whether a chunk has a sample in `[mint, maxt]`.
fn has_sample_in(c: &SeriesChunk, mint: i64, maxt: i64) -> bool {
    if c.max_time() < mint || c.min_time() > maxt {
        return false;
    }
    if c.min_time() >= mint || c.max_time() <= maxt {
        // The first sample is at or after mint (and <= maxt), or the last one at or before
        // maxt (and >= mint).
        return true;
    }
    match c {
        SeriesChunk::Decoded(s) => {
            let i = s.partition_point(|x| x.t < mint);
            s.get(i).is_some_and(|x| x.t <= maxt)
        }
        SeriesChunk::Xor(d) => d.iter().seek(mint).is_some_and(|x| x.t <= maxt),
    }
}

impl From<BlockError> for StorageError {
    fn from(e: BlockError) -> Self {
        match e {
            BlockError::Io { path, source } => StorageError::Io(std::io::Error::new(
                source.kind(),
                format!("{}: {source}", path.display()),
            )),
            e @ BlockError::Corrupt { .. } => StorageError::Corrupt(e.to_string()),
            e => StorageError::Other(e.to_string()),
        }
    }
}

/// A [`Querier`] over one block and a time range (both ends inclusive).
///
/// Label names and values come from every series of the block that matches, at block
/// granularity (as in Prometheus): a block overlapping the range reports all its
/// matching series' labels, a block outside it none.
#[derive(Debug, Clone)]
pub struct BlockQuerier<'a> {
    block: &'a Block,
    mint: i64,
    maxt: i64,
}

impl BlockQuerier<'_> {
    fn overlaps(&self) -> bool {
        let m = self.block.meta();
        self.mint <= self.maxt && self.maxt >= m.min_time && self.mint < m.max_time
    }
}

impl Querier for BlockQuerier<'_> {
    fn select(&self, matchers: &[Matcher]) -> Result<Vec<Series>, StorageError> {
        Ok(self.block.select(matchers, self.mint, self.maxt)?)
    }

    fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        if !self.overlaps() {
            return Ok(Vec::new());
        }
        Ok(self.block.label_names(matchers)?)
    }

    fn label_values(&self, name: &str, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        if !self.overlaps() {
            return Ok(Vec::new());
        }
        Ok(self.block.label_values(name, matchers)?)
    }
}

impl Block {
    /// A querier over `[mint, maxt]` (both inclusive).
    pub fn querier(&self, mint: i64, maxt: i64) -> BlockQuerier<'_> {
        BlockQuerier {
            block: self,
            mint,
            maxt,
        }
    }
}

impl Queryable for Block {
    fn querier(&self, mint: i64, maxt: i64) -> Result<Box<dyn Querier + '_>, StorageError> {
        Ok(Box::new(Block::querier(self, mint, maxt)))
    }
}
