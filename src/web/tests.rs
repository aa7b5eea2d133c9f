use axum::body::{to_bytes, Body};
use axum::http::{header, Request, StatusCode};
use tower::ServiceExt;

use super::*;

async fn get(path: &str) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let app: Router = router();
    let resp = app
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap()
        .to_vec();
    (status, headers, body)
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

#[test]
fn every_page_serves_the_shell_with_csp() {
    rt().block_on(async {
        for p in PAGES {
            let (status, h, body) = get(p).await;
            assert_eq!(status, StatusCode::OK, "{p}");
            assert_eq!(h[header::CONTENT_TYPE], "text/html; charset=utf-8", "{p}");
            assert_eq!(h[header::CONTENT_SECURITY_POLICY], CSP, "{p}");
            assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
            assert_eq!(h[header::CACHE_CONTROL], "no-cache");
            assert_eq!(body, INDEX_HTML.as_bytes());
        }
    });
}

#[test]
fn assets_have_their_content_types_and_bodies() {
    rt().block_on(async {
        for a in ASSETS {
            let (status, h, body) = get(a.path).await;
            assert_eq!(status, StatusCode::OK, "{}", a.path);
            assert_eq!(h[header::CONTENT_TYPE], a.content_type, "{}", a.path);
            assert_eq!(h[header::CONTENT_SECURITY_POLICY], CSP);
            assert!(h[header::CACHE_CONTROL]
                .to_str()
                .unwrap()
                .contains("max-age"));
            assert!(!body.is_empty());
            assert_eq!(body, a.body);
        }
        let (status, _, _) = get("/assets/nope.js").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    });
}

#[test]
fn shell_references_only_served_assets_and_has_no_inline_code() {
    let html = INDEX_HTML;
    for attr in ["src=\"", "href=\""] {
        for part in html.split(attr).skip(1) {
            let url = part.split('"').next().unwrap();
            if url.starts_with("/assets/") {
                assert!(
                    ASSETS.iter().any(|a| a.path == url),
                    "{url} is not embedded"
                );
            } else {
                assert!(PAGES.contains(&url), "{url} is not a page");
            }
        }
    }
    // Inline scripts, styles and event handlers would be blocked by the CSP anyway.
    assert!(!html.contains("<style"));
    assert!(!html.contains("style=\""));
    assert!(!html.contains(" on"), "inline event handler in the shell");
    for part in html.split("<script").skip(1) {
        let tag_end = part.find('>').unwrap();
        assert!(part[..tag_end].contains("src="), "inline script");
        assert!(
            part[tag_end + 1..].starts_with("</script>"),
            "inline script body"
        );
    }
}

#[test]
fn csp_is_strict() {
    for needle in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ] {
        assert!(CSP.contains(needle), "{needle}");
    }
    assert!(!CSP.contains("unsafe"));
}

#[test]
fn the_app_never_writes_html_strings() {
    let js = std::str::from_utf8(ASSETS[0].body).unwrap();
    assert_eq!(ASSETS[0].path, "/assets/app.js");
    for bad in [
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
        "new Function",
    ] {
        assert!(!js.contains(bad), "app.js uses {bad}");
    }
    let uplot = std::str::from_utf8(ASSETS[3].body).unwrap();
    assert!(!uplot.contains("innerHTML"));
}
