//! Aggregation operators.

use super::binary::signature;
use super::call::{is_range_fn, plain_range_args, PointSink, Shortcut};
use super::{label_key, EvalResult, Evaluator, IntMap, Sv, Val};
use crate::model::{is_valid_label_name, Labels, METRIC_NAME};
use crate::promql::annotations;
use crate::promql::ast::{AggOp, AggregateExpr, Expr, Grouping};
use crate::promql::engine::QueryError;
use crate::promql::func::Func;
use crate::promql::functions::aggr::{kahan_sum_inc, quantile, VarianceAggregator};

enum Acc {
    Sum { v: f64, c: f64 },
    Avg(Mean),
    Count(f64),
    Group,
    Min(f64),
    Max(f64),
    Var(VarianceAggregator),
    Quantile(Vec<f64>),
}

impl Acc {
    /// The accumulator of `op` seeded with its group's first value.
    fn new(op: AggOp, f: f64) -> Acc {
        match op {
            AggOp::Sum => Acc::Sum { v: f, c: 0.0 },
            AggOp::Avg => Acc::Avg(Mean::new(f)),
            AggOp::Count => Acc::Count(1.0),
            AggOp::Group => Acc::Group,
            AggOp::Min => Acc::Min(f),
            AggOp::Max => Acc::Max(f),
            AggOp::Stddev | AggOp::Stdvar => Acc::Var(VarianceAggregator::new(f)),
            AggOp::Quantile => Acc::Quantile(vec![f]),
            _ => Acc::Group,
        }
    }

    /// Adds another value of the group.
    #[inline]
    fn add(&mut self, f: f64) {
        match self {
            Acc::Sum { v, c } => {
                let (nv, nc) = kahan_sum_inc(f, *v, *c);
                *v = nv;
                *c = nc;
            }
            Acc::Avg(avg) => avg.add(f),
            Acc::Count(c) => *c += 1.0,
            Acc::Group => {}
            Acc::Min(m) => {
                if *m > f || m.is_nan() {
                    *m = f;
                }
            }
            Acc::Max(m) => {
                if *m < f || m.is_nan() {
                    *m = f;
                }
            }
            Acc::Var(var) => var.add(f),
            Acc::Quantile(vals) => vals.push(f),
        }
    }

    /// The aggregated value (`q` is the quantile of `quantile`).
    fn value(self, op: AggOp, q: f64) -> f64 {
        match self {
            Acc::Quantile(mut vals) => quantile(q, &mut vals),
            other => other.value_ref(op),
        }
    }

    /// The aggregated value of any operator but `quantile`.
    fn value_ref(&self, op: AggOp) -> f64 {
        match self {
            Acc::Sum { v, c } => {
                if v.is_infinite() {
                    *v
                } else {
                    v + c
                }
            }
            Acc::Avg(avg) => avg.value(),
            Acc::Count(c) => *c,
            Acc::Group => 1.0,
            Acc::Min(m) | Acc::Max(m) => *m,
            Acc::Var(var) => {
                if op == AggOp::Stddev {
                    var.stddev()
                } else {
                    var.variance()
                }
            }
            Acc::Quantile(_) => f64::NAN,
        }
    }
}

/// Most accumulators (groups times steps) [`Evaluator::aggregate_range_fn`] allocates.
const FUSED_LIMIT: usize = 1 << 22;

/// Accumulates range function output per group and step.
struct AggSink<'n> {
    op: AggOp,
    without: bool,
    names: &'n [String],
    n: usize,
    /// Group key → index in `groups`.
    index: IntMap<u64, usize>,
    /// Output labels and one accumulator per step.
    groups: Vec<(Labels, Vec<Option<Acc>>)>,
    /// Per step, the groups in order of their first element.
    order: Vec<Vec<usize>>,
    /// The group of the current series.
    cur: usize,
}

impl PointSink for AggSink<'_> {
    fn series(&mut self, labels: Labels, _drop_name: bool, _remaining: usize) {
        let key = group_key(&labels, self.without, self.names);
        let groups = &mut self.groups;
        let (without, names, n) = (self.without, self.names, self.n);
        self.cur = *self.index.entry(key).or_insert_with(|| {
            groups.push((
                group_labels(&labels, without, names),
                (0..n).map(|_| None).collect(),
            ));
            groups.len() - 1
        });
    }

    #[inline]
    fn point(&mut self, i: usize, v: f64) {
        let Some((_, accs)) = self.groups.get_mut(self.cur) else {
            return;
        };
        match accs.get_mut(i) {
            Some(Some(acc)) => acc.add(v),
            Some(slot) => {
                *slot = Some(Acc::new(self.op, v));
                if let Some(o) = self.order.get_mut(i) {
                    o.push(self.cur);
                }
            }
            None => {}
        }
    }
}

