//! `POST /api/v1/write` (the remote write 1.0 receiver, behind
//! `--web.enable-remote-write-receiver`) and `POST /api/v1/read` (remote read, with
//! `SAMPLES` or `STREAMED_XOR_CHUNKS` responses).
//! The protocol work is in [`crate::remote`]; this module handles HTTP: headers, body
//! limits, status codes, and running the storage work on a blocking thread.

use std::sync::Arc;

use axum::body::{to_bytes, Body};
use axum::extract::State;
use axum::http::{header, HeaderValue, Request, StatusCode};
use axum::response::{IntoResponse, Response};

use super::respond;
use super::state::ApiState;
use crate::remote::codec;
use crate::remote::proto::{RawWriteRequest, ReadRequest, ResponseType};
use crate::remote::read;
use crate::remote::receive::{apply_request, ReceiveError};

/// Largest compressed write body accepted.
pub const MAX_WRITE_BODY: usize = 32 << 20;
/// Largest decompressed write body accepted.
pub const MAX_WRITE_DECODED: usize = 128 << 20;
/// Largest read request accepted (compressed and decompressed), as Prometheus's limit.
pub const MAX_READ_BODY: usize = 32 << 20;

const PROTOBUF: &str = "application/x-protobuf";
const WRITE_V1: &str = "prometheus.WriteRequest";

/// A plain-text error, as Go's `http.Error` writes it.
fn text_error(code: u16, msg: &str) -> Response {
    let code = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut r = (code, format!("{msg}\n")).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r.headers_mut().insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    r
}

fn header_str(req: &Request<Body>, name: header::HeaderName) -> &str {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .trim()
}

/// Checks the `Content-Type` of a write: protobuf, and (if a `proto` parameter is
/// given) the 1.0 message. A missing header is taken as 1.0.
fn check_write_content_type(ct: &str) -> Result<(), String> {
    if ct.is_empty() {
        return Ok(());
    }
    let mut parts = ct.split(';');
    let media = parts.next().unwrap_or("").trim();
    if !media.eq_ignore_ascii_case(PROTOBUF) {
        return Err(format!(
            "expected {PROTOBUF} as the first (media) part, got {ct} content-type"
        ));
    }
    for p in parts {
        let Some((k, v)) = p.split_once('=') else {
            return Err(format!(
                "expected parameters to be key-values, got {p} in {ct} content-type"
            ));
        };
        if k.trim() == "proto" {
            let v = v.trim().trim_matches('"');
            if v != WRITE_V1 {
                return Err(format!(
                    "{v} protobuf message is not accepted by this server; accepted [{WRITE_V1}]"
                ));
            }
        }
    }
    Ok(())
}

fn now_ms() -> i64 {
    crate::db::system_clock_ms()
}

