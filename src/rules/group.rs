//! A rule group: evaluates its rules in order at one timestamp, appends their output and
//! staleness markers, and collects the alerts to send.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use crate::model::{Labels, STALE_NAN};
use crate::notifier::{generator_url, Alert};

use super::alerting::{ActiveAlert, AlertState, AlertingRule};
use super::file::{GroupSpec, RuleKind, RuleSpec};
use super::{EvalContext, RuleError};

/// Health of a rule after its last evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Not evaluated yet.
    Unknown,
    /// Last evaluation succeeded.
    Ok,
    /// Last evaluation failed.
    Err,
}

impl Health {
    /// Prometheus's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Ok => "ok",
            Health::Err => "err",
        }
    }
}

/// A rule with its evaluation status.
#[derive(Debug, Clone)]
pub struct RuleState {
    /// The definition.
    pub spec: RuleSpec,
    /// Alert state, for alerting rules.
    pub alerting: Option<AlertingRule>,
    /// Health.
    pub health: Health,
    /// Last error message.
    pub last_error: String,
    /// Last evaluation (unix ms, 0 = never).
    pub last_eval_ms: i64,
    /// Duration of the last evaluation, seconds.
    pub eval_seconds: f64,
    /// Series written by the last evaluation (for staleness markers).
    prev_series: HashSet<Labels>,
}

impl RuleState {
    fn new(spec: RuleSpec) -> Self {
        let alerting = match spec.kind {
            RuleKind::Alert(_) => Some(AlertingRule::new(spec.clone())),
            RuleKind::Record(_) => None,
        };
        RuleState {
            spec,
            alerting,
            health: Health::Unknown,
            last_error: String::new(),
            last_eval_ms: 0,
            eval_seconds: 0.0,
            prev_series: HashSet::new(),
        }
    }
}

/// A group of rules.
#[derive(Debug, Clone)]
pub struct Group {
    /// The definition.
    pub spec: GroupSpec,
    /// Effective interval (ms).
    pub interval_ms: i64,
    /// Effective query offset (ms).
    pub query_offset_ms: i64,
    /// Rules in order.
    pub rules: Vec<RuleState>,
    /// Last evaluation (unix ms).
    pub last_eval_ms: i64,
    /// Duration of the last evaluation (s).
    pub eval_seconds: f64,
    /// Evaluations missed because the previous one overran.
    pub missed: u64,
    /// Evaluations done.
    pub iterations: u64,
    /// Failed rule evaluations.
    pub failures: u64,
}

impl Group {
    /// A group from its definition; `default_interval_ms` and `default_offset_ms` apply
    /// when the group sets none.
    pub fn new(spec: GroupSpec, default_interval_ms: i64, default_offset_ms: i64) -> Self {
        Group {
            interval_ms: spec.interval_ms.unwrap_or(default_interval_ms).max(1),
            query_offset_ms: spec.query_offset_ms.unwrap_or(default_offset_ms),
            rules: spec.rules.iter().cloned().map(RuleState::new).collect(),
            spec,
            last_eval_ms: 0,
            eval_seconds: 0.0,
            missed: 0,
            iterations: 0,
            failures: 0,
        }
    }

    /// `(file, name)`.
    pub fn key(&self) -> (String, String) {
        (self.spec.file.clone(), self.spec.name.clone())
    }

    /// Takes over alert state of identical rules from `old` (after a reload).
    pub fn copy_state_from(&mut self, old: &Group) {
        let mut used = vec![false; old.rules.len()];
        for r in &mut self.rules {
            let found = old.rules.iter().enumerate().find(|(i, o)| {
                !used.get(*i).copied().unwrap_or(true) && o.spec.same_definition(&r.spec)
            });
            if let Some((i, o)) = found {
                if let Some(u) = used.get_mut(i) {
                    *u = true;
                }
                r.alerting = o.alerting.clone();
                r.health = o.health;
                r.last_error = o.last_error.clone();
                r.last_eval_ms = o.last_eval_ms;
                r.eval_seconds = o.eval_seconds;
                r.prev_series = o.prev_series.clone();
            }
        }
    }

    /// Marks alerting rules as waiting for `for` state restoration.
    pub fn set_unrestored(&mut self) {
        for r in &mut self.rules {
            if let Some(a) = &mut r.alerting {
                a.restored = false;
            }
        }
    }

    /// The evaluation timestamp at or before `now_ms`, on this group's stable offset.
    pub fn eval_timestamp(&self, now_ms: i64) -> i64 {
        let iv = self.interval_ms.max(1);
        let offset = (group_hash(&self.spec.file, &self.spec.name) % iv as u64) as i64;
        let adj = now_ms - offset;
        adj - adj.rem_euclid(iv) + offset
    }

