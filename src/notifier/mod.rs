//! Sends alerts to Alertmanagers with the v2 API (`POST <prefix>/api/v2/alerts`): a bounded
//! queue (the oldest alerts are dropped and counted when it overflows), batches of at most
//! 256 alerts, external labels added where an alert lacks them, then `alert_relabel_configs`.
//!
//! Requests use the scrape HTTP client ([`crate::scrape::client::HttpClient`]): `http` or
//! `https` with the entry's `tls_config`, authentication and proxy settings.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use serde_json::json;

use crate::config::{HttpClientConfig, RelabelConfig};
use crate::model::time::format_rfc3339_ms;
use crate::model::Labels;
use crate::scrape::client::HttpClient;

/// Default capacity of the alert queue (`--alertmanager.notification-queue-capacity`).
pub const DEFAULT_QUEUE_CAPACITY: usize = 10_000;
/// Alerts per request.
pub const MAX_BATCH_SIZE: usize = 256;

/// A notification failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NotifierError {
    /// The Alertmanager URL cannot be used.
    #[error("bad Alertmanager URL {0:?}")]
    BadUrl(String),
    /// Connecting, writing or reading failed.
    #[error("{url}: {source}")]
    Io {
        /// The endpoint.
        url: String,
        /// Why.
        source: std::io::Error,
    },
    /// The Alertmanager did not answer in time.
    #[error("{0}: request timed out")]
    Timeout(String),
    /// The request failed (connection, TLS, proxy, authentication).
    #[error("{0}")]
    Request(String),
    /// A non-2xx answer.
    #[error("{url}: bad response status {status}")]
    Status {
        /// The endpoint.
        url: String,
        /// The status line's code.
        status: u16,
    },
}

/// An alert as sent to Alertmanager.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// Identifying labels (including `alertname`).
    pub labels: Labels,
    /// Annotations.
    pub annotations: Labels,
    /// When the alert started firing (unix ms).
    pub starts_at: i64,
    /// When the alert ends or ended (unix ms); 0 = unset.
    pub ends_at: i64,
    /// Link back to the expression.
    pub generator_url: String,
}

impl Alert {
    /// The v2 API JSON object.
    pub fn to_json(&self) -> serde_json::Value {
        let map = |l: &Labels| {
            l.iter()
                .map(|l| {
                    (
                        l.name.to_string(),
                        serde_json::Value::String(l.value.to_string()),
                    )
                })
                .collect::<serde_json::Map<_, _>>()
        };
        let mut o = json!({
            "labels": map(&self.labels),
            "annotations": map(&self.annotations),
            "generatorURL": self.generator_url,
        });
        if let Some(obj) = o.as_object_mut() {
            if self.starts_at != 0 {
                obj.insert("startsAt".into(), format_rfc3339_ms(self.starts_at).into());
            }
            if self.ends_at != 0 {
                obj.insert("endsAt".into(), format_rfc3339_ms(self.ends_at).into());
            }
        }
        o
    }
}

/// One Alertmanager endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertmanagerTarget {
    /// Full URL of the alerts endpoint, e.g. `http://127.0.0.1:9093/api/v2/alerts`.
    pub url: String,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Relabelling applied to alerts sent to this Alertmanager.
    pub alert_relabel: Vec<RelabelConfig>,
    /// HTTP client settings (auth, TLS, proxy) of the `alertmanagers` entry.
    pub http: HttpClientConfig,
}

/// Notifier settings.
#[derive(Debug, Clone)]
pub struct NotifierOptions {
    /// Queue capacity.
    pub queue_capacity: usize,
    /// External labels added to alerts lacking them.
    pub external_labels: Labels,
    /// `alerting.alert_relabel_configs`.
    pub alert_relabel: Vec<RelabelConfig>,
}

impl Default for NotifierOptions {
    fn default() -> Self {
        NotifierOptions {
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            external_labels: Labels::empty(),
            alert_relabel: Vec::new(),
        }
    }
}

/// Counters of the notifier.
#[derive(Debug, Default)]
pub struct NotifierStats {
    /// Alerts dropped (queue overflow or no Alertmanager accepted them).
    pub dropped: AtomicU64,
    /// Alerts sent successfully (per Alertmanager).
    pub sent: AtomicU64,
    /// Failed requests.
    pub errors: AtomicU64,
}

/// The alert queue and its send loop.
pub struct Notifier {
    opts: RwLock<NotifierOptions>,
    queue: Mutex<VecDeque<Alert>>,
    wake: tokio::sync::Notify,
    ams: RwLock<Vec<AlertmanagerTarget>>,
    /// One HTTP client per distinct client configuration (keeps OAuth 2 tokens).
    clients: Mutex<HashMap<HttpClientConfig, Arc<HttpClient>>>,
    /// Counters.
    pub stats: NotifierStats,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("queue_len", &self.queue_len())
            .finish()
    }
}

