//! Binary operators: scalar/scalar, vector/scalar and vector/vector with matching.

use std::collections::{HashMap, HashSet};

use super::{label_key, EvalResult, Evaluator, IntMap, Sv, Val};
use crate::model::{LabelRef, Labels, METRIC_NAME};
use crate::promql::ast::{BinOp, BinaryExpr, VectorMatchCardinality, VectorMatching};
use crate::promql::engine::QueryError;
use crate::promql::functions::math::{go_mod, go_pow};

/// Arithmetic result, or for comparisons whether the comparison holds (as 1/0).
fn arith(op: BinOp, l: f64, r: f64) -> f64 {
    match op {
        BinOp::Add => l + r,
        BinOp::Sub => l - r,
        BinOp::Mul => l * r,
        BinOp::Div => l / r,
        BinOp::Mod => go_mod(l, r),
        BinOp::Pow => go_pow(l, r),
        BinOp::Atan2 => l.atan2(r),
        _ => {
            if compare(op, l, r) {
                1.0
            } else {
                0.0
            }
        }
    }
}

fn compare(op: BinOp, l: f64, r: f64) -> bool {
    match op {
        BinOp::Eql => l == r,
        BinOp::Neq => l != r,
        BinOp::Gtr => l > r,
        BinOp::Lss => l < r,
        BinOp::Gte => l >= r,
        BinOp::Lte => l <= r,
        _ => false,
    }
}

/// `(value, keep)` of an element operation, as Prometheus's `vectorElemBinop`.
fn elem(op: BinOp, l: f64, r: f64) -> (f64, bool) {
    if op.is_comparison() {
        (l, compare(op, l, r))
    } else {
        (arith(op, l, r), true)
    }
}

fn changes_schema(op: BinOp) -> bool {
    matches!(
        op,
        BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Pow | BinOp::Mod | BinOp::Atan2
    )
}

