//! The HTTP server's security against the real binary: TLS from `--web.config.file`
//! (certificates made at test time), client certificates, basic auth, configured
//! headers, refused admin and lifecycle calls, and HTML-safe rendering.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{enc, free_port, request, try_request, Server};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, SanType,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A CA that signs server and client certificates.
struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

/// PEM certificate and key.
struct Pem {
    cert: String,
    key: String,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::default();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, name);
        let cert = p.self_signed(&key).unwrap();
        Ca { cert, key }
    }

    fn issue(&self, name: &str, server: bool) -> Pem {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(vec![name.to_string()]).unwrap();
        p.distinguished_name.push(DnType::CommonName, name);
        if server {
            p.subject_alt_names
                .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
            p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        } else {
            p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        }
        let cert = p.signed_by(&key, &self.cert, &self.key).unwrap();
        Pem {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }

    fn pem(&self) -> String {
        self.cert.pem()
    }
}

/// A running aion whose readiness is checked with a caller-supplied probe.
struct Proc {
    child: Child,
    addr: String,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(data: &Path, args: &[String]) -> Proc {
    let addr = format!("127.0.0.1:{}", free_port());
    let child = Command::new(env!("CARGO_BIN_EXE_aion"))
        .arg(format!("--web.listen-address={addr}"))
        .arg(format!("--storage.tsdb.path={}", data.display()))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start aion");
    Proc { child, addr }
}

fn wait_until(what: &str, mut probe: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if probe() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what} not reached within 30s");
}

fn root_store(ca_pem: &str) -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    roots
}

fn client_config(
    ca_pem: &str,
    client: Option<&Pem>,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Arc<rustls::ClientConfig> {
    let b = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(versions)
    .unwrap()
    .with_root_certificates(root_store(ca_pem));
    let cfg = match client {
        Some(p) => {
            let chain: Vec<CertificateDer<'static>> =
                CertificateDer::pem_slice_iter(p.cert.as_bytes())
                    .map(Result::unwrap)
                    .collect();
            let key: PrivateKeyDer<'static> =
                PrivateKeyDer::from_pem_slice(p.key.as_bytes()).unwrap();
            b.with_client_auth_cert(chain, key).unwrap()
        }
        None => b.with_no_client_auth(),
    };
    Arc::new(cfg)
}

/// An HTTPS GET; returns (status, body) or the TLS/IO error.
fn https_get(
    addr: &str,
    cfg: Arc<rustls::ClientConfig>,
    path: &str,
    auth: Option<&str>,
) -> std::io::Result<(u16, String)> {
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let conn = rustls::ClientConnection::new(cfg, name).map_err(std::io::Error::other)?;
    let tcp = TcpStream::connect(addr)?;
    tcp.set_read_timeout(Some(Duration::from_secs(20)))?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(a) = auth {
        req.push_str(&format!("Authorization: {a}\r\n"));
    }
    req.push_str("\r\n");
    tls.write_all(req.as_bytes())?;
    let mut out = Vec::new();
    match tls.read_to_end(&mut out) {
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::UnexpectedEof && !out.is_empty() => {}
        Err(e) => return Err(e),
    }
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok((status, text))
}

fn basic(user: &str, pass: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
    )
}

/// A TLS 1.1 ClientHello with no extensions (so no TLS 1.2+ offer).
fn tls11_client_hello() -> Vec<u8> {
    let mut body = vec![0x03, 0x02];
    body.extend_from_slice(&[7u8; 32]);
    body.push(0); // session id
    body.extend_from_slice(&[0x00, 0x04, 0x00, 0x2f, 0x00, 0x35]); // two RSA/CBC suites
    body.extend_from_slice(&[0x01, 0x00]); // null compression
    let mut hs = vec![0x01, 0x00, 0x00, body.len() as u8];
    hs.extend_from_slice(&body);
    let mut rec = vec![0x16, 0x03, 0x01, 0x00, hs.len() as u8];
    rec.extend_from_slice(&hs);
    rec
}

