use std::path::Path;

use super::relabel::{md5, process};
use super::*;

fn parse(s: &str) -> Result<Config, ConfigError> {
    Config::parse(s, Path::new("prometheus.yml"))
}

#[test]
fn seed_guide_config_loads_with_defaults() {
    let text = include_str!("../../tests/testdata/config/seed-prometheus.yml");
    let c = parse(text).unwrap();
    assert_eq!(c.global.scrape_interval, Duration(15_000));
    assert_eq!(c.global.evaluation_interval, Duration(15_000));
    assert_eq!(c.global.scrape_timeout, Duration(10_000));
    assert_eq!(c.rule_files, vec!["alert_rules.yml".to_string()]);
    assert_eq!(c.scrape_configs.len(), 5);
    let a = &c.scrape_configs[0];
    assert_eq!(a.job_name, "tracktion-analysis");
    assert_eq!(a.interval(), Duration(10_000));
    assert_eq!(a.timeout(), Duration(10_000));
    assert_eq!(a.metrics_path, "/metrics");
    assert_eq!(a.scheme, "http");
    assert!(a.honor_timestamps);
    assert!(!a.honor_labels);
    assert_eq!(c.scrape_configs[1].interval(), Duration(15_000));
    assert_eq!(c.alerting.alertmanagers.len(), 1);
    let am = &c.alerting.alertmanagers[0];
    assert_eq!(am.static_configs[0].targets, vec!["alertmanager:9093"]);
    assert_eq!(am.api_version, "v2");
    assert_eq!(am.timeout, Duration(10_000));
}

#[test]
fn empty_config_is_defaults() {
    let c = parse("").unwrap();
    assert_eq!(c.global.scrape_interval, Duration(60_000));
    assert_eq!(c.global.evaluation_interval, Duration(60_000));
    assert!(c.scrape_configs.is_empty());
}

#[test]
fn unknown_field_names_file_line_and_type() {
    let text = "global:\n  scrape_interval: 15s\nscrape_configs:\n  - job_name: a\n    foo: 1\n";
    let e = parse(text).unwrap_err().to_string();
    assert_eq!(
        e,
        "parsing YAML file prometheus.yml: yaml: unmarshal errors:\n  line 5: field foo not found in type config.ScrapeConfig"
    );
    let e = parse("globl:\n  a: 1\n").unwrap_err().to_string();
    assert!(
        e.contains("line 1: field globl not found in type config.Config"),
        "{e}"
    );
    let e = parse("global:\n  scrape_intervl: 1s\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("line 2: field scrape_intervl not found in type config.GlobalConfig"),
        "{e}"
    );
    let text = "scrape_configs:\n  - job_name: a\n    relabel_configs:\n      - action: keep\n        regexp: x\n";
    let e = parse(text).unwrap_err().to_string();
    assert!(
        e.contains("line 5: field regexp not found in type relabel.Config"),
        "{e}"
    );
}

#[test]
fn wrong_type_names_line_and_field() {
    let text = "scrape_configs:\n  - job_name: a\n    sample_limit: lots\n";
    let e = parse(text).unwrap_err().to_string();
    assert!(
        e.starts_with("parsing YAML file prometheus.yml: yaml: unmarshal errors:\n  line 3: "),
        "{e}"
    );
    assert!(e.contains("sample_limit"), "{e}");
    let e = parse("global:\n  scrape_interval: 15x\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("line 2"), "{e}");
    assert!(e.contains("not a valid duration string: \"15x\""), "{e}");
}

#[test]
fn validation_errors() {
    let e = parse(
        "scrape_configs:\n  - job_name: a\n    scrape_interval: 5s\n    scrape_timeout: 10s\n",
    )
    .unwrap_err()
    .to_string();
    assert_eq!(e, "parsing YAML file prometheus.yml: scrape timeout greater than scrape interval for scrape config with job name \"a\"");
    let e = parse("scrape_configs:\n  - job_name: a\n  - job_name: a\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.ends_with("found multiple scrape configs with job name \"a\""),
        "{e}"
    );
    let e = parse("scrape_configs:\n  - job_name: a\n    relabel_configs:\n      - action: hashmod\n        target_label: x\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("relabel configuration for hashmod requires non-zero modulus"),
        "{e}"
    );
    let e =
        parse("scrape_configs:\n  - job_name: a\n    relabel_configs:\n      - action: bogus\n")
            .unwrap_err()
            .to_string();
    assert!(e.contains("unknown relabel action \"bogus\""), "{e}");
    let e = parse("alerting:\n  alertmanagers:\n    - api_version: v1\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("expected Alertmanager api version to be one of [v2] but got v1"),
        "{e}"
    );
}

