//! Health, readiness, lifecycle, `/metrics`, and the instrumentation middleware.

use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use axum::body::{to_bytes, Body};
use axum::extract::{MatchedPath, State};
use axum::http::{header, HeaderValue, Request, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::state::ApiState;
use crate::server::metrics::LATENCY_BUCKETS;

/// `GET /-/healthy`.
pub async fn healthy() -> Response {
    (StatusCode::OK, "Prometheus Server is Healthy.\n").into_response()
}

/// `GET /-/ready`: 503 until the WAL has been replayed.
pub async fn ready(State(st): State<Arc<ApiState>>) -> Response {
    if st.is_ready() {
        (StatusCode::OK, "Prometheus Server is Ready.\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable").into_response()
    }
}

/// `POST /-/reload` (with `--web.enable-lifecycle`).
pub async fn reload(State(st): State<Arc<ApiState>>) -> Response {
    if !st.opts.enable_lifecycle {
        return (StatusCode::FORBIDDEN, "Lifecycle API is not enabled.").into_response();
    }
    // As in Prometheus, the request waits for the reload and reports its outcome.
    let (tx, rx) = tokio::sync::oneshot::channel();
    if st.reload.send(tx).await.is_err() {
        return (StatusCode::SERVICE_UNAVAILABLE, "server is shutting down").into_response();
    }
    match rx.await {
        Ok(Ok(())) => StatusCode::OK.into_response(),
        Ok(Err(e)) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("failed to reload config: {e}"),
        )
            .into_response(),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "server is shutting down").into_response(),
    }
}

/// `POST /-/quit` (with `--web.enable-lifecycle`).
pub async fn quit(State(st): State<Arc<ApiState>>) -> Response {
    if !st.opts.enable_lifecycle {
        return (StatusCode::FORBIDDEN, "Lifecycle API is not enabled.").into_response();
    }
    st.quit.notify_one();
    (StatusCode::OK, "Requesting termination... Goodbye!").into_response()
}

/// `GET /metrics`: Aion's own metrics in the text exposition format.
pub async fn metrics(State(st): State<Arc<ApiState>>) -> Response {
    crate::server::refresh_metrics(&st);
    let mut r = (StatusCode::OK, st.metrics.render()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    r
}

/// Counts requests and their durations per handler (Prometheus's metric names), and
/// gzip-compresses responses when the client accepts it.
pub async fn instrument(
    State(st): State<Arc<ApiState>>,
    req: Request<Body>,
    next: Next,
) -> Response {
    let handler = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "other".to_string());
    let gzip_ok = req
        .headers()
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
    let start = Instant::now();
    let resp = next.run(req).await;
    let code = resp.status().as_u16().to_string();
    st.metrics.counter_add(
        "prometheus_http_requests_total",
        "Counter of HTTP requests.",
        &[("handler", &handler), ("code", &code)],
        1.0,
    );
    st.metrics.observe(
        "prometheus_http_request_duration_seconds",
        "Histogram of latencies for HTTP requests.",
        &LATENCY_BUCKETS,
        &[("handler", &handler)],
        start.elapsed().as_secs_f64(),
    );
    if gzip_ok && !resp.headers().contains_key(header::CONTENT_ENCODING) {
        return gzip(resp).await;
    }
    resp
}

async fn gzip(resp: Response) -> Response {
    let (mut parts, body) = resp.into_parts();
    let bytes = match to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    };
    if bytes.len() < 1024 {
        return Response::from_parts(parts, Body::from(bytes));
    }
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    if enc.write_all(&bytes).is_err() {
        return Response::from_parts(parts, Body::from(bytes));
    }
    match enc.finish() {
        Ok(z) => {
            parts
                .headers
                .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            parts.headers.remove(header::CONTENT_LENGTH);
            parts
                .headers
                .insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
            Response::from_parts(parts, Body::from(z))
        }
        Err(_) => Response::from_parts(parts, Body::from(bytes)),
    }
}
