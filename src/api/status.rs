//! Status endpoints, and the targets endpoints whose subsystem answers with its
//! (currently empty) Prometheus shapes.

use std::sync::atomic::Ordering;
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
use crate::promql::ast::{AtModifier, Expr, Grouping, VectorMatchCardinality};

macro_rules! tri {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(resp) => return resp,
        }
    };
}

/// `GET /api/v1/status/config`.
pub async fn config(State(st): State<Arc<ApiState>>, req: Request<Body>) -> Response {
    tri!(read_request(&st, req, false).await);
    let yaml = crate::web::redact::redact_config_yaml(&st.config_yaml.read());
    respond::success_value(&json!({ "yaml": yaml }))
}

/// `GET /api/v1/status/flags`.
pub async fn flags(State(st): State<Arc<ApiState>>, req: Request<Body>) -> Response {
    tri!(read_request(&st, req, false).await);
    let map: serde_json::Map<String, Json> = st
        .opts
        .flags
        .iter()
        .map(|(k, v)| (k.clone(), Json::String(v.clone())))
        .collect();
    respond::success_value(&Json::Object(map))
}

/// `GET /api/v1/status/runtimeinfo`.
pub async fn runtimeinfo(State(st): State<Arc<ApiState>>, req: Request<Body>) -> Response {
    tri!(read_request(&st, req, false).await);
    let cwd = std::env::current_dir()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let threads = std::fs::read_dir("/proc/self/task")
        .map(|d| d.count())
        .unwrap_or(0);
    let corruption = st
        .db
        .get()
        .map(|db| db.wal_corrupted_records())
        .unwrap_or(0);
    respond::success_value(&json!({
        "startTime": format_rfc3339_ms(st.start_ms),
        "CWD": cwd,
        "reloadConfigSuccess": st.config_ok.load(Ordering::Relaxed),
        "lastConfigTime": format_rfc3339_ms(st.config_loaded_ms.load(Ordering::Relaxed)),
        "corruptionCount": corruption,
        "goroutineCount": threads,
        "GOMAXPROCS": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "GOMEMLIMIT": i64::MAX,
        "GOGC": "",
        "GODEBUG": "",
        "storageRetention": st.opts.storage_retention,
    }))
}

/// `GET /api/v1/status/buildinfo` (deliberately without a `features` key, which would make
/// Grafana treat the server as Mimir).
pub async fn buildinfo(State(st): State<Arc<ApiState>>, req: Request<Body>) -> Response {
    tri!(read_request(&st, req, false).await);
    respond::success_value(&json!({
        "version": env!("CARGO_PKG_VERSION"),
        "revision": option_env!("AION_GIT_REVISION").unwrap_or("unknown"),
        "branch": "main",
        "buildUser": "",
        "buildDate": "",
        "goVersion": "",
    }))
}

/// `GET /api/v1/status/tsdb`: head statistics and cardinality top lists.
pub async fn tsdb(State(st): State<Arc<ApiState>>, req: Request<Body>) -> Response {
    let r = tri!(read_request(&st, req, false).await);
    let db = tri!(respond::db(&st));
    let limit = match r.params.get_nonempty("limit") {
        None => 10,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if n > 0 => n,
            _ => return respond::error(&ApiError::bad_data("limit must be a positive number")),
        },
    };
    let res = tokio::task::spawn_blocking(move || db.cardinality(limit)).await;
    match res {
        Ok(c) => {
            let top = |v: &[(String, u64)]| -> Json {
                Json::Array(
                    v.iter()
                        .map(|(n, c)| json!({"name": n, "value": c}))
                        .collect(),
                )
            };
            respond::success_value(&json!({
                "headStats": {
                    "numSeries": c.num_series,
                    "numLabelPairs": c.num_label_pairs,
                    "chunkCount": c.chunk_count,
                    "minTime": c.min_time,
                    "maxTime": c.max_time,
                },
                "seriesCountByMetricName": top(&c.series_count_by_metric_name),
                "labelValueCountByLabelName": top(&c.label_value_count_by_label_name),
                "memoryInBytesByLabelName": top(&c.memory_in_bytes_by_label_name),
                "seriesCountByLabelValuePair": top(&c.series_count_by_label_value_pair),
            }))
        }
        Err(e) => respond::error(&ApiError::internal(format!("task failed: {e}"))),
    }
}

