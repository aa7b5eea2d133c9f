//! `/api/v1/series`, `/labels`, `/label/{name}/values`, `/metadata`.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::Request;
use axum::response::Response;

use super::error::ApiError;
use super::json::{push_labels, push_str};
use super::params::{Params, MAX_TIME, MIN_TIME};
use super::respond::{self, read_request};
use super::state::ApiState;
use crate::model::{Labels, Matcher};
use crate::promql::ast::Expr;

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

/// Parses every `match[]` parameter into a matcher list.
fn match_params(p: &Params) -> Result<Vec<Vec<Matcher>>, ApiError> {
    p.all("match[]").into_iter().map(parse_selector).collect()
}

/// Parses a series selector such as `up{job="x"}`.
pub fn parse_selector(s: &str) -> Result<Vec<Matcher>, ApiError> {
    match crate::promql::parse(s) {
        Ok(Expr::Vector(vs)) if vs.offset_ms == 0 && vs.at.is_none() => Ok(vs.matchers),
        Ok(_) => Err(ApiError::invalid_param(
            "match[]",
            format!("1:1: parse error: expected a series selector, got {s:?}"),
        )),
        Err(e) => Err(ApiError::invalid_param("match[]", e)),
    }
}

fn time_range(p: &Params) -> Result<(i64, i64), ApiError> {
    let start = p.time_or("start", MIN_TIME)?;
    let end = p.time_or("end", MAX_TIME)?;
    if end < start {
        return Err(ApiError::invalid_param(
            "end",
            "end timestamp must not be before start time",
        ));
    }
    Ok((start, end))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("task failed: {e}")))?
}

fn storage_err(e: impl std::fmt::Display) -> ApiError {
    ApiError::internal(e.to_string())
}

fn string_list(items: &[String], limit: usize) -> Response {
    let mut warnings = Vec::new();
    let items = if limit > 0 && items.len() > limit {
        warnings.push("results truncated due to limit".to_string());
        items.get(..limit).unwrap_or(items)
    } else {
        items
    };
    let mut s = String::from("[");
    for (i, v) in items.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        push_str(&mut s, v);
    }
    s.push(']');
    respond::success(&s, &warnings, &[])
}

/// `GET|POST /api/v1/series`.
pub async fn series(State(st): State<Arc<ApiState>>, req: Request<Body>) -> Response {
    let r = tri!(read_request(&st, req, true).await);
    let db = tri!(respond::db(&st));
    let p = r.params;
    let sets = tri!(match_params(&p).map_err(api_err));
    if sets.is_empty() {
        return api_err(ApiError::bad_data("no match[] parameter provided"));
    }
    let (start, end) = tri!(time_range(&p).map_err(api_err));
    let limit = tri!(p.limit().map_err(api_err));
    let found = blocking(move || {
        let q = db.querier(start, end).map_err(storage_err)?;
        let mut all: BTreeSet<Labels> = BTreeSet::new();
        for m in &sets {
            for s in q.select(m).map_err(storage_err)? {
                all.insert(s.labels);
            }
        }
        Ok(all)
    })
    .await;
    let all = tri!(found.map_err(api_err));
    let mut warnings = Vec::new();
    let mut s = String::from("[");
    for (i, l) in all.iter().enumerate() {
        if limit > 0 && i >= limit {
            warnings.push("results truncated due to limit".to_string());
            break;
        }
        if i > 0 {
            s.push(',');
        }
        push_labels(&mut s, l);
    }
    s.push(']');
    respond::success(&s, &warnings, &[])
}

/// `GET|POST /api/v1/labels`.
pub async fn labels(State(st): State<Arc<ApiState>>, req: Request<Body>) -> Response {
    let r = tri!(read_request(&st, req, true).await);
    let db = tri!(respond::db(&st));
    let p = r.params;
    let sets = tri!(match_params(&p).map_err(api_err));
    let (start, end) = tri!(time_range(&p).map_err(api_err));
    let limit = tri!(p.limit().map_err(api_err));
    let names = blocking(move || {
        let q = db.querier(start, end).map_err(storage_err)?;
        if sets.is_empty() {
            return q.label_names(&[]).map_err(storage_err);
        }
        let mut all = BTreeSet::new();
        for m in &sets {
            all.extend(q.label_names(m).map_err(storage_err)?);
        }
        Ok(all.into_iter().collect())
    })
    .await;
    string_list(&tri!(names.map_err(api_err)), limit)
}

/// Decodes Prometheus's `U__` escaping of UTF-8 label names in URL paths.
pub fn unescape_label_name(name: &str) -> Option<String> {
    let Some(rest) = name.strip_prefix("U__") else {
        return Some(name.to_string());
    };
    let mut out = String::new();
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '_' {
            out.push(c);
            continue;
        }
        if chars.peek() == Some(&'_') {
            chars.next();
            out.push('_');
            continue;
        }
        let mut hex = String::new();
        loop {
            match chars.next() {
                Some('_') => break,
                Some(h) if h.is_ascii_hexdigit() => hex.push(h),
                _ => return None,
            }
        }
        let cp = u32::from_str_radix(&hex, 16).ok()?;
        out.push(char::from_u32(cp)?);
    }
    Some(out)
}

/// `GET /api/v1/label/{name}/values`.
pub async fn label_values(
    State(st): State<Arc<ApiState>>,
    Path(name): Path<String>,
    req: Request<Body>,
) -> Response {
    let r = tri!(read_request(&st, req, false).await);
    let db = tri!(respond::db(&st));
    let p = r.params;
    let name = match unescape_label_name(&name) {
        Some(n) if !n.is_empty() => n,
        _ => return api_err(ApiError::bad_data(format!("invalid label name: {name:?}"))),
    };
    let sets = tri!(match_params(&p).map_err(api_err));
    let (start, end) = tri!(time_range(&p).map_err(api_err));
    let limit = tri!(p.limit().map_err(api_err));
    let values = blocking(move || {
        let q = db.querier(start, end).map_err(storage_err)?;
        if sets.is_empty() {
            return q.label_values(&name, &[]).map_err(storage_err);
        }
        let mut all = BTreeSet::new();
        for m in &sets {
            all.extend(q.label_values(&name, m).map_err(storage_err)?);
        }
        Ok(all.into_iter().collect())
    })
    .await;
    string_list(&tri!(values.map_err(api_err)), limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_label_names_unescape() {
        assert_eq!(unescape_label_name("job").as_deref(), Some("job"));
        assert_eq!(unescape_label_name("U__a_2e_b").as_deref(), Some("a.b"));
        assert_eq!(unescape_label_name("U__a__b").as_deref(), Some("a_b"));
        assert_eq!(unescape_label_name("U__a_zz_").as_deref(), None);
    }
}
