//! `/api/v1/query`, `/query_range`, `/query_exemplars`, `/format_query`, `/parse_query`.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::State;
use axum::http::Request;
use axum::response::Response;

use super::error::{ApiError, ErrorType};
use super::json::{push_float, push_labels, push_point, push_str, push_timestamp};
use super::params::{parse_duration, Params, MAX_TIME, MIN_TIME};
use super::respond::{self, read_request};
use super::state::ApiState;
use crate::db::Db;
use crate::promql::annotations::{Annotation, AnnotationKind};
use crate::promql::engine::{CancelToken, Engine, EngineOptions, QueryError, QueryOutput};
use crate::promql::value::Value;
use crate::remote::fanout::local_start_time;
use crate::server::metrics::LATENCY_BUCKETS;
use crate::storage::Queryable;

/// Most points a range query may return per series, as Prometheus enforces.
const MAX_POINTS_PER_SERIES: i64 = 11_000;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

macro_rules! tri {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(resp) => return resp,
        }
    };
}

fn api_err(e: ApiError) -> Response {
    respond::error(&e)
}

/// Engine options for one request: the flag defaults narrowed by `timeout` and
/// `lookback_delta` parameters.
fn engine_options(st: &ApiState, p: &Params) -> Result<EngineOptions, Response> {
    let mut o = st.opts.engine.clone();
    if let Some(t) = p.get_nonempty("timeout") {
        let ms = parse_duration(t).map_err(|e| api_err(ApiError::invalid_param("timeout", e)))?;
        if ms <= 0 {
            return Err(api_err(ApiError::invalid_param(
                "timeout",
                "timeout must be positive",
            )));
        }
        let d = std::time::Duration::from_millis(ms as u64);
        if d < o.timeout {
            o.timeout = d;
        }
    }
    if let Some(l) = p.get_nonempty("lookback_delta") {
        let ms =
            parse_duration(l).map_err(|e| api_err(ApiError::invalid_param("lookback_delta", e)))?;
        if ms > 0 {
            o.lookback_delta_ms = ms;
        }
    }
    Ok(o)
}

/// Cancels the query when the request future is dropped (the client went away).
struct CancelOnDrop(CancelToken);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

async fn run<F>(
    st: &Arc<ApiState>,
    db: Arc<Db>,
    opts: EngineOptions,
    f: F,
) -> Result<QueryOutput, ApiError>
where
    F: FnOnce(&Engine, &dyn Queryable, &CancelToken) -> Result<QueryOutput, QueryError>
        + Send
        + 'static,
{
    let permit = st
        .query_slots
        .clone()
        .acquire_owned()
        .await
        .map_err(|_| ApiError::internal("query queue closed"))?;
    let token = CancelToken::new();
    let guard = CancelOnDrop(token.clone());
    let metrics = st.metrics.clone();
    let remote = st.remote_read.get().filter(|r| !r.is_empty()).cloned();
    let handle = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let start = Instant::now();
        let engine = Engine::new(opts);
        let out = match remote {
            // Remote read endpoints are merged in; their failures become warnings.
            Some(rr) => {
                let merged = rr.queryable(&*db, local_start_time(&db));
                let out = f(&engine, &merged, &token);
                out.map(|mut o| {
                    o.annotations
                        .extend(merged.take_warnings().into_iter().map(|text| Annotation {
                            kind: AnnotationKind::Warning,
                            text,
                        }));
                    o
                })
            }
            None => f(&engine, &*db, &token),
        };
        metrics.observe(
            "prometheus_engine_query_duration_seconds",
            "Query timings.",
            &LATENCY_BUCKETS,
            &[("slice", "inner_eval")],
            start.elapsed().as_secs_f64(),
        );
        out
    });
    let res = handle
        .await
        .map_err(|e| ApiError::internal(format!("query task failed: {e}")))?;
    drop(guard);
    res.map_err(query_error)
}

