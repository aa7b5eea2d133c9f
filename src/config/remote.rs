//! `remote_write` and `remote_read` entries of `prometheus.yml`, with Prometheus 3's
//! defaults (`config.DefaultRemoteWriteConfig`, `DefaultQueueConfig`,
//! `DefaultMetadataConfig`, `DefaultRemoteReadConfig`) and validation.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{
    check_relabel, default_true, Authorization, BasicAuth, Duration, HttpClientConfig, OAuth2,
    ProxyConfig, RelabelConfig, Secret, TlsConfig,
};

/// `queue_config:` of a remote write entry.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    /// Samples buffered per shard before reading the WAL pauses (10000).
    pub capacity: usize,
    /// Most shards (50).
    pub max_shards: usize,
    /// Fewest shards, and the number Aion runs (1).
    pub min_shards: usize,
    /// Samples per request (2000).
    pub max_samples_per_send: usize,
    /// Longest a partly filled batch waits before it is sent (5s).
    pub batch_send_deadline: Duration,
    /// First retry delay (30ms).
    pub min_backoff: Duration,
    /// Longest retry delay (5s).
    pub max_backoff: Duration,
    /// Retry on HTTP 429 instead of dropping the batch (false).
    pub retry_on_http_429: bool,
    /// Samples older than this when read from the WAL are dropped instead of sent
    /// (0 = no limit).
    pub sample_age_limit: Duration,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            capacity: 10_000,
            max_shards: 50,
            min_shards: 1,
            max_samples_per_send: 2_000,
            batch_send_deadline: Duration(5_000),
            min_backoff: Duration(30),
            max_backoff: Duration(5_000),
            retry_on_http_429: false,
            sample_age_limit: Duration(0),
        }
    }
}

/// `metadata_config:` of a remote write entry (parsed; Aion sends no metadata).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetadataConfig {
    /// Whether metadata is sent (true).
    pub send: bool,
    /// How often (1m).
    pub send_interval: Duration,
    /// Metadata entries per request (2000).
    pub max_samples_per_send: usize,
}

impl Default for MetadataConfig {
    fn default() -> Self {
        MetadataConfig {
            send: true,
            send_interval: Duration(60_000),
            max_samples_per_send: 2_000,
        }
    }
}

fn default_write_timeout() -> Duration {
    Duration(30_000)
}

fn default_read_timeout() -> Duration {
    Duration(60_000)
}

fn default_protobuf_message() -> String {
    "prometheus.WriteRequest".into()
}

http_fields_struct! {
    /// One `remote_write` entry.
    RemoteWriteConfig {
        /// The endpoint.
        url: String,
        /// Name in metrics and logs (unique among remote writes).
        #[serde(default)]
        name: String,
        /// Timeout of one request (30s).
        #[serde(default = "default_write_timeout")]
        remote_timeout: Duration,
        /// Extra HTTP headers.
        #[serde(default)]
        headers: BTreeMap<String, String>,
        /// Relabelling applied to series before they are sent.
        #[serde(default)]
        write_relabel_configs: Vec<RelabelConfig>,
        /// Send exemplars (accepted; Aion stores none).
        #[serde(default)]
        send_exemplars: bool,
        /// Send native histograms (accepted; Aion stores none).
        #[serde(default)]
        send_native_histograms: bool,
        /// Remote write protocol message; only `prometheus.WriteRequest` (1.0).
        #[serde(default = "default_protobuf_message")]
        protobuf_message: String,
        /// Round robin DNS (accepted).
        #[serde(default)]
        round_robin_dns: bool,
        /// Queue settings.
        #[serde(default)]
        queue_config: QueueConfig,
        /// Metadata settings.
        #[serde(default)]
        metadata_config: MetadataConfig,
        /// AWS SigV4 (accepted; not supported).
        #[serde(default)]
        sigv4: Option<serde_yaml::Value>,
        /// Azure AD (accepted; not supported).
        #[serde(default)]
        azuread: Option<serde_yaml::Value>,
        /// Google IAM (accepted; not supported).
        #[serde(default)]
        google_iam: Option<serde_yaml::Value>,
    }
}

