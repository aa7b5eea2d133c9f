//! The runner for PromQL test scripts in the upstream `promqltest` format.
//!
//! A script is a sequence of `load`, `clear` and `eval` commands (see the format
//! description shipped with the test data). Each `eval` is one case; its verdict covers
//! the result, the expected failure and the annotation checks. Instant cases are also
//! re-run with every selector pinned by `@` at several evaluation times, and as a range
//! query around the evaluation time, as the upstream runner does.
//!
//! ```
//! let script = "load 1m\n  up{job=\"a\"} 1 2 3\n\neval instant at 2m up\n  up{job=\"a\"} 3\n";
//! let report = aion::promql::promqltest::run_script("inline.test", script);
//! assert_eq!((report.passed, report.failed), (1, 0));
//! ```

mod script;
mod values;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use regex::Regex;

use crate::model::{is_stale_nan, Labels};
use crate::promql::annotations::{Annotation, AnnotationKind};
use crate::promql::ast::{self, Expr};
use crate::promql::engine::{Engine, EngineOptions, QueryError};
use crate::promql::func::Func;
use crate::promql::parser::parse;
use crate::promql::value::{format_float, Value};
use crate::storage::MemStorage;

pub use script::{
    parse_script, Command, EvalCmd, EvalKind, ExpectedSeries, ScriptError, TextMatch,
};
pub use values::{expand_values, parse_duration, parse_number, parse_series_desc};

/// One failed case.
#[derive(Debug, Clone)]
pub struct Failure {
    /// Script file name.
    pub file: String,
    /// 1-based line of the `eval` command.
    pub line: usize,
    /// The query.
    pub expr: String,
    /// What went wrong, with expected and actual values.
    pub message: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{}:{}: {}", self.file, self.line, self.expr)?;
        for l in self.message.lines() {
            writeln!(f, "    {l}")?;
        }
        Ok(())
    }
}

/// The outcome of one script.
#[derive(Debug, Clone, Default)]
pub struct FileReport {
    /// The script's name or path.
    pub file: String,
    /// Cases that passed.
    pub passed: usize,
    /// Cases that failed (including a script that could not be read or parsed, counted
    /// as one failure).
    pub failed: usize,
    /// Details of the failed cases.
    pub failures: Vec<Failure>,
}

/// The outcome of several scripts.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Per-file reports in the order run.
    pub files: Vec<FileReport>,
    /// Total passed cases.
    pub passed: usize,
    /// Total failed cases.
    pub failed: usize,
}

impl Summary {
    /// Whether every case passed.
    pub fn ok(&self) -> bool {
        self.failed == 0
    }
}

/// Engine settings the scripts assume.
pub fn test_engine_options() -> EngineOptions {
    EngineOptions {
        lookback_delta_ms: 5 * 60_000,
        max_samples: 10_000,
        timeout: Duration::from_secs(100),
        default_subquery_step_ms: 60_000,
        delayed_name_removal: true,
    }
}

/// Runs every script in `paths`.
pub fn run_files<P: AsRef<Path>>(paths: &[P]) -> Summary {
    let mut sum = Summary::default();
    for p in paths {
        let p = p.as_ref();
        let name = p.display().to_string();
        let report = match std::fs::read_to_string(p) {
            Ok(content) => run_script(&name, &content),
            Err(e) => FileReport {
                file: name.clone(),
                passed: 0,
                failed: 1,
                failures: vec![Failure {
                    file: name,
                    line: 0,
                    expr: String::new(),
                    message: format!("cannot read file: {e}"),
                }],
            },
        };
        sum.passed += report.passed;
        sum.failed += report.failed;
        sum.files.push(report);
    }
    sum
}

/// All `*.test` files in `dir`, sorted.
pub fn test_files_in(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "test"))
        .collect();
    out.sort();
    Ok(out)
}

