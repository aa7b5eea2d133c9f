//! Second pass: parse samples of a group of block windows on one thread and encode them
//! into per-window XOR chunks on another; then write one block per window.

use std::collections::HashMap;
use std::fs::File;
use std::hash::{BuildHasherDefault, Hasher};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, sync_channel, Receiver, Sender, SyncSender};
use std::sync::Mutex;

use crate::block::{BlockMeta, BlockWriter};
use crate::chunk::{ChunkData, XorChunk, MAX_SAMPLES_PER_CHUNK};
use crate::exposition::{Entry, Format, Parser, ParserState, SeriesEntry};
use crate::model::{Label, Labels};

use super::reader::PieceReader;
use super::{BackfillError, Progress};

/// Samples per batch handed from the parser to the encoder.
const BATCH: usize = 16 * 1024;
/// Batches in flight between the two threads.
const IN_FLIGHT: usize = 4;

/// One parsed sample, addressed by series id.
#[derive(Clone, Copy)]
struct Rec {
    id: u32,
    t: i64,
    v: f64,
    line: u64,
}

/// A fast, non-cryptographic hasher for series text (the input is local and trusted not
/// to be adversarial against the hash table).
#[derive(Default, Clone, Copy)]
struct TextHasher(u64);

const K: u64 = 0x517c_c1b7_2722_0a95;

impl Hasher for TextHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut h = self.0;
        let mut it = bytes.chunks_exact(8);
        for c in &mut it {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            h = (h.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(K);
        }
        let rem = it.remainder();
        if !rem.is_empty() {
            let mut w = [0u8; 8];
            for (d, s) in w.iter_mut().zip(rem) {
                *d = *s;
            }
            h = (h.rotate_left(5) ^ u64::from_le_bytes(w) ^ rem.len() as u64).wrapping_mul(K);
        }
        self.0 = h;
    }

    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.0 = (self.0.rotate_left(5) ^ n as u64).wrapping_mul(K);
    }

    #[inline]
    fn finish(&self) -> u64 {
        // Spread the high bits into the low ones used for bucket selection.
        self.0 ^ (self.0 >> 29)
    }
}

type TextMap = HashMap<Box<[u8]>, u32, BuildHasherDefault<TextHasher>>;

/// Series identities: text as written → id → labels.
#[derive(Default)]
pub(crate) struct SeriesTable {
    by_text: TextMap,
    by_labels: HashMap<Labels, u32>,
    pub(crate) labels: Vec<Labels>,
    /// Scratch key: type byte + series text.
    key: Vec<u8>,
    last_key: Vec<u8>,
    last_id: Option<u32>,
}

impl SeriesTable {
    /// The id of the series on this line, creating it on first sight. `extra` labels
    /// are set on every series (replacing a label of the same name).
    #[inline]
    fn resolve(&mut self, s: &SeriesEntry<'_>, extra: &[Label]) -> Result<u32, BackfillError> {
        if let Some(id) = self.last_id {
            if s.repeats_previous() {
                return Ok(id);
            }
        }
        // The type in effect changes how `le`/`quantile` read, so it is part of the key.
        self.key.clear();
        self.key.push(s.metric_type() as u8);
        self.key.extend_from_slice(s.series_text());
        if let Some(id) = self.last_id {
            if self.key == self.last_key {
                return Ok(id);
            }
        }
        let id = match self.by_text.get(self.key.as_slice()) {
            Some(&id) => id,
            None => self.create(s, extra)?,
        };
        std::mem::swap(&mut self.key, &mut self.last_key);
        self.last_id = Some(id);
        Ok(id)
    }

    /// Forgets the previous line's series (after a skipped sample or metadata).
    #[inline]
    fn break_chain(&mut self) {
        self.last_id = None;
    }

