//! The Prometheus configuration file (`prometheus.yml`): `global`, `scrape_configs`,
//! `rule_files` and `alerting`, parsed strictly (an unknown field or a wrong type is an
//! error naming the file, line and field) and validated as Prometheus validates it.
//!
//! [`Config::load_file`] / [`Config::parse`] return a fully defaulted configuration:
//! every scrape config has its interval, timeout and limits filled in from `global`.

pub mod relabel;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer};

use crate::model::time::{format_duration_ms, parse_duration_ms};
use crate::model::{Label, Labels};

pub use relabel::{RelabelAction, RelabelConfig};

/// A configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The YAML is malformed, has an unknown field or a value of the wrong type.
    #[error("parsing YAML file {file}: {msg}")]
    Yaml {
        /// The file name as given.
        file: String,
        /// Prometheus-style message (`yaml: unmarshal errors:\n  line N: ...`).
        msg: String,
    },
    /// The YAML is well formed but its content is invalid.
    #[error("parsing YAML file {file}: {msg}")]
    Invalid {
        /// The file name as given.
        file: String,
        /// What is wrong.
        msg: String,
    },
}

/// A duration in milliseconds, written in YAML as a Prometheus duration (`15s`, `1m30s`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Duration(pub i64);

impl Duration {
    /// Milliseconds.
    pub fn ms(self) -> i64 {
        self.0
    }
    /// As a standard duration (negative values clamp to zero).
    pub fn std(self) -> std::time::Duration {
        std::time::Duration::from_millis(u64::try_from(self.0).unwrap_or(0))
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_duration_ms(self.0))
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_duration_ms(&s)
            .map(Duration)
            .ok_or_else(|| serde::de::Error::custom(format!("not a valid duration string: {s:?}")))
    }
}

/// A byte size written with Prometheus's units (`10MB`, `0` = no limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ByteSize(pub u64);

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => Ok(ByteSize(n)),
            Raw::S(s) => crate::server::flags::parse_bytes_flag(&s)
                .map(ByteSize)
                .map_err(serde::de::Error::custom),
        }
    }
}

/// A secret string; never printed.
#[derive(Clone, PartialEq, Eq, Hash, Default, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<secret>")
    }
}

/// The whole configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Global defaults.
    pub global: GlobalConfig,
    /// Rule file globs, relative to the configuration file's directory.
    pub rule_files: Vec<String>,
    /// Where alerts are sent.
    pub alerting: AlertingConfig,
    /// What to scrape.
    pub scrape_configs: Vec<ScrapeConfig>,
    /// Further files of scrape configs (globs).
    pub scrape_config_files: Vec<String>,
    /// Where samples are sent (see [`remote`]).
    pub remote_write: Vec<RemoteWriteConfig>,
    /// Where queries also read from (see [`remote`]).
    pub remote_read: Vec<RemoteReadConfig>,
    /// Accepted and ignored.
    pub storage: Option<serde_yaml::Value>,
    /// Accepted and ignored.
    pub tracing: Option<serde_yaml::Value>,
    /// Accepted and ignored.
    pub otlp: Option<serde_yaml::Value>,
    /// Accepted and ignored.
    pub runtime: Option<serde_yaml::Value>,
    /// The directory relative paths are resolved against (not from YAML).
    #[serde(skip)]
    pub base_dir: PathBuf,
}

/// `global:`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GlobalConfig {
    /// Default scrape interval (1m).
    pub scrape_interval: Duration,
    /// Default scrape timeout (10s, or the scrape interval when that is shorter and
    /// no timeout is given).
    #[serde(default = "unset_duration")]
    pub scrape_timeout: Duration,
    /// Default rule evaluation interval (1m).
    pub evaluation_interval: Duration,
    /// Offset of rule evaluation timestamps (0).
    pub rule_query_offset: Duration,
    /// Labels added to alerts (and federation/remote write in Prometheus).
    pub external_labels: BTreeMap<String, String>,
    /// Scrape protocols in order of preference.
    pub scrape_protocols: Option<Vec<String>>,
    /// Query log file (accepted, unused).
    pub query_log_file: Option<String>,
    /// Scrape failure log file (accepted, unused).
    pub scrape_failure_log_file: Option<String>,
    /// Default body size limit (0 = none).
    pub body_size_limit: ByteSize,
    /// Default sample limit (0 = none).
    pub sample_limit: u64,
    /// Default target limit (0 = none).
    pub target_limit: u64,
    /// Default label count limit (0 = none).
    pub label_limit: u64,
    /// Default label name length limit (0 = none).
    pub label_name_length_limit: u64,
    /// Default label value length limit (0 = none).
    pub label_value_length_limit: u64,
    /// Default for keeping dropped targets in `/api/v1/targets` (0 = all).
    pub keep_dropped_targets: u64,
    /// Name validation scheme (accepted: `utf8` or `legacy`).
    pub metric_name_validation_scheme: Option<String>,
}