/// Runs one script given as text.
pub fn run_script(name: &str, content: &str) -> FileReport {
    let mut report = FileReport {
        file: name.to_string(),
        ..FileReport::default()
    };
    let cmds = match parse_script(content) {
        Ok(c) => c,
        Err(e) => {
            report.failed = 1;
            report.failures.push(Failure {
                file: name.to_string(),
                line: e.line,
                expr: String::new(),
                message: format!("script error: {}", e.message),
            });
            return report;
        }
    };
    let db = MemStorage::new();
    let engine = Engine::new(test_engine_options());
    for cmd in &cmds {
        match cmd {
            Command::Clear => db.clear(),
            Command::Load { series, .. } => {
                for (labels, samples) in series {
                    for s in samples {
                        db.add(labels, *s);
                    }
                }
            }
            Command::Eval(ev) => match run_eval(&engine, &db, ev) {
                Ok(()) => report.passed += 1,
                Err(message) => {
                    report.failed += 1;
                    report.failures.push(Failure {
                        file: name.to_string(),
                        line: ev.line,
                        expr: ev.expr.clone(),
                        message,
                    });
                }
            },
        }
    }
    report
}

/// Functions whose result depends on the evaluation time even with fixed inputs.
fn at_modifier_unsafe(f: Func) -> bool {
    matches!(
        f,
        Func::Time
            | Func::Timestamp
            | Func::PredictLinear
            | Func::Minute
            | Func::Hour
            | Func::Month
            | Func::Year
            | Func::DayOfMonth
            | Func::DayOfWeek
            | Func::DayOfYear
            | Func::DaysInMonth
    )
}

/// Whether `e` calls an `@`-unsafe function outside of subqueries.
fn contains_unsafe_call(e: &Expr) -> bool {
    match e {
        Expr::Subquery(_) => false,
        Expr::Call(c) if at_modifier_unsafe(c.func) => true,
        other => other.children().into_iter().any(contains_unsafe_call),
    }
}

/// Sets `@ t` on every selector and subquery without one, not looking inside subqueries.
fn pin_at(e: &mut Expr, t: i64) {
    ast::set_at_everywhere(e, t);
}

fn run_eval(engine: &Engine, db: &MemStorage, cmd: &EvalCmd) -> Result<(), String> {
    let expr = match parse(&cmd.expr) {
        Ok(e) => e,
        // A query that cannot be created counts as failing, as upstream.
        Err(e) if cmd.fail => return check_expected_failure(cmd, &QueryError::Parse(e)),
        Err(e) => return Err(format!("parse error: {e}")),
    };
    match cmd.kind {
        EvalKind::Range { start, end, step } => {
            let res = engine.range_query_expr(db, &expr, &cmd.expr, start, end, step, None);
            let out = match res {
                Err(e) => {
                    if cmd.fail {
                        return check_expected_failure(cmd, &e);
                    }
                    return Err(format!("error evaluating query: {e}"));
                }
                Ok(o) => o,
            };
            if cmd.fail {
                return Err(format!(
                    "expected error evaluating query but got none; result:\n{}",
                    out.value
                ));
            }
            check_annotations(cmd, &out.annotations)?;
            compare_result(cmd, &out.value, Some((start, end, step)))
        }
        EvalKind::Instant { t } => {
            let mut variants: Vec<(Expr, i64, bool)> = vec![(expr.clone(), t, true)];
            if !contains_unsafe_call(&expr) {
                let mut pinned = expr.clone();
                pin_at(&mut pinned, t);
                let times = if t == 0 {
                    vec![-1000, 0, 1000]
                } else {
                    vec![t.saturating_mul(-10), 0, t / 5, t, t.saturating_mul(10)]
                };
                for et in times {
                    variants.push((pinned.clone(), et, false));
                }
            }
            let ctx_funcs = Regex::new(r"(start|end|range|step)\(\)").map_err(|e| e.to_string())?;
            let skip_range = cmd.exclude_from_range || ctx_funcs.is_match(&cmd.expr);
            for (e, et, original) in &variants {
                let what = if *original {
                    String::new()
                } else {
                    format!(
                        " (with every selector pinned by @ {}, evaluated at {}ms)",
                        t, et
                    )
                };
                run_instant(engine, db, cmd, e, *et, skip_range)
                    .map_err(|m| format!("{m}{what}"))?;
            }
            Ok(())
        }
    }
}

