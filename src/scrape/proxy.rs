//! HTTP proxies as Prometheus's HTTP client uses them: `proxy_url` (all requests go
//! through it), `no_proxy` (hosts, domains, IPs and CIDRs that bypass it, with the
//! loopback exemption of Go's proxy rules), `proxy_from_environment` (`HTTP_PROXY`,
//! `HTTPS_PROXY`, `NO_PROXY`), and `CONNECT` tunnels with `proxy_connect_header` for
//! `https` targets.

use std::net::IpAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::client::{base64, ScrapeUrl};
use crate::config::ProxyConfig;

/// A parsed proxy URL (`http://[user:pass@]host[:port]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyUrl {
    /// `host:port` of the proxy.
    pub authority: String,
    /// The `Proxy-Authorization` header value from the URL's user information.
    pub auth: Option<String>,
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let c = b.get(i).copied().unwrap_or(0);
        if c == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            if let Some(v) = hex {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl ProxyUrl {
    /// Parses a proxy URL; a URL without a scheme is taken as `http://` (as Go does for
    /// the environment variables). Only `http` proxies are supported.
    pub fn parse(url: &str) -> Result<ProxyUrl, String> {
        let (scheme, rest) = url.split_once("://").unwrap_or(("http", url));
        if scheme != "http" {
            return Err(format!(
                "unsupported proxy scheme {scheme:?} in {url:?} (only http proxies are supported)"
            ));
        }
        let hostpart = rest.split(['/', '?', '#']).next().unwrap_or("");
        let (userinfo, host) = match hostpart.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, hostpart),
        };
        if host.is_empty() {
            return Err(format!("invalid proxy URL {url:?}: no host"));
        }
        let auth = userinfo.map(|u| {
            let (user, pass) = u.split_once(':').unwrap_or((u, ""));
            let cred = format!("{}:{}", percent_decode(user), percent_decode(pass));
            format!("Basic {}", base64(cred.as_bytes()))
        });
        let has_port = match host.strip_prefix('[') {
            Some(s) => s.contains("]:"),
            None => host.contains(':'),
        };
        let authority = if has_port {
            host.to_string()
        } else {
            format!("{host}:80")
        };
        Ok(ProxyUrl { authority, auth })
    }
}

fn env_any(names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|n| std::env::var(n).ok().filter(|v| !v.is_empty()))
}

/// The proxy a request to `url` goes through, if any.
pub fn proxy_for(cfg: &ProxyConfig, url: &ScrapeUrl) -> Result<Option<ProxyUrl>, String> {
    if cfg.proxy_from_environment {
        let proxy = if url.scheme == "https" {
            env_any(&["HTTPS_PROXY", "https_proxy"])
        } else {
            env_any(&["HTTP_PROXY", "http_proxy"])
        };
        let Some(p) = proxy else { return Ok(None) };
        let no_proxy = env_any(&["NO_PROXY", "no_proxy"]).unwrap_or_default();
        if !use_proxy(&no_proxy, &url.authority) {
            return Ok(None);
        }
        return ProxyUrl::parse(&p).map(Some);
    }
    let Some(p) = cfg.proxy_url.as_deref().filter(|p| !p.is_empty()) else {
        return Ok(None);
    };
    match cfg.no_proxy.as_deref().filter(|n| !n.is_empty()) {
        // Without `no_proxy` every request goes through the proxy, loopback included.
        None => ProxyUrl::parse(p).map(Some),
        Some(np) if use_proxy(np, &url.authority) => ProxyUrl::parse(p).map(Some),
        Some(_) => Ok(None),
    }
}

fn split_host_port(addr: &str) -> (String, String) {
    if let Some(rest) = addr.strip_prefix('[') {
        if let Some((h, p)) = rest.split_once(']') {
            return (h.to_string(), p.trim_start_matches(':').to_string());
        }
    }
    match addr.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h.to_string(), p.to_string()),
        _ => (addr.to_string(), String::new()),
    }
}

fn in_cidr(ip: IpAddr, net: IpAddr, bits: u32) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) if bits <= 32 => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            (u32::from(a) & mask) == (u32::from(b) & mask)
        }
        (IpAddr::V6(a), IpAddr::V6(b)) if bits <= 128 => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            (u128::from(a) & mask) == (u128::from(b) & mask)
        }
        _ => false,
    }
}

