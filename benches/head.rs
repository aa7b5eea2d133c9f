//! Head benchmarks: append + commit throughput with cached references for each fsync
//! policy (scrape-like batches of 1000 samples over 100k series), and the replay rate of
//! a whole `Db::open`.
//!
//! Besides criterion's own output, each benchmark prints ns/sample and samples/s.

use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use aion::db::{Db, DbOptions, FsyncPolicy};

const SERIES: usize = 100_000;
const REPLAY_SERIES: usize = 10_000;
const REPLAY_SAMPLES_PER_SERIES: usize = 300;

#[path = "common/head_data.rs"]
mod head_data;

use head_data::{append_batches, labels, setup, Cursor, BATCH};

/// Appender threads that live across criterion's samples, as a server's worker
/// threads do (each keeps its thread's appender buffers and series cache between
/// batches; a thread started per sample would begin every sample cold). Each thread
/// owns a disjoint slice of the series and advances its own clock.
struct Workers {
    /// Per thread: where to send a number of batches, and where it reports them done
    /// (a thread that panics drops its sender, so waiting for it fails instead of
    /// hanging).
    jobs: Vec<(mpsc::Sender<u64>, mpsc::Receiver<()>)>,
    handles: Vec<thread::JoinHandle<()>>,
}

impl Workers {
    fn start(db: &Arc<Db>, refs: &Arc<Vec<u64>>, threads: usize) -> Self {
        let per_thread = refs.len() / threads;
        let mut jobs = Vec::with_capacity(threads);
        let mut handles = Vec::with_capacity(threads);
        for th in 0..threads {
            let (tx, rx) = mpsc::channel::<u64>();
            let (done_tx, done) = mpsc::channel();
            let (db, refs) = (Arc::clone(db), Arc::clone(refs));
            jobs.push((tx, done));
            handles.push(thread::spawn(move || {
                let mine = &refs[th * per_thread..(th + 1) * per_thread];
                let mut cur = Cursor::default();
                for n in rx {
                    append_batches(&db, mine, &mut cur, n);
                    done_tx.send(()).expect("report");
                }
            }));
        }
        Workers { jobs, handles }
    }

    /// Commits `batches` scrape-like batches, spread over the threads, and returns the
    /// elapsed time.
    fn run(&self, batches: u64) -> Duration {
        let threads = self.jobs.len() as u64;
        let start = Instant::now();
        for (th, (job, _)) in self.jobs.iter().enumerate() {
            let n = batches / threads + u64::from((th as u64) < batches % threads);
            job.send(n).expect("start batches");
        }
        for (_, done) in &self.jobs {
            done.recv().expect("batches done");
        }
        start.elapsed()
    }

    fn stop(self) {
        drop(self.jobs);
        for h in self.handles {
            h.join().expect("worker");
        }
    }
}

fn append_commit(c: &mut Criterion) {
    let interval = FsyncPolicy::Interval(Duration::from_secs(1));
    let cases: [(&str, FsyncPolicy, usize, usize); 6] = [
        ("never_1thread", FsyncPolicy::Never, 1, SERIES),
        ("interval_1s_1thread", interval, 1, SERIES),
        // the same with a working set that fits in the CPU caches
        ("interval_1s_1thread_8k_series", interval, 1, 8_000),
        ("always_1thread", FsyncPolicy::Always, 1, SERIES),
        ("always_4threads", FsyncPolicy::Always, 4, SERIES),
        ("always_8threads", FsyncPolicy::Always, 8, SERIES),
    ];
    let mut g = c.benchmark_group("head_append_commit_1000_per_batch");
    g.throughput(Throughput::Elements(BATCH as u64));
    for (name, policy, threads, series) in cases {
        // set up lazily: criterion only runs the benchmarks its filter selects
        let mut state: Option<(tempfile::TempDir, Arc<Db>, Workers)> = None;
        let mut total = Duration::ZERO;
        let mut total_batches = 0u64;
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let (_, _, workers) = state.get_or_insert_with(|| {
                    let (dir, db, refs) = setup(policy, series);
                    let db = Arc::new(db);
                    let workers = Workers::start(&db, &Arc::new(refs), threads);
                    (dir, db, workers)
                });
                let d = workers.run(iters);
                total += d;
                total_batches += iters;
                d
            })
        });
        let samples = (total_batches * BATCH as u64) as f64;
        if total_batches == 0 {
            continue;
        }
        println!(
            "{name}: {:.1} ns/sample, {:.2} M samples/s",
            total.as_nanos() as f64 / samples,
            samples / total.as_secs_f64() / 1e6
        );
        if let Some((_dir, db, workers)) = state {
            workers.stop();
            if let Ok(db) = Arc::try_unwrap(db) {
                db.close().expect("close");
            }
        }
    }
    g.finish();
}