impl Default for GlobalConfig {
    fn default() -> Self {
        GlobalConfig {
            scrape_interval: Duration(60_000),
            scrape_timeout: Duration(10_000),
            evaluation_interval: Duration(60_000),
            rule_query_offset: Duration(0),
            external_labels: BTreeMap::new(),
            scrape_protocols: None,
            query_log_file: None,
            scrape_failure_log_file: None,
            body_size_limit: ByteSize(0),
            sample_limit: 0,
            target_limit: 0,
            label_limit: 0,
            label_name_length_limit: 0,
            label_value_length_limit: 0,
            keep_dropped_targets: 0,
            metric_name_validation_scheme: None,
        }
    }
}

impl GlobalConfig {
    /// The external labels as a label set.
    pub fn external_labels(&self) -> Labels {
        Labels::new(
            self.external_labels
                .iter()
                .map(|(k, v)| Label::new(k.as_str(), v.as_str()))
                .collect(),
        )
    }
}

/// `basic_auth:`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BasicAuth {
    /// User name.
    pub username: String,
    /// File holding the user name.
    pub username_file: Option<String>,
    /// Password.
    pub password: Option<Secret>,
    /// File holding the password.
    pub password_file: Option<String>,
}

/// `authorization:`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Authorization {
    /// The scheme (`Bearer` by default).
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// The credentials.
    pub credentials: Option<Secret>,
    /// File holding the credentials.
    pub credentials_file: Option<String>,
}

/// A TLS protocol version as Prometheus names it (`TLS10` ... `TLS13`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TlsVersion {
    /// TLS 1.0 (accepted; the client speaks 1.2 and 1.3 only).
    Tls10,
    /// TLS 1.1 (accepted; the client speaks 1.2 and 1.3 only).
    Tls11,
    /// TLS 1.2.
    Tls12,
    /// TLS 1.3.
    Tls13,
}

impl<'de> Deserialize<'de> for TlsVersion {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        match s.as_str() {
            "TLS10" => Ok(TlsVersion::Tls10),
            "TLS11" => Ok(TlsVersion::Tls11),
            "TLS12" => Ok(TlsVersion::Tls12),
            "TLS13" => Ok(TlsVersion::Tls13),
            _ => Err(serde::de::Error::custom(format!(
                "unknown TLS version: {s}"
            ))),
        }
    }
}

/// `tls_config:`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// CA certificate (PEM text).
    pub ca: Option<String>,
    /// CA certificate file.
    pub ca_file: Option<String>,
    /// Client certificate (PEM text).
    pub cert: Option<String>,
    /// Client certificate file.
    pub cert_file: Option<String>,
    /// Client key (PEM text).
    pub key: Option<Secret>,
    /// Client key file.
    pub key_file: Option<String>,
    /// Server name for SNI and verification.
    pub server_name: Option<String>,
    /// Skip certificate verification.
    pub insecure_skip_verify: bool,
    /// Minimum TLS version (TLS 1.2 when unset).
    pub min_version: Option<TlsVersion>,
    /// Maximum TLS version.
    pub max_version: Option<TlsVersion>,
}

impl TlsConfig {
    /// Checks the combinations Prometheus rejects.
    pub fn validate(&self) -> Result<(), String> {
        if self.ca.is_some() && self.ca_file.is_some() {
            return Err("at most one of ca and ca_file must be configured".into());
        }
        if self.cert.is_some() && self.cert_file.is_some() {
            return Err("at most one of cert and cert_file must be configured".into());
        }
        if self.key.is_some() && self.key_file.is_some() {
            return Err("at most one of key and key_file must be configured".into());
        }
        let cert = self.cert.is_some() || self.cert_file.is_some();
        let key = self.key.is_some() || self.key_file.is_some();
        if cert && !key {
            return Err(
                "exactly one of key or key_file must be configured when a client certificate is configured"
                    .into(),
            );
        }
        if key && !cert {
            return Err(
                "exactly one of cert or cert_file must be configured when a client key is configured"
                    .into(),
            );
        }
        if let (Some(min), Some(max)) = (self.min_version, self.max_version) {
            if min > max {
                return Err(format!(
                    "tls_config.max_version must be greater than or equal to tls_config.min_version if both are specified ({min:?} > {max:?})"
                ));
            }
        }
        Ok(())
    }
}

