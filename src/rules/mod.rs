//! Recording and alerting rules: the rule file format ([`file`]), alert state
//! ([`alerting`]), group evaluation ([`group`]), the [`RuleManager`] that runs groups at their
//! intervals, and the promtool-compatible rule unit tests ([`unittest`]).
//!
//! As in Prometheus, rules do not know the query engine or the database: they get a query
//! function, an append function and a notify function, so they can be tested with fakes.

pub mod alerting;
pub mod file;
pub mod group;
pub mod service;
pub mod unittest;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::{Mutex, RwLock};

use crate::model::Labels;
use crate::notifier::Alert;
use crate::promql::ast::Expr;
use crate::promql::value::InstantSample;

pub use file::{load_rule_file, parse_rule_file, GroupSpec, RuleFileError, RuleKind, RuleSpec};
pub use group::{Group, Health, RuleState};

/// A rule evaluation failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum RuleError {
    /// The query failed.
    #[error("{0}")]
    Query(String),
    /// The result could not be used.
    #[error("{0}")]
    Eval(String),
}

/// Runs an instant query: `(expr, text, t_ms)` → vector (a scalar result becomes one
/// sample with no labels).
pub type QueryFunc = dyn Fn(&Expr, &str, i64) -> Result<Vec<InstantSample>, String> + Send + Sync;
/// Appends `(labels, value)` samples at `t_ms` and commits.
pub type AppendFunc = dyn Fn(&[(Labels, f64)], i64) -> Result<(), String> + Send + Sync;
/// Receives alerts to send.
pub type NotifyFunc = dyn Fn(Vec<Alert>) + Send + Sync;

/// What a group evaluation needs from outside.
pub struct EvalContext<'a> {
    /// The query function.
    pub query: &'a QueryFunc,
    /// The append function.
    pub append: &'a AppendFunc,
    /// External labels (`$externalLabels`).
    pub external_labels: &'a Labels,
    /// `--web.external-url` (`$externalURL`, `generatorURL`).
    pub external_url: &'a str,
    /// `--rules.alert.resend-delay` in ms.
    pub resend_delay_ms: i64,
}

/// A query function over a [`crate::storage::Queryable`] with the PromQL engine.
pub fn engine_query_func(
    engine: crate::promql::engine::Engine,
    storage: Arc<dyn crate::storage::Queryable>,
) -> Arc<QueryFunc> {
    Arc::new(move |expr: &Expr, text: &str, t: i64| {
        let out = engine
            .instant_query_expr(storage.as_ref(), expr, text, t, None)
            .map_err(|e| e.to_string())?;
        match out.value {
            crate::promql::value::Value::Vector(v) => Ok(v),
            crate::promql::value::Value::Scalar { t, v } => Ok(vec![InstantSample {
                labels: Labels::empty(),
                t,
                v,
            }]),
            other => Err(format!(
                "rule result is not a vector or scalar: {}",
                other.type_name()
            )),
        }
    })
}

/// An append function writing to the database, one commit per call.
pub fn db_append_func(db: Arc<crate::db::Db>) -> Arc<AppendFunc> {
    Arc::new(move |samples: &[(Labels, f64)], t: i64| {
        let mut app = db.appender();
        let mut first_err = None;
        for (l, v) in samples {
            if let Err(e) = app.append(l, t, *v) {
                first_err.get_or_insert(e.to_string());
            }
        }
        app.commit().map_err(|e| e.to_string())?;
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    })
}

/// Settings of the rule manager.
#[derive(Debug, Clone)]
pub struct ManagerOptions {
    /// External labels.
    pub external_labels: Labels,
    /// External URL.
    pub external_url: String,
    /// `--rules.alert.resend-delay` (1m).
    pub resend_delay: Duration,
    /// `--rules.alert.for-outage-tolerance` (1h).
    pub outage_tolerance: Duration,
    /// `--rules.alert.for-grace-period` (10m).
    pub grace_period: Duration,
    /// `global.evaluation_interval` (1m).
    pub default_interval: Duration,
    /// `global.rule_query_offset` (0).
    pub default_query_offset: Duration,
}

