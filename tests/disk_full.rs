//! Disk full: the real `aion` server scrapes a fake target while its storage runs out of
//! space, then gets space back.
//!
//! Default mode (unprivileged, works in CI): the server runs with `RLIMIT_FSIZE` set (and
//! `SIGXFSZ` ignored) so the WAL segment cannot grow past 128 KiB and every write beyond
//! it fails with `EFBIG`, as a full disk fails with `ENOSPC`; the test raises the limit
//! with `prlimit(2)` to give the space back. Mounting a small file system needs
//! privileges CI may not have; the file size limit exercises the same write-failure
//! paths of the real binary.
//!
//! With `AION_DISKFULL_DIR` pointing at a small, empty file system (e.g. a 16 MiB tmpfs),
//! the test fills it with a filler file until `ENOSPC` and deletes the filler to give
//! the space back, with a 2 s block range and maintenance every 200 ms so head
//! persistence and checkpoints hit the full disk too.
//!
//! Checked: commits fail and are not acknowledged (nothing new becomes visible), the
//! failure is counted in `prometheus_tsdb_wal_writes_failed_total` and logged with the
//! segment path, queries keep answering, ingestion resumes by itself once space returns,
//! and after a SIGKILL and restart everything seen before is there, the WAL needs no
//! repair and the log holds no panic.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::exporter::Target;
use common::{free_port, raw_samples, try_request, Seen, Server};

const LIMIT: u64 = 128 << 10;
const QUERY: &str = "torture_check[5m]";

fn metric(addr: &str, name: &str) -> Option<f64> {
    let r = try_request(addr, "GET", "/metrics", None, &[]).ok()?;
    r.text()
        .lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

fn newest(seen: &Seen) -> i64 {
    seen.values()
        .filter_map(|s| s.keys().next_back().copied())
        .max()
        .unwrap_or(i64::MIN)
}

fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Starts aion with its stderr collected into `log`; `fsize` limits file sizes.
fn start(data: &Path, cfg: &Path, fsize: Option<u64>, log: &Arc<Mutex<String>>) -> Server {
    let addr = format!("127.0.0.1:{}", free_port());
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_aion"));
    cmd.arg(format!("--web.listen-address={addr}"))
        .arg(format!("--storage.tsdb.path={}", data.display()))
        .arg(format!("--config.file={}", cfg.display()))
        .args([
            "--storage.tsdb.maintenance-interval=200ms",
            "--storage.tsdb.retention.time=1h",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if fsize.is_none() {
        // head persistence and checkpoints run into the full disk too (with a file size
        // limit they would only keep the WAL segments small)
        cmd.arg("--storage.tsdb.min-block-duration=2s");
    }
    if let Some(limit) = fsize {
        use std::os::unix::process::CommandExt;
        // SAFETY: only async-signal-safe libc calls between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                if libc::signal(libc::SIGXFSZ, libc::SIG_IGN) == libc::SIG_ERR {
                    return Err(std::io::Error::last_os_error());
                }
                let lim = libc::rlimit {
                    rlim_cur: limit,
                    rlim_max: libc::RLIM_INFINITY,
                };
                if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let mut child = cmd.spawn().expect("start aion");
    let stderr = child.stderr.take().unwrap();
    let sink = Arc::clone(log);
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let mut s = sink.lock().unwrap();
            s.push_str(&line);
            s.push('\n');
        }
    });
    let s = Server {
        child,
        addr,
        dir: data.to_path_buf(),
    };
    s.wait_ready(Duration::from_secs(60));
    s
}

/// Fills the file system holding `dir` with `filler` until a write fails.
fn fill(filler: &Path) {
    let mut f = std::fs::File::create(filler).unwrap();
    let block = vec![0x5au8; 64 << 10];
    loop {
        if f.write_all(&block).and_then(|()| f.sync_data()).is_err() {
            break;
        }
    }
    // a last small write fills what a big one could not
    let _ = f.write_all(&block[..4096]);
}