/// Proxy settings (`proxy_url`, `no_proxy`, `proxy_from_environment`,
/// `proxy_connect_header`), shared by HTTP clients and OAuth 2 token requests.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ProxyConfig {
    /// The HTTP proxy (`http://[user:pass@]host:port`).
    pub proxy_url: Option<String>,
    /// Comma-separated hosts, domains, IPs and CIDRs that bypass the proxy.
    pub no_proxy: Option<String>,
    /// Take the proxy from `HTTP_PROXY`, `HTTPS_PROXY` and `NO_PROXY`.
    pub proxy_from_environment: bool,
    /// Headers sent with `CONNECT` requests.
    pub proxy_connect_header: BTreeMap<String, Vec<Secret>>,
}

impl ProxyConfig {
    /// Checks the combinations Prometheus rejects and the proxy URL.
    pub fn validate(&self) -> Result<(), String> {
        let url = self.proxy_url.as_deref().filter(|u| !u.is_empty());
        if !self.proxy_connect_header.is_empty() && !self.proxy_from_environment && url.is_none() {
            return Err("if proxy_connect_header is configured, proxy_url or proxy_from_environment must also be configured".into());
        }
        if self.proxy_from_environment && url.is_some() {
            return Err(
                "if proxy_from_environment is configured, proxy_url must not be configured".into(),
            );
        }
        if self.proxy_from_environment && self.no_proxy.as_deref().is_some_and(|n| !n.is_empty()) {
            return Err(
                "if proxy_from_environment is configured, no_proxy must not be configured".into(),
            );
        }
        if url.is_none() && self.no_proxy.as_deref().is_some_and(|n| !n.is_empty()) {
            return Err("if no_proxy is configured, proxy_url must also be configured".into());
        }
        if let Some(u) = url {
            crate::scrape::proxy::ProxyUrl::parse(u)?;
        }
        Ok(())
    }
}

/// `oauth2:` (the client credentials grant).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OAuth2 {
    /// Client ID.
    pub client_id: String,
    /// Client secret.
    pub client_secret: Option<Secret>,
    /// File holding the client secret.
    pub client_secret_file: Option<String>,
    /// Scopes requested.
    pub scopes: Vec<String>,
    /// The token endpoint.
    pub token_url: String,
    /// Further form parameters of the token request.
    pub endpoint_params: BTreeMap<String, String>,
    /// TLS settings of the token request.
    pub tls_config: TlsConfig,
    /// Proxy of the token request.
    pub proxy_url: Option<String>,
    /// Hosts that bypass the proxy.
    pub no_proxy: Option<String>,
    /// Use the environment's proxy settings.
    pub proxy_from_environment: bool,
    /// Headers sent with `CONNECT` requests.
    pub proxy_connect_header: BTreeMap<String, Vec<Secret>>,
}

impl OAuth2 {
    /// The proxy settings of the token request.
    pub fn proxy(&self) -> ProxyConfig {
        ProxyConfig {
            proxy_url: self.proxy_url.clone(),
            no_proxy: self.no_proxy.clone(),
            proxy_from_environment: self.proxy_from_environment,
            proxy_connect_header: self.proxy_connect_header.clone(),
        }
    }

    fn validate(&self) -> Result<(), String> {
        if self.client_id.is_empty() {
            return Err("oauth2 client_id must be configured".into());
        }
        if self.token_url.is_empty() {
            return Err("oauth2 token_url must be configured".into());
        }
        if self.client_secret.is_some() && self.client_secret_file.is_some() {
            return Err(
                "at most one of oauth2 client_secret, client_secret_file & client_secret_ref must be configured"
                    .into(),
            );
        }
        if !(self.token_url.starts_with("http://") || self.token_url.starts_with("https://")) {
            return Err(format!(
                "oauth2 token_url {:?} must be an http or https URL",
                self.token_url
            ));
        }
        self.tls_config.validate()?;
        self.proxy().validate()
    }
}

/// HTTP client settings shared by scrape configs, HTTP discovery, Alertmanager
/// configs and OAuth 2 token requests.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct HttpClientConfig {
    /// Basic authentication.
    pub basic_auth: Option<BasicAuth>,
    /// `Authorization` header.
    pub authorization: Option<Authorization>,
    /// OAuth 2 client credentials.
    pub oauth2: Option<OAuth2>,
    /// TLS settings.
    pub tls_config: TlsConfig,
    /// Proxy settings.
    pub proxy: ProxyConfig,
    /// Whether redirects are followed (true).
    pub follow_redirects: bool,
    /// Whether HTTP/2 may be used.
    pub enable_http2: bool,
}

/// A `static_configs` entry: targets and labels.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StaticConfig {
    /// `host:port` addresses.
    pub targets: Vec<String>,
    /// Labels added to every target.
    pub labels: BTreeMap<String, String>,
}

