//! `--web.config.file`: Prometheus's web configuration format (the exporter toolkit's),
//! giving the HTTP server TLS (`tls_server_config`), extra response headers
//! (`http_server_config.headers`), basic-auth users with bcrypt hashes
//! (`basic_auth_users`) and a request rate limit (`rate_limit`).
//!
//! The file is read strictly: an unknown field, a wrong type or an invalid value is an
//! error naming the line or the value. [`WebConfigSource`] re-reads it (and the
//! certificate files it names) whenever it is consulted, so a changed password or
//! certificate takes effect for the next request or connection without a restart; an
//! invalid file at that point fails the request closed (500) or the handshake, and is
//! logged, as Prometheus does.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderName, HeaderValue};
use serde::Deserialize;

/// The web configuration could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebConfigError {
    /// A file could not be read.
    #[error("cannot read {what} {path}: {source}")]
    Read {
        /// Which file (`web config file`, `cert_file`, ...).
        what: &'static str,
        /// Its path.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The YAML does not fit the format.
    #[error("{0}")]
    Yaml(String),
    /// A value is invalid or the settings contradict each other.
    #[error("{0}")]
    Invalid(String),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    tls_server_config: Option<RawTls>,
    http_server_config: Option<RawHttp>,
    basic_auth_users: Option<BTreeMap<String, String>>,
    rate_limit: Option<RawRateLimit>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert: Option<String>,
    key: Option<String>,
    client_ca: Option<String>,
    cert_file: Option<String>,
    key_file: Option<String>,
    client_auth_type: Option<String>,
    client_ca_file: Option<String>,
    cipher_suites: Option<Vec<String>>,
    curve_preferences: Option<Vec<String>>,
    min_version: Option<String>,
    max_version: Option<String>,
    prefer_server_cipher_suites: Option<bool>,
    client_allowed_sans: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    http2: Option<bool>,
    headers: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRateLimit {
    burst: Option<u32>,
    interval: Option<String>,
}

/// Where PEM data comes from: a file (relative paths are resolved against the web
/// configuration file's directory) or the configuration itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PemSource {
    /// A file path.
    File(PathBuf),
    /// Inline PEM text.
    Inline(String),
}

impl PemSource {
    /// Reads the PEM bytes; `what` names the field in errors.
    pub fn read(&self, what: &'static str) -> Result<Vec<u8>, WebConfigError> {
        match self {
            PemSource::File(p) => std::fs::read(p).map_err(|source| WebConfigError::Read {
                what,
                path: p.display().to_string(),
                source,
            }),
            PemSource::Inline(s) => Ok(s.as_bytes().to_vec()),
        }
    }
}

/// `client_auth_type`: whether and how client certificates are asked for and checked
/// (Go's `tls.ClientAuthType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// No client certificate is asked for.
    NoClientCert,
    /// A certificate is asked for but neither required nor verified against a CA.
    RequestClientCert,
    /// A certificate is required but not verified against a CA.
    RequireAnyClientCert,
    /// A certificate, when sent, must verify against the client CA.
    VerifyClientCertIfGiven,
    /// A certificate is required and must verify against the client CA.
    RequireAndVerifyClientCert,
}

/// A TLS protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    /// TLS 1.0 (accepted in the file; Aion never negotiates it).
    Tls10,
    /// TLS 1.1 (accepted in the file; Aion never negotiates it).
    Tls11,
    /// TLS 1.2.
    Tls12,
    /// TLS 1.3.
    Tls13,
}

impl TlsVersion {
    fn parse(s: &str) -> Result<Self, WebConfigError> {
        match s {
            "TLS10" => Ok(TlsVersion::Tls10),
            "TLS11" => Ok(TlsVersion::Tls11),
            "TLS12" => Ok(TlsVersion::Tls12),
            "TLS13" => Ok(TlsVersion::Tls13),
            _ => Err(WebConfigError::Invalid(format!("unknown TLS version: {s}"))),
        }
    }
}

