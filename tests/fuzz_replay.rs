//! Replays every committed fuzz input (`fuzz/corpus/<target>/*` and
//! `fuzz/regressions/<target>/*`) through the matching entry function of
//! `aion::fuzzing`, the same functions the fuzz targets call. A panic names the file.

use std::path::{Path, PathBuf};

type Target = fn(&[u8]);

const TARGETS: &[(&str, Target)] = &[
    ("promql_parser", aion::fuzzing::promql_parser),
    ("text_parser", aion::fuzzing::text_parser),
    ("openmetrics_parser", aion::fuzzing::openmetrics_parser),
    ("config_loader", aion::fuzzing::config_loader),
    ("rule_file_loader", aion::fuzzing::rule_file_loader),
    ("wal_reader", aion::fuzzing::wal_reader),
    ("chunk_decoder", aion::fuzzing::chunk_decoder),
    ("index_reader", aion::fuzzing::index_reader),
    ("remote_write_decoder", aion::fuzzing::remote_write_decoder),
    ("template_expansion", aion::fuzzing::template_expansion),
];

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    out
}

fn replay(kind: &str) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join(kind);
    // Every directory must belong to a known target, so a renamed target cannot
    // silently stop being replayed.
    for d in std::fs::read_dir(&root).into_iter().flatten().flatten() {
        let name = d.file_name().to_string_lossy().into_owned();
        assert!(
            TARGETS.iter().any(|(t, _)| *t == name),
            "fuzz/{kind}/{name} matches no fuzz target"
        );
    }
    let mut n = 0;
    for (name, f) in TARGETS {
        for path in files(&root.join(name)) {
            let data = std::fs::read(&path).unwrap();
            let r = std::panic::catch_unwind(|| f(&data));
            assert!(r.is_ok(), "{name}: {} fails", path.display());
            n += 1;
        }
    }
    n
}

#[test]
fn regressions_replay() {
    let n = replay("regressions");
    println!("replayed {n} regression inputs");
}

#[test]
fn corpora_replay() {
    let n = replay("corpus");
    println!("replayed {n} corpus inputs");
    assert!(n > 0, "no fuzz corpus found");
}