/// Go's `url.QueryEscape`.
pub fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The `generatorURL` of an alert: `<external_url>/graph?g0.expr=<expr>&g0.tab=1`.
pub fn generator_url(external_url: &str, expr: &str) -> String {
    format!(
        "{}/graph?g0.expr={}&g0.tab=1",
        external_url.trim_end_matches('/'),
        query_escape(expr)
    )
}

impl Notifier {
    /// A notifier with no Alertmanagers yet.
    pub fn new(opts: NotifierOptions) -> Arc<Notifier> {
        Arc::new(Notifier {
            opts: RwLock::new(opts),
            queue: Mutex::new(VecDeque::new()),
            wake: tokio::sync::Notify::new(),
            ams: RwLock::new(Vec::new()),
            clients: Mutex::new(HashMap::new()),
            stats: NotifierStats::default(),
        })
    }

    /// Replaces settings (on configuration reload).
    pub fn set_options(&self, opts: NotifierOptions) {
        *self.opts.write() = opts;
    }

    /// Replaces the Alertmanager list.
    pub fn set_alertmanagers(&self, ams: Vec<AlertmanagerTarget>) {
        {
            let mut clients = self.clients.lock();
            let old = std::mem::take(&mut *clients);
            for am in &ams {
                let c = old
                    .get(&am.http)
                    .cloned()
                    .unwrap_or_else(|| HttpClient::new(am.http.clone()));
                clients.insert(am.http.clone(), c);
            }
        }
        *self.ams.write() = ams;
    }

    fn client_for(&self, cfg: &HttpClientConfig) -> Arc<HttpClient> {
        self.clients
            .lock()
            .entry(cfg.clone())
            .or_insert_with(|| HttpClient::new(cfg.clone()))
            .clone()
    }

    /// The configured Alertmanagers.
    pub fn alertmanagers(&self) -> Vec<AlertmanagerTarget> {
        self.ams.read().clone()
    }

    /// Alerts waiting to be sent.
    pub fn queue_len(&self) -> usize {
        self.queue.lock().len()
    }

    /// The queue capacity.
    pub fn capacity(&self) -> usize {
        self.opts.read().queue_capacity
    }

    /// Applies external labels and relabelling, then queues `alerts` for sending.
    pub fn send(&self, alerts: Vec<Alert>) {
        let opts = self.opts.read().clone();
        let mut out = Vec::with_capacity(alerts.len());
        for mut a in alerts {
            if !opts.external_labels.is_empty() {
                let mut b = a.labels.builder();
                for l in opts.external_labels.iter() {
                    if a.labels.get(l.name).is_none() {
                        b.set(l.name, l.value);
                    }
                }
                a.labels = b.labels();
            }
            if !opts.alert_relabel.is_empty() {
                match crate::config::relabel::process(&a.labels, &opts.alert_relabel) {
                    Some(l) => a.labels = l,
                    None => continue,
                }
            }
            out.push(a);
        }
        if out.is_empty() {
            return;
        }
        let cap = opts.queue_capacity.max(1);
        let mut q = self.queue.lock();
        if out.len() > cap {
            let d = out.len() - cap;
            out.drain(..d);
            self.stats.dropped.fetch_add(d as u64, Ordering::Relaxed);
        }
        let over = (q.len() + out.len()).saturating_sub(cap);
        if over > 0 {
            let n = over.min(q.len());
            q.drain(..n);
            self.stats.dropped.fetch_add(over as u64, Ordering::Relaxed);
            log::warn!(target: "aion::notifier", "alert notification queue full, dropped {over} alerts");
        }
        q.extend(out);
        drop(q);
        self.wake.notify_one();
    }

    fn next_batch(&self) -> Vec<Alert> {
        let mut q = self.queue.lock();
        let n = q.len().min(MAX_BATCH_SIZE);
        q.drain(..n).collect()
    }

    /// Sends queued alerts until `stop` turns true.
    pub async fn run(self: Arc<Self>, mut stop: tokio::sync::watch::Receiver<bool>) {
        loop {
            let batch = self.next_batch();
            if batch.is_empty() {
                tokio::select! {
                    _ = self.wake.notified() => continue,
                    _ = stop.changed() => return,
                }
            }
            self.send_batch(&batch).await;
        }
    }

