use std::sync::Arc;

use super::alerting::AlertState;
use super::*;
use crate::model::{is_stale_nan, Matcher, Sample};
use crate::promql::engine::Engine;
use crate::promql::promqltest::test_engine_options;
use crate::storage::{MemStorage, Queryable};

const GOOD: &str = r#"
groups:
  - name: rec
    interval: 30s
    labels:
      team: core
    rules:
      - record: job:up:sum
        expr: sum by (job) (up)
      - record: job:up:double
        expr: job:up:sum * 2
  - name: alerts
    rules:
      - alert: InstanceDown
        expr: up == 0
        for: 1m
        keep_firing_for: 30s
        labels:
          severity: "{{ if eq $labels.job \"db\" }}critical{{ else }}warning{{ end }}"
        annotations:
          summary: "{{ $labels.instance }} down (value {{ $value }})"
"#;

#[test]
fn parses_a_valid_file() {
    let groups = parse_rule_file("r.yml", GOOD).unwrap();
    assert_eq!(groups.len(), 2);
    assert_eq!(groups[0].interval_ms, Some(30_000));
    assert_eq!(
        groups[0].rules[0].labels,
        vec![("team".to_string(), "core".to_string())]
    );
    assert_eq!(groups[0].rules[1].line, 10);
    let a = &groups[1].rules[0];
    assert_eq!(a.kind, RuleKind::Alert("InstanceDown".into()));
    assert_eq!((a.for_ms, a.keep_firing_for_ms), (60_000, 30_000));
    assert_eq!(a.line, 14);
}

#[test]
fn reports_every_problem_with_its_line() {
    let bad = r#"groups:
  - name: g
    rules:
      - record: "bad name"
        expr: up
      - alert: A
        expr: rate(up[5m]
      - alert: B
        expr: up
        labels:
          "0bad": x
        annotations:
          s: "{{ .Labels.x "
      - alert: B
        expr: up
        labels:
          "0bad": x
  - name: g
    rules:
      - record: r
        expr: up
        for: 1m
"#;
    let errs = parse_rule_file("bad.yml", bad).unwrap_err();
    let text: Vec<String> = errs.iter().map(ToString::to_string).collect();
    let has = |line: usize, needle: &str| {
        assert!(
            text.iter()
                .any(|e| e.starts_with(&format!("bad.yml:{line}:")) && e.contains(needle)),
            "missing {line}: {needle} in {text:#?}"
        )
    };
    has(4, "invalid recording rule name");
    has(6, "could not parse expression");
    has(8, "invalid label name: 0bad");
    has(8, "annotation \"s\"");
    has(14, "duplicate rule");
    has(18, "repeated in the same file");
    has(20, "invalid field 'for' in recording rule");

    let unknown =
        "groups:\n  - name: g\n    rules:\n      - record: r\n        expr: up\n        exprr: x\n";
    let e = parse_rule_file("u.yml", unknown).unwrap_err();
    assert_eq!(e[0].line, 6, "{e:?}");
    assert!(e[0].msg.contains("unknown field `exprr`"), "{e:?}");
}

struct Fixture {
    store: Arc<MemStorage>,
    query: Arc<QueryFunc>,
    append: Arc<AppendFunc>,
    ext: Labels,
}

fn fixture() -> Fixture {
    let store = Arc::new(MemStorage::new());
    let query = engine_query_func(Engine::new(test_engine_options()), store.clone());
    let st = store.clone();
    let append: Arc<AppendFunc> = Arc::new(move |s: &[(Labels, f64)], t: i64| {
        for (l, v) in s {
            st.add(l, Sample { t, v: *v });
        }
        Ok(())
    });
    Fixture {
        store,
        query,
        append,
        ext: Labels::from_pairs(&[("cluster", "eu")]),
    }
}

impl Fixture {
    fn ctx(&self) -> EvalContext<'_> {
        EvalContext {
            query: self.query.as_ref(),
            append: self.append.as_ref(),
            external_labels: &self.ext,
            external_url: "http://aion:9090",
            resend_delay_ms: 60_000,
        }
    }
    fn samples(&self, name: &str) -> Vec<(Labels, Vec<Sample>)> {
        let q = self.store.querier(i64::MIN, i64::MAX).unwrap();
        q.select(&[Matcher::equal("__name__", name)])
            .unwrap()
            .into_iter()
            .map(|s| {
                let v: Vec<Sample> = s.iter().collect();
                (s.labels.clone(), v)
            })
            .collect()
    }
}

