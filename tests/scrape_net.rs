//! Scraping over the network as Prometheus's HTTP client does it: `https` targets with
//! certificates made at test time (CA file, `insecure_skip_verify`, an unknown CA, client
//! certificates), HTTP proxies (plain and `CONNECT`), OAuth 2 client credentials, HTTP
//! discovery whose answer changes, and `target_limit`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aion::config::Config;
use aion::db::{Db, DbOptions};
use aion::scrape::{ScrapeManager, TargetsSnapshot};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A request as the test servers see it.
#[derive(Debug, Clone, Default)]
struct Req {
    method: String,
    target: String,
    headers: HashMap<String, String>,
    body: String,
}

type Handler = Arc<dyn Fn(&Req) -> (u16, String, String) + Send + Sync>;

async fn read_head<S: AsyncRead + Unpin>(s: &mut S) -> Option<Vec<u8>> {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read(&mut b).await.ok()? == 0 {
            return None;
        }
        head.push(b[0]);
    }
    Some(head)
}

fn parse_head(head: &[u8]) -> Req {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n");
    let mut first = lines.next().unwrap_or("").split(' ');
    let method = first.next().unwrap_or("").to_string();
    let target = first.next().unwrap_or("").to_string();
    let mut headers = HashMap::new();
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    Req {
        method,
        target,
        headers,
        body: String::new(),
    }
}

async fn serve_conn<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, h: Handler) {
    let Some(head) = read_head(&mut s).await else {
        return;
    };
    let mut req = parse_head(&head);
    let len: usize = req
        .headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    if s.read_exact(&mut body).await.is_err() {
        return;
    }
    req.body = String::from_utf8_lossy(&body).into_owned();
    let (status, ct, body) = h(&req);
    let resp = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: {ct}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = s.write_all(resp.as_bytes()).await;
    let _ = s.shutdown().await;
}

/// An HTTP(S) server on a loopback port answering every request with `h`.
async fn server(tls: Option<Arc<rustls::ServerConfig>>, h: Handler) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = l.accept().await else { return };
            let h = h.clone();
            let tls = tls.clone();
            tokio::spawn(async move {
                match tls {
                    Some(cfg) => {
                        if let Ok(t) = tokio_rustls::TlsAcceptor::from(cfg).accept(s).await {
                            serve_conn(t, h).await;
                        }
                    }
                    None => serve_conn(s, h).await,
                }
            });
        }
    });
    addr
}

fn metrics(value: u32) -> Handler {
    Arc::new(move |_| {
        (
            200,
            "text/plain; version=0.0.4".into(),
            format!("# TYPE test_metric gauge\ntest_metric {value}\n"),
        )
    })
}

/// Counts of what went through the proxy.
#[derive(Default)]
struct ProxyLog {
    plain: AtomicUsize,
    connect: AtomicUsize,
    headers: Mutex<Vec<HashMap<String, String>>>,
    targets: Mutex<Vec<String>>,
}

