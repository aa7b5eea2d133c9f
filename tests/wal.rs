//! Write-ahead log: round trips, repair after every possible truncation and bit flip,
//! segment rollover and concurrent group commit.

use std::path::Path;
use std::time::Duration;

use aion::model::{Labels, STALE_NAN};
use aion::wal::{self, FsyncPolicy, Record, RefSample, RefSeries, ReplayStats, Wal, WalOptions};

/// A record in a form that compares floats by their bits.
#[derive(Debug, Clone, PartialEq)]
enum Key {
    Series(Vec<(u64, Labels)>),
    Samples(Vec<(u64, i64, u64)>),
}

fn key(r: &Record) -> Key {
    match r {
        Record::Series(s) => {
            Key::Series(s.iter().map(|s| (s.series_ref, s.labels.clone())).collect())
        }
        Record::Samples(s) => Key::Samples(
            s.iter()
                .map(|s| (s.series_ref, s.t, s.v.to_bits()))
                .collect(),
        ),
        other => panic!("unexpected record {other:?}"),
    }
}

fn keys(rs: &[Record]) -> Vec<Key> {
    rs.iter().map(key).collect()
}

fn series(r: u64, pairs: &[(&str, &str)]) -> RefSeries {
    RefSeries {
        series_ref: r,
        labels: Labels::from_pairs(pairs),
    }
}

fn sample(r: u64, t: i64, v: f64) -> RefSample {
    RefSample {
        series_ref: r,
        t,
        v,
    }
}

fn opts(fsync: FsyncPolicy) -> WalOptions {
    WalOptions {
        fsync,
        ..WalOptions::default()
    }
}

fn open_collect(dir: &Path, o: WalOptions) -> (Wal, Vec<Key>, ReplayStats) {
    let mut got = Vec::new();
    let (wal, stats) = Wal::open(dir, o, |r| got.push(key(&r))).unwrap();
    (wal, got, stats)
}

fn read_collect(dir: &Path) -> (Vec<Key>, ReplayStats) {
    let mut got = Vec::new();
    let stats = wal::read_dir(dir, |r| got.push(key(&r))).unwrap();
    (got, stats)
}

fn special_floats() -> Vec<f64> {
    vec![
        0.0,
        -0.0,
        1.5,
        -123456.789,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
        -f64::NAN,
        f64::from_bits(0x7ff0_0000_0000_0001), // signalling NaN with a payload
        f64::from_bits(0x7ff8_dead_beef_0001), // quiet NaN with a payload
        STALE_NAN,
        f64::MIN_POSITIVE,
        f64::from_bits(1), // smallest subnormal
        f64::MAX,
        f64::MIN,
    ]
}

/// Commits of mixed records used by several tests.
fn sample_commits() -> Vec<Vec<Record>> {
    vec![
        vec![
            Record::Series(vec![
                series(1, &[("__name__", "up"), ("job", "api")]),
                series(2, &[("__name__", "up"), ("job", "db"), ("zone", "ü-ñ")]),
            ]),
            Record::Samples(vec![sample(1, 1000, 1.0), sample(2, 1000, 0.0)]),
        ],
        vec![Record::Samples(vec![
            sample(2, 2000, f64::NAN),
            sample(1, 2000, STALE_NAN),
            sample(1, 1999, -0.0),
        ])],
        vec![
            Record::Series(vec![series(u64::MAX, &[("a", "")])]),
            Record::Samples(vec![sample(u64::MAX, -5, f64::INFINITY)]),
        ],
        vec![Record::Samples(vec![sample(7, i64::MAX, 42.0)])],
    ]
}

