//! The HTTP side of a scrape: one kept-alive HTTP/1.1 connection per target, the
//! headers Prometheus sends, authentication (basic, `authorization`, OAuth 2), TLS,
//! proxies, a timeout, gzip bodies and a body size limit. [`HttpClient`] also serves
//! HTTP discovery, OAuth 2 token requests and the notifier.

use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderValue, AUTHORIZATION, HOST, USER_AGENT};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;

use crate::config::HttpClientConfig;
use crate::exposition::Format;

/// The `Accept` header Prometheus 3 sends with its default scrape protocols.
pub const ACCEPT_HEADER: &str = "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1";

/// The `User-Agent` of scrapes.
pub const USER_AGENT_VALUE: &str = concat!("Prometheus/", env!("CARGO_PKG_VERSION"), " (Aion)");

/// A fetched body.
#[derive(Debug)]
pub struct Fetched {
    /// The (decompressed) body.
    pub body: Vec<u8>,
    /// The format from the `Content-Type` header.
    pub format: Format,
    /// The `Content-Type` header as sent.
    pub content_type: String,
}

/// A parsed `http://host:port/path?query` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScrapeUrl {
    /// `http` or `https`.
    pub scheme: String,
    /// `host:port` (port defaulted from the scheme).
    pub authority: String,
    /// Host as written (for the `Host` header).
    pub host_header: String,
    /// Path and query.
    pub path_and_query: String,
}

impl ScrapeUrl {
    /// Splits a URL built by target labelling.
    pub fn parse(url: &str) -> Result<ScrapeUrl, String> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| format!("invalid URL {url:?}"))?;
        let (host, path) = match rest.find('/') {
            Some(i) => (rest.get(..i).unwrap_or(""), rest.get(i..).unwrap_or("/")),
            None => (rest, "/"),
        };
        if host.is_empty() {
            return Err(format!("invalid URL {url:?}: no host"));
        }
        let has_port = if let Some(stripped) = host.strip_prefix('[') {
            stripped.contains("]:")
        } else {
            host.contains(':')
        };
        let authority = if has_port {
            host.to_string()
        } else {
            format!("{host}:{}", if scheme == "https" { 443 } else { 80 })
        };
        Ok(ScrapeUrl {
            scheme: scheme.to_string(),
            authority,
            host_header: host.to_string(),
            path_and_query: path.to_string(),
        })
    }
}

/// Standard base64 (with padding), for basic authentication.
pub fn base64(input: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(input)
}

pub(crate) fn read_secret_file(path: &str) -> Result<String, String> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .map_err(|e| format!("unable to read file {path}: {e}"))
}

/// A byte stream to a server: plain TCP or TLS (possibly through a proxy tunnel).
trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

/// An open HTTP/1.1 connection.
pub struct Connection {
    send: SendRequest<Full<Bytes>>,
    /// Through a plain HTTP proxy: requests use the absolute URL and carry this
    /// `Proxy-Authorization` (if any).
    http_proxy: Option<Option<String>>,
}

impl Connection {
    /// Whether the connection can still carry a request (the server has not closed it).
    pub fn is_open(&self) -> bool {
        !self.send.is_closed()
    }
}

/// An HTTP answer with its body read (and decompressed when gzip).
#[derive(Debug)]
pub struct Response {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: hyper::HeaderMap,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// A header as text (empty when absent or not UTF-8).
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

/// The HTTP client of one `scrape_configs` entry (or discovery config, or token
/// endpoint): authentication (basic, `authorization`, OAuth 2 with a cached token),
/// TLS and proxies. Shared by the pool's loops; each loop keeps its own connection.
pub struct HttpClient {
    cfg: HttpClientConfig,
    tls: parking_lot::Mutex<Option<Arc<rustls::ClientConfig>>>,
    oauth2: Option<super::oauth2::TokenSource>,
    /// Body buffers handed back after their scrapes, for the next fetches of any of
    /// the pool's targets (see [`ScrapeClient::recycle`]).
    spare_bodies: parking_lot::Mutex<Vec<Vec<u8>>>,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient").finish_non_exhaustive()
    }
}

impl HttpClient {
    /// A client with these settings.
    pub fn new(cfg: HttpClientConfig) -> Arc<HttpClient> {
        let oauth2 = cfg.oauth2.clone().map(super::oauth2::TokenSource::new);
        Arc::new(HttpClient {
            cfg,
            tls: parking_lot::Mutex::new(None),
            oauth2,
            spare_bodies: parking_lot::Mutex::new(Vec::new()),
        })
    }

    /// The settings.
    pub fn config(&self) -> &HttpClientConfig {
        &self.cfg
    }

