//! Damage every byte of every file of a small block, and truncate every file to every
//! shorter length: the block must refuse to open with an error naming the damaged file
//! and an offset at or before the damage (for the JSON meta file: within it), or (for chunk data, which is verified when
//! loaded) open and then fail every read that touches the damaged chunk. Never a panic,
//! never wrong data.

use std::fs;
use std::path::{Path, PathBuf};

use aion::block::{rechunk, Block, BlockError, BlockWriter, Interval, Tombstones};
use aion::model::{Labels, Sample, STALE_NAN};
use aion::storage::Series;

/// A block with a handful of series, several chunks, two chunk segments and tombstones.
fn build(parent: &Path) -> PathBuf {
    let mut w = BlockWriter::with_segment_size(parent, 0, 100_000, 200).unwrap();
    let series = [
        Labels::from_pairs(&[("__name__", "up"), ("job", "api"), ("instance", "a")]),
        Labels::from_pairs(&[("__name__", "up"), ("job", "api"), ("instance", "b")]),
        Labels::from_pairs(&[("__name__", "up"), ("job", "db")]),
        Labels::from_pairs(&[("__name__", "x"), ("le", "+Inf")]),
    ];
    let mut sorted = series.to_vec();
    sorted.sort();
    for (i, l) in sorted.iter().enumerate() {
        let samples: Vec<Sample> = (0..(40 + 70 * i as i64))
            .map(|k| {
                let v = if k == 5 {
                    STALE_NAN
                } else {
                    (k * (i as i64 + 1)) as f64 * 0.25
                };
                Sample::new(k * 397 + i as i64, v)
            })
            .collect();
        w.add_series(l, &rechunk(&samples)).unwrap();
    }
    let meta = w.finish(1, vec![], vec![]).unwrap();
    let dir = parent.join(&meta.ulid);
    let block = Block::open(&dir).unwrap();
    let mut t = Tombstones::new();
    t.add(1, Interval::new(2_000, 9_000));
    t.add(3, Interval::new(-5, 3));
    t.add(3, Interval::new(50_000, 60_000));
    block.with_tombstones(t).unwrap();
    dir
}

/// Everything the block serves, as comparable values.
/// Labels (or a label query) with the samples as `(t, value bits)`.
type Snapshot = Vec<(String, Vec<(i64, u64)>)>;

