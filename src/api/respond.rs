//! Building responses: the JSON envelope, errors, and reading request parameters.

use std::sync::Arc;

use axum::body::{to_bytes, Body};
use axum::http::{header, HeaderValue, Method, Request, StatusCode};
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::json::push_str;
use super::params::Params;
use super::state::ApiState;
use crate::db::Db;

/// A `success` envelope around already-rendered JSON `data`, with optional warnings and
/// infos.
pub fn success(data: &str, warnings: &[String], infos: &[String]) -> Response {
    let mut out = begin_success(data.len() + 64);
    out.push_str(data);
    finish_success(out, warnings, infos)
}

/// Starts a `success` envelope with room for `capacity` bytes: append the `data` JSON,
/// then hand it to [`finish_success`]. Large results are rendered in place this way
/// instead of being copied into the envelope.
pub fn begin_success(capacity: usize) -> String {
    let mut out = String::with_capacity(capacity.max(64));
    out.push_str("{\"status\":\"success\",\"data\":");
    out
}

/// Completes an envelope from [`begin_success`] with warnings and infos.
pub fn finish_success(mut out: String, warnings: &[String], infos: &[String]) -> Response {
    push_list(&mut out, "warnings", warnings);
    push_list(&mut out, "infos", infos);
    out.push('}');
    json_response(StatusCode::OK, out)
}

fn push_list(out: &mut String, key: &str, items: &[String]) {
    if items.is_empty() {
        return;
    }
    out.push_str(",\"");
    out.push_str(key);
    out.push_str("\":[");
    for (i, w) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_str(out, w);
    }
    out.push(']');
}

/// A `success` envelope around a serde value.
pub fn success_value(data: &serde_json::Value) -> Response {
    success(&data.to_string(), &[], &[])
}

/// An `error` envelope with Prometheus's status code for the error type.
pub fn error(e: &ApiError) -> Response {
    let mut out = String::from("{\"status\":\"error\",\"errorType\":");
    push_str(&mut out, e.kind.as_str());
    out.push_str(",\"error\":");
    push_str(&mut out, &e.message);
    out.push('}');
    let code = StatusCode::from_u16(e.kind.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json_response(code, out)
}

fn json_response(code: StatusCode, body: String) -> Response {
    let mut r = (code, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// Plain-text `503 Service Unavailable`, as Prometheus answers before it is ready.
pub fn unavailable() -> Response {
    (StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable").into_response()
}

/// Plain-text `405 Method Not Allowed`.
pub fn method_not_allowed() -> Response {
    (StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed").into_response()
}

/// What a handler needs from a request: its parameters (URL query merged with a form body).
pub struct ApiRequest {
    /// Parameters.
    pub params: Params,
}

/// Reads the parameters of a GET or POST request. Other methods get 405; OPTIONS gets 204.
pub async fn read_request(
    state: &Arc<ApiState>,
    req: Request<Body>,
    allow_post: bool,
) -> Result<ApiRequest, Response> {
    let method = req.method().clone();
    if method == Method::OPTIONS {
        return Err(StatusCode::NO_CONTENT.into_response());
    }
    if !(method == Method::GET || (allow_post && method == Method::POST)) {
        return Err(method_not_allowed());
    }
    let query = req.uri().query().map(str::to_string);
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    let body = if method == Method::POST && is_form {
        match to_bytes(req.into_body(), state.opts.max_body_bytes).await {
            Ok(b) => Some(b),
            Err(_) => {
                return Err(error(&ApiError::bad_data(format!(
                    "request body too large (limit {} bytes)",
                    state.opts.max_body_bytes
                ))))
            }
        }
    } else {
        None
    };
    Ok(ApiRequest {
        params: Params::new(query.as_deref(), body.as_deref()),
    })
}

/// The database, or the 503 answer when the server is not ready yet.
pub fn db(state: &ApiState) -> Result<Arc<Db>, Response> {
    if !state.is_ready() {
        return Err(unavailable());
    }
    state.db.get().cloned().ok_or_else(unavailable)
}