/// A `file_sd_configs` entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSdConfig {
    /// File globs (`.json`, `.yml`, `.yaml`).
    pub files: Vec<String>,
    /// How often the files are re-read (5m).
    #[serde(default = "default_file_sd_refresh")]
    pub refresh_interval: Duration,
}

fn default_file_sd_refresh() -> Duration {
    Duration(300_000)
}

fn unset_duration() -> Duration {
    Duration(0)
}

fn default_true() -> bool {
    true
}

macro_rules! http_fields_struct {
    ($(#[$m:meta])* $name:ident { $($(#[$fm:meta])* $f:ident : $t:ty),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            $($(#[$fm])* pub $f: $t,)*
            /// Basic authentication.
            #[serde(default)]
            pub basic_auth: Option<BasicAuth>,
            /// `Authorization` header.
            #[serde(default)]
            pub authorization: Option<Authorization>,
            /// Deprecated bearer token.
            #[serde(default)]
            pub bearer_token: Option<Secret>,
            /// Deprecated bearer token file.
            #[serde(default)]
            pub bearer_token_file: Option<String>,
            /// TLS settings.
            #[serde(default)]
            pub tls_config: TlsConfig,
            /// Proxy URL.
            #[serde(default)]
            pub proxy_url: Option<String>,
            /// Hosts that bypass the proxy.
            #[serde(default)]
            pub no_proxy: Option<String>,
            /// Use the environment's proxy settings.
            #[serde(default)]
            pub proxy_from_environment: bool,
            /// Headers sent with `CONNECT` requests to the proxy.
            #[serde(default)]
            pub proxy_connect_header: BTreeMap<String, Vec<Secret>>,
            /// Follow redirects (true).
            #[serde(default = "default_true")]
            pub follow_redirects: bool,
            /// Allow HTTP/2 (true).
            #[serde(default = "default_true")]
            pub enable_http2: bool,
            /// OAuth 2 client credentials.
            #[serde(default)]
            pub oauth2: Option<OAuth2>,
        }

        impl $name {
            /// The HTTP client settings, with `bearer_token*` folded into `authorization`.
            pub fn http_client(&self) -> HttpClientConfig {
                let mut authorization = self.authorization.clone();
                if authorization.is_none()
                    && (self.bearer_token.is_some() || self.bearer_token_file.is_some())
                {
                    authorization = Some(Authorization {
                        kind: Some("Bearer".into()),
                        credentials: self.bearer_token.clone(),
                        credentials_file: self.bearer_token_file.clone(),
                    });
                }
                HttpClientConfig {
                    basic_auth: self.basic_auth.clone(),
                    authorization,
                    oauth2: self.oauth2.clone(),
                    tls_config: self.tls_config.clone(),
                    proxy: ProxyConfig {
                        proxy_url: self.proxy_url.clone(),
                        no_proxy: self.no_proxy.clone(),
                        proxy_from_environment: self.proxy_from_environment,
                        proxy_connect_header: self.proxy_connect_header.clone(),
                    },
                    follow_redirects: self.follow_redirects,
                    enable_http2: self.enable_http2,
                }
            }

            fn validate_http(&self) -> Result<(), String> {
                if let Some(b) = &self.basic_auth {
                    if b.password.is_some() && b.password_file.is_some() {
                        return Err("at most one of basic_auth password & password_file must be configured".into());
                    }
                    if !b.username.is_empty() && b.username_file.is_some() {
                        return Err("at most one of basic_auth username & username_file must be configured".into());
                    }
                }
                let bearer = self.bearer_token.is_some() || self.bearer_token_file.is_some();
                if self.bearer_token.is_some() && self.bearer_token_file.is_some() {
                    return Err("at most one of bearer_token & bearer_token_file must be configured".into());
                }
                if bearer && (self.basic_auth.is_some() || self.authorization.is_some() || self.oauth2.is_some()) {
                    return Err("at most one of basic_auth, oauth2, bearer_token & bearer_token_file must be configured".into());
                }
                let n = usize::from(self.basic_auth.is_some())
                    + usize::from(self.authorization.is_some())
                    + usize::from(self.oauth2.is_some());
                if n > 1 {
                    return Err("at most one of basic_auth, oauth2 & authorization must be configured".into());
                }
                if let Some(a) = &self.authorization {
                    if a.credentials.is_some() && a.credentials_file.is_some() {
                        return Err("at most one of authorization credentials & credentials_file must be configured".into());
                    }
                    if a.kind.as_deref().is_some_and(|k| k.eq_ignore_ascii_case("basic")) {
                        return Err("authorization type cannot be set to \"basic\", use \"basic_auth\" instead".into());
                    }
                }
                if let Some(o) = &self.oauth2 {
                    o.validate()?;
                }
                self.tls_config.validate()?;
                self.http_client().proxy.validate()?;
                Ok(())
            }
        }
    };
}

