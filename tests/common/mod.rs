//! Helpers for tests that run the real `aion` binary: start it on a free loopback port
//! with a temporary data directory, and speak minimal HTTP/1.1 to it.

#![allow(dead_code)]

pub mod exporter;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running server, killed on drop.
pub struct Server {
    pub child: Child,
    pub addr: String,
    pub dir: PathBuf,
}

/// A free port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Server {
    /// Starts `aion` with `args` on a free port with data in `dir`, and waits until ready.
    pub fn start(dir: &Path, args: &[&str]) -> Server {
        Self::start_on(dir, &format!("127.0.0.1:{}", free_port()), args)
    }

    /// Like [`Server::start`] on a given `host:port`.
    pub fn start_on(dir: &Path, addr: &str, args: &[&str]) -> Server {
        let addr = addr.to_string();
        let child = Command::new(env!("CARGO_BIN_EXE_aion"))
            .arg(format!("--web.listen-address={addr}"))
            .arg(format!("--storage.tsdb.path={}", dir.display()))
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start aion");
        let s = Server {
            child,
            addr,
            dir: dir.to_path_buf(),
        };
        s.wait_ready(Duration::from_secs(30));
        s
    }

    /// Polls `/-/ready` until 200.
    pub fn wait_ready(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(r) = try_request(&self.addr, "GET", "/-/ready", None, &[]) {
                if r.status == 200 {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("server on {} not ready within {timeout:?}", self.addr);
    }

    pub fn get(&self, path: &str) -> Response {
        request(&self.addr, "GET", path, None, &[])
    }

    pub fn post_form(&self, path: &str, body: &str) -> Response {
        request(
            &self.addr,
            "POST",
            path,
            Some(body.as_bytes()),
            &[("Content-Type", "application/x-www-form-urlencoded")],
        )
    }

    /// Sends SIGTERM and waits for exit; returns the exit status code.
    pub fn terminate(mut self) -> Option<i32> {
        unsafe_kill(self.child.id(), 15);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st.code();
            }
            assert!(
                Instant::now() < deadline,
                "server did not stop after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn unsafe_kill(pid: u32, sig: i32) {
    let status = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub fn request(
    addr: &str,
    method: &str,
    path: &str,
    body: Option<&[u8]>,
    headers: &[(&str, &str)],
) -> Response {
    try_request(addr, method, path, body, headers)
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

pub fn try_request(
    addr: &str,
    method: &str,
    path: &str,
    body: Option<&[u8]>,
    headers: &[(&str, &str)],
) -> std::io::Result<Response> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(b) = body {
        req.push_str(&format!("Content-Length: {}\r\n", b.len()));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())?;
    if let Some(b) = body {
        s.write_all(b)?;
    }
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line)?;
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let mut headers = Vec::new();
    let mut chunked = false;
    let mut len: Option<usize> = None;
    loop {
        line.clear();
        r.read_line(&mut line)?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            let (k, v) = (k.trim().to_string(), v.trim().to_string());
            if k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked") {
                chunked = true;
            }
            if k.eq_ignore_ascii_case("content-length") {
                len = v.parse().ok();
            }
            headers.push((k, v));
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            line.clear();
            r.read_line(&mut line)?;
            let n = usize::from_str_radix(line.trim(), 16).unwrap_or(0);
            if n == 0 {
                break;
            }
            let mut chunk = vec![0; n];
            r.read_exact(&mut chunk)?;
            body.extend_from_slice(&chunk);
            line.clear();
            r.read_line(&mut line)?;
        }
    } else if let Some(n) = len {
        body.resize(n, 0);
        r.read_exact(&mut body)?;
    } else {
        r.read_to_end(&mut body)?;
    }
    Ok(Response {
        status,
        headers,
        body,
    })
}

/// Percent-encodes a form value.
pub fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Samples by series (its labels as JSON text): timestamp (ms) → value text.
pub type Seen = std::collections::BTreeMap<String, std::collections::BTreeMap<i64, String>>;

/// The raw samples a range-vector selector (e.g. `up[1m]`) returns as an instant query at
/// the current time; fails on an error answer or timestamps that do not increase.
pub fn raw_samples(addr: &str, selector: &str) -> Result<Seen, String> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_millis() as f64
        / 1000.0;
    let path = format!("/api/v1/query?query={}&time={now}", enc(selector));
    let r = try_request(addr, "GET", &path, None, &[]).map_err(|e| e.to_string())?;
    if r.status != 200 {
        return Err(format!("status {}: {}", r.status, r.text()));
    }
    let v: serde_json::Value = serde_json::from_slice(&r.body).map_err(|e| e.to_string())?;
    let mut out = Seen::new();
    for s in v["data"]["result"].as_array().ok_or("no result")? {
        let key = s["metric"].to_string();
        let mut samples = std::collections::BTreeMap::new();
        let mut last = i64::MIN;
        for p in s["values"].as_array().ok_or("no values")? {
            let t = (p[0].as_f64().ok_or("bad time")? * 1000.0).round() as i64;
            if t <= last {
                return Err(format!("{key}: timestamps not increasing at {t}"));
            }
            last = t;
            samples.insert(t, p[1].as_str().ok_or("bad value")?.to_string());
        }
        out.insert(key, samples);
    }
    Ok(out)
}
