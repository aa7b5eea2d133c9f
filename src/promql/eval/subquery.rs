//! Subqueries: the inner expression is evaluated once over all the aligned inner steps
//! the outer steps need, then windowed like a range selector.

use super::selectors::RangeInput;
use super::{steps_to_series, EvalResult, Evaluator, MSeries, Val};
use crate::model::{Labels, Sample};
use crate::promql::ast::SubqueryExpr;
use crate::promql::engine::QueryError;

impl<'s, 'a> Evaluator<'s, 'a> {
    /// Evaluates the inner expression of `sq` at every aligned inner step that any outer
    /// step's window `(te - range, te]` contains. Names marked for removal inside the
    /// subquery are removed from its result.
    pub(crate) fn range_input_subquery(&self, sq: &SubqueryExpr) -> EvalResult<RangeInput> {
        let step = sq.step_ms.unwrap_or(self.sh.opts.default_subquery_step_ms);
        if step <= 0 {
            return Err(QueryError::Eval(
                "zero or negative subquery step is not allowed".to_string(),
            ));
        }
        let at = self.at_ms(sq.at);
        let (ostart, oend) = match at {
            Some(a) => (a, a),
            None => (self.start, self.end),
        };
        let first = ostart
            .saturating_sub(sq.offset_ms)
            .saturating_sub(sq.range_ms);
        let mut inner_start = step * (first / step);
        if inner_start <= first {
            inner_start = inner_start.saturating_add(step);
        }
        let inner_end = oend.saturating_sub(sq.offset_ms);
        let series = if inner_end < inner_start {
            Vec::new()
        } else {
            super::check_steps(inner_start, inner_end, step)?;
            let sub = self.with_range(inner_start, inner_end, step);
            match sub.eval(&sq.expr)? {
                Val::Vector(steps) => steps_to_series(sub.start, sub.step, steps)?,
                Val::Scalar(vals) => {
                    let samples: Vec<Sample> = vals
                        .iter()
                        .enumerate()
                        .map(|(i, v)| Sample::new(sub.t(i), *v))
                        .collect();
                    vec![MSeries {
                        labels: Labels::empty(),
                        samples,
                        drop_name: false,
                    }]
                }
                _ => {
                    return Err(QueryError::Eval(
                        "subquery is only allowed on instant vector or scalar".to_string(),
                    ))
                }
            }
        };
        Ok(RangeInput {
            series,
            range: sq.range_ms,
            at,
            offset: sq.offset_ms,
        })
    }

    /// A subquery as a query result (instant queries only).
    pub(crate) fn eval_subquery_top(&self, sq: &SubqueryExpr) -> EvalResult<Val> {
        let input = self.range_input_subquery(sq)?;
        let mut m = self.range_input_to_matrix(input);
        m.sort_by(|a, b| a.labels.cmp(&b.labels));
        Ok(Val::Matrix(m))
    }
}