#[test]
fn round_trip_of_all_record_kinds_is_bit_exact() {
    let dir = tempfile::tempdir().unwrap();
    let floats = special_floats();
    let mut commits = sample_commits();
    commits.push(vec![
        Record::Samples(
            floats
                .iter()
                .enumerate()
                .map(|(i, &v)| {
                    sample(
                        i as u64 * 1_000_003,
                        1_700_000_000_000 + i as i64 * 15_000,
                        v,
                    )
                })
                .collect(),
        ),
        Record::Series(vec![]),
        Record::Samples(vec![]),
        Record::Series(vec![series(0, &[])]),
    ]);
    // refs going down and timestamps before the base need negative deltas
    commits.push(vec![Record::Samples(vec![
        sample(100, 10, 1.0),
        sample(3, -10, 2.0),
        sample(0, i64::MIN, 3.0),
        sample(u64::MAX, i64::MAX, 4.0),
    ])]);
    let want: Vec<Key> = commits.iter().flat_map(|c| keys(c)).collect();

    let (w, got, stats) = open_collect(dir.path(), opts(FsyncPolicy::Always));
    assert!(got.is_empty());
    assert_eq!(
        stats,
        ReplayStats::default(),
        "fresh directory: nothing to read"
    );
    for c in &commits {
        w.log(c).unwrap();
    }
    w.log(&[]).unwrap();
    w.close().unwrap();

    let (got, stats) = read_collect(dir.path());
    assert_eq!(got, want);
    assert_eq!(stats.records, want.len() as u64);
    assert_eq!(stats.series, 4); // 3 in sample_commits() + one with no labels
    let n_samples: usize = commits
        .iter()
        .flatten()
        .map(|r| match r {
            Record::Samples(s) => s.len(),
            _ => 0,
        })
        .sum();
    assert_eq!(stats.samples, n_samples as u64);
    assert!(stats.corrupted.is_none());

    // reopening replays the same, and appends continue after it
    let (w, got, stats) = open_collect(dir.path(), opts(FsyncPolicy::Never));
    assert_eq!(got, want);
    assert!(stats.corrupted.is_none());
    let extra = vec![Record::Samples(vec![sample(9, 9, 9.0)])];
    w.log(&extra).unwrap();
    drop(w); // drop syncs too
    let (got, _) = read_collect(dir.path());
    assert_eq!(got.len(), want.len() + 1);
    assert_eq!(got.last(), Some(&key(&extra[0])));
}

/// Byte ranges of the records in one segment file, parsed from the documented layout:
/// an 8-byte header, then per record type (1), payload length (4, LE), payload, CRC32 (4).
fn frames(data: &[u8]) -> Vec<(usize, usize)> {
    assert_eq!(&data[..8], b"AIONWAL\x01");
    let mut out = Vec::new();
    let mut pos = 8;
    while pos < data.len() {
        let len = u32::from_le_bytes(data[pos + 1..pos + 5].try_into().unwrap()) as usize;
        let end = pos + 9 + len;
        let crc = u32::from_le_bytes(data[end - 4..end].try_into().unwrap());
        assert_eq!(
            crc,
            crc32fast::hash(&data[pos..end - 4]),
            "CRC32 (IEEE) over type+len+payload"
        );
        out.push((pos, end));
        pos = end;
    }
    assert_eq!(pos, data.len());
    out
}

