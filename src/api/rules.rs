//! `/api/v1/rules`, `/api/v1/alerts` and `/api/v1/alertmanagers`.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::Request;
use axum::response::Response;
use serde_json::{json, Value as Json};

use super::error::ApiError;
use super::respond::{self, read_request};
use super::state::ApiState;
use crate::model::time::format_rfc3339_ms;
use crate::model::Labels;
use crate::rules::alerting::{ActiveAlert, AlertState};
use crate::rules::{Group, RuleKind};
use crate::template::go_format_e;

macro_rules! tri {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(resp) => return resp,
        }
    };
}

/// Go's zero `time.Time`, which Prometheus prints for "never".
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

fn time_or_zero(ms: i64) -> String {
    if ms == 0 {
        ZERO_TIME.to_string()
    } else {
        format_rfc3339_ms(ms)
    }
}

fn labels_json(l: &Labels) -> Json {
    Json::Object(
        l.iter()
            .map(|l| (l.name.to_string(), Json::String(l.value.to_string())))
            .collect(),
    )
}

fn pairs_json(p: &[(String, String)]) -> Json {
    Json::Object(
        p.iter()
            .map(|(k, v)| (k.clone(), Json::String(v.clone())))
            .collect(),
    )
}

fn alert_json(a: &ActiveAlert) -> Json {
    let mut o = json!({
        "labels": labels_json(&a.labels),
        "annotations": labels_json(&a.annotations),
        "state": a.state.as_str(),
        "activeAt": format_rfc3339_ms(a.active_at),
        "value": go_format_e(a.value),
    });
    if a.keep_firing_since != 0 {
        if let Some(m) = o.as_object_mut() {
            m.insert(
                "keepFiringSince".into(),
                format_rfc3339_ms(a.keep_firing_since).into(),
            );
        }
    }
    o
}

fn groups_of(st: &ApiState) -> Vec<Group> {
    st.rules.get().map(|m| m.groups()).unwrap_or_default()
}

/// `GET /api/v1/rules` with `type`, `rule_name[]`, `rule_group[]`, `file[]` and
/// `exclude_alerts` filters.
pub async fn rules(State(st): State<Arc<ApiState>>, req: Request<Body>) -> Response {
    let r = tri!(read_request(&st, req, false).await);
    let p = &r.params;
    let typ = p.get_nonempty("type").map(str::to_string);
    if let Some(t) = &typ {
        if t != "alert" && t != "record" {
            return respond::error(&ApiError::invalid_param(
                "type",
                format!("not supported value {t:?}"),
            ));
        }
    }
    let names: Vec<String> = p.all("rule_name[]").into_iter().map(String::from).collect();
    let gnames: Vec<String> = p
        .all("rule_group[]")
        .into_iter()
        .map(String::from)
        .collect();
    let files: Vec<String> = p.all("file[]").into_iter().map(String::from).collect();
    let exclude_alerts = p.get("exclude_alerts") == Some("true");
    let filtered = typ.is_some() || !names.is_empty() || !gnames.is_empty() || !files.is_empty();
    let mut out = Vec::new();
    for g in groups_of(&st) {
        if !gnames.is_empty() && !gnames.contains(&g.spec.name) {
            continue;
        }
        if !files.is_empty() && !files.contains(&g.spec.file) {
            continue;
        }
        let mut rules = Vec::new();
        for rs in &g.rules {
            if !names.is_empty() && !names.iter().any(|n| n == rs.spec.name()) {
                continue;
            }
            let last = time_or_zero(rs.last_eval_ms);
            match (&rs.spec.kind, &rs.alerting) {
                (RuleKind::Alert(name), Some(a)) => {
                    if typ.as_deref() == Some("record") {
                        continue;
                    }
                    let alerts = a.alerts();
                    let state = if alerts.iter().any(|x| x.state == AlertState::Firing) {
                        "firing"
                    } else if alerts.iter().any(|x| x.state == AlertState::Pending) {
                        "pending"
                    } else {
                        "inactive"
                    };
                    let alerts_json: Vec<Json> = if exclude_alerts {
                        Vec::new()
                    } else {
                        alerts
                            .into_iter()
                            .filter(|x| x.state != AlertState::Inactive)
                            .map(alert_json)
                            .collect()
                    };
                    rules.push(json!({
                        "state": state,
                        "name": name,
                        "query": rs.spec.expr_text,
                        "duration": rs.spec.for_ms as f64 / 1000.0,
                        "keepFiringFor": rs.spec.keep_firing_for_ms as f64 / 1000.0,
                        "labels": pairs_json(&rs.spec.labels),
                        "annotations": pairs_json(&rs.spec.annotations),
                        "alerts": alerts_json,
                        "health": rs.health.as_str(),
                        "lastError": rs.last_error,
                        "evaluationTime": rs.eval_seconds,
                        "lastEvaluation": last,
                        "type": "alerting",
                    }));
                }
                (RuleKind::Record(name), _) => {
                    if typ.as_deref() == Some("alert") {
                        continue;
                    }
                    rules.push(json!({
                        "name": name,
                        "query": rs.spec.expr_text,
                        "labels": pairs_json(&rs.spec.labels),
                        "health": rs.health.as_str(),
                        "lastError": rs.last_error,
                        "evaluationTime": rs.eval_seconds,
                        "lastEvaluation": last,
                        "type": "recording",
                    }));
                }
                _ => {}
            }
        }
        if filtered && rules.is_empty() {
            continue;
        }
        out.push(json!({
            "name": g.spec.name,
            "file": g.spec.file,
            "rules": rules,
            "interval": g.interval_ms as f64 / 1000.0,
            "limit": g.spec.limit,
            "evaluationTime": g.eval_seconds,
            "lastEvaluation": time_or_zero(g.last_eval_ms),
        }));
    }
    respond::success_value(&json!({ "groups": out }))
}

/// `GET /api/v1/alerts`: pending and firing alerts.
pub async fn alerts(State(st): State<Arc<ApiState>>, req: Request<Body>) -> Response {
    tri!(read_request(&st, req, false).await);
    let list: Vec<Json> = st
        .rules
        .get()
        .map(|m| m.active_alerts())
        .unwrap_or_default()
        .iter()
        .map(alert_json)
        .collect();
    respond::success_value(&json!({ "alerts": list }))
}

/// `GET /api/v1/alertmanagers`.
pub async fn alertmanagers(State(st): State<Arc<ApiState>>, req: Request<Body>) -> Response {
    tri!(read_request(&st, req, false).await);
    let active: Vec<Json> = st
        .notifier
        .get()
        .map(|n| n.alertmanagers())
        .unwrap_or_default()
        .into_iter()
        .map(|a| json!({ "url": a.url }))
        .collect();
    respond::success_value(&json!({"activeAlertmanagers": active, "droppedAlertmanagers": []}))
}