    /// The TLS configuration, built on first use (a failure is retried next time).
    fn tls_config(&self) -> Result<Arc<rustls::ClientConfig>, String> {
        let mut g = self.tls.lock();
        if let Some(c) = g.as_ref() {
            return Ok(c.clone());
        }
        let c = super::tls::client_config(&self.cfg.tls_config)?;
        *g = Some(c.clone());
        Ok(c)
    }

    /// The `Authorization` header value.
    pub async fn auth_header(&self) -> Result<Option<String>, String> {
        if let Some(b) = &self.cfg.basic_auth {
            let user = match &b.username_file {
                Some(f) => read_secret_file(f)?,
                None => b.username.clone(),
            };
            let pass = match (&b.password, &b.password_file) {
                (Some(p), _) => p.0.clone(),
                (None, Some(f)) => read_secret_file(f)?,
                (None, None) => String::new(),
            };
            return Ok(Some(format!(
                "Basic {}",
                base64(format!("{user}:{pass}").as_bytes())
            )));
        }
        if let Some(a) = &self.cfg.authorization {
            let kind = a.kind.clone().unwrap_or_else(|| "Bearer".into());
            let cred = match (&a.credentials, &a.credentials_file) {
                (Some(c), _) => c.0.clone(),
                (None, Some(f)) => read_secret_file(f)?,
                (None, None) => String::new(),
            };
            return Ok(Some(format!("{kind} {cred}")));
        }
        if let Some(o) = &self.oauth2 {
            return o.header().await.map(Some);
        }
        Ok(None)
    }

    /// Opens a connection to the URL's server: through the proxy if one applies
    /// (a `CONNECT` tunnel for `https`), with TLS for `https`.
    pub async fn connect(&self, url: &ScrapeUrl) -> Result<Connection, String> {
        if url.scheme != "http" && url.scheme != "https" {
            return Err(format!("unsupported protocol scheme {:?}", url.scheme));
        }
        let proxy = super::proxy::proxy_for(&self.cfg.proxy, url)?;
        let dial = proxy
            .as_ref()
            .map_or(url.authority.as_str(), |p| p.authority.as_str());
        let mut stream = tokio::net::TcpStream::connect(dial).await.map_err(|e| {
            if proxy.is_some() {
                format!("proxyconnect tcp: dial tcp {dial}: {e}")
            } else {
                format!("dial tcp {dial}: {e}")
            }
        })?;
        let _ = stream.set_nodelay(true);
        let mut http_proxy = None;
        let io: Box<dyn Io> = if url.scheme == "https" {
            if let Some(p) = &proxy {
                super::proxy::connect_tunnel(&mut stream, &url.authority, p, &self.cfg.proxy)
                    .await?;
            }
            let tls = self.tls_config()?;
            let host = split_host(&url.authority);
            let name = super::tls::server_name(&self.cfg.tls_config, host)?;
            let shown = name.to_str().into_owned();
            let s = tokio_rustls::TlsConnector::from(tls)
                .connect(name, stream)
                .await
                .map_err(|e| super::tls::describe_error(&e, &shown))?;
            Box::new(s)
        } else {
            if let Some(p) = &proxy {
                http_proxy = Some(p.auth.clone());
            }
            Box::new(stream)
        };
        let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .map_err(|e| format!("handshake with {}: {e}", url.authority))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Connection { send, http_proxy })
    }

    /// Sends one request on `conn` with the client's authentication.
    pub async fn send(
        &self,
        conn: &mut Connection,
        url: &ScrapeUrl,
        method: hyper::Method,
        headers: &[(&str, &str)],
        body: Vec<u8>,
        limit: u64,
    ) -> Result<Response, String> {
        let auth = self.auth_header().await?;
        self.send_with(conn, url, method, headers, body, limit, auth, Vec::new())
            .await
    }

    /// Sends one request on `conn` with the given `Authorization` (unless `headers`
    /// has one). The answer's body is read into `recv` (emptied first), whose memory
    /// the caller may have kept from an earlier answer.
    #[allow(clippy::too_many_arguments)]
    async fn send_with(
        &self,
        conn: &mut Connection,
        url: &ScrapeUrl,
        method: hyper::Method,
        headers: &[(&str, &str)],
        body: Vec<u8>,
        limit: u64,
        auth: Option<String>,
        recv: Vec<u8>,
    ) -> Result<Response, String> {
        let target = if conn.http_proxy.is_some() {
            format!("{}://{}{}", url.scheme, url.host_header, url.path_and_query)
        } else {
            url.path_and_query.clone()
        };
        let mut req = Request::builder()
            .method(method)
            .uri(target.as_str())
            .header(HOST, url.host_header.as_str())
            .header(USER_AGENT, USER_AGENT_VALUE)
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| e.to_string())?;
        for (k, v) in headers {
            let name = hyper::header::HeaderName::from_bytes(k.as_bytes())
                .map_err(|e| format!("invalid header name {k:?}: {e}"))?;
            let value =
                HeaderValue::from_str(v).map_err(|e| format!("invalid header {k:?}: {e}"))?;
            req.headers_mut().insert(name, value);
        }
        if !req.headers().contains_key(AUTHORIZATION) {
            if let Some(a) = auth {
                let v =
                    HeaderValue::from_str(&a).map_err(|e| format!("invalid credentials: {e}"))?;
                req.headers_mut().insert(AUTHORIZATION, v);
            }
        }
        if let Some(Some(pa)) = &conn.http_proxy {
            let v =
                HeaderValue::from_str(pa).map_err(|e| format!("invalid proxy credentials: {e}"))?;
            req.headers_mut().insert("proxy-authorization", v);
        }
        conn.send.ready().await.map_err(|e| e.to_string())?;
        let resp = conn
            .send
            .send_request(req)
            .await
            .map_err(|e| e.to_string())?;
        let (parts, body) = resp.into_parts();
        let gzip = parts
            .headers
            .get(hyper::header::CONTENT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
        let body = read_body(body, gzip, limit, recv).await?;
        Ok(Response {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }

    /// One request on a fresh connection with the client's authentication, within
    /// `timeout`; errors are worded `Method "url": why`.
    pub async fn request(
        &self,
        method: hyper::Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
        timeout: Duration,
        limit: u64,
    ) -> Result<Response, String> {
        let verb = method.as_str().to_string();
        let auth = match self.auth_header().await {
            Ok(a) => a,
            Err(e) => return Err(format!("{} \"{url}\": {e}", go_verb(&verb))),
        };
        self.request_with(method, url, headers, body, timeout, limit, auth)
            .await
    }

    /// [`HttpClient::request`] with an explicit `Authorization` (none for `None`).
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn request_with(
        &self,
        method: hyper::Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
        timeout: Duration,
        limit: u64,
        auth: Option<String>,
    ) -> Result<Response, String> {
        let verb = go_verb(method.as_str());
        let fut = async {
            let u = ScrapeUrl::parse(url)?;
            let mut conn = self.connect(&u).await?;
            self.send_with(
                &mut conn,
                &u,
                method,
                headers,
                body,
                limit,
                auth,
                Vec::new(),
            )
            .await
        };
        match tokio::time::timeout(timeout, fut).await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => Err(format!("{verb} \"{url}\": {e}")),
            Err(_) => Err(format!(
                "{verb} \"{url}\": context deadline exceeded (timeout {}s)",
                timeout.as_secs_f64()
            )),
        }
    }
}

