//! The server's rule evaluation and alert delivery: a [`RuleManager`] over the database
//! and the PromQL engine, and a [`Notifier`] fed by it, both configured from
//! `prometheus.yml` (`rule_files`, `global`, `alerting`).

use std::sync::Arc;
use std::time::Duration;

use crate::config::Config;
use crate::db::Db;
use crate::model::{Label, Labels};
use crate::notifier::{AlertmanagerTarget, Notifier, NotifierOptions};
use crate::promql::engine::{Engine, EngineOptions};
use crate::server::metrics::Registry;

use super::{db_append_func, engine_query_func, ManagerOptions, RuleFileError, RuleManager};

/// Settings from flags.
#[derive(Debug, Clone)]
pub struct ServiceOptions {
    /// `--web.external-url` (or `http://<listen address>`).
    pub external_url: String,
    /// `--rules.alert.resend-delay`.
    pub resend_delay: Duration,
    /// `--rules.alert.for-outage-tolerance`.
    pub outage_tolerance: Duration,
    /// `--rules.alert.for-grace-period`.
    pub grace_period: Duration,
    /// `--alertmanager.notification-queue-capacity`.
    pub queue_capacity: usize,
    /// Query engine settings for rule queries.
    pub engine: EngineOptions,
}

/// Rules and notifications of a running server.
pub struct RuleService {
    /// The rule manager.
    pub manager: Arc<RuleManager>,
    /// The notifier.
    pub notifier: Arc<Notifier>,
    opts: ServiceOptions,
    stop_tx: tokio::sync::watch::Sender<bool>,
}

impl std::fmt::Debug for RuleService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuleService").finish_non_exhaustive()
    }
}

fn external_labels(cfg: &Config) -> Labels {
    Labels::new(
        cfg.global
            .external_labels
            .iter()
            .map(|(k, v)| Label::new(k.as_str(), v.as_str()))
            .collect(),
    )
}

/// The alerts endpoints of the configured Alertmanagers (static targets).
pub fn alertmanager_targets(cfg: &Config) -> Vec<AlertmanagerTarget> {
    let mut out = Vec::new();
    for am in &cfg.alerting.alertmanagers {
        if !am.file_sd_configs.is_empty() {
            log::warn!(target: "aion::notifier", "file_sd_configs for Alertmanagers are not supported; using static_configs only");
        }
        let prefix = am.path_prefix.trim_end_matches('/');
        let prefix = if prefix.is_empty() || prefix.starts_with('/') {
            prefix.to_string()
        } else {
            format!("/{prefix}")
        };
        for sc in &am.static_configs {
            for t in &sc.targets {
                out.push(AlertmanagerTarget {
                    url: format!("{}://{t}{prefix}/api/v2/alerts", am.scheme),
                    timeout: am.timeout.std(),
                    alert_relabel: am.alert_relabel_configs.clone(),
                    http: am.http_client(),
                });
            }
        }
    }
    out
}

impl RuleService {
    /// Starts the notifier's send loop and an empty rule manager; call
    /// [`Self::apply_config`] to load rules. Must be called inside a tokio runtime.
    pub fn start(db: Arc<Db>, opts: ServiceOptions, registry: Arc<Registry>) -> Arc<RuleService> {
        let notifier = Notifier::new(NotifierOptions {
            queue_capacity: opts.queue_capacity,
            ..NotifierOptions::default()
        });
        let n2 = notifier.clone();
        let storage: Arc<dyn crate::storage::Queryable> = db.clone();
        let manager = RuleManager::new(
            ManagerOptions::default(),
            engine_query_func(Engine::new(opts.engine.clone()), storage.clone()),
            db_append_func(db),
            Arc::new(move |alerts| n2.send(alerts)),
            Some(storage),
        );
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        tokio::spawn(notifier.clone().run(stop_rx.clone()));
        let svc = Arc::new(RuleService {
            manager,
            notifier,
            opts,
            stop_tx,
        });
        let s2 = svc.clone();
        let mut stop2 = stop_rx;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            loop {
                tokio::select! {
                    _ = tick.tick() => s2.publish_metrics(&registry),
                    _ = stop2.changed() => return,
                }
            }
        });
        svc
    }

    /// Applies a (re)loaded configuration: rule files, intervals, external labels,
    /// Alertmanagers. On a rule file error nothing changes and the errors are returned.
    pub fn apply_config(&self, cfg: &Config) -> Result<(), Vec<RuleFileError>> {
        let ext = external_labels(cfg);
        self.notifier.set_options(NotifierOptions {
            queue_capacity: self.opts.queue_capacity,
            external_labels: ext.clone(),
            alert_relabel: cfg.alerting.alert_relabel_configs.clone(),
        });
        self.notifier.set_alertmanagers(alertmanager_targets(cfg));
        let files = super::file::expand_globs(&cfg.base_dir, &cfg.rule_files).map_err(|e| {
            vec![RuleFileError {
                file: String::new(),
                line: 0,
                msg: e,
            }]
        })?;
        let mopts = ManagerOptions {
            external_labels: ext,
            external_url: self.opts.external_url.clone(),
            resend_delay: self.opts.resend_delay,
            outage_tolerance: self.opts.outage_tolerance,
            grace_period: self.opts.grace_period,
            default_interval: cfg.global.evaluation_interval.std(),
            default_query_offset: cfg.global.rule_query_offset.std(),
        };
        let r = self.manager.update(mopts, &files);
        match &r {
            Ok(()) => {
                log::info!(target: "aion::rules", "loaded {} rule groups from {} files", self.manager.groups().len(), files.len())
            }
            Err(errs) => {
                for e in errs {
                    log::error!(target: "aion::rules", "loading rules failed err={e}");
                }
            }
        }
        r
    }

    /// Stops evaluation and the send loop.
    pub fn stop(&self) {
        self.manager.stop();
        let _ = self.stop_tx.send(true);
    }

    /// Publishes rule and notifier metrics under Prometheus's names.
    pub fn publish_metrics(&self, reg: &Registry) {
        self.notifier.publish_metrics(reg);
        for g in self.manager.groups() {
            let key = format!("{};{}", g.spec.file, g.spec.name);
            let l = [("rule_group", key.as_str())];
            reg.counter_set(
                "prometheus_rule_group_iterations_missed_total",
                "The total number of rule group evaluations missed due to slow rule group evaluation.",
                &l,
                g.missed as f64,
            );
            reg.counter_set(
                "prometheus_rule_group_iterations_total",
                "The total number of scheduled rule group evaluations, whether executed or missed.",
                &l,
                (g.iterations + g.missed) as f64,
            );
            reg.counter_set(
                "prometheus_rule_evaluation_failures_total",
                "The total number of rule evaluation failures.",
                &l,
                g.failures as f64,
            );
            reg.gauge_set(
                "prometheus_rule_group_last_duration_seconds",
                "The duration of the last rule group evaluation.",
                &l,
                g.eval_seconds,
            );
            reg.gauge_set(
                "prometheus_rule_group_interval_seconds",
                "The interval of a rule group.",
                &l,
                g.interval_ms as f64 / 1000.0,
            );
            reg.gauge_set(
                "prometheus_rule_group_rules",
                "The number of rules.",
                &l,
                g.rules.len() as f64,
            );
        }
    }
}
