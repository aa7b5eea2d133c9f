//! Evaluation of expression nodes.
//!
//! An expression is evaluated for all steps of the query at once. Instant vectors are
//! held per step ([`Val::Vector`]: one `Vec<Sv>` per step); scalars as one value per
//! step. Range vectors ([`Val::Matrix`]) only appear as the result of an instant query
//! or as the argument of a range function, which is evaluated directly from the decoded
//! samples with a sliding window (see [`selectors`]).

mod aggregate;
mod binary;
mod call;
mod selectors;
mod subquery;

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Instant;

use crate::model::{Labels, Matcher, Sample};
use crate::promql::annotations::{Annotation, Annotations};
use crate::promql::ast::{AtModifier, Expr, UnaryOp};
use crate::promql::engine::{CancelToken, EngineOptions, QueryError};
use crate::storage::Querier;

/// One element of an instant vector at one step.
#[derive(Debug, Clone)]
pub(crate) struct Sv {
    pub labels: Labels,
    pub v: f64,
    /// The metric name is to be dropped when the query finishes (delayed removal).
    pub drop_name: bool,
}

/// A series of points (range vector element, subquery result, final matrix row).
#[derive(Debug, Clone)]
pub(crate) struct MSeries {
    pub labels: Labels,
    pub samples: Vec<Sample>,
    pub drop_name: bool,
}

/// The value of an evaluated node over all steps.
#[derive(Debug, Clone)]
pub(crate) enum Val {
    /// One value per step.
    Scalar(Vec<f64>),
    /// One vector per step.
    Vector(Vec<Vec<Sv>>),
    /// A range vector (instant evaluation only).
    Matrix(Vec<MSeries>),
    /// A string literal.
    String(String),
}

/// Decoded series of one selector, shared between evaluations of the same matchers.
pub(crate) type SeriesSet = Rc<Vec<(Labels, Vec<Sample>)>>;

/// State shared by all evaluators of one query.
pub(crate) struct Shared<'a> {
    pub querier: &'a dyn Querier,
    pub query: &'a str,
    pub opts: &'a EngineOptions,
    pub cancel: Option<&'a CancelToken>,
    pub deadline: Instant,
    pub annos: RefCell<Annotations>,
    pub cache: RefCell<HashMap<String, SeriesSet>>,
    /// Selections still to come per matcher key (see [`selector_uses`]): a set is only
    /// kept in `cache` while another selector will ask for it, so the last user gets
    /// it unshared and can take its samples without copying them.
    pub uses: RefCell<HashMap<String, usize>>,
    /// `@ start()` and `@ end()` of the whole query.
    pub query_start: i64,
    pub query_end: i64,
}

/// Evaluates expressions over the steps `start, start+step, ..., end`.
#[derive(Clone, Copy)]
pub(crate) struct Evaluator<'s, 'a> {
    pub sh: &'s Shared<'a>,
    pub start: i64,
    pub end: i64,
    pub step: i64,
}

pub(crate) type EvalResult<T> = Result<T, QueryError>;

impl<'s, 'a> Evaluator<'s, 'a> {
    /// Number of steps.
    pub fn n(&self) -> usize {
        if self.end < self.start || self.step <= 0 {
            return if self.end == self.start { 1 } else { 0 };
        }
        let span = (i128::from(self.end) - i128::from(self.start)) / i128::from(self.step);
        usize::try_from(span)
            .unwrap_or(usize::MAX)
            .saturating_add(1)
    }

    /// Time of step `i`.
    pub fn t(&self, i: usize) -> i64 {
        self.start
            .saturating_add((i as i64).saturating_mul(self.step))
    }

    pub fn with_range(&self, start: i64, end: i64, step: i64) -> Self {
        Evaluator {
            sh: self.sh,
            start,
            end,
            step,
        }
    }

    /// Resolves an `@` modifier to milliseconds.
    pub fn at_ms(&self, at: Option<AtModifier>) -> Option<i64> {
        at.map(|a| match a {
            AtModifier::Timestamp(t) => t,
            AtModifier::Start => self.sh.query_start,
            AtModifier::End => self.sh.query_end,
        })
    }