fn copy_dir(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

#[derive(Clone, Copy, Debug)]
enum Damage {
    Truncate,
    Flip,
}

/// Damages segment 0 at every byte offset, reopens, and checks that exactly the records lying
/// entirely before the damage are replayed, that the segment was cut at the damaged record and
/// that the log keeps working afterwards.
fn check_damage_at_every_offset(damage: Damage) {
    let pristine = tempfile::tempdir().unwrap();
    let (w, _, _) = open_collect(pristine.path(), opts(FsyncPolicy::Never));
    let commits = sample_commits();
    for c in &commits {
        w.log(c).unwrap();
    }
    w.close().unwrap();
    let all: Vec<Key> = commits.iter().flat_map(|c| keys(c)).collect();
    let seg = pristine.path().join("00000000");
    let data = std::fs::read(&seg).unwrap();
    let fr = frames(&data);
    assert_eq!(fr.len(), all.len());

    let extra = vec![Record::Samples(vec![sample(5, 5, 5.5)])];
    let end = match damage {
        Damage::Truncate => data.len() + 1, // includes truncating at the very end (no damage)
        Damage::Flip => data.len(),
    };
    for off in 0..end {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(pristine.path(), dir.path());
        let path = dir.path().join("00000000");
        match damage {
            Damage::Truncate => {
                let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
                f.set_len(off as u64).unwrap();
            }
            Damage::Flip => {
                let mut d = data.clone();
                d[off] ^= 0xff;
                std::fs::write(&path, &d).unwrap();
            }
        }
        let kept = fr.iter().filter(|&&(_, e)| e <= off).count();
        // start of the damaged record, or the segment start when the header is hit
        let cut = if off < 8 {
            0
        } else {
            fr.iter().find(|&&(_, e)| e > off).map_or(off, |&(s, _)| s)
        };
        let clean = matches!(damage, Damage::Truncate)
            && (off == 0 || fr.iter().any(|&(_, e)| e == off) || off == 8);

        // the non-repairing reader sees the same as open
        let (read_got, read_stats) = read_collect(dir.path());
        let (w, got, stats) = open_collect(dir.path(), opts(FsyncPolicy::Never));
        assert_eq!(got, all[..kept], "{damage:?} at {off}");
        assert_eq!(read_got, got, "{damage:?} at {off}");
        assert_eq!(read_stats, stats, "{damage:?} at {off}");
        assert_eq!(stats.records, kept as u64);
        if clean {
            assert!(
                stats.corrupted.is_none(),
                "{damage:?} at {off}: {:?}",
                stats.corrupted
            );
        } else {
            let c = stats
                .corrupted
                .as_ref()
                .unwrap_or_else(|| panic!("{damage:?} at {off}: not detected"));
            assert_eq!(
                (c.segment, c.offset),
                (0, cut as u64),
                "{damage:?} at {off}: {c:?}"
            );
            let len_now = match damage {
                Damage::Truncate => off,
                Damage::Flip => data.len(),
            };
            assert_eq!(
                c.dropped_bytes,
                (len_now - cut) as u64,
                "{damage:?} at {off}"
            );
            let in_len_field = fr.iter().any(|&(s, _)| off > s && off < s + 5);
            match damage {
                Damage::Truncate => assert_eq!(c.dropped_records, u64::from(off > 8), "at {off}"),
                Damage::Flip if off >= 8 && !in_len_field => {
                    assert_eq!(
                        c.dropped_records,
                        (all.len() - kept) as u64,
                        "flip at {off}: {c:?}"
                    )
                }
                Damage::Flip if off < 8 => assert_eq!(c.dropped_records, all.len() as u64),
                Damage::Flip => assert!(c.dropped_records >= 1, "flip at {off}: {c:?}"),
            }
        }
        // repaired: the segment ends at the cut (or is re-headed when it was cut to nothing)
        let repaired_len = std::fs::metadata(&path).unwrap().len() as usize;
        let expect_len = if clean && off > 0 { off } else { cut.max(8) };
        assert_eq!(repaired_len, expect_len, "{damage:?} at {off}");

        w.log(&extra).unwrap();
        w.close().unwrap();
        let (got, stats) = read_collect(dir.path());
        assert!(
            stats.corrupted.is_none(),
            "{damage:?} at {off}: {:?}",
            stats.corrupted
        );
        let mut want = all[..kept].to_vec();
        want.push(key(&extra[0]));
        assert_eq!(got, want, "{damage:?} at {off} after append");
    }
}

#[test]
fn truncation_at_every_offset_keeps_exactly_the_intact_prefix() {
    check_damage_at_every_offset(Damage::Truncate);
}

#[test]
fn bit_flip_at_every_offset_keeps_exactly_the_intact_prefix() {
    check_damage_at_every_offset(Damage::Flip);
}

fn numbered_commit(i: u64) -> Vec<Record> {
    vec![Record::Samples(vec![
        sample(i, i as i64 * 10, i as f64),
        sample(i + 1, i as i64 * 10 + 1, -(i as f64)),
        sample(i + 2, i as i64 * 10 + 2, 0.5),
    ])]
}

fn segment_lens(dir: &Path, segs: &[u32]) -> Vec<u64> {
    segs.iter()
        .map(|s| {
            std::fs::metadata(dir.join(format!("{s:08}")))
                .unwrap()
                .len()
        })
        .collect()
}

#[test]
fn segments_roll_over_and_damage_drops_later_segments() {
    let pristine = tempfile::tempdir().unwrap();
    let o = WalOptions {
        segment_size: 100,
        fsync: FsyncPolicy::Never,
    };
    let (w, _, _) = open_collect(pristine.path(), o.clone());
    let n = 60;
    for i in 0..n {
        w.log(&numbered_commit(i)).unwrap();
    }
    let segs = w.segments().unwrap();
    assert_eq!(w.current_segment(), *segs.last().unwrap());
    w.close().unwrap();
    assert!(segs.len() >= 10, "{segs:?}");
    assert_eq!(segs, (0..segs.len() as u32).collect::<Vec<_>>());
    for (s, len) in segs.iter().zip(segment_lens(pristine.path(), &segs)) {
        assert!(len <= 100, "segment {s} has {len} bytes");
        assert!(len > 8, "segment {s} is empty");
    }
    let all: Vec<Key> = (0..n).flat_map(|i| keys(&numbered_commit(i))).collect();
    let (got, stats) = read_collect(pristine.path());
    assert_eq!(got, all);
    assert_eq!(stats.segments, segs.len() as u32);

    // damage a record in the middle of segment k: everything from it on is dropped
    for k in [0u32, 3, segs.len() as u32 - 1] {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(pristine.path(), dir.path());
        let path = dir.path().join(format!("{k:08}"));
        let mut data = std::fs::read(&path).unwrap();
        let fr = frames(&data);
        let (s, e) = fr[1];
        data[(s + e) / 2] ^= 0x01;
        std::fs::write(&path, &data).unwrap();
        // records in segments before k, plus the first record of k
        let before: usize = (0..k)
            .map(|j| frames(&std::fs::read(pristine.path().join(format!("{j:08}"))).unwrap()).len())
            .sum::<usize>()
            + 1;
        let (w, got, stats) = open_collect(dir.path(), o.clone());
        assert_eq!(got, all[..before], "damage in segment {k}");
        let c = stats.corrupted.clone().unwrap();
        assert_eq!((c.segment, c.offset), (k, s as u64));
        assert_eq!(c.dropped_records, (all.len() - before) as u64);
        assert_eq!(w.segments().unwrap(), (0..=k).collect::<Vec<_>>());
        w.log(&numbered_commit(1000)).unwrap();
        w.close().unwrap();
        let (got, stats) = read_collect(dir.path());
        assert!(stats.corrupted.is_none());
        assert_eq!(got.len(), before + 1);
        assert_eq!(got.last(), Some(&keys(&numbered_commit(1000))[0]));
    }
}

#[test]
fn oversized_commit_gets_a_segment_of_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let o = WalOptions {
        segment_size: 100,
        fsync: FsyncPolicy::Never,
    };
    let (w, _, _) = open_collect(dir.path(), o.clone());
    w.log(&numbered_commit(0)).unwrap();
    let big: Vec<Record> = vec![Record::Samples(
        (0..50).map(|i| sample(i, i as i64, 1.0)).collect(),
    )];
    w.log(&big).unwrap();
    w.log(&numbered_commit(1)).unwrap();
    let segs = w.segments().unwrap();
    w.close().unwrap();
    assert_eq!(segs, vec![0, 1, 2]);
    let lens = segment_lens(dir.path(), &segs);
    assert!(lens[1] > 100);
    let (got, _) = read_collect(dir.path());
    let mut want = keys(&numbered_commit(0));
    want.extend(keys(&big));
    want.extend(keys(&numbered_commit(1)));
    assert_eq!(got, want);
}