/// Maps an engine error to Prometheus's error class and text.
pub fn query_error(e: QueryError) -> ApiError {
    let kind = match &e {
        QueryError::Parse(_) => ErrorType::BadData,
        QueryError::Timeout => ErrorType::Timeout,
        QueryError::Canceled => ErrorType::Canceled,
        QueryError::TooManySamples => ErrorType::Execution,
        QueryError::Storage(..) => ErrorType::Internal,
        QueryError::Eval(..) => ErrorType::Execution,
        #[allow(unreachable_patterns)]
        _ => ErrorType::Execution,
    };
    let message = match &e {
        QueryError::Parse(p) => format!("invalid parameter \"query\": {p}"),
        other => other.to_string(),
    };
    ApiError { kind, message }
}

/// Renders a query result in its `success` envelope, splitting annotations into
/// warnings and infos.
fn render(out: QueryOutput, limit: usize) -> Response {
    let mut warnings: Vec<String> = Vec::new();
    let mut infos: Vec<String> = Vec::new();
    for Annotation { kind, text } in out.annotations {
        match kind {
            AnnotationKind::Warning => warnings.push(text),
            AnnotationKind::Info => infos.push(text),
        }
    }
    let mut value = out.value;
    let truncated = match &mut value {
        Value::Vector(vec) if limit > 0 && vec.len() > limit => {
            vec.truncate(limit);
            true
        }
        Value::Matrix(m) if limit > 0 && m.len() > limit => {
            m.truncate(limit);
            true
        }
        _ => false,
    };
    if truncated {
        warnings.push("results truncated due to limit".into());
    }
    // Room for the whole body up front, rather more than needed: growing a large body
    // copies it, while pages reserved but never written cost nothing.
    let labels_len = |l: &crate::model::Labels| {
        l.iter()
            .map(|x| x.name.len() + x.value.len() + 8)
            .sum::<usize>()
            + 16
    };
    let capacity = match &value {
        Value::Vector(vec) => vec
            .iter()
            .map(|x| labels_len(&x.labels) + 64)
            .sum::<usize>()
            .saturating_add(256),
        Value::Matrix(m) => m
            .iter()
            .map(|x| labels_len(&x.labels) + 32 + 48 * x.samples.len())
            .sum::<usize>()
            .saturating_add(256),
        _ => 256,
    };
    let mut s = respond::begin_success(capacity);
    match value {
        Value::Scalar { t, v } => {
            s.push_str("{\"resultType\":\"scalar\",\"result\":");
            push_point(&mut s, t, v);
        }
        Value::String { t, v } => {
            s.push_str("{\"resultType\":\"string\",\"result\":[");
            push_timestamp(&mut s, t);
            s.push(',');
            push_str(&mut s, &v);
            s.push(']');
        }
        Value::Vector(vec) => {
            s.push_str("{\"resultType\":\"vector\",\"result\":[");
            for (i, x) in vec.iter().enumerate() {
                if i > 0 {
                    s.push(',');
                }
                s.push_str("{\"metric\":");
                push_labels(&mut s, &x.labels);
                s.push_str(",\"value\":");
                push_point(&mut s, x.t, x.v);
                s.push('}');
            }
            s.push(']');
        }
        Value::Matrix(m) => {
            s.push_str("{\"resultType\":\"matrix\",\"result\":[");
            // Series of a range query mostly share their timestamps: the text of the
            // j-th timestamp of the previous series is reused when it is the same.
            let mut times: Vec<(i64, String)> = Vec::new();
            for (i, x) in m.iter().enumerate() {
                if i > 0 {
                    s.push(',');
                }
                s.push_str("{\"metric\":");
                push_labels(&mut s, &x.labels);
                s.push_str(",\"values\":[");
                for (j, p) in x.samples.iter().enumerate() {
                    if j > 0 {
                        s.push(',');
                    }
                    s.push('[');
                    match times.get_mut(j) {
                        Some((t, text)) if *t == p.t => s.push_str(text),
                        slot => {
                            let mut text = String::new();
                            push_timestamp(&mut text, p.t);
                            s.push_str(&text);
                            match slot {
                                Some(e) => *e = (p.t, text),
                                None => times.push((p.t, text)),
                            }
                        }
                    }
                    s.push_str(",\"");
                    push_float(&mut s, p.v);
                    s.push_str("\"]");
                }
                s.push_str("]}");
            }
            s.push(']');
        }
    }
    s.push('}');
    respond::finish_success(s, &warnings, &infos)
}