    #[cold]
    fn create(&mut self, s: &SeriesEntry<'_>, extra: &[Label]) -> Result<u32, BackfillError> {
        let parsed = s.to_labels()?;
        let mut b = parsed.builder();
        // Empty values mean "no such label", as in Prometheus.
        b.retain(|l| !l.value.is_empty());
        for l in extra {
            b.set(&l.name, &l.value);
        }
        let labels = b.labels();
        labels
            .validate()
            .map_err(|e| BackfillError::InvalidSample {
                line: s.line,
                reason: format!("invalid series {labels}: {e}"),
            })?;
        let id = match self.by_labels.get(&labels) {
            Some(&id) => id,
            None => {
                let id =
                    u32::try_from(self.labels.len()).map_err(|_| BackfillError::InvalidSample {
                        line: s.line,
                        reason: "too many series".into(),
                    })?;
                self.labels.push(labels.clone());
                self.by_labels.insert(labels, id);
                id
            }
        };
        self.by_text.insert(self.key.as_slice().into(), id);
        Ok(id)
    }

    /// Number of distinct series.
    pub(crate) fn len(&self) -> usize {
        self.labels.len()
    }
}

/// One series' data in one window.
struct Acc {
    chunks: Vec<ChunkData>,
    open: XorChunk,
    last_t: i64,
    last_v: u64,
}

/// One block window's data.
pub(crate) struct Window {
    accs: Vec<Option<Box<Acc>>>,
    min_t: i64,
    max_t: i64,
    samples: u64,
}

/// A sample the encoder refused.
enum Refused {
    OutOfOrder {
        line: u64,
        id: u32,
        t: i64,
        last: i64,
    },
    Duplicate {
        line: u64,
        id: u32,
        t: i64,
    },
}

struct Encoder {
    block_ms: i64,
    lo: i64,
    windows: Vec<Window>,
}

impl Encoder {
    fn new(block_ms: i64, lo: i64, hi: i64) -> Self {
        Encoder {
            block_ms,
            lo,
            windows: (lo..hi)
                .map(|_| Window {
                    accs: Vec::new(),
                    min_t: i64::MAX,
                    max_t: i64::MIN,
                    samples: 0,
                })
                .collect(),
        }
    }

    #[inline]
    fn push(&mut self, r: Rec) -> Result<(), Refused> {
        let w = r.t.div_euclid(self.block_ms) - self.lo;
        let Some(win) = usize::try_from(w)
            .ok()
            .and_then(|w| self.windows.get_mut(w))
        else {
            return Ok(());
        };
        let idx = r.id as usize;
        if win.accs.len() <= idx {
            win.accs.resize_with(idx + 1, || None);
        }
        let Some(slot) = win.accs.get_mut(idx) else {
            return Ok(());
        };
        let bits = r.v.to_bits();
        match slot {
            None => {
                let mut open = XorChunk::new();
                open.append(r.t, r.v);
                *slot = Some(Box::new(Acc {
                    chunks: Vec::new(),
                    open,
                    last_t: r.t,
                    last_v: bits,
                }));
            }
            Some(acc) => {
                if r.t <= acc.last_t {
                    if r.t < acc.last_t {
                        return Err(Refused::OutOfOrder {
                            line: r.line,
                            id: r.id,
                            t: r.t,
                            last: acc.last_t,
                        });
                    }
                    if bits != acc.last_v {
                        return Err(Refused::Duplicate {
                            line: r.line,
                            id: r.id,
                            t: r.t,
                        });
                    }
                    // An identical duplicate is dropped, as Prometheus does.
                    return Ok(());
                }
                if acc.open.num_samples() >= MAX_SAMPLES_PER_CHUNK {
                    let full = std::mem::take(&mut acc.open);
                    acc.chunks.push(full.freeze());
                }
                acc.open.append(r.t, r.v);
                acc.last_t = r.t;
                acc.last_v = bits;
            }
        }
        win.min_t = win.min_t.min(r.t);
        win.max_t = win.max_t.max(r.t);
        win.samples += 1;
        Ok(())
    }
}

/// Everything the second pass of one group produced.
pub(crate) struct GroupOutput {
    pub(crate) windows: Vec<Window>,
    pub(crate) samples: u64,
}