#[test]
fn full_disk_rejects_commits_and_recovers() {
    let small_fs = std::env::var_os("AION_DISKFULL_DIR").map(PathBuf::from);
    let tmp = tempfile::tempdir().unwrap();
    let data = match &small_fs {
        Some(d) => d.join("data"),
        None => tmp.path().join("data"),
    };
    let _ = std::fs::remove_dir_all(&data);
    let target = Target::start(0, 5, 300);
    let cfg = tmp.path().join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 100ms\n  scrape_timeout: 100ms\nscrape_configs:\n  - job_name: full\n    static_configs:\n      - targets: [\"127.0.0.1:{}\"]\n",
            target.port
        ),
    )
    .unwrap();
    let log = Arc::new(Mutex::new(String::new()));
    let server = start(
        &data,
        &cfg,
        if small_fs.is_some() {
            None
        } else {
            Some(LIMIT)
        },
        &log,
    );
    let addr = server.addr.clone();
    let failed = || metric(&addr, "prometheus_tsdb_wal_writes_failed_total").unwrap_or(0.0);
    let filler = data.with_file_name("filler");
    if small_fs.is_some() {
        wait_for("first samples", Duration::from_secs(30), || {
            raw_samples(&addr, QUERY).is_ok_and(|s| !s.is_empty())
        });
        // let the head span more than a block range, so persistence is due while full
        std::thread::sleep(Duration::from_millis(2500));
        fill(&filler);
    }
    wait_for("a failed WAL write", Duration::from_secs(60), || {
        failed() > 0.0
    });
    eprintln!("disk full after {} failed writes", failed());

    // rejected commits are not acknowledged: nothing new becomes visible
    let before = raw_samples(&addr, QUERY).expect("queries answer on a full disk");
    assert!(!before.is_empty());
    let f0 = failed();
    let hold = if small_fs.is_some() { 4000 } else { 1500 };
    std::thread::sleep(Duration::from_millis(hold));
    let still = raw_samples(&addr, QUERY).expect("queries answer on a full disk");
    assert_eq!(
        newest(&still),
        newest(&before),
        "a sample was accepted on a full disk"
    );
    assert_eq!(still, before);
    assert!(
        failed() > f0 + 3.0,
        "failures are counted: {f0} → {}",
        failed()
    );
    let r = try_request(
        &addr,
        "GET",
        "/api/v1/query?query=sum(torture_check)",
        None,
        &[],
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());

    // space returns: ingestion resumes by itself
    if small_fs.is_some() {
        std::fs::remove_file(&filler).unwrap();
    } else {
        let lim = libc::rlimit {
            rlim_cur: libc::RLIM_INFINITY,
            rlim_max: libc::RLIM_INFINITY,
        };
        // SAFETY: prlimit on our own child with a valid rlimit.
        let rc = unsafe {
            libc::prlimit(
                server.child.id() as libc::pid_t,
                libc::RLIMIT_FSIZE,
                &lim,
                std::ptr::null_mut(),
            )
        };
        assert_eq!(rc, 0, "prlimit: {}", std::io::Error::last_os_error());
    }
    wait_for("ingestion to resume", Duration::from_secs(30), || {
        raw_samples(&addr, QUERY).is_ok_and(|s| newest(&s) > newest(&before))
    });
    let f1 = failed();
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(failed(), f1, "writes still failing after space returned");
    let after = raw_samples(&addr, QUERY).unwrap();

    // nothing stored was damaged: a killed and restarted server has all of it
    let mut server = server;
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let first_log = log.lock().unwrap().clone();
    let server = start(&data, &cfg, None, &log);
    let again = raw_samples(&server.addr, QUERY).unwrap();
    for (series, samples) in &after {
        for (t, v) in samples {
            assert_eq!(
                again.get(series).and_then(|s| s.get(t)),
                Some(v),
                "{series} at {t} lost or changed"
            );
        }
    }
    drop(server);
    let text = log.lock().unwrap().clone();
    assert!(!text.contains("panicked"), "{text}");
    let wal_line = first_log
        .lines()
        .find(|l| l.contains("write to ") && l.contains("failed"))
        .unwrap_or_else(|| panic!("no WAL failure line in the log:\n{first_log}"));
    assert!(wal_line.contains("wal/0000"), "{wal_line}");
    assert!(first_log.contains("writes succeed again"), "{first_log}");
    let restart_log = &text[first_log.len()..];
    assert!(
        !restart_log.contains("dropped"),
        "the WAL needed repair after the full disk: {restart_log}"
    );
    eprintln!("{wal_line}");
    for l in first_log.lines().filter(|l| l.contains("maintenance")) {
        eprintln!("{l}");
    }
    eprintln!(
        "{} failed WAL writes; {} samples re-verified after restart",
        f1,
        after.values().map(|s| s.len()).sum::<usize>()
    );
    if small_fs.is_some() {
        let _ = std::fs::remove_dir_all(&data);
    }
}
