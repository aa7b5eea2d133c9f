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
    let deadline = Instant::now() + Duration::from_secs(20);
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
