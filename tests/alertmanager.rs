//! Alerts delivered to a real Alertmanager (Debian's `prometheus-alertmanager`, v2 API) on
//! a loopback port. Without the package the test prints `SKIP` and passes.

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aion::model::Labels;
use aion::notifier::{Alert, AlertmanagerTarget, Notifier, NotifierOptions};

pub struct Alertmanager {
    child: Child,
    pub addr: String,
    _dir: tempfile::TempDir,
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn alertmanager_bin() -> Option<PathBuf> {
    [
        "/usr/bin/prometheus-alertmanager",
        "/usr/local/bin/alertmanager",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
}

/// Starts Alertmanager on a free loopback port with clustering off.
pub fn start_alertmanager() -> Option<Alertmanager> {
    let bin = alertmanager_bin()?;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("am.yml");
    std::fs::write(
        &cfg,
        "route:\n  receiver: 'null'\n  group_by: ['alertname']\n  group_wait: 1s\n  group_interval: 1s\nreceivers:\n  - name: 'null'\n",
    )
    .unwrap();
    let addr = format!("127.0.0.1:{}", common::free_port());
    let child = Command::new(bin)
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!(
            "--storage.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address={addr}"))
        .arg("--cluster.listen-address=")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let am = Alertmanager {
        child,
        addr,
        _dir: dir,
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(r) = common::try_request(&am.addr, "GET", "/-/ready", None, &[]) {
            if r.status == 200 {
                return Some(am);
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("alertmanager did not become ready");
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn am_alerts(addr: &str) -> Vec<serde_json::Value> {
    let r = common::request(addr, "GET", "/api/v2/alerts", None, &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    r.json().as_array().unwrap().clone()
}

#[test]
fn notifier_delivers_firing_and_resolved_alerts() {
    let Some(am) = start_alertmanager() else {
        println!("SKIP: prometheus-alertmanager not installed");
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let n = Notifier::new(NotifierOptions {
        external_labels: Labels::from_pairs(&[("cluster", "test"), ("severity", "ignored")]),
        ..NotifierOptions::default()
    });
    n.set_alertmanagers(vec![AlertmanagerTarget {
        url: format!("http://{}/api/v2/alerts", am.addr),
        timeout: Duration::from_secs(5),
        alert_relabel: Vec::new(),
        http: Default::default(),
    }]);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let loop_task = rt.spawn(n.clone().run(stop_rx));
    let t = now_ms();
    let mk = |name: &str, ends: i64| Alert {
        labels: Labels::from_pairs(&[
            ("alertname", name),
            ("instance", "db:5432"),
            ("severity", "critical"),
        ]),
        annotations: Labels::from_pairs(&[("summary", "Database connection lost")]),
        starts_at: t - 60_000,
        ends_at: ends,
        generator_url: aion::notifier::generator_url(
            "http://aion.example:9090",
            "database_connections_active == 0",
        ),
    };
    n.send(vec![
        mk("DatabaseConnectionLoss", t + 240_000),
        mk("Other", t + 240_000),
    ]);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut alerts = Vec::new();
    while Instant::now() < deadline {
        alerts = am_alerts(&am.addr);
        if alerts.len() == 2 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(alerts.len(), 2, "{alerts:#?}");
    let a = alerts
        .iter()
        .find(|a| a["labels"]["alertname"] == "DatabaseConnectionLoss")
        .unwrap();
    assert_eq!(a["labels"]["cluster"], "test", "external label added");
    assert_eq!(
        a["labels"]["severity"], "critical",
        "alert's own label wins"
    );
    assert_eq!(a["labels"]["instance"], "db:5432");
    assert_eq!(a["annotations"]["summary"], "Database connection lost");
    assert_eq!(a["status"]["state"], "active");
    assert_eq!(
        a["generatorURL"],
        "http://aion.example:9090/graph?g0.expr=database_connections_active+%3D%3D+0&g0.tab=1"
    );
    let starts = aion::model::time::parse_rfc3339_ms(a["startsAt"].as_str().unwrap()).unwrap();
    assert_eq!(starts, t - 60_000);
    let ends = aion::model::time::parse_rfc3339_ms(a["endsAt"].as_str().unwrap()).unwrap();
    assert_eq!(ends, t + 240_000);

    // Resolve one: endsAt in the past.
    n.send(vec![mk("DatabaseConnectionLoss", now_ms() - 1000)]);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut names = Vec::new();
    while Instant::now() < deadline {
        names = am_alerts(&am.addr)
            .iter()
            .filter(|a| a["status"]["state"] == "active")
            .map(|a| a["labels"]["alertname"].as_str().unwrap().to_string())
            .collect::<Vec<_>>();
        let resolved = am_alerts(&am.addr).iter().all(|a| {
            a["labels"]["alertname"] != "DatabaseConnectionLoss"
                || aion::model::time::parse_rfc3339_ms(a["endsAt"].as_str().unwrap()).unwrap()
                    < now_ms()
        });
        if names == vec!["Other".to_string()] && resolved {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(names, vec!["Other".to_string()]);
    // Alertmanager shows the alert before its reply reaches the notifier, which counts
    // the batch as sent only then.
    let deadline = Instant::now() + Duration::from_secs(10);
    while n.stats.sent.load(std::sync::atomic::Ordering::Relaxed) < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(n.stats.sent.load(std::sync::atomic::Ordering::Relaxed), 3);
    assert_eq!(
        n.stats.dropped.load(std::sync::atomic::Ordering::Relaxed),
        0
    );

    // An unreachable Alertmanager: the batch is counted as dropped, nothing panics.
    n.set_alertmanagers(vec![AlertmanagerTarget {
        url: format!("http://127.0.0.1:{}/api/v2/alerts", common::free_port()),
        timeout: Duration::from_secs(2),
        alert_relabel: Vec::new(),
        http: Default::default(),
    }]);
    let ok = rt.block_on(n.send_batch(&[mk("X", t + 1000)]));
    assert!(!ok);
    assert_eq!(
        n.stats.dropped.load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    let _ = stop_tx.send(true);
    let _ = rt.block_on(loop_task);
}

struct App {
    child: Child,
    stdin: std::process::ChildStdin,
    stdout: std::io::BufReader<std::process::ChildStdout>,
}

impl App {
    fn cmd(&mut self, c: &str) {
        use std::io::{BufRead, Write};
        writeln!(self.stdin, "{c}").unwrap();
        self.stdin.flush().unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ok");
    }
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_app(app_port: u16, svc_port: u16) -> Option<App> {
    use std::io::BufRead;
    let ok = Command::new("python3")
        .args(["-c", "import prometheus_client"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        return None;
    }
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/testdata/rules/alert_app.py");
    let mut child = Command::new("python3")
        .arg(script)
        .arg(app_port.to_string())
        .arg(svc_port.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .ok()?;
    let stdin = child.stdin.take().unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    Some(App {
        child,
        stdin,
        stdout,
    })
}

/// Alerts in Alertmanager that are active (not resolved), by alertname.
fn active_by_name(addr: &str) -> std::collections::BTreeMap<String, serde_json::Value> {
    am_alerts(addr)
        .into_iter()
        .filter(|a| {
            a["status"]["state"] == "active"
                && aion::model::time::parse_rfc3339_ms(a["endsAt"].as_str().unwrap_or(""))
                    .is_none_or(|e| e > now_ms())
        })
        .map(|a| (a["labels"]["alertname"].as_str().unwrap().to_string(), a))
        .collect()
}

const SEED_ALERTS: [&str; 5] = [
    "DatabaseConnectionLoss",
    "HighErrorRate",
    "QueueBacklog",
    "ServiceDown",
    "SlowResponseTime",
];

#[test]
fn seed_rules_fire_and_resolve_in_alertmanager_from_scraped_values() {
    let Some(am) = start_alertmanager() else {
        println!("SKIP: prometheus-alertmanager not installed");
        return;
    };
    let (app_port, svc_port) = (common::free_port(), common::free_port());
    let Some(mut app) = start_app(app_port, svc_port) else {
        println!("SKIP: python3 prometheus_client not installed");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let rules =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/testdata/rules/e2e_rules.yml");
    let cfg = dir.path().join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n  external_labels:\n    cluster: e2e\nrule_files:\n  - {}\nalerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['{}']\nscrape_configs:\n  - job_name: tracktion-analysis\n    static_configs:\n      - targets: ['127.0.0.1:{app_port}']\n  - job_name: tracktion-worker\n    static_configs:\n      - targets: ['127.0.0.1:{svc_port}']\n",
            rules.display(),
            am.addr
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    let server = common::Server::start(
        &data,
        &[
            &format!("--config.file={}", cfg.display()),
            "--rules.alert.resend-delay=1s",
            "--web.external-url=http://aion.test:9090/",
        ],
    );

    // Healthy: rules evaluate, nothing fires.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = server.get("/api/v1/rules").json();
        let groups = r["data"]["groups"].as_array().unwrap().clone();
        let evaluated = groups.len() == 3
            && groups.iter().all(|g| {
                g["rules"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|r| r["health"] == "ok")
            });
        let up = server.get("/api/v1/query?query=up").json();
        if evaluated && up["data"]["result"].as_array().unwrap().len() == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "rules never evaluated: {r}");
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(3));
    assert!(active_by_name(&am.addr).is_empty());
    assert!(server.get("/api/v1/alerts").json()["data"]["alerts"]
        .as_array()
        .unwrap()
        .is_empty());

    // Over the thresholds: all five fire in Alertmanager.
    app.cmd("bad");
    app.cmd("down");
    let deadline = Instant::now() + Duration::from_secs(90);
    let firing = loop {
        let got = active_by_name(&am.addr);
        if SEED_ALERTS.iter().all(|n| got.contains_key(*n)) {
            break got;
        }
        assert!(
            Instant::now() < deadline,
            "not all alerts fired: {:?}",
            got.keys().collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    let app_inst = format!("127.0.0.1:{app_port}");
    let svc_inst = format!("127.0.0.1:{svc_port}");
    let lbl = |n: &str, k: &str| firing[n]["labels"][k].as_str().unwrap_or("").to_string();
    let ann = |n: &str, k: &str| {
        firing[n]["annotations"][k]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    for n in SEED_ALERTS {
        assert_eq!(lbl(n, "cluster"), "e2e", "external label on {n}");
        assert_eq!(lbl(n, "alertname"), n);
        assert!(
            firing[n]["generatorURL"]
                .as_str()
                .unwrap()
                .starts_with("http://aion.test:9090/graph?g0.expr="),
            "{}",
            firing[n]
        );
    }
    assert_eq!(lbl("HighErrorRate", "severity"), "critical");
    assert_eq!(lbl("HighErrorRate", "service"), "analysis");
    assert_eq!(lbl("HighErrorRate", "status"), "500");
    assert_eq!(lbl("HighErrorRate", "job"), "tracktion-analysis");
    assert_eq!(
        ann("HighErrorRate", "description"),
        "Error rate is above 5% for analysis"
    );
    assert_eq!(lbl("SlowResponseTime", "severity"), "warning");
    assert_eq!(lbl("SlowResponseTime", "instance"), app_inst);
    assert_eq!(ann("SlowResponseTime", "summary"), "Slow response time");
    assert_eq!(lbl("QueueBacklog", "severity"), "warning");
    assert_eq!(
        ann("QueueBacklog", "description"),
        "Queue size is 150 items"
    );
    assert_eq!(lbl("DatabaseConnectionLoss", "severity"), "critical");
    assert_eq!(lbl("DatabaseConnectionLoss", "service"), "analysis");
    assert_eq!(
        ann("DatabaseConnectionLoss", "summary"),
        "Database connection lost for Analysis Service"
    );
    assert_eq!(lbl("ServiceDown", "job"), "tracktion-worker");
    assert_eq!(lbl("ServiceDown", "instance"), svc_inst);
    assert_eq!(
        ann("ServiceDown", "description"),
        format!("{svc_inst} has been down for more than 1 minute")
    );
    // The same alerts through Aion's own API, and the ALERTS series.
    let alerts = server.get("/api/v1/alerts").json();
    let names: std::collections::BTreeSet<String> = alerts["data"]["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["state"] == "firing")
        .map(|a| a["labels"]["alertname"].as_str().unwrap().to_string())
        .collect();
    for n in SEED_ALERTS {
        assert!(
            names.contains(n),
            "{n} missing from /api/v1/alerts: {alerts}"
        );
    }
    let q = server
        .get(&format!(
            "/api/v1/query?query={}",
            common::enc("count by (alertname) (ALERTS{alertstate=\"firing\"})")
        ))
        .json();
    assert_eq!(q["data"]["result"].as_array().unwrap().len(), 5, "{q}");
    let rules = server
        .get("/api/v1/rules?type=alert&rule_name[]=QueueBacklog")
        .json();
    let g = rules["data"]["groups"].as_array().unwrap();
    assert_eq!(g.len(), 1, "{rules}");
    assert_eq!(g[0]["rules"][0]["state"], "firing");
    assert_eq!(g[0]["rules"][0]["duration"], 2.0);
    let ams = server.get("/api/v1/alertmanagers").json();
    assert_eq!(
        ams["data"]["activeAlertmanagers"][0]["url"],
        format!("http://{}/api/v2/alerts", am.addr)
    );

    // Recovery: every alert resolves in Alertmanager.
    app.cmd("good");
    app.cmd("up");
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let got = active_by_name(&am.addr);
        if got.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "alerts did not resolve: {:?}",
            got.keys().collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let after = am_alerts(&am.addr);
    for a in &after {
        let ends = aion::model::time::parse_rfc3339_ms(a["endsAt"].as_str().unwrap()).unwrap();
        assert!(ends <= now_ms(), "resolved alert has a past endsAt: {a}");
    }
    server.terminate();
}
