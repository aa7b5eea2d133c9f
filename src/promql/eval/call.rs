//! Function calls: dispatch to the pure implementations in `functions`.

use std::collections::HashMap;

use super::selectors::{RangeInput, Window};
use super::{check_unique, label_key, EvalResult, Evaluator, IntMap, MSeries, Sv, Val};
use crate::model::{Labels, LabelsBuilder, MatchOp, Sample, METRIC_NAME};
use crate::promql::annotations;
use crate::promql::ast::{Call, Expr};
use crate::promql::engine::QueryError;
use crate::promql::func::Func;
use crate::promql::functions::{aggr, histogram, label, math, over_time, rate, time};

fn unparen(e: &Expr) -> &Expr {
    match e {
        Expr::Paren { expr, .. } => unparen(expr),
        other => other,
    }
}

fn string_arg(c: &Call, i: usize) -> EvalResult<String> {
    match c.args.get(i).map(unparen) {
        Some(Expr::String { val, .. }) => Ok(val.clone()),
        _ => Err(QueryError::Eval(format!(
            "expected string literal as argument {} of {}",
            i + 1,
            c.func.name()
        ))),
    }
}

pub(crate) fn is_range_fn(f: Func) -> bool {
    use Func::*;
    matches!(
        f,
        AbsentOverTime
            | AvgOverTime
            | Changes
            | CountOverTime
            | Delta
            | Deriv
            | DoubleExponentialSmoothing
            | FirstOverTime
            | Idelta
            | Increase
            | Irate
            | LastOverTime
            | MadOverTime
            | MaxOverTime
            | MinOverTime
            | PredictLinear
            | PresentOverTime
            | QuantileOverTime
            | Rate
            | Resets
            | StddevOverTime
            | StdvarOverTime
            | SumOverTime
            | TsOfFirstOverTime
            | TsOfLastOverTime
            | TsOfMaxOverTime
            | TsOfMinOverTime
    )
}

/// Most elements (steps times series) for which a range function's output steps are
/// sized up front.
const RESERVE_LIMIT: usize = 1 << 21;

/// A range function call with its arguments evaluated.
pub(crate) struct RangeCall<'c> {
    pub f: Func,
    /// The range argument (without parentheses).
    pub marg: &'c Expr,
    pub input: RangeInput,
    /// The other (scalar) arguments, in order, one value per step.
    pub scalars: Vec<Vec<f64>>,
}

impl RangeCall<'_> {
    /// Scalar argument `k` at step `i`.
    fn sc(&self, k: usize, i: usize) -> f64 {
        self.scalars
            .get(k)
            .and_then(|v| v.get(i))
            .copied()
            .unwrap_or(f64::NAN)
    }
}

/// Receives the output of a range function series by series.
pub(crate) trait PointSink {
    /// The next input series produces points with `labels`; `remaining` counts it and
    /// the series after it.
    fn series(&mut self, labels: Labels, drop_name: bool, remaining: usize);
    /// A point of the current series at step `i` (steps increase within a series).
    fn point(&mut self, i: usize, v: f64);
}

/// Collects range function output as one vector per step.
struct StepSink {
    out: Vec<Vec<Sv>>,
    labels: Labels,
    drop_name: bool,
    remaining: usize,
    reserve: bool,
}

impl PointSink for StepSink {
    fn series(&mut self, labels: Labels, drop_name: bool, remaining: usize) {
        self.labels = labels;
        self.drop_name = drop_name;
        self.remaining = remaining;
    }

    #[inline]
    fn point(&mut self, i: usize, v: f64) {
        if let Some(step) = self.out.get_mut(i) {
            if self.reserve && step.capacity() == 0 {
                step.reserve_exact(self.remaining);
            }
            step.push(Sv {
                labels: self.labels.clone(),
                v,
                drop_name: self.drop_name,
            });
        }
    }
}

/// The outcome of evaluating a range function call by a shortcut: `None` when the
/// shortcut does not apply, `Some(Ok(_))` its result, `Some(Err(steps))` the call's
/// usual per-step result when the shortcut gave up after evaluating the arguments.
pub(crate) type Shortcut<T> = Option<Result<T, Vec<Vec<Sv>>>>;

