//! The query engine: instant and range queries over a [`Queryable`].
//!
//! ```
//! use aion::model::{Labels, Sample};
//! use aion::promql::engine::{Engine, EngineOptions};
//! use aion::promql::value::Value;
//! use aion::storage::MemStorage;
//!
//! let db = MemStorage::new();
//! let l = Labels::from_pairs(&[("__name__", "up"), ("job", "a")]);
//! db.add(&l, Sample::new(0, 1.0));
//! let engine = Engine::new(EngineOptions::default());
//! let out = engine.instant_query(&db, "sum(up)", 10_000, None).unwrap();
//! match out.value {
//!     Value::Vector(v) => assert_eq!(v[0].v, 1.0),
//!     other => panic!("unexpected {other:?}"),
//! }
//! ```

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::model::Sample;
use crate::promql::annotations::{Annotation, Annotations};
use crate::promql::ast::{AtModifier, Expr, ValueType};
use crate::promql::eval::{
    cleanup_vector_step, selector_uses, steps_to_series, Evaluator, MSeries, Shared, Val,
};
use crate::promql::parser::{parse, ParseError};
use crate::promql::value::{InstantSample, RangeSeries, Value};
use crate::storage::{Queryable, StorageError};

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// How far back an instant selector looks for a sample (ms). Default 5m.
    pub lookback_delta_ms: i64,
    /// Most samples a query may hold in memory at once. Default 50,000,000.
    pub max_samples: usize,
    /// Longest a query may run. Default 2m.
    pub timeout: Duration,
    /// Step of subqueries written without one (`[5m:]`), in ms. Default 1m.
    pub default_subquery_step_ms: i64,
    /// Drop `__name__` only when the query finishes (Prometheus's
    /// `promql-delayed-name-removal`).
    pub delayed_name_removal: bool,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            lookback_delta_ms: 5 * 60_000,
            max_samples: 50_000_000,
            timeout: Duration::from_secs(120),
            default_subquery_step_ms: 60_000,
            delayed_name_removal: false,
        }
    }
}

