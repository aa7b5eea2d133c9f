//! The `aion` server: flags → configuration → open the database → serve the HTTP API,
//! scrape the configured targets (by default Aion itself), reload the configuration on
//! SIGHUP or `POST /-/reload`, and shut down cleanly on SIGINT/SIGTERM or `POST /-/quit`.

pub mod auth;
pub mod flags;
pub mod logging;
pub mod metrics;
pub mod tls;
pub mod webconfig;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::api::{self, ApiOptions, ApiState};
use crate::config::Config;
use crate::db::{Db, DbOptions};
use crate::promql::engine::EngineOptions;
use crate::scrape::ScrapeManager;
use crate::wal::{FsyncPolicy, WalOptions};

use flags::ServerFlags;
use metrics::Registry;

/// The configuration used when none is given: scrape Aion itself.
pub const DEFAULT_CONFIG: &str = "global:\n  scrape_interval: 15s\n  evaluation_interval: 15s\nscrape_configs:\n  - job_name: aion\n    static_configs:\n      - targets: [\"127.0.0.1:9090\"]\n";

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Server start-up failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// A flag or the configuration is invalid.
    #[error("{0}")]
    Config(String),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// The database could not be opened.
    #[error("cannot open storage: {0}")]
    Storage(String),
    /// The web configuration file (`--web.config.file`) is invalid.
    #[error("error loading web config file: {0}")]
    WebConfig(#[from] webconfig::WebConfigError),
    /// The async runtime failed.
    #[error("runtime error: {0}")]
    Runtime(String),
}

fn db_options(f: &ServerFlags) -> DbOptions {
    let fsync = match f.wal_fsync.as_str() {
        "always" => FsyncPolicy::Always,
        "never" => FsyncPolicy::Never,
        _ => FsyncPolicy::Interval(f.wal_fsync_interval),
    };
    DbOptions {
        wal: WalOptions {
            fsync,
            ..WalOptions::default()
        },
        retention_time_ms: i64::try_from(f.retention_time.as_millis()).unwrap_or(i64::MAX),
        retention_size_bytes: f.retention_size,
        max_head_series: f.head_series_limit,
        block_range_ms: i64::try_from(f.min_block_duration.as_millis())
            .unwrap_or(i64::MAX)
            .max(1),
        max_block_duration_ms: f
            .max_block_duration
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
        maintenance_interval: Some(f.maintenance_interval.max(Duration::from_millis(1))),
        ..DbOptions::default()
    }
}

/// Reads the configuration text: the given file, else `./prometheus.yml` when present, else
/// the built-in default.
fn load_config(f: &ServerFlags) -> Result<(Option<PathBuf>, String), ServerError> {
    let path = match &f.config_file {
        Some(p) => Some(p.clone()),
        None => {
            let p = PathBuf::from("prometheus.yml");
            p.exists().then_some(p)
        }
    };
    match path {
        Some(p) => std::fs::read_to_string(&p)
            .map(|s| (Some(p.clone()), s))
            .map_err(|e| {
                ServerError::Config(format!("cannot read config file {}: {e}", p.display()))
            }),
        None => Ok((
            None,
            DEFAULT_CONFIG.replace("127.0.0.1:9090", &f.listen_address),
        )),
    }
}