#[test]
fn tls_serves_https_rejects_plain_http_and_old_versions_and_reloads_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("aion test ca");
    let server = ca.issue("localhost", true);
    std::fs::write(dir.path().join("server.crt"), &server.cert).unwrap();
    std::fs::write(dir.path().join("server.key"), &server.key).unwrap();
    let web = dir.path().join("web.yml");
    std::fs::write(
        &web,
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n\
         http_server_config:\n  headers:\n    Strict-Transport-Security: max-age=63072000\n",
    )
    .unwrap();
    let p = spawn(
        &dir.path().join("data"),
        &[format!("--web.config.file={}", web.display())],
    );
    let all = [&rustls::version::TLS13, &rustls::version::TLS12];
    let cfg = client_config(&ca.pem(), None, &all);
    wait_until("HTTPS readiness", || {
        matches!(
            https_get(&p.addr, cfg.clone(), "/-/ready", None),
            Ok((200, _))
        )
    });

    let (st, body) = https_get(&p.addr, cfg.clone(), "/api/v1/query?query=1%2B1", None).unwrap();
    assert_eq!(st, 200, "{body}");
    assert!(body.contains("\"success\""), "{body}");
    assert!(
        body.contains("Strict-Transport-Security: max-age=63072000")
            || body.contains("strict-transport-security: max-age=63072000"),
        "{body}"
    );

    // Plain HTTP on the TLS port: a clean 400, and the server keeps serving.
    match try_request(&p.addr, "GET", "/-/ready", None, &[]) {
        Ok(r) => {
            assert_eq!(r.status, 400, "{}", r.text());
            assert!(r.text().contains("HTTPS server"), "{}", r.text());
        }
        Err(e) => panic!("plain HTTP should get a 400, got {e}"),
    }
    assert_eq!(
        https_get(&p.addr, cfg.clone(), "/-/healthy", None)
            .unwrap()
            .0,
        200
    );

    // TLS 1.2 only client works; a TLS 1.1 client gets an alert, never a ServerHello.
    let cfg12 = client_config(&ca.pem(), None, &[&rustls::version::TLS12]);
    assert_eq!(
        https_get(&p.addr, cfg12, "/-/healthy", None).unwrap().0,
        200
    );
    let mut s = TcpStream::connect(&p.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(&tls11_client_hello()).unwrap();
    let mut first = [0u8; 1];
    match s.read(&mut first) {
        Ok(0) | Err(_) => {}
        Ok(_) => assert_eq!(first[0], 0x15, "expected a TLS alert record"),
    }
    // A client that does not trust the server's CA fails the handshake.
    let other = Ca::new("other ca");
    let untrusting = client_config(&other.pem(), None, &all);
    assert!(https_get(&p.addr, untrusting.clone(), "/-/healthy", None).is_err());

    // A new certificate (from another CA) is served from the next connection on.
    let renewed = other.issue("localhost", true);
    std::fs::write(dir.path().join("server.key"), &renewed.key).unwrap();
    std::fs::write(dir.path().join("server.crt"), &renewed.cert).unwrap();
    assert_eq!(
        https_get(&p.addr, untrusting.clone(), "/-/healthy", None)
            .unwrap()
            .0,
        200
    );
    assert!(https_get(&p.addr, cfg, "/-/healthy", None).is_err());

    // min_version applies from the next connection on: TLS 1.2 clients are turned away.
    std::fs::write(
        &web,
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  \
         min_version: TLS13\n",
    )
    .unwrap();
    let only12 = client_config(&other.pem(), None, &[&rustls::version::TLS12]);
    assert!(https_get(&p.addr, only12, "/-/healthy", None).is_err());
    let r = https_get(&p.addr, untrusting, "/-/healthy", None).unwrap();
    assert_eq!(r.0, 200);
}

