//! The HTTP side of remote write and remote read: POSTs of snappy-compressed protobuf
//! bodies over a kept-alive HTTP/1.1 connection, through the scrape HTTP client, so
//! remote endpoints get the same TLS, proxy and authentication (basic, `authorization`,
//! OAuth 2) settings as scrapes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::config::HttpClientConfig;
use crate::scrape::client::{Connection, HttpClient, ScrapeUrl};

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
    client: Arc<HttpClient>,
    headers: BTreeMap<String, String>,
    timeout: Duration,
    conn: Option<Connection>,
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
        if parsed.scheme != "http" && parsed.scheme != "https" {
            return Err(format!(
                "{url}: unsupported protocol scheme {:?}",
                parsed.scheme
            ));
        }
        Ok(RemoteClient {
            url: parsed,
            url_text: url.to_string(),
            client: HttpClient::new(http),
            headers,
            timeout,
            conn: None,
        })
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

    async fn post_inner(&mut self, body: Vec<u8>, kind: &str) -> Result<Vec<u8>, SendError> {
        let version = if kind == "write" {
            ("X-Prometheus-Remote-Write-Version", "0.1.0")
        } else {
            ("X-Prometheus-Remote-Read-Version", "0.1.0")
        };
        let mut headers: Vec<(&str, &str)> = vec![
            ("Content-Encoding", "snappy"),
            ("Content-Type", "application/x-protobuf"),
            version,
        ];
        headers.extend(self.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        if !self.conn.as_ref().is_some_and(Connection::is_open) {
            self.conn = None;
            let c = self
                .client
                .connect(&self.url)
                .await
                .map_err(|e| SendError::Network(format!("Post \"{}\": {e}", self.url_text)))?;
            self.conn = Some(c);
        }
        let Some(conn) = self.conn.as_mut() else {
            return Err(SendError::Network("no connection".into()));
        };
        let resp = self
            .client
            .send(conn, &self.url, hyper::Method::POST, &headers, body, 0)
            .await
            .map_err(|e| SendError::Network(format!("Post \"{}\": {e}", self.url_text)))?;
        if !resp.status.is_success() {
            let b = &resp.body;
            let text = String::from_utf8_lossy(b.get(..512).unwrap_or(b)).into_owned();
            return Err(SendError::Status {
                status: resp.status.as_u16(),
                body: text.trim().to_string(),
            });
        }
        Ok(resp.body)
    }
}