impl Default for ManagerOptions {
    fn default() -> Self {
        ManagerOptions {
            external_labels: Labels::empty(),
            external_url: String::new(),
            resend_delay: Duration::from_secs(60),
            outage_tolerance: Duration::from_secs(3600),
            grace_period: Duration::from_secs(600),
            default_interval: Duration::from_secs(60),
            default_query_offset: Duration::ZERO,
        }
    }
}

struct Runner {
    group: Arc<Mutex<Group>>,
    stop: tokio::sync::watch::Sender<bool>,
}

/// Loads rule files and evaluates their groups periodically.
pub struct RuleManager {
    opts: RwLock<ManagerOptions>,
    runners: Mutex<Vec<Runner>>,
    query: Arc<QueryFunc>,
    append: Arc<AppendFunc>,
    notify: Arc<NotifyFunc>,
    storage: Option<Arc<dyn crate::storage::Queryable>>,
    restored: AtomicBool,
}

impl std::fmt::Debug for RuleManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuleManager").finish_non_exhaustive()
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl RuleManager {
    /// A manager with no groups. `storage` (when given) is read to restore `for` state
    /// from `ALERTS_FOR_STATE` on the first load.
    pub fn new(
        opts: ManagerOptions,
        query: Arc<QueryFunc>,
        append: Arc<AppendFunc>,
        notify: Arc<NotifyFunc>,
        storage: Option<Arc<dyn crate::storage::Queryable>>,
    ) -> Arc<RuleManager> {
        Arc::new(RuleManager {
            opts: RwLock::new(opts),
            runners: Mutex::new(Vec::new()),
            query,
            append,
            notify,
            storage,
            restored: AtomicBool::new(false),
        })
    }

    /// Loads `files` and replaces the running groups (state of unchanged rules carries
    /// over). On any error nothing changes and every problem is returned. Must be called
    /// inside a tokio runtime.
    pub fn update(
        self: &Arc<Self>,
        opts: ManagerOptions,
        files: &[PathBuf],
    ) -> Result<(), Vec<RuleFileError>> {
        let mut specs = Vec::new();
        let mut errors = Vec::new();
        for f in files {
            match load_rule_file(f) {
                Ok(g) => specs.extend(g),
                Err(e) => errors.extend(e),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        *self.opts.write() = opts.clone();
        let first = !self.restored.swap(true, Ordering::SeqCst);
        let mut runners = self.runners.lock();
        let old: Vec<Runner> = std::mem::take(&mut *runners);
        for spec in specs {
            let mut g = Group::new(
                spec,
                opts.default_interval.as_millis() as i64,
                opts.default_query_offset.as_millis() as i64,
            );
            if let Some(o) = old.iter().find(|o| o.group.lock().key() == g.key()) {
                g.copy_state_from(&o.group.lock());
            } else if first && self.storage.is_some() {
                g.set_unrestored();
            }
            let group = Arc::new(Mutex::new(g));
            let (tx, rx) = tokio::sync::watch::channel(false);
            let me = self.clone();
            let gr = group.clone();
            tokio::spawn(async move { me.run_group(gr, rx).await });
            runners.push(Runner { group, stop: tx });
        }
        let kept: Vec<(String, String)> = runners.iter().map(|r| r.group.lock().key()).collect();
        drop(runners);
        for o in old {
            let _ = o.stop.send(true);
            let key = o.group.lock().key();
            if !kept.contains(&key) {
                let ctx_opts = self.opts.read().clone();
                let ctx = EvalContext {
                    query: self.query.as_ref(),
                    append: self.append.as_ref(),
                    external_labels: &ctx_opts.external_labels,
                    external_url: &ctx_opts.external_url,
                    resend_delay_ms: ctx_opts.resend_delay.as_millis() as i64,
                };
                o.group.lock().mark_all_stale(now_ms(), &ctx);
            }
        }
        Ok(())
    }

    /// Stops every group.
    pub fn stop(&self) {
        for r in self.runners.lock().drain(..) {
            let _ = r.stop.send(true);
        }
    }

    /// A snapshot of every group, in load order.
    pub fn groups(&self) -> Vec<Group> {
        self.runners
            .lock()
            .iter()
            .map(|r| r.group.lock().clone())
            .collect()
    }

    /// Evaluates `group` once at `ts` and sends its alerts.
    pub fn eval_group_once(&self, group: &mut Group, ts: i64) {
        let o = self.opts.read().clone();
        let ctx = EvalContext {
            query: self.query.as_ref(),
            append: self.append.as_ref(),
            external_labels: &o.external_labels,
            external_url: &o.external_url,
            resend_delay_ms: o.resend_delay.as_millis() as i64,
        };
        let alerts = group.eval(ts, &ctx);
        if !alerts.is_empty() {
            (self.notify)(alerts);
        }
    }

    async fn run_group(
        self: Arc<Self>,
        group: Arc<Mutex<Group>>,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        let (interval, mut eval_ts) = {
            let g = group.lock();
            (g.interval_ms, g.eval_timestamp(now_ms()) + g.interval_ms)
        };
        loop {
            let wait = (eval_ts - now_ms()).max(0) as u64;
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(wait)) => {}
                _ = stop.changed() => return,
            }
            if *stop.borrow() {
                return;
            }
            let behind = now_ms() - eval_ts;
            let missed = behind / interval;
            if missed > 0 {
                group.lock().missed += missed as u64;
                eval_ts += missed * interval;
            }
            let ts = eval_ts;
            let me = self.clone();
            let g2 = group.clone();
            let _ = tokio::task::spawn_blocking(move || {
                let mut g = g2.lock();
                me.eval_group_once(&mut g, ts);
                let needs_restore = g.iterations >= 2
                    && g.rules
                        .iter()
                        .any(|r| r.alerting.as_ref().is_some_and(|a| !a.restored));
                if needs_restore {
                    if let Some(st) = &me.storage {
                        let o = me.opts.read().clone();
                        group::restore_for_state(
                            &mut g,
                            st.as_ref(),
                            now_ms(),
                            o.outage_tolerance.as_millis() as i64,
                            o.grace_period.as_millis() as i64,
                        );
                    }
                }
            })
            .await;
            eval_ts += interval;
        }
    }

    /// Every alert of every alerting rule, with its rule's name.
    pub fn active_alerts(&self) -> Vec<alerting::ActiveAlert> {
        let mut out = Vec::new();
        for g in self.groups() {
            for r in &g.rules {
                if let Some(a) = &r.alerting {
                    out.extend(
                        a.alerts()
                            .into_iter()
                            .filter(|x| x.state != alerting::AlertState::Inactive)
                            .cloned(),
                    );
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests;

/// `check rules`: validates rule files as `promtool check rules` does. Returns the report
/// and whether every file is valid.
pub fn check_files<P: AsRef<std::path::Path>>(paths: &[P]) -> (String, bool) {
    use std::fmt::Write as _;
    let mut out = String::new();
    let mut ok = true;
    for p in paths {
        let p = p.as_ref();
        let _ = writeln!(out, "Checking {}", p.display());
        match load_rule_file(p) {
            Ok(groups) => {
                let n: usize = groups.iter().map(|g| g.rules.len()).sum();
                let _ = writeln!(out, "  SUCCESS: {n} rules found\n");
            }
            Err(errs) => {
                ok = false;
                let _ = writeln!(out, "  FAILED:");
                for e in errs {
                    let _ = writeln!(out, "{e}");
                }
                out.push('\n');
            }
        }
    }
    (out, ok)
}
