//! Shared state of the HTTP handlers.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::{Notify, Semaphore};

use crate::db::Db;
use crate::promql::engine::EngineOptions;
use crate::server::metrics::Registry;

/// Settings of the API taken from flags.
#[derive(Debug, Clone)]
pub struct ApiOptions {
    /// Engine defaults (timeout, lookback, max samples).
    pub engine: EngineOptions,
    /// Queries allowed to run at once.
    pub max_concurrency: usize,
    /// Whether the admin endpoints are enabled.
    pub enable_admin: bool,
    /// Whether `/-/quit` and `/-/reload` are enabled.
    pub enable_lifecycle: bool,
    /// Every flag and its value, for `/api/v1/status/flags`.
    pub flags: Vec<(String, String)>,
    /// Retention as shown in runtime info.
    pub storage_retention: String,
    /// Largest request body accepted.
    pub max_body_bytes: usize,
    /// Whether `POST /api/v1/write` accepts remote write requests
    /// (`--web.enable-remote-write-receiver`).
    pub enable_remote_write_receiver: bool,
}

/// Where the reload loop reports the outcome of a requested reload.
pub type ReloadReply = tokio::sync::oneshot::Sender<Result<(), String>>;

/// State shared by all handlers.
pub struct ApiState {
    /// Options.
    pub opts: ApiOptions,
    /// The database, set once the WAL has been replayed (until then the API answers 503).
    pub db: OnceLock<Arc<Db>>,
    /// Set once the database is open and the initial configuration (scraping, remote
    /// read and write, rules) is applied: until then the API answers 503, as
    /// Prometheus's does.
    pub ready: std::sync::atomic::AtomicBool,
    /// Aion's own metrics.
    pub metrics: Arc<Registry>,
    /// Limits concurrent queries.
    pub query_slots: Arc<Semaphore>,
    /// Signalled by `POST /-/quit`.
    pub quit: Arc<Notify>,
    /// `POST /-/reload` sends a reply channel here and waits for the outcome.
    pub reload: tokio::sync::mpsc::Sender<ReloadReply>,
    /// The receiving end, taken once by the server's reload loop.
    pub reload_rx: parking_lot::Mutex<Option<tokio::sync::mpsc::Receiver<ReloadReply>>>,
    /// The configuration file's text, for `/api/v1/status/config`.
    pub config_yaml: parking_lot::RwLock<String>,
    /// Whether the last configuration (re)load succeeded.
    pub config_ok: AtomicBool,
    /// Unix ms of the last successful configuration load.
    pub config_loaded_ms: std::sync::atomic::AtomicI64,
    /// Unix ms when the server started.
    pub start_ms: i64,
    /// How long WAL replay took, once done.
    pub replay: OnceLock<Duration>,
    /// The scrape manager, once started.
    pub scrape: OnceLock<Arc<crate::scrape::ScrapeManager>>,
    /// The rule manager, once started.
    pub rules: OnceLock<Arc<crate::rules::RuleManager>>,
    /// The alert notifier, once started.
    pub notifier: OnceLock<Arc<crate::notifier::Notifier>>,
    /// The remote read endpoints queries also read from.
    pub remote_read: OnceLock<Arc<crate::remote::fanout::RemoteRead>>,
    /// The remote write queues, once started.
    pub remote_write: OnceLock<Arc<crate::remote::write::RemoteWrite>>,
    /// The configuration's `global.external_labels`, for remote read and federation.
    pub external_labels: parking_lot::RwLock<crate::model::Labels>,
    /// Metric metadata received by remote write, for `/api/v1/metadata`.
    pub remote_metadata: crate::remote::receive::MetadataStore,
}

impl ApiState {
    /// New state with no database yet.
    pub fn new(opts: ApiOptions, metrics: Arc<Registry>, start_ms: i64) -> Self {
        let slots = opts.max_concurrency.max(1);
        let (reload_tx, reload_rx) = tokio::sync::mpsc::channel(8);
        ApiState {
            opts,
            db: OnceLock::new(),
            ready: std::sync::atomic::AtomicBool::new(false),
            metrics,
            query_slots: Arc::new(Semaphore::new(slots)),
            quit: Arc::new(Notify::new()),
            reload: reload_tx,
            reload_rx: parking_lot::Mutex::new(Some(reload_rx)),
            config_yaml: parking_lot::RwLock::new(String::new()),
            config_ok: AtomicBool::new(true),
            config_loaded_ms: std::sync::atomic::AtomicI64::new(start_ms),
            start_ms,
            replay: OnceLock::new(),
            scrape: OnceLock::new(),
            rules: OnceLock::new(),
            notifier: OnceLock::new(),
            remote_write: OnceLock::new(),
            remote_read: OnceLock::new(),
            external_labels: parking_lot::RwLock::new(crate::model::Labels::empty()),
            remote_metadata: crate::remote::receive::MetadataStore::new(),
        }
    }

    /// Whether the server is ready: the database is open and the initial
    /// configuration applied.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire) && self.db.get().is_some()
    }

    /// Marks the server ready (see [`Self::is_ready`]).
    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Release);
    }

    /// Records a configuration (re)load result.
    pub fn set_config(&self, yaml: Option<String>, ok: bool, now_ms: i64) {
        if let Some(y) = yaml {
            *self.config_yaml.write() = y;
        }
        self.config_ok.store(ok, Ordering::Relaxed);
        if ok {
            self.config_loaded_ms.store(now_ms, Ordering::Relaxed);
        }
    }
}