/// A forwarding HTTP proxy: absolute-form requests are forwarded to their host with the
/// origin form, `CONNECT` opens a tunnel.
async fn proxy(log: Arc<ProxyLog>) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            let log = log.clone();
            tokio::spawn(async move {
                let Some(head) = read_head(&mut s).await else {
                    return;
                };
                let req = parse_head(&head);
                log.headers.lock().unwrap().push(req.headers.clone());
                log.targets.lock().unwrap().push(req.target.clone());
                if req.method == "CONNECT" {
                    log.connect.fetch_add(1, Ordering::SeqCst);
                    let Ok(mut up) = TcpStream::connect(&req.target).await else {
                        let _ = s.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await;
                        return;
                    };
                    let _ = s
                        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                        .await;
                    let _ = tokio::io::copy_bidirectional(&mut s, &mut up).await;
                } else {
                    log.plain.fetch_add(1, Ordering::SeqCst);
                    let rest = req.target.strip_prefix("http://").unwrap_or("");
                    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
                    let Ok(mut up) = TcpStream::connect(host).await else {
                        return;
                    };
                    let text = String::from_utf8_lossy(&head).into_owned();
                    let first = text.split("\r\n").next().unwrap_or("");
                    let fixed = text.replacen(first, &format!("{} {path} HTTP/1.1", req.method), 1);
                    let _ = up.write_all(fixed.as_bytes()).await;
                    let _ = tokio::io::copy_bidirectional(&mut s, &mut up).await;
                }
            });
        }
    });
    addr
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate, as PEM files.
struct Pki {
    dir: tempfile::TempDir,
    ca_cert: CertificateDer<'static>,
    server_chain: Vec<CertificateDer<'static>>,
    server_key: Vec<u8>,
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "aion test CA");
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let srv_key = rcgen::KeyPair::generate().unwrap();
        let srv = rcgen::CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()])
            .unwrap()
            .signed_by(&srv_key, &ca, &ca_key)
            .unwrap();
        let cli_key = rcgen::KeyPair::generate().unwrap();
        let mut cli_params = rcgen::CertificateParams::new(vec!["client".into()]).unwrap();
        cli_params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let cli = cli_params.signed_by(&cli_key, &ca, &ca_key).unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
        std::fs::write(dir.path().join("client.pem"), cli.pem()).unwrap();
        std::fs::write(dir.path().join("client.key"), cli_key.serialize_pem()).unwrap();
        // Another CA, which signed nothing the server presents.
        let other_key = rcgen::KeyPair::generate().unwrap();
        let mut other = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        other.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let other = other.self_signed(&other_key).unwrap();
        std::fs::write(dir.path().join("other-ca.pem"), other.pem()).unwrap();
        Pki {
            dir,
            ca_cert: ca.der().clone(),
            server_chain: vec![srv.der().clone()],
            server_key: srv_key.serialize_der(),
        }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    fn server_config(&self, require_client_cert: bool) -> Arc<rustls::ServerConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let b = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap();
        let b = if require_client_cert {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(self.ca_cert.clone()).unwrap();
            let v = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .unwrap();
            b.with_client_cert_verifier(v)
        } else {
            b.with_no_client_auth()
        };
        let key = PrivateKeyDer::Pkcs8(self.server_key.clone().into());
        Arc::new(b.with_single_cert(self.server_chain.clone(), key).unwrap())
    }
}

struct Harness {
    _dir: tempfile::TempDir,
    mgr: Arc<ScrapeManager>,
    cfg_path: std::path::PathBuf,
}

