//! OAuth 2 client credentials (`oauth2:`): a token fetched from `token_url` with the
//! client's ID and secret, cached until ten seconds before it expires (as Go's oauth2
//! package does), and errors worded as that package words them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::client::{base64, read_secret_file, HttpClient};
use crate::config::{HttpClientConfig, OAuth2};

/// A token is refreshed this long before it expires.
const EXPIRY_DELTA: Duration = Duration::from_secs(10);
/// Timeout of a token request.
const TOKEN_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
struct Token {
    header: String,
    expiry: Option<Instant>,
}

/// Fetches and caches the token of one `oauth2` configuration.
pub struct TokenSource {
    cfg: OAuth2,
    http: Arc<HttpClient>,
    token: tokio::sync::Mutex<Option<Token>>,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSource")
            .field("token_url", &self.cfg.token_url)
            .finish_non_exhaustive()
    }
}

/// `application/x-www-form-urlencoded` escaping (Go's `url.QueryEscape`).
pub fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b))
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn form(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", query_escape(k), query_escape(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Go's `Token.Type()`: the scheme of the `Authorization` header.
fn token_type(t: &str) -> String {
    if t.eq_ignore_ascii_case("bearer") || t.is_empty() {
        "Bearer".into()
    } else if t.eq_ignore_ascii_case("mac") {
        "MAC".into()
    } else if t.eq_ignore_ascii_case("basic") {
        "Basic".into()
    } else {
        t.to_string()
    }
}

fn json_str(v: &serde_json::Value, k: &str) -> String {
    match v.get(k) {
        Some(serde_json::Value::String(s)) => s.clone(),
        _ => String::new(),
    }
}

impl TokenSource {
    /// A token source for the configuration (no request is made yet).
    pub fn new(cfg: OAuth2) -> TokenSource {
        let http = HttpClient::new(HttpClientConfig {
            tls_config: cfg.tls_config.clone(),
            proxy: cfg.proxy(),
            follow_redirects: true,
            ..Default::default()
        });
        TokenSource {
            cfg,
            http,
            token: tokio::sync::Mutex::new(None),
        }
    }

    /// The `Authorization` header value, fetching a token when none is cached or the
    /// cached one is about to expire.
    pub async fn header(&self) -> Result<String, String> {
        let mut g = self.token.lock().await;
        if let Some(t) = g.as_ref() {
            if t.expiry.is_none_or(|e| Instant::now() + EXPIRY_DELTA < e) {
                return Ok(t.header.clone());
            }
        }
        let t = self.fetch().await?;
        let h = t.header.clone();
        *g = Some(t);
        Ok(h)
    }

    async fn fetch(&self) -> Result<Token, String> {
        let secret = match (&self.cfg.client_secret, &self.cfg.client_secret_file) {
            (Some(s), _) => s.0.clone(),
            (None, Some(f)) => read_secret_file(f)?,
            (None, None) => String::new(),
        };
        let mut params = vec![("grant_type".to_string(), "client_credentials".to_string())];
        if !self.cfg.scopes.is_empty() {
            params.push(("scope".into(), self.cfg.scopes.join(" ")));
        }
        for (k, v) in &self.cfg.endpoint_params {
            params.push((k.clone(), v.clone()));
        }
        // Client authentication in the header first; like Go's auto-detection, retry
        // with the credentials in the form when the server rejects that.
        let basic = format!(
            "Basic {}",
            base64(
                format!(
                    "{}:{}",
                    query_escape(&self.cfg.client_id),
                    query_escape(&secret)
                )
                .as_bytes()
            )
        );
        let first = self.post(&form(&params), Some(&basic)).await;
        let resp = match first {
            Err(TokenError::Status(_)) => {
                params.push(("client_id".into(), self.cfg.client_id.clone()));
                params.push(("client_secret".into(), secret));
                self.post(&form(&params), None).await
            }
            other => other,
        };
        resp.map_err(|e| match e {
            TokenError::Other(s) | TokenError::Status(s) => s,
        })
    }

    async fn post(&self, body: &str, auth: Option<&str>) -> Result<Token, TokenError> {
        let mut headers = vec![("content-type", "application/x-www-form-urlencoded")];
        if let Some(a) = auth {
            headers.push(("authorization", a));
        }
        let resp = self
            .http
            .request_with(
                hyper::Method::POST,
                &self.cfg.token_url,
                &headers,
                body.as_bytes().to_vec(),
                TOKEN_TIMEOUT,
                1 << 20,
                None,
            )
            .await
            .map_err(|e| TokenError::Other(format!("oauth2: cannot fetch token: {e}")))?;
        let ct = resp.header("content-type").to_ascii_lowercase();
        let text = String::from_utf8_lossy(&resp.body).into_owned();
        let fields: serde_json::Value = if ct.starts_with("application/x-www-form-urlencoded")
            || ct.starts_with("text/plain")
        {
            let mut m = serde_json::Map::new();
            for kv in text.split('&') {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                m.insert(k.to_string(), serde_json::Value::String(v.to_string()));
            }
            serde_json::Value::Object(m)
        } else {
            serde_json::from_str(&text).unwrap_or(serde_json::Value::Null)
        };
        if !resp.status.is_success() {
            let code = json_str(&fields, "error");
            let msg = if code.is_empty() {
                format!(
                    "oauth2: cannot fetch token: {} {}\nResponse: {text}",
                    resp.status.as_u16(),
                    resp.status.canonical_reason().unwrap_or("")
                )
            } else {
                let mut m = format!("oauth2: {code:?}");
                for k in ["error_description", "error_uri"] {
                    let v = json_str(&fields, k);
                    if !v.is_empty() {
                        m.push_str(&format!(" {v:?}"));
                    }
                }
                m
            };
            return Err(TokenError::Status(msg));
        }
        if fields.is_null() {
            return Err(TokenError::Other(format!(
                "oauth2: cannot parse json: {}",
                text.chars().take(200).collect::<String>()
            )));
        }
        let access = json_str(&fields, "access_token");
        if access.is_empty() {
            return Err(TokenError::Other(
                "oauth2: server response missing access_token".into(),
            ));
        }
        let expires_in = match fields.get("expires_in") {
            Some(serde_json::Value::Number(n)) => n.as_f64().unwrap_or(0.0),
            Some(serde_json::Value::String(s)) => s.parse().unwrap_or(0.0),
            _ => 0.0,
        };
        let expiry = (expires_in > 0.0)
            .then(|| Instant::now() + Duration::from_secs_f64(expires_in.min(1e9)));
        Ok(Token {
            header: format!("{} {access}", token_type(&json_str(&fields, "token_type"))),
            expiry,
        })
    }
}

enum TokenError {
    /// The endpoint answered with an error status (worth a retry with the other
    /// client authentication style).
    Status(String),
    Other(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_and_types() {
        assert_eq!(query_escape("a b&c=d/é"), "a+b%26c%3Dd%2F%C3%A9");
        assert_eq!(token_type("bearer"), "Bearer");
        assert_eq!(token_type(""), "Bearer");
        assert_eq!(token_type("DPoP"), "DPoP");
        assert_eq!(
            form(&[("scope".into(), "a b".into()), ("x".into(), "1".into())]),
            "scope=a+b&x=1"
        );
    }
}