#[test]
fn cut_segment_and_truncate_before() {
    let dir = tempfile::tempdir().unwrap();
    let (w, _, _) = open_collect(dir.path(), opts(FsyncPolicy::Always));
    w.log(&numbered_commit(0)).unwrap();
    assert_eq!(w.cut_segment().unwrap(), 1);
    w.log(&numbered_commit(1)).unwrap();
    assert_eq!(w.cut_segment().unwrap(), 2);
    assert_eq!(w.cut_segment().unwrap(), 3);
    w.log(&numbered_commit(2)).unwrap();
    assert_eq!(w.segments().unwrap(), vec![0, 1, 2, 3]);
    w.truncate_before(1).unwrap();
    assert_eq!(w.segments().unwrap(), vec![1, 2, 3]);
    // the segment being written is never removed
    w.truncate_before(100).unwrap();
    assert_eq!(w.segments().unwrap(), vec![3]);
    w.close().unwrap();
    let (got, stats) = read_collect(dir.path());
    assert_eq!(got, keys(&numbered_commit(2)));
    assert!(stats.corrupted.is_none());

    // reopen continues in the last segment and keeps its data
    let (w, got, _) = open_collect(dir.path(), opts(FsyncPolicy::Never));
    assert_eq!(got, keys(&numbered_commit(2)));
    assert_eq!(w.current_segment(), 3);
    w.log(&numbered_commit(3)).unwrap();
    w.close().unwrap();
    let (got, _) = read_collect(dir.path());
    assert_eq!(got.len(), 2);
}

