//! HTTP service discovery (`http_sd_configs`): a URL answering `200` with
//! `application/json` holding a list of target groups (`targets`, `labels`), fetched
//! every `refresh_interval`. Each group gets `__meta_url`, as in Prometheus; a failed
//! fetch keeps the previous targets.

use std::collections::BTreeMap;
use std::time::Duration;

use super::client::{HttpClient, USER_AGENT_VALUE};
use super::target::TargetGroup;
use crate::config::HttpSdConfig;

/// One element of the JSON list (unknown fields are ignored, as Go's decoder does).
#[derive(serde::Deserialize)]
struct Group {
    #[serde(default)]
    targets: Vec<String>,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
}

/// Prometheus accepts `application/json`, optionally with a UTF-8 charset.
fn content_type_ok(ct: &str) -> bool {
    let ct = ct.trim().to_ascii_lowercase();
    let Some(rest) = ct.strip_prefix("application/json") else {
        return false;
    };
    if rest.is_empty() {
        return true;
    }
    let Some(param) = rest.strip_prefix(';') else {
        return false;
    };
    matches!(param.trim_start(), "charset=utf-8" | "charset=\"utf-8\"")
}

/// Parses a discovery answer's body into groups labelled with `__meta_url`.
pub fn parse_groups(url: &str, body: &[u8]) -> Result<Vec<TargetGroup>, String> {
    let raw: Vec<Option<Group>> =
        serde_json::from_slice(body).map_err(|e| format!("parsing target groups: {e}"))?;
    let mut out = Vec::with_capacity(raw.len());
    for (i, g) in raw.into_iter().enumerate() {
        let Some(g) = g else {
            return Err("nil target group item found".into());
        };
        let mut labels = g.labels.unwrap_or_default();
        labels.insert("__meta_url".into(), url.to_string());
        out.push(TargetGroup {
            targets: g.targets,
            labels,
            source: format!("{url}:{i}"),
            ..Default::default()
        });
    }
    Ok(out)
}

/// Fetches the target groups once.
pub async fn fetch(client: &HttpClient, cfg: &HttpSdConfig) -> Result<Vec<TargetGroup>, String> {
    let refresh = format!("{}", cfg.refresh_interval.std().as_secs_f64());
    let headers = [
        ("accept", "application/json"),
        ("user-agent", USER_AGENT_VALUE),
        ("x-prometheus-refresh-interval-seconds", refresh.as_str()),
    ];
    let timeout = cfg.refresh_interval.std().max(Duration::from_secs(1));
    let resp = client
        .request(
            hyper::Method::GET,
            &cfg.url,
            &headers,
            Vec::new(),
            timeout,
            0,
        )
        .await?;
    if resp.status != hyper::StatusCode::OK {
        return Err(format!(
            "server returned HTTP status {} {}",
            resp.status.as_u16(),
            resp.status.canonical_reason().unwrap_or("")
        ));
    }
    let ct = resp.header("content-type");
    if !content_type_ok(ct) {
        return Err(format!("unsupported content type {ct:?}"));
    }
    parse_groups(&cfg.url, &resp.body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        assert!(content_type_ok("application/json"));
        assert!(content_type_ok("application/json; charset=utf-8"));
        assert!(content_type_ok("Application/JSON;charset=\"utf-8\""));
        assert!(!content_type_ok("text/plain"));
        assert!(!content_type_ok("application/json; charset=latin1"));
    }

    #[test]
    fn groups_get_meta_url() {
        let g = parse_groups(
            "http://sd/x",
            br#"[{"targets": ["a:1"], "labels": {"env": "p"}, "extra": 1}, {"targets": ["b:2"]}]"#,
        )
        .unwrap();
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].labels.get("__meta_url").unwrap(), "http://sd/x");
        assert_eq!(g[0].labels.get("env").unwrap(), "p");
        assert_eq!(g[1].source, "http://sd/x:1");
        assert!(parse_groups("u", b"[null]").is_err());
        assert!(parse_groups("u", b"{}").is_err());
    }
}
