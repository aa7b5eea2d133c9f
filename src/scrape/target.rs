//! Targets: from discovered label sets (static or file discovery) through
//! `relabel_configs` to the labels, URL, interval and timeout of a scrape.

use std::collections::BTreeMap;

use crate::config::relabel::process;
use crate::config::{Duration, ScrapeConfig};
use crate::model::time::parse_duration_ms;
use crate::model::{Label, Labels};

/// A group of discovered targets sharing labels (one `static_configs` entry, or one
/// element of a file or HTTP discovery answer, whose labels include its `__meta_*`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetGroup {
    /// `host:port` addresses.
    #[serde(default)]
    pub targets: Vec<String>,
    /// Labels of every target of the group.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Where the group came from (`static`, a file name, or `url:index`).
    #[serde(skip)]
    pub source: String,
    /// Targets with labels of their own (`__address__` and `__meta_*`), as DNS
    /// discovery finds them; they also get the group's labels.
    #[serde(skip)]
    pub per_target: Vec<BTreeMap<String, String>>,
}

/// A target after relabelling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Labels before relabelling (`__address__`, `__meta_*`, ...).
    pub discovered: Labels,
    /// Labels after relabelling, including `__`-prefixed ones (`__address__`, ...).
    pub full: Labels,
    /// The labels every scraped series gets (no `__` labels).
    pub labels: Labels,
    /// The URL scraped.
    pub url: String,
    /// Scrape interval.
    pub interval: Duration,
    /// Scrape timeout.
    pub timeout: Duration,
}

impl Target {
    /// Identity of a target within its pool: its labels and URL.
    pub fn hash(&self) -> u64 {
        let mut h = self.labels.stable_hash();
        for b in self.url.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
        h
    }
}

/// A label set dropped by relabelling (or invalid), kept for `/api/v1/targets`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DroppedTarget {
    /// The discovered labels.
    pub discovered: Labels,
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Builds targets from the groups of one scrape config, as Prometheus's
/// `PopulateLabels` does. Returns (active, dropped-or-invalid with reason).
pub fn targets_from_groups(
    cfg: &ScrapeConfig,
    groups: &[TargetGroup],
) -> (Vec<Target>, Vec<(DroppedTarget, Option<String>)>) {
    let mut active = Vec::new();
    let mut dropped = Vec::new();
    for g in groups {
        let own: Vec<Vec<(&str, &str)>> = g
            .targets
            .iter()
            .map(|a| vec![("__address__", a.as_str())])
            .chain(g.per_target.iter().map(|m| {
                m.iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect::<Vec<_>>()
            }))
            .collect();
        for target_labels in own {
            let mut lb = Labels::empty().builder();
            for (k, v) in &g.labels {
                lb.set(k, v);
            }
            for (k, v) in target_labels {
                lb.set(k, v);
            }
            let defaults = [
                ("job", cfg.job_name.clone()),
                ("__scrape_interval__", cfg.interval().to_string()),
                ("__scrape_timeout__", cfg.timeout().to_string()),
                ("__metrics_path__", cfg.metrics_path.clone()),
                ("__scheme__", cfg.scheme.clone()),
            ];
            for (k, v) in defaults {
                if lb.get(k).is_none() {
                    lb.set(k, &v);
                }
            }
            for (k, vs) in &cfg.params {
                let name = format!("__param_{k}");
                if lb.get(&name).is_none() {
                    if let Some(v) = vs.first() {
                        lb.set(&name, v);
                    }
                }
            }
            let discovered = lb.labels();
            match populate(cfg, &discovered) {
                Ok(Some(t)) => active.push(t),
                Ok(None) => dropped.push((DroppedTarget { discovered }, None)),
                Err(e) => dropped.push((DroppedTarget { discovered }, Some(e))),
            }
        }
    }
    (active, dropped)
}