pub mod remote;
pub use remote::{MetadataConfig, QueueConfig, RemoteReadConfig, RemoteWriteConfig};

http_fields_struct! {
    /// One `scrape_configs` entry.
    ScrapeConfig {
        /// The job name (the `job` label by default).
        job_name: String,
        /// Keep the scraped labels on conflict with target labels (false).
        #[serde(default)]
        honor_labels: bool,
        /// Keep the scraped timestamps (true).
        #[serde(default = "default_true")]
        honor_timestamps: bool,
        /// Stale-mark series with explicit timestamps too (false).
        #[serde(default)]
        track_timestamps_staleness: bool,
        /// `http` or `https`.
        #[serde(default = "default_scheme")]
        scheme: String,
        /// The path (`/metrics`).
        #[serde(default = "default_metrics_path")]
        metrics_path: String,
        /// URL parameters.
        #[serde(default)]
        params: BTreeMap<String, Vec<String>>,
        /// Interval (global default when absent; filled in after loading).
        #[serde(default)]
        scrape_interval: Option<Duration>,
        /// Timeout (global default when absent; filled in after loading).
        #[serde(default)]
        scrape_timeout: Option<Duration>,
        /// Protocols in order of preference.
        #[serde(default)]
        scrape_protocols: Option<Vec<String>>,
        /// Fallback protocol for an unknown content type.
        #[serde(default)]
        fallback_scrape_protocol: Option<String>,
        /// Scrape classic histograms too (accepted).
        #[serde(default)]
        always_scrape_classic_histograms: Option<bool>,
        /// Convert classic histograms to native ones (accepted).
        #[serde(default)]
        convert_classic_histograms_to_nhcb: Option<bool>,
        /// Body size limit (0 = none).
        #[serde(default)]
        body_size_limit: Option<ByteSize>,
        /// Samples accepted per scrape after metric relabelling (0 = none).
        #[serde(default)]
        sample_limit: Option<u64>,
        /// Targets per scrape config after relabelling (0 = none).
        #[serde(default)]
        target_limit: Option<u64>,
        /// Labels per series (0 = none).
        #[serde(default)]
        label_limit: Option<u64>,
        /// Label name length (0 = none).
        #[serde(default)]
        label_name_length_limit: Option<u64>,
        /// Label value length (0 = none).
        #[serde(default)]
        label_value_length_limit: Option<u64>,
        /// Native histogram bucket limit (accepted).
        #[serde(default)]
        native_histogram_bucket_limit: Option<u64>,
        /// Native histogram resolution limit (accepted).
        #[serde(default)]
        native_histogram_min_bucket_factor: Option<f64>,
        /// Dropped targets kept for the API (0 = all).
        #[serde(default)]
        keep_dropped_targets: Option<u64>,
        /// Scrape failure log file (accepted).
        #[serde(default)]
        scrape_failure_log_file: Option<String>,
        /// Name validation scheme (accepted).
        #[serde(default)]
        metric_name_validation_scheme: Option<String>,
        /// Name escaping scheme (accepted).
        #[serde(default)]
        metric_name_escaping_scheme: Option<String>,
        /// Static targets.
        #[serde(default)]
        static_configs: Vec<StaticConfig>,
        /// File-based discovery.
        #[serde(default)]
        file_sd_configs: Vec<FileSdConfig>,
        /// Target relabelling.
        #[serde(default)]
        relabel_configs: Vec<RelabelConfig>,
        /// Relabelling of scraped series.
        #[serde(default)]
        metric_relabel_configs: Vec<RelabelConfig>,
        /// DNS discovery.
        #[serde(default)]
        dns_sd_configs: Vec<DnsSdConfig>,
        /// HTTP discovery.
        #[serde(default)]
        http_sd_configs: Vec<HttpSdConfig>,
        /// Kubernetes discovery (accepted; not supported, yields no targets).
        #[serde(default)]
        kubernetes_sd_configs: Option<serde_yaml::Value>,
        /// Consul discovery (accepted; not supported, yields no targets).
        #[serde(default)]
        consul_sd_configs: Option<serde_yaml::Value>,
        /// EC2 discovery (accepted; not supported, yields no targets).
        #[serde(default)]
        ec2_sd_configs: Option<serde_yaml::Value>,
        /// Docker discovery (accepted; not supported, yields no targets).
        #[serde(default)]
        docker_sd_configs: Option<serde_yaml::Value>,
    }
}