fn snapshot(b: &Block) -> Result<Snapshot, BlockError> {
    let mut out: Snapshot = b
        .select(&[], i64::MIN, i64::MAX)?
        .iter()
        .map(|s: &Series| {
            (
                s.labels.to_string(),
                s.samples().iter().map(|x| (x.t, x.v.to_bits())).collect(),
            )
        })
        .collect();
    for r in b.series_chunks() {
        let (l, chunks) = r?;
        out.push((
            format!("scan {l}"),
            chunks
                .iter()
                .flat_map(|c| c.iter())
                .map(|x| (x.t, x.v.to_bits()))
                .collect(),
        ));
    }
    out.push(("names".into(), Vec::new()));
    for n in b.label_names(&[])? {
        out.push((format!("name {n}"), Vec::new()));
        for v in b.label_values(&n, &[])? {
            out.push((format!("value {n}={v}"), Vec::new()));
        }
    }
    Ok(out)
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![
        dir.join("meta.json"),
        dir.join("index"),
        dir.join("tombstones"),
    ];
    let mut segs: Vec<PathBuf> = fs::read_dir(dir.join("chunks"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    segs.sort();
    assert!(
        segs.len() >= 2,
        "the test block should span several segments"
    );
    out.extend(segs);
    out
}

fn is_chunk_file(p: &Path) -> bool {
    p.parent()
        .and_then(Path::file_name)
        .is_some_and(|n| n == "chunks")
}

/// Checks the outcome of opening and reading a damaged block.
fn check_damaged(dir: &Path, file: &Path, at: u64, good: &Snapshot, what: &str) {
    match Block::open(dir) {
        Err(BlockError::Corrupt { path, offset, .. }) => {
            assert_eq!(path, file, "{what}: wrong file named");
            if file.ends_with("meta.json") {
                // JSON damage (say, a renamed key) may only show where parsing notices it.
                let len = fs::metadata(file).unwrap().len();
                assert!(offset <= len, "{what}: offset {offset} past the end");
            } else {
                assert!(
                    offset <= at,
                    "{what}: offset {offset} after the damage at {at}"
                );
            }
        }
        Err(e) => panic!("{what}: expected a corruption error, got {e}"),
        Ok(b) => {
            assert!(
                is_chunk_file(file),
                "{what}: damaged {} opened without error",
                file.display()
            );
            match snapshot(&b) {
                Err(BlockError::Corrupt { path, section, .. }) => {
                    assert_eq!(path, file, "{what}");
                    assert_eq!(section, "chunk", "{what}");
                }
                Err(e) => panic!("{what}: expected a corruption error, got {e}"),
                // Only possible if the damage is in bytes no chunk uses.
                Ok(got) => assert_eq!(&got, good, "{what}: wrong data served"),
            }
        }
    }
}

#[test]
fn every_flipped_byte_is_detected() {
    let parent = tempfile::tempdir().unwrap();
    let dir = build(parent.path());
    let good = snapshot(&Block::open(&dir).unwrap()).unwrap();
    assert!(good.len() > 8);
    for file in files(&dir) {
        let orig = fs::read(&file).unwrap();
        for i in 0..orig.len() {
            for mask in [0x01u8, 0x80, 0xff] {
                let mut b = orig.clone();
                b[i] ^= mask;
                fs::write(&file, &b).unwrap();
                let what = format!("{} byte {i} ^ {mask:#04x}", file.display());
                check_damaged(&dir, &file, i as u64, &good, &what);
            }
        }
        fs::write(&file, &orig).unwrap();
        assert_eq!(snapshot(&Block::open(&dir).unwrap()).unwrap(), good);
    }
}

#[test]
fn every_truncation_is_detected() {
    let parent = tempfile::tempdir().unwrap();
    let dir = build(parent.path());
    let good = snapshot(&Block::open(&dir).unwrap()).unwrap();
    for file in files(&dir) {
        let orig = fs::read(&file).unwrap();
        for n in 0..orig.len() {
            fs::write(&file, &orig[..n]).unwrap();
            let what = format!("{} truncated to {n}", file.display());
            check_damaged(&dir, &file, n as u64, &good, &what);
        }
        fs::write(&file, &orig).unwrap();
    }
    // A missing file is an I/O error naming it, or for a chunk segment, corruption
    // naming it.
    for file in files(&dir) {
        let orig = fs::read(&file).unwrap();
        fs::remove_file(&file).unwrap();
        match Block::open(&dir) {
            Err(BlockError::Io { path, .. }) => assert_eq!(path, file),
            Err(BlockError::Corrupt { path, .. }) => {
                assert!(is_chunk_file(&file));
                assert_eq!(path, file);
            }
            Err(e) => panic!("unexpected error {e}"),
            Ok(_) => panic!("opened without {}", file.display()),
        }
        fs::write(&file, &orig).unwrap();
    }
    assert_eq!(snapshot(&Block::open(&dir).unwrap()).unwrap(), good);
}

#[test]
fn visible_only_after_publication_and_leftovers_cleaned() {
    let parent = tempfile::tempdir().unwrap();
    let mut w = BlockWriter::new(parent.path(), 0, 1_000).unwrap();
    let l = Labels::from_pairs(&[("a", "b")]);
    w.add_series(&l, &rechunk(&[Sample::new(1, 1.0)])).unwrap();
    let ulid = w.ulid().to_string();
    // Before finish only the temporary directory exists.
    let names: Vec<String> = fs::read_dir(parent.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, vec![format!("{ulid}.tmp-for-creation")]);
    assert!(Block::open(&parent.path().join(&ulid)).is_err());
    // A crash here leaves the temporary directory behind.
    std::mem::forget(w);
    assert_eq!(aion::fsutil::cleanup_tmp_dirs(parent.path()).unwrap(), 1);
    assert_eq!(fs::read_dir(parent.path()).unwrap().count(), 0);

    let mut w = BlockWriter::new(parent.path(), 0, 1_000).unwrap();
    w.add_series(&l, &rechunk(&[Sample::new(1, 1.0)])).unwrap();
    let meta = w.finish(1, vec![], vec![]).unwrap();
    let names: Vec<String> = fs::read_dir(parent.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, vec![meta.ulid.clone()]);
    let b = Block::open(&parent.path().join(&meta.ulid)).unwrap();
    assert_eq!(b.select(&[], 0, 10).unwrap().len(), 1);
    aion::fsutil::remove_dir_atomic(b.dir()).unwrap();
    assert_eq!(fs::read_dir(parent.path()).unwrap().count(), 0);
}