#[test]
fn missing_segment_in_the_middle_is_an_error_and_stray_files_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let (w, _, _) = open_collect(dir.path(), opts(FsyncPolicy::Never));
    w.log(&numbered_commit(0)).unwrap();
    w.cut_segment().unwrap();
    w.log(&numbered_commit(1)).unwrap();
    w.cut_segment().unwrap();
    w.close().unwrap();
    std::fs::write(dir.path().join("checkpoint.tmp"), b"junk").unwrap();
    std::fs::write(dir.path().join("0000001"), b"junk").unwrap(); // 7 digits: not a segment
    let (got, stats) = read_collect(dir.path());
    assert_eq!(got.len(), 2);
    assert!(stats.corrupted.is_none());
    std::fs::remove_file(dir.path().join("00000001")).unwrap();
    let err = wal::read_dir(dir.path(), |_| {}).unwrap_err();
    assert!(
        matches!(
            err,
            wal::WalError::NonSequentialSegments { prev: 0, next: 2 }
        ),
        "{err}"
    );
    assert!(Wal::open(dir.path(), opts(FsyncPolicy::Never), |_| {}).is_err());
}

#[test]
fn empty_segment_before_others_is_damage() {
    let dir = tempfile::tempdir().unwrap();
    let (w, _, _) = open_collect(dir.path(), opts(FsyncPolicy::Never));
    w.log(&numbered_commit(0)).unwrap();
    w.cut_segment().unwrap();
    w.log(&numbered_commit(1)).unwrap();
    w.cut_segment().unwrap();
    w.log(&numbered_commit(2)).unwrap();
    w.close().unwrap();
    std::fs::write(dir.path().join("00000001"), b"").unwrap();
    let (w, got, stats) = open_collect(dir.path(), opts(FsyncPolicy::Never));
    assert_eq!(got, keys(&numbered_commit(0)));
    let c = stats.corrupted.unwrap();
    assert_eq!((c.segment, c.offset, c.dropped_records), (1, 0, 1));
    assert_eq!(w.segments().unwrap(), vec![0, 1]);
    w.close().unwrap();
}

#[test]
fn invalid_options_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let o = WalOptions {
        segment_size: 8,
        fsync: FsyncPolicy::Never,
    };
    assert!(matches!(
        Wal::open(dir.path(), o, |_| {}),
        Err(wal::WalError::InvalidOptions(_))
    ));
    let o = opts(FsyncPolicy::Interval(Duration::ZERO));
    assert!(matches!(
        Wal::open(dir.path(), o, |_| {}),
        Err(wal::WalError::InvalidOptions(_))
    ));
    let d = WalOptions::default();
    assert_eq!(d.segment_size, 128 << 20);
    assert_eq!(d.fsync, FsyncPolicy::Interval(Duration::from_secs(1)));
}

#[test]
fn concurrent_commits_with_always_are_all_replayed_and_share_fsyncs() {
    let dir = tempfile::tempdir().unwrap();
    let o = WalOptions {
        segment_size: 16 << 10, // also exercise rollover under concurrency
        fsync: FsyncPolicy::Always,
    };
    let (w, _, _) = open_collect(dir.path(), o);
    let threads = 8u64;
    let per_thread = 60u64;
    std::thread::scope(|s| {
        for t in 0..threads {
            let w = &w;
            s.spawn(move || {
                for i in 0..per_thread {
                    let r = t * 1_000_000 + i;
                    w.log(&[
                        Record::Series(vec![series(
                            r,
                            &[("thread", &t.to_string()), ("i", &i.to_string())],
                        )]),
                        Record::Samples(vec![sample(r, i as i64, t as f64)]),
                    ])
                    .unwrap();
                }
            });
        }
    });
    let commits = threads * per_thread;
    let fsyncs = w.fsync_count();
    assert!(fsyncs >= 1);
    assert!(fsyncs < commits, "{fsyncs} fsyncs for {commits} commits");
    w.close().unwrap();

    let mut recs = Vec::new();
    let stats = wal::read_dir(dir.path(), |r| recs.push(r)).unwrap();
    assert!(stats.corrupted.is_none());
    assert_eq!(stats.records, commits * 2);
    // each commit's two records are adjacent, and every thread's commits are in order
    let mut next = vec![0u64; threads as usize];
    for pair in recs.chunks(2) {
        let (Record::Series(s), Record::Samples(x)) = (&pair[0], &pair[1]) else {
            panic!("commit records were interleaved: {pair:?}");
        };
        let r = s[0].series_ref;
        assert_eq!(x[0].series_ref, r);
        let (t, i) = ((r / 1_000_000) as usize, r % 1_000_000);
        assert_eq!(i, next[t], "thread {t} out of order");
        next[t] += 1;
    }
    assert!(next.iter().all(|&n| n == per_thread));
}