/// Validated `tls_server_config`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// The server certificate chain.
    pub cert: PemSource,
    /// The server's private key.
    pub key: PemSource,
    /// CA certificates that client certificates are verified against.
    pub client_ca: Option<PemSource>,
    /// How client certificates are handled.
    pub client_auth: ClientAuth,
    /// TLS 1.2 cipher suites by Go/IANA name, in preference order (empty: the defaults).
    pub cipher_suites: Vec<String>,
    /// Key exchange groups by Go name, in preference order (empty: the defaults).
    pub curve_preferences: Vec<String>,
    /// Lowest version offered (at least TLS 1.2 in practice).
    pub min_version: TlsVersion,
    /// Highest version offered.
    pub max_version: TlsVersion,
    /// Whether the server's cipher suite order wins over the client's.
    pub prefer_server_cipher_suites: bool,
}

/// A validated web configuration.
#[derive(Debug, Clone, Default)]
pub struct WebConfig {
    /// TLS settings; `None` serves plain HTTP.
    pub tls: Option<TlsSettings>,
    /// Headers added to every response (unless the handler sets them itself).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Basic-auth users and their bcrypt hashes; empty means no authentication.
    pub users: BTreeMap<String, String>,
    /// `rate_limit`: at most `burst` requests at once, refilled one per `interval`.
    pub rate_limit: Option<(Duration, u32)>,
}

/// The headers that may be configured, with the values allowed (empty: any value), as
/// in the exporter toolkit.
const CONFIGURABLE_HEADERS: &[(&str, &[&str])] = &[
    ("Strict-Transport-Security", &[]),
    ("X-Content-Type-Options", &["nosniff"]),
    ("X-Frame-Options", &["deny", "sameorigin"]),
    ("X-XSS-Protection", &[]),
    ("Content-Security-Policy", &[]),
];

/// Go type names of the format's sections, for error messages in Prometheus's wording.
fn go_type(section: &str) -> &'static str {
    match section {
        "tls_server_config" => "web.TLSConfig",
        "http_server_config" => "web.HTTPConfig",
        "rate_limit" => "web.RateLimiterConfig",
        _ => "web.Config",
    }
}

fn yaml_error(e: &serde_yaml::Error) -> WebConfigError {
    let full = e.to_string();
    let body = match full.rfind(" at line ") {
        Some(i) => full.get(..i).unwrap_or(&full),
        None => &full,
    };
    let (section, msg) = match body.split_once(": ") {
        Some((p, m)) if !p.contains(' ') => (p, m),
        _ => ("", body),
    };
    let text = match msg.strip_prefix("unknown field `") {
        Some(rest) => {
            let field = rest.split('`').next().unwrap_or("");
            format!("field {field} not found in type {}", go_type(section))
        }
        None if section.is_empty() => msg.to_string(),
        None => format!("{section}: {msg}"),
    };
    WebConfigError::Yaml(match e.location() {
        Some(l) => format!("yaml: unmarshal errors:\n  line {}: {text}", l.line()),
        None => format!("yaml: {text}"),
    })
}

fn nonempty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.is_empty())
}