/// FNV-1a over selected labels: the join signature.
fn hash_labels<'a>(it: impl Iterator<Item = LabelRef<'a>>) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for l in it {
        for b in l
            .name
            .as_bytes()
            .iter()
            .chain(&[0xffu8])
            .chain(l.value.as_bytes())
            .chain(&[0xfe])
        {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

pub(crate) fn signature(labels: &Labels, on: bool, names: &[String]) -> u64 {
    if on {
        hash_labels(labels.iter().filter(|l| names.iter().any(|n| *n == l.name)))
    } else {
        hash_labels(
            labels
                .iter()
                .filter(|l| l.name != METRIC_NAME && !names.iter().any(|n| *n == l.name)),
        )
    }
}

/// Prometheus's `MatchLabels`: the labels that take part in matching.
fn match_labels(labels: &Labels, on: bool, names: &[String]) -> Labels {
    if on {
        labels.filter(|l| names.iter().any(|n| *n == l.name))
    } else {
        labels.filter(|l| l.name != METRIC_NAME && !names.iter().any(|n| *n == l.name))
    }
}

/// Per-node caches keyed by label-set identity (see [`label_key`]).
#[derive(Default)]
struct Caches {
    sig: IntMap<usize, u64>,
    result: IntMap<(usize, usize), Labels>,
}

impl Caches {
    fn sig(&mut self, l: &Labels, m: &VectorMatching) -> u64 {
        *self
            .sig
            .entry(label_key(l))
            .or_insert_with(|| signature(l, m.on, &m.labels))
    }
}

impl<'s, 'a> Evaluator<'s, 'a> {
    pub(crate) fn eval_binary(&self, b: &BinaryExpr) -> EvalResult<Val> {
        let l = self.eval(&b.lhs)?;
        let r = self.eval(&b.rhs)?;
        match (l, r) {
            (Val::Scalar(ls), Val::Scalar(rs)) => Ok(Val::Scalar(
                ls.iter()
                    .zip(rs.iter())
                    .map(|(l, r)| arith(b.op, *l, *r))
                    .collect(),
            )),
            (Val::Vector(lv), Val::Scalar(rs)) => {
                Ok(Val::Vector(self.vector_scalar(b, lv, &rs, false)))
            }
            (Val::Scalar(ls), Val::Vector(rv)) => {
                Ok(Val::Vector(self.vector_scalar(b, rv, &ls, true)))
            }
            (Val::Vector(lv), Val::Vector(rv)) => {
                let default = VectorMatching {
                    card: if b.op.is_set_op() {
                        VectorMatchCardinality::ManyToMany
                    } else {
                        VectorMatchCardinality::OneToOne
                    },
                    on: false,
                    labels: Vec::new(),
                    include: Vec::new(),
                };
                let m = b.matching.as_ref().unwrap_or(&default);
                let mut caches = Caches::default();
                let mut out = Vec::with_capacity(lv.len());
                for (i, (l, r)) in lv.into_iter().zip(rv).enumerate() {
                    if i % 64 == 0 {
                        self.check()?;
                    }
                    let v = match b.op {
                        BinOp::And => set_and(l, &r, m, &mut caches),
                        BinOp::Or => set_or(l, r, m, &mut caches),
                        BinOp::Unless => set_unless(l, &r, m, &mut caches),
                        _ => self.vector_vector(b, l, r, m, &mut caches)?,
                    };
                    out.push(v);
                }
                Ok(Val::Vector(out))
            }
            (l, r) => Err(QueryError::Eval(format!(
                "invalid operand types for binary operator {}: {} and {}",
                b.op.as_str(),
                super::val_type_name(&l),
                super::val_type_name(&r)
            ))),
        }
    }

    fn vector_scalar(
        &self,
        b: &BinaryExpr,
        v: Vec<Vec<Sv>>,
        s: &[f64],
        swap: bool,
    ) -> Vec<Vec<Sv>> {
        let mut out = Vec::with_capacity(v.len());
        for (step, sv) in v.into_iter().zip(s.iter()) {
            let mut res = Vec::with_capacity(step.len());
            for mut e in step {
                let (l, r) = if swap { (*sv, e.v) } else { (e.v, *sv) };
                let (mut val, mut keep) = elem(b.op, l, r);
                if b.op.is_comparison() && swap {
                    val = r;
                }
                if b.return_bool {
                    val = if keep { 1.0 } else { 0.0 };
                    keep = true;
                }
                if keep {
                    e.v = val;
                    if changes_schema(b.op) || b.return_bool {
                        self.drop_name(&mut e);
                    }
                    res.push(e);
                }
            }
            out.push(res);
        }
        out
    }

    fn vector_vector(
        &self,
        b: &BinaryExpr,
        lhs: Vec<Sv>,
        rhs: Vec<Sv>,
        m: &VectorMatching,
        caches: &mut Caches,
    ) -> EvalResult<Vec<Sv>> {
        if lhs.is_empty() || rhs.is_empty() {
            return Ok(Vec::new());
        }
        let one_to_many = m.card == VectorMatchCardinality::OneToMany;
        let (lhs, rhs) = if one_to_many { (rhs, lhs) } else { (lhs, rhs) };
        let mut right: IntMap<u64, &Sv> = IntMap::default();
        for rs in &rhs {
            let sig = caches.sig(&rs.labels, m);
            if let Some(dup) = right.get(&sig) {
                let side = if one_to_many { "left" } else { "right" };
                let group = match_labels(&rs.labels, m.on, &m.labels);
                let (a, c) = if dup.labels <= rs.labels {
                    (&dup.labels, &rs.labels)
                } else {
                    (&rs.labels, &dup.labels)
                };
                return Err(QueryError::Eval(format!(
                    "found duplicate series for the match group {group} on the {side} hand-side of the operation: [{a}, {c}];many-to-many matching not allowed: matching labels must be unique on one side"
                )));
            }
            right.insert(sig, rs);
        }
        let mut matched: HashMap<u64, HashSet<Labels>> = HashMap::new();
        let mut out = Vec::new();
        for ls in &lhs {
            let sig = caches.sig(&ls.labels, m);
            let Some(rs) = right.get(&sig) else {
                continue;
            };
            let (fl, fr) = if one_to_many {
                (rs.v, ls.v)
            } else {
                (ls.v, rs.v)
            };
            let (mut val, keep) = elem(b.op, fl, fr);
            if b.return_bool {
                val = if keep { 1.0 } else { 0.0 };
            }
            let mut metric = caches
                .result
                .entry((label_key(&ls.labels), label_key(&rs.labels)))
                .or_insert_with(|| result_metric(&ls.labels, &rs.labels, b.op, m))
                .clone();
            if !self.sh.opts.delayed_name_removal && b.return_bool {
                metric = metric.without_metric_name();
            }
            match m.card {
                VectorMatchCardinality::OneToOne => {
                    if matched.contains_key(&sig) {
                        return Err(QueryError::Eval(
                            "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)".to_string(),
                        ));
                    }
                    matched.insert(sig, HashSet::new());
                }
                _ => {
                    let set = matched.entry(sig).or_default();
                    if !set.insert(metric.clone()) {
                        return Err(QueryError::Eval(
                            "multiple matches for labels: grouping labels must ensure unique matches"
                                .to_string(),
                        ));
                    }
                }
            }
            if !keep && !b.return_bool {
                continue;
            }
            let drop_name = b.return_bool || (b.op.is_comparison() && ls.drop_name);
            out.push(Sv {
                labels: metric,
                v: val,
                drop_name: drop_name && self.sh.opts.delayed_name_removal,
            });
        }
        Ok(out)
    }
}

/// Prometheus's `resultMetric`.
fn result_metric(lhs: &Labels, rhs: &Labels, op: BinOp, m: &VectorMatching) -> Labels {
    let mut b = lhs.builder();
    if changes_schema(op) {
        b.del(METRIC_NAME);
    }
    if m.card == VectorMatchCardinality::OneToOne {
        if m.on {
            b.retain(|l| m.labels.iter().any(|n| *n == l.name));
        } else {
            for n in &m.labels {
                b.del(n);
            }
        }
    }
    for n in &m.include {
        match rhs.get(n) {
            Some(v) if !v.is_empty() => {
                b.set(n, v);
            }
            _ => {
                b.del(n);
            }
        }
    }
    b.labels()
}

fn set_and(lhs: Vec<Sv>, rhs: &[Sv], m: &VectorMatching, c: &mut Caches) -> Vec<Sv> {
    if lhs.is_empty() || rhs.is_empty() {
        return Vec::new();
    }
    let sigs: HashSet<u64> = rhs.iter().map(|s| c.sig(&s.labels, m)).collect();
    lhs.into_iter()
        .filter(|s| sigs.contains(&c.sig(&s.labels, m)))
        .collect()
}

fn set_or(mut lhs: Vec<Sv>, rhs: Vec<Sv>, m: &VectorMatching, c: &mut Caches) -> Vec<Sv> {
    if lhs.is_empty() {
        return rhs;
    }
    if rhs.is_empty() {
        return lhs;
    }
    let sigs: HashSet<u64> = lhs.iter().map(|s| c.sig(&s.labels, m)).collect();
    lhs.extend(
        rhs.into_iter()
            .filter(|s| !sigs.contains(&c.sig(&s.labels, m))),
    );
    lhs
}

fn set_unless(lhs: Vec<Sv>, rhs: &[Sv], m: &VectorMatching, c: &mut Caches) -> Vec<Sv> {
    if lhs.is_empty() || rhs.is_empty() {
        return lhs;
    }
    let sigs: HashSet<u64> = rhs.iter().map(|s| c.sig(&s.labels, m)).collect();
    lhs.into_iter()
        .filter(|s| !sigs.contains(&c.sig(&s.labels, m)))
        .collect()
}