http_fields_struct! {
    /// An `http_sd_configs` entry: a URL serving target groups as JSON.
    HttpSdConfig {
        /// The URL (`http` or `https`).
        #[serde(default)]
        url: String,
        /// How often the URL is fetched (1m).
        #[serde(default = "default_http_sd_refresh")]
        refresh_interval: Duration,
    }
}

/// The record type of a `dns_sd_configs` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DnsRecordType {
    /// SRV records (the default): host and port from the record.
    #[default]
    Srv,
    /// A records, with the config's port.
    A,
    /// AAAA records, with the config's port.
    Aaaa,
    /// MX records, with the config's port.
    Mx,
    /// NS records, with the config's port.
    Ns,
}

impl<'de> Deserialize<'de> for DnsRecordType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        match s.to_ascii_uppercase().as_str() {
            "SRV" => Ok(DnsRecordType::Srv),
            "A" => Ok(DnsRecordType::A),
            "AAAA" => Ok(DnsRecordType::Aaaa),
            "MX" => Ok(DnsRecordType::Mx),
            "NS" => Ok(DnsRecordType::Ns),
            _ => Err(serde::de::Error::custom(format!(
                "invalid DNS-SD records type {s}"
            ))),
        }
    }
}

/// A `dns_sd_configs` entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsSdConfig {
    /// Names to look up.
    #[serde(default)]
    pub names: Vec<String>,
    /// How often the names are resolved again (30s).
    #[serde(default = "default_dns_sd_refresh")]
    pub refresh_interval: Duration,
    /// The record type (`SRV`).
    #[serde(default, rename = "type")]
    pub record_type: DnsRecordType,
    /// The port of A, AAAA, MX and NS targets.
    #[serde(default)]
    pub port: u16,
}

fn default_dns_sd_refresh() -> Duration {
    Duration(30_000)
}

impl DnsSdConfig {
    fn validate(&self) -> Result<(), String> {
        if self.names.is_empty() {
            return Err("DNS-SD config must contain at least one SRV record name".into());
        }
        if self.record_type != DnsRecordType::Srv && self.port == 0 {
            return Err(
                "a port is required in DNS-SD configs for all record types except SRV".into(),
            );
        }
        if self.refresh_interval.0 <= 0 {
            return Err("refresh_interval must be greater than zero".into());
        }
        Ok(())
    }
}

fn default_http_sd_refresh() -> Duration {
    Duration(60_000)
}

impl HttpSdConfig {
    fn validate(&self) -> Result<(), String> {
        if self.url.is_empty() {
            return Err("URL is missing".into());
        }
        let Some((scheme, rest)) = self.url.split_once("://") else {
            return Err("URL scheme must be 'http' or 'https'".into());
        };
        if scheme != "http" && scheme != "https" {
            return Err("URL scheme must be 'http' or 'https'".into());
        }
        if rest.split(['/', '?']).next().unwrap_or("").is_empty() {
            return Err("host is missing in URL".into());
        }
        if self.refresh_interval.0 <= 0 {
            return Err("refresh_interval must be greater than zero".into());
        }
        self.validate_http()
    }
}

fn default_scheme() -> String {
    "http".into()
}

fn default_metrics_path() -> String {
    "/metrics".into()
}

impl ScrapeConfig {
    /// The effective scrape interval (filled in on load).
    pub fn interval(&self) -> Duration {
        self.scrape_interval.unwrap_or(Duration(60_000))
    }
    /// The effective scrape timeout (filled in on load).
    pub fn timeout(&self) -> Duration {
        self.scrape_timeout.unwrap_or(Duration(10_000))
    }
}

/// `alerting:`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertingConfig {
    /// Relabelling applied to alerts before sending.
    pub alert_relabel_configs: Vec<RelabelConfig>,
    /// Alertmanagers to send to.
    pub alertmanagers: Vec<AlertmanagerConfig>,
}

http_fields_struct! {
    /// One `alertmanagers` entry.
    AlertmanagerConfig {
        /// `http` or `https`.
        #[serde(default = "default_scheme")]
        scheme: String,
        /// Prefix of the API path.
        #[serde(default)]
        path_prefix: String,
        /// Per-request timeout (10s).
        #[serde(default = "default_am_timeout")]
        timeout: Duration,
        /// `v2` (v1 is rejected, as in Prometheus 3).
        #[serde(default = "default_api_version")]
        api_version: String,
        /// Static Alertmanager addresses.
        #[serde(default)]
        static_configs: Vec<StaticConfig>,
        /// File-based discovery of Alertmanagers.
        #[serde(default)]
        file_sd_configs: Vec<FileSdConfig>,
        /// Relabelling of discovered Alertmanagers.
        #[serde(default)]
        relabel_configs: Vec<RelabelConfig>,
        /// Relabelling of alerts sent to these Alertmanagers.
        #[serde(default)]
        alert_relabel_configs: Vec<RelabelConfig>,
        /// DNS discovery (accepted; not supported).
        #[serde(default)]
        dns_sd_configs: Option<serde_yaml::Value>,
        /// Kubernetes discovery (accepted; not supported).
        #[serde(default)]
        kubernetes_sd_configs: Option<serde_yaml::Value>,
    }
}