impl WebConfig {
    /// Parses and validates web configuration text; relative file paths are resolved
    /// against `dir`. Certificate files are not read here (see
    /// [`crate::server::tls::build_server_config`]).
    pub fn parse(text: &str, dir: &Path) -> Result<WebConfig, WebConfigError> {
        let raw: RawConfig = if text.trim().is_empty() {
            RawConfig::default()
        } else {
            serde_yaml::from_str::<Option<RawConfig>>(text)
                .map_err(|e| yaml_error(&e))?
                .unwrap_or_default()
        };
        let mut out = WebConfig::default();
        if let Some(h) = raw.http_server_config {
            // HTTP/2 is not served (HTTP/1.1 only); the setting is accepted.
            let _ = h.http2;
            for (k, v) in h.headers.unwrap_or_default() {
                out.headers.push(check_header(&k, &v)?);
            }
        }
        for (user, hash) in raw.basic_auth_users.unwrap_or_default() {
            check_bcrypt(&user, &hash)?;
            out.users.insert(user, hash);
        }
        if let Some(r) = raw.rate_limit {
            let interval = match nonempty(r.interval) {
                Some(s) => crate::api::params::parse_duration(&s)
                    .ok()
                    .and_then(|ms| u64::try_from(ms).ok())
                    .map(Duration::from_millis)
                    .ok_or_else(|| {
                        WebConfigError::Invalid(format!("rate_limit: invalid interval {s:?}"))
                    })?,
                None => Duration::ZERO,
            };
            if !interval.is_zero() {
                out.rate_limit = Some((interval, r.burst.unwrap_or(0)));
            }
        }
        if let Some(t) = raw.tls_server_config {
            out.tls = tls_settings(t, dir)?;
        }
        Ok(out)
    }

    /// Reads and validates a web configuration file (without reading certificates).
    pub fn load(path: &Path) -> Result<WebConfig, WebConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| WebConfigError::Read {
            what: "web config file",
            path: path.display().to_string(),
            source,
        })?;
        WebConfig::parse(&text, &base_dir(path))
    }
}

