//! The shards of a remote write queue: each shard receives samples in WAL order,
//! batches them (`max_samples_per_send`, `batch_send_deadline`), sends a batch at a
//! time and retries recoverable failures with exponential backoff, so that its progress
//! is always a clean prefix of its samples (see [`super::progress`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::{mpsc, watch};

use super::client::{RemoteClient, SendError};
use super::codec::encode;
use super::progress::Key;
use super::proto;
use crate::config::QueueConfig;

/// A series as sent: its labels after relabelling and external labels.
pub type WireLabels = Arc<Vec<proto::Label>>;

/// One entry of a shard's channel.
#[derive(Debug, Clone)]
pub struct Item {
    /// Position of the sample in the WAL.
    pub key: Key,
    /// The sample to send, or `None` for a marker: a sample a previous run already
    /// sent, which only advances the shard's progress.
    pub sample: Option<(WireLabels, i64, f64)>,
}

/// Progress of one shard, shared with the WAL reader.
#[derive(Debug, Default)]
pub struct ShardState {
    /// Items finished (sent, dropped as failed, or markers).
    pub completed: u64,
    /// Every item of this shard with a smaller key is finished.
    pub next_key: Key,
}

/// Counters of one queue, exported as `prometheus_remote_storage_*`.
#[derive(Debug, Default)]
pub struct QueueMetrics {
    /// Samples sent successfully.
    pub samples_total: AtomicU64,
    /// Samples that failed with a non-recoverable error (dropped).
    pub samples_failed: AtomicU64,
    /// Samples resent after a recoverable error.
    pub samples_retried: AtomicU64,
    /// Samples read from the WAL and dropped before sending (relabelling, unknown series).
    pub samples_dropped: AtomicU64,
    /// Samples queued and not yet finished.
    pub samples_pending: AtomicU64,
    /// Newest timestamp (ms) read from the WAL for this queue.
    pub highest_read_ms: AtomicU64,
    /// Newest timestamp (ms) successfully sent.
    pub highest_sent_ms: AtomicU64,
    /// Compressed bytes sent.
    pub bytes_total: AtomicU64,
    /// Batches sent (successful or failed for good).
    pub batches: AtomicU64,
    /// Total time of those batches' requests, in microseconds.
    pub batch_micros: AtomicU64,
    /// Running shards.
    pub shards: AtomicU64,
    /// WAL segments deleted before this queue had read them.
    pub segments_lost: AtomicU64,
}

fn store_max(a: &AtomicU64, v: i64) {
    if let Ok(v) = u64::try_from(v) {
        a.fetch_max(v, Ordering::Relaxed);
    }
}

/// The delay after `attempt` failed attempts: `min * 2^(attempt-1)`, at most `max`.
pub fn backoff(min: Duration, max: Duration, attempt: u32) -> Duration {
    let factor = 1u32
        .checked_shl(attempt.saturating_sub(1))
        .unwrap_or(u32::MAX);
    min.checked_mul(factor).unwrap_or(max).min(max)
}

/// Whether a failed request is retried: network errors and 5xx always, 429 when
/// configured; anything else (4xx, an invalid request) drops the batch.
pub fn is_recoverable(e: &SendError, retry_on_429: bool) -> bool {
    match e {
        SendError::Network(_) => true,
        SendError::Status { status, .. } => *status >= 500 || (*status == 429 && retry_on_429),
        SendError::Invalid(_) => false,
    }
}

/// Builds the write request of a batch: samples grouped by series in arrival order.
pub fn build_request(batch: &[Item]) -> (proto::WriteRequest, usize, i64) {
    let mut series: Vec<proto::TimeSeries> = Vec::new();
    let mut index: std::collections::HashMap<*const Vec<proto::Label>, usize> =
        std::collections::HashMap::new();
    let mut n = 0;
    let mut newest = i64::MIN;
    for it in batch {
        let Some((labels, t, v)) = &it.sample else {
            continue;
        };
        n += 1;
        newest = newest.max(*t);
        let slot = *index.entry(Arc::as_ptr(labels)).or_insert_with(|| {
            series.push(proto::TimeSeries {
                labels: labels.as_ref().clone(),
                samples: Vec::new(),
                exemplars: Vec::new(),
                histograms: Vec::new(),
            });
            series.len() - 1
        });
        if let Some(ts) = series.get_mut(slot) {
            ts.samples.push(proto::Sample {
                value: *v,
                timestamp: *t,
            });
        }
    }
    (
        proto::WriteRequest {
            timeseries: series,
            metadata: Vec::new(),
        },
        n,
        newest,
    )
}

/// Everything a shard task needs.
pub struct Shard {
    /// Samples from the WAL reader.
    pub rx: mpsc::Receiver<Item>,
    /// Progress shared with the reader.
    pub state: Arc<Mutex<ShardState>>,
    /// Queue settings.
    pub cfg: QueueConfig,
    /// The endpoint.
    pub client: RemoteClient,
    /// Counters.
    pub metrics: Arc<QueueMetrics>,
    /// Becomes true when the queue stops.
    pub stop: watch::Receiver<bool>,
    /// For logs.
    pub name: String,
}