#[test]
fn acknowledged_commits_survive_without_close() {
    // what a killed process leaves behind: the file contents after log() returned
    let dir = tempfile::tempdir().unwrap();
    let (w, _, _) = open_collect(dir.path(), opts(FsyncPolicy::Never));
    for i in 0..10 {
        w.log(&numbered_commit(i)).unwrap();
        let (got, stats) = read_collect(dir.path());
        assert_eq!(got.len() as u64, i + 1);
        assert!(stats.corrupted.is_none());
    }
    std::mem::forget(w);
}

/// Captures log lines so the repair warning can be checked.
struct Capture;

static CAPTURED: std::sync::Mutex<Vec<(log::Level, String)>> = std::sync::Mutex::new(Vec::new());

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        CAPTURED
            .lock()
            .unwrap()
            .push((record.level(), record.args().to_string()));
    }
    fn flush(&self) {}
}

#[test]
fn repair_logs_one_warning_naming_segment_offset_and_dropped_records() {
    let _ = log::set_logger(&Capture);
    log::set_max_level(log::LevelFilter::Trace);
    let dir = tempfile::tempdir().unwrap();
    let (w, _, _) = open_collect(dir.path(), opts(FsyncPolicy::Never));
    for i in 0..4 {
        w.log(&numbered_commit(i)).unwrap();
    }
    w.close().unwrap();
    let path = dir.path().join("00000000");
    let mut data = std::fs::read(&path).unwrap();
    let fr = frames(&data);
    let (s, e) = fr[2];
    data[e - 1] ^= 0x10; // last CRC byte of the third record
    std::fs::write(&path, &data).unwrap();

    let (w, got, stats) = open_collect(dir.path(), opts(FsyncPolicy::Never));
    assert_eq!(got.len(), 2);
    assert_eq!(stats.corrupted.as_ref().unwrap().dropped_records, 2);
    w.close().unwrap();
    let name = dir.path().display().to_string();
    let lines: Vec<(log::Level, String)> = CAPTURED
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, m)| m.contains(&name))
        .cloned()
        .collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    let (level, msg) = &lines[0];
    assert_eq!(*level, log::Level::Warn);
    assert!(msg.contains("segment 00000000"), "{msg}");
    assert!(msg.contains(&format!("offset {s}")), "{msg}");
    assert!(msg.contains("dropped 2 records"), "{msg}");
    assert!(msg.contains("checksum mismatch"), "{msg}");
}

#[test]
fn concurrent_logs_cuts_and_syncs_keep_every_commit_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let o = WalOptions {
        segment_size: 4 << 10,
        fsync: FsyncPolicy::Interval(Duration::from_millis(2)),
    };
    let (w, _, _) = open_collect(dir.path(), o);
    let writers = 4u64;
    let per_writer = 300u64;
    let done = std::sync::atomic::AtomicU64::new(0);
    std::thread::scope(|s| {
        for t in 0..writers {
            let (w, done) = (&w, &done);
            s.spawn(move || {
                for i in 0..per_writer {
                    w.log(&[Record::Samples(vec![sample(
                        t * 1_000_000 + i,
                        i as i64,
                        1.0,
                    )])])
                    .unwrap();
                }
                done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            });
        }
        let (w, done) = (&w, &done);
        s.spawn(move || {
            let mut last = w.current_segment();
            while done.load(std::sync::atomic::Ordering::SeqCst) < writers {
                let seg = w.cut_segment().unwrap();
                assert!(seg > last);
                last = seg;
                w.sync().unwrap();
                std::thread::sleep(Duration::from_millis(1));
            }
        });
    });
    w.close().unwrap();
    let mut next = vec![0u64; writers as usize];
    let stats = wal::read_dir(dir.path(), |r| {
        let Record::Samples(s) = r else {
            panic!("unexpected record")
        };
        let (t, i) = (
            (s[0].series_ref / 1_000_000) as usize,
            s[0].series_ref % 1_000_000,
        );
        assert_eq!(i, next[t], "writer {t} out of order");
        next[t] += 1;
    })
    .unwrap();
    assert!(stats.corrupted.is_none());
    assert!(stats.segments > 2);
    assert!(next.iter().all(|&n| n == per_writer), "{next:?}");
}

#[test]
fn wal_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Wal>();
}