/// Options the ingest needs.
pub(crate) struct IngestParams<'a> {
    pub(crate) input: &'a Path,
    pub(crate) block_ms: i64,
    /// First and one-past-last window number of the group.
    pub(crate) lo: i64,
    pub(crate) hi: i64,
    pub(crate) extra: &'a [Label],
    pub(crate) progress: &'a Progress,
}

/// Parses the whole input, keeping samples of windows `[lo, hi)`, encoded per window.
pub(crate) fn ingest_group(
    p: &IngestParams<'_>,
    table: &mut SeriesTable,
) -> Result<GroupOutput, BackfillError> {
    let (tx, rx) = sync_channel::<Vec<Rec>>(IN_FLIGHT);
    let (ret_tx, ret_rx) = channel::<Vec<Rec>>();
    let (block_ms, lo, hi) = (p.block_ms, p.lo, p.hi);
    std::thread::scope(|sc| {
        let enc = sc.spawn(move || encode_loop(Encoder::new(block_ms, lo, hi), rx, ret_tx));
        let parsed = parse_loop(p, table, tx, ret_rx);
        let encoded = enc.join().map_err(|_| BackfillError::Worker)?;
        // Report whichever problem comes first in the file.
        match (parsed, encoded) {
            (Ok(()), Ok(enc)) => {
                let samples = enc.windows.iter().map(|w| w.samples).sum();
                Ok(GroupOutput {
                    windows: enc.windows,
                    samples,
                })
            }
            (Ok(()), Err(r)) => Err(refused_error(r, table)),
            (Err(e), Ok(_)) => Err(e),
            (Err(e), Err(r)) => {
                let rl = match r {
                    Refused::OutOfOrder { line, .. } | Refused::Duplicate { line, .. } => line,
                };
                match e.line() {
                    Some(el) if el < rl => Err(e),
                    _ if matches!(e, BackfillError::EncoderStopped) => Err(refused_error(r, table)),
                    None => Err(e),
                    Some(_) => Err(refused_error(r, table)),
                }
            }
        }
    })
}

fn refused_error(r: Refused, table: &SeriesTable) -> BackfillError {
    let name = |id: u32| {
        table
            .labels
            .get(id as usize)
            .map(|l| l.to_string())
            .unwrap_or_default()
    };
    match r {
        Refused::OutOfOrder { line, id, t, last } => BackfillError::InvalidSample {
            line,
            reason: format!(
                "out of order sample for series {}: timestamp {t} is before {last}",
                name(id)
            ),
        },
        Refused::Duplicate { line, id, t } => BackfillError::InvalidSample {
            line,
            reason: format!(
                "duplicate sample for series {} at timestamp {t} with a different value",
                name(id)
            ),
        },
    }
}

fn encode_loop(
    mut enc: Encoder,
    rx: Receiver<Vec<Rec>>,
    ret: Sender<Vec<Rec>>,
) -> Result<Encoder, Refused> {
    for mut batch in rx {
        for r in batch.iter() {
            enc.push(*r)?;
        }
        batch.clear();
        // The parser may be gone already; then the batch is simply dropped.
        let _ = ret.send(batch);
    }
    Ok(enc)
}