/// Bytes of all files under `dir`.
fn dir_bytes(dir: &std::path::Path) -> u64 {
    let mut n = 0;
    for e in std::fs::read_dir(dir).expect("read dir").flatten() {
        let p = e.path();
        n += if p.is_dir() {
            dir_bytes(&p)
        } else {
            e.metadata().map(|m| m.len()).unwrap_or(0)
        };
    }
    n
}

/// Replay of a whole `Db::open`: sample-heavy (10k series × 300 samples) and
/// series-heavy (100k series × 10 samples, like a restart after a few scrapes), each on
/// one core (one replay worker: the records are applied on the reading thread) and
/// with the default worker count.
fn replay(c: &mut Criterion) {
    for (name, n_series, per_series) in [
        (
            "3M_samples_10k_series",
            REPLAY_SERIES,
            REPLAY_SAMPLES_PER_SERIES,
        ),
        ("1M_samples_100k_series", 100_000, 10),
    ] {
        replay_one(c, name, n_series, per_series);
    }
}

fn replay_one(c: &mut Criterion, name: &str, n_series: usize, per_series: usize) {
    let dir = write_replay_wal(n_series, per_series);
    for (suffix, workers) in [("1core", 1), ("default_workers", 0)] {
        replay_run(
            c,
            &format!("{name}_{suffix}"),
            &dir,
            workers,
            n_series * per_series,
        );
    }
}

/// A data directory whose WAL holds `n_series` series with `per_series` samples each.
fn write_replay_wal(n_series: usize, per_series: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    {
        let db = Db::open(dir.path(), DbOptions::with_fsync(FsyncPolicy::Never)).expect("open");
        let mut refs = Vec::with_capacity(n_series);
        for step in 0..per_series {
            let t = step as i64 * 15_000;
            for chunk in (0..n_series).collect::<Vec<_>>().chunks(BATCH) {
                let mut app = db.appender();
                for &i in chunk {
                    // a mix of integer counters and fractional gauges
                    let v = if i % 3 == 0 {
                        (i * 7 + step) as f64 * 0.1
                    } else {
                        ((i * 7 + step) * 13) as f64
                    };
                    if step == 0 {
                        refs.push(app.append(&labels(i), t, v).expect("append"));
                    } else {
                        app.append_ref(refs[i], t, v).expect("append");
                    }
                }
                app.commit().expect("commit");
            }
        }
        db.close().expect("close");
    }
    dir
}

fn replay_run(
    c: &mut Criterion,
    name: &str,
    dir: &tempfile::TempDir,
    workers: usize,
    total: usize,
) {
    let total = total as u64;
    let wal_bytes = dir_bytes(&dir.path().join("wal"));
    let mut g = c.benchmark_group("db_open_replay");
    g.sample_size(10);
    g.throughput(Throughput::Elements(total));
    let mut spent = Duration::ZERO;
    let mut runs = 0u32;
    g.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let mut d = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                let opts = DbOptions::with_fsync(FsyncPolicy::Never).replay_workers(workers);
                let db = Db::open(dir.path(), opts).expect("open");
                d += start.elapsed();
                assert_eq!(db.stats().samples_appended, total);
                db.close().expect("close");
            }
            spent += d;
            runs += iters as u32;
            d
        })
    });
    g.finish();
    if runs == 0 {
        return;
    }
    println!(
        "db open replay {name}: {total} samples in {:.1} ms per open, {:.1} M samples/s; \
         WAL {wal_bytes} bytes, {:.2} bytes/sample",
        spent.as_secs_f64() * 1e3 / f64::from(runs),
        total as f64 * f64::from(runs) / spent.as_secs_f64() / 1e6,
        wal_bytes as f64 / total as f64
    );
}

criterion_group!(benches, append_commit, replay);
criterion_main!(benches);