/// Whether the range argument of `c` is a matrix selector without `@` (not a subquery):
/// its series carry no name to drop later, and the call is not evaluated once and
/// repeated over the steps.
pub(crate) fn plain_range_args(c: &Call) -> bool {
    c.args.iter().any(|x| match unparen(x) {
        Expr::Matrix(ms) => ms.vs.at.is_none(),
        _ => false,
    }) && !c
        .args
        .iter()
        .any(|x| matches!(unparen(x), Expr::Subquery(_)))
}

/// Collects range function output as one series per input series.
struct SeriesSink<'s, 'a> {
    ev: Evaluator<'s, 'a>,
    n: usize,
    out: Vec<MSeries>,
}

impl PointSink for SeriesSink<'_, '_> {
    fn series(&mut self, labels: Labels, drop_name: bool, _remaining: usize) {
        self.out.push(MSeries {
            labels,
            samples: Vec::new(),
            drop_name,
        });
    }

    #[inline]
    fn point(&mut self, i: usize, v: f64) {
        if let Some(s) = self.out.last_mut() {
            if s.samples.is_empty() {
                s.samples.reserve_exact(self.n.saturating_sub(i));
            }
            s.samples.push(Sample::new(self.ev.t(i), v));
        }
    }
}

/// `absent()` output labels: the equality matchers of a selector argument.
fn absent_labels(arg: &Expr) -> Labels {
    let matchers = match unparen(arg) {
        Expr::Vector(vs) => &vs.matchers,
        Expr::Matrix(ms) => &ms.vs.matchers,
        _ => return Labels::empty(),
    };
    let mut b = LabelsBuilder::new();
    let mut has: HashMap<&str, bool> = HashMap::new();
    for m in matchers {
        if m.name == METRIC_NAME {
            continue;
        }
        if m.op == MatchOp::Equal && !has.get(m.name.as_str()).copied().unwrap_or(false) {
            b.set(&m.name, &m.value);
            has.insert(&m.name, true);
        } else {
            b.del(&m.name);
        }
    }
    b.labels()
}

fn date_fn(f: Func) -> Option<fn(f64) -> f64> {
    Some(match f {
        Func::DayOfMonth => time::day_of_month,
        Func::DayOfWeek => time::day_of_week,
        Func::DayOfYear => time::day_of_year,
        Func::DaysInMonth => time::days_in_month,
        Func::Hour => time::hour,
        Func::Minute => time::minute,
        Func::Month => time::month,
        Func::Year => time::year,
        _ => return None,
    })
}

fn simple_fn(f: Func) -> Option<fn(f64) -> f64> {
    Some(match f {
        Func::Abs => math::abs,
        Func::Ceil => math::ceil,
        Func::Floor => math::floor,
        Func::Sqrt => math::sqrt,
        Func::Exp => math::exp,
        Func::Ln => math::ln,
        Func::Log2 => math::log2,
        Func::Log10 => math::log10,
        Func::Sgn => math::sgn,
        Func::Sin => math::sin,
        Func::Cos => math::cos,
        Func::Tan => math::tan,
        Func::Asin => math::asin,
        Func::Acos => math::acos,
        Func::Atan => math::atan,
        Func::Sinh => math::sinh,
        Func::Cosh => math::cosh,
        Func::Tanh => math::tanh,
        Func::Asinh => math::asinh,
        Func::Acosh => math::acosh,
        Func::Atanh => math::atanh,
        Func::Deg => math::deg,
        Func::Rad => math::rad,
        _ => return None,
    })
}