/// Prometheus's `avg`: a Kahan-compensated sum divided by the count, switching to an
/// incremental (Kahan-compensated) mean once the sum would overflow.
struct Mean {
    sum: f64,
    mean: f64,
    c: f64,
    count: f64,
    incremental: bool,
}

impl Mean {
    fn new(f: f64) -> Self {
        Mean {
            sum: f,
            mean: f,
            c: 0.0,
            count: 1.0,
            incremental: false,
        }
    }

    fn add(&mut self, f: f64) {
        self.count += 1.0;
        if !self.incremental {
            let (v, c) = kahan_sum_inc(f, self.sum, self.c);
            if !v.is_infinite() {
                self.sum = v;
                self.c = c;
                return;
            }
            self.incremental = true;
            self.mean = self.sum / (self.count - 1.0);
            self.c /= self.count - 1.0;
        }
        let q = (self.count - 1.0) / self.count;
        let (m, c) = kahan_sum_inc(f / self.count, q * self.mean, q * self.c);
        self.mean = m;
        self.c = c;
    }

    fn value(&self) -> f64 {
        if self.incremental {
            self.mean + self.c
        } else {
            self.sum / self.count + self.c / self.count
        }
    }
}

struct Group {
    labels: Labels,
    acc: Acc,
    drop_name: bool,
}

fn group_labels(l: &Labels, without: bool, names: &[String]) -> Labels {
    if without {
        l.filter(|x| x.name != METRIC_NAME && !names.iter().any(|n| *n == x.name))
    } else if names.is_empty() {
        Labels::empty()
    } else {
        l.filter(|x| names.iter().any(|n| *n == x.name))
    }
}

fn group_key(l: &Labels, without: bool, names: &[String]) -> u64 {
    if !without && names.is_empty() {
        return 0;
    }
    signature(l, !without, names)
}

/// Strips parentheses.
fn unparen(e: &Expr) -> &Expr {
    match e {
        Expr::Paren { expr, .. } => unparen(expr),
        other => other,
    }
}

/// Go's `strconv.FormatFloat(f, 'f', -1, 64)`.
fn format_f(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_string()
    } else if v == f64::INFINITY {
        "+Inf".to_string()
    } else if v == f64::NEG_INFINITY {
        "-Inf".to_string()
    } else {
        format!("{v}")
    }
}

// ---- a binary heap with Go's container/heap algorithm, so that ties come out in the
// same order as in Prometheus ----

fn heap_up(h: &mut [Sv], mut j: usize, less: &impl Fn(&Sv, &Sv) -> bool) {
    while j > 0 {
        let i = (j - 1) / 2;
        let (Some(a), Some(b)) = (h.get(j), h.get(i)) else {
            break;
        };
        if !less(a, b) {
            break;
        }
        h.swap(i, j);
        j = i;
    }
}

fn heap_down(h: &mut [Sv], i0: usize, less: &impl Fn(&Sv, &Sv) -> bool) -> bool {
    let n = h.len();
    let mut i = i0;
    loop {
        let j1 = 2 * i + 1;
        if j1 >= n {
            break;
        }
        let mut j = j1;
        let j2 = j1 + 1;
        if j2 < n {
            if let (Some(a), Some(b)) = (h.get(j2), h.get(j1)) {
                if less(a, b) {
                    j = j2;
                }
            }
        }
        let (Some(a), Some(b)) = (h.get(j), h.get(i)) else {
            break;
        };
        if !less(a, b) {
            break;
        }
        h.swap(i, j);
        i = j;
    }
    i > i0
}

fn heap_push(h: &mut Vec<Sv>, s: Sv, less: &impl Fn(&Sv, &Sv) -> bool) {
    h.push(s);
    let j = h.len() - 1;
    heap_up(h, j, less);
}

fn heap_fix0(h: &mut [Sv], less: &impl Fn(&Sv, &Sv) -> bool) {
    if !heap_down(h, 0, less) {
        heap_up(h, 0, less);
    }
}

