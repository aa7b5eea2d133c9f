//! Command-line flags, named and defaulting as Prometheus's do (except where README.md
//! says otherwise: the listen address defaults to loopback).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::api::params::parse_duration;

/// Aion: an embedded, Prometheus-compatible time-series database and monitoring server.
#[derive(Debug, Parser)]
#[command(name = "aion", version, about, args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// Server flags (used when no subcommand is given).
    #[command(flatten)]
    pub server: ServerFlags,
    /// A tool subcommand instead of running the server.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Tool subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run test scripts.
    Test {
        /// What to test.
        #[command(subcommand)]
        what: TestCommand,
    },
    /// Check files without starting anything.
    Check {
        /// What to check.
        #[command(subcommand)]
        what: CheckCommand,
    },
}

/// `aion check ...`
#[derive(Debug, Subcommand)]
pub enum CheckCommand {
    /// Check Prometheus configuration files (`prometheus.yml`).
    Config {
        /// Configuration files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Check web configuration files (`--web.config.file`), their certificates and keys.
    WebConfig {
        /// Web configuration files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Check rule files: PromQL, names, labels, templates, duplicates.
    Rules {
        /// Rule files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

/// `aion test ...`
#[derive(Debug, Subcommand)]
pub enum TestCommand {
    /// Run PromQL test scripts in Prometheus's promqltest format.
    Promql {
        /// Script files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Run rule unit tests in promtool's format.
    Rules {
        /// Test files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

/// Flags of the server.
#[derive(Debug, Clone, Args)]
pub struct ServerFlags {
    /// Configuration file path. Without it (and without ./prometheus.yml) Aion runs a
    /// built-in configuration that scrapes itself.
    #[arg(long = "config.file")]
    pub config_file: Option<PathBuf>,

    /// Address to listen on for the UI, API and telemetry.
    #[arg(long = "web.listen-address", default_value = "127.0.0.1:9090")]
    pub listen_address: String,

    /// The URL under which Aion is externally reachable (used in alert links).
    #[arg(long = "web.external-url")]
    pub external_url: Option<String>,

    /// Path to a web configuration file (Prometheus's format) that enables TLS, basic
    /// authentication and extra response headers; re-read on every connection and request.
    #[arg(long = "web.config.file")]
    pub web_config_file: Option<PathBuf>,

    /// Enable shutdown and reload via HTTP request (POST /-/quit, /-/reload).
    #[arg(long = "web.enable-lifecycle")]
    pub enable_lifecycle: bool,

    /// Enable the admin API endpoints (delete_series, clean_tombstones, snapshot).
    #[arg(long = "web.enable-admin-api")]
    pub enable_admin_api: bool,

    /// Enable the remote write receiver at POST /api/v1/write.
    #[arg(long = "web.enable-remote-write-receiver")]
    pub enable_remote_write_receiver: bool,

    /// Base path for the database.
    #[arg(long = "storage.tsdb.path", default_value = "data/")]
    pub tsdb_path: PathBuf,

    /// How long to retain samples in storage (e.g. 15d).
    #[arg(long = "storage.tsdb.retention.time", default_value = "15d", value_parser = parse_duration_flag)]
    pub retention_time: Duration,

    /// Maximum number of bytes of storage (units B, KB, MB, GB, TB, PB, EB; 0 = no limit).
    #[arg(long = "storage.tsdb.retention.size", default_value = "0", value_parser = parse_bytes_flag)]
    pub retention_size: u64,

    /// Most series the head may hold; samples that would create more are rejected (and
    /// counted in aion_tsdb_head_series_limit_rejected_samples_total). 0 = no limit.
    #[arg(long = "storage.tsdb.head-series-limit", default_value_t = 0)]
    pub head_series_limit: u64,

    /// WAL fsync policy: `always` (fsync before a commit returns, with group commit),
    /// `interval` (fsync at most every --storage.tsdb.wal-fsync-interval), or `never`.
    #[arg(long = "storage.tsdb.wal-fsync", default_value = "interval", value_parser = ["always", "interval", "never"])]
    pub wal_fsync: String,

    /// Interval between WAL fsyncs with `--storage.tsdb.wal-fsync=interval`.
    #[arg(long = "storage.tsdb.wal-fsync-interval", default_value = "1s", value_parser = parse_duration_flag)]
    pub wal_fsync_interval: Duration,

    /// Duration of a block cut from the head (hidden, as in Prometheus; for tests).
    #[arg(long = "storage.tsdb.min-block-duration", default_value = "2h", value_parser = parse_duration_flag, hide = true)]
    pub min_block_duration: Duration,

    /// Longest block compaction produces (hidden, as in Prometheus); default 10% of the
    /// retention time, at most 31d.
    #[arg(long = "storage.tsdb.max-block-duration", value_parser = parse_duration_flag, hide = true)]
    pub max_block_duration: Option<Duration>,

    /// How often head persistence, compaction and retention run (hidden; for tests).
    #[arg(long = "storage.tsdb.maintenance-interval", default_value = "1m", value_parser = parse_duration_flag, hide = true)]
    pub maintenance_interval: Duration,

    /// Maximum time a query may take before being aborted.
    #[arg(long = "query.timeout", default_value = "2m", value_parser = parse_duration_flag)]
    pub query_timeout: Duration,

    /// Maximum number of samples a single query can load into memory.
    #[arg(long = "query.max-samples", default_value_t = 50_000_000)]
    pub query_max_samples: usize,

    /// How far back to look for a sample when evaluating an instant vector selector.
    #[arg(long = "query.lookback-delta", default_value = "5m", value_parser = parse_duration_flag)]
    pub lookback_delta: Duration,

    /// Maximum number of queries executed concurrently.
    #[arg(long = "query.max-concurrency", default_value_t = 20)]
    pub query_max_concurrency: usize,

    /// Only log messages with the given severity or above: debug, info, warn, error.
    #[arg(long = "log.level", default_value = "info", value_parser = ["debug", "info", "warn", "error"])]
    pub log_level: String,

    /// Output format of log messages: logfmt or json.
    #[arg(long = "log.format", default_value = "logfmt", value_parser = ["logfmt", "json"])]
    pub log_format: String,

    /// Minimum amount of time to wait before resending an alert to Alertmanager.
    #[arg(long = "rules.alert.resend-delay", default_value = "1m", value_parser = parse_duration_flag)]
    pub rules_alert_resend_delay: Duration,

    /// Max time to tolerate an outage for restoring "for" state of alerts.
    #[arg(long = "rules.alert.for-outage-tolerance", default_value = "1h", value_parser = parse_duration_flag)]
    pub rules_alert_for_outage_tolerance: Duration,

    /// Minimum duration between alert and restored "for" state; kept only for alerts with
    /// a configured "for" longer than this.
    #[arg(long = "rules.alert.for-grace-period", default_value = "10m", value_parser = parse_duration_flag)]
    pub rules_alert_for_grace_period: Duration,

    /// The capacity of the queue for pending Alertmanager notifications.
    #[arg(
        long = "alertmanager.notification-queue-capacity",
        default_value_t = 10_000
    )]
    pub alertmanager_notification_queue_capacity: usize,
}

impl ServerFlags {
    /// Every flag with its effective value, as `/api/v1/status/flags` reports them.
    pub fn as_pairs(&self) -> Vec<(String, String)> {
        let d = |d: &Duration| crate::model::time::format_duration_ms(d.as_millis() as i64);
        vec![
            (
                "config.file".into(),
                self.config_file
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
            ),
            ("web.listen-address".into(), self.listen_address.clone()),
            (
                "web.external-url".into(),
                self.external_url.clone().unwrap_or_default(),
            ),
            (
                "web.config.file".into(),
                self.web_config_file
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
            ),
            (
                "web.enable-lifecycle".into(),
                self.enable_lifecycle.to_string(),
            ),
            (
                "web.enable-admin-api".into(),
                self.enable_admin_api.to_string(),
            ),
            (
                "web.enable-remote-write-receiver".into(),
                self.enable_remote_write_receiver.to_string(),
            ),
            (
                "storage.tsdb.path".into(),
                self.tsdb_path.display().to_string(),
            ),
            (
                "storage.tsdb.retention.time".into(),
                d(&self.retention_time),
            ),
            (
                "storage.tsdb.retention.size".into(),
                format!("{}B", self.retention_size),
            ),
            (
                "storage.tsdb.head-series-limit".into(),
                self.head_series_limit.to_string(),
            ),
            ("storage.tsdb.wal-fsync".into(), self.wal_fsync.clone()),
            (
                "storage.tsdb.wal-fsync-interval".into(),
                d(&self.wal_fsync_interval),
            ),
            (
                "storage.tsdb.min-block-duration".into(),
                d(&self.min_block_duration),
            ),
            (
                "storage.tsdb.max-block-duration".into(),
                self.max_block_duration.as_ref().map(d).unwrap_or_default(),
            ),
            ("query.timeout".into(), d(&self.query_timeout)),
            (
                "query.max-samples".into(),
                self.query_max_samples.to_string(),
            ),
            ("query.lookback-delta".into(), d(&self.lookback_delta)),
            (
                "query.max-concurrency".into(),
                self.query_max_concurrency.to_string(),
            ),
            ("log.level".into(), self.log_level.clone()),
            ("log.format".into(), self.log_format.clone()),
            (
                "rules.alert.resend-delay".into(),
                d(&self.rules_alert_resend_delay),
            ),
            (
                "rules.alert.for-outage-tolerance".into(),
                d(&self.rules_alert_for_outage_tolerance),
            ),
            (
                "rules.alert.for-grace-period".into(),
                d(&self.rules_alert_for_grace_period),
            ),
            (
                "alertmanager.notification-queue-capacity".into(),
                self.alertmanager_notification_queue_capacity.to_string(),
            ),
        ]
    }
}

fn parse_duration_flag(s: &str) -> Result<Duration, String> {
    let ms = parse_duration(s)?;
    u64::try_from(ms)
        .map(Duration::from_millis)
        .map_err(|_| format!("negative duration {s:?}"))
}

/// Parses a byte size with Prometheus's units (`512MB`, `10GB`, `0`; powers of 1024).
pub fn parse_bytes_flag(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("invalid size {s:?}"))?;
    let mult: u64 = match unit {
        "" | "B" => 1,
        "KB" => 1 << 10,
        "MB" => 1 << 20,
        "GB" => 1 << 30,
        "TB" => 1 << 40,
        "PB" => 1 << 50,
        "EB" => 1 << 60,
        _ => {
            return Err(format!(
                "invalid size unit in {s:?} (use B, KB, MB, GB, TB, PB or EB)"
            ))
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("size {s:?} overflows"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_sizes() {
        assert_eq!(parse_bytes_flag("0"), Ok(0));
        assert_eq!(parse_bytes_flag("512MB"), Ok(512 << 20));
        assert_eq!(parse_bytes_flag("1GB"), Ok(1 << 30));
        assert!(parse_bytes_flag("1XB").is_err());
        assert!(parse_bytes_flag("MB").is_err());
    }

    #[test]
    fn defaults_parse() {
        let cli = Cli::try_parse_from(["aion"]).unwrap();
        assert!(cli.command.is_none());
        assert_eq!(cli.server.listen_address, "127.0.0.1:9090");
        assert_eq!(cli.server.retention_time, Duration::from_secs(15 * 86400));
        let cli = Cli::try_parse_from([
            "aion",
            "--query.timeout=30s",
            "--storage.tsdb.retention.size=1GB",
        ])
        .unwrap();
        assert_eq!(cli.server.query_timeout, Duration::from_secs(30));
        assert_eq!(cli.server.retention_size, 1 << 30);
    }
}