/// The directory relative paths in `path` are resolved against.
pub fn base_dir(path: &Path) -> PathBuf {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn check_header(name: &str, value: &str) -> Result<(HeaderName, HeaderValue), WebConfigError> {
    let Some((_, allowed)) = CONFIGURABLE_HEADERS.iter().find(|(n, _)| *n == name) else {
        return Err(WebConfigError::Invalid(format!(
            "HTTP header {name:?} can not be configured"
        )));
    };
    if !allowed.is_empty() && !allowed.contains(&value) {
        let list: Vec<String> = allowed.iter().map(|a| format!("{a:?}")).collect();
        return Err(WebConfigError::Invalid(format!(
            "invalid value for {name}. Expected one of: [{}], but got: {value:?}",
            list.join(" ")
        )));
    }
    let n = HeaderName::from_bytes(name.as_bytes())
        .map_err(|e| WebConfigError::Invalid(format!("HTTP header {name:?}: {e}")))?;
    let v = HeaderValue::from_str(value)
        .map_err(|_| WebConfigError::Invalid(format!("invalid value for {name}: {value:?}")))?;
    Ok((n, v))
}

fn check_bcrypt(user: &str, hash: &str) -> Result<(), WebConfigError> {
    let parts: bcrypt::HashParts = hash.parse().map_err(|e| {
        WebConfigError::Invalid(format!(
            "basic_auth_users: the password of user {user:?} is not a bcrypt hash: {e}"
        ))
    })?;
    let cost = parts.get_cost();
    if !(4..=31).contains(&cost) {
        return Err(WebConfigError::Invalid(format!(
            "basic_auth_users: the password hash of user {user:?} has an invalid cost {cost}"
        )));
    }
    Ok(())
}

fn resolve(dir: &Path, p: &str) -> PathBuf {
    let pb = PathBuf::from(p);
    if pb.is_absolute() {
        pb
    } else {
        dir.join(pb)
    }
}

fn tls_settings(t: RawTls, dir: &Path) -> Result<Option<TlsSettings>, WebConfigError> {
    let cert_file = nonempty(t.cert_file);
    let key_file = nonempty(t.key_file);
    let cert = nonempty(t.cert);
    let key = nonempty(t.key);
    let ca_file = nonempty(t.client_ca_file);
    let ca = nonempty(t.client_ca);
    let auth = nonempty(t.client_auth_type);
    let enabled = cert_file.is_some()
        || key_file.is_some()
        || cert.is_some()
        || key.is_some()
        || ca_file.is_some()
        || ca.is_some()
        || auth.is_some();
    if !enabled {
        return Ok(None);
    }
    let invalid = |m: &str| WebConfigError::Invalid(m.to_string());
    if cert_file.is_some() && cert.is_some() {
        return Err(invalid(
            "at most one of cert and cert_file must be configured",
        ));
    }
    if key_file.is_some() && key.is_some() {
        return Err(invalid(
            "at most one of key and key_file must be configured",
        ));
    }
    if ca_file.is_some() && ca.is_some() {
        return Err(invalid(
            "at most one of client_ca and client_ca_file must be configured",
        ));
    }
    let cert = match (cert_file, cert) {
        (Some(f), _) => PemSource::File(resolve(dir, &f)),
        (None, Some(c)) => PemSource::Inline(c),
        (None, None) => return Err(invalid("missing one of cert or cert_file")),
    };
    let key = match (key_file, key) {
        (Some(f), _) => PemSource::File(resolve(dir, &f)),
        (None, Some(k)) => PemSource::Inline(k),
        (None, None) => return Err(invalid("missing one of key or key_file")),
    };
    let client_ca = match (ca_file, ca) {
        (Some(f), _) => Some(PemSource::File(resolve(dir, &f))),
        (None, Some(c)) => Some(PemSource::Inline(c)),
        (None, None) => None,
    };
    let client_auth = match auth.as_deref() {
        None | Some("NoClientCert") => ClientAuth::NoClientCert,
        Some("RequestClientCert") => ClientAuth::RequestClientCert,
        Some("RequireAnyClientCert") | Some("RequireClientCert") => {
            ClientAuth::RequireAnyClientCert
        }
        Some("VerifyClientCertIfGiven") => ClientAuth::VerifyClientCertIfGiven,
        Some("RequireAndVerifyClientCert") => ClientAuth::RequireAndVerifyClientCert,
        Some(other) => {
            return Err(WebConfigError::Invalid(format!(
                "invalid ClientAuth: {other}"
            )))
        }
    };
    if client_ca.is_some() && client_auth == ClientAuth::NoClientCert {
        return Err(invalid(
            "client CA's have been configured without a Client Auth Policy",
        ));
    }
    if client_ca.is_none()
        && matches!(
            client_auth,
            ClientAuth::VerifyClientCertIfGiven | ClientAuth::RequireAndVerifyClientCert
        )
    {
        return Err(WebConfigError::Invalid(format!(
            "client_auth_type {} needs client_ca_file (or client_ca) to verify client \
             certificates against",
            auth.unwrap_or_default()
        )));
    }
    if t.client_allowed_sans.is_some_and(|s| !s.is_empty()) {
        return Err(invalid("client_allowed_sans is not supported by Aion"));
    }
    let min_version = match nonempty(t.min_version) {
        Some(v) => TlsVersion::parse(&v)?,
        None => TlsVersion::Tls12,
    };
    let max_version = match nonempty(t.max_version) {
        Some(v) => TlsVersion::parse(&v)?,
        None => TlsVersion::Tls13,
    };
    if max_version < TlsVersion::Tls12 {
        return Err(invalid(
            "max_version below TLS12: Aion serves only TLS 1.2 and TLS 1.3",
        ));
    }
    if min_version > max_version {
        return Err(invalid("min_version is greater than max_version"));
    }
    let cipher_suites = t.cipher_suites.unwrap_or_default();
    let curve_preferences = t.curve_preferences.unwrap_or_default();
    let s = TlsSettings {
        cert,
        key,
        client_ca,
        client_auth,
        cipher_suites,
        curve_preferences,
        min_version,
        max_version,
        prefer_server_cipher_suites: t.prefer_server_cipher_suites.unwrap_or(true),
    };
    // Names are checked now so that a typo is reported with the rest of the file.
    crate::server::tls::provider_for(&s)?;
    Ok(Some(s))
}

struct Cached {
    text: Vec<u8>,
    config: Arc<WebConfig>,
    tls: Option<(Vec<u8>, Arc<rustls::ServerConfig>)>,
}

/// The web configuration file, re-read whenever it is consulted: a request or a TLS
/// handshake sees the file as it is now. Parsing and certificate loading are redone
/// only when the bytes changed.
pub struct WebConfigSource {
    path: PathBuf,
    cached: parking_lot::Mutex<Option<Cached>>,
    tls_at_start: bool,
}

impl std::fmt::Debug for WebConfigSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebConfigSource")
            .field("path", &self.path)
            .finish()
    }
}

