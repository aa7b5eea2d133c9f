//! The WAL reader of a remote write queue: follows Aion's own WAL segment by segment
//! (series records map references to label sets, samples records become samples to
//! send), starting from the newest checkpoint's series, and hands samples to the shards.
//! Ingestion never waits for it: when the shards are full it simply stops reading, and
//! the data waits in the WAL.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::mpsc;

use super::progress::{self, Key, Progress, PROGRESS_VERSION};
use super::proto;
use super::queue::{note_read, Item, QueueMetrics, ShardState, WireLabels};
use crate::config::relabel::process;
use crate::config::RelabelConfig;
use crate::model::{Labels, LabelsBuilder};
use crate::wal::{read_segment_from, segment_numbers, Record, RefSample, RefSeries};

/// How often the reader looks for new WAL data when it has caught up.
const POLL: Duration = Duration::from_millis(100);
/// How often progress is written while running.
const SAVE_EVERY: Duration = Duration::from_secs(1);
/// Bytes read from a segment per call.
const READ_CHUNK: usize = 8 << 20;

/// Keeps WAL segments a queue still needs from being deleted (see
/// [`crate::db::Db::wal_segment_hold`]).
pub trait SegmentHold: Send {
    /// Segments from `segment` on are still needed.
    fn hold_from(&self, segment: u32);
}

/// Everything the reader needs.
pub struct Watcher {
    /// The WAL directory.
    pub wal_dir: PathBuf,
    /// The progress file.
    pub progress_path: PathBuf,
    /// The queue's identity, recorded in the progress file.
    pub identity: String,
    /// `write_relabel_configs`.
    pub relabel: Vec<RelabelConfig>,
    /// External labels added to every series that lacks them.
    pub external: Labels,
    /// One channel per shard.
    pub senders: Vec<mpsc::Sender<Item>>,
    /// One progress state per shard.
    pub states: Vec<Arc<Mutex<ShardState>>>,
    /// Counters.
    pub metrics: Arc<QueueMetrics>,
    /// Set (after the shards have stopped) to make the reader save and return.
    pub stop: Arc<AtomicBool>,
    /// Segment retention hook.
    pub hold: Option<Box<dyn SegmentHold>>,
    /// `sample_age_limit` in milliseconds: older samples are dropped (0 = no limit).
    pub age_limit_ms: i64,
}

/// Newest checkpoint directory (`checkpoint.NNNNNNNN`) of a WAL directory.
pub fn newest_checkpoint(wal_dir: &Path) -> Option<(u32, PathBuf)> {
    let rd = std::fs::read_dir(wal_dir).ok()?;
    rd.filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_string();
            let n = name.strip_prefix("checkpoint.")?;
            if n.len() != 8 || !n.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            Some((n.parse().ok()?, e.path()))
        })
        .max_by_key(|(n, _)| *n)
}

/// The labels as sent: external labels added where missing, then relabelled.
pub fn wire_labels(
    labels: &Labels,
    external: &Labels,
    rules: &[RelabelConfig],
) -> Option<WireLabels> {
    let with_ext = if external.is_empty() {
        labels.clone()
    } else {
        let mut b: LabelsBuilder = labels.builder();
        for l in external.iter() {
            if !labels.has(l.name) {
                b.set(l.name, l.value);
            }
        }
        b.labels()
    };
    let out = process(&with_ext, rules)?;
    if out.is_empty() {
        return None;
    }
    Some(Arc::new(
        out.iter()
            .map(|l| proto::Label {
                name: l.name.to_string(),
                value: l.value.to_string(),
            })
            .collect(),
    ))
}

struct Run {
    w: Watcher,
    /// Series by reference: the segment (or checkpoint) that last listed it, and its
    /// labels as sent (`None`: dropped by relabelling).
    series: HashMap<u64, (u32, Option<WireLabels>)>,
    /// Number of the newest checkpoint read.
    checkpoint: Option<u32>,
    enqueued: Vec<u64>,
    /// Samples before this key are not sent (they predate the queue).
    start: Key,
    /// The previous run's progress while reading the part it may have sent.
    resume: Option<Progress>,
    segment: u32,
    offset: u64,
    last_saved: Option<Vec<Key>>,
    disconnected: bool,
}