impl Harness {
    fn new() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(Db::open(dir.path().join("data"), DbOptions::default()).unwrap());
        let cfg_path = dir.path().join("prometheus.yml");
        Harness {
            mgr: ScrapeManager::new(db),
            _dir: dir,
            cfg_path,
        }
    }

    async fn apply(&self, yaml: &str) {
        let cfg = Config::parse(yaml, Path::new(&self.cfg_path)).unwrap();
        self.mgr.apply_config(&cfg).await;
    }

    /// Waits until `f` holds for the targets snapshot.
    async fn wait(&self, what: &str, f: impl Fn(&TargetsSnapshot) -> bool) -> TargetsSnapshot {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let t = self.mgr.targets();
            if f(&t) {
                return t;
            }
            if Instant::now() > deadline {
                panic!("timed out waiting for {what}: {t:#?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits for the job's only target to have been scraped and returns its last error.
    async fn scraped(&self, job: &str) -> String {
        let t = self
            .wait(job, |t| {
                t.active
                    .iter()
                    .any(|a| a.pool == job && a.status.last_scrape_ms > 0)
            })
            .await;
        let a = t.active.iter().find(|a| a.pool == job).unwrap();
        a.status.last_error.clone()
    }
}

fn job(name: &str, addr: impl std::fmt::Display, extra: &str) -> String {
    format!(
        "  - job_name: {name}\n    scrape_interval: 500ms\n    scrape_timeout: 500ms\n    static_configs:\n      - targets: ['{addr}']\n{extra}"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_targets_with_ca_skip_verify_unknown_ca_and_client_certs() {
    let pki = Pki::new();
    let plain = server(Some(pki.server_config(false)), metrics(1)).await;
    let mtls = server(Some(pki.server_config(true)), metrics(2)).await;
    let h = Harness::new();
    let ca = pki.path("ca.pem");
    let mut yaml = "scrape_configs:\n".to_string();
    let https = "    scheme: https\n";
    yaml += &job(
        "ca",
        plain,
        &format!("{https}    tls_config:\n      ca_file: {ca}\n"),
    );
    yaml += &job(
        "skip",
        plain,
        &format!("{https}    tls_config:\n      insecure_skip_verify: true\n"),
    );
    yaml += &job(
        "unknown",
        plain,
        &format!(
            "{https}    tls_config:\n      ca_file: {}\n",
            pki.path("other-ca.pem")
        ),
    );
    yaml += &job(
        "mtls",
        mtls,
        &format!(
            "{https}    tls_config:\n      ca_file: {ca}\n      cert_file: {}\n      key_file: {}\n      server_name: localhost\n      min_version: TLS12\n",
            pki.path("client.pem"),
            pki.path("client.key")
        ),
    );
    yaml += &job(
        "nocert",
        mtls,
        &format!("{https}    tls_config:\n      ca_file: {ca}\n"),
    );
    h.apply(&yaml).await;
    assert_eq!(h.scraped("ca").await, "");
    assert_eq!(h.scraped("skip").await, "");
    assert_eq!(h.scraped("mtls").await, "");
    let e = h.scraped("unknown").await;
    assert_eq!(
        e,
        format!("Get \"https://{plain}/metrics\": tls: failed to verify certificate: x509: certificate signed by unknown authority")
    );
    let e = h.scraped("nocert").await;
    assert!(
        e.starts_with(&format!("Get \"https://{mtls}/metrics\": ")),
        "{e}"
    );
    let t = h.mgr.targets();
    let up = |job: &str| {
        t.active
            .iter()
            .find(|a| a.pool == job)
            .map(|a| a.status.health.as_str())
    };
    assert_eq!(up("ca"), Some("up"));
    assert_eq!(up("unknown"), Some("down"));
    h.mgr.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxies_for_http_and_connect_for_https() {
    let pki = Pki::new();
    let http_target = server(None, metrics(3)).await;
    let direct_target = server(None, metrics(10)).await;
    let https_target = server(Some(pki.server_config(false)), metrics(4)).await;
    let log = Arc::new(ProxyLog::default());
    let p = proxy(log.clone()).await;
    let h = Harness::new();
    let mut yaml = "scrape_configs:\n".to_string();
    yaml += &job(
        "via-proxy",
        http_target,
        &format!("    proxy_url: http://user:pw@{p}\n"),
    );
    yaml += &job(
        "tunnel",
        https_target,
        &format!(
            "    scheme: https\n    proxy_url: http://{p}\n    proxy_connect_header:\n      X-Tunnel: [secret-1]\n    tls_config:\n      ca_file: {}\n",
            pki.path("ca.pem")
        ),
    );
    // no_proxy applies Go's rules: loopback targets bypass the proxy.
    yaml += &job(
        "bypass",
        direct_target,
        &format!("    proxy_url: http://{p}\n    no_proxy: example.com\n"),
    );
    h.apply(&yaml).await;
    assert_eq!(h.scraped("via-proxy").await, "");
    assert_eq!(h.scraped("tunnel").await, "");
    assert_eq!(h.scraped("bypass").await, "");
    assert!(log.plain.load(Ordering::SeqCst) >= 1);
    assert!(log.connect.load(Ordering::SeqCst) >= 1);
    let headers = log.headers.lock().unwrap().clone();
    assert!(headers
        .iter()
        .any(|h| h.get("proxy-authorization").map(String::as_str) == Some("Basic dXNlcjpwdw==")));
    assert!(headers
        .iter()
        .any(|h| h.get("x-tunnel").map(String::as_str) == Some("secret-1")));
    h.mgr.stop().await;
    let targets = log.targets.lock().unwrap().clone();
    assert!(
        targets.contains(&format!("http://{http_target}/metrics")),
        "{targets:?}"
    );
    assert!(targets.contains(&https_target.to_string()), "{targets:?}");
    assert!(
        !targets
            .iter()
            .any(|t| t.contains(&direct_target.to_string())),
        "{targets:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth2_client_credentials_token_is_cached_and_errors_surface() {
    let token_requests = Arc::new(AtomicUsize::new(0));
    let tr = token_requests.clone();
    let token_server = server(
        None,
        Arc::new(move |r: &Req| {
            // "id:s3cret"
            let ok = r.headers.get("authorization").map(String::as_str)
                == Some("Basic aWQ6czNjcmV0")
                && r.body.contains("grant_type=client_credentials")
                && r.body.contains("scope=read+write")
                && r.body.contains("audience=aion");
            if !ok {
                return (
                    401,
                    "application/json".into(),
                    r#"{"error":"invalid_client","error_description":"bad credentials"}"#.into(),
                );
            }
            let n = tr.fetch_add(1, Ordering::SeqCst) + 1;
            (
                200,
                "application/json".into(),
                format!(r#"{{"access_token":"tok-{n}","token_type":"bearer","expires_in":3600}}"#),
            )
        }),
    )
    .await;
    let target = server(
        None,
        Arc::new(|r: &Req| {
            let auth = r.headers.get("authorization").map_or("", String::as_str);
            if auth
                .strip_prefix("Bearer tok-")
                .is_some_and(|n| n.parse::<u32>().is_ok())
            {
                (200, "text/plain".into(), "secured 1\n".into())
            } else {
                (401, "text/plain".into(), "no\n".into())
            }
        }),
    )
    .await;
    let h = Harness::new();
    let secret_file = h.cfg_path.with_file_name("secret");
    std::fs::write(&secret_file, "s3cret\n").unwrap();
    let oauth = |secret: &str| {
        format!(
            "    oauth2:\n      client_id: id\n      {secret}\n      token_url: http://{token_server}/token\n      scopes: [read, write]\n      endpoint_params:\n        audience: aion\n"
        )
    };
    let mut yaml = "scrape_configs:\n".to_string();
    yaml += &job("good", target, &oauth("client_secret: s3cret"));
    yaml += &job(
        "file",
        target,
        &oauth(&format!("client_secret_file: {}", secret_file.display())),
    );
    yaml += &job("bad", target, &oauth("client_secret: wrong"));
    h.apply(&yaml).await;
    assert_eq!(h.scraped("good").await, "");
    let e = h.scraped("bad").await;
    assert_eq!(
        e,
        format!("Get \"http://{target}/metrics\": oauth2: \"invalid_client\" \"bad credentials\"")
    );
    assert_eq!(h.scraped("file").await, "");
    // One token per pool, cached over the following scrapes.
    assert_eq!(token_requests.load(Ordering::SeqCst), 2);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(token_requests.load(Ordering::SeqCst), 2);
    let t = h.mgr.targets();
    for job in ["good", "file"] {
        let a = t.active.iter().find(|a| a.pool == job).unwrap();
        assert_eq!(a.status.last_error, "");
    }
    h.mgr.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_sd_targets_follow_the_answer() {
    let a = server(None, metrics(5)).await;
    let b = server(None, metrics(6)).await;
    let answer = Arc::new(Mutex::new(format!(
        r#"[{{"targets": ["{a}"], "labels": {{"env": "prod"}}}}]"#
    )));
    let ans = answer.clone();
    let seen_headers = Arc::new(Mutex::new(HashMap::new()));
    let sh = seen_headers.clone();
    let sd = server(
        None,
        Arc::new(move |r: &Req| {
            *sh.lock().unwrap() = r.headers.clone();
            if r.headers.get("authorization").map(String::as_str) != Some("Bearer sd-token") {
                return (401, "text/plain".into(), String::new());
            }
            (200, "application/json".into(), ans.lock().unwrap().clone())
        }),
    )
    .await;
    let h = Harness::new();
    let sd_url = format!("http://{sd}/targets");
    let yaml = format!(
        "scrape_configs:\n  - job_name: sd\n    scrape_interval: 500ms\n    scrape_timeout: 500ms\n    http_sd_configs:\n      - url: {sd_url}\n        refresh_interval: 200ms\n        authorization:\n          credentials: sd-token\n"
    );
    h.apply(&yaml).await;
    let t = h
        .wait("first sd answer", |t| {
            t.active.len() == 1 && t.active[0].status.last_scrape_ms > 0
        })
        .await;
    let tg = &t.active[0].target;
    assert_eq!(tg.labels.get("env"), Some("prod"));
    assert_eq!(tg.labels.get("instance"), Some(a.to_string().as_str()));
    assert_eq!(tg.discovered.get("__meta_url"), Some(sd_url.as_str()));
    assert_eq!(t.active[0].status.last_error, "");
    {
        let hd = seen_headers.lock().unwrap();
        assert_eq!(
            hd.get("accept").map(String::as_str),
            Some("application/json")
        );
        assert_eq!(
            hd.get("x-prometheus-refresh-interval-seconds")
                .map(String::as_str),
            Some("0.2")
        );
    }
    *answer.lock().unwrap() = format!(r#"[{{"targets": ["{a}", "{b}"]}}]"#);
    h.wait("two targets", |t| t.active.len() == 2).await;
    *answer.lock().unwrap() = format!(r#"[{{"targets": ["{b}"], "labels": {{"x": "y"}}}}]"#);
    let t = h
        .wait("only b", |t| {
            t.active.len() == 1
                && t.active[0].target.labels.get("instance") == Some(b.to_string().as_str())
        })
        .await;
    assert_eq!(t.active[0].target.labels.get("x"), Some("y"));
    // A bad answer keeps the last good targets.
    *answer.lock().unwrap() = "not json".into();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(h.mgr.targets().active.len(), 1);
    h.mgr.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn target_limit_fails_every_target_of_the_pool() {
    let a = server(None, metrics(7)).await;
    let b = server(None, metrics(8)).await;
    let c = server(None, metrics(9)).await;
    let h = Harness::new();
    let yaml = |limit: u32| {
        format!(
            "scrape_configs:\n  - job_name: lim\n    scrape_interval: 500ms\n    scrape_timeout: 500ms\n    target_limit: {limit}\n    static_configs:\n      - targets: ['{a}', '{b}', '{c}']\n"
        )
    };
    h.apply(&yaml(2)).await;
    let t = h
        .wait("all scraped", |t| {
            t.active.len() == 3 && t.active.iter().all(|x| x.status.last_scrape_ms > 0)
        })
        .await;
    for x in &t.active {
        assert_eq!(x.status.health.as_str(), "down");
        assert_eq!(
            x.status.last_error,
            "target_limit exceeded (number of targets: 3, limit: 2)"
        );
    }
    h.apply(&yaml(3)).await;
    h.wait("all up under the limit", |t| {
        t.active.len() == 3
            && t.active
                .iter()
                .all(|x| x.status.health.as_str() == "up" && x.status.last_error.is_empty())
    })
    .await;
    h.mgr.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifier_posts_to_an_https_alertmanager_with_basic_auth() {
    use aion::notifier::{Alert, AlertmanagerTarget, Notifier, NotifierOptions};
    let pki = Pki::new();
    let got = Arc::new(Mutex::new(Vec::<Req>::new()));
    let g = got.clone();
    let am = server(
        Some(pki.server_config(false)),
        Arc::new(move |r: &Req| {
            g.lock().unwrap().push(r.clone());
            // "am:pw"
            if r.headers.get("authorization").map(String::as_str) == Some("Basic YW06cHc=") {
                (200, "application/json".into(), String::new())
            } else {
                (401, "text/plain".into(), String::new())
            }
        }),
    )
    .await;
    let yaml = format!(
        "alerting:\n  alertmanagers:\n    - scheme: https\n      basic_auth: {{username: am, password: pw}}\n      tls_config: {{ca_file: {}}}\n      static_configs:\n        - targets: ['{am}']\n",
        pki.path("ca.pem")
    );
    let cfg = Config::parse(&yaml, Path::new("prometheus.yml")).unwrap();
    let am_cfg = &cfg.alerting.alertmanagers[0];
    let n = Notifier::new(NotifierOptions::default());
    n.set_alertmanagers(vec![AlertmanagerTarget {
        url: format!("https://{am}/api/v2/alerts"),
        timeout: Duration::from_secs(5),
        alert_relabel: Vec::new(),
        http: am_cfg.http_client(),
    }]);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(n.clone().run(stop_rx));
    n.send(vec![Alert {
        labels: aion::model::Labels::from_pairs(&[("alertname", "TlsAlert")]),
        annotations: aion::model::Labels::empty(),
        starts_at: 1,
        ends_at: 0,
        generator_url: String::new(),
    }]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while got.lock().unwrap().is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = stop_tx.send(true);
    let _ = task.await;
    let reqs = got.lock().unwrap().clone();
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    assert_eq!(reqs[0].method, "POST");
    assert_eq!(reqs[0].target, "/api/v2/alerts");
    assert!(reqs[0].body.contains("TlsAlert"), "{}", reqs[0].body);
    assert_eq!(n.stats.sent.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_write_posts_over_https_with_the_shared_client() {
    use aion::remote::client::{RemoteClient, SendError};
    let pki = Pki::new();
    let got = Arc::new(Mutex::new(Vec::<Req>::new()));
    let g = got.clone();
    let rx = server(
        Some(pki.server_config(true)),
        Arc::new(move |r: &Req| {
            g.lock().unwrap().push(r.clone());
            // "rw:pw"
            if r.headers.get("authorization").map(String::as_str) == Some("Basic cnc6cHc=") {
                (204, "text/plain".into(), String::new())
            } else {
                (401, "text/plain".into(), "unauthorized".into())
            }
        }),
    )
    .await;
    let yaml = format!(
        "remote_write:\n  - url: https://{rx}/api/v1/write\n    headers: {{X-Scope-OrgID: t1}}\n    basic_auth: {{username: rw, password: pw}}\n    tls_config: {{ca_file: {}, cert_file: {}, key_file: {}}}\n",
        pki.path("ca.pem"),
        pki.path("client.pem"),
        pki.path("client.key")
    );
    let cfg = Config::parse(&yaml, Path::new("prometheus.yml")).unwrap();
    let w = &cfg.remote_write[0];
    let mut c = RemoteClient::new(
        &w.url,
        w.http_client(),
        w.headers.clone(),
        Duration::from_secs(5),
    )
    .unwrap();
    c.post(b"body".to_vec(), "write").await.unwrap();
    let reqs = got.lock().unwrap().clone();
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    let h = &reqs[0].headers;
    assert_eq!(reqs[0].method, "POST");
    assert_eq!(reqs[0].target, "/api/v1/write");
    assert_eq!(h["content-encoding"], "snappy");
    assert_eq!(h["content-type"], "application/x-protobuf");
    assert_eq!(h["x-prometheus-remote-write-version"], "0.1.0");
    assert_eq!(h["x-scope-orgid"], "t1");
    assert_eq!(reqs[0].body, "body");

    // Without the client certificate the handshake fails: a network error, retried.
    let yaml = format!(
        "remote_write:\n  - url: https://{rx}/api/v1/write\n    tls_config: {{ca_file: {}}}\n",
        pki.path("ca.pem")
    );
    let cfg = Config::parse(&yaml, Path::new("prometheus.yml")).unwrap();
    let w = &cfg.remote_write[0];
    let mut c = RemoteClient::new(
        &w.url,
        w.http_client(),
        w.headers.clone(),
        Duration::from_secs(5),
    )
    .unwrap();
    let e = c.post(b"body".to_vec(), "write").await.unwrap_err();
    assert!(matches!(e, SendError::Network(_)), "{e:?}");
    assert_eq!(got.lock().unwrap().len(), 1);
}
