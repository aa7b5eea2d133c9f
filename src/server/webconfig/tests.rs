use std::path::Path;

use super::*;

fn parse(s: &str) -> Result<WebConfig, WebConfigError> {
    WebConfig::parse(s, Path::new("/etc/aion"))
}

fn err(s: &str) -> String {
    parse(s).unwrap_err().to_string()
}

const HASH: &str = "$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi";

#[test]
fn empty_file_is_plain_http_without_auth() {
    let c = parse("").unwrap();
    assert!(c.tls.is_none() && c.users.is_empty() && c.headers.is_empty());
    let c = parse("# nothing\n").unwrap();
    assert!(c.tls.is_none());
}

#[test]
fn full_tls_section_parses_with_paths_relative_to_the_file() {
    let c = parse(&format!(
        "tls_server_config:\n  cert_file: server.crt\n  key_file: /abs/server.key\n  \
         client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n  \
         min_version: TLS13\n  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]\n  \
         curve_preferences: [X25519, CurveP256]\n\
         http_server_config:\n  headers:\n    X-Frame-Options: deny\n\
         basic_auth_users:\n  alice: {HASH}\n"
    ))
    .unwrap();
    let t = c.tls.unwrap();
    assert_eq!(t.cert, PemSource::File("/etc/aion/server.crt".into()));
    assert_eq!(t.key, PemSource::File("/abs/server.key".into()));
    assert_eq!(
        t.client_ca,
        Some(PemSource::File("/etc/aion/ca.crt".into()))
    );
    assert_eq!(t.client_auth, ClientAuth::RequireAndVerifyClientCert);
    assert_eq!(t.min_version, TlsVersion::Tls13);
    assert_eq!(t.max_version, TlsVersion::Tls13);
    assert_eq!(c.headers.len(), 1);
    assert!(c.users.contains_key("alice"));
}

#[test]
fn strict_yaml_names_the_line_and_field() {
    let e = err("tls_server_config:\n  cert_fil: x\n");
    assert_eq!(
        e,
        "yaml: unmarshal errors:\n  line 2: field cert_fil not found in type web.TLSConfig"
    );
    let e = err("basic_auth: {}\n");
    assert!(
        e.contains("field basic_auth not found in type web.Config"),
        "{e}"
    );
    let e = err("basic_auth_users: [a]\n");
    assert!(e.starts_with("yaml:"), "{e}");
}

#[test]
fn invalid_settings_are_reported_like_prometheus() {
    assert_eq!(
        err("tls_server_config:\n  cert_file: a\n"),
        "missing one of key or key_file"
    );
    assert_eq!(
        err("tls_server_config:\n  key_file: a\n"),
        "missing one of cert or cert_file"
    );
    assert_eq!(
        err("tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: Maybe\n"),
        "invalid ClientAuth: Maybe"
    );
    assert_eq!(
        err("tls_server_config:\n  cert_file: a\n  key_file: b\n  client_ca_file: c\n"),
        "client CA's have been configured without a Client Auth Policy"
    );
    assert!(err(
        "tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: VerifyClientCertIfGiven\n"
    )
    .contains("needs client_ca_file"));
    assert_eq!(
        err("tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: TLS14\n"),
        "unknown TLS version: TLS14"
    );
    assert!(
        err("tls_server_config:\n  cert_file: a\n  key_file: b\n  max_version: TLS11\n")
            .contains("only TLS 1.2 and TLS 1.3")
    );
    assert!(err(
        "tls_server_config:\n  cert_file: a\n  key_file: b\n  cipher_suites: [TLS_RSA_WITH_RC4_128_SHA]\n"
    )
    .starts_with("unknown or unsupported cipher: TLS_RSA_WITH_RC4_128_SHA"));
    assert_eq!(
        err("tls_server_config:\n  cert_file: a\n  key_file: b\n  curve_preferences: [P999]\n"),
        "unknown curve: P999"
    );
}

#[test]
fn old_minimum_versions_are_raised_to_tls12() {
    let c =
        parse("tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: TLS10\n").unwrap();
    assert_eq!(c.tls.unwrap().min_version, TlsVersion::Tls10);
}