fn default_am_timeout() -> Duration {
    Duration(10_000)
}

fn default_api_version() -> String {
    "v2".into()
}

/// Maps a serde path (`scrape_configs[0].relabel_configs[1]`) to the Go type name
/// Prometheus names in its unmarshal errors.
fn go_type_for_path(path: &str) -> &'static str {
    let last = path.rsplit('.').next().unwrap_or("");
    let last = last.split('[').next().unwrap_or("");
    match last {
        "" => "config.Config",
        "global" => "config.GlobalConfig",
        "scrape_configs" => "config.ScrapeConfig",
        "static_configs" => "targetgroup.Group",
        "file_sd_configs" => "file.SDConfig",
        "http_sd_configs" => "http.SDConfig",
        "dns_sd_configs" => "dns.SDConfig",
        "oauth2" => "config.OAuth2",
        "relabel_configs" | "metric_relabel_configs" | "alert_relabel_configs" => "relabel.Config",
        "basic_auth" => "config.BasicAuth",
        "authorization" => "config.Authorization",
        "tls_config" => "config.TLSConfig",
        "alerting" => "config.AlertingConfig",
        "alertmanagers" => "config.AlertmanagerConfig",
        "remote_write" => "config.RemoteWriteConfig",
        "remote_read" => "config.RemoteReadConfig",
        "queue_config" => "config.QueueConfig",
        "metadata_config" => "config.MetadataConfig",
        "write_relabel_configs" => "relabel.Config",
        _ => "config.plain",
    }
}

/// Rewrites a serde_yaml error into Prometheus's wording.
fn yaml_error_message(e: &serde_yaml::Error) -> String {
    let full = e.to_string();
    let line = e.location().map(|l| l.line());
    // Drop serde_yaml's " at line N column M" suffix.
    let body = match full.rfind(" at line ") {
        Some(i) => full.get(..i).unwrap_or(&full),
        None => &full,
    };
    // "path: message" when the error is below the root.
    let (path, msg) = match body.split_once(": ") {
        Some((p, m))
            if !p.contains(' ') && p.chars().all(|c| c.is_alphanumeric() || "_.[]".contains(c)) =>
        {
            (p, m)
        }
        _ => ("", body),
    };
    let text = if let Some(rest) = msg.strip_prefix("unknown field `") {
        let field = rest.split('`').next().unwrap_or("");
        format!("field {field} not found in type {}", go_type_for_path(path))
    } else if path.is_empty() {
        msg.to_string()
    } else {
        format!("{path}: {msg}")
    };
    match line {
        Some(l) => format!("yaml: unmarshal errors:\n  line {l}: {text}"),
        None => format!("yaml: {text}"),
    }
}

/// The relabel configs of a list as a vector of checked rules, or the first error.
fn check_relabel(list: &[RelabelConfig]) -> Result<(), String> {
    for r in list {
        r.validate()?;
    }
    Ok(())
}

fn check_static(list: &[StaticConfig]) -> Result<(), String> {
    for sc in list {
        for k in sc.labels.keys() {
            if k.is_empty() || k.contains('\0') {
                return Err(format!("{k:?} is not a valid label name"));
            }
        }
        for t in &sc.targets {
            if t.is_empty() {
                return Err("empty target address".into());
            }
        }
    }
    Ok(())
}

impl Config {
    /// Parses configuration text; `file` names it in errors and its directory resolves
    /// relative paths.
    pub fn parse(text: &str, file: &Path) -> Result<Config, ConfigError> {
        let fname = file.display().to_string();
        let mut cfg: Config = if text.trim().is_empty() {
            Config::default()
        } else {
            serde_yaml::from_str(text).map_err(|e| ConfigError::Yaml {
                file: fname.clone(),
                msg: yaml_error_message(&e),
            })?
        };
        cfg.base_dir = file
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        cfg.finish()
            .map_err(|msg| ConfigError::Invalid { file: fname, msg })?;
        Ok(cfg)
    }

