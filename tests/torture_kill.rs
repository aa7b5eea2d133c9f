//! Kill torture of the real `aion` server: it scrapes in-test targets with many series
//! every 200 ms and evaluates a recording rule every 200 ms (two append paths), with a
//! 2 s block range, an 18 s maximum block duration, a 15 s time retention and maintenance
//! every 100 ms, so head persistence, WAL checkpoints, compaction and retention run all
//! the time. Each round the test reads the checked series through the query API (what
//! the API shows was committed: written to the WAL and applied to the head), then
//! SIGKILLs the server at a random moment and starts it again on the same directory.
//!
//! After every restart: the server becomes ready, every sample seen before any kill is
//! still there with the same value (unless time retention may have removed it), series
//! have strictly increasing timestamps, range queries answer, no block is set aside and
//! the log holds no panic.
//!
//! `AION_TORTURE_ROUNDS` sets the number of rounds (default 8), `AION_TORTURE_SEED`
//! replays a run (the seed is printed). A long run:
//!
//! ```sh
//! AION_TORTURE_ROUNDS=100 cargo test --release --test torture_kill -- --nocapture
//! ```

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::exporter::Target;
use common::{enc, free_port, raw_samples, try_request, Seen, Server};

const TARGETS: usize = 4;
/// Series per target that are checked sample by sample (`torture_check`).
const CHECKED: usize = 5;
/// Series per target that only add load (`torture_load`).
const LOAD: usize = 250;
const RETENTION_MS: i64 = 15_000;
/// Acknowledged samples this close to the retention limit are not required.
const RETENTION_SLACK_MS: i64 = 3_000;

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = splitmix(self.0);
        self.0
    }
    fn ms(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.next() % (hi - lo + 1))
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

const CHECK_QUERY: &str = "{__name__=~\"torture_check|torture:check_sum\"}[40s]";

/// Raw samples of the checked series in the last 40 s, through the instant query API.
fn read_checked(addr: &str) -> Result<Seen, String> {
    raw_samples(addr, CHECK_QUERY)
}

fn write_config(dir: &Path, targets: &[Target]) -> PathBuf {
    let list: Vec<String> = targets
        .iter()
        .map(|t| format!("\"127.0.0.1:{}\"", t.port))
        .collect();
    std::fs::write(
        dir.join("rules.yml"),
        "groups:\n  - name: torture\n    interval: 200ms\n    rules:\n      - record: torture:check_sum\n        expr: sum by (instance) (torture_check)\n",
    )
    .unwrap();
    let cfg = dir.join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 200ms\n  scrape_timeout: 200ms\n  evaluation_interval: 200ms\nrule_files: [rules.yml]\nscrape_configs:\n  - job_name: torture\n    static_configs:\n      - targets: [{}]\n",
            list.join(", ")
        ),
    )
    .unwrap();
    cfg
}

fn start_server(data: &Path, cfg: &Path, log: &Path, fsync: &str) -> Server {
    let addr = format!("127.0.0.1:{}", free_port());
    let log_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_aion"))
        .arg(format!("--web.listen-address={addr}"))
        .arg(format!("--storage.tsdb.path={}", data.display()))
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!("--storage.tsdb.wal-fsync={fsync}"))
        .arg(format!("--storage.tsdb.retention.time={RETENTION_MS}ms"))
        .args([
            "--storage.tsdb.min-block-duration=2s",
            "--storage.tsdb.max-block-duration=18s",
            "--storage.tsdb.maintenance-interval=100ms",
            "--log.level=info",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::from(log_file))
        .spawn()
        .expect("start aion");
    let s = Server {
        child,
        addr,
        dir: data.to_path_buf(),
    };
    s.wait_ready(Duration::from_secs(60));
    s
}