/// Stable insertion sort (Go's `sort.Sort` on small inputs).
fn insertion_sort(h: &mut [Sv], less: &impl Fn(&Sv, &Sv) -> bool) {
    for i in 1..h.len() {
        let mut j = i;
        while j > 0 {
            let (Some(a), Some(b)) = (h.get(j), h.get(j - 1)) else {
                break;
            };
            if !less(a, b) {
                break;
            }
            h.swap(j, j - 1);
            j -= 1;
        }
    }
}

fn topk_less(a: &Sv, b: &Sv) -> bool {
    a.v.is_nan() || a.v < b.v
}

fn bottomk_less(a: &Sv, b: &Sv) -> bool {
    a.v.is_nan() || a.v > b.v
}

/// The fraction in `[0, 1)` that decides whether `limit_ratio` keeps a series: the
/// label set's Prometheus hash, so the same series are sampled as in Prometheus.
fn ratio_offset(l: &Labels) -> f64 {
    l.prometheus_hash() as f64 / u64::MAX as f64
}

fn keep_ratio(r: f64, l: &Labels) -> bool {
    let off = ratio_offset(l);
    (r >= 0.0 && off < r) || (r < 0.0 && off >= 1.0 + r)
}

impl<'s, 'a> Evaluator<'s, 'a> {
    pub(crate) fn eval_aggregate(&self, a: &AggregateExpr) -> EvalResult<Val> {
        let (without, mut names) = match &a.grouping {
            Grouping::None => (false, Vec::new()),
            Grouping::By(v) => (false, v.clone()),
            Grouping::Without(v) => (true, v.clone()),
        };
        names.sort();
        if a.op == AggOp::CountValues {
            return self.eval_count_values(a, without, names);
        }
        let param = match (a.op, &a.param) {
            (
                AggOp::Topk | AggOp::Bottomk | AggOp::Limitk | AggOp::LimitRatio | AggOp::Quantile,
                Some(p),
            ) => Some(self.eval_scalar(p)?),
            _ => None,
        };
        let input = match self.aggregate_range_fn(a, without, &names)? {
            Some(Ok(v)) => return Ok(v),
            Some(Err(steps)) => steps,
            None => self.eval_vector(&a.expr)?,
        };
        match a.op {
            AggOp::Topk | AggOp::Bottomk | AggOp::Limitk | AggOp::LimitRatio => {
                let params = param.unwrap_or_default();
                return self.eval_k(a, input, &params, without, &names);
            }
            AggOp::Quantile => {
                if let (Some(ps), Some(p)) = (&param, &a.param) {
                    let span = unparen(p).span();
                    if ps.iter().any(|q| q.is_nan()) {
                        self.annotate(annotations::invalid_quantile(self.sh.query, span, f64::NAN));
                    }
                    let max = ps
                        .iter()
                        .copied()
                        .filter(|q| !q.is_nan())
                        .fold(f64::NEG_INFINITY, f64::max);
                    let min = ps
                        .iter()
                        .copied()
                        .filter(|q| !q.is_nan())
                        .fold(f64::INFINITY, f64::min);
                    if max > 1.0 {
                        self.annotate(annotations::invalid_quantile(self.sh.query, span, max));
                    }
                    if min < 0.0 {
                        self.annotate(annotations::invalid_quantile(self.sh.query, span, min));
                    }
                }
            }
            _ => {}
        }
        let mut label_cache: IntMap<u64, Labels> = IntMap::default();
        let mut key_cache: IntMap<usize, u64> = IntMap::default();
        let mut out = Vec::with_capacity(input.len());
        for (i, step) in input.into_iter().enumerate() {
            if i % 64 == 0 {
                self.check()?;
            }
            let mut index: IntMap<u64, usize> = IntMap::default();
            let mut groups: Vec<Group> = Vec::new();
            for s in step {
                let key = *key_cache
                    .entry(label_key(&s.labels))
                    .or_insert_with(|| group_key(&s.labels, without, &names));
                let f = s.v;
                match index.get(&key) {
                    None => {
                        let labels = label_cache
                            .entry(key)
                            .or_insert_with(|| group_labels(&s.labels, without, &names))
                            .clone();
                        index.insert(key, groups.len());
                        groups.push(Group {
                            labels,
                            acc: Acc::new(a.op, f),
                            drop_name: s.drop_name,
                        });
                    }
                    Some(&gi) => {
                        let Some(g) = groups.get_mut(gi) else {
                            continue;
                        };
                        g.drop_name |= s.drop_name;
                        g.acc.add(f);
                    }
                }
            }
            let q = param
                .as_ref()
                .and_then(|p| p.get(i))
                .copied()
                .unwrap_or(f64::NAN);
            let res: Vec<Sv> = groups
                .into_iter()
                .map(|g| Sv {
                    labels: g.labels,
                    v: g.acc.value(a.op, q),
                    drop_name: g.drop_name,
                })
                .collect();
            out.push(res);
        }
        Ok(Val::Vector(out))
    }

