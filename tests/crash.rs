//! Crash test: a child process appends and commits with `FsyncPolicy::Always` from
//! several threads and reports each acknowledged batch on stdout; the parent SIGKILLs it
//! at a random moment, reopens the database and checks that every acknowledged batch is
//! there bit for bit, that each batch is all-or-nothing, and that nothing else appears.
//!
//! While the child runs (after its first acknowledgement), the parent also checks that
//! it cannot open the same directory: the lock holds across processes.
//!
//! The child is this test binary re-run with a filter selecting [`crash_child`] and
//! `CHILD_DIR_ENV` set. Set `AION_CRASH_SEED` to replay a failing run.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aion::db::{Db, DbError, DbOptions, FsyncPolicy};
use aion::model::{Labels, Matcher};

const CHILD_DIR_ENV: &str = "AION_CRASH_CHILD_DIR";
const CHILD_ROUND_ENV: &str = "AION_CRASH_CHILD_ROUND";
const THREADS: u64 = 3;
const SERIES_PER_THREAD: u64 = 16;
const SAMPLES_PER_SERIES: i64 = 2;
/// Batches a thread commits per round before it idles (bounds the data per round).
const MAX_BATCHES: u64 = 400;
/// Every this many batches, a batch also creates a brand-new series.
const NEW_SERIES_EVERY: u64 = 10;
const ROUNDS: u64 = 50;
/// A fresh directory every this many rounds keeps replay work bounded.
const ROUNDS_PER_DIR: u64 = 5;
const ROUND_SPAN: i64 = 100_000;

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The value of sample `n` of series `i` in batch `j` of thread `k` in `round`: arbitrary
/// bits, NaN payloads included, so the check is bit-exact.
fn value(round: u64, k: u64, j: u64, i: u64, n: i64) -> f64 {
    f64::from_bits(splitmix(
        (round << 48) ^ (k << 40) ^ (j << 12) ^ (i << 2) ^ n as u64,
    ))
}

fn ts(round: u64, j: u64, n: i64) -> i64 {
    round as i64 * ROUND_SPAN + j as i64 * SAMPLES_PER_SERIES + n
}

fn series_labels(k: u64, i: u64) -> Labels {
    Labels::from_pairs(&[
        ("__name__", "crash"),
        ("thread", &k.to_string()),
        ("s", &i.to_string()),
    ])
}

fn gen_labels(round: u64, k: u64, j: u64) -> Labels {
    Labels::from_pairs(&[
        ("__name__", "crash"),
        ("thread", &k.to_string()),
        ("gen", &format!("{round}-{j}")),
    ])
}

/// The child's work; a no-op unless run as the child of [`crash_recovers_acked_commits`].
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_DIR_ENV) else {
        return;
    };
    let round: u64 = std::env::var(CHILD_ROUND_ENV).unwrap().parse().unwrap();
    let db = Db::open(&dir, DbOptions::with_fsync(FsyncPolicy::Always)).unwrap();
    let out = std::sync::Mutex::new(std::io::stdout());
    std::thread::scope(|s| {
        for k in 0..THREADS {
            let db = &db;
            let out = &out;
            s.spawn(move || {
                let mut refs = Vec::new();
                for j in 0..MAX_BATCHES {
                    let mut app = db.appender();
                    for i in 0..SERIES_PER_THREAD {
                        for n in 0..SAMPLES_PER_SERIES {
                            let (t, v) = (ts(round, j, n), value(round, k, j, i, n));
                            match refs.get(i as usize) {
                                Some(&r) => app.append_ref(r, t, v).unwrap(),
                                None => refs.push(app.append(&series_labels(k, i), t, v).unwrap()),
                            }
                        }
                    }
                    if j % NEW_SERIES_EVERY == 0 {
                        let v = value(round, k, j, 999, 0);
                        app.append(&gen_labels(round, k, j), ts(round, j, 0), v)
                            .unwrap();
                    }
                    app.commit().unwrap();
                    let mut o = out.lock().unwrap();
                    writeln!(o, "ACK {k} {j}").unwrap();
                    o.flush().unwrap();
                }
            });
        }
    });
    // Idle until killed so the parent decides when the process dies.
    std::thread::sleep(Duration::from_secs(30));
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = splitmix(self.0);
        self.0
    }
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

/// Acknowledged batches per (round, thread): the highest acked batch index, if any.
type Acks = BTreeMap<(u64, u64), Option<u64>>;

fn run_child(dir: &Path, round: u64, delay: Duration, locked_checks: &mut u32) -> Vec<(u64, u64)> {
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_DIR_ENV, dir)
        .env(CHILD_ROUND_ENV, round.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let seen = Arc::new(AtomicUsize::new(0));
    let seen_by_reader = Arc::clone(&seen);
    let reader = std::thread::spawn(move || {
        let mut acks = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            // the test harness may print its own text before ours on the same line
            let Some(pos) = line.find("ACK ") else {
                continue;
            };
            let mut parts = line.get(pos..).unwrap_or("").split_whitespace();
            if parts.next() == Some("ACK") {
                let k: u64 = parts.next().unwrap().parse().unwrap();
                let j: u64 = parts.next().unwrap().parse().unwrap();
                acks.push((k, j));
                seen_by_reader.store(acks.len(), Ordering::Release);
            }
        }
        acks
    });
    std::thread::sleep(delay);
    if seen.load(Ordering::Acquire) > 0 {
        // The child has the database open: another process cannot open it.
        match Db::open(dir, DbOptions::with_fsync(FsyncPolicy::Never)) {
            Err(DbError::Locked { .. }) => *locked_checks += 1,
            other => panic!("opening a directory a live child holds: {other:?}"),
        }
    }
    // SIGKILL: no destructor, no flush, no WAL close.
    child.kill().unwrap();
    child.wait().unwrap();
    reader.join().unwrap()
}

