//! Rules in the running server: `/api/v1/rules` filters, reloading rule files with the
//! configuration, and restoring `for` state from `ALERTS_FOR_STATE` after a restart.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::Server;

fn write_config(dir: &Path, rule_file: &Path) -> std::path::PathBuf {
    let cfg = dir.join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  evaluation_interval: 1s\nrule_files:\n  - {}\nscrape_configs: []\n",
            rule_file.display()
        ),
    )
    .unwrap();
    cfg
}

fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn groups(s: &Server, query: &str) -> Vec<serde_json::Value> {
    let r = s.get(&format!("/api/v1/rules{query}"));
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["data"]["groups"].as_array().unwrap().clone()
}

#[test]
fn rules_api_filters_and_reload() {
    let dir = tempfile::tempdir().unwrap();
    let rf = dir.path().join("r.yml");
    std::fs::write(
        &rf,
        "groups:\n  - name: rec\n    rules:\n      - record: x:one\n        expr: vector(1)\n        labels:\n          src: test\n",
    )
    .unwrap();
    let cfg = write_config(dir.path(), &rf);
    let s = Server::start(
        &dir.path().join("data"),
        &[
            &format!("--config.file={}", cfg.display()),
            "--web.enable-lifecycle",
        ],
    );
    wait_for("first evaluation", Duration::from_secs(60), || {
        groups(&s, "")
            .first()
            .is_some_and(|g| g["rules"][0]["health"] == "ok")
    });
    let g = groups(&s, "?foo=bar");
    assert_eq!(g.len(), 1);
    assert_eq!(g[0]["name"], "rec");
    assert_eq!(g[0]["file"], rf.display().to_string());
    assert_eq!(g[0]["interval"], 1.0);
    assert_eq!(g[0]["rules"][0]["type"], "recording");
    assert_eq!(g[0]["rules"][0]["query"], "vector(1)");
    assert_eq!(g[0]["rules"][0]["labels"]["src"], "test");
    assert_eq!(groups(&s, "?type=record").len(), 1);
    assert!(groups(&s, "?type=alert").is_empty());
    assert!(groups(&s, "?rule_group[]=nope").is_empty());
    assert_eq!(groups(&s, "?rule_name[]=x:one").len(), 1);
    assert_eq!(
        groups(
            &s,
            &format!("?file[]={}", common::enc(&rf.display().to_string()))
        )
        .len(),
        1
    );
    assert_eq!(s.get("/api/v1/rules?type=bogus").status, 400);
    // The recorded series is queryable.
    let q = s.get("/api/v1/query?query=x:one").json();
    assert_eq!(q["data"]["result"][0]["metric"]["src"], "test", "{q}");

    // Reload with an added alerting group.
    std::fs::write(
        &rf,
        "groups:\n  - name: rec\n    rules:\n      - record: x:one\n        expr: vector(1)\n        labels:\n          src: test\n  - name: alerts\n    rules:\n      - alert: Always\n        expr: vector(1)\n        annotations:\n          v: 'value {{ $value }}'\n",
    )
    .unwrap();
    assert_eq!(s.post_form("/-/reload", "").status, 200);
    wait_for("the alert after reload", Duration::from_secs(60), || {
        let a = s.get("/api/v1/alerts").json();
        a["data"]["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["labels"]["alertname"] == "Always" && x["state"] == "firing")
    });
    let a = s.get("/api/v1/alerts").json();
    let al = &a["data"]["alerts"][0];
    assert_eq!(al["annotations"]["v"], "value 1");
    assert_eq!(al["value"], "1e+00");
    let g = groups(&s, "?type=alert");
    assert_eq!(g.len(), 1);
    assert_eq!(g[0]["rules"][0]["state"], "firing");

    // A broken rule file on reload keeps the running rules.
    std::fs::write(
        &rf,
        "groups:\n  - name: rec\n    rules:\n      - record: x:one\n        expr: vector(\n",
    )
    .unwrap();
    // The reload fails as in Prometheus: 500 with the reason, and the reload
    // status says so.
    let r = s.post_form("/-/reload", "");
    assert_eq!(r.status, 500, "{}", r.text());
    assert!(
        r.text().starts_with("failed to reload config:"),
        "{}",
        r.text()
    );
    assert_eq!(groups(&s, "").len(), 2);
    let info = s.get("/api/v1/status/runtimeinfo").json();
    assert_eq!(info["data"]["reloadConfigSuccess"], false);
    assert!(s
        .get("/metrics")
        .text()
        .contains("prometheus_config_last_reload_successful 0"));
    s.terminate();
}

#[test]
fn for_state_is_restored_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let rf = dir.path().join("r.yml");
    std::fs::write(
        &rf,
        "groups:\n  - name: g\n    rules:\n      - alert: Slow\n        expr: vector(1)\n        for: 1h\n",
    )
    .unwrap();
    let cfg = write_config(dir.path(), &rf);
    let data = dir.path().join("data");
    let args = [
        format!("--config.file={}", cfg.display()),
        "--rules.alert.for-grace-period=1s".to_string(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let active_at = |s: &Server| -> Option<i64> {
        let a = s.get("/api/v1/alerts").json();
        a["data"]["alerts"]
            .as_array()
            .unwrap()
            .first()
            .and_then(|x| aion::model::time::parse_rfc3339_ms(x["activeAt"].as_str()?))
    };
    let s = Server::start(&data, &args);
    let mut first = None;
    wait_for("pending alert", Duration::from_secs(60), || {
        first = active_at(&s);
        first.is_some()
    });
    let first = first.unwrap();
    // Let ALERTS_FOR_STATE be written for a while (after restoration, which waits two
    // evaluations), then restart.
    wait_for("ALERTS_FOR_STATE", Duration::from_secs(60), || {
        let q = s.get("/api/v1/query?query=ALERTS_FOR_STATE").json();
        q["data"]["result"].as_array().is_some_and(|r| r.len() == 1)
    });
    std::thread::sleep(Duration::from_secs(12));
    s.terminate();
    let restart = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let s = Server::start(&data, &args);
    // After restoration the alert's activeAt lies well before the restart: it was shifted
    // only by the downtime, not reset to the first evaluation after the restart.
    let mut restored = None;
    wait_for("restored alert", Duration::from_secs(60), || {
        restored = active_at(&s);
        restored.is_some_and(|r| r < restart - 3000)
    });
    let restored = restored.unwrap();
    assert!(restored >= first, "restored {restored} < original {first}");
    s.terminate();
}

#[test]
fn broken_rule_file_stops_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let rf = dir.path().join("r.yml");
    std::fs::write(
        &rf,
        "groups:\n  - name: g\n    rules:\n      - record: 'bad name'\n        expr: vector(1)\n",
    )
    .unwrap();
    let cfg = write_config(dir.path(), &rf);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_aion"))
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!(
            "--web.listen-address=127.0.0.1:{}",
            common::free_port()
        ))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("error loading rule files"), "{stderr}");
    assert!(stderr.contains("bad name"), "{stderr}");
}
