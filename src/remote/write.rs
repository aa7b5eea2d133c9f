//! Remote write: one queue per `remote_write` entry, each a WAL reader thread
//! ([`super::watcher`]) feeding shard tasks ([`super::queue`]). A reload restarts the
//! queues whose configuration (or the external labels) changed and leaves the others
//! running; a restarted queue resumes from its progress file.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::{mpsc, watch};

use super::client::RemoteClient;
use super::progress::progress_path;
use super::queue::{QueueMetrics, Shard, ShardState};
use super::watcher::{SegmentHold, Watcher};
use crate::config::{Config, RemoteWriteConfig};
use crate::model::Labels;

/// Makes a [`SegmentHold`] for a new queue.
pub type HoldFactory = Arc<dyn Fn() -> Option<Box<dyn SegmentHold>> + Send + Sync>;

struct Running {
    cfg: RemoteWriteConfig,
    external: Labels,
    remote_name: String,
    metrics: Arc<QueueMetrics>,
    stop_shards: watch::Sender<bool>,
    shards: Vec<tokio::task::JoinHandle<()>>,
    stop_reader: Arc<AtomicBool>,
    reader: Option<std::thread::JoinHandle<()>>,
    min_shards: usize,
    max_shards: usize,
}

impl Running {
    /// Stops the shards (a request in flight finishes first), then the reader, which
    /// saves the final progress.
    async fn stop(mut self) {
        let _ = self.stop_shards.send(true);
        for h in self.shards.drain(..) {
            let _ = h.await;
        }
        self.stop_reader.store(true, Ordering::Release);
        if let Some(r) = self.reader.take() {
            let _ = tokio::task::spawn_blocking(move || r.join()).await;
        }
    }
}

/// A metric sample of the remote write queues, for the server's `/metrics`.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteMetric {
    /// Metric name.
    pub name: &'static str,
    /// HELP text.
    pub help: &'static str,
    /// Counter (true) or gauge.
    pub counter: bool,
    /// `remote_name` and `url`.
    pub labels: Vec<(&'static str, String)>,
    /// The value.
    pub value: f64,
}

/// The remote write queues of a server.
pub struct RemoteWrite {
    data_dir: PathBuf,
    wal_dir: PathBuf,
    holds: HoldFactory,
    queues: Mutex<HashMap<String, Running>>,
}

impl std::fmt::Debug for RemoteWrite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteWrite")
            .field("queues", &self.queues.lock().len())
            .finish()
    }
}

/// The identity of a queue: its name, or its URL when unnamed. Progress is kept per
/// identity, so a queue resumes where it stopped as long as it keeps its name (or URL).
pub fn identity(cfg: &RemoteWriteConfig) -> String {
    if cfg.name.is_empty() {
        cfg.url.clone()
    } else {
        cfg.name.clone()
    }
}

impl RemoteWrite {
    /// No queues yet; `data_dir` holds the progress files, `wal_dir` is the WAL read.
    pub fn new(data_dir: PathBuf, wal_dir: PathBuf, holds: HoldFactory) -> Arc<RemoteWrite> {
        Arc::new(RemoteWrite {
            data_dir,
            wal_dir,
            holds,
            queues: Mutex::new(HashMap::new()),
        })
    }

    /// Starts, restarts and stops queues to match `cfg`. Must run inside a tokio runtime.
    pub async fn apply_config(&self, cfg: &Config) {
        let external = cfg.global.external_labels();
        let wanted: HashMap<String, &RemoteWriteConfig> =
            cfg.remote_write.iter().map(|c| (identity(c), c)).collect();
        let mut to_stop = Vec::new();
        {
            let mut q = self.queues.lock();
            let ids: Vec<String> = q.keys().cloned().collect();
            for id in ids {
                let keep = wanted.get(&id).is_some_and(|c| {
                    q.get(&id)
                        .is_some_and(|r| r.cfg == **c && r.external == external)
                });
                if !keep {
                    if let Some(r) = q.remove(&id) {
                        to_stop.push(r);
                    }
                }
            }
        }
        for r in to_stop {
            log::info!(target: "aion::remote", "stopping remote write queue remote_name={} url={}", r.remote_name, r.cfg.url);
            r.stop().await;
        }
        for (id, c) in wanted {
            if self.queues.lock().contains_key(&id) {
                continue;
            }
            match self.start(&id, c, &external) {
                Ok(r) => {
                    log::info!(target: "aion::remote", "started remote write queue remote_name={} url={} shards={}", r.remote_name, c.url, r.shards.len());
                    self.queues.lock().insert(id, r);
                }
                Err(e) => {
                    log::error!(target: "aion::remote", "cannot start remote write queue url={} err={e}", c.url)
                }
            }
        }
    }