    pub fn annotate(&self, a: Annotation) {
        self.sh.annos.borrow_mut().add(a);
    }

    /// Checks cancellation and the deadline.
    pub fn check(&self) -> EvalResult<()> {
        if let Some(c) = self.sh.cancel {
            if c.is_canceled() {
                return Err(QueryError::Canceled);
            }
        }
        if Instant::now() > self.sh.deadline {
            return Err(QueryError::Timeout);
        }
        Ok(())
    }

    /// Fails when `n` samples would exceed the limit.
    pub fn check_samples(&self, n: usize) -> EvalResult<()> {
        if n > self.sh.opts.max_samples {
            return Err(QueryError::TooManySamples);
        }
        Ok(())
    }

    /// Drops (or marks for dropping) the metric name.
    pub fn drop_name(&self, s: &mut Sv) {
        if self.sh.opts.delayed_name_removal {
            s.drop_name = true;
        } else {
            s.labels = s.labels.without_metric_name();
        }
    }

    /// Selects and decodes the series matching `matchers` (cached per query while
    /// other selectors of the query need the same series).
    pub fn select(&self, matchers: &[Matcher]) -> EvalResult<SeriesSet> {
        let key = matchers_key(matchers);
        // Uses left after this one (a selector evaluated more often than counted, as in
        // some subqueries, selects again: correct, only slower).
        let left = {
            let mut uses = self.sh.uses.borrow_mut();
            match uses.get_mut(&key) {
                Some(n) => {
                    *n = n.saturating_sub(1);
                    *n
                }
                None => 0,
            }
        };
        {
            let mut cache = self.sh.cache.borrow_mut();
            if left == 0 {
                if let Some(s) = cache.remove(&key) {
                    return Ok(s);
                }
            } else if let Some(s) = cache.get(&key) {
                return Ok(s.clone());
            }
        }
        self.check()?;
        let series = self
            .sh
            .querier
            .select(matchers)
            .map_err(QueryError::Storage)?;
        let mut out = Vec::with_capacity(series.len());
        for s in series {
            let mut buf = Vec::new();
            s.samples_into(&mut buf);
            out.push((s.labels, buf));
        }
        let set = Rc::new(out);
        if left > 0 {
            self.sh.cache.borrow_mut().insert(key, set.clone());
        }
        Ok(set)
    }

    /// Evaluates `e` over all steps.
    pub fn eval(&self, e: &Expr) -> EvalResult<Val> {
        self.check()?;
        if self.start != self.end
            && !matches!(e, Expr::Number { .. } | Expr::String { .. })
            && is_step_invariant(e)
        {
            // Same result at every step: evaluate once and repeat it.
            let once = self.with_range(self.start, self.start, self.step);
            let n = self.n();
            return Ok(match once.eval(e)? {
                Val::Scalar(v) => Val::Scalar(vec![v.first().copied().unwrap_or(f64::NAN); n]),
                Val::Vector(mut v) => {
                    let first = v.pop().unwrap_or_default();
                    self.check_samples(first.len().saturating_mul(n))?;
                    Val::Vector(vec![first; n])
                }
                other => other,
            });
        }
        match e {
            Expr::Number { val, .. } => Ok(Val::Scalar(vec![*val; self.n()])),
            Expr::String { val, .. } => Ok(Val::String(val.clone())),
            Expr::Paren { expr, .. } => self.eval(expr),
            Expr::Unary { op, expr, .. } => {
                let v = self.eval(expr)?;
                match op {
                    UnaryOp::Pos => Ok(v),
                    UnaryOp::Neg => match v {
                        Val::Scalar(mut xs) => {
                            for x in &mut xs {
                                *x = -*x;
                            }
                            Ok(Val::Scalar(xs))
                        }
                        Val::Vector(mut steps) => {
                            for step in &mut steps {
                                for s in step.iter_mut() {
                                    s.v = -s.v;
                                    self.drop_name(s);
                                }
                            }
                            Ok(Val::Vector(steps))
                        }
                        other => Err(QueryError::Eval(format!(
                            "unary minus is not allowed on {}",
                            val_type_name(&other)
                        ))),
                    },
                }
            }
            Expr::Vector(vs) => self.eval_vector_selector(vs),
            Expr::Matrix(ms) => self.eval_matrix_selector(ms),
            Expr::Subquery(sq) => self.eval_subquery_top(sq),
            Expr::Binary(b) => self.eval_binary(b),
            Expr::Aggregate(a) => self.eval_aggregate(a),
            Expr::Call(c) => self.eval_call(c),
        }
    }

