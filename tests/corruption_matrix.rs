//! Damage and recovery matrix: every kind of file in a data directory (WAL segments, the
//! WAL checkpoint, a block's meta.json, index sections, chunk segment and tombstones) ×
//! three kinds of damage (one flipped byte, a zeroed range, truncation to half), each
//! applied to a copy of the same directory, which is then opened with `Db::open`.
//!
//! Required for every case: opening succeeds and never panics; the damage is logged with
//! the file (or WAL directory and segment) and a byte offset; data outside the damaged
//! unit answers exactly as before (other blocks bit for bit; for the WAL, a time prefix of
//! the head, since replay keeps the records before the first damaged one); nothing wrong
//! is ever returned; maintenance runs afterwards and a second open is clean.
//!
//! The test prints the outcome table (`--nocapture`); `storage-format.md` ("Damage and
//! recovery") holds a copy.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use aion::db::{Db, DbOptions, FsyncPolicy};
use aion::model::{Labels, Matcher};

const BLOCK_RANGE: i64 = 60_000;
const SERIES: usize = 5;
/// Commits (one per second, all series) before the first compaction.
const FIRST: i64 = 480;
/// Commits after it, left in the WAL.
const SECOND: i64 = 120;
/// Deleted from series s="0" inside the second block.
const DELETED: (i64, i64) = (70_000, 80_000);

/// (series, t) → value bits.
type Model = BTreeMap<(String, i64), u64>;

struct Capture;
static LOG: Mutex<Vec<String>> = Mutex::new(Vec::new());
impl log::Log for Capture {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= log::Level::Warn
    }
    fn log(&self, r: &log::Record<'_>) {
        if self.enabled(r.metadata()) {
            LOG.lock()
                .unwrap()
                .push(format!("{} {}", r.level(), r.args()));
        }
    }
    fn flush(&self) {}
}

fn opts() -> DbOptions {
    let mut o = DbOptions::with_fsync(FsyncPolicy::Never)
        .block_range_ms(BLOCK_RANGE)
        .max_block_duration_ms(BLOCK_RANGE)
        .retention_time_ms(0)
        .maintenance_interval(None)
        .replay_workers(1);
    o.wal.segment_size = 2048;
    o
}

fn labels(s: usize) -> Labels {
    Labels::from_pairs(&[("__name__", "m"), ("s", &s.to_string())])
}

fn value(s: usize, t: i64) -> f64 {
    (t / 1000 * 7 + s as i64) as f64 * 0.5
}

/// Builds the pristine directory: blocks (one with tombstones), a checkpoint and WAL
/// segments after it. Returns the model of what it holds.
fn build(dir: &Path) -> Model {
    let db = Db::open(dir, opts()).unwrap();
    let mut model = Model::new();
    let mut commit = |db: &Db, i: i64| {
        let t = i * 1000;
        let mut app = db.appender();
        for s in 0..SERIES {
            app.append(&labels(s), t, value(s, t)).unwrap();
            model.insert((s.to_string(), t), value(s, t).to_bits());
        }
        app.commit().unwrap();
    };
    for i in 0..FIRST {
        commit(&db, i);
    }
    db.compact().unwrap();
    for i in FIRST..FIRST + SECOND {
        commit(&db, i);
    }
    db.delete_series(&[Matcher::equal("s", "0")], DELETED.0, DELETED.1)
        .unwrap();
    model.retain(|(s, t), _| !(s == "0" && DELETED.0 <= *t && *t <= DELETED.1));
    db.close().unwrap();
    model
}

fn read(db: &Db) -> Model {
    let q = db.querier(i64::MIN, i64::MAX).unwrap();
    let mut out = Model::new();
    for s in q.select(&[]).unwrap() {
        let id = s.labels.get("s").unwrap().to_string();
        for x in s.samples() {
            assert!(out.insert((id.clone(), x.t), x.v.to_bits()).is_none());
        }
    }
    out
}

#[derive(Clone, Copy, Debug)]
enum Damage {
    Flip,
    Zero,
    Truncate,
}

impl Damage {
    fn name(self) -> &'static str {
        match self {
            Damage::Flip => "flip 1 byte",
            Damage::Zero => "zero 32 bytes",
            Damage::Truncate => "truncate to half",
        }
    }

    /// Damages `path` around byte `at` (clamped to the file).
    fn apply(self, path: &Path, at: usize) {
        let mut b = std::fs::read(path).unwrap();
        assert!(!b.is_empty(), "{}", path.display());
        let at = at.min(b.len() - 1);
        match self {
            Damage::Flip => b[at] ^= 0x20,
            Damage::Zero => {
                let end = (at + 32).min(b.len());
                let start = end.saturating_sub(32);
                let mut any = false;
                for x in &mut b[start..end] {
                    any |= *x != 0;
                    *x = 0;
                }
                if !any {
                    // already zero there: make sure something changes
                    b[start] = 0xff;
                }
            }
            Damage::Truncate => b.truncate(b.len() / 2),
        }
        std::fs::write(path, b).unwrap();
    }
}

