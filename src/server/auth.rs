//! The web configuration applied to every request: configured response headers, the
//! request rate limit, and HTTP basic authentication against bcrypt hashes. It wraps
//! the whole router (API, UI, `/metrics`, health and lifecycle endpoints).
//!
//! bcrypt is slow on purpose, so successful checks are remembered: the key is a SHA-256
//! of the exact user name, stored hash and password, and only successes are stored, so a
//! wrong password never reaches or fills the cache, and a changed hash in the file
//! invalidates the old password at once. Unknown users are checked against a real hash
//! too, so timing does not reveal which users exist; the hash comparison itself is
//! constant-time (bcrypt crate).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderValue, Request, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;

use super::webconfig::{WebConfig, WebConfigSource};

/// Successful logins remembered before the cache is cleared and starts again.
const CACHE_CAPACITY: usize = 1024;

/// Shared state of the guard.
pub struct WebGuard {
    source: Arc<WebConfigSource>,
    ok_cache: parking_lot::Mutex<HashSet<[u8; 32]>>,
    /// One bcrypt computation at a time, as the exporter toolkit does.
    bcrypt_slot: tokio::sync::Semaphore,
    bucket: parking_lot::Mutex<Option<Bucket>>,
}

struct Bucket {
    interval: std::time::Duration,
    burst: u32,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn allow(&mut self, interval: std::time::Duration, burst: u32) -> bool {
        if self.interval != interval || self.burst != burst {
            *self = Bucket::new(interval, burst);
        }
        let now = Instant::now();
        let refill = now.duration_since(self.last).as_secs_f64() / interval.as_secs_f64();
        self.tokens = (self.tokens + refill).min(f64::from(burst));
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    fn new(interval: std::time::Duration, burst: u32) -> Bucket {
        Bucket {
            interval,
            burst,
            tokens: f64::from(burst),
            last: Instant::now(),
        }
    }
}

impl WebGuard {
    /// A guard reading its settings from `source` on every request.
    pub fn new(source: Arc<WebConfigSource>) -> Arc<WebGuard> {
        Arc::new(WebGuard {
            source,
            ok_cache: parking_lot::Mutex::new(HashSet::new()),
            bcrypt_slot: tokio::sync::Semaphore::new(1),
            bucket: parking_lot::Mutex::new(None),
        })
    }

    fn rate_limited(&self, cfg: &WebConfig) -> bool {
        let Some((interval, burst)) = cfg.rate_limit else {
            return false;
        };
        let mut b = self.bucket.lock();
        !b.get_or_insert_with(|| Bucket::new(interval, burst))
            .allow(interval, burst)
    }

    /// Whether the request's credentials are valid for `cfg`'s users.
    async fn authenticated(&self, cfg: &WebConfig, creds: Option<(String, String)>) -> bool {
        let Some((user, pass)) = creds else {
            return false;
        };
        let known = cfg.users.get(&user);
        // An unknown user is checked against a configured user's hash (same cost, same
        // time) and refused whatever the outcome.
        let Some(hash) = known.or_else(|| cfg.users.values().next()).cloned() else {
            return false;
        };
        let key = cache_key(&user, &hash, &pass);
        if known.is_some() && self.ok_cache.lock().contains(&key) {
            return true;
        }
        let Ok(_permit) = self.bcrypt_slot.acquire().await else {
            return false;
        };
        let h = hash.clone();
        let ok = tokio::task::spawn_blocking(move || bcrypt::verify(pass.as_bytes(), &h))
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or(false);
        if ok && known.is_some() {
            let mut c = self.ok_cache.lock();
            if c.len() >= CACHE_CAPACITY {
                c.clear();
            }
            c.insert(key);
            return true;
        }
        false
    }
}

/// The user and password of an `Authorization: Basic` header.
fn basic_credentials(req: &Request<Body>) -> Option<(String, String)> {
    let v = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = v.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let s = String::from_utf8(raw).ok()?;
    let (u, p) = s.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

/// SHA-256 over the length-prefixed user, hash and password.
fn cache_key(user: &str, hash: &str, pass: &str) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for part in [user, hash, pass] {
        ctx.update(&(part.len() as u64).to_le_bytes());
        ctx.update(part.as_bytes());
    }
    let d = ctx.finish();
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

fn add_headers(resp: &mut Response, cfg: &WebConfig) {
    for (k, v) in &cfg.headers {
        if !resp.headers().contains_key(k) {
            resp.headers_mut().insert(k.clone(), v.clone());
        }
    }
}

/// The middleware: headers, rate limit, then basic auth (401 with
/// `WWW-Authenticate: Basic` when it fails). An unreadable or invalid web config file
/// fails closed with 500 and a log line.
pub async fn guard(State(g): State<Arc<WebGuard>>, req: Request<Body>, next: Next) -> Response {
    let cfg = match g.source.current() {
        Ok(c) => c,
        Err(e) => {
            log::error!(target: "aion::server", "unable to parse web configuration file {} err={e}", g.source.path().display());
            return (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error\n").into_response();
        }
    };
    if g.rate_limited(&cfg) {
        let mut r = (StatusCode::TOO_MANY_REQUESTS, "Too Many Requests\n").into_response();
        add_headers(&mut r, &cfg);
        return r;
    }
    if !cfg.users.is_empty() && !g.authenticated(&cfg, basic_credentials(&req)).await {
        let mut r = (StatusCode::UNAUTHORIZED, "Unauthorized\n").into_response();
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic"));
        add_headers(&mut r, &cfg);
        return r;
    }
    let mut resp = next.run(req).await;
    add_headers(&mut resp, &cfg);
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_keys_separate_fields() {
        assert_ne!(cache_key("ab", "h", "c"), cache_key("a", "h", "bc"));
        assert_ne!(cache_key("a", "h1", "p"), cache_key("a", "h2", "p"));
        assert_eq!(cache_key("a", "h", "p"), cache_key("a", "h", "p"));
    }

    #[test]
    fn basic_header_is_decoded() {
        let req = Request::builder()
            .header("Authorization", "Basic YWxpY2U6czNjcjN0OjE=")
            .body(Body::empty())
            .unwrap();
        assert_eq!(
            basic_credentials(&req),
            Some(("alice".into(), "s3cr3t:1".into()))
        );
        let req = Request::builder()
            .header("Authorization", "Bearer x")
            .body(Body::empty())
            .unwrap();
        assert_eq!(basic_credentials(&req), None);
    }

    #[test]
    fn bucket_limits_bursts() {
        let mut b = Bucket::new(std::time::Duration::from_secs(3600), 2);
        let d = std::time::Duration::from_secs(3600);
        assert!(b.allow(d, 2));
        assert!(b.allow(d, 2));
        assert!(!b.allow(d, 2));
    }
}