fn up(f: &Fixture, inst: &str, job: &str, t: i64, v: f64) {
    f.store.add(
        &Labels::from_pairs(&[("__name__", "up"), ("instance", inst), ("job", job)]),
        Sample { t, v },
    );
}

#[test]
fn recording_rules_chain_and_go_stale() {
    let f = fixture();
    let groups = parse_rule_file("r.yml", GOOD).unwrap();
    let mut g = Group::new(groups[0].clone(), 60_000, 0);
    up(&f, "a", "api", 0, 1.0);
    up(&f, "b", "db", 0, 1.0);
    g.eval(0, &f.ctx());
    let double = f.samples("job:up:double");
    assert_eq!(
        double.len(),
        2,
        "later rule sees the earlier rule's output in the same eval"
    );
    assert_eq!(double[0].0.get("team"), Some("core"));
    assert_eq!(double[0].1, vec![Sample { t: 0, v: 2.0 }]);
    // The db series vanishes (stale marker in the input): its recorded series go stale.
    f.store.add(
        &Labels::from_pairs(&[("__name__", "up"), ("instance", "b"), ("job", "db")]),
        Sample {
            t: 30_000,
            v: crate::model::STALE_NAN,
        },
    );
    up(&f, "a", "api", 30_000, 1.0);
    g.eval(30_000, &f.ctx());
    let sum = f.samples("job:up:sum");
    let db = sum
        .iter()
        .find(|(l, _)| l.get("job") == Some("db"))
        .unwrap();
    assert_eq!(db.1.len(), 2);
    assert!(is_stale_nan(db.1[1].v));
    assert_eq!(db.1[1].t, 30_000);
    let api = sum
        .iter()
        .find(|(l, _)| l.get("job") == Some("api"))
        .unwrap();
    assert_eq!(api.1[1], Sample { t: 30_000, v: 1.0 });
}

#[test]
fn alert_lifecycle_pending_firing_keep_firing_resolved() {
    let f = fixture();
    let groups = parse_rule_file("r.yml", GOOD).unwrap();
    let mut g = Group::new(groups[1].clone(), 15_000, 0);
    let step = 15_000;
    let mut sent: Vec<(i64, Vec<crate::notifier::Alert>)> = Vec::new();
    // Down from 0s to 90s, up from 105s.
    for i in 0..=14i64 {
        let t = i * step;
        up(&f, "db-1", "db", t, if t <= 90_000 { 0.0 } else { 1.0 });
        let alerts = g.eval(t, &f.ctx());
        sent.push((t, alerts));
    }
    let rule = g.rules[0].alerting.as_ref().unwrap();
    // Pending at 0..45s, firing from 60s; resolved after keep_firing_for (30s) past 105s.
    let alerts_series = f.samples("ALERTS");
    let pending = alerts_series
        .iter()
        .find(|(l, _)| l.get("alertstate") == Some("pending"))
        .unwrap();
    let pts: Vec<i64> = pending
        .1
        .iter()
        .filter(|s| !is_stale_nan(s.v))
        .map(|s| s.t)
        .collect();
    assert_eq!(pts, vec![0, 15_000, 30_000, 45_000]);
    assert!(is_stale_nan(pending.1.last().unwrap().v));
    assert_eq!(pending.1.last().unwrap().t, 60_000);
    let firing = alerts_series
        .iter()
        .find(|(l, _)| l.get("alertstate") == Some("firing"))
        .unwrap();
    let fts: Vec<i64> = firing
        .1
        .iter()
        .filter(|s| !is_stale_nan(s.v))
        .map(|s| s.t)
        .collect();
    // Firing 60..90 while down, kept firing at 105 and 120 (keep_firing_for 30s), resolved at 135.
    assert_eq!(fts, vec![60_000, 75_000, 90_000, 105_000, 120_000]);
    assert_eq!(firing.1.last().unwrap().t, 135_000);
    assert_eq!(firing.0.get("severity"), Some("critical"));
    let for_state = f.samples("ALERTS_FOR_STATE");
    assert_eq!(for_state[0].1[0].v, 0.0);
    assert!(for_state[0].0.get("alertstate").is_none());
    // Sends: first at 60s (firing), none while resend delay not passed, resolved at 135s.
    let first = sent.iter().find(|(_, a)| !a.is_empty()).unwrap();
    assert_eq!(first.0, 60_000);
    let a = &first.1[0];
    assert_eq!(a.starts_at, 60_000);
    assert_eq!(a.ends_at, 60_000 + 4 * 60_000);
    assert_eq!(a.annotations.get("summary"), Some("db-1 down (value 0)"));
    assert_eq!(a.labels.get("alertname"), Some("InstanceDown"));
    assert_eq!(
        a.generator_url,
        "http://aion:9090/graph?g0.expr=up+%3D%3D+0&g0.tab=1"
    );
    let times: Vec<i64> = sent
        .iter()
        .filter(|(_, a)| !a.is_empty())
        .map(|(t, _)| *t)
        .collect();
    // Firing at 60s; not re-sent before the 1m resend delay has passed (75..120s); resolved
    // at 135s and sent at once; the resolved alert is re-sent after another resend delay.
    assert_eq!(times, vec![60_000, 135_000, 210_000]);
    let resolved = &sent.iter().find(|(t, _)| *t == 135_000).unwrap().1[0];
    assert_eq!(resolved.ends_at, 135_000);
    assert_eq!(resolved.starts_at, 60_000);
    assert_eq!(
        rule.active.values().next().unwrap().state,
        AlertState::Inactive
    );
}

