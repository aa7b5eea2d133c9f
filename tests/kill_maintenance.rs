//! Kill test for maintenance: a child process ingests with `FsyncPolicy::Always` and a
//! two-second block range while its maintenance thread runs every few milliseconds, so
//! head persistence, WAL checkpoints and compactions run all the time. The parent
//! SIGKILLs it at a random moment, reopens the data directory and checks that every
//! acknowledged sample is there exactly once with its value, that nothing unexpected
//! appears, and that queries answer; the next round continues in the same directory.
//!
//! The child is this test binary re-run with a filter selecting [`maintenance_child`].
//! Set `AION_KILL_SEED` to replay a failing run (the seed is printed).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aion::db::{Db, DbOptions, FsyncPolicy};
use aion::model::Labels;

const CHILD_DIR_ENV: &str = "AION_KILL_CHILD_DIR";
const CHILD_ROUND_ENV: &str = "AION_KILL_CHILD_ROUND";
const ROUNDS: u64 = 20;
const SERIES: u64 = 6;
const SAMPLES_PER_SERIES: i64 = 5;
/// Data time between two samples of a series.
const STEP: i64 = 20;
const BLOCK_RANGE: i64 = 2_000;
/// Start of round `r`'s data: rounds do not overlap in time.
const ROUND_SPAN: i64 = 10_000_000;
/// Batches a child commits at most (bounds the data per round).
const MAX_BATCHES: i64 = 3_000;

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn value(series: u64, t: i64) -> f64 {
    f64::from_bits(splitmix(series << 48 ^ t as u64))
}

fn labels(series: u64) -> Labels {
    Labels::from_pairs(&[("__name__", "kill"), ("s", &series.to_string())])
}

fn opts() -> DbOptions {
    DbOptions::with_fsync(FsyncPolicy::Always)
        .block_range_ms(BLOCK_RANGE)
        .max_block_duration_ms(9 * BLOCK_RANGE)
        .retention_time_ms(0)
        .replay_workers(1)
}

/// The child's work; a no-op unless run as the child of [`kill_during_maintenance`].
#[test]
fn maintenance_child() {
    let Ok(dir) = std::env::var(CHILD_DIR_ENV) else {
        return;
    };
    let round: i64 = std::env::var(CHILD_ROUND_ENV).unwrap().parse().unwrap();
    let db = Db::open(
        &dir,
        opts().maintenance_interval(Some(Duration::from_millis(2))),
    )
    .unwrap();
    println!("open");
    let base = round * ROUND_SPAN;
    for j in 0..MAX_BATCHES {
        let mut app = db.appender();
        for n in 0..SAMPLES_PER_SERIES {
            let t = base + (j * SAMPLES_PER_SERIES + n) * STEP;
            for s in 0..SERIES {
                app.append(&labels(s), t, value(s, t)).unwrap();
            }
        }
        app.commit().unwrap();
        // acknowledged: the batch's samples are durable
        println!("ack {j}");
    }
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Every sample in the database, by series: (t, value bits).
fn read_all(dir: &Path) -> (BTreeMap<u64, Vec<(i64, u64)>>, aion::db::DbStats) {
    let db = Db::open(dir, opts().maintenance_interval(None)).unwrap();
    let q = db.querier(i64::MIN, i64::MAX).unwrap();
    let mut out = BTreeMap::new();
    for s in q.select(&[]).unwrap() {
        let id: u64 = s.labels.get("s").unwrap().parse().unwrap();
        let v: Vec<(i64, u64)> = s.samples().iter().map(|x| (x.t, x.v.to_bits())).collect();
        out.insert(id, v);
    }
    // the other query paths answer too
    assert!(!q.label_names(&[]).unwrap().is_empty() || out.is_empty());
    let st = db.db_stats();
    db.close().unwrap();
    (out, st)
}

#[test]
fn kill_during_maintenance() {
    if std::env::var(CHILD_DIR_ENV).is_ok() {
        return;
    }
    let seed: u64 = std::env::var("AION_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    println!("AION_KILL_SEED={seed}");
    let dir = tempfile::tempdir().unwrap();
    // per round: the highest acknowledged batch
    let mut acked: Vec<Option<i64>> = Vec::new();
    let mut blocks_seen = 0u64;
    let mut checkpoints_seen = false;
    for round in 0..ROUNDS {
        let kill_after = Duration::from_millis(20 + splitmix(seed ^ round) % 400);
        let exe = std::env::current_exe().unwrap();
        let mut child = Command::new(exe)
            .args([
                "maintenance_child",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DIR_ENV, dir.path())
            .env(CHILD_ROUND_ENV, round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut last = None;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(j) = line.strip_prefix("ack ") {
                    last = Some(j.trim().parse::<i64>().unwrap());
                }
            }
            last
        });
        let start = Instant::now();
        while start.elapsed() < kill_after {
            std::thread::sleep(Duration::from_millis(5));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        acked.push(reader.join().unwrap());

        let (got, st) = read_all(dir.path());
        blocks_seen = blocks_seen.max(st.blocks);
        checkpoints_seen |= std::fs::read_dir(dir.path().join("wal")).unwrap().any(|e| {
            e.unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("checkpoint.")
        });
        assert_eq!(st.corrupted_blocks, 0, "seed {seed} round {round}");
        for s in 0..SERIES {
            let samples = got.get(&s).cloned().unwrap_or_default();
            assert!(
                samples.windows(2).all(|w| w[0].0 < w[1].0),
                "seed {seed} round {round}: series {s} has duplicate or unordered samples"
            );
            // everything returned was written by some child, with the right value
            for &(t, v) in &samples {
                assert_eq!(v, value(s, t).to_bits(), "seed {seed} round {round} t {t}");
            }
            let have: std::collections::HashSet<i64> = samples.iter().map(|x| x.0).collect();
            for (r, last) in acked.iter().enumerate() {
                let Some(last) = last else { continue };
                let base = r as i64 * ROUND_SPAN;
                for j in 0..=*last {
                    for n in 0..SAMPLES_PER_SERIES {
                        let t = base + (j * SAMPLES_PER_SERIES + n) * STEP;
                        assert!(
                            have.contains(&t),
                            "seed {seed} round {round}: acknowledged sample t={t} of series \
                             {s} (round {r}, batch {j}) is missing"
                        );
                    }
                }
            }
        }
        // no temporary directories survive a reopen
        for e in std::fs::read_dir(dir.path()).unwrap() {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            assert!(!name.ends_with(".tmp-for-creation"), "{name}");
            assert!(!name.ends_with(".tmp-for-deletion"), "{name}");
        }
    }
    let total: i64 = acked.iter().flatten().map(|j| j + 1).sum();
    println!("acknowledged batches: {total}, blocks: {blocks_seen}");
    // the machinery under test really ran
    assert!(blocks_seen > 0, "no block was ever written");
    assert!(checkpoints_seen, "no checkpoint was ever written");
}
