//! `/api/v1/targets`, `/api/v1/targets/metadata` and `/api/v1/metadata`, answered from
//! the scrape manager's snapshot.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::Request;
use axum::response::Response;
use serde_json::{json, Map, Value as Json};

use super::error::ApiError;
use super::metadata::parse_selector;
use super::respond::{self, read_request};
use super::state::ApiState;
use crate::model::time::format_rfc3339_ms;
use crate::model::{Labels, Matcher};
use crate::scrape::{ActiveTarget, TargetsSnapshot};

macro_rules! tri {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(resp) => return resp,
        }
    };
}

fn labels_json(l: &Labels) -> Json {
    let mut m = Map::new();
    for lab in l.iter() {
        m.insert(lab.name.to_string(), Json::String(lab.value.to_string()));
    }
    Json::Object(m)
}

fn snapshot(st: &ApiState) -> TargetsSnapshot {
    st.scrape.get().map(|m| m.targets()).unwrap_or_default()
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// The scrape URL with a loopback host replaced by this machine's name, as
/// Prometheus's `globalUrl`.
fn global_url(url: &str, host: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (rest.get(..i).unwrap_or(""), rest.get(i..).unwrap_or("")),
        None => (rest, ""),
    };
    let (h, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => (h, Some(p)),
        _ => (authority, None),
    };
    let loopback = matches!(h, "localhost" | "127.0.0.1" | "[::1]" | "::1");
    if !loopback {
        return url.to_string();
    }
    match port {
        Some(p) => format!("{scheme}://{host}:{p}{path}"),
        None => format!("{scheme}://{host}{path}"),
    }
}

fn active_json(a: &ActiveTarget, host: &str) -> Json {
    let s = &a.status;
    let last = if s.last_scrape_ms == 0 {
        "0001-01-01T00:00:00Z".to_string()
    } else {
        format_rfc3339_ms(s.last_scrape_ms)
    };
    json!({
        "discoveredLabels": labels_json(&a.target.discovered),
        "labels": labels_json(&a.target.labels),
        "scrapePool": a.pool,
        "scrapeUrl": a.target.url,
        "globalUrl": global_url(&a.target.url, host),
        "lastError": s.last_error,
        "lastScrape": last,
        "lastScrapeDuration": s.last_duration_s,
        "health": s.health.as_str(),
        "scrapeInterval": a.target.interval.to_string(),
        "scrapeTimeout": a.target.timeout.to_string(),
    })
}

/// `GET /api/v1/targets`: `state=active|dropped|any`, `scrapePool=NAME`.
pub async fn targets(State(st): State<Arc<ApiState>>, req: Request<Body>) -> Response {
    let r = tri!(read_request(&st, req, false).await);
    let state = r.params.get("state").unwrap_or("any").to_ascii_lowercase();
    let pool = r.params.get_nonempty("scrapePool").map(str::to_string);
    let snap = snapshot(&st);
    let host = hostname();
    let want_active = state != "dropped";
    let want_dropped = state != "active";
    let in_pool = |p: &str| pool.as_deref().is_none_or(|w| w == p);
    let mut data = Map::new();
    if want_active {
        let v: Vec<Json> = snap
            .active
            .iter()
            .filter(|a| in_pool(&a.pool))
            .map(|a| active_json(a, &host))
            .collect();
        data.insert("activeTargets".into(), Json::Array(v));
    } else {
        data.insert("activeTargets".into(), Json::Array(Vec::new()));
    }
    if want_dropped {
        let v: Vec<Json> = snap
            .dropped
            .iter()
            .filter(|(p, _)| in_pool(p))
            .map(|(p, d)| json!({"discoveredLabels": labels_json(&d.discovered), "scrapePool": p}))
            .collect();
        data.insert("droppedTargets".into(), Json::Array(v));
    } else {
        data.insert("droppedTargets".into(), Json::Array(Vec::new()));
    }
    let counts: Map<String, Json> = snap
        .dropped_counts
        .iter()
        .filter(|(p, _)| in_pool(p))
        .map(|(p, c)| (p.clone(), json!(c)))
        .collect();
    data.insert("droppedTargetCounts".into(), Json::Object(counts));
    respond::success_value(&Json::Object(data))
}