#[test]
fn template_errors_become_annotation_text() {
    let f = fixture();
    let text = "groups:\n  - name: g\n    rules:\n      - alert: T\n        expr: up\n        annotations:\n          a: '{{ humanize \"x\" }}'\n";
    let groups = parse_rule_file("t.yml", text).unwrap();
    let mut g = Group::new(groups[0].clone(), 15_000, 0);
    up(&f, "i", "j", 0, 1.0);
    let sent = g.eval(0, &f.ctx());
    let a = sent[0].annotations.get("a").unwrap();
    assert!(a.starts_with("<error expanding template:"), "{a}");
}

#[test]
fn restores_for_state_after_restart() {
    let f = fixture();
    let groups = parse_rule_file("r.yml", GOOD).unwrap();
    let mut spec = groups[1].clone();
    spec.rules[0].for_ms = 20 * 60_000;
    // Before the restart: active since 1000s, last ALERTS_FOR_STATE written at 1300s.
    let labels = Labels::from_pairs(&[
        ("__name__", "ALERTS_FOR_STATE"),
        ("alertname", "InstanceDown"),
        ("instance", "db-1"),
        ("job", "db"),
        ("severity", "critical"),
    ]);
    f.store.add(
        &labels,
        Sample {
            t: 1_300_000,
            v: 1000.0,
        },
    );
    let mut g = Group::new(spec, 15_000, 0);
    g.set_unrestored();
    up(&f, "db-1", "db", 1_600_000, 0.0);
    g.eval(1_600_000, &f.ctx());
    assert!(
        f.samples("ALERTS").is_empty(),
        "no ALERTS before restoration"
    );
    group::restore_for_state(&mut g, f.store.as_ref(), 1_600_000, 3_600_000, 600_000);
    let a = g.rules[0].alerting.as_ref().unwrap();
    assert!(a.restored);
    // 300s were spent pending; 900s remain (> grace): shifted by the 300s downtime.
    assert_eq!(a.active.values().next().unwrap().active_at, 1_300_000);
}

#[test]
fn stable_eval_offset() {
    let groups = parse_rule_file("r.yml", GOOD).unwrap();
    let g = Group::new(groups[0].clone(), 60_000, 0);
    let a = g.eval_timestamp(1_000_000_000);
    let b = g.eval_timestamp(1_000_000_000 + 29_999);
    assert!(a <= 1_000_000_000 && 1_000_000_000 - a < 30_000);
    assert!(b == a || b == a + 30_000);
    assert_eq!((g.eval_timestamp(a + 30_000) - a), 30_000);
}