impl<'s, 'a> Evaluator<'s, 'a> {
    pub(crate) fn eval_call(&self, c: &Call) -> EvalResult<Val> {
        let f = c.func;
        if is_range_fn(f) {
            return self.eval_range_fn(c);
        }
        if let Some(g) = simple_fn(f) {
            return self.map_vector(c, 0, |v, _| Some(g(v)), true);
        }
        if let Some(g) = date_fn(f) {
            if c.args.is_empty() {
                let n = self.n();
                return Ok(Val::Vector(
                    (0..n)
                        .map(|i| {
                            vec![Sv {
                                labels: Labels::empty(),
                                v: g(self.t(i) as f64 / 1000.0),
                                drop_name: false,
                            }]
                        })
                        .collect(),
                ));
            }
            return self.map_vector(c, 0, |v, _| Some(g(v)), true);
        }
        match f {
            Func::Time => Ok(Val::Scalar(
                (0..self.n())
                    .map(|i| time::time_seconds(self.t(i)))
                    .collect(),
            )),
            Func::Pi => Ok(Val::Scalar(vec![math::pi(); self.n()])),
            Func::Scalar => {
                let v = self.eval_vector(c.args.first().ok_or_else(missing)?)?;
                Ok(Val::Scalar(
                    v.iter()
                        .map(|s| match s.as_slice() {
                            [one] => one.v,
                            _ => f64::NAN,
                        })
                        .collect(),
                ))
            }
            Func::Vector => {
                let s = self.eval_scalar(c.args.first().ok_or_else(missing)?)?;
                Ok(Val::Vector(
                    s.into_iter()
                        .map(|v| {
                            vec![Sv {
                                labels: Labels::empty(),
                                v,
                                drop_name: false,
                            }]
                        })
                        .collect(),
                ))
            }
            Func::Timestamp => {
                let arg = c.args.first().ok_or_else(missing)?;
                let mut steps = match unparen(arg) {
                    Expr::Vector(vs) => self.eval_vector_selector_timestamps(vs)?,
                    other => {
                        let mut v = self.eval_vector(other)?;
                        for (i, step) in v.iter_mut().enumerate() {
                            let t = time::timestamp_seconds(self.t(i));
                            for s in step.iter_mut() {
                                s.v = t;
                            }
                        }
                        v
                    }
                };
                for step in &mut steps {
                    for s in step.iter_mut() {
                        self.drop_name(s);
                    }
                }
                Ok(Val::Vector(steps))
            }
            Func::Absent => {
                let arg = c.args.first().ok_or_else(missing)?;
                let v = self.eval_vector(arg)?;
                let labels = absent_labels(arg);
                Ok(Val::Vector(
                    v.into_iter()
                        .map(|step| {
                            if step.is_empty() {
                                vec![Sv {
                                    labels: labels.clone(),
                                    v: 1.0,
                                    drop_name: false,
                                }]
                            } else {
                                Vec::new()
                            }
                        })
                        .collect(),
                ))
            }
            Func::Round => {
                let to = match c.args.get(1) {
                    Some(e) => Some(self.eval_scalar(e)?),
                    None => None,
                };
                self.map_vector(
                    c,
                    0,
                    |v, i| {
                        let n = to.as_ref().and_then(|t| t.get(i)).copied().unwrap_or(1.0);
                        Some(math::round(v, n))
                    },
                    true,
                )
            }
            Func::Clamp => {
                let lo = self.eval_scalar(c.args.get(1).ok_or_else(missing)?)?;
                let hi = self.eval_scalar(c.args.get(2).ok_or_else(missing)?)?;
                self.map_vector(
                    c,
                    0,
                    |v, i| {
                        let (l, h) = (
                            lo.get(i).copied().unwrap_or(f64::NAN),
                            hi.get(i).copied().unwrap_or(f64::NAN),
                        );
                        math::clamp(v, l, h)
                    },
                    true,
                )
            }
            Func::ClampMin | Func::ClampMax => {
                let b = self.eval_scalar(c.args.get(1).ok_or_else(missing)?)?;
                let is_min = f == Func::ClampMin;
                self.map_vector(
                    c,
                    0,
                    |v, i| {
                        let x = b.get(i).copied().unwrap_or(f64::NAN);
                        Some(if is_min {
                            math::clamp_min(v, x)
                        } else {
                            math::clamp_max(v, x)
                        })
                    },
                    true,
                )
            }
            Func::Sort | Func::SortDesc | Func::SortByLabel | Func::SortByLabelDesc => {
                self.eval_sort(c)
            }
            Func::LabelReplace => self.eval_label_replace(c),
            Func::LabelJoin => self.eval_label_join(c),
            Func::HistogramQuantile | Func::HistogramFraction => self.eval_histogram(c),
            Func::HistogramAvg
            | Func::HistogramCount
            | Func::HistogramSum
            | Func::HistogramStddev
            | Func::HistogramStdvar => Err(QueryError::Eval(format!(
                "{}() needs native histograms, which are not supported",
                f.name()
            ))),
            other => Err(QueryError::Eval(format!(
                "function {} is not supported",
                other.name()
            ))),
        }
    }

