//! The WAL reader of remote write on a synthetic WAL: start at the end, series and
//! samples, relabelling, segment rollover, an incomplete tail, and resuming from saved
//! progress without resending.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::mpsc;

use super::progress::{self, Key};
use super::queue::{Item, QueueMetrics, ShardState};
use super::watcher::Watcher;
use crate::config::RelabelConfig;
use crate::model::Labels;
use crate::wal::{FsyncPolicy, Record, RefSample, RefSeries, Wal, WalOptions};

struct Harness {
    rxs: Vec<mpsc::Receiver<Item>>,
    states: Vec<Arc<Mutex<ShardState>>>,
    stop: Arc<AtomicBool>,
    metrics: Arc<QueueMetrics>,
    thread: std::thread::JoinHandle<()>,
}

/// A position no WAL has: the shards' `next_key` until the reader has decided where
/// to start (it sets every shard's before reading).
const NOT_STARTED: Key = Key {
    segment: u32::MAX,
    offset: u64::MAX,
    index: u32::MAX,
};

fn start(dir: &std::path::Path, shards: usize) -> Harness {
    start_aged(dir, shards, 0)
}

fn start_aged(dir: &std::path::Path, shards: usize, age_limit_ms: i64) -> Harness {
    let keep_up: Vec<RelabelConfig> =
        serde_yaml::from_str("- source_labels: [__name__]\n  regex: up\n  action: keep\n").unwrap();
    let mut senders = Vec::new();
    let mut rxs = Vec::new();
    let mut states = Vec::new();
    for _ in 0..shards {
        let (tx, rx) = mpsc::channel(1000);
        senders.push(tx);
        rxs.push(rx);
        states.push(Arc::new(Mutex::new(ShardState {
            next_key: NOT_STARTED,
            ..ShardState::default()
        })));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let metrics = Arc::new(QueueMetrics::default());
    let w = Watcher {
        wal_dir: dir.join("wal"),
        progress_path: progress::progress_path(dir, "q"),
        identity: "q".into(),
        relabel: keep_up,
        external: Labels::from_pairs(&[("cluster", "c1")]),
        senders,
        states: states.clone(),
        metrics: metrics.clone(),
        stop: stop.clone(),
        hold: None,
        age_limit_ms,
    };
    let thread = std::thread::spawn(move || w.run());
    Harness {
        rxs,
        states,
        stop,
        metrics,
        thread,
    }
}

impl Harness {
    /// Waits until the reader thread has run and chosen where to start, so that what
    /// the test writes next is "new" however late the thread was scheduled.
    fn wait_started(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.states.iter().any(|s| s.lock().next_key == NOT_STARTED) {
            assert!(Instant::now() < deadline, "WAL reader never started");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Items received until `n` have arrived (or a timeout), per shard.
    fn take(&mut self, n: usize) -> Vec<(usize, Item)> {
        self.take_within(n, Duration::from_secs(10))
    }

    fn take_within(&mut self, n: usize, within: Duration) -> Vec<(usize, Item)> {
        let mut out = Vec::new();
        let deadline = Instant::now() + within;
        while out.len() < n && Instant::now() < deadline {
            let mut any = false;
            for (i, rx) in self.rxs.iter_mut().enumerate() {
                while let Ok(it) = rx.try_recv() {
                    out.push((i, it));
                    any = true;
                }
            }
            if !any {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        out
    }

    /// Marks everything received as sent, the way a shard does.
    fn complete(&self, items: &[(usize, Item)]) {
        for (i, it) in items {
            let mut st = self.states[*i].lock();
            st.completed += 1;
            st.next_key = Key {
                index: it.key.index + 1,
                ..it.key
            };
        }
    }

    fn stop(self) -> Arc<QueueMetrics> {
        self.stop.store(true, Ordering::Release);
        drop(self.rxs);
        self.thread.join().unwrap();
        self.metrics
    }
}

fn sample(r: u64, t: i64) -> RefSample {
    RefSample {
        series_ref: r,
        t,
        v: t as f64,
    }
}

fn ts(items: &[(usize, Item)]) -> Vec<i64> {
    let mut v: Vec<i64> = items
        .iter()
        .filter_map(|(_, it)| it.sample.as_ref().map(|s| s.1))
        .collect();
    v.sort();
    v
}

#[test]
fn follows_the_wal_and_resumes_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let opts = WalOptions {
        fsync: FsyncPolicy::Never,
        segment_size: 96,
    };
    let (wal, _) = Wal::open(&dir.path().join("wal"), opts, |_| {}).unwrap();
    let up = |j: &str| Labels::from_pairs(&[("__name__", "up"), ("job", j)]);
    wal.log(&[
        Record::Series(vec![
            RefSeries {
                series_ref: 1,
                labels: up("a"),
            },
            RefSeries {
                series_ref: 2,
                labels: up("b"),
            },
            RefSeries {
                series_ref: 3,
                labels: Labels::from_pairs(&[("__name__", "other")]),
            },
        ]),
        Record::Samples(vec![sample(1, 1), sample(2, 1)]),
    ])
    .unwrap();
    // A new queue starts at the end of the WAL: samples at t=1 are not sent.
    let mut h = start(dir.path(), 2);
    h.wait_started();
    std::thread::sleep(Duration::from_millis(300));
    for t in 2..=20 {
        wal.log(&[Record::Samples(vec![
            sample(1, t),
            sample(2, t),
            sample(3, t),
        ])])
        .unwrap();
    }
    assert!(wal.segments().unwrap().len() > 2, "segments rolled over");
    let got = h.take(38);
    assert_eq!(got.len(), 38);
    let (shard, first) = &got[0];
    let labels = first.sample.as_ref().unwrap().0.clone();
    assert_eq!(labels.len(), 3, "external label added: {labels:?}");
    assert_eq!(labels[0].name, "__name__");
    assert_eq!(labels[1].name, "cluster");
    // series 1 on shard 1, series 2 on shard 0
    assert!(
        got.iter().all(|(s, it)| {
            let job = &it.sample.as_ref().unwrap().0[2].value;
            (*s == 1) == (job == "a")
        }),
        "first on shard {shard}"
    );
    // An incomplete record at the tail is not read until it is whole.
    let mut buf = Vec::new();
    crate::wal::Wal::encode_for_tests(&Record::Samples(vec![sample(1, 21)]), &mut buf);
    let last = *wal.segments().unwrap().last().unwrap();
    let path = dir.path().join("wal").join(format!("{last:08}"));
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    f.write_all(&buf[..buf.len() - 3]).unwrap();
    assert!(h.take_within(1, Duration::from_millis(500)).is_empty());
    f.write_all(&buf[buf.len() - 3..]).unwrap();
    let more = h.take(1);
    assert_eq!(ts(&more), vec![21]);
    // Shard 1 (series 1) has sent everything up to t=10, shard 0 nothing.
    let mut all = got.clone();
    all.extend(more);
    let done: Vec<_> = all
        .iter()
        .filter(|(s, it)| *s == 1 && it.sample.as_ref().unwrap().1 <= 10)
        .cloned()
        .collect();
    h.complete(&done);
    let m = h.stop();
    assert_eq!(
        m.samples_dropped.load(Ordering::Relaxed),
        19,
        "relabelled away"
    );
    // A new run resends exactly what was not sent: series 1 after t=10, all of series 2
    // (series 1 up to 10 comes as markers only).
    wal.log(&[Record::Samples(vec![sample(1, 22), sample(2, 22)])])
        .unwrap();
    let mut h = start(dir.path(), 3);
    let got = h.take(40);
    let real: Vec<(String, i64)> = got
        .iter()
        .filter_map(|(_, it)| it.sample.as_ref().map(|(l, t, _)| (l[2].value.clone(), *t)))
        .collect();
    let markers = got.iter().filter(|(_, it)| it.sample.is_none()).count();
    assert_eq!(markers, 9, "series 1 at t=2..=10");
    let mut want: Vec<(String, i64)> = (11..=22).map(|t| ("a".to_string(), t)).collect();
    want.extend((2..=20).chain(22..=22).map(|t| ("b".to_string(), t)));
    let mut real_sorted = real.clone();
    real_sorted.sort();
    want.sort();
    assert_eq!(real_sorted, want);
    h.stop();
}

#[test]
fn samples_older_than_the_age_limit_are_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = Wal::open(&dir.path().join("wal"), WalOptions::default(), |_| {}).unwrap();
    let mut h = start_aged(dir.path(), 1, 3_600_000);
    h.wait_started();
    std::thread::sleep(Duration::from_millis(200));
    let now = crate::db::system_clock_ms();
    wal.log(&[
        Record::Series(vec![RefSeries {
            series_ref: 7,
            labels: Labels::from_pairs(&[("__name__", "up")]),
        }]),
        Record::Samples(vec![sample(7, 1_000), sample(7, now)]),
    ])
    .unwrap();
    let got = h.take(1);
    assert_eq!(ts(&got), vec![now]);
    assert!(h.take_within(1, Duration::from_millis(300)).is_empty());
    let m = h.stop();
    assert_eq!(m.samples_dropped.load(Ordering::Relaxed), 1);
}

#[test]
fn series_gone_from_a_new_checkpoint_are_forgotten() {
    let dir = tempfile::tempdir().unwrap();
    let wal_dir = dir.path().join("wal");
    let opts = WalOptions {
        fsync: FsyncPolicy::Never,
        ..WalOptions::default()
    };
    let (wal, _) = Wal::open(&wal_dir, opts.clone(), |_| {}).unwrap();
    let up = |j: &str| Labels::from_pairs(&[("__name__", "up"), ("job", j)]);
    wal.log(&[Record::Series(vec![
        RefSeries {
            series_ref: 1,
            labels: up("a"),
        },
        RefSeries {
            series_ref: 2,
            labels: up("b"),
        },
    ])])
    .unwrap();
    let mut h = start(dir.path(), 1);
    h.wait_started();
    std::thread::sleep(Duration::from_millis(300));
    for _ in 0..3 {
        wal.cut_segment().unwrap();
    }
    // checkpoint.00000003 lists series 1 only: series 2 left the head.
    let (cp, _) = Wal::open(&wal_dir.join("checkpoint.00000003"), opts, |_| {}).unwrap();
    cp.log(&[Record::Series(vec![RefSeries {
        series_ref: 1,
        labels: up("a"),
    }])])
    .unwrap();
    cp.close().unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    wal.log(&[Record::Samples(vec![sample(1, 5), sample(2, 5)])])
        .unwrap();
    let got = h.take(1);
    assert_eq!(ts(&got), vec![5]);
    assert_eq!(got[0].1.sample.as_ref().unwrap().0[2].value, "a");
    assert!(h.take_within(1, Duration::from_millis(300)).is_empty());
    let m = h.stop();
    assert_eq!(
        m.samples_dropped.load(Ordering::Relaxed),
        1,
        "series 2 forgotten"
    );
}