/// Whether a request to `authority` (`host:port`) uses the proxy under the `no_proxy`
/// list, following Go's rules: `localhost` and loopback IPs never do; `*` disables
/// the proxy; entries are IPs, CIDRs, `example.com` (the domain and its subdomains),
/// `.example.com` or `*.example.com` (subdomains only), each optionally with a port.
pub fn use_proxy(no_proxy: &str, authority: &str) -> bool {
    let (host, port) = split_host_port(authority);
    let host = host.to_ascii_lowercase();
    if host == "localhost" {
        return false;
    }
    let ip: Option<IpAddr> = host.parse().ok();
    if ip.is_some_and(|i| i.is_loopback()) {
        return false;
    }
    for entry in no_proxy.split(',') {
        let e = entry.trim().to_ascii_lowercase();
        if e.is_empty() {
            continue;
        }
        if e == "*" {
            return false;
        }
        if let Some((net, bits)) = e.split_once('/') {
            if let (Ok(net), Ok(bits)) = (net.parse::<IpAddr>(), bits.parse::<u32>()) {
                if ip.is_some_and(|i| in_cidr(i, net, bits)) {
                    return false;
                }
                continue;
            }
        }
        let (eh, ep) = split_host_port(&e);
        if let Ok(eip) = eh.parse::<IpAddr>() {
            if ip == Some(eip) && (ep.is_empty() || ep == port) {
                return false;
            }
            continue;
        }
        if !ep.is_empty() && ep != port {
            continue;
        }
        let eh = eh.strip_prefix('*').unwrap_or(&eh);
        let matched = match eh.strip_prefix('.') {
            Some(domain) if e.starts_with('.') || e.starts_with("*.") => {
                host.ends_with(&format!(".{domain}"))
            }
            _ => host == eh || host.ends_with(&format!(".{eh}")),
        };
        if matched {
            return false;
        }
    }
    true
}

/// Opens a `CONNECT` tunnel to `target` (`host:port`) through the proxy on `stream`.
pub async fn connect_tunnel(
    stream: &mut TcpStream,
    target: &str,
    proxy: &ProxyUrl,
    cfg: &ProxyConfig,
) -> Result<(), String> {
    let mut req = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
    if let Some(a) = &proxy.auth {
        req.push_str(&format!("Proxy-Authorization: {a}\r\n"));
    }
    for (name, values) in &cfg.proxy_connect_header {
        for v in values {
            if name.contains(['\r', '\n', ':']) || v.0.contains(['\r', '\n']) {
                return Err(format!("invalid proxy_connect_header {name:?}"));
            }
            req.push_str(&format!("{name}: {}\r\n", v.0));
        }
    }
    req.push_str("\r\n");
    stream
        .write_all(req.as_bytes())
        .await
        .map_err(|e| format!("proxyconnect tcp: {e}"))?;
    // Read the answer's head byte by byte so nothing of the tunnel is consumed.
    let mut head = Vec::with_capacity(256);
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = stream
            .read(&mut b)
            .await
            .map_err(|e| format!("proxyconnect tcp: {e}"))?;
        if n == 0 {
            return Err("proxyconnect tcp: unexpected EOF".into());
        }
        head.push(b[0]);
        if head.len() > 16 * 1024 {
            return Err("proxyconnect tcp: response header too long".into());
        }
    }
    let text = String::from_utf8_lossy(&head);
    let status_line = text.lines().next().unwrap_or("");
    let mut parts = status_line.splitn(3, ' ');
    let _version = parts.next();
    let code = parts.next().unwrap_or("");
    let reason = parts.next().unwrap_or("").trim();
    if code != "200" {
        return Err(if reason.is_empty() {
            format!("proxy refused CONNECT with status {code}")
        } else {
            reason.to_string()
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proxy_urls() {
        let p = ProxyUrl::parse("http://u:p%40ss@proxy:3128").unwrap();
        assert_eq!(p.authority, "proxy:3128");
        assert_eq!(p.auth.as_deref(), Some("Basic dTpwQHNz"));
        assert_eq!(ProxyUrl::parse("proxy").unwrap().authority, "proxy:80");
        assert!(ProxyUrl::parse("socks5://proxy:1080").is_err());
        assert!(ProxyUrl::parse("http://").is_err());
    }

    #[test]
    fn no_proxy_rules() {
        assert!(!use_proxy("", "localhost:80"));
        assert!(!use_proxy("", "127.0.0.1:9090"));
        assert!(!use_proxy("", "[::1]:9090"));
        assert!(use_proxy("", "example.com:80"));
        assert!(!use_proxy("*", "example.com:80"));
        assert!(!use_proxy("example.com", "example.com:80"));
        assert!(!use_proxy("example.com", "a.example.com:80"));
        assert!(use_proxy("example.com", "badexample.com:80"));
        assert!(use_proxy(".example.com", "example.com:80"));
        assert!(!use_proxy(".example.com", "a.example.com:80"));
        assert!(!use_proxy("*.example.com", "a.example.com:80"));
        assert!(!use_proxy("10.0.0.0/8", "10.1.2.3:80"));
        assert!(use_proxy("10.0.0.0/8", "11.1.2.3:80"));
        assert!(!use_proxy("192.168.1.1", "192.168.1.1:80"));
        assert!(!use_proxy("host:8080", "host:8080"));
        assert!(use_proxy("host:8080", "host:9090"));
    }
}