    /// Applies `g(value, step)` to every element of argument `arg`; `None` drops it.
    fn map_vector(
        &self,
        c: &Call,
        arg: usize,
        g: impl Fn(f64, usize) -> Option<f64>,
        drop: bool,
    ) -> EvalResult<Val> {
        let v = self.eval_vector(c.args.get(arg).ok_or_else(missing)?)?;
        let mut out = Vec::with_capacity(v.len());
        for (i, step) in v.into_iter().enumerate() {
            let mut res = Vec::with_capacity(step.len());
            for mut s in step {
                if let Some(x) = g(s.v, i) {
                    s.v = x;
                    if drop {
                        self.drop_name(&mut s);
                    }
                    res.push(s);
                }
            }
            out.push(res);
        }
        Ok(Val::Vector(out))
    }

    fn eval_range_fn(&self, c: &Call) -> EvalResult<Val> {
        let rc = self.range_call(c)?;
        let n = self.n();
        if rc.f == Func::AbsentOverTime {
            let mut out: Vec<Vec<Sv>> = (0..n).map(|_| Vec::new()).collect();
            let labels = absent_labels(rc.marg);
            let mut present = vec![false; n];
            for s in &rc.input.series {
                let mut w = Window::new(&s.samples);
                for (i, p) in present.iter_mut().enumerate() {
                    let te = rc.input.window_end(self.t(i));
                    if !w.slide(te.saturating_sub(rc.input.range), te).is_empty() {
                        *p = true;
                    }
                }
            }
            for (i, p) in present.iter().enumerate() {
                if !p {
                    if let Some(step) = out.get_mut(i) {
                        step.push(Sv {
                            labels: labels.clone(),
                            v: 1.0,
                            drop_name: false,
                        });
                    }
                }
            }
            return Ok(Val::Vector(out));
        }
        Ok(Val::Vector(self.range_fn_steps(&rc)?))
    }