impl Shard {
    /// Runs until the queue stops or the reader goes away. A batch being sent when the
    /// stop comes is finished (or given up after its current attempt) first.
    pub async fn run(mut self) {
        let max = self.cfg.max_samples_per_send.max(1);
        let deadline = self.cfg.batch_send_deadline.std();
        let mut batch: Vec<Item> = Vec::with_capacity(max);
        loop {
            if *self.stop.borrow() {
                return;
            }
            let mut until: Option<tokio::time::Instant> = None;
            let mut closed = false;
            while batch.iter().filter(|i| i.sample.is_some()).count() < max {
                let item = tokio::select! {
                    biased;
                    _ = self.stop.changed() => return,
                    it = self.rx.recv() => it,
                    _ = sleep_until(until) => break,
                };
                match item {
                    Some(it) => {
                        if it.sample.is_some() && until.is_none() {
                            until = Some(tokio::time::Instant::now() + deadline);
                        }
                        batch.push(it);
                        // markers alone finish at once
                        if until.is_none() {
                            break;
                        }
                    }
                    None => {
                        closed = true;
                        break;
                    }
                }
            }
            if !batch.is_empty() {
                if !self.send(&batch).await {
                    return;
                }
                self.finish(&batch);
                batch.clear();
            }
            if closed {
                return;
            }
        }
    }

    /// Records a finished batch in the shared progress.
    fn finish(&self, batch: &[Item]) {
        let Some(last) = batch.last() else {
            return;
        };
        let mut st = self.state.lock();
        st.completed += batch.len() as u64;
        st.next_key = Key {
            index: last.key.index.saturating_add(1),
            ..last.key
        };
        let real = batch.iter().filter(|i| i.sample.is_some()).count() as u64;
        let _ =
            self.metrics
                .samples_pending
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |p| {
                    Some(p.saturating_sub(real))
                });
    }

    /// Sends a batch until it succeeds, fails for good, or the queue stops between
    /// attempts (returns false then: the batch is not finished).
    async fn send(&mut self, batch: &[Item]) -> bool {
        let (req, n, newest) = build_request(batch);
        if n == 0 {
            return true;
        }
        let body = encode(&req);
        let min = self.cfg.min_backoff.std();
        let max = self.cfg.max_backoff.std();
        let mut attempt = 0u32;
        loop {
            let start = Instant::now();
            let res = self.client.post(body.clone(), "write").await;
            let took = start.elapsed();
            let m = &self.metrics;
            match res {
                Ok(_) => {
                    m.samples_total.fetch_add(n as u64, Ordering::Relaxed);
                    m.bytes_total
                        .fetch_add(body.len() as u64, Ordering::Relaxed);
                    m.batches.fetch_add(1, Ordering::Relaxed);
                    m.batch_micros
                        .fetch_add(took.as_micros() as u64, Ordering::Relaxed);
                    store_max(&m.highest_sent_ms, newest);
                    return true;
                }
                Err(e) if is_recoverable(&e, self.cfg.retry_on_http_429) => {
                    attempt += 1;
                    m.samples_retried.fetch_add(n as u64, Ordering::Relaxed);
                    let wait = backoff(min, max, attempt);
                    log::warn!(target: "aion::remote", "remote_name={} failed to send batch, retrying in {:?} err={e}", self.name, wait);
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = self.stop.changed() => return false,
                    }
                }
                Err(e) => {
                    m.samples_failed.fetch_add(n as u64, Ordering::Relaxed);
                    m.batches.fetch_add(1, Ordering::Relaxed);
                    m.batch_micros
                        .fetch_add(took.as_micros() as u64, Ordering::Relaxed);
                    log::error!(target: "aion::remote", "remote_name={} non-recoverable error, dropping {n} samples err={e}", self.name);
                    return true;
                }
            }
        }
    }
}

async fn sleep_until(t: Option<tokio::time::Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

/// Records the newest timestamp read from the WAL.
pub fn note_read(m: &QueueMetrics, t: i64) {
    store_max(&m.highest_read_ms, t);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_maximum() {
        let min = Duration::from_millis(30);
        let max = Duration::from_secs(5);
        assert_eq!(backoff(min, max, 1), Duration::from_millis(30));
        assert_eq!(backoff(min, max, 2), Duration::from_millis(60));
        assert_eq!(backoff(min, max, 4), Duration::from_millis(240));
        assert_eq!(backoff(min, max, 9), Duration::from_secs(5));
        assert_eq!(backoff(min, max, 200), Duration::from_secs(5));
    }

    #[test]
    fn recoverable_errors() {
        let st = |s| SendError::Status {
            status: s,
            body: String::new(),
        };
        assert!(is_recoverable(&SendError::Network("x".into()), false));
        assert!(is_recoverable(&st(503), false));
        assert!(!is_recoverable(&st(400), false));
        assert!(!is_recoverable(&st(429), false));
        assert!(is_recoverable(&st(429), true));
        assert!(!is_recoverable(&SendError::Invalid("x".into()), true));
    }

    #[test]
    fn batches_group_samples_by_series_and_skip_markers() {
        let a: WireLabels = Arc::new(vec![proto::Label {
            name: "__name__".into(),
            value: "a".into(),
        }]);
        let b: WireLabels = Arc::new(vec![proto::Label {
            name: "__name__".into(),
            value: "b".into(),
        }]);
        let k = |i| Key::record(0, i);
        let batch = vec![
            Item {
                key: k(1),
                sample: Some((a.clone(), 1, 1.0)),
            },
            Item {
                key: k(2),
                sample: Some((b.clone(), 2, 2.0)),
            },
            Item {
                key: k(3),
                sample: None,
            },
            Item {
                key: k(4),
                sample: Some((a.clone(), 3, 3.0)),
            },
        ];
        let (req, n, newest) = build_request(&batch);
        assert_eq!(n, 3);
        assert_eq!(newest, 3);
        assert_eq!(req.timeseries.len(), 2);
        assert_eq!(req.timeseries[0].samples.len(), 2);
        assert_eq!(req.timeseries[0].samples[1].timestamp, 3);
        assert_eq!(req.timeseries[1].labels[0].value, "b");
    }
}
