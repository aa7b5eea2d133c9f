//! `aion test rules` and `aion check rules` against Debian's `promtool` on the same files:
//! the verdicts must agree (and match the expected one in each file's name). Without
//! promtool the Aion side is still checked and the comparison prints `SKIP`.

use std::path::{Path, PathBuf};
use std::process::Command;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/testdata/rules")
}

fn promtool() -> Option<PathBuf> {
    let out = Command::new("sh")
        .args(["-c", "command -v promtool"])
        .output()
        .ok()?;
    let p = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (!p.is_empty()).then(|| PathBuf::from(p))
}

fn run(bin: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(bin)
        .args(args)
        .current_dir(dir())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn unit_test_verdicts_match_promtool() {
    let aion = PathBuf::from(env!("CARGO_BIN_EXE_aion"));
    let pt = promtool();
    if pt.is_none() {
        println!("SKIP: promtool not installed; checking Aion's verdicts only");
    }
    let mut files: Vec<String> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with("pass_") || n.starts_with("fail_"))
        .collect();
    files.sort();
    assert!(files.len() >= 5, "{files:?}");
    for f in &files {
        let expect_pass = f.starts_with("pass_");
        let (ok, text) = run(&aion, &["test", "rules", f]);
        assert_eq!(ok, expect_pass, "aion test rules {f}:\n{text}");
        if expect_pass {
            assert!(text.contains("SUCCESS"), "{text}");
        } else {
            assert!(text.contains("FAILED"), "{text}");
        }
        if let Some(pt) = &pt {
            let (pok, ptext) = run(pt, &["test", "rules", f]);
            assert_eq!(
                ok, pok,
                "verdicts differ on {f}\naion:\n{text}\npromtool:\n{ptext}"
            );
        }
    }
}

#[test]
fn check_rules_reports_problems_with_lines_like_promtool() {
    let aion = PathBuf::from(env!("CARGO_BIN_EXE_aion"));
    let (ok, text) = run(&aion, &["check", "rules", "alert_rules.yml"]);
    assert!(ok, "{text}");
    assert!(text.contains("SUCCESS: 10 rules found"), "{text}");
    let (ok, text) = run(&aion, &["check", "rules", "bad_rules.yml"]);
    assert!(!ok, "{text}");
    for needle in [
        "bad_rules.yml:4: group \"broken\", rule 1, \"BadExpr\": could not parse expression",
        "bad_rules.yml:6: group \"broken\", rule 2, \"not a metric name\": invalid recording rule name",
        "bad_rules.yml:8: group \"broken\", rule 3, \"BadTemplate\": annotation \"summary\": template:",
        "bad_rules.yml:12: group \"broken\", rule 4, \"BadLabel\": invalid label name: 0x",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
    if let Some(pt) = promtool() {
        for f in ["alert_rules.yml", "bad_rules.yml"] {
            let (a, _) = run(&aion, &["check", "rules", f]);
            let (p, ptext) = run(&pt, &["check", "rules", f]);
            assert_eq!(a, p, "check verdicts differ on {f}: {ptext}");
        }
    } else {
        println!("SKIP: promtool not installed");
    }
}