impl WebConfigSource {
    /// Loads and fully validates the file, including the certificates and keys it names.
    pub fn open(path: &Path) -> Result<WebConfigSource, WebConfigError> {
        let src = WebConfigSource {
            path: path.to_path_buf(),
            cached: parking_lot::Mutex::new(None),
            tls_at_start: false,
        };
        let cfg = src.current()?;
        let tls_at_start = cfg.tls.is_some();
        if tls_at_start {
            src.tls_config()?;
        }
        Ok(WebConfigSource {
            tls_at_start,
            ..src
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the server serves TLS (decided at start-up, as Prometheus does).
    pub fn tls_enabled(&self) -> bool {
        self.tls_at_start
    }

    /// The configuration as the file says now.
    pub fn current(&self) -> Result<Arc<WebConfig>, WebConfigError> {
        let text = std::fs::read(&self.path).map_err(|source| WebConfigError::Read {
            what: "web config file",
            path: self.path.display().to_string(),
            source,
        })?;
        let mut guard = self.cached.lock();
        if let Some(c) = guard.as_ref() {
            if c.text == text {
                return Ok(c.config.clone());
            }
        }
        let s = std::str::from_utf8(&text)
            .map_err(|_| WebConfigError::Yaml("yaml: the file is not valid UTF-8".into()))?;
        let config = Arc::new(WebConfig::parse(s, &base_dir(&self.path))?);
        *guard = Some(Cached {
            text,
            config: config.clone(),
            tls: None,
        });
        Ok(config)
    }

    /// The rustls configuration for a new connection, rebuilt when the file or the
    /// certificates it names changed.
    pub fn tls_config(&self) -> Result<Arc<rustls::ServerConfig>, WebConfigError> {
        let cfg = self.current()?;
        let Some(tls) = cfg.tls.as_ref() else {
            return Err(WebConfigError::Invalid(
                "tls_server_config was removed from the web config file; restart to serve \
                 plain HTTP"
                    .into(),
            ));
        };
        let material = crate::server::tls::read_material(tls)?;
        let mut stamp = Vec::new();
        for part in [&material.cert, &material.key, &material.client_ca] {
            stamp.extend_from_slice(&(part.len() as u64).to_le_bytes());
            stamp.extend_from_slice(part);
        }
        {
            let guard = self.cached.lock();
            if let Some((s, sc)) = guard.as_ref().and_then(|c| c.tls.as_ref()) {
                if *s == stamp {
                    return Ok(sc.clone());
                }
            }
        }
        let sc = Arc::new(crate::server::tls::build_server_config(tls, &material)?);
        let mut guard = self.cached.lock();
        if let Some(c) = guard.as_mut() {
            if Arc::ptr_eq(&c.config, &cfg) {
                c.tls = Some((stamp, sc.clone()));
            }
        }
        Ok(sc)
    }
}

/// `aion check web-config FILE...`, as `promtool check web-config`: reads each file and
/// the certificates it names; prints `FILE SUCCESS` or `FILE FAILED: reason`. Returns
/// whether all are valid.
pub fn check_files(files: &[PathBuf]) -> bool {
    let mut ok = true;
    for f in files {
        match WebConfigSource::open(f) {
            Ok(_) => println!("{} SUCCESS", f.display()),
            Err(e) => {
                eprintln!("{} FAILED: {e}", f.display());
                ok = false;
            }
        }
    }
    ok
}

#[cfg(test)]
mod tests;