/// Refreshes gauges that mirror storage and process state.
pub fn refresh_metrics(st: &ApiState) {
    let reg = &st.metrics;
    metrics::update_process_metrics(reg, st.start_ms as f64 / 1000.0);
    if let Some(rw) = st.remote_write.get() {
        for m in rw.metrics() {
            let labels: Vec<(&str, &str)> =
                m.labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
            if m.counter {
                reg.counter_set(m.name, m.help, &labels, m.value);
            } else {
                reg.gauge_set(m.name, m.help, &labels, m.value);
            }
        }
    }
    if let Some(db) = st.db.get() {
        let s = db.stats();
        reg.gauge_set(
            "prometheus_tsdb_head_series",
            "Total number of series in the head block.",
            &[],
            s.num_series as f64,
        );
        reg.counter_set(
            "prometheus_tsdb_head_samples_appended_total",
            "Total number of appended samples.",
            &[("type", "float")],
            s.samples_appended as f64,
        );
        reg.counter_set(
            "prometheus_tsdb_out_of_order_samples_total",
            "Total number of out of order samples ingestion failed attempts.",
            &[("type", "float")],
            s.out_of_order as f64,
        );
        reg.counter_set(
            "prometheus_tsdb_out_of_bound_samples_total",
            "Total number of out of bound samples ingestion failed attempts.",
            &[("type", "float")],
            s.out_of_bounds as f64,
        );
        reg.counter_set(
            "aion_tsdb_head_series_limit_rejected_samples_total",
            "Samples rejected because they would have created a series beyond --storage.tsdb.head-series-limit.",
            &[],
            s.series_limited as f64,
        );
        reg.gauge_set(
            "aion_tsdb_head_series_limit",
            "The head series limit (--storage.tsdb.head-series-limit); 0 means none.",
            &[],
            db.options().max_head_series as f64,
        );
        reg.counter_set(
            "aion_tsdb_duplicate_samples_total",
            "Samples rejected for a duplicate timestamp with a different value.",
            &[],
            s.duplicate as f64,
        );
        reg.gauge_set(
            "prometheus_tsdb_head_min_time",
            "Minimum time bound of the head block.",
            &[],
            s.min_time.unwrap_or(0) as f64,
        );
        reg.gauge_set(
            "prometheus_tsdb_head_max_time",
            "Maximum timestamp of the head block.",
            &[],
            s.max_time.unwrap_or(0) as f64,
        );
        reg.counter_set(
            "prometheus_tsdb_wal_corruptions_total",
            "Total number of WAL corruptions.",
            &[],
            db.wal_corrupted_records() as f64,
        );
        reg.counter_set(
            "prometheus_tsdb_wal_writes_failed_total",
            "Total number of write log writes that failed.",
            &[],
            db.wal_writes_failed() as f64,
        );
        reg.counter_set(
            "aion_tsdb_wal_fsyncs_total",
            "Number of WAL fsyncs.",
            &[],
            db.wal_fsync_count() as f64,
        );
        // A summary as in Prometheus, with its sum and count (no quantiles).
        reg.summary_set(
            "prometheus_tsdb_wal_fsync_duration_seconds",
            "Duration of write log fsync.",
            &[],
            db.wal_fsync_seconds(),
            db.wal_fsync_count(),
        );
        let d = db.db_stats();
        let c = |name, help, v: u64| reg.counter_set(name, help, &[], v as f64);
        let g = |name, help, v: u64| reg.gauge_set(name, help, &[], v as f64);
        g(
            "prometheus_tsdb_blocks_loaded",
            "Number of currently loaded data blocks.",
            d.blocks,
        );
        c(
            "prometheus_tsdb_compactions_total",
            "Total number of compactions that were executed.",
            d.compactions,
        );
        c(
            "prometheus_tsdb_compactions_failed_total",
            "Total number of compactions that failed.",
            d.compactions_failed,
        );
        c(
            "prometheus_tsdb_head_truncations_total",
            "Total number of head truncations.",
            d.head_truncations,
        );
        c(
            "prometheus_tsdb_checkpoint_creations_total",
            "Total number of checkpoint creations.",
            d.checkpoints,
        );
        c(
            "prometheus_tsdb_time_retentions_total",
            "Blocks deleted because the time limit was exceeded.",
            d.retention_time_deleted,
        );
        c(
            "prometheus_tsdb_size_retentions_total",
            "Blocks deleted because the size limit was exceeded.",
            d.retention_size_deleted,
        );
        g(
            "prometheus_tsdb_storage_blocks_bytes",
            "Bytes used by the data directory.",
            d.bytes_on_disk,
        );
        c(
            "aion_tsdb_corrupted_blocks_total",
            "Blocks set aside because they failed validation.",
            d.corrupted_blocks,
        );
    }
}