fn block_dirs(data: &Path) -> BTreeSet<String> {
    std::fs::read_dir(data)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.len() == 26)
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn kill_torture_of_the_server() {
    let rounds: u64 = std::env::var("AION_TORTURE_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8);
    let seed: u64 = std::env::var("AION_TORTURE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("kill torture: {rounds} rounds, AION_TORTURE_SEED={seed}");
    let mut rng = Rng(seed);
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let log = tmp.path().join("aion.log");
    let targets: Vec<Target> = (0..TARGETS)
        .map(|i| Target::start(i, CHECKED, LOAD))
        .collect();
    let cfg = write_config(tmp.path(), &targets);
    let started = Instant::now();

    let mut acked: Seen = Seen::new();
    let mut blocks_ever: BTreeSet<String> = BTreeSet::new();
    let mut verified = 0u64;
    let fail = |round: u64, msg: String, log: &Path| -> ! {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(40).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        panic!(
            "seed {seed} round {round}: {msg}\n--- server log tail ---\n{}",
            tail.join("\n")
        );
    };
    for round in 0..=rounds {
        let fsync = ["interval", "always", "never"][(rng.next() % 3) as usize];
        let server = start_server(&data, &cfg, &log, fsync);
        // everything acknowledged before the earlier kills is there
        let got = read_checked(&server.addr).unwrap_or_else(|e| fail(round, e, &log));
        let limit = now_ms() - 40_000 + 1_000;
        let retained = now_ms() - RETENTION_MS + RETENTION_SLACK_MS;
        for (series, samples) in &acked {
            for (t, v) in samples.range(limit.max(retained)..) {
                match got.get(series).and_then(|s| s.get(t)) {
                    Some(g) if g == v => verified += 1,
                    Some(g) => fail(
                        round,
                        format!("{series} at {t}: value {g}, acknowledged {v}"),
                        &log,
                    ),
                    None => fail(
                        round,
                        format!("{series}: acknowledged sample at {t} ({v}) is missing"),
                        &log,
                    ),
                }
            }
        }
        // queries over the whole range answer
        let q = format!(
            "/api/v1/query_range?query={}&start={}&end={}&step=0.5",
            enc("sum by (instance) (rate(torture_check[2s]))"),
            (now_ms() - 60_000) as f64 / 1000.0,
            now_ms() as f64 / 1000.0
        );
        match try_request(&server.addr, "GET", &q, None, &[]) {
            Ok(r) if r.status == 200 => {}
            Ok(r) => fail(
                round,
                format!("range query: {} {}", r.status, r.text()),
                &log,
            ),
            Err(e) => fail(round, format!("range query: {e}"), &log),
        }
        blocks_ever.extend(block_dirs(&data));
        if round == rounds {
            drop(server);
            break;
        }
        // run, read what was committed, run a little more, kill
        std::thread::sleep(rng.ms(200, 2_500));
        let seen = read_checked(&server.addr).unwrap_or_else(|e| fail(round, e, &log));
        for (series, samples) in seen {
            let entry = acked.entry(series).or_default();
            for (t, v) in samples {
                if let Some(old) = entry.insert(t, v.clone()) {
                    if old != v {
                        fail(
                            round,
                            format!("value at {t} changed from {old} to {v}"),
                            &log,
                        );
                    }
                }
            }
        }
        // forget what retention may remove anyway
        let horizon = now_ms() - 60_000;
        for s in acked.values_mut() {
            *s = s.split_off(&horizon);
        }
        std::thread::sleep(rng.ms(0, 400));
        let mut server = server;
        server.child.kill().unwrap();
        server.child.wait().unwrap();
        blocks_ever.extend(block_dirs(&data));
        for name in std::fs::read_dir(&data).unwrap().flatten() {
            let name = name.file_name().to_string_lossy().into_owned();
            if name.ends_with(".corrupted") {
                fail(round, format!("block set aside: {name}"), &log);
            }
        }
    }
    let text = std::fs::read_to_string(&log).unwrap();
    for bad in [
        "panicked",
        "failed validation",
        "set aside",
        "maintenance of",
    ] {
        if let Some(l) = text.lines().find(|l| l.contains(bad)) {
            fail(rounds, format!("log line: {l}"), &log);
        }
    }
    let repairs = text
        .lines()
        .filter(|l| l.contains("WAL") && l.contains("level=warn"))
        .count();
    let live = block_dirs(&data);
    let gone = blocks_ever.difference(&live).count();
    eprintln!(
        "kill torture: {rounds} kills in {:?}, {verified} acknowledged samples re-verified, \
         {} blocks written, {gone} deleted by compaction or retention, {repairs} WAL warnings",
        started.elapsed(),
        blocks_ever.len()
    );
    assert!(verified > 0, "seed {seed}: nothing was verified");
    assert!(
        !blocks_ever.is_empty(),
        "seed {seed}: no block was ever written"
    );
}
