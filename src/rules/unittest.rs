//! Rule unit tests in promtool's format (`promtool test rules`): `rule_files`,
//! `evaluation_interval`, and `tests` with `input_series`, `alert_rule_test` and
//! `promql_expr_test`. Series are loaded into an in-memory store, every group is
//! evaluated at each evaluation step from 0 to the last `eval_time`, and firing alerts
//! and expression results are compared with the expectations.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;

use crate::model::{Labels, Sample};
use crate::promql::engine::Engine;
use crate::promql::promqltest::{expand_values, parse_series_desc, test_engine_options};
use crate::storage::MemStorage;

use super::alerting::AlertState;
use super::{engine_query_func, AppendFunc, EvalContext, Group};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestFile {
    #[serde(default)]
    rule_files: Vec<String>,
    #[serde(default)]
    evaluation_interval: Option<String>,
    #[serde(default)]
    group_eval_order: Vec<String>,
    #[serde(default)]
    tests: Vec<TestGroup>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestGroup {
    #[serde(default)]
    interval: Option<String>,
    #[serde(default)]
    input_series: Vec<InputSeries>,
    #[serde(default)]
    alert_rule_test: Vec<AlertTest>,
    #[serde(default)]
    promql_expr_test: Vec<ExprTest>,
    #[serde(default)]
    external_labels: BTreeMap<String, String>,
    #[serde(default)]
    external_url: String,
    #[serde(default)]
    name: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InputSeries {
    series: String,
    #[serde(default)]
    values: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertTest {
    eval_time: String,
    alertname: String,
    #[serde(default)]
    exp_alerts: Vec<ExpAlert>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpAlert {
    #[serde(default)]
    exp_labels: BTreeMap<String, String>,
    #[serde(default)]
    exp_annotations: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExprTest {
    expr: String,
    eval_time: String,
    #[serde(default)]
    exp_samples: Vec<ExpSample>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpSample {
    #[serde(default)]
    labels: String,
    value: f64,
}

/// The outcome of one test file.
#[derive(Debug, Clone, PartialEq)]
pub struct FileOutcome {
    /// The file.
    pub file: String,
    /// Failure messages (empty = passed).
    pub failures: Vec<String>,
}

fn dur(s: &str) -> Result<i64, String> {
    crate::model::time::parse_duration_ms(s.trim())
        .ok_or_else(|| format!("not a valid duration string: {s:?}"))
}

fn labels_str(l: &Labels) -> String {
    l.to_string()
}

fn alerts_str(v: &[(Labels, Labels)]) -> String {
    let parts: Vec<String> = v
        .iter()
        .map(|(l, a)| format!("{{Labels:{} Annotations:{}}}", labels_str(l), labels_str(a)))
        .collect();
    format!("[{}]", parts.join(" "))
}

/// Runs the tests in one file.
pub fn run_file(path: &Path) -> FileOutcome {
    let file = path.display().to_string();
    let failures = match std::fs::read_to_string(path) {
        Ok(text) => run_text(path.parent().unwrap_or(Path::new(".")), &text),
        Err(e) => vec![format!("cannot read file: {e}")],
    };
    FileOutcome { file, failures }
}

/// Runs tests from `text`; rule file paths are relative to `base`.
pub fn run_text(base: &Path, text: &str) -> Vec<String> {
    let tf: TestFile = match serde_yaml::from_str(text) {
        Ok(t) => t,
        Err(e) => return vec![e.to_string()],
    };
    let eval_interval = match tf
        .evaluation_interval
        .as_deref()
        .map(dur)
        .unwrap_or(Ok(60_000))
    {
        Ok(0) => return vec!["evaluation_interval must be greater than zero".to_string()],
        Ok(d) => d,
        Err(e) => return vec![e],
    };
    let files = match super::file::expand_globs(base, &tf.rule_files) {
        Ok(f) => f,
        Err(e) => return vec![e],
    };
    let mut specs = Vec::new();
    for f in &files {
        match super::load_rule_file(f) {
            Ok(g) => specs.extend(g),
            Err(errs) => return errs.iter().map(ToString::to_string).collect(),
        }
    }
    if !tf.group_eval_order.is_empty() {
        let mut ordered = Vec::new();
        for name in &tf.group_eval_order {
            match specs.iter().position(|g| &g.name == name) {
                Some(i) => ordered.push(specs.remove(i)),
                None => return vec![format!("group {name:?} in group_eval_order not found")],
            }
        }
        ordered.extend(specs);
        specs = ordered;
    }
    let mut failures = Vec::new();
    for (i, tg) in tf.tests.iter().enumerate() {
        if let Err(mut e) = run_group(tg, &specs, eval_interval) {
            let name = if tg.name.is_empty() {
                format!("test {i}")
            } else {
                tg.name.clone()
            };
            for m in &mut e {
                *m = format!("{name}: {m}");
            }
            failures.extend(e);
        }
    }
    failures
}

fn run_group(
    tg: &TestGroup,
    specs: &[super::GroupSpec],
    eval_interval: i64,
) -> Result<(), Vec<String>> {
    let interval = match tg.interval.as_deref().map(dur) {
        None => eval_interval,
        Some(Ok(d)) => d,
        Some(Err(e)) => return Err(vec![e]),
    };
    let store = Arc::new(MemStorage::new());
    for s in &tg.input_series {
        let (labels, rest) = parse_series_desc(&s.series).map_err(|e| vec![e])?;
        if !rest.trim().is_empty() {
            return Err(vec![format!("unexpected text after series {:?}", s.series)]);
        }
        let vals = expand_values(&s.values).map_err(|e| vec![e])?;
        for (k, v) in vals.into_iter().enumerate() {
            if let Some(v) = v {
                store.add(
                    &labels,
                    Sample {
                        t: k as i64 * interval,
                        v,
                    },
                );
            }
        }
    }
    let engine = Engine::new(test_engine_options());
    let query = engine_query_func(engine.clone(), store.clone());
    let st2 = store.clone();
    let append: Arc<AppendFunc> = Arc::new(move |samples: &[(Labels, f64)], t: i64| {
        for (l, v) in samples {
            st2.add(l, Sample { t, v: *v });
        }
        Ok(())
    });
    let ext = Labels::new(
        tg.external_labels
            .iter()
            .map(|(k, v)| crate::model::Label::new(k.as_str(), v.as_str()))
            .collect(),
    );
    let ctx = EvalContext {
        query: query.as_ref(),
        append: append.as_ref(),
        external_labels: &ext,
        external_url: &tg.external_url,
        resend_delay_ms: 60_000,
    };
    let mut groups: Vec<Group> = specs
        .iter()
        .cloned()
        .map(|s| Group::new(s, interval, 0))
        .collect();
    let mut alert_tests: Vec<(i64, &AlertTest)> = Vec::new();
    for t in &tg.alert_rule_test {
        alert_tests.push((dur(&t.eval_time).map_err(|e| vec![e])?, t));
    }
    alert_tests.sort_by_key(|(t, _)| *t);
    let mut max_t = alert_tests.last().map(|(t, _)| *t).unwrap_or(0);
    let mut expr_times = Vec::new();
    for t in &tg.promql_expr_test {
        let et = dur(&t.eval_time).map_err(|e| vec![e])?;
        max_t = max_t.max(et);
        expr_times.push(et);
    }
    let mut errs = Vec::new();
    let mut next_alert = 0usize;
    let mut ts = 0i64;
    while ts <= max_t {
        for g in &mut groups {
            let _ = g.eval(ts, &ctx);
            for r in &g.rules {
                if !r.last_error.is_empty() {
                    errs.push(format!(
                        "    rule: {}, time: {}, err: {}",
                        r.spec.name(),
                        crate::model::time::format_duration_ms(ts),
                        r.last_error
                    ));
                }
            }
        }
        while let Some(&(t, test)) = alert_tests.get(next_alert) {
            if !(ts <= t && t < ts + eval_interval) {
                break;
            }
            next_alert += 1;
            let mut got: Vec<(Labels, Labels)> = Vec::new();
            for g in &groups {
                for r in &g.rules {
                    let Some(a) = &r.alerting else { continue };
                    if r.spec.name() != test.alertname {
                        continue;
                    }
                    for al in a.alerts() {
                        if al.state == AlertState::Firing {
                            got.push((al.labels.clone(), al.annotations.clone()));
                        }
                    }
                }
            }
            let mut exp: Vec<(Labels, Labels)> = test
                .exp_alerts
                .iter()
                .map(|e| {
                    let mut l: Vec<crate::model::Label> = e
                        .exp_labels
                        .iter()
                        .map(|(k, v)| crate::model::Label::new(k.as_str(), v.as_str()))
                        .collect();
                    l.push(crate::model::Label::new(
                        "alertname",
                        test.alertname.as_str(),
                    ));
                    let a = e
                        .exp_annotations
                        .iter()
                        .map(|(k, v)| crate::model::Label::new(k.as_str(), v.as_str()))
                        .collect();
                    (Labels::new(l), Labels::new(a))
                })
                .collect();
            got.sort();
            exp.sort();
            if got != exp {
                errs.push(format!(
                    "    alertname: {}, time: {}, \n        exp:{}, \n        got:{}",
                    test.alertname,
                    test.eval_time,
                    alerts_str(&exp),
                    alerts_str(&got)
                ));
            }
        }
        ts += eval_interval;
    }
    for (test, et) in tg.promql_expr_test.iter().zip(expr_times) {
        let res = crate::promql::parse(&test.expr)
            .map_err(|e| e.to_string())
            .and_then(|e| (ctx.query)(&e, &test.expr, et));
        let mut got: Vec<(Labels, f64)> = match res {
            Ok(v) => v.into_iter().map(|s| (s.labels, s.v)).collect(),
            Err(e) => {
                errs.push(format!(
                    "    expr: {:?}, time: {}, err: {e}",
                    test.expr, test.eval_time
                ));
                continue;
            }
        };
        let mut exp = Vec::new();
        let mut bad = false;
        for s in &test.exp_samples {
            let l = if s.labels.trim().is_empty() {
                Labels::empty()
            } else {
                match parse_series_desc(&s.labels) {
                    Ok((l, _)) => l,
                    Err(e) => {
                        errs.push(format!(
                            "    expr: {:?}, time: {}, err: {e}",
                            test.expr, test.eval_time
                        ));
                        bad = true;
                        break;
                    }
                }
            };
            exp.push((l, s.value));
        }
        if bad {
            continue;
        }
        got.sort_by(|a, b| a.0.cmp(&b.0));
        exp.sort_by(|a, b| a.0.cmp(&b.0));
        let same = got.len() == exp.len()
            && got
                .iter()
                .zip(&exp)
                .all(|(g, e)| g.0 == e.0 && (g.1 == e.1 || (g.1.is_nan() && e.1.is_nan())));
        if !same {
            let fmt = |v: &[(Labels, f64)]| {
                let parts: Vec<String> = v
                    .iter()
                    .map(|(l, x)| {
                        format!(
                            "{{Labels:{} Value:{}}}",
                            l,
                            crate::template::go_format_v(*x)
                        )
                    })
                    .collect();
                format!("[{}]", parts.join(" "))
            };
            errs.push(format!(
                "    expr: {:?}, time: {},\n        exp: {}\n        got: {}",
                test.expr,
                test.eval_time,
                fmt(&exp),
                fmt(&got)
            ));
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs)
    }
}

/// Runs every file; returns the report text and whether all passed.
pub fn run_files<P: AsRef<Path>>(paths: &[P]) -> (String, bool) {
    let mut out = String::new();
    let mut ok = true;
    for p in paths {
        let r = run_file(p.as_ref());
        let _ = writeln!(out, "Unit Testing:  {}", r.file);
        if r.failures.is_empty() {
            let _ = writeln!(out, "  SUCCESS\n");
        } else {
            ok = false;
            let _ = writeln!(out, "  FAILED:");
            for f in &r.failures {
                let _ = writeln!(out, "{f}");
            }
            out.push('\n');
        }
    }
    (out, ok)
}