#[test]
fn client_certificates_are_required_and_verified_as_configured() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("aion test ca");
    let server = ca.issue("localhost", true);
    let good = ca.issue("good-client", false);
    let rogue = Ca::new("rogue ca").issue("rogue-client", false);
    std::fs::write(dir.path().join("server.crt"), &server.cert).unwrap();
    std::fs::write(dir.path().join("server.key"), &server.key).unwrap();
    std::fs::write(dir.path().join("ca.crt"), ca.pem()).unwrap();
    let web = dir.path().join("web.yml");
    let write_mode = |mode: &str| {
        std::fs::write(
            &web,
            format!(
                "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  \
                 client_ca_file: ca.crt\n  client_auth_type: {mode}\n"
            ),
        )
        .unwrap()
    };
    write_mode("RequireAndVerifyClientCert");
    let p = spawn(
        &dir.path().join("data"),
        &[format!("--web.config.file={}", web.display())],
    );
    let all = [&rustls::version::TLS13, &rustls::version::TLS12];
    let with_good = client_config(&ca.pem(), Some(&good), &all);
    let with_rogue = client_config(&ca.pem(), Some(&rogue), &all);
    let without = client_config(&ca.pem(), None, &all);
    wait_until("HTTPS readiness", || {
        matches!(
            https_get(&p.addr, with_good.clone(), "/-/ready", None),
            Ok((200, _))
        )
    });
    let ok = |cfg: &Arc<rustls::ClientConfig>| {
        matches!(
            https_get(&p.addr, cfg.clone(), "/-/healthy", None),
            Ok((200, _))
        )
    };
    assert!(ok(&with_good));
    assert!(
        !ok(&without),
        "a client without a certificate must be refused"
    );
    assert!(
        !ok(&with_rogue),
        "a certificate from another CA must be refused"
    );
    assert!(ok(&with_good), "still serving after refusals");

    // The file is re-read per connection: switch policies without a restart.
    write_mode("VerifyClientCertIfGiven");
    assert!(ok(&without));
    assert!(ok(&with_good));
    assert!(!ok(&with_rogue));

    write_mode("RequireAnyClientCert");
    assert!(!ok(&without));
    assert!(ok(&with_rogue));

    write_mode("RequestClientCert");
    assert!(ok(&without));
    assert!(ok(&with_rogue));
}

#[test]
fn invalid_web_config_stops_start_up_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let web = dir.path().join("web.yml");
    std::fs::write(
        &web,
        "tls_server_config:\n  cert_file: missing.crt\n  key_file: k\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_aion"))
        .arg(format!("--web.listen-address=127.0.0.1:{}", free_port()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("d").display()
        ))
        .arg(format!("--web.config.file={}", web.display()))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("error loading web config file") && err.contains("missing.crt"),
        "{err}"
    );

    // `aion check web-config` reports both outcomes.
    let good = dir.path().join("good.yml");
    std::fs::write(
        &good,
        "http_server_config:\n  headers:\n    X-Frame-Options: deny\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_aion"))
        .args(["check", "web-config"])
        .arg(&good)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("good.yml SUCCESS"));
    let out = Command::new(env!("CARGO_BIN_EXE_aion"))
        .args(["check", "web-config"])
        .arg(&web)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("web.yml FAILED: cannot read cert_file"));
}