/// Runs the server until a shutdown signal; returns after the database is closed.
pub fn run(f: ServerFlags) -> Result<(), ServerError> {
    let format = if f.log_format == "json" {
        logging::LogFormat::Json
    } else {
        logging::LogFormat::Logfmt
    };
    logging::init(&f.log_level, format).map_err(ServerError::Config)?;
    let (config_path, config_text) = load_config(&f)?;
    let config = parse_config(config_path.as_deref(), &config_text)?;
    check_rule_files(&config)?;
    let web = match &f.web_config_file {
        Some(p) => Some(Arc::new(webconfig::WebConfigSource::open(p)?)),
        None => None,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("aion-http")
        .build()
        .map_err(|e| ServerError::Runtime(e.to_string()))?;
    rt.block_on(serve(f, config_path, config_text, config, web))
}

/// Parses configuration text read from `path` (or the built-in default).
fn parse_config(path: Option<&std::path::Path>, text: &str) -> Result<Config, ServerError> {
    let name = path.unwrap_or(std::path::Path::new("prometheus.yml"));
    Config::parse(text, name).map_err(|e| ServerError::Config(e.to_string()))
}

/// Loads every rule file the configuration names, as Prometheus does before it
/// starts: a missing or invalid rule file stops start-up with all its errors.
fn check_rule_files(config: &Config) -> Result<(), ServerError> {
    let files = crate::rules::file::expand_globs(&config.base_dir, &config.rule_files)
        .map_err(ServerError::Config)?;
    let mut errors = Vec::new();
    for file in &files {
        if let Err(errs) = crate::rules::file::load_rule_file(file) {
            errors.extend(errs.iter().map(|e| e.to_string()));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ServerError::Config(format!(
            "error loading rule files: {}",
            errors.join("; ")
        )))
    }
}

/// Checks configuration files as `promtool check config` does; returns whether all
/// are valid. Prints a report per file.
pub fn check_config_files(files: &[PathBuf]) -> bool {
    let mut ok = true;
    for f in files {
        println!("Checking {}", f.display());
        match Config::load_file(f) {
            Ok(c) => {
                let rules = c.rule_files.len();
                println!(
                    "  SUCCESS: {} is valid prometheus config file syntax ({} scrape configs, {rules} rule files)",
                    f.display(),
                    c.scrape_configs.len()
                );
            }
            Err(e) => {
                println!("  FAILED: {e}");
                ok = false;
            }
        }
        println!();
    }
    ok
}

async fn serve(
    f: ServerFlags,
    config_path: Option<PathBuf>,
    config_text: String,
    config: Config,
    web: Option<Arc<webconfig::WebConfigSource>>,
) -> Result<(), ServerError> {
    let start_ms = now_ms();
    let registry = Arc::new(Registry::new());
    let engine = EngineOptions {
        lookback_delta_ms: f.lookback_delta.as_millis() as i64,
        max_samples: f.query_max_samples,
        timeout: f.query_timeout,
        ..EngineOptions::default()
    };
    let opts = ApiOptions {
        engine,
        max_concurrency: f.query_max_concurrency,
        enable_admin: f.enable_admin_api,
        enable_lifecycle: f.enable_lifecycle,
        flags: f.as_pairs(),
        storage_retention: crate::model::time::format_duration_ms(
            f.retention_time.as_millis() as i64
        ),
        max_body_bytes: 32 << 20,
        enable_remote_write_receiver: f.enable_remote_write_receiver,
    };
    let st = Arc::new(ApiState::new(opts, registry, start_ms));
    st.set_config(Some(config_text), true, start_ms);
    *st.external_labels.write() = config.global.external_labels();

    let listener = tokio::net::TcpListener::bind(&f.listen_address)
        .await
        .map_err(|source| ServerError::Listen {
            addr: f.listen_address.clone(),
            source,
        })?;
    let tls_on = web.as_ref().is_some_and(|w| w.tls_enabled());
    log::info!(target: "aion::server", "listening on {} (API at /api/v1, metrics at /metrics) tls={tls_on}", f.listen_address);
    let listener = tls::ServerListener::start(listener, web.clone()).map_err(|source| {
        ServerError::Listen {
            addr: f.listen_address.clone(),
            source,
        }
    })?;

    // Open (and replay) the database in the background; /-/ready answers 503 until it is
    // open and the configuration below is applied.
    let dir = f.tsdb_path.clone();
    let dbo = db_options(&f);
    let st_open = st.clone();
    let opened = tokio::task::spawn_blocking(move || {
        let t0 = Instant::now();
        log::info!(target: "aion::server", "opening storage at {}", dir.display());
        let db = Db::open(&dir, dbo).map_err(|e| ServerError::Storage(e.to_string()))?;
        let took = t0.elapsed();
        let _ = st_open.replay.set(took);
        let db = Arc::new(db);
        let _ = st_open.db.set(db.clone());
        log::info!(target: "aion::server", "storage ready, WAL replayed in {:.3}s", took.as_secs_f64());
        Ok::<Arc<Db>, ServerError>(db)
    });

    let mut app = api::router(st.clone());
    if let Some(w) = &web {
        app = app.layer(axum::middleware::from_fn_with_state(
            auth::WebGuard::new(w.clone()),
            auth::guard,
        ));
    }
    let quit = st.quit.clone();
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stop_rx.changed().await;
            })
            .await
    });

    let db = match opened.await {
        Ok(Ok(db)) => db,
        Ok(Err(e)) => {
            let _ = stop_tx.send(true);
            let _ = server.await;
            return Err(e);
        }
        Err(e) => return Err(ServerError::Runtime(e.to_string())),
    };

    // Remote write follows the WAL; started before scraping so a new queue sends
    // everything scraped from now on.
    let hold_db = db.clone();
    let remote_write = crate::remote::write::RemoteWrite::new(
        f.tsdb_path.clone(),
        f.tsdb_path.join("wal"),
        Arc::new(move || {
            Some(Box::new(hold_db.wal_segment_hold())
                as Box<dyn crate::remote::watcher::SegmentHold>)
        }),
    );
    remote_write.apply_config(&config).await;
    let _ = st.remote_write.set(remote_write.clone());
    let remote_read = crate::remote::fanout::RemoteRead::new(tokio::runtime::Handle::current());
    remote_read.apply_config(&config);
    let _ = st.remote_read.set(remote_read.clone());

    // Scraping (the built-in configuration scrapes Aion's own /metrics as job="aion").
    let scrape = ScrapeManager::new(db.clone());
    let _ = st.scrape.set(scrape.clone());
    scrape.apply_config(&config).await;
    st.metrics.gauge_set(
        "prometheus_config_last_reload_successful",
        "Whether the last configuration reload attempt was successful.",
        &[],
        1.0,
    );
    // Rule evaluation and alert notifications.
    let rules_svc = crate::rules::service::RuleService::start(
        db.clone(),
        rule_service_options(&f, &st.opts.engine, tls_on),
        st.metrics.clone(),
    );
    let _ = st.rules.set(rules_svc.manager.clone());
    let _ = st.notifier.set(rules_svc.notifier.clone());
    let _ = rules_svc.apply_config(&config);
    // As in Prometheus, ready once the initial configuration is applied: a query
    // answered from then on sees remote read, and scraping has begun.
    st.set_ready();
    log::info!(target: "aion::server", "server is ready to receive web requests");
    let rules_reload = rules_svc.clone();
    let remote_reload = remote_write.clone();
    let scrape_reload = scrape.clone();
    let st_reload = st.clone();
    let mut reload_rx = st.reload_rx.lock().take();
    let reloader = tokio::spawn(async move {
        let mut hup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
            Ok(s) => s,
            Err(_) => return,
        };
        loop {
            let reply = tokio::select! {
                _ = hup.recv() => None,
                Some(r) = async { match reload_rx.as_mut() { Some(rx) => rx.recv().await, None => std::future::pending().await } } => Some(r),
            };
            let outcome = match reload_config(&st_reload, config_path.as_ref()) {
                Ok(Some(cfg)) => {
                    remote_reload.apply_config(&cfg).await;
                    remote_read.apply_config(&cfg);
                    scrape_reload.apply_config(&cfg).await;
                    match rules_reload.apply_config(&cfg) {
                        Ok(()) => Ok(()),
                        Err(errs) => {
                            // As in Prometheus, a rule file that fails to load fails the
                            // reload; the rule manager keeps the previous groups running.
                            mark_reload_failed(&st_reload);
                            let msgs: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
                            Err(format!("one or more errors occurred while applying the new configuration: {}", msgs.join("; ")))
                        }
                    }
                }
                Ok(None) => Ok(()),
                Err(e) => Err(e),
            };
            if let Some(reply) = reply {
                let _ = reply.send(outcome);
            }
        }
    });

    wait_for_shutdown(quit).await;
    log::info!(target: "aion::server", "shutting down: finishing in-flight requests");
    reloader.abort();
    rules_svc.stop();
    drop(rules_svc);
    scrape.stop().await;
    drop(scrape);
    // Every scraped sample is in the WAL now; the queues save how far they got.
    remote_write.stop().await;
    drop(remote_write);
    let _ = stop_tx.send(true);
    match server.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => log::error!(target: "aion::server", "HTTP server error err={e}"),
        Err(e) => log::error!(target: "aion::server", "HTTP server task failed err={e}"),
    }
    drop(st);
    let closed = tokio::task::spawn_blocking(move || match Arc::try_unwrap(db) {
        Ok(db) => db.close().map_err(|e| e.to_string()),
        Err(shared) => {
            // Still referenced by a finishing task: flush what is written instead.
            shared.sync().map_err(|e| e.to_string())
        }
    })
    .await;
    match closed {
        Ok(Ok(())) => log::info!(target: "aion::server", "storage closed cleanly"),
        Ok(Err(e)) => log::error!(target: "aion::server", "closing storage failed err={e}"),
        Err(e) => log::error!(target: "aion::server", "closing storage failed err={e}"),
    }
    Ok(())
}