    /// `op by (...) (f(selector[range]))` for the simple operators: the range function's
    /// points go straight into per-group accumulators instead of being collected into
    /// per-step vectors first. Elements are accumulated in the same order as from the
    /// per-step vectors (series order within each step) and groups come out in order of
    /// first appearance per step, so the result is the same. `None` when the shape does
    /// not apply; `Some(Err(input))` hands back the function's per-step vectors when the
    /// accumulators would take too much memory.
    fn aggregate_range_fn(
        &self,
        a: &AggregateExpr,
        without: bool,
        names: &[String],
    ) -> EvalResult<Shortcut<Val>> {
        if !matches!(
            a.op,
            AggOp::Sum | AggOp::Avg | AggOp::Count | AggOp::Group | AggOp::Min | AggOp::Max
        ) || self.sh.opts.delayed_name_removal
        {
            return Ok(None);
        }
        let Expr::Call(c) = unparen(&a.expr) else {
            return Ok(None);
        };
        if !is_range_fn(c.func) || c.func == Func::AbsentOverTime {
            return Ok(None);
        }
        if !plain_range_args(c) {
            return Ok(None);
        }
        // What `eval` does for the argument before evaluating it.
        self.check()?;
        let rc = self.range_call(c)?;
        let n = self.n();
        let keep_name = matches!(c.func, Func::LastOverTime | Func::FirstOverTime);
        let mut keys: IntMap<u64, ()> = IntMap::default();
        for s in &rc.input.series {
            let key = if keep_name {
                group_key(&s.labels, without, names)
            } else {
                group_key(&s.labels.without_metric_name(), without, names)
            };
            keys.insert(key, ());
        }
        if keys.len().saturating_mul(n) > FUSED_LIMIT {
            return Ok(Some(Err(self.range_fn_steps(&rc)?)));
        }
        let mut sink = AggSink {
            op: a.op,
            without,
            names,
            n,
            index: IntMap::default(),
            groups: Vec::new(),
            order: (0..n).map(|_| Vec::new()).collect(),
            cur: 0,
        };
        self.range_fn_points(&rc, &mut sink)?;
        let AggSink { groups, order, .. } = sink;
        let mut out = Vec::with_capacity(n);
        for (i, ids) in order.into_iter().enumerate() {
            let mut res = Vec::with_capacity(ids.len());
            for gi in ids {
                let Some((labels, accs)) = groups.get(gi) else {
                    continue;
                };
                if let Some(Some(acc)) = accs.get(i) {
                    res.push(Sv {
                        labels: labels.clone(),
                        v: acc.value_ref(a.op),
                        drop_name: false,
                    });
                }
            }
            out.push(res);
        }
        Ok(Some(Ok(Val::Vector(out))))
    }