/// `GET /api/v1/status/walreplay`.
pub async fn walreplay(State(st): State<Arc<ApiState>>, req: Request<Body>) -> Response {
    tri!(read_request(&st, req, false).await);
    let done = st.db.get().is_some();
    respond::success_value(
        &json!({"min": 0, "max": 0, "current": if done { 0 } else { -1 }, "state": if done { "done" } else { "in progress" }}),
    )
}

fn at_json(at: &Option<AtModifier>) -> (Json, Json) {
    match at {
        None => (Json::Null, Json::Null),
        Some(AtModifier::Timestamp(ms)) => (json!(ms), Json::Null),
        Some(AtModifier::Start) => (Json::Null, json!("start")),
        Some(AtModifier::End) => (Json::Null, json!("end")),
    }
}

/// The syntax tree as JSON, in the shape Prometheus's `/api/v1/parse_query` returns.
pub fn ast_json(e: &Expr) -> Json {
    match e {
        Expr::Number { val, .. } => {
            json!({"type": "numberLiteral", "val": super::json::format_float(*val)})
        }
        Expr::String { val, .. } => json!({"type": "stringLiteral", "val": val}),
        Expr::Vector(vs) => {
            let (ts, soe) = at_json(&vs.at);
            json!({
                "type": "vectorSelector",
                "name": vs.name.clone().unwrap_or_default(),
                "matchers": vs.matchers.iter().map(|m| json!({"type": m.op.to_string(), "name": m.name, "value": m.value})).collect::<Vec<_>>(),
                "offset": vs.offset_ms,
                "timestamp": ts,
                "startOrEnd": soe,
            })
        }
        Expr::Matrix(ms) => json!({
            "type": "matrixSelector",
            "range": ms.range_ms,
            "vectorSelector": ast_json(&Expr::Vector(ms.vs.clone())),
        }),
        Expr::Subquery(sq) => {
            let (ts, soe) = at_json(&sq.at);
            json!({
                "type": "subquery",
                "expr": ast_json(&sq.expr),
                "range": sq.range_ms,
                "offset": sq.offset_ms,
                "step": sq.step_ms.unwrap_or(0),
                "timestamp": ts,
                "startOrEnd": soe,
            })
        }
        Expr::Paren { expr, .. } => json!({"type": "parenExpr", "expr": ast_json(expr)}),
        Expr::Unary { op, expr, .. } => {
            json!({"type": "unaryExpr", "op": op.as_str(), "expr": ast_json(expr)})
        }
        Expr::Binary(b) => {
            let matching = b.matching.as_ref().map(|m| {
                let card = match m.card {
                    VectorMatchCardinality::OneToOne => "one-to-one",
                    VectorMatchCardinality::ManyToOne => "many-to-one",
                    VectorMatchCardinality::OneToMany => "one-to-many",
                    VectorMatchCardinality::ManyToMany => "many-to-many",
                };
                json!({"card": card, "labels": m.labels, "on": m.on, "include": m.include})
            });
            json!({
                "type": "binaryExpr",
                "op": b.op.as_str(),
                "lhs": ast_json(&b.lhs),
                "rhs": ast_json(&b.rhs),
                "matching": matching,
                "bool": b.return_bool,
            })
        }
        Expr::Aggregate(a) => {
            let (grouping, without) = match &a.grouping {
                Grouping::None => (Vec::new(), false),
                Grouping::By(l) => (l.clone(), false),
                Grouping::Without(l) => (l.clone(), true),
            };
            json!({
                "type": "aggregation",
                "op": a.op.name(),
                "expr": ast_json(&a.expr),
                "param": a.param.as_ref().map(|p| ast_json(p)),
                "grouping": grouping,
                "without": without,
            })
        }
        Expr::Call(c) => json!({
            "type": "call",
            "func": {
                "name": c.func.name(),
                "argTypes": c.func.arg_types().iter().map(|t| t.short_name()).collect::<Vec<_>>(),
                "variadic": if c.func.is_variadic() { 1 } else { 0 },
                "returnType": c.func.return_type().short_name(),
            },
            "args": c.args.iter().map(ast_json).collect::<Vec<_>>(),
        }),
    }
}