/// Go's spelling of a method in request errors (`Get`, `Post`).
fn go_verb(m: &str) -> String {
    match m {
        "GET" => "Get".into(),
        "POST" => "Post".into(),
        other => other.into(),
    }
}

fn split_host(authority: &str) -> &str {
    if authority.starts_with('[') {
        return authority
            .split(']')
            .next()
            .map_or(authority, |h| h.trim_start_matches('['));
    }
    authority.rsplit_once(':').map_or(authority, |(h, _)| h)
}

/// The largest body buffer [`ScrapeClient::recycle`] keeps for the next scrape.
const MAX_RECYCLED_BODY: usize = 16 << 20;

/// Body buffers a scrape pool keeps between scrapes. Its targets' scrapes are spread
/// over the interval, so few run at once, and a buffer per target would keep memory
/// the size of every target's body for nothing.
const MAX_SPARE_BODIES: usize = 2;

/// The most a body's announced length reserves before any of it arrived.
const MAX_PREALLOC: u64 = 64 << 20;

async fn read_body(
    mut body: hyper::body::Incoming,
    gzip: bool,
    limit: u64,
    mut raw: Vec<u8>,
) -> Result<Vec<u8>, String> {
    // Room for the announced length up front (bounded: the header is the server's
    // word), so a large body is not copied again on every doubling.
    let announced = hyper::body::Body::size_hint(&body).lower();
    let cap = if limit > 0 {
        limit.saturating_add(1)
    } else {
        MAX_PREALLOC
    };
    raw.clear();
    raw.reserve(announced.min(cap).min(MAX_PREALLOC) as usize);
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| e.to_string())?;
        if let Ok(data) = frame.into_data() {
            raw.extend_from_slice(&data);
            if !gzip && limit > 0 && raw.len() as u64 > limit {
                return Err(format!("body size limit exceeded ({limit} bytes)"));
            }
        }
    }
    if !gzip {
        return Ok(raw);
    }
    let dec = flate2::read::GzDecoder::new(raw.as_slice());
    let mut out = Vec::with_capacity(raw.len() * 4);
    let read = if limit > 0 {
        dec.take(limit.saturating_add(1)).read_to_end(&mut out)
    } else {
        flate2::read::GzDecoder::new(raw.as_slice()).read_to_end(&mut out)
    };
    read.map_err(|e| format!("decompressing gzip body: {e}"))?;
    if limit > 0 && out.len() as u64 > limit {
        return Err(format!("body size limit exceeded ({limit} bytes)"));
    }
    Ok(out)
}