    fn eval_k(
        &self,
        a: &AggregateExpr,
        input: Vec<Vec<Sv>>,
        params: &[f64],
        without: bool,
        names: &[String],
    ) -> EvalResult<Val> {
        let n = input.len();
        let max = params.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let min = params.iter().copied().fold(f64::INFINITY, f64::min);
        let any_nan = params.iter().any(|p| p.is_nan());
        match a.op {
            AggOp::LimitRatio => {
                if params.iter().all(|p| *p == 0.0) {
                    return Ok(Val::Vector(vec![Vec::new(); n]));
                }
                if any_nan {
                    return Err(QueryError::Eval("Ratio value is NaN".to_string()));
                }
                if let Some(p) = &a.param {
                    let span = unparen(p).span();
                    if max > 1.0 {
                        self.annotate(annotations::invalid_ratio(self.sh.query, span, max, 1.0));
                    }
                    if min < -1.0 {
                        self.annotate(annotations::invalid_ratio(self.sh.query, span, min, -1.0));
                    }
                }
            }
            _ => {
                if max < 1.0 || params.is_empty() {
                    return Ok(Val::Vector(vec![Vec::new(); n]));
                }
                if any_nan {
                    return Err(QueryError::Eval("Parameter value is NaN".to_string()));
                }
                if min <= i64::MIN as f64 {
                    return Err(QueryError::Eval(format!(
                        "Scalar value {min} underflows int64"
                    )));
                }
                if max >= i64::MAX as f64 {
                    return Err(QueryError::Eval(format!(
                        "Scalar value {max} overflows int64"
                    )));
                }
            }
        }
        let mut out = Vec::with_capacity(n);
        for (i, step) in input.into_iter().enumerate() {
            let p = params.get(i).copied().unwrap_or(0.0);
            let k = p as i64;
            let r = p.clamp(-1.0, 1.0);
            if a.op != AggOp::LimitRatio && k < 1 {
                out.push(Vec::new());
                continue;
            }
            if a.op == AggOp::LimitRatio && p == 0.0 {
                out.push(Vec::new());
                continue;
            }
            let k = k.max(0) as usize;
            let mut index: IntMap<u64, usize> = IntMap::default();
            let mut heaps: Vec<Vec<Sv>> = Vec::new();
            for s in step {
                let key = group_key(&s.labels, without, names);
                let gi = *index.entry(key).or_insert_with(|| {
                    heaps.push(Vec::new());
                    heaps.len() - 1
                });
                let Some(h) = heaps.get_mut(gi) else {
                    continue;
                };
                match a.op {
                    AggOp::Topk => {
                        if h.len() < k {
                            heap_push(h, s, &topk_less);
                        } else if let Some(top) = h.first() {
                            if top.v < s.v || (top.v.is_nan() && !s.v.is_nan()) {
                                if let Some(slot) = h.first_mut() {
                                    *slot = s;
                                }
                                if k > 1 {
                                    heap_fix0(h, &topk_less);
                                }
                            }
                        }
                    }
                    AggOp::Bottomk => {
                        if h.len() < k {
                            heap_push(h, s, &bottomk_less);
                        } else if let Some(top) = h.first() {
                            if top.v > s.v || (top.v.is_nan() && !s.v.is_nan()) {
                                if let Some(slot) = h.first_mut() {
                                    *slot = s;
                                }
                                if k > 1 {
                                    heap_fix0(h, &bottomk_less);
                                }
                            }
                        }
                    }
                    // Prometheus keeps these in a value heap too, which decides the
                    // output order of an instant query.
                    AggOp::Limitk => {
                        if h.len() < k {
                            heap_push(h, s, &topk_less);
                        }
                    }
                    _ => {
                        if keep_ratio(r, &s.labels) {
                            heap_push(h, s, &topk_less);
                        }
                    }
                }
            }
            let mut res = Vec::new();
            for mut h in heaps {
                match a.op {
                    AggOp::Topk => insertion_sort(&mut h, &|x: &Sv, y: &Sv| topk_less(y, x)),
                    AggOp::Bottomk => insertion_sort(&mut h, &|x: &Sv, y: &Sv| bottomk_less(y, x)),
                    _ => {}
                }
                res.extend(h);
            }
            out.push(res);
        }
        Ok(Val::Vector(out))
    }

    fn eval_count_values(
        &self,
        a: &AggregateExpr,
        without: bool,
        mut names: Vec<String>,
    ) -> EvalResult<Val> {
        let label = match a.param.as_deref().map(unparen) {
            Some(Expr::String { val, .. }) => val.clone(),
            _ => {
                return Err(QueryError::Eval(
                    "count_values needs a string parameter".to_string(),
                ))
            }
        };
        if !is_valid_label_name(&label) {
            return Err(QueryError::Eval(format!(
                "invalid label name {}",
                crate::promql::ast::quote_string(&label)
            )));
        }
        if !without {
            names.push(label.clone());
            names.sort();
        }
        let input = self.eval_vector(&a.expr)?;
        let mut out = Vec::with_capacity(input.len());
        for step in input {
            let mut index: IntMap<u64, usize> = IntMap::default();
            let mut groups: Vec<(Labels, f64)> = Vec::new();
            for s in step {
                let mut b = s.labels.builder();
                b.set(&label, &format_f(s.v));
                let metric = b.labels();
                let key = group_key(&metric, without, &names);
                match index.get(&key) {
                    Some(&gi) => {
                        if let Some(g) = groups.get_mut(gi) {
                            g.1 += 1.0;
                        }
                    }
                    None => {
                        index.insert(key, groups.len());
                        groups.push((group_labels(&metric, without, &names), 1.0));
                    }
                }
            }
            out.push(
                groups
                    .into_iter()
                    .map(|(labels, v)| Sv {
                        labels,
                        v,
                        drop_name: false,
                    })
                    .collect(),
            );
        }
        Ok(Val::Vector(out))
    }
}