/// One file of the directory and where in it to damage.
struct Case {
    /// Kind of file, for the table.
    file: &'static str,
    /// The file, relative to the data directory.
    path: PathBuf,
    /// Byte to damage (flip/zero); truncation ignores it.
    at: usize,
    /// Whether the damage belongs to a block (else the WAL).
    block: Option<(String, i64, i64)>,
}

fn rel(dir: &Path, p: &Path) -> PathBuf {
    p.strip_prefix(dir).unwrap().to_path_buf()
}

fn u64_at(b: &[u8], i: usize) -> usize {
    u64::from_le_bytes(b[i..i + 8].try_into().unwrap()) as usize
}

fn cases(dir: &Path) -> Vec<Case> {
    let mut blocks: Vec<(String, i64, i64)> = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.len() == 26 {
            let meta: serde_json::Value =
                serde_json::from_slice(&std::fs::read(e.path().join("meta.json")).unwrap())
                    .unwrap();
            let lo = meta["minTime"].as_i64().unwrap();
            let hi = meta["maxTime"].as_i64().unwrap();
            blocks.push((name, lo, hi));
        }
    }
    blocks.sort_by_key(|b| b.1);
    assert!(blocks.len() >= 5, "{blocks:?}");
    // the block with tombstones holds DELETED
    let tomb_block = blocks
        .iter()
        .find(|b| b.1 <= DELETED.0 && DELETED.0 < b.2)
        .unwrap()
        .clone();
    let b = blocks[3].clone();
    let bdir = dir.join(&b.0);
    let index = std::fs::read(bdir.join("index")).unwrap();
    let toc = index.len() - 36;
    let sym = u64_at(&index, toc);
    let ser = u64_at(&index, toc + 8);
    let post = u64_at(&index, toc + 16);
    let table = u64_at(&index, toc + 24);
    let mut out = Vec::new();
    let mut add =
        |file: &'static str, path: PathBuf, at: usize, block: Option<(String, i64, i64)>| {
            out.push(Case {
                file,
                path: rel(dir, &path),
                at,
                block,
            })
        };
    let idx = bdir.join("index");
    add("index: header (magic)", idx.clone(), 3, Some(b.clone()));
    add("index: symbols", idx.clone(), sym + 6, Some(b.clone()));
    add(
        "index: series",
        idx.clone(),
        (ser + post) / 2,
        Some(b.clone()),
    );
    add("index: postings", idx.clone(), post + 6, Some(b.clone()));
    add(
        "index: postings offset table",
        idx.clone(),
        table + 5,
        Some(b.clone()),
    );
    add(
        "index: section length",
        idx.clone(),
        ser + 1,
        Some(b.clone()),
    );
    add("index: TOC", idx.clone(), toc + 9, Some(b.clone()));
    add(
        "chunk segment (chunks/000001)",
        bdir.join("chunks").join("000001"),
        std::fs::metadata(bdir.join("chunks/000001")).unwrap().len() as usize / 2,
        Some(b.clone()),
    );
    add(
        "chunk segment header",
        bdir.join("chunks").join("000001"),
        2,
        Some(b.clone()),
    );
    let meta_len = std::fs::metadata(bdir.join("meta.json")).unwrap().len() as usize;
    add(
        "meta.json",
        bdir.join("meta.json"),
        meta_len / 3,
        Some(b.clone()),
    );
    let tdir = dir.join(&tomb_block.0);
    add(
        "tombstones",
        tdir.join("tombstones"),
        std::fs::metadata(tdir.join("tombstones")).unwrap().len() as usize - 6,
        Some(tomb_block.clone()),
    );
    let wal = dir.join("wal");
    let mut segs: Vec<PathBuf> = std::fs::read_dir(&wal)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().unwrap().len() == 8)
        .collect();
    segs.sort();
    assert!(segs.len() >= 3, "{segs:?}");
    let mid = segs[segs.len() / 2].clone();
    let last = segs.last().unwrap().clone();
    let len = |p: &Path| std::fs::metadata(p).unwrap().len() as usize;
    add("WAL segment (middle)", mid.clone(), len(&mid) / 2, None);
    add("WAL segment header", mid, 1, None);
    add("WAL segment (last)", last.clone(), len(&last) / 2, None);
    let cp = std::fs::read_dir(&wal)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("checkpoint.")
        })
        .expect("a checkpoint");
    let cps = cp.join("00000000");
    add("WAL checkpoint: series record", cps.clone(), 20, None);
    add(
        "WAL checkpoint: samples record",
        cps.clone(),
        len(&cps) / 2,
        None,
    );
    out
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), dst).unwrap();
        }
    }
}

/// What happened in one case.
struct Outcome {
    lost: usize,
    set_aside: u64,
    log: String,
}