    /// Sends one batch to every Alertmanager at once; returns whether one accepted it.
    pub async fn send_batch(&self, batch: &[Alert]) -> bool {
        let ams = self.alertmanagers();
        if ams.is_empty() {
            return false;
        }
        let opts_relabel = ams.iter().all(|a| a.alert_relabel.is_empty());
        let shared_body = if opts_relabel {
            Some(body_of(batch.iter()))
        } else {
            None
        };
        let mut tasks = Vec::new();
        for am in ams {
            let body = match &shared_body {
                Some(b) => b.clone(),
                None => {
                    let relabeled: Vec<Alert> = batch
                        .iter()
                        .filter_map(|a| {
                            crate::config::relabel::process(&a.labels, &am.alert_relabel).map(|l| {
                                Alert {
                                    labels: l,
                                    ..a.clone()
                                }
                            })
                        })
                        .collect();
                    body_of(relabeled.iter())
                }
            };
            let client = self.client_for(&am.http);
            tasks.push(tokio::spawn(async move {
                let r = post(&client, &am.url, &body, am.timeout).await;
                (am.url, r)
            }));
        }
        let mut any_ok = false;
        for t in tasks {
            match t.await {
                Ok((_, Ok(()))) => {
                    any_ok = true;
                    self.stats
                        .sent
                        .fetch_add(batch.len() as u64, Ordering::Relaxed);
                }
                Ok((url, Err(e))) => {
                    self.stats.errors.fetch_add(1, Ordering::Relaxed);
                    log::error!(target: "aion::notifier", "error sending alerts alertmanager={url} count={} err={e}", batch.len());
                }
                Err(e) => {
                    self.stats.errors.fetch_add(1, Ordering::Relaxed);
                    log::error!(target: "aion::notifier", "alert send task failed err={e}");
                }
            }
        }
        if !any_ok {
            self.stats
                .dropped
                .fetch_add(batch.len() as u64, Ordering::Relaxed);
        }
        any_ok
    }

    /// Publishes the notifier's counters as Prometheus's metric names.
    pub fn publish_metrics(&self, reg: &crate::server::metrics::Registry) {
        reg.counter_set(
            "prometheus_notifications_dropped_total",
            "Total number of alerts dropped due to errors when sending to Alertmanager.",
            &[],
            self.stats.dropped.load(Ordering::Relaxed) as f64,
        );
        reg.counter_set(
            "prometheus_notifications_sent_total",
            "Total number of alerts sent.",
            &[],
            self.stats.sent.load(Ordering::Relaxed) as f64,
        );
        reg.counter_set(
            "prometheus_notifications_errors_total",
            "Total number of sent alerts affected by errors.",
            &[],
            self.stats.errors.load(Ordering::Relaxed) as f64,
        );
        reg.gauge_set(
            "prometheus_notifications_queue_length",
            "The number of alert notifications in the queue.",
            &[],
            self.queue_len() as f64,
        );
        reg.gauge_set(
            "prometheus_notifications_queue_capacity",
            "The capacity of the alert notifications queue.",
            &[],
            self.capacity() as f64,
        );
        reg.gauge_set(
            "prometheus_notifications_alertmanagers_discovered",
            "The number of alertmanagers discovered and active.",
            &[],
            self.ams.read().len() as f64,
        );
    }
}

fn body_of<'a>(alerts: impl Iterator<Item = &'a Alert>) -> Vec<u8> {
    let arr: Vec<serde_json::Value> = alerts.map(Alert::to_json).collect();
    serde_json::to_vec(&arr).unwrap_or_else(|_| b"[]".to_vec())
}

/// POSTs `body` as JSON to `url` with the Alertmanager's HTTP client (auth, TLS,
/// proxy) and checks for a 2xx answer.
pub async fn post(
    client: &HttpClient,
    url: &str,
    body: &[u8],
    timeout: Duration,
) -> Result<(), NotifierError> {
    let resp = client
        .request(
            hyper::Method::POST,
            url,
            &[("content-type", "application/json")],
            body.to_vec(),
            timeout,
            1 << 20,
        )
        .await
        .map_err(|e| {
            if e.contains("context deadline exceeded") {
                NotifierError::Timeout(url.to_string())
            } else {
                NotifierError::Request(e)
            }
        })?;
    if resp.status.is_success() {
        Ok(())
    } else {
        Err(NotifierError::Status {
            url: url.to_string(),
            status: resp.status.as_u16(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_go() {
        assert_eq!(
            query_escape("rate(x{a=\"b\"}[5m]) > 0.05"),
            "rate%28x%7Ba%3D%22b%22%7D%5B5m%5D%29+%3E+0.05"
        );
        assert_eq!(
            generator_url("http://h:9090/", "up == 0"),
            "http://h:9090/graph?g0.expr=up+%3D%3D+0&g0.tab=1"
        );
    }

    #[test]
    fn queue_drops_oldest_and_adds_external_labels() {
        let n = Notifier::new(NotifierOptions {
            queue_capacity: 3,
            external_labels: Labels::from_pairs(&[("cluster", "eu"), ("alertname", "x")]),
            alert_relabel: Vec::new(),
        });
        let mk = |i: usize| Alert {
            labels: Labels::from_pairs(&[("alertname", format!("A{i}").as_str())]),
            annotations: Labels::empty(),
            starts_at: 1,
            ends_at: 0,
            generator_url: String::new(),
        };
        n.send((0..2).map(mk).collect());
        n.send((2..5).map(mk).collect());
        assert_eq!(n.queue_len(), 3);
        assert_eq!(n.stats.dropped.load(Ordering::Relaxed), 2);
        let b = n.next_batch();
        assert_eq!(b[0].labels.get("alertname"), Some("A2"));
        assert_eq!(b[0].labels.get("cluster"), Some("eu"));
    }
}
