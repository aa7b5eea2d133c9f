//! Writing a block.

use std::fs;
use std::path::{Path, PathBuf};

use crate::chunk::{ChunkData, XorChunk, MAX_SAMPLES_PER_CHUNK};
use crate::fsutil::{create_tmp_dir, publish_dir, write_file_atomic};
use crate::index::{ChunkMeta, IndexWriter};
use crate::model::{Labels, Sample};

use super::chunks::{ChunkWriter, MAX_SEGMENT_SIZE};
use super::meta::{new_ulid, BlockMeta, BlockStats, CompactionMeta, META_VERSION};
use super::tombstones::Tombstones;
use super::{BlockError, CHUNKS_DIR, INDEX_FILE, META_FILE, TOMBSTONES_FILE};

/// Writes one block. Series are added in strictly increasing label order; nothing is
/// visible under `parent_dir` until [`BlockWriter::finish`] renames the complete,
/// fsynced directory into place. Dropping an unfinished writer removes its temporary
/// directory.
#[derive(Debug)]
pub struct BlockWriter {
    parent: PathBuf,
    tmp: PathBuf,
    ulid: String,
    min_time: i64,
    max_time: i64,
    chunks: Option<ChunkWriter>,
    index: IndexWriter,
    last: Option<Labels>,
    stats: BlockStats,
    done: bool,
}

impl BlockWriter {
    /// Starts a block for samples with `min_time <= t < max_time_exclusive`, written into
    /// `parent_dir/<ulid>.tmp-for-creation`.
    pub fn new(
        parent_dir: &Path,
        min_time: i64,
        max_time_exclusive: i64,
    ) -> Result<BlockWriter, BlockError> {
        Self::with_segment_size(parent_dir, min_time, max_time_exclusive, MAX_SEGMENT_SIZE)
    }

    /// As [`Self::new`], cutting chunk segment files at `segment_size` bytes (tests use
    /// small segments to exercise several files).
    pub fn with_segment_size(
        parent_dir: &Path,
        min_time: i64,
        max_time_exclusive: i64,
        segment_size: u64,
    ) -> Result<BlockWriter, BlockError> {
        if min_time >= max_time_exclusive {
            return Err(BlockError::InvalidInput(format!(
                "empty block range [{min_time}, {max_time_exclusive})"
            )));
        }
        let ulid = new_ulid();
        let tmp = create_tmp_dir(parent_dir, &ulid).map_err(BlockError::io(parent_dir))?;
        let mut w = BlockWriter {
            parent: parent_dir.to_path_buf(),
            tmp: tmp.clone(),
            ulid,
            min_time,
            max_time: max_time_exclusive,
            chunks: None,
            index: IndexWriter::new(),
            last: None,
            stats: BlockStats::default(),
            done: false,
        };
        w.chunks = Some(ChunkWriter::new(&tmp.join(CHUNKS_DIR), segment_size)?);
        Ok(w)
    }

    /// The id the block will have.
    pub fn ulid(&self) -> &str {
        &self.ulid
    }