fn run_instant(
    engine: &Engine,
    db: &MemStorage,
    cmd: &EvalCmd,
    expr: &Expr,
    t: i64,
    skip_range: bool,
) -> Result<(), String> {
    let out = match engine.instant_query_expr(db, expr, &cmd.expr, t, None) {
        Err(e) => {
            if cmd.fail {
                return check_expected_failure(cmd, &e);
            }
            return Err(format!("error evaluating query: {e}"));
        }
        Ok(o) => o,
    };
    if cmd.fail {
        return Err(format!(
            "expected error evaluating query but got none; result:\n{}",
            out.value
        ));
    }
    check_annotations(cmd, &out.annotations)?;
    let rv = cmd.range_vector;
    compare_result(cmd, &out.value, rv)?;
    if skip_range {
        return Ok(());
    }
    let range = engine
        .range_query_expr(
            db,
            expr,
            &cmd.expr,
            t.saturating_sub(60_000),
            t.saturating_add(60_000),
            60_000,
            None,
        )
        .map_err(|e| format!("error evaluating query in range mode: {e}"))?;
    if cmd.ordered {
        return Ok(());
    }
    let Value::Matrix(m) = &range.value else {
        return Err(format!("range mode returned {}", range.value.type_name()));
    };
    assert_sorted(m)?;
    let mut vec = Vec::new();
    for s in m {
        if let Some(p) = s.samples.iter().find(|p| p.t == t) {
            vec.push(crate::promql::value::InstantSample {
                labels: s.labels.clone(),
                t,
                v: p.v,
            });
        }
    }
    let as_value = if matches!(out.value, Value::Scalar { .. }) {
        match vec.first() {
            Some(s) => Value::Scalar { t, v: s.v },
            None => return Err("range mode returned no point for a scalar query".to_string()),
        }
    } else {
        Value::Vector(vec)
    };
    compare_result(cmd, &as_value, None).map_err(|e| format!("{e} (range mode)"))
}

fn assert_sorted(m: &[crate::promql::value::RangeSeries]) -> Result<(), String> {
    for w in m.windows(2) {
        if let [a, b] = w {
            if a.labels > b.labels {
                return Err(format!(
                    "matrix results should always be sorted by labels, but {} sorts before {}",
                    b.labels, a.labels
                ));
            }
        }
    }
    Ok(())
}

fn check_expected_failure(cmd: &EvalCmd, e: &QueryError) -> Result<(), String> {
    let text = e.to_string();
    for m in &cmd.fail_checks {
        if !m.matches(&text) {
            return Err(format!("expected error matching {m}, but got: {text}"));
        }
    }
    Ok(())
}

fn check_annotations(cmd: &EvalCmd, annos: &[Annotation]) -> Result<(), String> {
    let warnings: Vec<&str> = annos
        .iter()
        .filter(|a| a.kind == AnnotationKind::Warning)
        .map(|a| a.text.as_str())
        .collect();
    let infos: Vec<&str> = annos
        .iter()
        .filter(|a| a.kind == AnnotationKind::Info)
        .map(|a| a.text.as_str())
        .collect();
    let all = || {
        annos
            .iter()
            .map(|a| a.text.clone())
            .collect::<Vec<_>>()
            .join("; ")
    };
    if cmd.legacy_warn && warnings.is_empty() {
        return Err("expected warnings but got none".to_string());
    }
    if cmd.legacy_info && infos.is_empty() {
        return Err("expected info annotations but got none".to_string());
    }
    for (kind, expected, actual) in [("warn", &cmd.warn, &warnings), ("info", &cmd.info, &infos)] {
        if expected.is_empty() {
            continue;
        }
        if actual.is_empty() {
            return Err(format!("expected {kind} annotations but none were found"));
        }
        for e in expected.iter() {
            if !actual.iter().any(|a| e.matches(a)) {
                return Err(format!(
                    "expected {kind} annotation matching {e} but no matching annotation was found, found: [{}]",
                    all()
                ));
            }
        }
        for a in actual.iter() {
            if !expected.iter().any(|e| e.matches(a)) {
                return Err(format!("unexpected {kind} annotation {a:?}"));
            }
        }
    }
    if cmd.no_warn && !warnings.is_empty() {
        return Err(format!("unexpected warning annotations: [{}]", all()));
    }
    if cmd.no_info && !infos.is_empty() {
        return Err(format!("unexpected info annotations: [{}]", all()));
    }
    Ok(())
}