fn parse_loop(
    p: &IngestParams<'_>,
    table: &mut SeriesTable,
    tx: SyncSender<Vec<Rec>>,
    ret: Receiver<Vec<Rec>>,
) -> Result<(), BackfillError> {
    let file = File::open(p.input).map_err(|source| BackfillError::Io {
        path: p.input.to_path_buf(),
        source,
    })?;
    let mut reader = PieceReader::new(file);
    let mut state = ParserState::default();
    let mut batch: Vec<Rec> = Vec::with_capacity(BATCH);
    let send = |batch: &mut Vec<Rec>| -> Result<(), BackfillError> {
        let n = batch.len() as u64;
        let next = ret.try_recv().unwrap_or_else(|_| Vec::with_capacity(BATCH));
        let full = std::mem::replace(batch, next);
        tx.send(full).map_err(|_| BackfillError::EncoderStopped)?;
        p.progress.samples.fetch_add(n, Ordering::Relaxed);
        Ok(())
    };
    loop {
        let before = reader.consumed();
        let Some((piece, is_last)) = reader.next_piece().map_err(|source| BackfillError::Io {
            path: p.input.to_path_buf(),
            source,
        })?
        else {
            // Empty input: the parser reports the missing `# EOF`.
            if let Some(Err(e)) = Parser::resume(&[], Format::OpenMetrics, state, true).next() {
                return Err(e.into());
            }
            break;
        };
        let mut parser = Parser::resume(piece, Format::OpenMetrics, state, is_last);
        for e in parser.by_ref() {
            let Entry::Series(s) = e? else {
                table.break_chain();
                continue;
            };
            let Some(t) = s.timestamp else {
                return Err(BackfillError::NoTimestamp { line: s.line });
            };
            let w = t.div_euclid(p.block_ms);
            if w < p.lo || w >= p.hi {
                table.break_chain();
                continue;
            }
            let id = table.resolve(&s, p.extra)?;
            batch.push(Rec {
                id,
                t,
                v: s.value,
                line: s.line,
            });
            if batch.len() >= BATCH {
                send(&mut batch)?;
            }
        }
        state = parser.state();
        p.progress
            .bytes
            .fetch_add(reader.consumed() - before, Ordering::Relaxed);
        if is_last {
            break;
        }
    }
    if !batch.is_empty() {
        send(&mut batch)?;
    }
    Ok(())
}

/// Writes one block per window that has samples into `parent`, on up to `threads`
/// threads. Returns the metas in window order.
pub(crate) fn write_blocks(
    windows: Vec<Window>,
    labels: &[Labels],
    parent: &Path,
    threads: usize,
) -> Result<Vec<BlockMeta>, BackfillError> {
    let windows: Vec<Window> = windows.into_iter().filter(|w| w.samples > 0).collect();
    let jobs: Vec<Mutex<Option<Window>>> =
        windows.into_iter().map(|w| Mutex::new(Some(w))).collect();
    let results: Vec<Mutex<Option<Result<BlockMeta, BackfillError>>>> =
        jobs.iter().map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    std::thread::scope(|sc| {
        for _ in 0..threads.max(1).min(jobs.len()) {
            sc.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let (Some(job), Some(out)) = (jobs.get(i), results.get(i)) else {
                    break;
                };
                let Some(w) = job.lock().ok().and_then(|mut g| g.take()) else {
                    continue;
                };
                let r = write_block(w, labels, parent);
                let failed = r.is_err();
                if let Ok(mut g) = out.lock() {
                    *g = Some(r);
                }
                if failed {
                    // Stop handing out more work.
                    next.store(usize::MAX / 2, Ordering::Relaxed);
                }
            });
        }
    });
    let mut metas = Vec::new();
    for r in results {
        match r.into_inner().ok().flatten() {
            Some(Ok(m)) => metas.push(m),
            Some(Err(e)) => return Err(e),
            None => {}
        }
    }
    Ok(metas)
}

fn write_block(w: Window, labels: &[Labels], parent: &Path) -> Result<BlockMeta, BackfillError> {
    let mut series: Vec<(u32, Box<Acc>)> = w
        .accs
        .into_iter()
        .enumerate()
        .filter_map(|(i, a)| Some((u32::try_from(i).ok()?, a?)))
        .collect();
    let empty = Labels::empty();
    let label_of = |id: u32| labels.get(id as usize).unwrap_or(&empty);
    series.sort_unstable_by(|a, b| label_of(a.0).cmp(label_of(b.0)));
    let max_excl = w.max_t.checked_add(1).ok_or(BackfillError::InvalidSample {
        line: 0,
        reason: "timestamp at the end of the representable range".into(),
    })?;
    let mut bw = BlockWriter::new(parent, w.min_t, max_excl)?;
    for (id, acc) in series {
        let mut acc = *acc;
        if acc.open.num_samples() > 0 {
            let last = std::mem::take(&mut acc.open);
            acc.chunks.push(last.freeze());
        }
        bw.add_series(label_of(id), &acc.chunks)?;
    }
    Ok(bw.finish(1, Vec::new(), Vec::new())?)
}