    /// Evaluates the arguments of a range function call (see [`Self::range_fn_points`]).
    pub(crate) fn range_call<'c>(&self, c: &'c Call) -> EvalResult<RangeCall<'c>> {
        let f = c.func;
        let (mi, marg) = c
            .args
            .iter()
            .enumerate()
            .find(|(_, a)| matches!(unparen(a), Expr::Matrix(_) | Expr::Subquery(_)))
            .ok_or_else(|| {
                QueryError::Eval(format!("{} expects a range vector argument", f.name()))
            })?;
        let marg = unparen(marg);
        let input: RangeInput = match marg {
            Expr::Matrix(ms) => self.range_input_selector(ms)?,
            Expr::Subquery(sq) => self.range_input_subquery(sq)?,
            _ => return Err(missing()),
        };
        let mut scalars: Vec<Vec<f64>> = Vec::new();
        for (i, a) in c.args.iter().enumerate() {
            if i != mi {
                scalars.push(self.eval_scalar(a)?);
            }
        }
        let rc = RangeCall {
            f,
            marg,
            input,
            scalars,
        };
        if f == Func::QuantileOverTime {
            let span = c
                .args
                .first()
                .map(|a| unparen(a).span())
                .unwrap_or_default();
            for i in 0..self.n() {
                let q = rc.sc(0, i);
                if q.is_nan() || !(0.0..=1.0).contains(&q) {
                    self.annotate(annotations::invalid_quantile(self.sh.query, span, q));
                }
            }
        }
        Ok(rc)
    }

    /// The result of a range function call (other than `absent_over_time`) as one
    /// vector per step.
    pub(crate) fn range_fn_steps(&self, rc: &RangeCall<'_>) -> EvalResult<Vec<Vec<Sv>>> {
        let n = self.n();
        let mut sink = StepSink {
            out: (0..n).map(|_| Vec::new()).collect(),
            labels: Labels::empty(),
            drop_name: false,
            remaining: 0,
            // Each step gets at most one element per series: size the steps for that up
            // front (instead of growing them all in turn) unless that could hold a lot
            // of memory that sparse series would leave unused.
            reserve: n.saturating_mul(rc.input.series.len()) <= RESERVE_LIMIT,
        };
        self.range_fn_points(rc, &mut sink)?;
        Ok(sink.out)
    }

    /// A range function applied to a plain matrix selector, evaluated as the result
    /// series of a range query directly, without per-step vectors: each input series
    /// gives one output series with its points in step order (the caller sorts them).
    /// `None` when the call has another shape; `Some(Err(steps))` with the usual per-step
    /// result when two input series would give the same output labels (their points
    /// merge or conflict in the per-step form).
    pub(crate) fn range_fn_series(&self, c: &Call) -> EvalResult<Shortcut<Vec<MSeries>>> {
        if !is_range_fn(c.func)
            || c.func == Func::AbsentOverTime
            || self.sh.opts.delayed_name_removal
            || !plain_range_args(c)
        {
            return Ok(None);
        }
        // What `eval` does first.
        self.check()?;
        let rc = self.range_call(c)?;
        let keep_name = matches!(c.func, Func::LastOverTime | Func::FirstOverTime);
        let mut seen = std::collections::HashSet::with_capacity(rc.input.series.len());
        for s in &rc.input.series {
            let labels = if keep_name {
                s.labels.clone()
            } else {
                s.labels.without_metric_name()
            };
            if !seen.insert(labels) {
                return Ok(Some(Err(self.range_fn_steps(&rc)?)));
            }
        }
        drop(seen);
        let mut sink = SeriesSink {
            ev: *self,
            n: self.n(),
            out: Vec::with_capacity(rc.input.series.len()),
        };
        self.range_fn_points(&rc, &mut sink)?;
        let mut out = sink.out;
        out.retain(|s| !s.samples.is_empty());
        Ok(Some(Ok(out)))
    }

    /// Computes a range function (other than `absent_over_time`) series by series and
    /// hands each series' output labels, then its points in step order, to `sink`.
    pub(crate) fn range_fn_points<S: PointSink>(
        &self,
        rc: &RangeCall<'_>,
        sink: &mut S,
    ) -> EvalResult<()> {
        let f = rc.f;
        let input = &rc.input;
        let n = self.n();
        let keep_name = matches!(f, Func::LastOverTime | Func::FirstOverTime);
        let delayed = self.sh.opts.delayed_name_removal;
        let total = input.series.len();
        // Samples held at once: the current window plus the output produced so far.
        let mut out_points = 0usize;
        for (si, s) in input.series.iter().enumerate() {
            if si % 64 == 0 {
                self.check()?;
            }
            let mut w = Window::new(&s.samples);
            // Exact incremental forms for sliding windows.
            let mut extreme = match f {
                Func::MinOverTime => Some(over_time::SlidingExtreme::new(&s.samples, false)),
                Func::MaxOverTime => Some(over_time::SlidingExtreme::new(&s.samples, true)),
                _ => None,
            };
            let prefix = match f {
                Func::Changes => Some(over_time::PairEventPrefix::changes(&s.samples)),
                // Rate and increase only need to know whether a window holds a reset.
                Func::Resets | Func::Rate | Func::Increase => {
                    Some(over_time::PairEventPrefix::resets(&s.samples))
                }
                _ => None,
            };
            let mut produced = false;
            let mut max_window = 0usize;
            let labels = if !keep_name && !delayed {
                s.labels.without_metric_name()
            } else {
                s.labels.clone()
            };
            sink.series(labels, s.drop_name || (!keep_name && delayed), total - si);
            for i in 0..n {
                let t = self.t(i);
                let te = input.window_end(t);
                let ts = te.saturating_sub(input.range);
                let win: &[Sample] = w.slide(ts, te);
                if win.is_empty() {
                    continue;
                }
                max_window = max_window.max(win.len());
                let v = match f {
                    Func::Rate | Func::Increase => {
                        let (lo, hi) = w.bounds();
                        let may_reset = prefix
                            .as_ref()
                            .and_then(|p| p.count(lo, hi))
                            .is_none_or(|n| n > 0.0);
                        rate::counter_rate_known_resets(win, ts, te, f == Func::Rate, may_reset)
                    }
                    Func::Delta => rate::delta(win, ts, te),
                    Func::Irate => rate::irate(win),
                    Func::Idelta => rate::idelta(win),
                    Func::AvgOverTime => over_time::avg_over_time(win),
                    Func::SumOverTime => over_time::sum_over_time(win),
                    Func::CountOverTime => Some(win.len() as f64),
                    Func::MinOverTime | Func::MaxOverTime => {
                        let (lo, hi) = w.bounds();
                        extreme.as_mut().and_then(|e| e.query(lo, hi))
                    }
                    Func::LastOverTime => over_time::last_over_time(win),
                    Func::FirstOverTime => over_time::first_over_time(win),
                    Func::PresentOverTime => over_time::present_over_time(win),
                    Func::StddevOverTime => over_time::stddev_over_time(win),
                    Func::StdvarOverTime => over_time::stdvar_over_time(win),
                    Func::MadOverTime => over_time::mad_over_time(win),
                    Func::QuantileOverTime => over_time::quantile_over_time(rc.sc(0, i), win),
                    Func::Changes | Func::Resets => {
                        let (lo, hi) = w.bounds();
                        prefix.as_ref().and_then(|p| p.count(lo, hi))
                    }
                    Func::Deriv => over_time::deriv(win),
                    Func::PredictLinear => over_time::predict_linear(win, t, rc.sc(0, i)),
                    Func::TsOfMaxOverTime => over_time::ts_of_max_over_time(win),
                    Func::TsOfMinOverTime => over_time::ts_of_min_over_time(win),
                    Func::TsOfFirstOverTime => over_time::ts_of_first_over_time(win),
                    Func::TsOfLastOverTime => over_time::ts_of_last_over_time(win),
                    Func::DoubleExponentialSmoothing => {
                        over_time::double_exponential_smoothing(win, rc.sc(0, i), rc.sc(1, i))
                            .map_err(|e| QueryError::Eval(e.to_string()))?
                    }
                    _ => None,
                };
                if let Some(v) = v {
                    produced = true;
                    out_points += 1;
                    sink.point(i, v);
                }
            }
            self.check_samples(max_window + out_points)?;
            if produced && matches!(f, Func::Rate | Func::Increase) {
                if let Some(name) = s.labels.get(METRIC_NAME) {
                    if !["_total", "_sum", "_count", "_bucket"]
                        .iter()
                        .any(|suf| name.ends_with(suf))
                    {
                        // Prometheus replaces a subquery argument by a selector without
                        // a position before this check, so it reports the query start.
                        let span = match rc.marg {
                            Expr::Subquery(_) => crate::promql::ast::Span::default(),
                            other => other.span(),
                        };
                        self.annotate(annotations::possible_non_counter(self.sh.query, span, name));
                    }
                }
            }
        }
        Ok(())
    }

    fn eval_sort(&self, c: &Call) -> EvalResult<Val> {
        if self.start != self.end {
            self.annotate(annotations::sort_in_range_query(self.sh.query, c.span));
        }
        let mut v = self.eval_vector(c.args.first().ok_or_else(missing)?)?;
        let mut label_names = Vec::new();
        for i in 1..c.args.len() {
            label_names.push(string_arg(c, i)?);
        }
        for step in &mut v {
            match c.func {
                // Go's sort.Sort over Prometheus's value heaps, reversed: ascending
                // (descending) with NaN last. Small inputs are insertion-sorted there, so
                // an insertion sort with the same comparison gives the same order.
                Func::Sort => go_insertion_sort(step, |a, b| b.v.is_nan() || b.v > a.v),
                Func::SortDesc => go_insertion_sort(step, |a, b| b.v.is_nan() || b.v < a.v),
                _ => {
                    let desc = c.func == Func::SortByLabelDesc;
                    step.sort_by(|a, b| {
                        let mut ord = std::cmp::Ordering::Equal;
                        for n in &label_names {
                            ord = aggr::natural_cmp(
                                a.labels.get_or_empty(n),
                                b.labels.get_or_empty(n),
                            );
                            if ord != std::cmp::Ordering::Equal {
                                break;
                            }
                        }
                        if ord == std::cmp::Ordering::Equal {
                            ord = a.labels.cmp(&b.labels);
                        }
                        if desc {
                            ord.reverse()
                        } else {
                            ord
                        }
                    });
                }
            }
        }
        Ok(Val::Vector(v))
    }

    fn eval_label_replace(&self, c: &Call) -> EvalResult<Val> {
        let dst = string_arg(c, 1)?;
        let repl = string_arg(c, 2)?;
        let src = string_arg(c, 3)?;
        let re = string_arg(c, 4)?;
        if !valid_utf8_label_name(&dst) {
            return Err(QueryError::Eval(format!(
                "invalid destination label name in label_replace(): {dst}"
            )));
        }
        let lr = label::LabelReplace::new(&dst, &repl, &src, &re).map_err(QueryError::Eval)?;
        let mut v = self.eval_vector(c.args.first().ok_or_else(missing)?)?;
        let mut cache: HashMap<Labels, Option<Labels>> = HashMap::new();
        for step in &mut v {
            for s in step.iter_mut() {
                let res = cache
                    .entry(s.labels.clone())
                    .or_insert_with(|| lr.apply(&s.labels))
                    .clone();
                if let Some(l) = res {
                    s.labels = l;
                    if dst == METRIC_NAME {
                        s.drop_name = false;
                    }
                }
            }
            check_unique(step)?;
        }
        Ok(Val::Vector(v))
    }

    fn eval_label_join(&self, c: &Call) -> EvalResult<Val> {
        let dst = string_arg(c, 1)?;
        let sep = string_arg(c, 2)?;
        let mut srcs = Vec::new();
        for i in 3..c.args.len() {
            srcs.push(string_arg(c, i)?);
        }
        if let Some(bad) = srcs.iter().find(|s| !valid_utf8_label_name(s)) {
            return Err(QueryError::Eval(format!(
                "invalid source label name in label_join(): {bad}"
            )));
        }
        if !valid_utf8_label_name(&dst) {
            return Err(QueryError::Eval(format!(
                "invalid destination label name in label_join(): {dst}"
            )));
        }
        let src_refs: Vec<&str> = srcs.iter().map(String::as_str).collect();
        let lj = label::LabelJoin::new(&dst, &sep, &src_refs).map_err(QueryError::Eval)?;
        let mut v = self.eval_vector(c.args.first().ok_or_else(missing)?)?;
        for step in &mut v {
            for s in step.iter_mut() {
                s.labels = lj.apply(&s.labels);
                if dst == METRIC_NAME {
                    s.drop_name = false;
                }
            }
            check_unique(step)?;
        }
        Ok(Val::Vector(v))
    }

    fn eval_histogram(&self, c: &Call) -> EvalResult<Val> {
        let is_fraction = c.func == Func::HistogramFraction;
        let nparams = if is_fraction { 2 } else { 1 };
        let mut params = Vec::new();
        for i in 0..nparams {
            params.push(self.eval_scalar(c.args.get(i).ok_or_else(missing)?)?);
        }
        let varg = c.args.get(nparams).ok_or_else(missing)?;
        let v = self.eval_vector(varg)?;
        let vspan = unparen(varg).span();
        if !is_fraction {
            if let Some(first) = c.args.first() {
                let span = unparen(first).span();
                for q in params.first().map(|p| p.as_slice()).unwrap_or(&[]) {
                    if q.is_nan() || !(0.0..=1.0).contains(q) {
                        self.annotate(annotations::invalid_quantile(self.sh.query, span, *q));
                    }
                }
            }
        }
        let mut out = Vec::with_capacity(v.len());
        // Per input label set (by identity): its group id and bucket bound, or None
        // when its `le` is not a number.
        let mut ident: IntMap<usize, Option<(usize, f64)>> = IntMap::default();
        // Group id by the labels without `le` (the metric name included).
        let mut canon: HashMap<Labels, usize> = HashMap::new();
        let mut group_labels: Vec<Labels> = Vec::new();
        for (i, step) in v.iter().enumerate() {
            // group buckets by the labels without `le`, in order of first appearance
            let mut index: IntMap<usize, usize> = IntMap::default();
            let mut groups: Vec<(Labels, Vec<histogram::Bucket>, bool)> = Vec::new();
            for s in step {
                let entry = *ident.entry(label_key(&s.labels)).or_insert_with(|| {
                    let le = s.labels.get_or_empty("le");
                    match histogram::parse_le(le) {
                        None => {
                            self.annotate(annotations::bad_bucket_label(
                                self.sh.query,
                                vspan,
                                s.labels.get_or_empty(METRIC_NAME),
                                le,
                            ));
                            None
                        }
                        Some(ub) => {
                            let key = s.labels.filter(|l| l.name != "le");
                            let gid = *canon.entry(key.clone()).or_insert_with(|| {
                                group_labels.push(key);
                                group_labels.len() - 1
                            });
                            Some((gid, ub))
                        }
                    }
                });
                let Some((gid, ub)) = entry else {
                    continue;
                };
                match index.get(&gid) {
                    Some(&gi) => {
                        if let Some(g) = groups.get_mut(gi) {
                            g.1.push(histogram::Bucket::new(ub, s.v));
                            g.2 |= s.drop_name;
                        }
                    }
                    None => {
                        index.insert(gid, groups.len());
                        let key = group_labels.get(gid).cloned().unwrap_or_default();
                        groups.push((key, vec![histogram::Bucket::new(ub, s.v)], s.drop_name));
                    }
                }
            }
            let mut res = Vec::with_capacity(groups.len());
            for (key, mut buckets, _) in groups {
                let name = key.get_or_empty(METRIC_NAME).to_string();
                let v = if is_fraction {
                    let lo = params
                        .first()
                        .and_then(|p| p.get(i))
                        .copied()
                        .unwrap_or(f64::NAN);
                    let hi = params
                        .get(1)
                        .and_then(|p| p.get(i))
                        .copied()
                        .unwrap_or(f64::NAN);
                    histogram::bucket_fraction(lo, hi, &mut buckets)
                } else {
                    let q = params
                        .first()
                        .and_then(|p| p.get(i))
                        .copied()
                        .unwrap_or(f64::NAN);
                    let r = histogram::bucket_quantile(q, &mut buckets);
                    if r.forced_monotonic {
                        self.annotate(annotations::histogram_quantile_forced_monotonicity(
                            self.sh.query,
                            vspan,
                            &name,
                        ));
                    }
                    r.value
                };
                let mut sv = Sv {
                    labels: key,
                    v,
                    drop_name: false,
                };
                self.drop_name(&mut sv);
                res.push(sv);
            }
            out.push(res);
        }
        Ok(Val::Vector(out))
    }
}

/// Label names must be non-empty valid UTF-8. String literals with escapes that are not
/// valid UTF-8 (`"\xff"`) reach us with U+FFFD in place of the bad bytes.
fn valid_utf8_label_name(name: &str) -> bool {
    !name.is_empty() && !name.contains('\u{FFFD}')
}

/// Go's `insertionSort` with `less(a, b)`: "a goes before b".
fn go_insertion_sort(v: &mut [Sv], less: impl Fn(&Sv, &Sv) -> bool) {
    for i in 1..v.len() {
        let mut j = i;
        while j > 0 {
            let (Some(a), Some(b)) = (v.get(j), v.get(j - 1)) else {
                break;
            };
            if !less(a, b) {
                break;
            }
            v.swap(j, j - 1);
            j -= 1;
        }
    }
}

fn missing() -> QueryError {
    QueryError::Eval("missing function argument".to_string())
}
