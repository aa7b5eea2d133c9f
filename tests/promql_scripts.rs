//! Runs the PromQL test scripts: our own (`tests/testdata/promql/*.test`, which must all
//! pass) and, when present, the shared conformance set next to the repository.

use std::path::{Path, PathBuf};

use aion::promql::promqltest::{format_summary, run_files, test_files_in, Summary};

/// Cases of the shared set that no correct float-only engine can pass, with the reason.
/// Each must actually fail (so the list shrinks when the data is fixed).
const KNOWN_DATA_DEFECTS: &[(&str, usize, &str)] = &[(
    "histograms.test",
    559,
    "upstream loads this data with load_with_nhcb, which also creates the native-histogram \
     series request_duration_seconds{,2} that the regex selects; the float-only copy loads \
     it with plain load, so the selection is empty and no error can occur",
)];

fn run_dir(dir: &Path) -> Summary {
    let files: Vec<PathBuf> = test_files_in(dir).expect("list test scripts");
    assert!(!files.is_empty(), "no .test files in {}", dir.display());
    let summary = run_files(&files);
    print!("{}", format_summary(&summary));
    summary
}

#[test]
fn own_scripts_pass() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/testdata/promql");
    if !dir.is_dir() {
        println!("no scripts in {}; nothing to run", dir.display());
        return;
    }
    let summary = run_dir(&dir);
    assert!(summary.passed > 0);
    assert_eq!(summary.failed, 0, "{}", format_summary(&summary));
}

#[test]
fn shared_conformance_scripts_pass() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/promql-testdata");
    if !dir.is_dir() {
        println!(
            "SKIP: shared PromQL conformance scripts not found at {}",
            dir.display()
        );
        return;
    }
    let summary = run_dir(&dir);
    let mut unexpected = Vec::new();
    let mut seen_defects = Vec::new();
    for f in &summary.files {
        let base = Path::new(&f.file)
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        for fail in &f.failures {
            match KNOWN_DATA_DEFECTS
                .iter()
                .find(|(file, line, _)| *file == base && *line == fail.line)
            {
                Some(d) => {
                    println!("known data defect {}:{}: {}", d.0, d.1, d.2);
                    seen_defects.push((d.0, d.1));
                }
                None => unexpected.push(fail.to_string()),
            }
        }
    }
    assert!(
        unexpected.is_empty(),
        "{} case(s) failed:\n{}",
        unexpected.len(),
        unexpected.join("\n")
    );
    for (file, line, _) in KNOWN_DATA_DEFECTS {
        let present = summary.files.iter().any(|f| f.file.ends_with(file));
        if present {
            assert!(
                seen_defects.contains(&(*file, *line)),
                "{file}:{line} is listed as a data defect but passed: remove it from the list"
            );
        }
    }
    assert!(
        summary.passed >= 600,
        "only {} cases passed",
        summary.passed
    );
}
