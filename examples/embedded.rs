//! Using Aion as an embedded database: open, append, commit, query, reopen.
//!
//! ```text
//! cargo run --example embedded            # uses a fresh temporary directory
//! cargo run --example embedded -- ./data  # uses (and keeps) ./data
//! ```

use std::error::Error;
use std::path::PathBuf;

use aion::db::{Db, DbOptions, FsyncPolicy};
use aion::model::{Labels, MatchOp, Matcher};

fn print_series(db: &Db, matchers: &[Matcher]) -> Result<(), Box<dyn Error>> {
    let q = db.querier(i64::MIN, i64::MAX)?;
    let shown: Vec<String> = matchers.iter().map(|m| m.to_string()).collect();
    println!("select {{{}}}:", shown.join(", "));
    for s in q.select(matchers)? {
        let samples: Vec<String> = s.iter().map(|x| format!("{}@{}", x.v, x.t)).collect();
        println!("  {} => [{}]", s.labels, samples.join(", "));
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn Error>> {
    let (dir, temporary) = match std::env::args_os().nth(1) {
        Some(d) => (PathBuf::from(d), false),
        None => (
            std::env::temp_dir().join(format!("aion-example-{}", std::process::id())),
            true,
        ),
    };
    println!("data directory: {}", dir.display());

    let opts = DbOptions::with_fsync(FsyncPolicy::Always);
    let db = Db::open(&dir, opts.clone())?;
    println!("opened; replayed {} samples", db.open_stats().head.samples);

    // Continue after whatever a previous run stored.
    let start = db
        .stats()
        .max_time
        .map_or(1_700_000_000_000, |t| t + 15_000);
    let mut app = db.appender();
    let mut refs = Vec::new();
    for (job, instance) in [("api", "a:9090"), ("api", "b:9090"), ("db", "c:5432")] {
        let labels = Labels::from_pairs(&[
            ("__name__", "http_requests_total"),
            ("job", job),
            ("instance", instance),
        ]);
        refs.push(app.append(&labels, start, 1.0)?);
    }
    // Later scrapes use the cached references.
    for step in 1..4i64 {
        for (i, r) in refs.iter().enumerate() {
            app.append_ref(*r, start + step * 15_000, (step * 10 + i as i64) as f64)?;
        }
    }
    // An out-of-order sample is rejected on its own; the batch goes on.
    if let Err(e) = app.append_ref(refs[0], start - 1, 0.0) {
        println!("rejected: {e}");
    }
    let stats = app.commit()?;
    println!("committed {} samples", stats.samples_appended);

    print_series(&db, &[Matcher::equal("job", "api")])?;
    print_series(
        &db,
        &[
            Matcher::equal("__name__", "http_requests_total"),
            Matcher::new(MatchOp::NotEqual, "job", "api")?,
        ],
    )?;
    let q = db.querier(i64::MIN, i64::MAX)?;
    println!("label names: {:?}", q.label_names(&[])?);
    println!("jobs: {:?}", q.label_values("job", &[])?);
    println!("stats: {:?}", db.stats());
    db.close()?;

    // Everything committed survives a restart.
    let db = Db::open(&dir, opts)?;
    println!(
        "reopened; replayed {} samples of {} series",
        db.open_stats().head.samples,
        db.stats().num_series
    );
    print_series(&db, &[Matcher::new(MatchOp::RegexMatch, "instance", ".+")?])?;
    db.close()?;

    if temporary {
        std::fs::remove_dir_all(&dir)?;
    }
    Ok(())
}