/// Rule and notifier settings from flags.
fn rule_service_options(
    f: &ServerFlags,
    engine: &EngineOptions,
    tls: bool,
) -> crate::rules::service::ServiceOptions {
    let scheme = if tls { "https" } else { "http" };
    crate::rules::service::ServiceOptions {
        external_url: f
            .external_url
            .clone()
            .unwrap_or_else(|| format!("{scheme}://{}", f.listen_address))
            .trim_end_matches('/')
            .to_string(),
        resend_delay: f.rules_alert_resend_delay,
        outage_tolerance: f.rules_alert_for_outage_tolerance,
        grace_period: f.rules_alert_for_grace_period,
        queue_capacity: f.alertmanager_notification_queue_capacity,
        engine: engine.clone(),
    }
}

/// Re-reads and checks the configuration file; on success returns it for the
/// subsystems to apply. An invalid file leaves the running configuration in place.
fn reload_config(st: &ApiState, path: Option<&PathBuf>) -> Result<Option<Config>, String> {
    let Some(path) = path else {
        log::info!(target: "aion::config", "reload requested; running the built-in configuration, nothing to reload");
        return Ok(None);
    };
    let gauge = |v: f64| {
        st.metrics.gauge_set(
            "prometheus_config_last_reload_successful",
            "Whether the last configuration reload attempt was successful.",
            &[],
            v,
        )
    };
    let loaded = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read config file {}: {e}", path.display()))
        .and_then(|text| {
            Config::parse(&text, path)
                .map(|c| (text, c))
                .map_err(|e| e.to_string())
        });
    match loaded {
        Ok((text, cfg)) => {
            st.set_config(Some(text), true, now_ms());
            *st.external_labels.write() = cfg.global.external_labels();
            gauge(1.0);
            log::info!(target: "aion::config", "completed loading of configuration file {}", path.display());
            Ok(Some(cfg))
        }
        Err(e) => {
            st.set_config(None, false, now_ms());
            gauge(0.0);
            log::error!(target: "aion::config", "error reloading config file {}, keeping the running configuration err={e:?}", path.display());
            Err(e)
        }
    }
}