/// Relabels one discovered label set into a target; `Ok(None)` when dropped.
pub fn populate(cfg: &ScrapeConfig, discovered: &Labels) -> Result<Option<Target>, String> {
    let Some(full) = process(discovered, &cfg.relabel_configs) else {
        return Ok(None);
    };
    let addr = full.get_or_empty("__address__").to_string();
    if addr.is_empty() {
        return Err("no address".into());
    }
    if addr.contains('/') {
        return Err(format!("{addr:?} is not a valid hostname"));
    }
    let mut lb = full.builder();
    if full.get("instance").is_none() {
        lb.set("instance", &addr);
    }
    let full = lb.labels();
    let interval = match full.get("__scrape_interval__") {
        Some(s) => Duration(
            parse_duration_ms(s).ok_or_else(|| format!("error parsing scrape interval: {s:?}"))?,
        ),
        None => cfg.interval(),
    };
    let timeout = match full.get("__scrape_timeout__") {
        Some(s) => Duration(
            parse_duration_ms(s).ok_or_else(|| format!("error parsing scrape timeout: {s:?}"))?,
        ),
        None => cfg.timeout(),
    };
    if interval.0 <= 0 {
        return Err("scrape interval cannot be 0".into());
    }
    if timeout.0 <= 0 {
        return Err("scrape timeout cannot be 0".into());
    }
    if timeout > interval {
        return Err(format!(
            "scrape timeout cannot be greater than scrape interval ({timeout:?} > {interval:?})"
        ));
    }
    let labels = Labels::new(
        full.iter()
            .filter(|l| !l.name.starts_with("__") && !l.value.is_empty())
            .map(|l| l.to_label())
            .collect::<Vec<Label>>(),
    );
    // The URL: scheme, address, path and parameters (from `__param_*` labels, which
    // override the config's first value, plus the config's further values).
    let scheme = full.get_or_empty("__scheme__");
    let path = full.get_or_empty("__metrics_path__");
    let mut query: Vec<String> = Vec::new();
    let mut names: Vec<&str> = cfg.params.keys().map(String::as_str).collect();
    for l in full.iter() {
        if let Some(n) = l.name.strip_prefix("__param_") {
            if !names.contains(&n) {
                names.push(n);
            }
        }
    }
    names.sort_unstable();
    for n in names {
        let first = full.get(&format!("__param_{n}"));
        let cfg_vals = cfg.params.get(n);
        if let Some(v) = first {
            query.push(format!("{}={}", percent_encode(n), percent_encode(v)));
        }
        if let Some(vs) = cfg_vals {
            let skip = usize::from(first.is_some());
            for v in vs.iter().skip(skip) {
                query.push(format!("{}={}", percent_encode(n), percent_encode(v)));
            }
        }
    }
    let mut url = format!("{scheme}://{addr}{path}");
    if !query.is_empty() {
        url.push('?');
        url.push_str(&query.join("&"));
    }
    Ok(Some(Target {
        discovered: discovered.clone(),
        full,
        labels,
        url,
        interval,
        timeout,
    }))
}

/// Reads a file discovery file (JSON or YAML list of groups).
pub fn read_sd_file(path: &std::path::Path) -> Result<Vec<TargetGroup>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let name = path.display().to_string();
    let mut groups: Vec<TargetGroup> = if name.ends_with(".json") {
        serde_json::from_str(&text).map_err(|e| format!("{name}: {e}"))?
    } else {
        serde_yaml::from_str(&text).map_err(|e| format!("{name}: {e}"))?
    };
    for g in &mut groups {
        g.source = name.clone();
        g.labels.insert("__meta_filepath".into(), name.clone());
    }
    Ok(groups)
}

/// Expands a file discovery pattern (`*` and `?` in the last path element only, as
/// Prometheus allows) into the matching files, sorted.
pub fn glob_files(pattern: &std::path::Path) -> Vec<std::path::PathBuf> {
    let Some(file) = pattern.file_name().and_then(|f| f.to_str()) else {
        return Vec::new();
    };
    if !file.contains(['*', '?', '[']) {
        return if pattern.exists() {
            vec![pattern.to_path_buf()]
        } else {
            Vec::new()
        };
    }
    let dir = pattern
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| std::path::Path::new("."));
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if let Some(n) = e.file_name().to_str() {
                if wildcard_match(file.as_bytes(), n.as_bytes()) {
                    out.push(e.path());
                }
            }
        }
    }
    out.sort();
    out
}