    fn start(&self, id: &str, c: &RemoteWriteConfig, external: &Labels) -> Result<Running, String> {
        let q = &c.queue_config;
        let n = q.min_shards.max(1);
        let metrics = Arc::new(QueueMetrics::default());
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut senders = Vec::with_capacity(n);
        let mut states = Vec::with_capacity(n);
        let mut shards = Vec::with_capacity(n);
        let remote_name = c.remote_name();
        for _ in 0..n {
            let client = RemoteClient::new(
                &c.url,
                c.http_client(),
                c.headers.clone(),
                c.remote_timeout.std(),
            )?;
            let (tx, rx) = mpsc::channel(q.capacity.max(1));
            let state = Arc::new(Mutex::new(ShardState::default()));
            let shard = Shard {
                rx,
                state: state.clone(),
                cfg: q.clone(),
                client,
                metrics: metrics.clone(),
                stop: stop_rx.clone(),
                name: remote_name.clone(),
            };
            shards.push(tokio::spawn(shard.run()));
            senders.push(tx);
            states.push(state);
        }
        metrics.shards.store(n as u64, Ordering::Relaxed);
        let stop_reader = Arc::new(AtomicBool::new(false));
        let watcher = Watcher {
            wal_dir: self.wal_dir.clone(),
            progress_path: progress_path(&self.data_dir, id),
            identity: id.to_string(),
            relabel: c.write_relabel_configs.clone(),
            external: external.clone(),
            senders,
            states,
            metrics: metrics.clone(),
            stop: stop_reader.clone(),
            hold: (self.holds)(),
            age_limit_ms: q.sample_age_limit.ms(),
        };
        let reader = std::thread::Builder::new()
            .name("remote-write-wal".into())
            .spawn(move || watcher.run())
            .map_err(|e| format!("starting WAL reader: {e}"))?;
        Ok(Running {
            cfg: c.clone(),
            external: external.clone(),
            remote_name,
            metrics,
            stop_shards: stop_tx,
            shards,
            stop_reader,
            reader: Some(reader),
            min_shards: q.min_shards,
            max_shards: q.max_shards,
        })
    }

    /// Stops every queue, saving their progress.
    pub async fn stop(&self) {
        let all: Vec<Running> = self.queues.lock().drain().map(|(_, r)| r).collect();
        for r in all {
            r.stop().await;
        }
    }

    /// Identities of the running queues, sorted.
    pub fn queue_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.queues.lock().keys().cloned().collect();
        v.sort();
        v
    }

    /// The `prometheus_remote_storage_*` samples of every running queue.
    pub fn metrics(&self) -> Vec<RemoteMetric> {
        let mut out = Vec::new();
        let mut highest_read = 0u64;
        for r in self.queues.lock().values() {
            let m = &r.metrics;
            let labels = vec![
                ("remote_name", r.remote_name.clone()),
                ("url", r.cfg.url.clone()),
            ];
            let mut push = |name, help, counter, value: f64| {
                out.push(RemoteMetric {
                    name,
                    help,
                    counter,
                    labels: labels.clone(),
                    value,
                })
            };
            let get = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed) as f64;
            push(
                "prometheus_remote_storage_samples_total",
                "Total number of samples sent to remote storage.",
                true,
                get(&m.samples_total),
            );
            push("prometheus_remote_storage_samples_failed_total", "Total number of samples which failed on send to remote storage, non-recoverable errors.", true, get(&m.samples_failed));
            push("prometheus_remote_storage_samples_retried_total", "Total number of samples which failed on send to remote storage but were retried because the send error was recoverable.", true, get(&m.samples_retried));
            push("prometheus_remote_storage_samples_dropped_total", "Total number of samples which were dropped after being read from the WAL before being sent via remote write (relabelling, unknown series).", true, get(&m.samples_dropped));
            push("prometheus_remote_storage_samples_pending", "The number of samples pending in the queues shards to be sent to the remote storage.", false, get(&m.samples_pending));
            push("prometheus_remote_storage_queue_highest_sent_timestamp_seconds", "Timestamp from a WAL sample, the highest timestamp successfully sent by this queue, in seconds since epoch.", false, get(&m.highest_sent_ms) / 1000.0);
            push(
                "prometheus_remote_storage_shards",
                "The number of shards used for parallel sending to the remote storage.",
                false,
                get(&m.shards),
            );
            push("prometheus_remote_storage_shards_desired", "The number of shards that the queues shard calculation wants to run based on the rate of samples in vs. samples out.", false, get(&m.shards));
            push(
                "prometheus_remote_storage_shards_min",
                "The minimum number of shards that the queue is allowed to run.",
                false,
                r.min_shards as f64,
            );
            push(
                "prometheus_remote_storage_shards_max",
                "The maximum number of shards that the queue is allowed to run.",
                false,
                r.max_shards as f64,
            );
            push("prometheus_remote_storage_bytes_total", "The total number of bytes of data (not metadata) sent by the queue after compression.", true, get(&m.bytes_total));
            push(
                "prometheus_remote_storage_sent_batch_duration_seconds_sum",
                "Duration of send calls to the remote storage (sum).",
                true,
                get(&m.batch_micros) / 1e6,
            );
            push(
                "prometheus_remote_storage_sent_batch_duration_seconds_count",
                "Duration of send calls to the remote storage (count).",
                true,
                get(&m.batches),
            );
            push(
                "aion_remote_storage_wal_segments_lost_total",
                "WAL segments deleted before this queue had sent their samples.",
                true,
                get(&m.segments_lost),
            );
            highest_read = highest_read.max(m.highest_read_ms.load(Ordering::Relaxed));
        }
        if !self.queues.lock().is_empty() {
            out.push(RemoteMetric {
                name: "prometheus_remote_storage_highest_timestamp_in_seconds",
                help: "Highest timestamp that has come into the remote storage via the Appender interface, in seconds since epoch.",
                counter: false,
                labels: Vec::new(),
                value: highest_read as f64 / 1000.0,
            });
        }
        out
    }
}
