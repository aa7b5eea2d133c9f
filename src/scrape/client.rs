//! The HTTP side of a scrape: one kept-alive HTTP/1.1 connection per target, the
//! headers Prometheus sends, authentication, a timeout, gzip bodies and a body size
//! limit.

use std::io::Read;
use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderValue, ACCEPT, ACCEPT_ENCODING, AUTHORIZATION, HOST, USER_AGENT};
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

/// Fetches scrape bodies from one target, reusing the connection.
pub struct ScrapeClient {
    conn: Option<SendRequest<Empty<Bytes>>>,
    http: HttpClientConfig,
}

impl std::fmt::Debug for ScrapeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScrapeClient")
            .field("connected", &self.conn.is_some())
            .finish()
    }
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
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for c in input.chunks(3) {
        let b0 = u32::from(c.first().copied().unwrap_or(0));
        let b1 = u32::from(c.get(1).copied().unwrap_or(0));
        let b2 = u32::from(c.get(2).copied().unwrap_or(0));
        let n = (b0 << 16) | (b1 << 8) | b2;
        let ch = |i: u32| char::from(T.get(((n >> i) & 63) as usize).copied().unwrap_or(b'A'));
        out.push(ch(18));
        out.push(ch(12));
        out.push(if c.len() > 1 { ch(6) } else { '=' });
        out.push(if c.len() > 2 { ch(0) } else { '=' });
    }
    out
}

fn read_secret_file(path: &str) -> Result<String, String> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .map_err(|e| format!("unable to read file {path}: {e}"))
}

/// The `Authorization` header value of HTTP client settings (basic auth or an
/// `authorization` section, reading `*_file` secrets now), if any.
pub fn auth_header(http: &HttpClientConfig) -> Result<Option<String>, String> {
    if let Some(b) = &http.basic_auth {
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
    if let Some(a) = &http.authorization {
        let kind = a.kind.clone().unwrap_or_else(|| "Bearer".into());
        let cred = match (&a.credentials, &a.credentials_file) {
            (Some(c), _) => c.0.clone(),
            (None, Some(f)) => read_secret_file(f)?,
            (None, None) => String::new(),
        };
        return Ok(Some(format!("{kind} {cred}")));
    }
    Ok(None)
}

impl ScrapeClient {
    /// A client with the scrape config's HTTP settings.
    pub fn new(http: HttpClientConfig) -> Self {
        ScrapeClient { conn: None, http }
    }

    fn auth_header(&self) -> Result<Option<String>, String> {
        auth_header(&self.http)
    }

    async fn connect(&mut self, url: &ScrapeUrl) -> Result<(), String> {
        if url.scheme != "http" {
            return Err(format!(
                "scheme {:?} is not supported for scraping (only http)",
                url.scheme
            ));
        }
        let stream = tokio::net::TcpStream::connect(&url.authority)
            .await
            .map_err(|e| format!("dial tcp {}: {e}", url.authority))?;
        let _ = stream.set_nodelay(true);
        let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("handshake with {}: {e}", url.authority))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        self.conn = Some(send);
        Ok(())
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
            .is_some_and(|c| !c.is_closed() && c.is_ready());
        if !reusable {
            self.conn = None;
            self.connect(url).await?;
        }
        let mut req = Request::get(url.path_and_query.as_str())
            .header(HOST, url.host_header.as_str())
            .header(ACCEPT, ACCEPT_HEADER)
            .header(ACCEPT_ENCODING, "gzip")
            .header(USER_AGENT, USER_AGENT_VALUE)
            .header(
                "X-Prometheus-Scrape-Timeout-Seconds",
                format!("{}", timeout.as_secs_f64()),
            )
            .body(Empty::<Bytes>::new())
            .map_err(|e| e.to_string())?;
        if let Some(a) = self.auth_header()? {
            let v = HeaderValue::from_str(&a).map_err(|e| format!("invalid credentials: {e}"))?;
            req.headers_mut().insert(AUTHORIZATION, v);
        }
        let Some(conn) = self.conn.as_mut() else {
            return Err("no connection".into());
        };
        conn.ready().await.map_err(|e| e.to_string())?;
        let resp = conn.send_request(req).await.map_err(|e| e.to_string())?;
        let status = resp.status();
        if status != StatusCode::OK {
            return Err(format!(
                "server returned HTTP status {} {}",
                status.as_u16(),
                status.canonical_reason().unwrap_or("")
            ));
        }
        let content_type = resp
            .headers()
            .get(hyper::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let gzip = resp
            .headers()
            .get(hyper::header::CONTENT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
        let mut body = resp.into_body();
        let mut raw: Vec<u8> = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| e.to_string())?;
            if let Ok(data) = frame.into_data() {
                raw.extend_from_slice(&data);
                if !gzip && limit > 0 && raw.len() as u64 > limit {
                    return Err(format!("body size limit exceeded ({limit} bytes)"));
                }
            }
        }
        let body = if gzip {
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
            out
        } else {
            raw
        };
        Ok(Fetched {
            body,
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