http_fields_struct! {
    /// One `remote_read` entry.
    RemoteReadConfig {
        /// The endpoint.
        url: String,
        /// Name in logs and metrics (unique among remote reads).
        #[serde(default)]
        name: String,
        /// Timeout of one request (1m).
        #[serde(default = "default_read_timeout")]
        remote_timeout: Duration,
        /// Extra HTTP headers.
        #[serde(default)]
        headers: BTreeMap<String, String>,
        /// Equality matchers a query's selectors must contain for this endpoint to be asked.
        #[serde(default)]
        required_matchers: BTreeMap<String, String>,
        /// Also ask for recent data the local storage holds (false).
        #[serde(default)]
        read_recent: bool,
        /// Add the external labels as matchers and strip them from results (true).
        #[serde(default = "default_true")]
        filter_external_labels: bool,
    }
}

/// Headers Prometheus reserves for the remote protocols.
const RESERVED_HEADERS: [&str; 6] = [
    "authorization",
    "host",
    "content-encoding",
    "content-length",
    "content-type",
    "user-agent",
];

fn check_url(url: &str) -> Result<(), String> {
    if url.is_empty() {
        return Err("url for remote_write/remote_read is empty".into());
    }
    let ok = ["http://", "https://"]
        .iter()
        .any(|p| url.strip_prefix(p).is_some_and(|r| !r.is_empty()));
    if !ok {
        return Err(format!(
            "invalid remote URL {url:?}: scheme must be http or https"
        ));
    }
    Ok(())
}

fn check_headers(h: &BTreeMap<String, String>) -> Result<(), String> {
    for k in h.keys() {
        let lower = k.to_ascii_lowercase();
        if RESERVED_HEADERS.contains(&lower.as_str()) || lower.starts_with("x-prometheus-remote-") {
            return Err(format!("{k} is a reserved header. It must not be changed"));
        }
    }
    Ok(())
}

/// Validates the remote write and remote read entries (unique names, URLs, headers,
/// relabelling, queue bounds).
pub(super) fn validate(
    write: &[RemoteWriteConfig],
    read: &[RemoteReadConfig],
) -> Result<(), String> {
    let mut names = std::collections::HashSet::new();
    let mut unnamed = std::collections::HashSet::new();
    for rw in write {
        check_url(&rw.url)?;
        if rw.name.is_empty() && !unnamed.insert(rw.url.clone()) {
            return Err(format!(
                "duplicate remote write configs are not allowed, found duplicate for URL: {}",
                rw.url
            ));
        }
        if !rw.name.is_empty() && !names.insert(rw.name.clone()) {
            return Err(format!(
                "found multiple remote write configs with job name {:?}",
                rw.name
            ));
        }
        check_headers(&rw.headers)?;
        check_relabel(&rw.write_relabel_configs)?;
        rw.validate_http()?;
        if rw.protobuf_message != "prometheus.WriteRequest" {
            return Err(format!(
                "unsupported protobuf_message {:?}: Aion sends remote write 1.0 (prometheus.WriteRequest)",
                rw.protobuf_message
            ));
        }
        let q = &rw.queue_config;
        if q.capacity == 0 || q.max_samples_per_send == 0 || q.min_shards == 0 {
            return Err(
                "queue_config: capacity, min_shards and max_samples_per_send must be positive"
                    .into(),
            );
        }
        if q.max_shards < q.min_shards {
            return Err("queue_config: max_shards must not be smaller than min_shards".into());
        }
        if q.min_backoff.0 <= 0 || q.max_backoff < q.min_backoff || q.batch_send_deadline.0 <= 0 {
            return Err("queue_config: min_backoff, max_backoff and batch_send_deadline must be positive, max_backoff at least min_backoff".into());
        }
    }
    let mut names = std::collections::HashSet::new();
    for rr in read {
        check_url(&rr.url)?;
        if !rr.name.is_empty() && !names.insert(rr.name.clone()) {
            return Err(format!(
                "found multiple remote read configs with job name {:?}",
                rr.name
            ));
        }
        check_headers(&rr.headers)?;
        rr.validate_http()?;
    }
    Ok(())
}

impl RemoteWriteConfig {
    /// The name in metrics: `name`, or a short hash of the configuration as Prometheus
    /// derives it when none is given.
    pub fn remote_name(&self) -> String {
        if self.name.is_empty() {
            format!("{:06x}", fnv64(self.url.as_bytes()) & 0xff_ffff)
        } else {
            self.name.clone()
        }
    }
}

impl RemoteReadConfig {
    /// The name in logs: `name`, or a short hash of the URL.
    pub fn remote_name(&self) -> String {
        if self.name.is_empty() {
            format!("{:06x}", fnv64(self.url.as_bytes()) & 0xff_ffff)
        } else {
            self.name.clone()
        }
    }
}

/// FNV-1a, 64 bits: a stable hash for names derived from configuration.
pub fn fnv64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}
