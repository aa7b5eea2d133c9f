//! `GET /federate?match[]=...`: the latest sample of every matching series in the text
//! exposition format 0.0.4, for another server to scrape (federation).
//!
//! As in Prometheus: the newest sample within the lookback delta, none when it is a
//! staleness marker; `# TYPE <name> untyped` per metric name; labels with empty values
//! and nameless series left out; the external labels a series lacks appended (with an
//! empty `instance` when the external labels have none) so that a federating server with
//! `honor_labels: true` keeps them.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderValue, Request, StatusCode};
use axum::response::{IntoResponse, Response};

use super::metadata::parse_selector;
use super::respond::{self, read_request};
use super::state::ApiState;
use crate::model::{is_stale_nan, Label, Labels, Matcher, METRIC_NAME};

/// Content type of the text exposition format.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

fn plain(code: StatusCode, msg: &str) -> Response {
    let mut r = (code, format!("{msg}\n")).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// Appends `f` as Go's `strconv.FormatFloat(f, 'g', -1, 64)`, which the text format
/// uses (`+Inf`, `-Inf` and `NaN` spelled as Prometheus does).
pub fn push_go_float(out: &mut String, f: f64) {
    if f.is_nan() {
        out.push_str("NaN");
        return;
    }
    if f.is_infinite() {
        out.push_str(if f > 0.0 { "+Inf" } else { "-Inf" });
        return;
    }
    if f == 0.0 {
        out.push_str(if f.is_sign_negative() { "-0" } else { "0" });
        return;
    }
    let e = format!("{f:e}");
    let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        let _ = write!(out, "{mant}e{sign}{:02}", exp.unsigned_abs());
    } else {
        let _ = write!(out, "{f}");
    }
}

/// Appends a label value with the text format's escapes (`\\`, `\"`, `\n`).
fn push_escaped(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Renders the federation answer for `(labels, t, v)` samples sorted by metric name.
pub fn render(samples: &[(Labels, i64, f64)], external: &Labels) -> String {
    let mut ext: Vec<Label> = external.iter().map(|l| l.to_label()).collect();
    if !external.has("instance") {
        ext.push(Label::new("instance", ""));
        ext.sort();
    }
    let mut out = String::new();
    let mut last_name: Option<&str> = None;
    for (labels, t, v) in samples {
        let Some(name) = labels.metric_name().filter(|n| !n.is_empty()) else {
            continue;
        };
        if last_name != Some(name) {
            let _ = writeln!(out, "# TYPE {name} untyped");
            last_name = Some(name);
        }
        out.push_str(name);
        let mut first = true;
        let mut pair = |out: &mut String, n: &str, v: &str| {
            out.push(if first { '{' } else { ',' });
            first = false;
            out.push_str(n);
            out.push_str("=\"");
            push_escaped(out, v);
            out.push('"');
        };
        for l in labels.iter() {
            if l.name != METRIC_NAME && !l.value.is_empty() {
                pair(&mut out, l.name, l.value);
            }
        }
        for l in &ext {
            if labels.get(&l.name).is_none_or(str::is_empty) {
                pair(&mut out, &l.name, &l.value);
            }
        }
        if !first {
            out.push('}');
        }
        out.push(' ');
        push_go_float(&mut out, *v);
        let _ = writeln!(out, " {t}");
    }
    out
}

/// `GET /federate`.
pub async fn federate(State(st): State<Arc<ApiState>>, req: Request<Body>) -> Response {
    let r = match read_request(&st, req, true).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let selectors = r.params.all("match[]");
    if selectors.is_empty() {
        return plain(
            StatusCode::BAD_REQUEST,
            "at least one match[] parameter is required",
        );
    }
    let mut sets: Vec<Vec<Matcher>> = Vec::with_capacity(selectors.len());
    for s in selectors {
        match parse_selector(s) {
            Ok(m) => sets.push(m),
            Err(e) => return plain(StatusCode::BAD_REQUEST, &e.message),
        }
    }
    let db = match respond::db(&st) {
        Ok(db) => db,
        Err(resp) => return resp,
    };
    let lookback = st.opts.engine.lookback_delta_ms;
    let external = st.external_labels.read().clone();
    let now = crate::db::system_clock_ms();
    let res = tokio::task::spawn_blocking(move || {
        let q = db.querier(now.saturating_sub(lookback) + 1, now)?;
        let mut latest: BTreeMap<Labels, (i64, f64)> = BTreeMap::new();
        let mut buf = Vec::new();
        for m in &sets {
            for s in q.select(m)? {
                if latest.contains_key(&s.labels) {
                    continue;
                }
                s.samples_into(&mut buf);
                if let Some(x) = buf.last() {
                    if !is_stale_nan(x.v) {
                        latest.insert(s.labels.clone(), (x.t, x.v));
                    }
                }
            }
        }
        let mut v: Vec<(Labels, i64, f64)> =
            latest.into_iter().map(|(l, (t, v))| (l, t, v)).collect();
        v.sort_by(|a, b| {
            a.0.get_or_empty(METRIC_NAME)
                .cmp(b.0.get_or_empty(METRIC_NAME))
        });
        Ok::<String, crate::db::DbError>(render(&v, &external))
    })
    .await;
    match res {
        Ok(Ok(body)) => {
            let mut r = (StatusCode::OK, body).into_response();
            r.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(TEXT_FORMAT));
            r
        }
        Ok(Err(e)) => {
            st.metrics.counter_add(
                "prometheus_web_federation_errors_total",
                "Total number of errors that occurred while sending federation responses.",
                &[],
                1.0,
            );
            plain(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string())
        }
        Err(e) => plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("task failed: {e}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(f: f64) -> String {
        let mut s = String::new();
        push_go_float(&mut s, f);
        s
    }

    #[test]
    fn floats_as_go_formats_them() {
        assert_eq!(g(1.0), "1");
        assert_eq!(g(-2.5), "-2.5");
        assert_eq!(g(123456.0), "123456");
        assert_eq!(g(1e6), "1e+06");
        assert_eq!(g(1234567.0), "1.234567e+06");
        assert_eq!(g(0.0001), "0.0001");
        assert_eq!(g(0.00001), "1e-05");
        assert_eq!(g(1.7e12), "1.7e+12");
        assert_eq!(g(f64::INFINITY), "+Inf");
        assert_eq!(g(f64::NEG_INFINITY), "-Inf");
        assert_eq!(g(f64::NAN), "NaN");
        assert_eq!(g(0.0), "0");
    }

    #[test]
    fn renders_families_with_external_labels_and_escapes() {
        let s = vec![
            (
                Labels::from_pairs(&[("__name__", "a"), ("job", "x"), ("v", "q\"\\\nz")]),
                1000,
                1.5,
            ),
            (
                Labels::from_pairs(&[("__name__", "a"), ("instance", "i"), ("job", "y")]),
                2000,
                2.0,
            ),
            (Labels::from_pairs(&[("__name__", "b")]), 3000, 3.0),
            (Labels::from_pairs(&[("job", "nameless")]), 3000, 3.0),
        ];
        let ext = Labels::from_pairs(&[("dc", "eu"), ("job", "ext")]);
        let out = render(&s, &ext);
        assert_eq!(
            out,
            "# TYPE a untyped\n\
             a{job=\"x\",v=\"q\\\"\\\\\\nz\",dc=\"eu\",instance=\"\"} 1.5 1000\n\
             a{instance=\"i\",job=\"y\",dc=\"eu\"} 2 2000\n\
             # TYPE b untyped\n\
             b{dc=\"eu\",instance=\"\",job=\"ext\"} 3 3000\n"
        );
    }
}