impl Watcher {
    /// Reads the WAL until stopped; saves progress on the way and at the end.
    pub fn run(self) {
        let n = self.senders.len();
        let resume = match progress::load(&self.progress_path, &self.identity) {
            Ok(p) => p,
            Err(e) => {
                log::error!(target: "aion::remote", "ignoring remote write progress: {e}");
                None
            }
        };
        let segs = segment_numbers(&self.wal_dir).unwrap_or_default();
        let first = segs.first().copied().unwrap_or(0);
        let last = segs.last().copied().unwrap_or(0);
        let start = match resume.as_ref().and_then(Progress::resume_at) {
            Some(k) => k,
            None => {
                let len = std::fs::metadata(self.wal_dir.join(format!("{last:08}")))
                    .map(|m| m.len())
                    .unwrap_or(0);
                Key::record(last, len)
            }
        };
        if start.segment < first {
            let lost = u64::from(first - start.segment);
            self.metrics
                .segments_lost
                .fetch_add(lost, Ordering::Relaxed);
            log::warn!(target: "aion::remote", "queue {}: {lost} WAL segment(s) it had not sent were deleted", self.identity);
        }
        if let Some(h) = &self.hold {
            h.hold_from(start.segment.max(first));
        }
        for st in &self.states {
            st.lock().next_key = start;
        }
        let mut run = Run {
            series: HashMap::new(),
            checkpoint: None,
            enqueued: vec![0; n],
            start,
            resume,
            segment: first,
            offset: 0,
            last_saved: None,
            disconnected: false,
            w: self,
        };
        if let Some((n, dir)) = newest_checkpoint(&run.w.wal_dir) {
            run.load_checkpoint(n, &dir);
        }
        run.main_loop();
        run.save();
    }
}

impl Run {
    fn load_checkpoint(&mut self, n: u32, dir: &Path) {
        self.checkpoint = Some(n);
        let mut found = Vec::new();
        let res = crate::wal::read_dir(dir, |rec| {
            if let Record::Series(s) = rec {
                found.extend(s);
            }
        });
        if let Err(e) = res {
            log::warn!(target: "aion::remote", "reading checkpoint {}: {e}", dir.display());
        }
        for s in found {
            self.add_series(s, n);
        }
    }

    fn add_series(&mut self, s: RefSeries, segment: u32) {
        let wire = wire_labels(&s.labels, &self.w.external, &self.w.relabel);
        self.series.insert(s.series_ref, (segment, wire));
    }

    /// Forgets the series a new checkpoint no longer lists once the reader is past it:
    /// they left the head, and a series that comes back gets a new reference.
    fn collect_garbage(&mut self) {
        let Some((n, dir)) = newest_checkpoint(&self.w.wal_dir) else {
            return;
        };
        if self.checkpoint.is_some_and(|c| c >= n) || self.segment < n {
            return;
        }
        self.load_checkpoint(n, &dir);
        self.series.retain(|_, (seg, _)| *seg >= n);
    }

    fn main_loop(&mut self) {
        let mut last_save = Instant::now();
        while !self.w.stop.load(Ordering::Acquire) && !self.disconnected {
            let progressed = self.step();
            if last_save.elapsed() >= SAVE_EVERY {
                self.collect_garbage();
                self.save();
                last_save = Instant::now();
            }
            if !progressed {
                std::thread::sleep(POLL);
            }
        }
    }

    /// Reads what is new; returns whether anything was.
    fn step(&mut self) -> bool {
        let segs = match segment_numbers(&self.w.wal_dir) {
            Ok(s) => s,
            Err(e) => {
                log::warn!(target: "aion::remote", "listing WAL segments: {e}");
                return false;
            }
        };
        if !segs.contains(&self.segment) {
            // Deleted under us (or not yet created): go to the next one there is.
            return match segs.iter().find(|&&s| s > self.segment) {
                Some(&next) => {
                    {
                        let lost = u64::from(next - self.segment);
                        self.w
                            .metrics
                            .segments_lost
                            .fetch_add(lost, Ordering::Relaxed);
                        log::warn!(target: "aion::remote", "queue {}: WAL segments {:08}..{:08} were deleted before they were sent", self.w.identity, self.segment, next);
                        if let Some((n, dir)) = newest_checkpoint(&self.w.wal_dir) {
                            self.load_checkpoint(n, &dir);
                        }
                    }
                    self.segment = next;
                    self.offset = 0;
                    true
                }
                None => false,
            };
        }
        let read = match read_segment_from(&self.w.wal_dir, self.segment, self.offset, READ_CHUNK) {
            Ok(r) => r,
            Err(e) => {
                log::warn!(target: "aion::remote", "reading WAL segment {:08}: {e}", self.segment);
                return false;
            }
        };
        let got = !read.records.is_empty();
        for rec in read.records {
            self.handle(rec.offset, rec.record);
            if self.disconnected {
                return true;
            }
            self.offset = rec.end;
        }
        if got {
            return true;
        }
        let has_next = segs.iter().any(|&s| s > self.segment);
        if has_next {
            // A finished segment: nothing more will be written to it.
            if let Some(reason) = read.incomplete {
                let again =
                    read_segment_from(&self.w.wal_dir, self.segment, self.offset, READ_CHUNK);
                if again.as_ref().is_ok_and(|r| !r.records.is_empty()) {
                    return true;
                }
                log::warn!(target: "aion::remote", "WAL segment {:08} ends with a bad record at offset {} ({reason}); going on with the next segment", self.segment, self.offset);
            }
            self.segment += 1;
            self.offset = 0;
            return true;
        }
        false
    }

