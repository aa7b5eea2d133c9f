//! The web UI in a real browser: headless Chromium driven over WebDriver (chromedriver)
//! against a running `aion` with known data. Screenshots of every page are written to the
//! test's temporary directory (the paths are printed) so a person can look at them.
//!
//! Skips with a message when Chromium or chromedriver is missing, unless `CI` is set.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use aion::db::{Db, DbOptions};
use aion::model::Labels;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";
/// Metric names are restricted to `[a-zA-Z_:][a-zA-Z0-9_:]*`; HTML goes into label values.
const HTML_METRIC: &str = "html_demo";
const HTML_NAME: &str = "<b>html</b>";
const HTML_VALUE: &str = "<img src=x onerror=\"window.__xss=1\">";

struct Driver {
    child: Child,
    addr: String,
    session: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = common::try_request(
            &self.addr,
            "DELETE",
            &format!("/session/{}", self.session),
            None,
            &[],
        );
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    fn start(profile: &Path) -> Driver {
        let port = common::free_port();
        let addr = format!("127.0.0.1:{port}");
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let mut d = Driver {
            child,
            addr,
            session: String::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = common::try_request(&d.addr, "GET", "/status", None, &[]) {
                if r.status == 200 {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--window-size=1400,1000",
                    format!("--user-data-dir={}", profile.display()),
                ]
            }
        }}});
        let v = d.call("POST", "/session", Some(caps));
        d.session = v["sessionId"].as_str().expect("session id").to_string();
        d
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let body = body.map(|b| b.to_string());
        let r = common::request(
            &self.addr,
            method,
            path,
            body.as_deref().map(str::as_bytes),
            &[("Content-Type", "application/json")],
        );
        let v = r.json();
        assert_eq!(r.status, 200, "{method} {path}: {v}");
        v["value"].clone()
    }

    fn s(&self, method: &str, rest: &str, body: Option<Value>) -> Value {
        self.call(method, &format!("/session/{}{rest}", self.session), body)
    }

    fn goto(&self, url: &str) {
        self.s("POST", "/url", Some(json!({ "url": url })));
    }

    fn find(&self, css: &str) -> String {
        let v = self.s(
            "POST",
            "/element",
            Some(json!({"using": "css selector", "value": css})),
        );
        match v[ELEMENT_KEY].as_str() {
            Some(id) => id.to_string(),
            None => panic!("no element {css}: {v}"),
        }
    }

    fn click(&self, css: &str) {
        let e = self.find(css);
        self.s("POST", &format!("/element/{e}/click"), Some(json!({})));
    }

    fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css);
        self.s("POST", &format!("/element/{e}/clear"), Some(json!({})));
        self.s(
            "POST",
            &format!("/element/{e}/value"),
            Some(json!({ "text": text })),
        );
    }

    fn js(&self, script: &str) -> Value {
        self.s(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
    }

    /// Evaluates `script` until it returns a truthy value; returns that value.
    fn wait_for(&self, what: &str, script: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let v = self.js(script);
            let truthy = match &v {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::Number(n) => n.as_f64() != Some(0.0),
                Value::String(s) => !s.is_empty(),
                _ => true,
            };
            if truthy {
                return v;
            }
            if Instant::now() > deadline {
                let body = self.js("return document.body.innerText");
                panic!("timed out waiting for {what}; page text:\n{body}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn screenshot(&self, dir: &Path, name: &str) -> PathBuf {
        let v = self.s("GET", "/screenshot", None);
        let png = base64_decode(v.as_str().expect("base64 screenshot"));
        assert!(png.starts_with(b"\x89PNG"), "screenshot is not a PNG");
        let p = dir.join(format!("{name}.png"));
        std::fs::write(&p, png).unwrap();
        println!("screenshot: {}", p.display());
        p
    }
}

fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => (c - b'A') as u32,
            b'a'..=b'z' => (c - b'a') as u32 + 26,
            b'0'..=b'9' => (c - b'0') as u32 + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("bad base64 byte {c}"),
        }
    };
    let bytes: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    for chunk in bytes.chunks(4) {
        let data: Vec<u8> = chunk.iter().copied().filter(|&b| b != b'=').collect();
        let mut n = 0u32;
        for (i, &b) in data.iter().enumerate() {
            n |= val(b) << (18 - 6 * i);
        }
        let take = data.len().saturating_sub(1);
        out.extend_from_slice(&n.to_be_bytes()[1..1 + take]);
    }
    out
}