/// `POST /api/v1/write`.
pub async fn write(State(st): State<Arc<ApiState>>, req: Request<Body>) -> Response {
    if !st.opts.enable_remote_write_receiver {
        return text_error(
            404,
            "remote write receiver needs to be enabled with --web.enable-remote-write-receiver",
        );
    }
    if let Err(msg) = check_write_content_type(header_str(&req, header::CONTENT_TYPE)) {
        log::warn!(target: "aion::remote", "error decoding remote write request err={msg:?}");
        return text_error(415, &msg);
    }
    let enc = header_str(&req, header::CONTENT_ENCODING);
    if !enc.is_empty() && !enc.eq_ignore_ascii_case("snappy") {
        return text_error(
            415,
            &format!("{enc} encoding (compression) is not accepted by this server; only snappy is acceptable"),
        );
    }
    let db = match respond::db(&st) {
        Ok(db) => db,
        Err(r) => return r,
    };
    let body = match to_bytes(req.into_body(), MAX_WRITE_BODY).await {
        Ok(b) => b,
        Err(_) => {
            return text_error(
                413,
                &format!("request body too large (limit {MAX_WRITE_BODY} bytes)"),
            )
        }
    };
    let st2 = st.clone();
    let res = tokio::task::spawn_blocking(move || {
        let req: RawWriteRequest =
            codec::decode(&body, MAX_WRITE_DECODED).map_err(ReceiveError::from)?;
        apply_request(&db, req, now_ms(), &st2.remote_metadata)
    })
    .await;
    let res = match res {
        Ok(r) => r,
        Err(e) => return text_error(500, &format!("task failed: {e}")),
    };
    match res {
        Ok(stats) => {
            st.metrics.counter_add(
                "aion_remote_write_received_samples_total",
                "Samples received by the remote write receiver.",
                &[],
                stats.samples as f64,
            );
            if stats.histograms_skipped > 0 {
                st.metrics.counter_add(
                    "aion_remote_write_histograms_skipped_total",
                    "Native histogram samples received by remote write and not stored.",
                    &[],
                    stats.histograms_skipped as f64,
                );
            }
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => {
            let code = e.status();
            st.metrics.counter_add(
                "aion_remote_write_refused_requests_total",
                "Remote write requests refused, by HTTP status.",
                &[("code", &code.to_string())],
                1.0,
            );
            if code >= 500 {
                log::error!(target: "aion::remote", "error while remote writing the request err={e}");
            } else {
                log::warn!(target: "aion::remote", "refused remote write request err={e}");
            }
            text_error(code, &e.to_string())
        }
    }
}

/// `POST /api/v1/read`: answers with the first response type the client accepts.
pub async fn read(State(st): State<Arc<ApiState>>, req: Request<Body>) -> Response {
    let db = match respond::db(&st) {
        Ok(db) => db,
        Err(r) => return r,
    };
    let body = match to_bytes(req.into_body(), MAX_READ_BODY).await {
        Ok(b) => b,
        Err(_) => {
            return text_error(
                413,
                &format!("request body too large (limit {MAX_READ_BODY} bytes)"),
            )
        }
    };
    let rr: ReadRequest = match codec::decode(&body, MAX_READ_BODY) {
        Ok(r) => r,
        Err(e) => {
            let e = ReceiveError::from(e);
            return text_error(e.status(), &e.to_string());
        }
    };
    let kind = match read::negotiate(&rr.accepted_response_types) {
        Ok(k) => k,
        Err(e) => return text_error(e.status(), &e.to_string()),
    };
    let permit = match st.query_slots.clone().acquire_owned().await {
        Ok(p) => p,
        Err(_) => return text_error(500, "query queue closed"),
    };
    let external = st.external_labels.read().clone();
    let max_samples = st.opts.engine.max_samples;
    let res = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        match kind {
            ResponseType::Samples => {
                read::answer_samples(&db, &rr, &external, max_samples).map(|r| codec::encode(&r))
            }
            ResponseType::StreamedXorChunks => {
                read::answer_streamed(&db, &rr, &external, max_samples)
            }
        }
    })
    .await;
    match res {
        Ok(Ok(bytes)) => {
            let mut r = (StatusCode::OK, bytes).into_response();
            let h = r.headers_mut();
            match kind {
                ResponseType::Samples => {
                    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROTOBUF));
                    h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("snappy"));
                }
                ResponseType::StreamedXorChunks => {
                    h.insert(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static(crate::remote::chunked::CONTENT_TYPE),
                    );
                    // Already framed: no gzip on top.
                    h.insert(
                        header::CONTENT_ENCODING,
                        HeaderValue::from_static("identity"),
                    );
                }
            }
            r
        }
        Ok(Err(e)) => text_error(e.status(), &e.to_string()),
        Err(e) => text_error(500, &format!("task failed: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_content_types() {
        assert!(check_write_content_type("").is_ok());
        assert!(check_write_content_type("application/x-protobuf").is_ok());
        assert!(
            check_write_content_type("application/x-protobuf;proto=prometheus.WriteRequest")
                .is_ok()
        );
        let v2 =
            check_write_content_type("application/x-protobuf;proto=io.prometheus.write.v2.Request")
                .unwrap_err();
        assert!(v2.contains("not accepted"), "{v2}");
        assert!(check_write_content_type("application/json").is_err());
        assert!(check_write_content_type("application/x-protobuf;junk").is_err());
    }
}