fn matches_all(ms: &[Matcher], l: &Labels) -> bool {
    ms.iter().all(|m| m.matches(l.get_or_empty(&m.name)))
}

/// `GET /api/v1/targets/metadata`: `match_target`, `metric`, `limit`.
pub async fn targets_metadata(State(st): State<Arc<ApiState>>, req: Request<Body>) -> Response {
    let r = tri!(read_request(&st, req, false).await);
    let limit = tri!(r.params.limit().map_err(|e| respond::error(&e)));
    let matchers = match r.params.get_nonempty("match_target") {
        Some(s) => tri!(
            parse_selector(s).map_err(|_| respond::error(&ApiError::bad_data(format!(
                "invalid parameter \"match_target\": {s:?} is not a valid label selector"
            ))))
        ),
        None => Vec::new(),
    };
    let metric = r.params.get_nonempty("metric").map(str::to_string);
    let snap = snapshot(&st);
    let mut out = Vec::new();
    'targets: for a in &snap.active {
        if !matches_all(&matchers, &a.target.labels) {
            continue;
        }
        for (name, m) in a.status.metadata.iter() {
            if metric.as_deref().is_some_and(|w| w != name) {
                continue;
            }
            let mut o = Map::new();
            o.insert("target".into(), labels_json(&a.target.labels));
            if metric.is_none() {
                o.insert("metric".into(), Json::String(name.clone()));
            }
            o.insert("type".into(), Json::String(m.kind.as_str().into()));
            o.insert("help".into(), Json::String(m.help.clone()));
            o.insert("unit".into(), Json::String(m.unit.clone()));
            out.push(Json::Object(o));
            if limit > 0 && out.len() >= limit {
                break 'targets;
            }
        }
    }
    respond::success_value(&Json::Array(out))
}

/// `GET /api/v1/metadata`: `metric`, `limit`, `limit_per_metric`.
pub async fn metric_metadata(State(st): State<Arc<ApiState>>, req: Request<Body>) -> Response {
    let r = tri!(read_request(&st, req, false).await);
    let limit = tri!(r.params.limit().map_err(|e| respond::error(&e)));
    let per_metric = match r.params.get_nonempty("limit_per_metric") {
        Some(s) => tri!(s
            .parse::<i64>()
            .map_err(|_| respond::error(&ApiError::bad_data("limit_per_metric must be a number")))),
        None => 0,
    };
    let metric = r.params.get_nonempty("metric").map(str::to_string);
    let snap = snapshot(&st);
    let mut all: BTreeMap<String, Vec<(String, String, String)>> = BTreeMap::new();
    for a in &snap.active {
        for (name, m) in a.status.metadata.iter() {
            if metric.as_deref().is_some_and(|w| w != name) {
                continue;
            }
            let e = (m.kind.as_str().to_string(), m.help.clone(), m.unit.clone());
            let v = all.entry(name.clone()).or_default();
            if !v.contains(&e) {
                v.push(e);
            }
        }
    }
    for (name, m) in st.remote_metadata.snapshot() {
        if metric.as_deref().is_some_and(|w| w != name) {
            continue;
        }
        let e = (m.kind.to_string(), m.help, m.unit);
        let v = all.entry(name).or_default();
        if !v.contains(&e) {
            v.push(e);
        }
    }
    let mut data = Map::new();
    for (name, v) in all {
        if limit > 0 && data.len() >= limit {
            break;
        }
        let items: Vec<Json> = v
            .into_iter()
            .take(if per_metric > 0 {
                per_metric as usize
            } else {
                usize::MAX
            })
            .map(|(t, h, u)| json!({"type": t, "help": h, "unit": u}))
            .collect();
        data.insert(name, Json::Array(items));
    }
    respond::success_value(&Json::Object(data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn global_urls() {
        assert_eq!(
            global_url("http://localhost:9100/metrics", "box"),
            "http://box:9100/metrics"
        );
        assert_eq!(
            global_url("http://127.0.0.1:9090/metrics?a=b", "box"),
            "http://box:9090/metrics?a=b"
        );
        assert_eq!(
            global_url("http://db:9100/metrics", "box"),
            "http://db:9100/metrics"
        );
    }
}
