//! The head benchmark's workload (series labels, a head of series with one sample each,
//! and scrape-like batches of 1000 samples over them), shared by `benches/head.rs` and
//! the profiling example `examples/head_append_profile.rs`.

use aion::db::{Db, DbOptions, FsyncPolicy};
use aion::model::Labels;

/// Samples per batch (one commit).
pub const BATCH: usize = 1000;

pub fn labels(i: usize) -> Labels {
    Labels::from_pairs(&[
        ("__name__", "http_requests_total"),
        ("instance", &format!("host-{}:9100", i / 10)),
        ("job", "node"),
        ("path", &format!("/api/{}", i % 10)),
    ])
}

/// A database with `n` series, each holding one sample, and their references.
pub fn setup(policy: FsyncPolicy, n: usize) -> (tempfile::TempDir, Db, Vec<u64>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = Db::open(dir.path(), DbOptions::with_fsync(policy)).expect("open");
    let mut refs = Vec::with_capacity(n);
    for chunk in (0..n).collect::<Vec<_>>().chunks(BATCH) {
        let mut app = db.appender();
        for &i in chunk {
            refs.push(app.append(&labels(i), 0, 0.0).expect("append"));
        }
        app.commit().expect("commit");
    }
    (dir, db, refs)
}

/// Where a thread is in its slice of the series: the next batch's first series and the
/// timestamp of the current pass over them.
#[derive(Default)]
pub struct Cursor {
    pos: usize,
    clock: i64,
}

/// Appends and commits `n` batches of [`BATCH`] samples with cached references, going
/// round `mine` (a pass over all of it advances the clock by one 15 s scrape).
#[inline(never)]
pub fn append_batches(db: &Db, mine: &[u64], cur: &mut Cursor, n: u64) {
    for _ in 0..n {
        if cur.pos + BATCH > mine.len() {
            cur.pos = 0;
        }
        if cur.pos == 0 {
            cur.clock += 15_000;
        }
        let clock = cur.clock;
        let mut app = db.appender();
        for (k, &r) in mine[cur.pos..cur.pos + BATCH].iter().enumerate() {
            app.append_ref(r, clock, (k as f64) * 0.5 + clock as f64)
                .expect("append");
        }
        let st = app.commit().expect("commit");
        assert_eq!(st.samples_appended, BATCH as u64, "samples dropped");
        cur.pos += BATCH;
    }
}