#[test]
fn basic_auth_guards_every_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    // Cost 4 keeps the test quick; the server accepts any valid cost.
    let hash = bcrypt::hash("s3cret", 4).unwrap();
    let web = dir.path().join("web.yml");
    std::fs::write(
        &web,
        format!("basic_auth_users:\n  alice: {hash}\n  bob: {hash}\n"),
    )
    .unwrap();
    let p = spawn(
        &dir.path().join("data"),
        &[
            format!("--web.config.file={}", web.display()),
            "--web.enable-lifecycle".to_string(),
        ],
    );
    let right = basic("alice", "s3cret");
    let get = |path: &str, auth: Option<&str>| {
        let h: Vec<(&str, &str)> = auth.map(|a| ("Authorization", a)).into_iter().collect();
        request(&p.addr, "GET", path, None, &h)
    };
    wait_until("readiness", || {
        try_request(
            &p.addr,
            "GET",
            "/-/ready",
            None,
            &[("Authorization", &right)],
        )
        .is_ok_and(|r| r.status == 200)
    });

    for path in [
        "/api/v1/query?query=1",
        "/metrics",
        "/-/healthy",
        "/",
        "/graph",
        "/assets/app.js",
        "/api/v1/status/config",
        "/no/such/page",
    ] {
        let r = get(path, None);
        assert_eq!(r.status, 401, "{path} without credentials");
        assert_eq!(r.header("WWW-Authenticate"), Some("Basic"), "{path}");
    }
    let r = request(&p.addr, "POST", "/-/reload", Some(b""), &[]);
    assert_eq!(r.status, 401, "lifecycle without credentials");

    assert_eq!(get("/api/v1/query?query=1", Some(&right)).status, 200);
    assert_eq!(get("/metrics", Some(&right)).status, 200);
    let wrong = basic("alice", "s3cret!");
    assert_eq!(get("/api/v1/query?query=1", Some(&wrong)).status, 401);
    assert_eq!(
        get("/api/v1/query?query=1", Some(&basic("mallory", "s3cret"))).status,
        401
    );
    assert_eq!(
        get("/api/v1/query?query=1", Some(&basic("alice", ""))).status,
        401
    );
    assert_eq!(
        get("/api/v1/query?query=1", Some("Basic !!!notbase64")).status,
        401
    );
    // A wrong password neither locks out nor poisons the right one.
    assert_eq!(get("/api/v1/query?query=1", Some(&right)).status, 200);
    assert_eq!(get("/api/v1/query?query=1", Some(&wrong)).status, 401);
    assert_eq!(
        get("/api/v1/query?query=1", Some(&basic("bob", "s3cret"))).status,
        200
    );

    // A changed password applies at once; the old one (cached as a success) stops working.
    let hash2 = bcrypt::hash("n3w", 4).unwrap();
    std::fs::write(&web, format!("basic_auth_users:\n  alice: {hash2}\n")).unwrap();
    assert_eq!(get("/api/v1/query?query=1", Some(&right)).status, 401);
    assert_eq!(
        get("/api/v1/query?query=1", Some(&basic("alice", "n3w"))).status,
        200
    );
    assert_eq!(
        get("/api/v1/query?query=1", Some(&basic("bob", "s3cret"))).status,
        401
    );

    // A broken file fails closed.
    std::fs::write(&web, "basic_auth_users: [\n").unwrap();
    assert_eq!(
        get("/api/v1/query?query=1", Some(&basic("alice", "n3w"))).status,
        500
    );
}

#[test]
fn admin_and_lifecycle_are_refused_without_their_flags() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]);
    for action in ["delete_series?match[]=up", "clean_tombstones", "snapshot"] {
        let r = s.post_form(&format!("/api/v1/admin/tsdb/{action}"), "");
        // Prometheus answers `unavailable` through respondError's default branch: 500.
        assert_eq!(r.status, 500, "{action}: {}", r.text());
        let j = r.json();
        assert_eq!(j["status"], "error");
        assert_eq!(j["errorType"], "unavailable");
        assert_eq!(j["error"], "admin APIs disabled");
    }
    for path in ["/-/reload", "/-/quit"] {
        let r = s.post_form(path, "");
        assert_eq!(r.status, 403, "{path}");
        assert_eq!(r.text(), "Lifecycle API is not enabled.");
    }
    // Still running after the refused quit.
    assert_eq!(s.get("/-/healthy").status, 200);
    assert!(!dir.path().join("snapshots").exists());
}