    /// Reads and parses a configuration file.
    pub fn load_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Config::parse(&text, path)
    }

    /// Resolves a path from the file relative to the configuration's directory.
    pub fn resolve(&self, p: &str) -> PathBuf {
        let pb = PathBuf::from(p);
        if pb.is_absolute() {
            pb
        } else {
            self.base_dir.join(pb)
        }
    }

    /// Fills in defaults from `global` and validates.
    fn finish(&mut self) -> Result<(), String> {
        if self.global.scrape_timeout.0 == 0 {
            self.global.scrape_timeout = Duration(10_000.min(self.global.scrape_interval.0));
        }
        let g = &self.global;
        if g.scrape_interval.0 <= 0 {
            return Err("global scrape interval must be greater than zero".into());
        }
        if g.scrape_timeout.0 > g.scrape_interval.0 {
            return Err("global scrape timeout greater than scrape interval".into());
        }
        for k in g.external_labels.keys() {
            if k == "__name__" {
                return Err(format!("{k:?} is not a valid label name"));
            }
            if k.is_empty() {
                return Err("\"\" is not a valid label name".into());
            }
        }
        let global = self.global.clone();
        let mut seen = std::collections::HashSet::new();
        for sc in &mut self.scrape_configs {
            if sc.job_name.is_empty() {
                return Err("job_name is empty".into());
            }
            if !seen.insert(sc.job_name.clone()) {
                return Err(format!(
                    "found multiple scrape configs with job name {:?}",
                    sc.job_name
                ));
            }
            let interval = sc.scrape_interval.unwrap_or(global.scrape_interval);
            if interval.0 <= 0 {
                return Err(format!(
                    "scrape interval must be greater than zero for scrape config with job name {:?}",
                    sc.job_name
                ));
            }
            let timeout = match sc.scrape_timeout {
                Some(t) => t,
                None if global.scrape_timeout > interval => interval,
                None => global.scrape_timeout,
            };
            if timeout > interval {
                return Err(format!(
                    "scrape timeout greater than scrape interval for scrape config with job name {:?}",
                    sc.job_name
                ));
            }
            sc.scrape_interval = Some(interval);
            sc.scrape_timeout = Some(timeout);
            sc.body_size_limit.get_or_insert(global.body_size_limit);
            sc.sample_limit.get_or_insert(global.sample_limit);
            sc.target_limit.get_or_insert(global.target_limit);
            sc.label_limit.get_or_insert(global.label_limit);
            sc.label_name_length_limit
                .get_or_insert(global.label_name_length_limit);
            sc.label_value_length_limit
                .get_or_insert(global.label_value_length_limit);
            sc.keep_dropped_targets
                .get_or_insert(global.keep_dropped_targets);
            if sc.scheme != "http" && sc.scheme != "https" {
                return Err(format!(
                    "unknown scrape scheme {:?} for scrape config with job name {:?}",
                    sc.scheme, sc.job_name
                ));
            }
            if !sc.metrics_path.starts_with('/') {
                return Err(format!(
                    "metrics_path must start with '/' for scrape config with job name {:?}",
                    sc.job_name
                ));
            }
            let ctx = |e: String| format!("{e} (scrape config with job name {:?})", sc.job_name);
            sc.validate_http().map_err(ctx)?;
            check_static(&sc.static_configs).map_err(ctx)?;
            check_relabel(&sc.relabel_configs).map_err(ctx)?;
            check_relabel(&sc.metric_relabel_configs).map_err(ctx)?;
            for f in &sc.file_sd_configs {
                for p in &f.files {
                    check_sd_file_pattern(p)?;
                }
            }
            for h in &sc.http_sd_configs {
                h.validate().map_err(ctx)?;
            }
            for d in &sc.dns_sd_configs {
                d.validate().map_err(ctx)?;
            }
        }
        check_relabel(&self.alerting.alert_relabel_configs)?;
        for am in &self.alerting.alertmanagers {
            if am.api_version != "v2" {
                return Err(format!(
                    "expected Alertmanager api version to be one of [v2] but got {}",
                    am.api_version
                ));
            }
            am.validate_http()?;
            check_static(&am.static_configs)?;
            check_relabel(&am.relabel_configs)?;
            check_relabel(&am.alert_relabel_configs)?;
        }
        remote::validate(&self.remote_write, &self.remote_read)?;
        for rf in &self.rule_files {
            if rf.is_empty() {
                return Err("invalid rule file path \"\"".into());
            }
        }
        Ok(())
    }
}

/// Prometheus accepts only `.json`, `.yml` and `.yaml` file SD patterns.
fn check_sd_file_pattern(p: &str) -> Result<(), String> {
    let ext_ok = [".json", ".yml", ".yaml"].iter().any(|e| p.ends_with(e));
    if !ext_ok {
        return Err(format!("invalid file extension: {p:?}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
