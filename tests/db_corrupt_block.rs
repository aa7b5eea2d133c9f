//! Damaged blocks in a data directory: the database still opens, the damaged block is
//! set aside (renamed to `<ulid>.corrupted`) and counted, and every other block and the
//! head keep serving. Damage found on open (index, meta) and at read time (a chunk's
//! CRC) are both covered.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use aion::db::{Db, DbOptions, FsyncPolicy};
use aion::model::Labels;

const BLOCK_RANGE: i64 = 60_000;
const SERIES: usize = 5;

type Model = BTreeMap<(String, i64), u64>;

fn opts() -> DbOptions {
    // one compaction range: blocks stay as cut from the head
    DbOptions::with_fsync(FsyncPolicy::Never)
        .block_range_ms(BLOCK_RANGE)
        .max_block_duration_ms(BLOCK_RANGE)
        .retention_time_ms(0)
        .maintenance_interval(None)
        .replay_workers(1)
}

/// A data directory with several blocks and a head; returns the model and the block
/// directories with their ranges, oldest first.
fn setup(dir: &Path) -> (Model, Vec<(PathBuf, i64, i64)>) {
    let db = Db::open(dir, opts()).unwrap();
    let mut model = Model::new();
    for i in 0..480i64 {
        let t = i * 1_000;
        let mut app = db.appender();
        for s in 0..SERIES {
            let l = Labels::from_pairs(&[("__name__", "c"), ("s", &s.to_string())]);
            let v = (i * 7 + s as i64) as f64;
            app.append(&l, t, v).unwrap();
            model.insert((s.to_string(), t), v.to_bits());
        }
        app.commit().unwrap();
    }
    db.compact().unwrap();
    let blocks: Vec<_> = db
        .blocks()
        .iter()
        .map(|b| (b.dir().to_path_buf(), b.meta().min_time, b.meta().max_time))
        .collect();
    assert!(blocks.len() >= 5, "{}", blocks.len());
    db.close().unwrap();
    (model, blocks)
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

fn without(model: &Model, ranges: &[(i64, i64)]) -> Model {
    model
        .iter()
        .filter(|((_, t), _)| !ranges.iter().any(|(lo, hi)| lo <= t && t < hi))
        .map(|(k, v)| (k.clone(), *v))
        .collect()
}

fn flip(path: &Path, at_fraction: f64) {
    let mut bytes = std::fs::read(path).unwrap();
    let i = ((bytes.len() as f64) * at_fraction) as usize;
    bytes[i] ^= 0x5a;
    std::fs::write(path, bytes).unwrap();
}

fn corrupted(p: &Path) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(".corrupted");
    PathBuf::from(s)
}

#[test]
fn damaged_index_and_meta_are_set_aside_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let (model, blocks) = setup(dir.path());
    let (b1, lo1, hi1) = blocks[1].clone();
    let (b3, lo3, hi3) = blocks[3].clone();
    flip(&b1.join("index"), 0.5);
    std::fs::write(b3.join("meta.json"), b"{\"ulid\": 12").unwrap();

    let db = Db::open(dir.path(), opts()).unwrap();
    let st = db.db_stats();
    assert_eq!(st.corrupted_blocks, 2, "{st:?}");
    assert_eq!(st.blocks as usize, blocks.len() - 2);
    assert!(!b1.exists() && corrupted(&b1).is_dir());
    assert!(!b3.exists() && corrupted(&b3).is_dir());
    assert_eq!(read(&db), without(&model, &[(lo1, hi1), (lo3, hi3)]));
    // ingestion and maintenance go on
    db.compact().unwrap();
    db.close().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    assert_eq!(db.db_stats().corrupted_blocks, 0);
    assert_eq!(read(&db), without(&model, &[(lo1, hi1), (lo3, hi3)]));
}

#[test]
fn damaged_chunk_is_skipped_at_read_time_and_set_aside() {
    let dir = tempfile::tempdir().unwrap();
    let (model, blocks) = setup(dir.path());
    let (b2, lo2, hi2) = blocks[2].clone();
    flip(&b2.join("chunks").join("000001"), 0.6);

    let db = Db::open(dir.path(), opts()).unwrap();
    // either open or the first read notices; the other blocks serve either way
    assert_eq!(read(&db), without(&model, &[(lo2, hi2)]));
    assert_eq!(db.db_stats().corrupted_blocks, 1);
    db.run_maintenance().unwrap();
    assert!(!b2.exists() && corrupted(&b2).is_dir());
    assert_eq!(db.db_stats().blocks as usize, blocks.len() - 1);
    assert_eq!(read(&db), without(&model, &[(lo2, hi2)]));
    assert_eq!(db.db_stats().corrupted_blocks, 1);
    db.close().unwrap();
}

#[test]
fn every_single_byte_flip_in_a_block_is_survived() {
    let dir = tempfile::tempdir().unwrap();
    let (model, blocks) = setup(dir.path());
    let (b0, lo0, hi0) = blocks[0].clone();
    let files = [
        b0.join("index"),
        b0.join("meta.json"),
        b0.join("tombstones"),
    ];
    let pristine: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    let others = without(&model, &[(lo0, hi0)]);
    for (f, orig) in files.iter().zip(&pristine) {
        // a spread of offsets in each file
        let n = orig.len();
        for i in (0..n).step_by((n / 40).max(1)) {
            let mut bytes = orig.clone();
            bytes[i] ^= 0x01;
            std::fs::write(f, &bytes).unwrap();
            let db = Db::open(dir.path(), opts()).unwrap();
            let got = read(&db);
            let st = db.db_stats();
            if st.corrupted_blocks == 1 {
                assert_eq!(got, others, "{} byte {i}", f.display());
                db.close().unwrap();
                std::fs::rename(corrupted(&b0), &b0).unwrap();
            } else {
                // the flip was harmless (e.g. JSON whitespace): all data is intact
                assert_eq!(got, model, "{} byte {i}", f.display());
                db.close().unwrap();
            }
            std::fs::write(f, orig).unwrap();
        }
    }
}
