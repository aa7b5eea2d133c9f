//! WAL behaviour across process boundaries: a writer killed with SIGKILL, and a write failing
//! half-way. Each test re-runs this test binary as a child process doing the writing.
#![cfg(unix)]

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aion::wal::{self, FsyncPolicy, Record, RefSample, Wal, WalOptions};

const CHILD_ENV: &str = "AION_WAL_TEST_CHILD_DIR";

fn commit(i: u64, samples: u64) -> Vec<Record> {
    vec![Record::Samples(
        (0..samples)
            .map(|j| RefSample {
                series_ref: i * 1000 + j,
                t: i as i64,
                v: j as f64,
            })
            .collect(),
    )]
}

/// Identifies a replayed commit by its first sample's ref.
fn replayed_ids(dir: &Path) -> (Vec<u64>, wal::ReplayStats) {
    let mut ids = Vec::new();
    let stats = wal::read_dir(dir, |r| match r {
        Record::Samples(s) => ids.push(s[0].series_ref / 1000),
        other => panic!("unexpected record {other:?}"),
    })
    .unwrap();
    (ids, stats)
}

/// Runs test `name` of this binary as a child writing to `dir`; returns the child.
fn spawn_child(name: &str, dir: &Path) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

fn ack(i: u64) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "ACK {i}").unwrap();
    out.flush().unwrap();
}

/// The test harness may print "test NAME ... " on the same line before the first output.
fn parse_ack(line: &str) -> Option<u64> {
    let at = line.find("ACK ")?;
    line[at + 4..].trim().parse().ok()
}

#[test]
fn killed_writer_loses_no_acknowledged_commit() {
    let name = "killed_writer_loses_no_acknowledged_commit";
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        // child: append until killed (bounded in case the parent is gone)
        let opts = WalOptions {
            fsync: FsyncPolicy::Never,
            segment_size: 64 << 10,
        };
        let (w, _) = Wal::open(Path::new(&dir), opts, |_| {}).unwrap();
        let start = Instant::now();
        for i in 0.. {
            w.log(&commit(i, 1 + i % 300)).unwrap();
            ack(i);
            if start.elapsed() > Duration::from_secs(60) {
                break;
            }
        }
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut child = spawn_child(name, dir.path());
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut last_ack = None;
    for line in lines.by_ref() {
        if let Some(i) = parse_ack(&line.unwrap()) {
            last_ack = Some(i);
            if i >= 500 {
                break;
            }
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // acknowledgements still in the pipe were acknowledged before the kill, too
    for line in lines {
        if let Some(i) = line.ok().as_deref().and_then(parse_ack) {
            last_ack = Some(i);
        }
    }
    let last_ack = last_ack.expect("child acknowledged nothing");
    assert!(last_ack >= 500);

    let (ids, stats) = replayed_ids(dir.path());
    assert!(
        ids.len() as u64 > last_ack,
        "acked {last_ack}, replayed {}",
        ids.len()
    );
    assert_eq!(ids, (0..ids.len() as u64).collect::<Vec<_>>(), "{stats:?}");
    // the killed log opens, repairs any torn tail and keeps going
    let opts = WalOptions {
        fsync: FsyncPolicy::Never,
        segment_size: 64 << 10,
    };
    let (w, _) = Wal::open(dir.path(), opts, |_| {}).unwrap();
    w.log(&commit(ids.len() as u64, 1)).unwrap();
    w.close().unwrap();
    let (ids2, stats) = replayed_ids(dir.path());
    assert!(stats.corrupted.is_none());
    assert_eq!(ids2, (0..=ids.len() as u64).collect::<Vec<_>>());
}

#[cfg(target_os = "linux")]
#[test]
fn failed_partial_write_is_rolled_back() {
    let name = "failed_partial_write_is_rolled_back";
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        // child: make the file size limit cut the second big commit in the middle
        let opts = WalOptions {
            fsync: FsyncPolicy::Never,
            ..WalOptions::default()
        };
        let dir = Path::new(&dir);
        let (w, _) = Wal::open(dir, opts, |_| {}).unwrap();
        w.log(&commit(0, 100)).unwrap();
        ack(0);
        let seg = dir.join(format!("{:08}", w.current_segment()));
        let size = std::fs::metadata(&seg).unwrap().len();
        let big = size / 2; // about half of one big commit still fits
                            // SAFETY: plain libc calls on this process's own limits and signal disposition.
        unsafe {
            assert_ne!(libc::signal(libc::SIGXFSZ, libc::SIG_IGN), libc::SIG_ERR);
            let lim = libc::rlimit {
                rlim_cur: size + big,
                rlim_max: libc::RLIM_INFINITY,
            };
            assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &lim), 0);
        }
        let err = w.log(&commit(1, 100)).unwrap_err();
        println!("ERR {err}");
        assert_eq!(
            std::fs::metadata(&seg).unwrap().len(),
            size,
            "not rolled back"
        );
        // small commits fit in the space left
        for i in 2..5 {
            w.log(&commit(i, 2)).unwrap();
            ack(i);
        }
        w.close().unwrap();
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let child = spawn_child(name, dir.path());
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "child failed: {stdout}");
    assert!(
        stdout.contains("ERR "),
        "the big write did not fail: {stdout}"
    );
    let acked: Vec<u64> = stdout.lines().filter_map(parse_ack).collect();
    assert_eq!(acked, vec![0, 2, 3, 4]);
    let (ids, stats) = replayed_ids(dir.path());
    assert!(stats.corrupted.is_none(), "{stats:?}");
    assert_eq!(ids, acked);
}