#[test]
fn headers_are_restricted_as_in_the_exporter_toolkit() {
    assert_eq!(
        err("http_server_config:\n  headers:\n    Server: x\n"),
        "HTTP header \"Server\" can not be configured"
    );
    assert_eq!(
        err("http_server_config:\n  headers:\n    X-Frame-Options: allow\n"),
        "invalid value for X-Frame-Options. Expected one of: [\"deny\" \"sameorigin\"], but got: \"allow\""
    );
    let c =
        parse("http_server_config:\n  headers:\n    Strict-Transport-Security: max-age=31536000\n")
            .unwrap();
    assert_eq!(c.headers[0].1, "max-age=31536000");
}

#[test]
fn user_passwords_must_be_bcrypt_hashes() {
    let e = err("basic_auth_users:\n  alice: plaintext\n");
    assert!(e.contains("user \"alice\" is not a bcrypt hash"), "{e}");
    assert!(parse(&format!("basic_auth_users:\n  alice: {HASH}\n")).is_ok());
}

#[test]
fn rate_limit_is_parsed() {
    let c = parse("rate_limit:\n  interval: 1s\n  burst: 5\n").unwrap();
    assert_eq!(c.rate_limit, Some((Duration::from_secs(1), 5)));
    assert!(parse("rate_limit:\n  interval: soon\n").is_err());
}

fn self_signed() -> (String, String) {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    (ck.cert.pem(), ck.key_pair.serialize_pem())
}

#[test]
fn source_builds_tls_and_follows_file_changes() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed();
    std::fs::write(dir.path().join("s.crt"), &cert).unwrap();
    std::fs::write(dir.path().join("s.key"), &key).unwrap();
    let path = dir.path().join("web.yml");
    std::fs::write(
        &path,
        "tls_server_config:\n  cert_file: s.crt\n  key_file: s.key\n",
    )
    .unwrap();
    let src = WebConfigSource::open(&path).unwrap();
    assert!(src.tls_enabled());
    let a = src.tls_config().unwrap();
    let b = src.tls_config().unwrap();
    assert!(
        Arc::ptr_eq(&a, &b),
        "unchanged files reuse the configuration"
    );
    // A new certificate is picked up.
    let (cert2, key2) = self_signed();
    std::fs::write(dir.path().join("s.crt"), &cert2).unwrap();
    std::fs::write(dir.path().join("s.key"), &key2).unwrap();
    let c = src.tls_config().unwrap();
    assert!(!Arc::ptr_eq(&a, &c));
    // A key that does not match the certificate is an error.
    std::fs::write(dir.path().join("s.key"), &key).unwrap();
    let e = src.tls_config().unwrap_err().to_string();
    assert!(e.contains("X509KeyPair"), "{e}");
    // Users added to the file apply at once.
    std::fs::write(
        &path,
        format!("tls_server_config:\n  cert_file: s.crt\n  key_file: s.key\nbasic_auth_users:\n  bob: {HASH}\n"),
    )
    .unwrap();
    assert!(src.current().unwrap().users.contains_key("bob"));
    // A broken file is an error, not the old configuration.
    std::fs::write(&path, "tls_server_config: [\n").unwrap();
    assert!(src.current().is_err());
}

#[test]
fn open_fails_on_missing_or_garbage_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("web.yml");
    std::fs::write(
        &path,
        "tls_server_config:\n  cert_file: nope.crt\n  key_file: nope.key\n",
    )
    .unwrap();
    let e = WebConfigSource::open(&path).unwrap_err().to_string();
    assert!(
        e.contains("cannot read cert_file") && e.contains("nope.crt"),
        "{e}"
    );
    std::fs::write(dir.path().join("nope.crt"), "garbage").unwrap();
    std::fs::write(dir.path().join("nope.key"), "garbage").unwrap();
    let e = WebConfigSource::open(&path).unwrap_err().to_string();
    assert!(e.contains("no PEM certificate"), "{e}");
    assert!(WebConfigSource::open(&dir.path().join("missing.yml")).is_err());
}