    /// Adds a series. `labels` must be strictly greater than the previous series' labels
    /// and have no empty names or values; `chunks` must be non-empty chunks in time order
    /// without overlap, each entirely within the block's range. A series without chunks
    /// is not stored (a block holds only series with data), but still counts for the
    /// ordering check.
    pub fn add_series(&mut self, labels: &Labels, chunks: &[ChunkData]) -> Result<(), BlockError> {
        if let Some(prev) = &self.last {
            if prev >= labels {
                return Err(BlockError::InvalidInput(format!(
                    "series {labels} added after {prev}: labels must strictly increase"
                )));
            }
        }
        if labels.is_empty()
            || labels
                .iter()
                .any(|l| l.name.is_empty() || l.value.is_empty())
        {
            return Err(BlockError::InvalidInput(format!(
                "series {labels} has no labels or an empty name or value"
            )));
        }
        let mut prev_max: Option<i64> = None;
        for c in chunks {
            if c.num_samples() == 0 {
                return Err(BlockError::InvalidInput(format!("empty chunk in {labels}")));
            }
            if c.min_time() < self.min_time || c.max_time() >= self.max_time {
                return Err(BlockError::InvalidInput(format!(
                    "chunk [{}, {}] of {labels} outside the block range [{}, {})",
                    c.min_time(),
                    c.max_time(),
                    self.min_time,
                    self.max_time
                )));
            }
            if prev_max.is_some_and(|p| c.min_time() <= p) {
                return Err(BlockError::InvalidInput(format!(
                    "chunks of {labels} overlap or are out of order"
                )));
            }
            prev_max = Some(c.max_time());
        }
        self.last = Some(labels.clone());
        if chunks.is_empty() {
            return Ok(());
        }
        let Some(w) = self.chunks.as_mut() else {
            return Err(BlockError::InvalidInput("writer already finished".into()));
        };
        let mut metas = Vec::with_capacity(chunks.len());
        for c in chunks {
            metas.push(ChunkMeta {
                min_time: c.min_time(),
                max_time: c.max_time(),
                chunk_ref: w.write(c)?,
            });
            self.stats.num_samples += c.num_samples() as u64;
        }
        self.stats.num_chunks += chunks.len() as u64;
        self.stats.num_series += 1;
        let index_path = self.tmp.join(INDEX_FILE);
        self.index
            .add_series(labels, &metas)
            .map_err(|e| BlockError::from_index(index_path, e))
    }

    /// Writes the index, tombstones and meta, fsyncs everything and renames the directory
    /// to `parent_dir/<ulid>`. With empty `sources` the block's own id is recorded as its
    /// only source (a level-1 block).
    pub fn finish(
        mut self,
        level: u32,
        sources: Vec<String>,
        parents: Vec<String>,
    ) -> Result<BlockMeta, BlockError> {
        let Some(chunks) = self.chunks.take() else {
            return Err(BlockError::InvalidInput("writer already finished".into()));
        };
        chunks.finish()?;
        let index = std::mem::take(&mut self.index);
        let index_path = self.tmp.join(INDEX_FILE);
        index
            .write(&index_path)
            .map_err(|e| BlockError::from_index(&index_path, e))?;
        let tomb_path = self.tmp.join(TOMBSTONES_FILE);
        write_file_atomic(&tomb_path, &Tombstones::new().encode())
            .map_err(BlockError::io(&tomb_path))?;
        let sources = if sources.is_empty() {
            vec![self.ulid.clone()]
        } else {
            sources
        };
        let meta = BlockMeta {
            ulid: self.ulid.clone(),
            min_time: self.min_time,
            max_time: self.max_time,
            stats: self.stats.clone(),
            compaction: CompactionMeta {
                level,
                sources,
                parents,
            },
            version: META_VERSION,
        };
        let meta_path = self.tmp.join(META_FILE);
        write_file_atomic(&meta_path, &meta.encode()?).map_err(BlockError::io(&meta_path))?;
        publish_dir(&self.tmp, &self.parent, &self.ulid).map_err(BlockError::io(&self.tmp))?;
        self.done = true;
        Ok(meta)
    }
}

impl Drop for BlockWriter {
    fn drop(&mut self) {
        if !self.done {
            let _ = fs::remove_dir_all(&self.tmp);
        }
    }
}

/// Re-chunks samples (sorted, strictly increasing t) into chunks of
/// [`MAX_SAMPLES_PER_CHUNK`] samples — for cutting chunks at block boundaries.
pub fn rechunk(samples: &[Sample]) -> Vec<ChunkData> {
    samples
        .chunks(MAX_SAMPLES_PER_CHUNK)
        .map(|part| {
            let mut c = XorChunk::new();
            for s in part {
                c.append(s.t, s.v);
            }
            c.freeze()
        })
        .collect()
}
