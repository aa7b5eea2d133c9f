//! `/api/v1/admin/tsdb/*`: delete_series, clean_tombstones and snapshot, enabled only
//! with `--web.enable-admin-api` (otherwise refused as Prometheus refuses them).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{Method, Request, StatusCode};
use axum::response::{IntoResponse, Response};

use super::error::{ApiError, ErrorType};
use super::json::push_str;
use super::metadata::parse_selector;
use super::params::{MAX_TIME, MIN_TIME};
use super::respond::{self, read_request};
use super::state::ApiState;

macro_rules! tri {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(resp) => return resp,
        }
    };
}

fn err(e: ApiError) -> Response {
    respond::error(&e)
}

/// A snapshot directory name like Prometheus's: `20171210T211224Z-2be650b6d019eb54`.
fn snapshot_name(now_ms: i64) -> String {
    let ts = crate::model::time::format_rfc3339_ms(now_ms);
    // 2017-12-10T21:12:24.123Z -> 20171210T211224Z
    let compact: String = ts
        .chars()
        .take(19)
        .filter(|c| *c != '-' && *c != ':')
        .collect();
    let mut seed = now_ms as u64 ^ u64::from(std::process::id()).rotate_left(32);
    // splitmix64: enough to keep names of snapshots taken in the same second apart
    seed = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = seed;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    format!("{compact}Z-{z:016x}")
}

/// `POST|PUT /api/v1/admin/tsdb/{action}`.
pub async fn admin(
    State(st): State<Arc<ApiState>>,
    Path(action): Path<String>,
    req: Request<Body>,
) -> Response {
    let method = req.method().clone();
    let r = tri!(read_request(&st, req, true).await);
    if !st.opts.enable_admin {
        return err(ApiError {
            kind: ErrorType::Unavailable,
            message: "admin APIs disabled".into(),
        });
    }
    if method != Method::POST && method != Method::PUT {
        return respond::method_not_allowed();
    }
    let db = tri!(respond::db(&st));
    let p = r.params;
    match action.as_str() {
        "delete_series" => {
            let selectors = p.all("match[]");
            if selectors.is_empty() {
                return err(ApiError::bad_data("no match[] parameter provided"));
            }
            let mut sets = Vec::new();
            for s in selectors {
                sets.push(tri!(parse_selector(s).map_err(err)));
            }
            let start = tri!(p.time_or("start", MIN_TIME).map_err(err));
            let end = tri!(p.time_or("end", MAX_TIME).map_err(err));
            let res = tokio::task::spawn_blocking(move || {
                for m in &sets {
                    db.delete_series(m, start, end)?;
                }
                Ok::<(), crate::db::DbError>(())
            })
            .await;
            match res {
                Ok(Ok(())) => StatusCode::NO_CONTENT.into_response(),
                Ok(Err(e)) => err(ApiError::internal(format!("delete series: {e}"))),
                Err(e) => err(ApiError::internal(e.to_string())),
            }
        }
        "clean_tombstones" => {
            match tokio::task::spawn_blocking(move || db.clean_tombstones()).await {
                Ok(Ok(_)) => StatusCode::NO_CONTENT.into_response(),
                Ok(Err(e)) => err(ApiError::internal(format!("clean tombstones: {e}"))),
                Err(e) => err(ApiError::internal(e.to_string())),
            }
        }
        "snapshot" => {
            let skip_head = match p.get_nonempty("skip_head") {
                None => false,
                Some(v) => match v {
                    "true" | "1" | "t" | "T" | "TRUE" | "True" => true,
                    "false" | "0" | "f" | "F" | "FALSE" | "False" => false,
                    _ => {
                        return err(ApiError::bad_data(format!(
                            "unable to parse boolean 'skip_head' argument: {v:?}"
                        )))
                    }
                },
            };
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or(0);
            let name = snapshot_name(now);
            let dir = db.dir().join("snapshots").join(&name);
            let res = tokio::task::spawn_blocking(move || db.snapshot(&dir, !skip_head)).await;
            match res {
                Ok(Ok(())) => {
                    let mut s = String::from("{\"name\":");
                    push_str(&mut s, &name);
                    s.push('}');
                    respond::success(&s, &[], &[])
                }
                Ok(Err(e)) => err(ApiError::internal(format!("create snapshot: {e}"))),
                Err(e) => err(ApiError::internal(e.to_string())),
            }
        }
        other => err(ApiError {
            kind: ErrorType::NotFound,
            message: format!("unknown admin action {other:?}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_names_look_like_prometheus() {
        let n = snapshot_name(1_512_940_344_000);
        assert!(n.starts_with("20171210T211224Z-"), "{n}");
        assert_eq!(n.len(), "20171210T211224Z-".len() + 16);
    }
}
