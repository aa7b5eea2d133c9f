//! Type checking, in the order and with the messages of Prometheus's `checkAST`. It also
//! settles the vector matching of binary operations: set operators become many-to-many,
//! and operations with a scalar side lose their matching clause.

use super::ParseError;
use crate::model::METRIC_NAME;
use crate::promql::ast::{AggOp, BinaryExpr, Expr, Span, ValueType, VectorMatchCardinality};

type CResult = Result<ValueType, ParseError>;

/// Checks `expr` (a tree from the parser) and returns the first problem found.
pub(crate) fn check(src: &str, expr: &mut Expr) -> Result<(), ParseError> {
    Checker { src }.check(expr).map(|_| ())
}

struct Checker<'s> {
    src: &'s str,
}

impl Checker<'_> {
    fn err(&self, span: Span, msg: impl Into<String>) -> ParseError {
        ParseError::new(self.src, span, msg)
    }

    fn expect_type(&self, e: &mut Expr, want: ValueType, context: &str) -> Result<(), ParseError> {
        let got = self.check(e)?;
        if got != want {
            return Err(self.err(
                e.span(),
                format!(
                    "expected type {} in {context}, got {}",
                    want.documented_name(),
                    got.documented_name()
                ),
            ));
        }
        Ok(())
    }

    /// The span of the operator of a binary expression (between the operands).
    fn op_span(&self, b: &BinaryExpr) -> Span {
        let bytes = self.src.as_bytes();
        let mut start = b.lhs.span().end as usize;
        let mut end = (b.rhs.span().start as usize).max(start);
        while start < end && bytes.get(start).is_some_and(|c| c.is_ascii_whitespace()) {
            start += 1;
        }
        while end > start && bytes.get(end - 1).is_some_and(|c| c.is_ascii_whitespace()) {
            end -= 1;
        }
        Span::new(start, end)
    }

    fn check(&self, e: &mut Expr) -> CResult {
        let typ = e.value_type();
        match e {
            Expr::Number { .. } | Expr::String { .. } => {}
            Expr::Paren { expr, .. } => {
                self.check(expr)?;
            }
            Expr::Unary { expr, span, .. } => {
                let t = self.check(expr)?;
                if t != ValueType::Scalar && t != ValueType::Vector {
                    return Err(self.err(
                        *span,
                        format!(
                            "unary expression only allowed on expressions of type scalar or instant vector, got {:?}",
                            t.documented_name()
                        ),
                    ));
                }
            }
            Expr::Subquery(s) => {
                let t = self.check(&mut s.expr)?;
                if t != ValueType::Vector {
                    return Err(self.err(
                        s.span,
                        format!(
                            "subquery is only allowed on instant vector, got {} instead",
                            t.short_name()
                        ),
                    ));
                }
            }
            Expr::Matrix(m) => {
                self.check_selector(&m.vs.name, &m.vs.matchers, m.vs.span)?;
            }
            Expr::Vector(vs) => {
                self.check_selector(&vs.name, &vs.matchers, vs.span)?;
            }
            Expr::Aggregate(a) => {
                self.expect_type(&mut a.expr, ValueType::Vector, "aggregation expression")?;
                if let (Some(want), Some(p)) = (a.op.param_type(), a.param.as_mut()) {
                    self.expect_type(p, want, "aggregation parameter")?;
                }
                debug_assert!(a.op != AggOp::CountValues || a.param.is_some());
            }
            Expr::Call(c) => {
                let f = c.func;
                let n = c.args.len();
                let min = f.min_args();
                if !f.is_variadic() {
                    if n != min {
                        return Err(self.err(
                            c.span,
                            format!(
                                "expected {min} argument(s) in call to {:?}, got {n}",
                                f.name()
                            ),
                        ));
                    }
                } else if n < min {
                    return Err(self.err(
                        c.span,
                        format!(
                            "expected at least {min} argument(s) in call to {:?}, got {n}",
                            f.name()
                        ),
                    ));
                } else if let Some(max) = f.max_args().filter(|m| n > *m) {
                    return Err(self.err(
                        c.span,
                        format!(
                            "expected at most {max} argument(s) in call to {:?}, got {n}",
                            f.name()
                        ),
                    ));
                }
                for (i, arg) in c.args.iter_mut().enumerate() {
                    let Some(want) = f.arg_type(i) else {
                        break;
                    };
                    let got = self.check(arg)?;
                    if got != want {
                        return Err(self.err(
                            arg.span(),
                            format!(
                                "expected type {} in call to function {:?}, got {}",
                                want.documented_name(),
                                f.name(),
                                got.documented_name()
                            ),
                        ));
                    }
                }
            }
            Expr::Binary(b) => self.check_binary(b)?,
        }
        Ok(typ)
    }

    fn check_selector(
        &self,
        name: &Option<String>,
        matchers: &[crate::model::Matcher],
        span: Span,
    ) -> Result<(), ParseError> {
        if let Some(n) = name {
            let before_last = matchers.len().saturating_sub(1);
            for m in matchers.iter().take(before_last) {
                if m.name == METRIC_NAME {
                    return Err(self.err(
                        span,
                        format!("metric name must not be set twice: {n:?} or {:?}", m.value),
                    ));
                }
            }
            return Ok(());
        }
        if !matchers.iter().any(|m| !m.matches_empty()) {
            return Err(self.err(
                span,
                "vector selector must contain at least one non-empty matcher",
            ));
        }
        Ok(())
    }

    fn check_binary(&self, b: &mut BinaryExpr) -> Result<(), ParseError> {
        let lt = self.check(&mut b.lhs)?;
        let rt = self.check(&mut b.rhs)?;
        let op = b.op;
        if b.return_bool && !op.is_comparison() {
            return Err(self.err(
                self.op_span(b),
                "bool modifier can only be used on comparison operators",
            ));
        }
        if op.is_comparison()
            && !b.return_bool
            && lt == ValueType::Scalar
            && rt == ValueType::Scalar
        {
            return Err(self.err(
                self.op_span(b),
                "comparisons between scalars must use BOOL modifier",
            ));
        }
        if let Some(m) = b.matching.as_mut() {
            if op.is_set_op() && m.card == VectorMatchCardinality::OneToOne {
                m.card = VectorMatchCardinality::ManyToMany;
            }
        }
        if let Some(m) = &b.matching {
            if m.on {
                for l in &m.labels {
                    if m.include.contains(l) {
                        return Err(self.err(
                            self.op_span(b),
                            format!("label {l:?} must not occur in ON and GROUP clause at once"),
                        ));
                    }
                }
            }
        }
        if lt != ValueType::Scalar && lt != ValueType::Vector {
            return Err(self.err(
                b.lhs.span(),
                "binary expression must contain only scalar and instant vector types",
            ));
        }
        if rt != ValueType::Scalar && rt != ValueType::Vector {
            return Err(self.err(
                b.rhs.span(),
                "binary expression must contain only scalar and instant vector types",
            ));
        }
        let both_vectors = lt == ValueType::Vector && rt == ValueType::Vector;
        if !both_vectors {
            if b.matching.as_ref().is_some_and(|m| !m.labels.is_empty()) {
                return Err(self.err(
                    b.span,
                    "vector matching only allowed between instant vectors",
                ));
            }
            b.matching = None;
        } else if op.is_set_op() {
            if let Some(m) = &b.matching {
                if matches!(
                    m.card,
                    VectorMatchCardinality::OneToMany | VectorMatchCardinality::ManyToOne
                ) {
                    return Err(self.err(
                        b.span,
                        format!("no grouping allowed for {:?} operation", op.as_str()),
                    ));
                }
                if m.card != VectorMatchCardinality::ManyToMany {
                    return Err(self.err(b.span, "set operations must always be many-to-many"));
                }
            }
        }
        if (lt == ValueType::Scalar || rt == ValueType::Scalar) && op.is_set_op() {
            return Err(self.err(
                b.span,
                format!(
                    "set operator {:?} not allowed in binary scalar expression",
                    op.as_str()
                ),
            ));
        }
        Ok(())
    }
}