/// Checks the database in `dir` against the acknowledgements of `rounds`.
fn verify(dir: &Path, rounds: std::ops::Range<u64>, acks: &Acks, seed: u64) {
    let db = Db::open(dir, DbOptions::with_fsync(FsyncPolicy::Never)).unwrap();
    let q = db.querier(i64::MIN, i64::MAX).unwrap();
    let all = q.select(&[Matcher::equal("__name__", "crash")]).unwrap();
    let mut by_labels: BTreeMap<Labels, Vec<(i64, u64)>> = BTreeMap::new();
    for s in all {
        let samples: Vec<(i64, u64)> = s.samples().iter().map(|x| (x.t, x.v.to_bits())).collect();
        assert!(
            samples.windows(2).all(|w| w[0].0 < w[1].0),
            "seed {seed}: {} has unordered or duplicate timestamps",
            s.labels
        );
        by_labels.insert(s.labels, samples);
    }
    let mut expected_series = 0;
    for k in 0..THREADS {
        // Which batches of each round made it: all acked ones, maybe the one in flight.
        let mut present: Vec<(u64, u64)> = Vec::new();
        for round in rounds.clone() {
            let acked = acks.get(&(round, k)).copied().flatten();
            let first_unacked = acked.map_or(0, |a| a + 1);
            let series0 = by_labels
                .get(&series_labels(k, 0))
                .cloned()
                .unwrap_or_default();
            let in_flight = first_unacked < MAX_BATCHES
                && series0
                    .iter()
                    .any(|&(t, _)| t == ts(round, first_unacked, 0));
            let upto = if in_flight {
                first_unacked + 1
            } else {
                first_unacked
            };
            present.extend((0..upto).map(|j| (round, j)));
        }
        for i in 0..SERIES_PER_THREAD {
            let want: Vec<(i64, u64)> = present
                .iter()
                .flat_map(|&(round, j)| {
                    (0..SAMPLES_PER_SERIES)
                        .map(move |n| (ts(round, j, n), value(round, k, j, i, n).to_bits()))
                })
                .collect();
            let got = by_labels
                .get(&series_labels(k, i))
                .cloned()
                .unwrap_or_default();
            if !want.is_empty() {
                expected_series += 1;
            }
            assert_eq!(
                got.len(),
                want.len(),
                "seed {seed}: thread {k} series {i}: sample count (batches must be all-or-nothing)"
            );
            assert_eq!(
                got, want,
                "seed {seed}: thread {k} series {i}: samples differ"
            );
        }
        for &(round, j) in &present {
            if j % NEW_SERIES_EVERY == 0 {
                let got = by_labels.get(&gen_labels(round, k, j));
                let want = vec![(ts(round, j, 0), value(round, k, j, 999, 0).to_bits())];
                assert_eq!(
                    got,
                    Some(&want),
                    "seed {seed}: series created by batch {j} of thread {k} in round {round}"
                );
                expected_series += 1;
            }
        }
    }
    assert_eq!(
        by_labels.len(),
        expected_series,
        "seed {seed}: unexpected series present"
    );
    db.close().unwrap();
}

#[test]
fn crash_recovers_acked_commits() {
    if std::env::var(CHILD_DIR_ENV).is_ok() {
        return;
    }
    let seed = std::env::var("AION_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("crash test seed {seed} (set AION_CRASH_SEED={seed} to replay)");
    let mut rng = Rng(seed);
    let base = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let mut acks: Acks = BTreeMap::new();
    let mut total_acked = 0usize;
    let mut locked_checks = 0u32;
    let mut dir = PathBuf::new();
    for round in 0..ROUNDS {
        let first_round_of_dir = round - round % ROUNDS_PER_DIR;
        if round % ROUNDS_PER_DIR == 0 {
            dir = base.path().join(format!("db{round}"));
        }
        let delay = Duration::from_millis(rng.range(5, 80));
        let got = run_child(&dir, round, delay, &mut locked_checks);
        total_acked += got.len();
        for k in 0..THREADS {
            let mine: Vec<u64> = got.iter().filter(|a| a.0 == k).map(|a| a.1).collect();
            // a thread acknowledges its batches in order, without gaps
            assert!(
                mine.iter().enumerate().all(|(n, &j)| n as u64 == j),
                "seed {seed}: round {round} thread {k} acks out of sequence"
            );
            acks.insert((round, k), mine.last().copied());
        }
        verify(&dir, first_round_of_dir..round + 1, &acks, seed);
    }
    eprintln!(
        "crash test: {ROUNDS} rounds, {total_acked} acknowledged batches, \
         {locked_checks} cross-process lock checks, {:?}",
        started.elapsed()
    );
    assert!(
        total_acked > 0,
        "seed {seed}: the child never committed anything"
    );
}