/// `GET|POST /api/v1/query`.
pub async fn instant(State(st): State<Arc<ApiState>>, req: Request<Body>) -> Response {
    let r = tri!(read_request(&st, req, true).await);
    let db = tri!(respond::db(&st));
    let p = &r.params;
    let t = tri!(p.time_or("time", now_ms()).map_err(api_err));
    let opts = tri!(engine_options(&st, p));
    let limit = tri!(p.limit().map_err(api_err));
    let query = p.get("query").unwrap_or("").to_string();
    match run(&st, db, opts, move |e, db, c| {
        e.instant_query(db, &query, t, Some(c))
    })
    .await
    {
        Ok(out) => render(out, limit),
        Err(e) => api_err(e),
    }
}

/// Validates `start`, `end` and `step` of a range query.
fn range_params(p: &Params) -> Result<(i64, i64, i64), ApiError> {
    let start = super::params::parse_time(p.get("start").unwrap_or(""))
        .map_err(|e| ApiError::invalid_param("start", e))?;
    let end = super::params::parse_time(p.get("end").unwrap_or(""))
        .map_err(|e| ApiError::invalid_param("end", e))?;
    if end < start {
        return Err(ApiError::invalid_param(
            "end",
            "end timestamp must not be before start time",
        ));
    }
    let step = parse_duration(p.get("step").unwrap_or(""))
        .map_err(|e| ApiError::invalid_param("step", e))?;
    if step <= 0 {
        return Err(ApiError::invalid_param(
            "step",
            "zero or negative query resolution step widths are not accepted. Try a positive integer",
        ));
    }
    if (end - start) / step > MAX_POINTS_PER_SERIES {
        return Err(ApiError::bad_data(
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
        ));
    }
    Ok((start, end, step))
}

/// `GET|POST /api/v1/query_range`.
pub async fn range(State(st): State<Arc<ApiState>>, req: Request<Body>) -> Response {
    let r = tri!(read_request(&st, req, true).await);
    let db = tri!(respond::db(&st));
    let p = &r.params;
    let (start, end, step) = tri!(range_params(p).map_err(api_err));
    let opts = tri!(engine_options(&st, p));
    let limit = tri!(p.limit().map_err(api_err));
    let query = p.get("query").unwrap_or("").to_string();
    match run(&st, db, opts, move |e, db, c| {
        e.range_query(db, &query, start, end, step, Some(c))
    })
    .await
    {
        Ok(out) => render(out, limit),
        Err(e) => api_err(e),
    }
}

/// `GET|POST /api/v1/query_exemplars`: exemplars are not stored, so after validating the
/// request the answer is an empty list (which Grafana's probe expects).
pub async fn exemplars(State(st): State<Arc<ApiState>>, req: Request<Body>) -> Response {
    let r = tri!(read_request(&st, req, true).await);
    let p = &r.params;
    let start = tri!(p.time_or("start", MIN_TIME).map_err(api_err));
    let end = tri!(p.time_or("end", MAX_TIME).map_err(api_err));
    if end < start {
        return api_err(ApiError::invalid_param(
            "end",
            "end timestamp must not be before start time",
        ));
    }
    if let Err(e) = crate::promql::parse(p.get("query").unwrap_or("")) {
        return api_err(ApiError::invalid_param("query", e));
    }
    respond::success("[]", &[], &[])
}

/// `GET|POST /api/v1/format_query`: the expression pretty-printed.
pub async fn format_query(State(st): State<Arc<ApiState>>, req: Request<Body>) -> Response {
    let r = tri!(read_request(&st, req, true).await);
    match crate::promql::parse(r.params.get("query").unwrap_or("")) {
        Ok(expr) => {
            let mut s = String::new();
            push_str(&mut s, &expr.to_string());
            respond::success(&s, &[], &[])
        }
        Err(e) => api_err(ApiError::invalid_param("query", e)),
    }
}

/// `GET|POST /api/v1/parse_query`: the expression's syntax tree as JSON.
pub async fn parse_query(State(st): State<Arc<ApiState>>, req: Request<Body>) -> Response {
    let r = tri!(read_request(&st, req, true).await);
    match crate::promql::parse(r.params.get("query").unwrap_or("")) {
        Ok(expr) => respond::success_value(&super::status::ast_json(&expr)),
        Err(e) => api_err(ApiError::invalid_param("query", e)),
    }
}