/// Fetches scrape bodies from one target, reusing the connection and the memory of
/// earlier bodies (see [`ScrapeClient::recycle`]).
pub struct ScrapeClient {
    conn: Option<Connection>,
    http: Arc<HttpClient>,
}

impl std::fmt::Debug for ScrapeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScrapeClient")
            .field("connected", &self.conn.is_some())
            .finish()
    }
}

impl ScrapeClient {
    /// A client for one target using the pool's HTTP client.
    pub fn new(http: Arc<HttpClient>) -> Self {
        ScrapeClient { conn: None, http }
    }

    /// Hands back the body of a fetch once it is no longer needed, so a later fetch of
    /// the same scrape pool reads into memory that is already mapped: a fresh buffer for every scrape costs
    /// a page fault per 4 KiB of body (the allocator returns large freed blocks to the
    /// operating system). The pool keeps at most [`MAX_SPARE_BODIES`]; a buffer much
    /// larger than the body it held is let go rather than kept.
    pub fn recycle(&mut self, mut body: Vec<u8>) {
        if body.capacity() <= MAX_RECYCLED_BODY && body.capacity() / 4 <= body.len() {
            body.clear();
            let mut spare = self.http.spare_bodies.lock();
            if spare.len() < MAX_SPARE_BODIES {
                spare.push(body);
            }
        }
    }

    /// GETs the URL within `timeout`; `limit` bounds the decompressed body (0 = none).
    pub async fn fetch(
        &mut self,
        url: &ScrapeUrl,
        timeout: Duration,
        limit: u64,
    ) -> Result<Fetched, String> {
        let full = format!("{}://{}{}", url.scheme, url.host_header, url.path_and_query);
        match tokio::time::timeout(timeout, self.fetch_inner(url, timeout, limit)).await {
            Ok(Ok(f)) => Ok(f),
            Ok(Err(e)) => {
                self.conn = None;
                Err(format!("Get \"{full}\": {e}"))
            }
            Err(_) => {
                self.conn = None;
                Err(format!(
                    "Get \"{full}\": context deadline exceeded (timeout {}s)",
                    timeout.as_secs_f64()
                ))
            }
        }
    }

    async fn fetch_inner(
        &mut self,
        url: &ScrapeUrl,
        timeout: Duration,
        limit: u64,
    ) -> Result<Fetched, String> {
        let reusable = self
            .conn
            .as_ref()
            .is_some_and(|c| !c.send.is_closed() && c.send.is_ready());
        if !reusable {
            self.conn = None;
            self.conn = Some(self.http.connect(url).await?);
        }
        let Some(conn) = self.conn.as_mut() else {
            return Err("no connection".into());
        };
        let timeout_s = format!("{}", timeout.as_secs_f64());
        let headers = [
            ("accept", ACCEPT_HEADER),
            ("accept-encoding", "gzip"),
            ("x-prometheus-scrape-timeout-seconds", timeout_s.as_str()),
        ];
        let auth = self.http.auth_header().await?;
        let recv = self.http.spare_bodies.lock().pop().unwrap_or_default();
        let resp = self
            .http
            .send_with(
                conn,
                url,
                hyper::Method::GET,
                &headers,
                Vec::new(),
                limit,
                auth,
                recv,
            )
            .await?;
        if resp.status != StatusCode::OK {
            return Err(format!(
                "server returned HTTP status {} {}",
                resp.status.as_u16(),
                resp.status.canonical_reason().unwrap_or("")
            ));
        }
        let content_type = resp.header("content-type").to_string();
        Ok(Fetched {
            body: resp.body,
            format: Format::from_content_type(&content_type),
            content_type,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_vectors() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"user:pass"), "dXNlcjpwYXNz");
    }

    #[test]
    fn urls() {
        let u = ScrapeUrl::parse("http://localhost:9100/metrics?a=b").unwrap();
        assert_eq!(u.authority, "localhost:9100");
        assert_eq!(u.path_and_query, "/metrics?a=b");
        let u = ScrapeUrl::parse("http://example/metrics").unwrap();
        assert_eq!(u.authority, "example:80");
        assert_eq!(u.host_header, "example");
        let u = ScrapeUrl::parse("http://[::1]:9090/m").unwrap();
        assert_eq!(u.authority, "[::1]:9090");
        assert!(ScrapeUrl::parse("nonsense").is_err());
    }
}