/// A shared flag that cancels running queries when set.
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    /// A token that is not cancelled.
    pub fn new() -> Self {
        Self::default()
    }

    /// Requests cancellation.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether cancellation was requested.
    pub fn is_canceled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Why a query failed. Texts are Prometheus's.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// The query does not parse or type-check.
    #[error("{0}")]
    Parse(#[from] ParseError),
    /// The timeout elapsed.
    #[error("query timed out in query execution")]
    Timeout,
    /// The query was cancelled.
    #[error("query was canceled in query execution")]
    Canceled,
    /// The sample limit was exceeded.
    #[error("query processing would load too many samples into memory in query execution")]
    TooManySamples,
    /// Storage failed.
    #[error("{0}")]
    Storage(#[from] StorageError),
    /// An evaluation error (the message as Prometheus prints it).
    #[error("{0}")]
    Eval(String),
}

/// A query result with its annotations.
#[derive(Debug, Clone)]
pub struct QueryOutput {
    /// The value.
    pub value: Value,
    /// Warnings and infos, texts with `(line:col)` positions.
    pub annotations: Vec<Annotation>,
}

/// Evaluates PromQL queries.
#[derive(Debug, Clone, Default)]
pub struct Engine {
    opts: EngineOptions,
}

impl Engine {
    /// An engine with `opts`.
    pub fn new(opts: EngineOptions) -> Self {
        Engine { opts }
    }

    /// The options.
    pub fn options(&self) -> &EngineOptions {
        &self.opts
    }

    /// Evaluates `query` at `t_ms`.
    pub fn instant_query(
        &self,
        db: &dyn Queryable,
        query: &str,
        t_ms: i64,
        cancel: Option<&CancelToken>,
    ) -> Result<QueryOutput, QueryError> {
        let expr = parse(query)?;
        self.instant_query_expr(db, &expr, query, t_ms, cancel)
    }

    /// Evaluates `query` at `start_ms, start_ms + step_ms, ..., end_ms`.
    pub fn range_query(
        &self,
        db: &dyn Queryable,
        query: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
        cancel: Option<&CancelToken>,
    ) -> Result<QueryOutput, QueryError> {
        let expr = parse(query)?;
        self.range_query_expr(db, &expr, query, start_ms, end_ms, step_ms, cancel)
    }

    /// Evaluates an already parsed expression at `t_ms`. `query` is the text positions in
    /// annotations refer to.
    pub fn instant_query_expr(
        &self,
        db: &dyn Queryable,
        expr: &Expr,
        query: &str,
        t_ms: i64,
        cancel: Option<&CancelToken>,
    ) -> Result<QueryOutput, QueryError> {
        let (val, annos) = self.exec(db, expr, query, t_ms, t_ms, 1, cancel)?;
        let value = match val {
            Val::Scalar(v) => Value::Scalar {
                t: t_ms,
                v: v.first().copied().unwrap_or(f64::NAN),
            },
            Val::String(s) => Value::String { t: t_ms, v: s },
            Val::Vector(mut steps) => {
                let mut step = steps.pop().unwrap_or_default();
                cleanup_vector_step(&mut step)?;
                Value::Vector(
                    step.into_iter()
                        .map(|s| InstantSample {
                            labels: s.labels,
                            t: t_ms,
                            v: s.v,
                        })
                        .collect(),
                )
            }
            Val::Matrix(mut m) => {
                for s in &mut m {
                    if s.drop_name {
                        s.labels = s.labels.without_metric_name();
                    }
                }
                m.sort_by(|a, b| a.labels.cmp(&b.labels));
                Value::Matrix(
                    m.into_iter()
                        .map(|s| RangeSeries {
                            labels: s.labels,
                            samples: s.samples,
                        })
                        .collect(),
                )
            }
        };
        Ok(QueryOutput {
            value,
            annotations: annos.into_vec(),
        })
    }

    /// Evaluates an already parsed expression as a range query.
    #[allow(clippy::too_many_arguments)]
    pub fn range_query_expr(
        &self,
        db: &dyn Queryable,
        expr: &Expr,
        query: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
        cancel: Option<&CancelToken>,
    ) -> Result<QueryOutput, QueryError> {
        if step_ms <= 0 {
            return Err(QueryError::Eval(
                "zero or negative query resolution step widths are not accepted. Try a positive integer".to_string(),
            ));
        }
        if end_ms < start_ms {
            return Err(QueryError::Eval(
                "end timestamp must not be before start time".to_string(),
            ));
        }
        crate::promql::eval::check_steps(start_ms, end_ms, step_ms)?;
        match expr.value_type() {
            ValueType::Scalar | ValueType::Vector => {}
            other => {
                return Err(QueryError::Eval(format!(
                "invalid expression type \"{}\" for range query, must be Scalar or instant Vector",
                match other {
                    ValueType::Matrix => "range vector",
                    ValueType::String => "string",
                    _ => "unknown",
                }
            )))
            }
        }
        if let Expr::Vector(vs) = expr {
            if vs.at.is_none() {
                // A bare selector: build the result series directly.
                let (series, annos) =
                    self.exec_with(db, expr, query, (start_ms, end_ms, step_ms), cancel, |ev| {
                        ev.vector_selector_series(vs)
                    })?;
                return Ok(matrix_output(series, annos));
            }
        }
        let (val, annos) =
            self.exec_with(db, expr, query, (start_ms, end_ms, step_ms), cancel, |ev| {
                // A range function over a selector: the result series directly.
                if let Expr::Call(c) = expr {
                    match ev.range_fn_series(c)? {
                        Some(Ok(series)) => return Ok(Err(series)),
                        Some(Err(steps)) => return Ok(Ok(Val::Vector(steps))),
                        None => {}
                    }
                }
                ev.eval(expr).map(Ok)
            })?;
        let val = match val {
            Ok(val) => val,
            Err(series) => {
                return Ok(matrix_output(series, annos));
            }
        };
        let ev_times = |i: usize| start_ms + i as i64 * step_ms;
        let value = match val {
            Val::Scalar(v) => Value::Matrix(vec![RangeSeries {
                labels: crate::model::Labels::empty(),
                samples: v
                    .iter()
                    .enumerate()
                    .map(|(i, x)| Sample::new(ev_times(i), *x))
                    .collect(),
            }]),
            Val::Vector(steps) => sorted_matrix(steps_to_series(start_ms, step_ms, steps)?),
            _ => {
                return Err(QueryError::Eval(
                    "range query must evaluate to a scalar or instant vector".to_string(),
                ))
            }
        };
        Ok(QueryOutput {
            value,
            annotations: annos.into_vec(),
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn exec(
        &self,
        db: &dyn Queryable,
        expr: &Expr,
        query: &str,
        start: i64,
        end: i64,
        step: i64,
        cancel: Option<&CancelToken>,
    ) -> Result<(Val, Annotations), QueryError> {
        self.exec_with(db, expr, query, (start, end, step), cancel, |ev| {
            ev.eval(expr)
        })
    }

    /// Runs `f` with an evaluator of `expr` over `(start, end, step)`.
    fn exec_with<T>(
        &self,
        db: &dyn Queryable,
        expr: &Expr,
        query: &str,
        (start, end, step): (i64, i64, i64),
        cancel: Option<&CancelToken>,
        f: impl FnOnce(&Evaluator) -> Result<T, QueryError>,
    ) -> Result<(T, Annotations), QueryError> {
        let deadline = Instant::now() + self.opts.timeout;
        let mut range = TimeRange::default();
        needed_range(expr, start, end, start, end, &self.opts, &mut range);
        let (mint, maxt) = if range.any {
            (range.mint, range.maxt)
        } else {
            (start, end)
        };
        let querier = db.querier(mint, maxt)?;
        let shared = Shared {
            querier: querier.as_ref(),
            query,
            opts: &self.opts,
            cancel,
            deadline,
            annos: RefCell::new(Annotations::new()),
            cache: RefCell::new(HashMap::new()),
            uses: RefCell::new({
                let mut uses = HashMap::new();
                selector_uses(expr, &mut uses);
                uses
            }),
            query_start: start,
            query_end: end,
        };
        let ev = Evaluator {
            sh: &shared,
            start,
            end,
            step,
        };
        let val = f(&ev)?;
        let annos = shared.annos.into_inner();
        Ok((val, annos))
    }
}

#[derive(Default)]
struct TimeRange {
    any: bool,
    mint: i64,
    maxt: i64,
}

impl TimeRange {
    fn add(&mut self, lo: i64, hi: i64) {
        if self.any {
            self.mint = self.mint.min(lo);
            self.maxt = self.maxt.max(hi);
        } else {
            self.any = true;
            self.mint = lo;
            self.maxt = hi;
        }
    }
}

/// Accumulates the time range every selector of `e` reads when evaluated over
/// `[start, end]`.
fn needed_range(
    e: &Expr,
    start: i64,
    end: i64,
    qstart: i64,
    qend: i64,
    opts: &EngineOptions,
    out: &mut TimeRange,
) {
    let at_ms = |at: Option<AtModifier>| {
        at.map(|a| match a {
            AtModifier::Timestamp(t) => t,
            AtModifier::Start => qstart,
            AtModifier::End => qend,
        })
    };
    match e {
        Expr::Vector(vs) => {
            let (s, en) = match at_ms(vs.at) {
                Some(a) => (a, a),
                None => (start, end),
            };
            out.add(
                s.saturating_sub(vs.offset_ms)
                    .saturating_sub(opts.lookback_delta_ms),
                en.saturating_sub(vs.offset_ms),
            );
        }
        Expr::Matrix(ms) => {
            let (s, en) = match at_ms(ms.vs.at) {
                Some(a) => (a, a),
                None => (start, end),
            };
            out.add(
                s.saturating_sub(ms.vs.offset_ms)
                    .saturating_sub(ms.range_ms),
                en.saturating_sub(ms.vs.offset_ms),
            );
        }
        Expr::Subquery(sq) => {
            let (s, en) = match at_ms(sq.at) {
                Some(a) => (a, a),
                None => (start, end),
            };
            needed_range(
                &sq.expr,
                s.saturating_sub(sq.offset_ms).saturating_sub(sq.range_ms),
                en.saturating_sub(sq.offset_ms),
                qstart,
                qend,
                opts,
                out,
            );
        }
        other => {
            for c in other.children() {
                needed_range(c, start, end, qstart, qend, opts, out);
            }
        }
    }
}

/// A range query's result built as whole series: sorted by labels, as a matrix.
fn matrix_output(series: Vec<MSeries>, annos: Annotations) -> QueryOutput {
    QueryOutput {
        value: sorted_matrix(series),
        annotations: annos.into_vec(),
    }
}

/// Range-query series as a matrix sorted by labels.
fn sorted_matrix(mut series: Vec<MSeries>) -> Value {
    series.sort_by(|a, b| a.labels.cmp(&b.labels));
    Value::Matrix(
        series
            .into_iter()
            .map(|s| RangeSeries {
                labels: s.labels,
                samples: s.samples,
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Labels;
    use crate::storage::MemStorage;

    fn db() -> MemStorage {
        let db = MemStorage::new();
        for (job, step) in [("a", 1.0), ("b", 2.0)] {
            let l = Labels::from_pairs(&[("__name__", "requests_total"), ("job", job)]);
            for i in 0..100 {
                db.add(&l, Sample::new(i * 15_000, i as f64 * step));
            }
        }
        db
    }

    #[test]
    fn instant_and_range_queries() {
        let db = db();
        let e = Engine::new(EngineOptions::default());
        let out = e
            .instant_query(&db, "sum(rate(requests_total[1m]))", 600_000, None)
            .unwrap();
        let Value::Vector(v) = out.value else {
            panic!("expected a vector")
        };
        assert_eq!(v.len(), 1);
        assert!((v[0].v - 0.2).abs() < 1e-9, "{}", v[0].v);
        let out = e
            .range_query(&db, "requests_total", 0, 60_000, 30_000, None)
            .unwrap();
        let Value::Matrix(m) = out.value else {
            panic!("expected a matrix")
        };
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].samples.len(), 3);
        assert_eq!(m[1].samples[2].v, 8.0);
        let out = e
            .range_query(&db, "1 + 1", 0, 60_000, 30_000, None)
            .unwrap();
        let Value::Matrix(m) = out.value else {
            panic!("expected a matrix")
        };
        assert_eq!(m[0].samples.len(), 3);
        assert!(e
            .range_query(&db, "requests_total[1m]", 0, 60_000, 30_000, None)
            .is_err());
    }

    #[test]
    fn sample_limit_and_cancellation() {
        let db = db();
        let e = Engine::new(EngineOptions {
            max_samples: 10,
            ..EngineOptions::default()
        });
        let err = e
            .range_query(&db, "requests_total", 0, 600_000, 15_000, None)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "query processing would load too many samples into memory in query execution"
        );
        let e = Engine::new(EngineOptions::default());
        let cancel = CancelToken::new();
        cancel.cancel();
        let err = e
            .instant_query(&db, "requests_total", 0, Some(&cancel))
            .unwrap_err();
        assert!(matches!(err, QueryError::Canceled));
        let e = Engine::new(EngineOptions {
            timeout: Duration::ZERO,
            ..EngineOptions::default()
        });
        let err = e.instant_query(&db, "requests_total", 0, None).unwrap_err();
        assert_eq!(err.to_string(), "query timed out in query execution");
    }

    #[test]
    fn annotations_and_errors() {
        let db = MemStorage::new();
        let l = Labels::from_pairs(&[("__name__", "gauge"), ("job", "a")]);
        for i in 0..10 {
            db.add(&l, Sample::new(i * 15_000, i as f64));
        }
        let e = Engine::new(EngineOptions::default());
        let out = e
            .instant_query(&db, "rate(gauge[1m])", 120_000, None)
            .unwrap();
        assert_eq!(
            out.annotations[0].text,
            "PromQL info: metric might not be a counter, name does not end in _total/_sum/_count/_bucket: \"gauge\" (1:6)"
        );
        let err = e.instant_query(&db, "sum(", 0, None).unwrap_err();
        assert!(matches!(err, QueryError::Parse(_)));
        let err = e
            .instant_query(
                &self::tests::db(),
                "requests_total + on() requests_total",
                60_000,
                None,
            )
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "found duplicate series for the match group {} on the right hand-side of the operation: \
             [{__name__=\"requests_total\", job=\"a\"}, {__name__=\"requests_total\", job=\"b\"}];\
             many-to-many matching not allowed: matching labels must be unique on one side"
        );
    }

    /// Range queries slide windows incrementally; every step must equal an instant query
    /// evaluated on its own.
    #[test]
    fn sliding_windows_agree_with_instant_evaluation() {
        let db = MemStorage::new();
        let mut x: u64 = 42;
        for series in 0..4 {
            let l = Labels::from_pairs(&[("__name__", "m"), ("s", &series.to_string())]);
            for i in 0..400i64 {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let r = (x >> 33) % 100;
                let v = match r {
                    0..=4 => f64::NAN,
                    5..=6 => crate::model::STALE_NAN,
                    7..=20 => continue,
                    _ => (r % 7) as f64,
                };
                db.add(&l, Sample::new(i * 10_000 + (r as i64 % 3) * 1000, v));
            }
        }
        let e = Engine::new(EngineOptions::default());
        for q in [
            "max_over_time(m[1m])",
            "min_over_time(m[2m])",
            "changes(m[3m])",
            "resets(m[90s])",
            "count_over_time(m[1m])",
            "max_over_time(m[2m] offset 30s)",
            "sum by (s) (rate(m[5m] @ 2000))",
            "max_over_time(m[10m:1m] @ 3000) + on(s) m @ 1000",
        ] {
            let out = e.range_query(&db, q, 0, 4_000_000, 25_000, None).unwrap();
            let Value::Matrix(m) = out.value else {
                panic!("matrix expected")
            };
            for t in (0..=4_000_000).step_by(25_000) {
                let inst = e.instant_query(&db, q, t, None).unwrap();
                let Value::Vector(v) = inst.value else {
                    panic!("vector expected")
                };
                for s in &v {
                    let series = m.iter().find(|r| r.labels == s.labels).unwrap();
                    let p = series.samples.iter().find(|p| p.t == t).unwrap();
                    assert!(
                        p.v.to_bits() == s.v.to_bits() || (p.v.is_nan() && s.v.is_nan()),
                        "{q} at {t}: range {} vs instant {}",
                        p.v,
                        s.v
                    );
                }
                let in_range = m
                    .iter()
                    .filter(|r| r.samples.iter().any(|p| p.t == t))
                    .count();
                assert_eq!(in_range, v.len(), "{q} at {t}");
            }
        }
    }

    #[test]
    fn extreme_times_do_not_panic() {
        let db = db();
        let e = Engine::new(EngineOptions::default());
        for q in [
            "requests_total offset 1000y",
            "rate(requests_total[1y] offset -1000y)",
            "max_over_time(requests_total[10y:1y] offset 100y)",
        ] {
            let _ = e.instant_query(&db, q, i64::MAX - 1, None);
            let _ = e.instant_query(&db, q, i64::MIN + 1, None);
        }
        let err = e
            .range_query(&db, "requests_total", 0, i64::MAX - 1, 1, None)
            .unwrap_err();
        assert!(err.to_string().contains("steps"), "{err}");
        assert!(e
            .instant_query(&db, "max_over_time(requests_total[100y:1ms])", 0, None)
            .is_err());
    }
}