/// Shell-style matching with `*` and `?`.
pub fn wildcard_match(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        match p.get(pi) {
            Some(b'*') => {
                star = Some((pi, si));
                pi += 1;
            }
            Some(&c) if c == b'?' || Some(&c) == s.get(si) => {
                pi += 1;
                si += 1;
            }
            _ => match star {
                Some((sp, ss)) => {
                    pi = sp + 1;
                    si = ss + 1;
                    star = Some((sp, ss + 1));
                }
                None => return false,
            },
        }
    }
    while p.get(pi) == Some(&b'*') {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn cfg(yaml: &str) -> ScrapeConfig {
        Config::parse(yaml, std::path::Path::new("p.yml"))
            .unwrap()
            .scrape_configs
            .remove(0)
    }

    #[test]
    fn static_target_labels_and_url() {
        let c = cfg("scrape_configs:\n  - job_name: node\n    scrape_interval: 10s\n    params: {module: [a, b]}\n    static_configs:\n      - targets: ['localhost:9100']\n        labels: {env: prod}\n");
        let g = TargetGroup {
            targets: c.static_configs[0].targets.clone(),
            labels: c.static_configs[0].labels.clone(),
            source: "static".into(),
            ..Default::default()
        };
        let (a, d) = targets_from_groups(&c, &[g]);
        assert!(d.is_empty());
        let t = &a[0];
        assert_eq!(
            t.labels,
            Labels::from_pairs(&[
                ("env", "prod"),
                ("instance", "localhost:9100"),
                ("job", "node")
            ])
        );
        assert_eq!(t.url, "http://localhost:9100/metrics?module=a&module=b");
        assert_eq!(t.interval, Duration(10_000));
        assert_eq!(t.discovered.get("__scrape_interval__"), Some("10s"));
    }

    #[test]
    fn relabel_drops_and_rewrites() {
        let c = cfg("scrape_configs:\n  - job_name: j\n    relabel_configs:\n      - source_labels: [__address__]\n        regex: 'drop.*'\n        action: drop\n      - source_labels: [__address__]\n        regex: '(.*):.*'\n        target_label: instance\n      - target_label: __param_target\n        replacement: x y\n");
        let g = TargetGroup {
            targets: vec!["dropme:1".into(), "keep:2".into()],
            ..Default::default()
        };
        let (a, d) = targets_from_groups(&c, &[g]);
        assert_eq!(d.len(), 1);
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].labels.get("instance"), Some("keep"));
        assert_eq!(a[0].url, "http://keep:2/metrics?target=x%20y");
    }

    #[test]
    fn file_discovery_json_and_yaml() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("a.json"),
            r#"[{"targets": ["h1:1", "h2:2"], "labels": {"env": "prod"}}]"#,
        )
        .unwrap();
        std::fs::write(dir.path().join("b.yml"), "- targets: ['h3:3']\n").unwrap();
        std::fs::write(dir.path().join("c.txt"), "ignored").unwrap();
        let files = glob_files(&dir.path().join("*.json"));
        assert_eq!(files.len(), 1);
        let groups = read_sd_file(&files[0]).unwrap();
        assert_eq!(groups[0].targets, vec!["h1:1", "h2:2"]);
        let c = cfg("scrape_configs:\n  - job_name: f\n");
        let (a, _) = targets_from_groups(&c, &groups);
        assert_eq!(a.len(), 2);
        assert_eq!(a[0].labels.get("env"), Some("prod"));
        assert!(a[0]
            .discovered
            .get("__meta_filepath")
            .unwrap()
            .ends_with("a.json"));
        let y = read_sd_file(&dir.path().join("b.yml")).unwrap();
        assert_eq!(y[0].targets, vec!["h3:3"]);
        std::fs::write(
            dir.path().join("bad.json"),
            r#"[{"targets": ["x"], "bogus": 1}]"#,
        )
        .unwrap();
        assert!(read_sd_file(&dir.path().join("bad.json")).is_err());
    }

    #[test]
    fn wildcards() {
        assert!(wildcard_match(b"*.json", b"a.json"));
        assert!(!wildcard_match(b"*.json", b"a.yml"));
        assert!(wildcard_match(b"t?.y*", b"t1.yaml"));
        assert!(wildcard_match(b"*", b""));
    }
}
