//! The HTTP side of remote write and remote read: POSTs of snappy-compressed protobuf
//! bodies over a kept-alive HTTP/1.1 connection, with the scrape client's URL parsing
//! and authentication.

use std::collections::BTreeMap;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{
    HeaderName, HeaderValue, AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, HOST, USER_AGENT,
};
use hyper::Request;
use hyper_util::rt::TokioIo;

use crate::config::HttpClientConfig;
use crate::scrape::client::{auth_header, ScrapeUrl, USER_AGENT_VALUE};

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SendError {
    /// Connecting, writing or reading failed, or the request timed out: worth retrying.
    #[error("{0}")]
    Network(String),
    /// The server answered with a status other than 2xx.
    #[error("server returned HTTP status {status}: {body}")]
    Status {
        /// The status code.
        status: u16,
        /// The start of the response body.
        body: String,
    },
    /// The request could not be built (bad URL, header or credentials): not retried.
    #[error("{0}")]
    Invalid(String),
}

/// A remote storage endpoint with its connection.
pub struct RemoteClient {
    url: ScrapeUrl,
    url_text: String,
    http: HttpClientConfig,
    headers: BTreeMap<String, String>,
    timeout: Duration,
    conn: Option<SendRequest<Full<Bytes>>>,
}

impl std::fmt::Debug for RemoteClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteClient")
            .field("url", &self.url_text)
            .finish()
    }
}

impl RemoteClient {
    /// A client for `url` with the given HTTP settings, extra headers and timeout.
    pub fn new(
        url: &str,
        http: HttpClientConfig,
        headers: BTreeMap<String, String>,
        timeout: Duration,
    ) -> Result<RemoteClient, String> {
        let parsed = ScrapeUrl::parse(url)?;
        if parsed.scheme != "http" {
            return Err(format!(
                "{url}: scheme {:?} is not supported for remote storage yet (only http)",
                parsed.scheme
            ));
        }
        Ok(RemoteClient {
            url: parsed,
            url_text: url.to_string(),
            http,
            headers,
            timeout,
            conn: None,
        })
    }

    async fn connect(&mut self) -> Result<(), SendError> {
        let stream = tokio::net::TcpStream::connect(&self.url.authority)
            .await
            .map_err(|e| SendError::Network(format!("dial tcp {}: {e}", self.url.authority)))?;
        let _ = stream.set_nodelay(true);
        let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| SendError::Network(format!("handshake: {e}")))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        self.conn = Some(send);
        Ok(())
    }

    /// POSTs `body` with the remote write or read headers (`kind` is `write` or
    /// `read`); returns the response body of a 2xx answer.
    pub async fn post(&mut self, body: Vec<u8>, kind: &str) -> Result<Vec<u8>, SendError> {
        match tokio::time::timeout(self.timeout, self.post_inner(body, kind)).await {
            Ok(Ok(b)) => Ok(b),
            Ok(Err(e)) => {
                self.conn = None;
                Err(e)
            }
            Err(_) => {
                self.conn = None;
                Err(SendError::Network(format!(
                    "Post \"{}\": context deadline exceeded",
                    self.url_text
                )))
            }
        }
    }

    fn request(&self, body: Vec<u8>, kind: &str) -> Result<Request<Full<Bytes>>, SendError> {
        let mut req = Request::post(self.url.path_and_query.as_str())
            .header(HOST, self.url.host_header.as_str())
            .header(CONTENT_ENCODING, "snappy")
            .header(CONTENT_TYPE, "application/x-protobuf")
            .header(USER_AGENT, USER_AGENT_VALUE)
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| SendError::Invalid(e.to_string()))?;
        let h = req.headers_mut();
        if kind == "write" {
            h.insert(
                "X-Prometheus-Remote-Write-Version",
                HeaderValue::from_static("0.1.0"),
            );
        } else {
            h.insert(
                "X-Prometheus-Remote-Read-Version",
                HeaderValue::from_static("0.1.0"),
            );
        }
        for (k, v) in &self.headers {
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|e| SendError::Invalid(format!("header {k:?}: {e}")))?;
            let value = HeaderValue::from_str(v)
                .map_err(|e| SendError::Invalid(format!("header {k:?}: {e}")))?;
            h.insert(name, value);
        }
        if let Some(a) = auth_header(&self.http).map_err(SendError::Invalid)? {
            let v = HeaderValue::from_str(&a)
                .map_err(|e| SendError::Invalid(format!("invalid credentials: {e}")))?;
            h.insert(AUTHORIZATION, v);
        }
        Ok(req)
    }

    async fn post_inner(&mut self, body: Vec<u8>, kind: &str) -> Result<Vec<u8>, SendError> {
        let req = self.request(body, kind)?;
        let reusable = self
            .conn
            .as_ref()
            .is_some_and(|c| !c.is_closed() && c.is_ready());
        if !reusable {
            self.conn = None;
            self.connect().await?;
        }
        let Some(conn) = self.conn.as_mut() else {
            return Err(SendError::Network("no connection".into()));
        };
        conn.ready()
            .await
            .map_err(|e| SendError::Network(e.to_string()))?;
        let resp = conn
            .send_request(req)
            .await
            .map_err(|e| SendError::Network(format!("Post \"{}\": {e}", self.url_text)))?;
        let status = resp.status();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| SendError::Network(e.to_string()))?
            .to_bytes();
        if !status.is_success() {
            let text = String::from_utf8_lossy(bytes.get(..512).unwrap_or(&bytes)).into_owned();
            return Err(SendError::Status {
                status: status.as_u16(),
                body: text.trim().to_string(),
            });
        }
        Ok(bytes.to_vec())
    }
}