#[test]
fn global_timeout_defaults_to_a_shorter_interval() {
    let c = parse("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: a\n").unwrap();
    assert_eq!(c.global.scrape_timeout, Duration(1_000));
    assert_eq!(c.scrape_configs[0].timeout(), Duration(1_000));
    let c = parse("global:\n  scrape_interval: 30s\n").unwrap();
    assert_eq!(c.global.scrape_timeout, Duration(10_000));
    let e = parse("global:\n  scrape_interval: 1s\n  scrape_timeout: 2s\n").unwrap_err();
    assert!(e
        .to_string()
        .ends_with("global scrape timeout greater than scrape interval"));
}

#[test]
fn timeout_defaults_to_interval_when_global_is_larger() {
    let c = parse("scrape_configs:\n  - job_name: a\n    scrape_interval: 5s\n").unwrap();
    assert_eq!(c.scrape_configs[0].timeout(), Duration(5_000));
}

#[test]
fn http_and_limits_fields() {
    let text = r#"
global:
  external_labels: {region: eu}
  body_size_limit: 10MB
scrape_configs:
  - job_name: a
    bearer_token: s3cret
    params: {module: [http_2xx]}
    sample_limit: 100
    file_sd_configs:
      - files: [targets/*.json]
  - job_name: b
    basic_auth: {username: u, password: p}
    tls_config: {insecure_skip_verify: true}
"#;
    let c = parse(text).unwrap();
    assert_eq!(c.global.external_labels().get("region"), Some("eu"));
    let a = &c.scrape_configs[0];
    assert_eq!(a.body_size_limit, Some(ByteSize(10 << 20)));
    assert_eq!(a.sample_limit, Some(100));
    let auth = a.http_client().authorization.unwrap();
    assert_eq!(auth.kind.as_deref(), Some("Bearer"));
    assert_eq!(auth.credentials, Some(Secret("s3cret".into())));
    assert_eq!(a.file_sd_configs[0].refresh_interval, Duration(300_000));
    assert!(format!("{a:?}").contains("<secret>"));
    assert!(!format!("{a:?}").contains("s3cret"));
    let b = &c.scrape_configs[1];
    assert_eq!(b.basic_auth.as_ref().unwrap().username, "u");
    assert!(b.tls_config.insecure_skip_verify);
}

#[test]
fn md5_known_vectors() {
    let hex = |d: [u8; 16]| d.iter().map(|b| format!("{b:02x}")).collect::<String>();
    assert_eq!(hex(md5(b"")), "d41d8cd98f00b204e9800998ecf8427e");
    assert_eq!(hex(md5(b"abc")), "900150983cd24fb0d6963f7d28e17f72");
    assert_eq!(
        hex(md5(
            b"12345678901234567890123456789012345678901234567890123456789012345678901234567890"
        )),
        "57edf4a22be3c955ac49da2e2107b67a"
    );
}

fn rules(yaml: &str) -> Vec<RelabelConfig> {
    let rs: Vec<RelabelConfig> = serde_yaml::from_str(yaml).unwrap();
    for r in &rs {
        r.validate().unwrap();
    }
    rs
}

fn ls(p: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(p)
}

#[test]
fn relabel_actions() {
    let base = ls(&[("a", "foo"), ("b", "bar"), ("c", "baz")]);
    // replace with groups and separator
    let r = rules("- source_labels: [a, b]\n  regex: 'f(.*);(.*)r'\n  target_label: d\n  replacement: '${1}-$2'\n");
    assert_eq!(process(&base, &r).unwrap().get("d"), Some("oo-ba"));
    // replace that does not match changes nothing
    let r = rules("- source_labels: [a]\n  regex: 'nomatch'\n  target_label: d\n");
    assert_eq!(process(&base, &r).unwrap(), base);
    // empty replacement deletes the target
    let r = rules("- source_labels: [a]\n  target_label: b\n  replacement: ''\n");
    assert_eq!(process(&base, &r).unwrap().get("b"), None);
    // regex is anchored
    let r = rules("- source_labels: [a]\n  regex: 'o+'\n  action: keep\n");
    assert!(process(&base, &r).is_none());
    let r = rules("- source_labels: [a]\n  regex: 'fo+'\n  action: keep\n");
    assert!(process(&base, &r).is_some());
    let r = rules("- source_labels: [a]\n  regex: 'fo+'\n  action: drop\n");
    assert!(process(&base, &r).is_none());
    // keepequal / dropequal
    let l = ls(&[("a", "x"), ("b", "x")]);
    let r = rules("- source_labels: [a]\n  target_label: b\n  action: keepequal\n");
    assert!(process(&l, &r).is_some());
    assert!(process(&base, &r).is_none());
    let r = rules("- source_labels: [a]\n  target_label: b\n  action: dropequal\n");
    assert!(process(&l, &r).is_none());
    assert!(process(&base, &r).is_some());
    // lowercase / uppercase
    let l = ls(&[("a", "MiXeD")]);
    let r = rules("- source_labels: [a]\n  target_label: lo\n  action: lowercase\n- source_labels: [a]\n  target_label: up\n  action: UpperCase\n");
    let out = process(&l, &r).unwrap();
    assert_eq!(out.get("lo"), Some("mixed"));
    assert_eq!(out.get("up"), Some("MIXED"));
    // labelmap
    let l = ls(&[
        ("__meta_x_team", "t1"),
        ("__meta_x_env", "prod"),
        ("job", "j"),
    ]);
    let r = rules("- regex: '__meta_x_(.+)'\n  action: labelmap\n");
    let out = process(&l, &r).unwrap();
    assert_eq!(out.get("team"), Some("t1"));
    assert_eq!(out.get("env"), Some("prod"));
    assert_eq!(out.get("__meta_x_team"), Some("t1"));
    // labeldrop / labelkeep
    let r = rules("- regex: '__meta_.*'\n  action: labeldrop\n");
    assert_eq!(process(&l, &r).unwrap(), ls(&[("job", "j")]));
    let r = rules("- regex: 'job'\n  action: labelkeep\n");
    assert_eq!(process(&l, &r).unwrap(), ls(&[("job", "j")]));
}

#[test]
fn hashmod_matches_prometheus() {
    // Prometheus's relabelling tests: c="baz", modulus 1000 gives d="976".
    let l = ls(&[("a", "foo"), ("b", "bar"), ("c", "baz")]);
    let r = rules("- source_labels: [c]\n  target_label: d\n  modulus: 1000\n  action: hashmod\n");
    assert_eq!(process(&l, &r).unwrap().get("d"), Some("976"));
}

#[test]
fn relabel_field_checks() {
    let r: Vec<RelabelConfig> =
        serde_yaml::from_str("- action: labeldrop\n  regex: x\n  target_label: y\n").unwrap();
    assert!(r[0]
        .validate()
        .unwrap_err()
        .contains("requires only 'regex'"));
    let r: Vec<RelabelConfig> =
        serde_yaml::from_str("- action: keepequal\n  target_label: y\n  regex: z\n").unwrap();
    assert!(r[0].validate().is_err());
    let r: Vec<RelabelConfig> = serde_yaml::from_str("- action: replace\n").unwrap();
    assert!(r[0]
        .validate()
        .unwrap_err()
        .contains("requires 'target_label'"));
}

#[test]
fn tls_proxy_oauth2_and_http_sd_fields() {
    let text = r#"
scrape_configs:
  - job_name: a
    scheme: https
    proxy_url: http://proxy:3128
    no_proxy: localhost,10.0.0.0/8
    proxy_connect_header:
      X-A: [s1, s2]
    tls_config:
      ca_file: ca.pem
      cert_file: c.pem
      key_file: c.key
      server_name: example
      min_version: TLS12
    oauth2:
      client_id: id
      client_secret_file: secret
      token_url: https://auth/token
      scopes: [a, b]
      endpoint_params: {aud: x}
      tls_config: {insecure_skip_verify: true}
    http_sd_configs:
      - url: https://sd/targets
        basic_auth: {username: u, password: p}
"#;
    let c = parse(text).unwrap();
    let a = &c.scrape_configs[0];
    let h = a.http_client();
    assert_eq!(h.proxy.proxy_url.as_deref(), Some("http://proxy:3128"));
    assert_eq!(h.proxy.proxy_connect_header["X-A"].len(), 2);
    assert_eq!(h.tls_config.min_version, Some(TlsVersion::Tls12));
    let o = h.oauth2.unwrap();
    assert_eq!(o.scopes, vec!["a", "b"]);
    assert!(o.tls_config.insecure_skip_verify);
    assert_eq!(a.http_sd_configs[0].refresh_interval, Duration(60_000));
    assert!(a.http_sd_configs[0].basic_auth.is_some());
}

#[test]
fn tls_proxy_oauth2_and_http_sd_errors() {
    let job = |extra: &str| format!("scrape_configs:\n  - job_name: a\n{extra}");
    let cases = [
        (
            "    tls_config:\n      min_version: TLS99\n",
            "line 4: scrape_configs[0].tls_config: unknown TLS version: TLS99",
        ),
        (
            "    tls_config:\n      cert_file: c.pem\n",
            "exactly one of key or key_file must be configured when a client certificate is configured",
        ),
        (
            "    tls_config:\n      ca: x\n      ca_file: y\n",
            "at most one of ca and ca_file must be configured",
        ),
        (
            "    no_proxy: localhost\n",
            "if no_proxy is configured, proxy_url must also be configured",
        ),
        (
            "    proxy_url: http://p:1\n    proxy_from_environment: true\n",
            "if proxy_from_environment is configured, proxy_url must not be configured",
        ),
        (
            "    proxy_connect_header:\n      X: [y]\n",
            "if proxy_connect_header is configured, proxy_url or proxy_from_environment must also be configured",
        ),
        (
            "    proxy_url: socks5://p:1\n",
            "unsupported proxy scheme \"socks5\"",
        ),
        (
            "    oauth2:\n      client_id: x\n",
            "oauth2 token_url must be configured",
        ),
        (
            "    oauth2:\n      token_url: http://t\n",
            "oauth2 client_id must be configured",
        ),
        (
            "    oauth2:\n      client_id: x\n      token_url: http://t\n    basic_auth: {username: u}\n",
            "at most one of basic_auth, oauth2 & authorization must be configured",
        ),
        (
            "    oauth2:\n      client_id: x\n      token_url: http://t\n      scope: [a]\n",
            "line 6: field scope not found in type config.OAuth2",
        ),
        (
            "    http_sd_configs:\n      - url: ftp://x\n",
            "URL scheme must be 'http' or 'https'",
        ),
        ("    http_sd_configs:\n      - {}\n", "URL is missing"),
        (
            "    dns_sd_configs:\n      - names: [a]\n        type: TXT\n",
            "line 4: scrape_configs[0].dns_sd_configs[0]: invalid DNS-SD records type TXT",
        ),
        (
            "    dns_sd_configs:\n      - names: [a]\n        type: A\n",
            "a port is required in DNS-SD configs for all record types except SRV",
        ),
        (
            "    dns_sd_configs:\n      - {}\n",
            "DNS-SD config must contain at least one SRV record name",
        ),
        (
            "    dns_sd_configs:\n      - names: [a]\n        ports: 1\n",
            "line 5: field ports not found in type dns.SDConfig",
        ),
        (
            "    http_sd_configs:\n      - url: http://x\n        refresh: 1s\n",
            "line 5: field refresh not found in type http.SDConfig",
        ),
    ];
    for (extra, want) in cases {
        let e = parse(&job(extra)).unwrap_err().to_string();
        assert!(e.contains(want), "{extra}: {e}");
        assert!(e.starts_with("parsing YAML file prometheus.yml: "), "{e}");
    }
}

#[test]
fn remote_write_and_read_defaults_and_fields() {
    let text = "global:\n  external_labels: {dc: x}\nremote_write:\n  - url: http://r:9201/write\n    name: lts\n    headers: {X-Scope-OrgID: t1}\n    bearer_token_file: /tmp/tok\n    write_relabel_configs:\n      - source_labels: [__name__]\n        regex: up\n        action: keep\n    queue_config:\n      max_shards: 8\n      retry_on_http_429: true\n    metadata_config:\n      send: false\n  - url: https://other/api/v1/write\n    basic_auth: {username: u, password: p}\n    tls_config: {insecure_skip_verify: true}\nremote_read:\n  - url: http://r:9201/read\n    read_recent: true\n    required_matchers: {env: prod}\n";
    let c = parse(text).unwrap();
    assert_eq!(c.remote_write.len(), 2);
    let w = &c.remote_write[0];
    assert_eq!(w.name, "lts");
    assert_eq!(w.remote_name(), "lts");
    assert_eq!(w.remote_timeout, Duration(30_000));
    assert_eq!(
        w.headers.get("X-Scope-OrgID").map(String::as_str),
        Some("t1")
    );
    let q = &w.queue_config;
    assert_eq!(
        (
            q.capacity,
            q.max_shards,
            q.min_shards,
            q.max_samples_per_send
        ),
        (10_000, 8, 1, 2_000)
    );
    assert_eq!(q.batch_send_deadline, Duration(5_000));
    assert_eq!(
        (q.min_backoff, q.max_backoff),
        (Duration(30), Duration(5_000))
    );
    assert!(q.retry_on_http_429);
    assert!(!w.metadata_config.send);
    assert_eq!(w.metadata_config.send_interval, Duration(60_000));
    let auth = w.http_client().authorization.unwrap();
    assert_eq!(auth.credentials_file.as_deref(), Some("/tmp/tok"));
    assert_eq!(w.write_relabel_configs.len(), 1);
    let w2 = &c.remote_write[1];
    assert!(w2.tls_config.insecure_skip_verify);
    assert_eq!(w2.remote_name().len(), 6);
    assert!(w2.metadata_config.send);
    let r = &c.remote_read[0];
    assert_eq!(r.remote_timeout, Duration(60_000));
    assert!(r.read_recent);
    assert!(r.filter_external_labels);
    assert_eq!(
        r.required_matchers.get("env").map(String::as_str),
        Some("prod")
    );
}

#[test]
fn remote_config_errors() {
    let bad = |t: &str| parse(t).unwrap_err().to_string();
    let e = bad("remote_write:\n  - url: http://a/w\n    queue_confg: {}\n");
    assert!(
        e.contains("line 3: field queue_confg not found in type config.RemoteWriteConfig"),
        "{e}"
    );
    let e = bad("remote_write:\n  - url: http://a/w\n    queue_config:\n      max_shard: 1\n");
    assert!(
        e.contains("field max_shard not found in type config.QueueConfig"),
        "{e}"
    );
    let e = bad("remote_write:\n  - url: http://a/w\n  - url: http://a/w\n");
    assert!(e.contains("duplicate remote write configs"), "{e}");
    let e =
        bad("remote_write:\n  - url: http://a/w\n    name: x\n  - url: http://b/w\n    name: x\n");
    assert!(e.contains("multiple remote write configs"), "{e}");
    let e = bad("remote_write:\n  - url: ftp://a/w\n");
    assert!(e.contains("scheme"), "{e}");
    let e = bad("remote_write:\n  - url: http://a/w\n    headers: {Content-Type: x}\n");
    assert!(e.contains("reserved header"), "{e}");
    let e =
        bad("remote_write:\n  - url: http://a/w\n    bearer_token: a\n    bearer_token_file: b\n");
    assert!(e.contains("at most one of bearer_token"), "{e}");
    let e = bad(
        "remote_write:\n  - url: http://a/w\n    queue_config: {min_shards: 5, max_shards: 2}\n",
    );
    assert!(e.contains("max_shards"), "{e}");
    let e = bad("remote_read:\n  - url: http://a/r\n    read_recnt: true\n");
    assert!(
        e.contains("field read_recnt not found in type config.RemoteReadConfig"),
        "{e}"
    );
    let e = bad(
        "remote_write:\n  - url: http://a/w\n    write_relabel_configs:\n      - action: bogus\n",
    );
    assert!(e.contains("unknown relabel action"), "{e}");
}