    /// Evaluates every rule at `ts`, appending through `ctx.append` (one commit per rule,
    /// so later rules see earlier recording rules' output). Returns the alerts to send.
    pub fn eval(&mut self, ts: i64, ctx: &EvalContext<'_>) -> Vec<Alert> {
        let started = Instant::now();
        let mut to_send = Vec::new();
        let sample_ts = ts - self.query_offset_ms;
        let limit = self.spec.limit;
        for r in &mut self.rules {
            let rule_started = Instant::now();
            let res = (ctx.query)(&r.spec.expr, &r.spec.expr_text, sample_ts);
            let out: Result<Vec<(Labels, f64)>, RuleError> = match res {
                Err(e) => Err(RuleError::Query(e)),
                Ok(vec) => match (&r.spec.kind, &mut r.alerting) {
                    (RuleKind::Alert(_), Some(a)) => a.eval(ts, vec, ctx, limit),
                    (RuleKind::Record(name), _) => record(name, &r.spec, vec, limit),
                    (RuleKind::Alert(_), None) => Ok(Vec::new()),
                },
            };
            let mut samples = Vec::new();
            let mut cur = HashSet::new();
            match out {
                Ok(s) => {
                    r.health = Health::Ok;
                    r.last_error.clear();
                    for (l, v) in s {
                        cur.insert(l.clone());
                        samples.push((l, v));
                    }
                }
                Err(e) => {
                    r.health = Health::Err;
                    r.last_error = e.to_string();
                    self.failures += 1;
                    log::warn!(target: "aion::rules", "evaluating rule failed group={} rule={} err={e}", self.spec.name, r.spec.name());
                }
            }
            for old in &r.prev_series {
                if !cur.contains(old) {
                    samples.push((old.clone(), STALE_NAN));
                }
            }
            if !samples.is_empty() {
                if let Err(e) = (ctx.append)(&samples, sample_ts) {
                    log::warn!(target: "aion::rules", "appending rule output failed group={} rule={} err={e}", self.spec.name, r.spec.name());
                }
            }
            r.prev_series = cur;
            if let Some(a) = &mut r.alerting {
                for al in a.alerts_to_send(ts, ctx.resend_delay_ms, self.interval_ms) {
                    to_send.push(to_notifier_alert(&al, &r.spec.expr_text, ctx.external_url));
                }
            }
            r.last_eval_ms = ts;
            r.eval_seconds = rule_started.elapsed().as_secs_f64();
        }
        self.last_eval_ms = ts;
        self.iterations += 1;
        self.eval_seconds = started.elapsed().as_secs_f64();
        to_send
    }

    /// Writes staleness markers for everything the group's rules produced (the group was
    /// removed or the server is stopping).
    pub fn mark_all_stale(&mut self, ts: i64, ctx: &EvalContext<'_>) {
        let mut samples = Vec::new();
        for r in &mut self.rules {
            for l in r.prev_series.drain() {
                samples.push((l, STALE_NAN));
            }
        }
        if !samples.is_empty() {
            let _ = (ctx.append)(&samples, ts);
        }
    }
}

fn record(
    name: &str,
    spec: &RuleSpec,
    vec: Vec<crate::promql::value::InstantSample>,
    limit: usize,
) -> Result<Vec<(Labels, f64)>, RuleError> {
    let mut out = Vec::with_capacity(vec.len());
    let mut seen = HashSet::new();
    for s in vec {
        let mut b = s.labels.builder();
        b.set("__name__", name);
        for (k, v) in &spec.labels {
            b.set(k, v);
        }
        let l = b.labels();
        if !seen.insert(l.clone()) {
            return Err(RuleError::Eval(
                "vector contains metrics with the same labelset after applying rule labels"
                    .to_string(),
            ));
        }
        out.push((l, s.v));
    }
    if limit > 0 && out.len() > limit {
        return Err(RuleError::Eval(format!(
            "exceeded limit of {limit} with {} series",
            out.len()
        )));
    }
    Ok(out)
}

/// Converts an alert's state into what Alertmanager receives.
pub fn to_notifier_alert(a: &ActiveAlert, expr: &str, external_url: &str) -> Alert {
    Alert {
        labels: a.labels.clone(),
        annotations: a.annotations.clone(),
        starts_at: a.fired_at,
        ends_at: if a.resolved_at != 0 {
            a.resolved_at
        } else {
            a.valid_until
        },
        generator_url: generator_url(external_url, expr),
    }
}

/// FNV-1a of `file`, a separator and `name`: the group's stable evaluation offset.
fn group_hash(file: &str, name: &str) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in file.bytes().chain([0xffu8]).chain(name.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

/// Reads the last `ALERTS_FOR_STATE` sample per alert label set within
/// `[ts - outage_tolerance, ts]` and restores pending alerts' `for` progress.
pub fn restore_for_state(
    group: &mut Group,
    storage: &dyn crate::storage::Queryable,
    ts: i64,
    outage_tolerance_ms: i64,
    grace_ms: i64,
) {
    for r in &mut group.rules {
        let Some(a) = &mut r.alerting else { continue };
        if a.restored {
            continue;
        }
        if a.spec.for_ms < grace_ms || a.active.is_empty() {
            a.restored = true;
            continue;
        }
        let mut last: HashMap<Labels, (i64, f64)> = HashMap::new();
        let matchers = [
            crate::model::Matcher::equal("__name__", "ALERTS_FOR_STATE"),
            crate::model::Matcher::equal("alertname", a.spec.name()),
        ];
        let series = storage
            .querier(ts - outage_tolerance_ms, ts)
            .and_then(|q| q.select(&matchers));
        match series {
            Ok(list) => {
                for s in list {
                    let lastv = s.iter().filter(|x| !crate::model::is_stale_nan(x.v)).last();
                    if let Some(x) = lastv {
                        last.insert(s.labels.without_metric_name(), (x.t, x.v));
                    }
                }
            }
            Err(e) => {
                log::warn!(target: "aion::rules", "reading ALERTS_FOR_STATE failed alert={} err={e}", a.spec.name());
            }
        }
        a.restore_for_state(ts, grace_ms, &last);
        let _ = AlertState::Pending;
    }
}