    /// Evaluates `e` expecting a scalar per step.
    pub fn eval_scalar(&self, e: &Expr) -> EvalResult<Vec<f64>> {
        match self.eval(e)? {
            Val::Scalar(v) => Ok(v),
            other => Err(QueryError::Eval(format!(
                "expected scalar, got {}",
                val_type_name(&other)
            ))),
        }
    }

    /// Evaluates `e` expecting an instant vector per step.
    pub fn eval_vector(&self, e: &Expr) -> EvalResult<Vec<Vec<Sv>>> {
        match self.eval(e)? {
            Val::Vector(v) => Ok(v),
            other => Err(QueryError::Eval(format!(
                "expected instant vector, got {}",
                val_type_name(&other)
            ))),
        }
    }
}

/// The cache key of a selector's matchers.
pub(crate) fn matchers_key(matchers: &[Matcher]) -> String {
    matchers
        .iter()
        .map(|m| m.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// Counts the selectors of `e` per matcher key.
pub(crate) fn selector_uses(e: &Expr, out: &mut HashMap<String, usize>) {
    let matchers = match e {
        Expr::Vector(vs) => Some(&vs.matchers),
        Expr::Matrix(ms) => Some(&ms.vs.matchers),
        _ => None,
    };
    if let Some(m) = matchers {
        *out.entry(matchers_key(m)).or_insert(0) += 1;
    }
    for c in e.children() {
        selector_uses(c, out);
    }
}

/// Whether `e` gives the same result at every evaluation time: every selector and
/// subquery is pinned by `@`, and no function reads the evaluation time. The sort
/// functions are excluded so that their range-query warning is still reported.
pub(crate) fn is_step_invariant(e: &Expr) -> bool {
    use crate::promql::func::Func;
    match e {
        Expr::Number { .. } | Expr::String { .. } => true,
        Expr::Vector(vs) => vs.at.is_some(),
        Expr::Matrix(ms) => ms.vs.at.is_some(),
        Expr::Subquery(sq) => sq.at.is_some(),
        Expr::Paren { expr, .. } | Expr::Unary { expr, .. } => is_step_invariant(expr),
        Expr::Binary(b) => is_step_invariant(&b.lhs) && is_step_invariant(&b.rhs),
        Expr::Aggregate(a) => {
            is_step_invariant(&a.expr) && a.param.as_deref().is_none_or(is_step_invariant)
        }
        Expr::Call(c) => {
            !matches!(
                c.func,
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
                    | Func::Sort
                    | Func::SortDesc
                    | Func::SortByLabel
                    | Func::SortByLabelDesc
            ) && c.args.iter().all(is_step_invariant)
        }
    }
}

pub(crate) fn val_type_name(v: &Val) -> &'static str {
    match v {
        Val::Scalar(_) => "scalar",
        Val::Vector(_) => "instant vector",
        Val::Matrix(_) => "range vector",
        Val::String(_) => "string",
    }
}

/// Removes `__name__` from elements marked for it and checks that no two elements of a
/// step share a label set.
pub(crate) fn cleanup_vector_step(step: &mut [Sv]) -> EvalResult<()> {
    for s in step.iter_mut() {
        if s.drop_name {
            s.labels = s.labels.without_metric_name();
            s.drop_name = false;
        }
    }
    check_unique(step)
}

/// Fails with Prometheus's error when two elements have equal labels.
pub(crate) fn check_unique(step: &[Sv]) -> EvalResult<()> {
    if step.len() < 2 {
        return Ok(());
    }
    let mut seen = std::collections::HashSet::with_capacity(step.len());
    for s in step {
        if !seen.insert(&s.labels) {
            return Err(QueryError::Eval(
                "vector cannot contain metrics with the same labelset".to_string(),
            ));
        }
    }
    Ok(())
}

/// Most evaluation steps a query or subquery may have (each step holds a vector).
pub(crate) const MAX_STEPS: i128 = 5_000_000;

/// Fails when `start..=end` by `step` has more than [`MAX_STEPS`] steps.
pub(crate) fn check_steps(start: i64, end: i64, step: i64) -> EvalResult<()> {
    if step > 0 && end >= start {
        let n = (i128::from(end) - i128::from(start)) / i128::from(step) + 1;
        if n > MAX_STEPS {
            return Err(QueryError::Eval(format!(
                "query would evaluate {n} steps, more than the {MAX_STEPS} allowed; use a larger step"
            )));
        }
    }
    Ok(())
}

/// Turns per-step vectors into series (in order of first appearance), dropping
/// names marked for removal first. Two points of one label set at one step are an error.
pub(crate) fn steps_to_series(
    start: i64,
    step: i64,
    steps: Vec<Vec<Sv>>,
) -> EvalResult<Vec<MSeries>> {
    let mut index: HashMap<Labels, usize> = HashMap::new();
    // The same label set is usually the same allocation at every step: look it up by
    // address first (see `label_key`).
    let mut by_key: IntMap<(usize, bool), usize> = IntMap::default();
    let mut out: Vec<MSeries> = Vec::new();
    for (i, st) in steps.iter().enumerate() {
        let t = start.saturating_add((i as i64).saturating_mul(step));
        for s in st {
            let key = (label_key(&s.labels), s.drop_name);
            let k = match by_key.get(&key) {
                Some(&k) => k,
                None => {
                    let labels = if s.drop_name {
                        s.labels.without_metric_name()
                    } else {
                        s.labels.clone()
                    };
                    let k = match index.get(&labels) {
                        Some(&k) => k,
                        None => {
                            index.insert(labels.clone(), out.len());
                            out.push(MSeries {
                                labels,
                                samples: Vec::with_capacity(steps.len() - i),
                                drop_name: false,
                            });
                            out.len() - 1
                        }
                    };
                    by_key.insert(key, k);
                    k
                }
            };
            if let Some(series) = out.get_mut(k) {
                if series.samples.last().is_some_and(|p| p.t == t) {
                    return Err(QueryError::Eval(
                        "vector cannot contain metrics with the same labelset".to_string(),
                    ));
                }
                series.samples.push(Sample::new(t, s.v));
            }
        }
    }
    Ok(out)
}

/// A fast hasher for keys that are already well-distributed integers (hashes,
/// addresses, small ids): a multiply-xorshift over the written words.
#[derive(Default, Clone, Copy)]
pub(crate) struct IntHasher(u64);

impl std::hash::Hasher for IntHasher {
    #[inline]
    fn finish(&self) -> u64 {
        let h = self.0.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        h ^ (h >> 29)
    }
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(23) ^ i).wrapping_mul(0x2545_F491_4F6C_DD1D);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.write_u64(u64::from(i));
    }
}

/// A map keyed by integers, with [`IntHasher`].
pub(crate) type IntMap<K, V> = HashMap<K, V, std::hash::BuildHasherDefault<IntHasher>>;

/// A cheap identity for a label set: the address of its shared storage.
///
/// Only valid as a cache key while every label set that is looked up was allocated
/// before the cache was created (so two distinct live label sets never share an
/// address): evaluation inputs are fully materialised before a node processes them.
#[inline]
pub(crate) fn label_key(l: &Labels) -> usize {
    l.packed().as_ptr() as usize
}