    fn handle(&mut self, offset: u64, rec: Record) {
        match rec {
            Record::Series(list) => {
                let seg = self.segment;
                for s in list {
                    self.add_series(s, seg);
                }
            }
            Record::Samples(list) => self.samples(offset, list),
            _ => {}
        }
    }

    fn samples(&mut self, offset: u64, list: Vec<RefSample>) {
        let n = self.w.senders.len() as u64;
        for (idx, s) in list.into_iter().enumerate() {
            let key = Key {
                segment: self.segment,
                offset,
                index: u32::try_from(idx).unwrap_or(u32::MAX),
            };
            if key < self.start {
                continue;
            }
            let shard = usize::try_from(s.series_ref % n.max(1)).unwrap_or(0);
            let done = self
                .resume
                .as_ref()
                .is_some_and(|p| p.done(s.series_ref, key));
            let too_old = self.w.age_limit_ms > 0
                && s.t < crate::db::system_clock_ms().saturating_sub(self.w.age_limit_ms);
            let Some((_, Some(labels))) = self.series.get(&s.series_ref).filter(|_| !too_old)
            else {
                // Unknown series, dropped by relabelling, or older than the age limit.
                self.w
                    .metrics
                    .samples_dropped
                    .fetch_add(1, Ordering::Relaxed);
                continue;
            };
            let item = if done {
                Item { key, sample: None }
            } else {
                note_read(&self.w.metrics, s.t);
                Item {
                    key,
                    sample: Some((labels.clone(), s.t, s.v)),
                }
            };
            if item.sample.is_some() {
                self.w
                    .metrics
                    .samples_pending
                    .fetch_add(1, Ordering::Relaxed);
            }
            let real = item.sample.is_some();
            let Some(tx) = self.w.senders.get(shard) else {
                continue;
            };
            if tx.blocking_send(item).is_err() {
                // The shards are gone: the queue is stopping.
                if real {
                    let _ = self.w.metrics.samples_pending.fetch_update(
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                        |p| Some(p.saturating_sub(1)),
                    );
                }
                self.disconnected = true;
                return;
            }
            if let Some(e) = self.enqueued.get_mut(shard) {
                *e += 1;
            }
        }
        if self
            .resume
            .as_ref()
            .and_then(Progress::last)
            .is_some_and(|last| Key::record(self.segment, offset) > last)
        {
            self.resume = None;
        }
    }

    /// The progress of every shard now (see [`super::progress`]).
    fn snapshot(&self) -> Vec<Key> {
        let here = Key::record(self.segment, self.offset).max(self.start);
        self.w
            .states
            .iter()
            .zip(&self.enqueued)
            .map(|(st, &enq)| {
                let st = st.lock();
                if st.completed >= enq {
                    here
                } else {
                    st.next_key
                }
            })
            .collect()
    }

    fn save(&mut self) {
        let keys = self.snapshot();
        if let Some(h) = &self.w.hold {
            if let Some(min) = keys.iter().min() {
                h.hold_from(min.segment);
            }
        }
        if self.last_saved.as_ref() == Some(&keys) {
            return;
        }
        let p = Progress {
            version: PROGRESS_VERSION,
            queue: self.w.identity.clone(),
            shards: keys.clone(),
        };
        match progress::store(&self.w.progress_path, &p) {
            Ok(()) => self.last_saved = Some(keys),
            Err(e) => log::error!(target: "aion::remote", "saving remote write progress: {e}"),
        }
    }
}

impl SegmentHold for crate::db::WalSegmentHold {
    fn hold_from(&self, segment: u32) {
        crate::db::WalSegmentHold::hold_from(self, segment);
    }
}
