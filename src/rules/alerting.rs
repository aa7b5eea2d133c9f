//! Alerting rule state: inactive → pending → firing, `keep_firing_for`, resolved retention,
//! the `ALERTS`/`ALERTS_FOR_STATE` samples and when an alert needs (re)sending.

use std::collections::{BTreeMap, HashMap};

use crate::model::{Labels, LabelsBuilder};
use crate::promql::value::InstantSample;
use crate::template::{QuerySample, Template, TemplateData};

use super::file::RuleSpec;
use super::{EvalContext, RuleError};

/// How long a resolved alert is kept (and re-sent) after it resolved.
pub const RESOLVED_RETENTION_MS: i64 = 15 * 60 * 1000;

/// The state of an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertState {
    /// Resolved (kept for a while so Alertmanager hears about it).
    Inactive,
    /// Active but not yet for `for`.
    Pending,
    /// Firing.
    Firing,
}

impl AlertState {
    /// Prometheus's name.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Inactive => "inactive",
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
        }
    }
}

/// One alert of a rule.
#[derive(Debug, Clone, PartialEq)]
pub struct ActiveAlert {
    /// State.
    pub state: AlertState,
    /// Labels (series labels, rule labels, `alertname`).
    pub labels: Labels,
    /// Expanded annotations.
    pub annotations: Labels,
    /// Latest value.
    pub value: f64,
    /// When it became active (ms).
    pub active_at: i64,
    /// When it started firing (ms, 0 = never).
    pub fired_at: i64,
    /// When it resolved (ms, 0 = not resolved).
    pub resolved_at: i64,
    /// When last sent (ms).
    pub last_sent_at: Option<i64>,
    /// `endsAt` of the last send while firing.
    pub valid_until: i64,
    /// Since when the series has been missing while kept firing (ms, 0 = not).
    pub keep_firing_since: i64,
}

impl ActiveAlert {
    /// Whether the alert must be sent at `ts` with `resend_delay_ms`.
    pub fn needs_sending(&self, ts: i64, resend_delay_ms: i64) -> bool {
        if self.state == AlertState::Pending {
            return false;
        }
        match self.last_sent_at {
            None => true,
            Some(last) => {
                (self.resolved_at != 0 && self.resolved_at > last) || last + resend_delay_ms < ts
            }
        }
    }
}

/// An alerting rule with its alerts.
#[derive(Debug, Clone)]
pub struct AlertingRule {
    /// The definition.
    pub spec: RuleSpec,
    /// Alerts by label-set hash.
    pub active: HashMap<u64, ActiveAlert>,
    /// Whether `for` state has been restored (until then no `ALERTS` samples are written).
    pub restored: bool,
}

fn to_map(l: &Labels) -> BTreeMap<String, String> {
    l.iter()
        .map(|l| (l.name.to_string(), l.value.to_string()))
        .collect()
}

impl AlertingRule {
    /// A rule with no alerts.
    pub fn new(spec: RuleSpec) -> Self {
        AlertingRule {
            spec,
            active: HashMap::new(),
            restored: true,
        }
    }

    fn name(&self) -> &str {
        self.spec.name()
    }

    /// Expands one template; a failure becomes the text of the value, and is logged.
    fn expand(&self, what: &str, text: &str, data: &TemplateData<'_>) -> String {
        let name = format!("__alert_{}", self.name());
        match Template::parse(&name, text).and_then(|t| t.execute(data)) {
            Ok(s) => s,
            Err(e) => {
                log::warn!(target: "aion::rules", "expanding alert template failed alert={} {what} err={e}", self.name());
                format!("<error expanding template: {e}>")
            }
        }
    }