#[test]
fn base64_roundtrip_of_known_strings() {
    assert_eq!(base64_decode("aGVsbG8="), b"hello");
    assert_eq!(base64_decode("aGVsbG8h"), b"hello!");
    assert_eq!(base64_decode("aGk="), b"hi");
    assert_eq!(base64_decode("aA=="), b"h");
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Three `demo_requests` series over the last 30 minutes, and one series whose label values
/// are HTML.
fn write_data(dir: &Path, now: i64) {
    let db = Db::open(dir, DbOptions::default()).unwrap();
    let mut app = db.appender();
    for (i, inst) in ["a", "b", "c"].iter().enumerate() {
        let l = Labels::from_pairs(&[
            ("__name__", "demo_requests"),
            ("job", "api"),
            ("instance", inst),
        ]);
        for k in 0..120i64 {
            let t = now - 30 * 60_000 + k * 15_000;
            app.append(&l, t, (i as f64 + 1.0) * 10.0 + (k % 10) as f64)
                .unwrap();
        }
    }
    let evil = Labels::from_pairs(&[
        ("__name__", HTML_METRIC),
        ("tag", HTML_NAME),
        ("evil", HTML_VALUE),
    ]);
    for k in 0..120i64 {
        app.append(&evil, now - 30 * 60_000 + k * 15_000, 7.0)
            .unwrap();
    }
    app.commit().unwrap();
    db.close().unwrap();
}

fn have_browser() -> bool {
    let ok = Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists();
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but {CHROMIUM} or {CHROMEDRIVER} is missing (apt-get install chromium chromium-driver)"
        );
        eprintln!(
            "SKIPPED: web UI browser test needs {CHROMIUM} and {CHROMEDRIVER} \
             (apt-get install chromium chromium-driver)"
        );
    }
    ok
}

