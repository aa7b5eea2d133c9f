//! The built-in web UI: a small single-page application (query browser with graphs,
//! targets, rules, alerts and status pages) whose files are embedded in the binary and
//! served with a strict Content-Security-Policy.
//!
//! Every page is the same HTML shell; the script picks the page from the path and builds
//! the DOM with `textContent` only, so metric names, labels and annotations are always
//! shown as text. No script or style is ever inlined in a response, and no response
//! redirects anywhere.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

pub mod redact;

/// The Content-Security-Policy sent with every UI response: only same-origin scripts,
/// styles, images and API calls; no inline code, no framing, no plugins.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; \
form-action 'self'; frame-ancestors 'none'";

/// The paths that serve the application shell.
pub const PAGES: &[&str] = &[
    "/",
    "/query",
    "/graph",
    "/targets",
    "/rules",
    "/alerts",
    "/status",
    "/tsdb-status",
    "/flags",
    "/config",
];

/// An embedded file: its URL path, content type and bytes.
#[derive(Debug, Clone, Copy)]
pub struct Asset {
    /// The path it is served under.
    pub path: &'static str,
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// Its contents.
    pub body: &'static [u8],
}

/// Every embedded file besides the HTML shell.
pub const ASSETS: &[Asset] = &[
    Asset {
        path: "/assets/app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../web/app.js"),
    },
    Asset {
        path: "/assets/app.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../../web/app.css"),
    },
    Asset {
        path: "/assets/favicon.svg",
        content_type: "image/svg+xml",
        body: include_bytes!("../../web/favicon.svg"),
    },
    Asset {
        path: "/assets/vendor/uplot/uPlot.iife.min.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../web/vendor/uplot/uPlot.iife.min.js"),
    },
    Asset {
        path: "/assets/vendor/uplot/uPlot.min.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../../web/vendor/uplot/uPlot.min.css"),
    },
    Asset {
        path: "/assets/vendor/uplot/LICENSE",
        content_type: "text/plain; charset=utf-8",
        body: include_bytes!("../../web/vendor/uplot/LICENSE"),
    },
];

/// The HTML shell every page path serves.
pub const INDEX_HTML: &str = include_str!("../../web/index.html");

/// Builds the router serving the UI pages and assets; merge it into the API router.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    let mut r = Router::new();
    for p in PAGES {
        r = r.route(p, get(page));
    }
    for a in ASSETS {
        let a = *a;
        r = r.route(a.path, get(move || async move { asset(a) }));
    }
    r
}

fn secure_headers(resp: &mut Response) {
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
}

async fn page() -> Response {
    let mut resp = (StatusCode::OK, INDEX_HTML).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    // The shell is tiny and names the assets; always revalidate so upgrades show at once.
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    secure_headers(&mut resp);
    resp
}

fn asset(a: Asset) -> Response {
    let mut resp = (StatusCode::OK, a.body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(a.content_type),
    );
    // Assets are not content-hashed, so allow a short cache and revalidation after it.
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    secure_headers(&mut resp);
    resp
}

#[cfg(test)]
mod tests;