    /// Evaluates the rule at `ts` over the query result `res`; returns the samples to
    /// write (`ALERTS`, `ALERTS_FOR_STATE`).
    pub fn eval(
        &mut self,
        ts: i64,
        res: Vec<InstantSample>,
        ctx: &EvalContext<'_>,
        limit: usize,
    ) -> Result<Vec<(Labels, f64)>, RuleError> {
        let mut seen: HashMap<u64, ActiveAlert> = HashMap::new();
        let query_cb = |q: &str| -> Result<Vec<QuerySample>, String> {
            let expr = crate::promql::parse(q).map_err(|e| e.to_string())?;
            let v = (ctx.query)(&expr, q, ts)?;
            Ok(v.into_iter()
                .map(|s| QuerySample {
                    labels: to_map(&s.labels),
                    value: s.v,
                })
                .collect())
        };
        for s in res {
            let series_labels = s.labels.without_metric_name();
            let data = TemplateData {
                labels: to_map(&series_labels),
                value: s.v,
                external_labels: to_map(ctx.external_labels),
                external_url: ctx.external_url.to_string(),
                query: Some(&query_cb),
            };
            let mut lb: LabelsBuilder = series_labels.builder();
            for (k, v) in &self.spec.labels {
                let ev = self.expand("label", v, &data);
                lb.set(k, &ev);
            }
            lb.set("alertname", self.name());
            let labels = lb.labels();
            let mut ab = LabelsBuilder::new();
            for (k, v) in &self.spec.annotations {
                let ev = self.expand("annotation", v, &data);
                ab.set(k, &ev);
            }
            let annotations = ab.labels();
            let h = labels.stable_hash();
            if seen.contains_key(&h) {
                return Err(RuleError::Eval(
                    "vector contains metrics with the same labelset after applying alert labels"
                        .to_string(),
                ));
            }
            seen.insert(
                h,
                ActiveAlert {
                    state: AlertState::Pending,
                    labels,
                    annotations,
                    value: s.v,
                    active_at: ts,
                    fired_at: 0,
                    resolved_at: 0,
                    last_sent_at: None,
                    valid_until: 0,
                    keep_firing_since: 0,
                },
            );
        }
        for (h, new) in &seen {
            match self.active.get_mut(h) {
                Some(a) if a.state != AlertState::Inactive => {
                    a.value = new.value;
                    a.annotations = new.annotations.clone();
                }
                _ => {
                    self.active.insert(*h, new.clone());
                }
            }
        }
        let mut out = Vec::new();
        let mut num_active = 0usize;
        let hold = self.spec.for_ms;
        let kff = self.spec.keep_firing_for_ms;
        let mut remove = Vec::new();
        let mut hashes: Vec<u64> = self.active.keys().copied().collect();
        hashes.sort_unstable();
        for h in hashes {
            let Some(a) = self.active.get_mut(&h) else {
                continue;
            };
            if !seen.contains_key(&h) {
                let mut keep_firing = false;
                if a.state == AlertState::Firing && kff > 0 {
                    if a.keep_firing_since == 0 {
                        a.keep_firing_since = ts;
                    }
                    if ts - a.keep_firing_since < kff {
                        keep_firing = true;
                    }
                }
                if a.state == AlertState::Pending
                    || (a.resolved_at != 0 && ts - a.resolved_at > RESOLVED_RETENTION_MS)
                {
                    remove.push(h);
                }
                if a.state != AlertState::Inactive && !keep_firing {
                    a.state = AlertState::Inactive;
                    a.resolved_at = ts;
                }
                if !keep_firing {
                    continue;
                }
            } else {
                a.keep_firing_since = 0;
            }
            num_active += 1;
            if a.state == AlertState::Pending && ts - a.active_at >= hold {
                a.state = AlertState::Firing;
                a.fired_at = ts;
            }
            if self.restored {
                let mut b = a.labels.builder();
                b.set("__name__", "ALERTS");
                b.set("alertstate", a.state.as_str());
                out.push((b.labels(), 1.0));
                let mut f = a.labels.builder();
                f.set("__name__", "ALERTS_FOR_STATE");
                out.push((f.labels(), (a.active_at / 1000) as f64));
            }
        }
        for h in remove {
            self.active.remove(&h);
        }
        if limit > 0 && num_active > limit {
            self.active.clear();
            return Err(RuleError::Eval(format!(
                "exceeded limit of {limit} with {num_active} alerts"
            )));
        }
        Ok(out)
    }

    /// Alerts due for sending at `ts`; marks them sent.
    pub fn alerts_to_send(
        &mut self,
        ts: i64,
        resend_delay_ms: i64,
        interval_ms: i64,
    ) -> Vec<ActiveAlert> {
        let mut out = Vec::new();
        let delta = resend_delay_ms.max(interval_ms);
        for a in self.active.values_mut() {
            if a.needs_sending(ts, resend_delay_ms) {
                a.last_sent_at = Some(ts);
                a.valid_until = ts + 4 * delta;
                out.push(a.clone());
            }
        }
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        out
    }

    /// Alerts in a stable order (by labels).
    pub fn alerts(&self) -> Vec<&ActiveAlert> {
        let mut v: Vec<&ActiveAlert> = self.active.values().collect();
        v.sort_by(|a, b| a.labels.cmp(&b.labels));
        v
    }

    /// Restores pending alerts' `active_at` from `ALERTS_FOR_STATE` samples: `series` maps an
    /// alert's labels to the last (timestamp ms, activeAt seconds) seen before the restart.
    pub fn restore_for_state(
        &mut self,
        ts: i64,
        grace_ms: i64,
        last_state: &HashMap<Labels, (i64, f64)>,
    ) {
        let hold = self.spec.for_ms;
        for a in self.active.values_mut() {
            let Some(&(down_at, active_s)) = last_state.get(&a.labels) else {
                continue;
            };
            let mut restored_active = (active_s * 1000.0) as i64;
            let spent = down_at - restored_active;
            let remaining = hold - spent;
            if remaining <= 0 {
                // Was firing when stopped: fires again at the next evaluation.
            } else if remaining < grace_ms {
                restored_active = ts + grace_ms - hold;
            } else {
                restored_active += ts - down_at;
            }
            a.active_at = restored_active;
        }
        self.restored = true;
    }
}