const EPSILON: f64 = 1e-6;
const MIN_NORMAL: f64 = f64::MIN_POSITIVE;

/// The scripts' float comparison.
pub fn almost_equal(a: f64, b: f64) -> bool {
    if is_stale_nan(a) || is_stale_nan(b) {
        return is_stale_nan(a) && is_stale_nan(b);
    }
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || diff < MIN_NORMAL {
        return diff < EPSILON * MIN_NORMAL;
    }
    diff / (a.abs() + b.abs()) < EPSILON
}

fn fmt_vals(v: &[Option<f64>]) -> String {
    v.iter()
        .map(|x| match x {
            Some(x) => format_float(*x),
            None => "_".to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn expected_text(cmd: &EvalCmd) -> String {
    let mut s = String::new();
    if let Some(v) = cmd.scalar {
        let _ = writeln!(s, "scalar {}", format_float(v));
    }
    if let Some(v) = &cmd.expected_string {
        let _ = writeln!(s, "string {v:?}");
    }
    for e in &cmd.series {
        let _ = writeln!(s, "{} {}", e.labels, fmt_vals(&e.values));
    }
    if s.is_empty() {
        s.push_str("(empty result)\n");
    }
    s
}

fn diff(cmd: &EvalCmd, got: &Value, why: String) -> String {
    let got_text = match got {
        Value::Vector(v) if v.is_empty() => "(empty vector)\n".to_string(),
        Value::Matrix(m) if m.is_empty() => "(empty matrix)\n".to_string(),
        other => other.to_string(),
    };
    format!(
        "{why}\nexpected:\n{}got:\n{}",
        indent(&expected_text(cmd)),
        indent(&got_text)
    )
}

fn indent(s: &str) -> String {
    s.lines().map(|l| format!("  {l}\n")).collect()
}

fn find_expected<'a>(cmd: &'a EvalCmd, l: &Labels) -> Option<&'a ExpectedSeries> {
    cmd.series.iter().find(|e| &e.labels == l)
}

fn compare_result(
    cmd: &EvalCmd,
    got: &Value,
    range: Option<(i64, i64, i64)>,
) -> Result<(), String> {
    let fail = |why: String| Err(diff(cmd, got, why));
    match got {
        Value::Matrix(m) => {
            if cmd.ordered {
                return fail("expected ordered result, but query returned a matrix".to_string());
            }
            if cmd.scalar.is_some() {
                return fail("expected scalar result, but got matrix".to_string());
            }
            assert_sorted(m)?;
            let Some((start, end, step)) = range else {
                return fail("got a range vector where an instant vector was expected".to_string());
            };
            for s in m {
                let Some(exp) = find_expected(cmd, &s.labels) else {
                    return fail(format!("unexpected metric {} in result", s.labels));
                };
                let mut points = Vec::new();
                for (i, v) in exp.values.iter().enumerate() {
                    let ts = start + i as i64 * step;
                    if ts > end {
                        return fail(format!(
                            "expected {} points for {}, but query time range cannot return this many points",
                            exp.values.len(),
                            exp.labels
                        ));
                    }
                    if let Some(v) = v {
                        points.push((ts, *v));
                    }
                }
                if points.len() != s.samples.len() {
                    return fail(format!(
                        "expected {} points for {}, but got {}",
                        points.len(),
                        exp.labels,
                        s.samples.len()
                    ));
                }
                for ((et, ev), p) in points.iter().zip(&s.samples) {
                    if *et != p.t {
                        return fail(format!(
                            "expected point for {} at timestamp {et}, but it had timestamp {}",
                            exp.labels, p.t
                        ));
                    }
                    if !almost_equal(p.v, *ev) {
                        return fail(format!(
                            "expected {} at t={} for {}, but got {}",
                            format_float(*ev),
                            p.t,
                            exp.labels,
                            format_float(p.v)
                        ));
                    }
                }
            }
            for e in &cmd.series {
                if !m.iter().any(|s| s.labels == e.labels) {
                    return fail(format!("expected metric {} not found", e.labels));
                }
            }
            Ok(())
        }
        Value::Vector(v) => {
            if cmd.scalar.is_some() {
                return fail("expected scalar result, but got vector".to_string());
            }
            for (pos, s) in v.iter().enumerate() {
                let Some(exp) = find_expected(cmd, &s.labels) else {
                    return fail(format!(
                        "unexpected metric {} in result, has value {}",
                        s.labels,
                        format_float(s.v)
                    ));
                };
                if cmd.ordered && exp.pos != pos + 1 {
                    return fail(format!(
                        "expected metric {} at position {} but was at {}",
                        s.labels,
                        exp.pos,
                        pos + 1
                    ));
                }
                let e0 = exp.values.first().copied().flatten();
                match e0 {
                    Some(e0) if almost_equal(e0, s.v) => {}
                    _ => {
                        return fail(format!(
                            "expected {} for {} but got {}",
                            e0.map(format_float).unwrap_or_else(|| "_".to_string()),
                            s.labels,
                            format_float(s.v)
                        ))
                    }
                }
            }
            for e in &cmd.series {
                if !v.iter().any(|s| s.labels == e.labels) {
                    return fail(format!("expected metric {} not found", e.labels));
                }
            }
            Ok(())
        }
        Value::Scalar { v, .. } => match cmd.scalar {
            None => fail("expected vector or matrix result, but got a scalar".to_string()),
            Some(e) => {
                if almost_equal(e, *v) {
                    Ok(())
                } else {
                    fail(format!(
                        "expected scalar {} but got {}",
                        format_float(e),
                        format_float(*v)
                    ))
                }
            }
        },
        Value::String { v, .. } => {
            let e = cmd.expected_string.clone().unwrap_or_default();
            if &e == v {
                Ok(())
            } else {
                fail(format!("expected string {e:?} but got {v:?}"))
            }
        }
    }
}

/// Formats a summary as the CLI prints it: one block per file, then `N passed, N failed`.
pub fn format_summary(sum: &Summary) -> String {
    let mut s = String::new();
    for f in &sum.files {
        let _ = writeln!(s, "{}: {} passed, {} failed", f.file, f.passed, f.failed);
        for fail in &f.failures {
            let _ = write!(s, "  FAIL {fail}");
        }
    }
    let _ = writeln!(s, "{} passed, {} failed", sum.passed, sum.failed);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_comparison_rule() {
        assert!(almost_equal(1.0, 1.0 + 1e-9));
        assert!(!almost_equal(1.0, 1.001));
        assert!(almost_equal(f64::NAN, f64::NAN));
        assert!(!almost_equal(crate::model::STALE_NAN, f64::NAN));
        assert!(almost_equal(
            crate::model::STALE_NAN,
            crate::model::STALE_NAN
        ));
        assert!(!almost_equal(0.0, 1e-300));
        assert!(almost_equal(f64::INFINITY, f64::INFINITY));
    }

    #[test]
    fn simple_script_passes_and_fails() {
        let ok = "load 1m\n  m{a=\"1\"} 0+1x10\n\neval instant at 5m m\n  m{a=\"1\"} 5\n\neval range from 0 to 2m step 1m m\n  m{a=\"1\"} 0 1 2\n";
        let r = run_script("t", ok);
        assert_eq!((r.passed, r.failed), (2, 0), "{:?}", r.failures);
        let bad = "load 1m\n  m{a=\"1\"} 0+1x10\n\neval instant at 5m m\n  m{a=\"1\"} 6\n";
        let r = run_script("t", bad);
        assert_eq!((r.passed, r.failed), (0, 1));
        assert!(r.failures[0].message.contains("expected 6"));
    }
}