#[test]
fn web_ui_in_headless_chromium() {
    if !have_browser() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let shots = tmp.path().join("screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let data = tmp.path().join("data");
    let now = now_ms();
    write_data(&data, now);

    // One scrape target on a port nobody listens on: it must show as down with its error.
    let dead = format!("127.0.0.1:{}", common::free_port());
    let rules = tmp.path().join("rules.yml");
    std::fs::write(
        &rules,
        "groups:\n  - name: demo\n    interval: 1s\n    rules:\n      - alert: DemoHigh\n        \
         expr: demo_requests > 0\n        labels:\n          severity: page\n        \
         annotations:\n          summary: 'instance {{ $labels.instance }} <script>x</script>'\n",
    )
    .unwrap();
    let cfg = tmp.path().join("aion.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\n\
             scrape_configs:\n  - job_name: broken\n    basic_auth:\n      username: bob\n      \
             password: topsecret\n    static_configs:\n      - targets: ['{dead}']\n",
            rules.display()
        ),
    )
    .unwrap();
    let server = common::Server::start(&data, &[&format!("--config.file={}", cfg.display())]);
    let base = format!("http://{}", server.addr);

    // The shell carries the strict policy.
    let r = server.get("/graph");
    assert_eq!(r.status, 200);
    assert!(r
        .header("content-security-policy")
        .unwrap()
        .contains("script-src 'self'"));

    let profile = tmp.path().join("profile");
    std::fs::create_dir_all(&profile).unwrap();
    let d = Driver::start(&profile);

    // Query page: type an expression, switch to the graph tab, run a range query.
    d.goto(&format!("{base}/query"));
    d.wait_for("query page", "return !!document.querySelector('#expr')");
    // Autocomplete offers metric names from the API and functions.
    d.type_into("#expr", "demo_re");
    // Suggestions update as each character arrives: wait for the list that matches the
    // whole typed prefix, and fail (with the page text) if it never shows.
    let items = d.wait_for(
        "autocomplete",
        "const l = [...document.querySelectorAll('#autocomplete:not(.hidden) li .mono')].map(e => e.textContent); \
         return (l.length === 1 && l[0] === 'demo_requests') ? l : null",
    );
    assert_eq!(items, json!(["demo_requests"]));
    d.type_into("#expr", "ra");
    d.wait_for(
        "function suggestions",
        "return [...document.querySelectorAll('#autocomplete li .mono')].some(e => e.textContent === 'rate')",
    );
    d.type_into("#expr", "demo_requests");
    d.click("#tab-graph");
    let n = d.wait_for(
        "graph legend",
        "return document.querySelectorAll('#graph .u-legend tr.u-series').length",
    );
    // One row for the time axis plus one per series.
    assert_eq!(n, json!(4), "legend rows");
    let legend = d.js("return document.querySelector('#graph .u-legend').innerText");
    let legend = legend.as_str().unwrap();
    for inst in ["a", "b", "c"] {
        assert!(
            legend.contains(&format!(
                "demo_requests{{instance=\"{inst}\", job=\"api\"}}"
            )),
            "legend lacks instance {inst}: {legend}"
        );
    }
    let canvas = d.js(
        "const c = document.querySelector('#graph canvas'); return c ? [c.width, c.height] : null",
    );
    assert!(canvas[0].as_u64().unwrap() > 100 && canvas[1].as_u64().unwrap() > 100);
    // Hovering shows exact values and the timestamp in the legend.
    let e = d.find("#graph .u-over");
    d.s(
        "POST",
        "/actions",
        Some(
            json!({"actions": [{"type": "pointer", "id": "mouse", "actions": [
                {"type": "pointerMove", "origin": {ELEMENT_KEY: e}, "x": 200, "y": 10},
            ]}]}),
        ),
    );
    let hovered = d.wait_for(
        "hover value",
        "const v = [...document.querySelectorAll('#graph .u-legend .u-value')].map(e => e.textContent); \
         return v[0] && v[0].includes('UTC') && v[1] !== '-' && v[1] !== '--' ? v : null",
    );
    let vals: Vec<f64> = hovered.as_array().unwrap()[1..]
        .iter()
        .map(|v| v.as_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(vals.len(), 3);
    assert!(vals[0] >= 10.0 && vals[0] < 20.0, "{vals:?}");
    assert!(vals[2] >= 30.0 && vals[2] < 40.0, "{vals:?}");
    // The URL now holds the state, so the graph can be shared.
    let url = d.js("return location.search");
    let url = url.as_str().unwrap();
    assert!(
        url.contains("g0.expr=demo_requests") && url.contains("g0.tab=graph"),
        "{url}"
    );
    d.screenshot(&shots, "query-graph");

    // Errors are shown as the API returns them.
    d.type_into("#expr", "sum(");
    d.click("#execute");
    let err = d.wait_for(
        "error box",
        "const e = document.querySelector('#messages .alert.error'); return e ? e.textContent : ''",
    );
    assert!(err.as_str().unwrap().contains("bad_data"), "{err}");
    d.screenshot(&shots, "query-error");

    // A metric whose name and label are HTML shows as text, in the table and the legend.
    let sel = format!("{HTML_METRIC}{{tag=\"{HTML_NAME}\"}}");
    d.goto(&format!(
        "{base}/graph?g0.expr={}&g0.tab=1",
        common::enc(&sel)
    ));
    let cell = d.wait_for(
        "table row",
        "const c = document.querySelector('#result-table td .metric'); return c ? c.textContent : ''",
    );
    let cell = cell.as_str().unwrap();
    assert!(cell.contains(HTML_NAME), "{cell}");
    assert!(
        cell.contains("<img src=x onerror=\\\"window.__xss=1\\\">"),
        "{cell}"
    );
    let injected = d.js(
        "return document.querySelectorAll('#app b, #app img, #app script').length + (window.__xss ? 100 : 0)",
    );
    assert_eq!(injected, json!(0), "markup from data reached the DOM");
    d.screenshot(&shots, "query-html-table");
    d.goto(&format!(
        "{base}/graph?g0.expr={}&g0.tab=graph&g0.range_input=1h",
        common::enc(&sel)
    ));
    let legend = d.wait_for(
        "legend",
        "const l = document.querySelector('#graph .u-legend'); return l ? l.innerText : ''",
    );
    assert!(legend.as_str().unwrap().contains(HTML_NAME));
    let injected = d.js(
        "return document.querySelectorAll('#app b, #app img, #app script').length + (window.__xss ? 100 : 0)",
    );
    assert_eq!(injected, json!(0));
    d.screenshot(&shots, "query-html-graph");

    // Targets: wait until the dead target has been scraped once, then look at the page.
    let deadline = Instant::now() + Duration::from_secs(30);
    let api_error = loop {
        let v = server.get("/api/v1/targets").json();
        let t = v["data"]["activeTargets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["scrapePool"] == "broken")
            .cloned();
        if let Some(t) = t {
            if t["health"] == "down" && !t["lastError"].as_str().unwrap_or("").is_empty() {
                break t["lastError"].as_str().unwrap().to_string();
            }
        }
        assert!(Instant::now() < deadline, "target never marked down: {v}");
        std::thread::sleep(Duration::from_millis(200));
    };
    d.goto(&format!("{base}/targets"));
    let shown = d.wait_for(
        "target error",
        "const e = document.querySelector('.target-error .alert'); return e ? e.textContent : ''",
    );
    assert!(!shown.as_str().unwrap().is_empty());
    // The page may have loaded a later scrape's error; both name the dead address.
    assert!(shown.as_str().unwrap().contains(&dead) || api_error.contains(&dead));
    let downs = d.js("return [...document.querySelectorAll('tr.target .badge.down')].length");
    assert_eq!(downs, json!(1));
    d.click("#unhealthy-only");
    let states = d.js(
        "return [...document.querySelectorAll('tr.target td:nth-child(2)')].map(e => e.textContent)",
    );
    assert_eq!(states, json!(["DOWN"]), "only the unhealthy target stays");
    d.screenshot(&shots, "targets");

    // Rules and alerts: the rule fires for the three demo series.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v = server.get("/api/v1/alerts").json();
        if v["data"]["alerts"].as_array().is_some_and(|a| a.len() == 3) {
            break;
        }
        assert!(Instant::now() < deadline, "alerts never became active: {v}");
        std::thread::sleep(Duration::from_millis(200));
    }
    d.goto(&format!("{base}/rules"));
    let rule = d.wait_for(
        "rules table",
        "const t = document.querySelector('#app section table'); return t ? t.innerText : ''",
    );
    assert!(
        rule.as_str().unwrap().contains("demo_requests > 0"),
        "{rule}"
    );
    d.screenshot(&shots, "rules");
    d.goto(&format!("{base}/alerts"));
    let n = d.wait_for(
        "alert instances",
        "return document.querySelectorAll('tr.alert-instance').length",
    );
    assert_eq!(n, json!(3));
    let ann = d.js("return document.querySelector('tr.alert-instance').innerText");
    assert!(
        ann.as_str().unwrap().contains("<script>x</script>"),
        "{ann}"
    );
    let scripts = d.js("return document.querySelectorAll('#app script').length");
    assert_eq!(scripts, json!(0));
    d.screenshot(&shots, "alerts");

    // Status: build info, flags, config and TSDB cardinality.
    d.goto(&format!("{base}/status"));
    let tsdb = d.wait_for(
        "tsdb stats",
        "const t = document.querySelector('#tsdb'); return t && t.querySelectorAll('table').length >= 5 ? t.innerText : ''",
    );
    assert!(tsdb.as_str().unwrap().contains("demo_requests"));
    d.wait_for(
        "flags",
        "return document.querySelector('#flags').innerText.includes('--storage.tsdb.path')",
    );
    d.wait_for(
        "config",
        "return document.querySelector('#config pre').textContent.includes('job_name: broken')",
    );
    let cfg_text = d.js("return document.querySelector('#config pre').textContent");
    let cfg_text = cfg_text.as_str().unwrap();
    assert!(!cfg_text.contains("topsecret") && cfg_text.contains("password: <secret>"));
    d.wait_for(
        "build info",
        "return document.querySelector('#build').innerText.includes('version')",
    );
    d.screenshot(&shots, "status");

    println!("screenshots in {}", shots.display());
    if std::env::var_os("AION_KEEP_SCREENSHOTS").is_some() {
        let keep = tmp.keep();
        println!("kept {}", keep.display());
    }
}