fn run_case(pristine: &Path, model: &Model, floor: i64, case: &Case, damage: Damage) -> Outcome {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    copy_dir(pristine, &dir);
    let target = dir.join(&case.path);
    damage.apply(&target, case.at);
    LOG.lock().unwrap().clear();
    let what = format!("{} / {}", case.file, damage.name());

    let db = Db::open(&dir, opts()).unwrap_or_else(|e| panic!("{what}: open failed: {e}"));
    let got = read(&db);
    // nothing wrong is ever returned
    for (k, v) in &got {
        assert_eq!(model.get(k), Some(v), "{what}: unexpected sample {k:?}");
    }
    match &case.block {
        Some((_, lo, hi)) => {
            // only the damaged block's range may be missing (or nothing, if harmless)
            let others: Model = model
                .iter()
                .filter(|((_, t), _)| !(*lo <= *t && *t < *hi))
                .map(|(k, v)| (k.clone(), *v))
                .collect();
            for (k, v) in &others {
                assert_eq!(got.get(k), Some(v), "{what}: lost {k:?} outside the block");
            }
        }
        None => {
            // every block sample is there; the head is a time prefix of the model
            for (k, v) in model.range(..).filter(|((_, t), _)| *t < floor) {
                assert_eq!(got.get(k), Some(v), "{what}: lost block sample {k:?}");
            }
            if case.file.starts_with("WAL segment") {
                // replay keeps the commits before the first damaged record
                let end = got
                    .keys()
                    .map(|k| k.1 + 1)
                    .max()
                    .unwrap_or(floor)
                    .max(floor);
                for (k, v) in model.iter().filter(|((_, t), _)| *t >= floor && *t < end) {
                    assert_eq!(got.get(k), Some(v), "{what}: head is not a prefix at {k:?}");
                }
            }
        }
    }
    let lost = model.len() - got.len();
    let st = db.db_stats();
    // maintenance copes, and a second open is clean
    db.run_maintenance()
        .unwrap_or_else(|e| panic!("{what}: maintenance failed: {e}"));
    let after = read(&db);
    for (k, v) in &after {
        assert_eq!(
            model.get(k),
            Some(v),
            "{what}: unexpected sample after maintenance"
        );
    }
    let set_aside = db.db_stats().corrupted_blocks.max(st.corrupted_blocks);
    db.close().unwrap();
    let logged: Vec<String> = LOG.lock().unwrap().clone();
    let db = Db::open(&dir, opts()).unwrap();
    let again = read(&db);
    assert_eq!(again, after, "{what}: second open differs");
    db.close().unwrap();

    if lost > 0 {
        // the damage is reported with the file and an offset
        let file_name = target.file_name().unwrap().to_string_lossy().into_owned();
        let hit = logged
            .iter()
            .find(|l| l.contains(&file_name) && (l.contains("offset") || l.contains("byte")));
        assert!(
            hit.is_some(),
            "{what}: data lost but no log line names {file_name} with an offset: {logged:?}"
        );
    }
    Outcome {
        lost,
        set_aside,
        log: logged.first().cloned().unwrap_or_default(),
    }
}

#[test]
fn damage_matrix() {
    let _ = log::set_logger(&Capture);
    log::set_max_level(log::LevelFilter::Warn);
    let tmp = tempfile::tempdir().unwrap();
    let pristine = tmp.path().join("pristine");
    let model = build(&pristine);
    let floor = {
        let db = Db::open(&pristine, opts()).unwrap();
        let f = db.blocks().iter().map(|b| b.meta().max_time).max().unwrap();
        assert_eq!(read(&db), model);
        db.close().unwrap();
        f
    };
    let mut rows = Vec::new();
    for case in cases(&pristine) {
        for damage in [Damage::Flip, Damage::Zero, Damage::Truncate] {
            let o = run_case(&pristine, &model, floor, &case, damage);
            rows.push(format!(
                "| {} | {} | {} | {} | {} |",
                case.file,
                damage.name(),
                if o.set_aside > 0 { "set aside" } else { "-" },
                o.lost,
                o.log
                    .replace(tmp.path().to_str().unwrap(), "…")
                    .replace('|', "/")
            ));
        }
    }
    println!(
        "| file | damage | block | samples lost (of {}) | first log line |",
        model.len()
    );
    println!("| --- | --- | --- | --- | --- |");
    for r in rows {
        println!("{r}");
    }
}

/// Files that are not part of the format (an editor's backup, notes, a file manager's
/// index) are ignored wherever they are: nothing is set aside or lost.
#[test]
fn stray_files_are_ignored() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let model = build(&dir);
    let block = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .find(|e| e.file_name().len() == 26)
        .unwrap()
        .path();
    for (p, body) in [
        (block.join("chunks").join("000001.bak"), &b"junk"[..]),
        (block.join("chunks").join(".DS_Store"), b""),
        (block.join("notes.txt"), b"hello"),
        (dir.join("wal").join("README"), b"x"),
        (dir.join("junk"), b"y"),
    ] {
        std::fs::write(p, body).unwrap();
    }
    let db = Db::open(&dir, opts()).unwrap();
    assert_eq!(db.db_stats().corrupted_blocks, 0);
    assert_eq!(read(&db), model);
    db.close().unwrap();
}