/// Records a reload that failed after the configuration file itself parsed.
fn mark_reload_failed(st: &ApiState) {
    st.set_config(None, false, now_ms());
    st.metrics.gauge_set(
        "prometheus_config_last_reload_successful",
        "Whether the last configuration reload attempt was successful.",
        &[],
        0.0,
    );
    log::error!(target: "aion::config", "error reloading configuration: one or more rule files failed to load, keeping the running rule groups");
}

async fn wait_for_shutdown(quit: Arc<tokio::sync::Notify>) {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => log::info!(target: "aion::server", "received SIGINT"),
        _ = term => log::info!(target: "aion::server", "received SIGTERM"),
        _ = quit.notified() => log::info!(target: "aion::server", "received quit request"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn storage_flags_reach_the_database_options() {
        let cli = flags::Cli::try_parse_from([
            "aion",
            "--storage.tsdb.retention.time=2d",
            "--storage.tsdb.retention.size=1GB",
            "--storage.tsdb.wal-fsync=always",
        ])
        .unwrap();
        let o = db_options(&cli.server);
        assert_eq!(o.retention_time_ms, 2 * 86_400_000);
        assert_eq!(o.retention_size_bytes, 1 << 30);
        assert_eq!(o.wal.fsync, FsyncPolicy::Always);
        assert_eq!(o.block_range_ms, 2 * 3_600_000);
        assert_eq!(o.max_block_duration_ms, 0);
        assert_eq!(o.maintenance_interval, Some(Duration::from_secs(60)));
        let cli = flags::Cli::try_parse_from([
            "aion",
            "--storage.tsdb.min-block-duration=2s",
            "--storage.tsdb.max-block-duration=18s",
            "--storage.tsdb.maintenance-interval=200ms",
        ])
        .unwrap();
        let o = db_options(&cli.server);
        assert_eq!(o.block_range_ms, 2_000);
        assert_eq!(o.max_block_duration_ms, 18_000);
        assert_eq!(o.maintenance_interval, Some(Duration::from_millis(200)));
    }
}