#[test]
fn markup_in_labels_and_urls_is_never_rendered_as_html_and_nothing_redirects() {
    let dir = tempfile::tempdir().unwrap();
    let evil = "<script>alert(1)</script>";
    {
        let db = aion::db::Db::open(dir.path(), aion::db::DbOptions::default()).unwrap();
        let mut app = db.appender();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        let labels =
            aion::model::Labels::from_pairs(&[("__name__", "xss_test"), ("payload", evil)]);
        app.append(&labels, now, 1.0).unwrap();
        app.commit().unwrap();
        db.close().unwrap();
    }
    let s = Server::start(dir.path(), &[]);
    for path in [
        "/api/v1/series?match[]=xss_test".to_string(),
        "/api/v1/label/payload/values".to_string(),
        format!("/api/v1/query?query={}", enc("xss_test")),
        format!("/api/v1/query?query={}", enc(evil)),
        format!(
            "/api/v1/query?query={}",
            enc(&format!(
                "label_replace(vector(1), \"a\", \"{evil}\", \"\", \"\")"
            ))
        ),
    ] {
        let r = s.get(&path);
        let body = r.text();
        assert!(!body.contains("<script"), "{path}: {body}");
        assert_eq!(r.header("Content-Type"), Some("application/json"), "{path}");
    }
    let r = s.get("/api/v1/label/payload/values");
    assert_eq!(r.json()["data"][0], evil, "the value itself is intact");

    // UI pages are a fixed shell: nothing from the URL is reflected, and nothing redirects.
    let shell = s.get("/graph").text();
    for path in [
        format!("/graph?g0.expr={}", enc(evil)),
        format!("/?next={}", enc("http://evil.example/")),
        "/query?x=%3Cscript%3E".to_string(),
        "//evil.example/".to_string(),
        "/targets?search=%22%3E%3Cimg%20src=x%3E".to_string(),
    ] {
        let r = s.get(&path);
        assert!(r.status < 300 || r.status >= 400, "{path} redirected");
        assert!(r.header("Location").is_none(), "{path}");
        if r.status == 200 {
            assert_eq!(r.text(), shell, "{path}");
            assert!(r.header("Content-Security-Policy").is_some());
        }
    }
    assert_eq!(s.get("/").status, 200);
    // The UI script builds the DOM from text only.
    let js = s.get("/assets/app.js").text();
    for sink in [
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
    ] {
        assert!(!js.contains(sink), "app.js uses {sink}");
    }
}

/// `aion check web-config` and Debian's `promtool check web-config` agree on which files
/// are valid.
#[test]
fn check_web_config_verdicts_match_promtool() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("aion test ca");
    let server = ca.issue("localhost", true);
    std::fs::write(dir.path().join("s.crt"), &server.cert).unwrap();
    std::fs::write(dir.path().join("s.key"), &server.key).unwrap();
    std::fs::write(dir.path().join("ca.crt"), ca.pem()).unwrap();
    let hash = bcrypt::hash("pw", 4).unwrap();
    let tls = "tls_server_config:\n  cert_file: s.crt\n  key_file: s.key\n";
    let cases: Vec<(&str, String, bool)> = vec![
        ("empty", String::new(), true),
        ("tls", tls.to_string(), true),
        (
            "mtls",
            format!(
                "{tls}  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n"
            ),
            true,
        ),
        (
            "users",
            format!("basic_auth_users:\n  alice: {hash}\n"),
            true,
        ),
        (
            "headers",
            "http_server_config:\n  headers:\n    X-Content-Type-Options: nosniff\n".into(),
            true,
        ),
        (
            "typo",
            "tls_server_config:\n  cert_fil: s.crt\n".into(),
            false,
        ),
        (
            "nokey",
            "tls_server_config:\n  cert_file: s.crt\n".into(),
            false,
        ),
        (
            "nofile",
            "tls_server_config:\n  cert_file: x.crt\n  key_file: s.key\n".into(),
            false,
        ),
        (
            "badhash",
            "basic_auth_users:\n  alice: secret\n".into(),
            false,
        ),
        (
            "badauth",
            format!("{tls}  client_auth_type: Sometimes\n"),
            false,
        ),
        ("caonly", format!("{tls}  client_ca_file: ca.crt\n"), false),
        (
            "badheader",
            "http_server_config:\n  headers:\n    X-Frame-Options: allow\n".into(),
            false,
        ),
        ("badversion", format!("{tls}  min_version: TLS99\n"), false),
    ];
    let promtool = Command::new("sh")
        .args(["-c", "command -v promtool"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    if promtool.is_none() {
        println!("SKIP: promtool not installed; checking Aion's verdicts only");
    }
    for (name, text, valid) in cases {
        let f = dir.path().join(format!("{name}.yml"));
        std::fs::write(&f, text).unwrap();
        let aion = Command::new(env!("CARGO_BIN_EXE_aion"))
            .args(["check", "web-config"])
            .arg(&f)
            .output()
            .unwrap();
        assert_eq!(
            aion.status.success(),
            valid,
            "{name}: {}",
            String::from_utf8_lossy(&aion.stderr)
        );
        if let Some(p) = &promtool {
            let out = Command::new(p)
                .args(["check", "web-config"])
                .arg(&f)
                .output()
                .unwrap();
            assert_eq!(out.status.success(), valid, "promtool disagrees on {name}");
        }
    }
}
