//! Expressions: binary operators by precedence climbing, unary operators, parentheses,
//! literals, aggregations and function calls.

use super::lexer::Tk;
use super::literal::{duration_ms, number_value};
use super::{Node, ParseError, Parser};
use crate::promql::ast::{
    AggOp, AggregateExpr, BinOp, BinaryExpr, Call, Expr, Grouping, Span, UnaryOp,
    VectorMatchCardinality, VectorMatching,
};
use crate::promql::func::Func;

type PResult<T> = Result<T, ParseError>;

/// Binding strength of unary `+`/`-`: like `*`, so only `^` binds tighter.
const UNARY_OPERAND_PREC: u8 = 6;

/// The binary operator a token stands for.
pub(crate) fn binop_of(kind: Tk) -> Option<BinOp> {
    Some(match kind {
        Tk::Add => BinOp::Add,
        Tk::Sub => BinOp::Sub,
        Tk::Mul => BinOp::Mul,
        Tk::Div => BinOp::Div,
        Tk::Mod => BinOp::Mod,
        Tk::Pow => BinOp::Pow,
        Tk::Atan2 => BinOp::Atan2,
        Tk::Eqlc => BinOp::Eql,
        Tk::Neq => BinOp::Neq,
        Tk::Gtr => BinOp::Gtr,
        Tk::Lss => BinOp::Lss,
        Tk::Gte => BinOp::Gte,
        Tk::Lte => BinOp::Lte,
        Tk::And => BinOp::And,
        Tk::Or => BinOp::Or,
        Tk::Unless => BinOp::Unless,
        _ => return None,
    })
}

/// Whether `kind` may come right after a vector selector. An aggregation keyword
/// followed by anything else is parsed as an aggregation (so that `sum foo` reports
/// "unexpected identifier "foo" in aggregation", as Prometheus does).
fn can_follow_selector(kind: Tk) -> bool {
    binop_of(kind).is_some()
        || matches!(
            kind,
            Tk::LBracket
                | Tk::LBrace
                | Tk::Offset
                | Tk::At
                | Tk::RParen
                | Tk::RBracket
                | Tk::Comma
                | Tk::Colon
                | Tk::Eof
                | Tk::Error
        )
}

/// A placeholder returned after an error was recorded with [`Parser::defer`]; it never
/// reaches the caller of `parse`.
fn placeholder(span: Span) -> Node {
    (Expr::Number { val: 0.0, span }, 1)
}

impl<'a> Parser<'a> {
    /// `expr` with binary operators of precedence `min_prec` or higher.
    pub(crate) fn expr(&mut self, min_prec: u8) -> PResult<Node> {
        self.enter()?;
        let r = self.binary_expr(min_prec);
        self.leave();
        r
    }

    fn binary_expr(&mut self, min_prec: u8) -> PResult<Node> {
        let (mut lhs, mut lh) = self.unary_expr()?;
        while let Some(op) = binop_of(self.kind()) {
            let prec = op.precedence();
            if prec < min_prec {
                break;
            }
            self.bump();
            let (return_bool, matching) = self.bin_modifiers()?;
            let next_min = if op.is_right_associative() {
                prec
            } else {
                prec + 1
            };
            let (rhs, rh) = self.expr(next_min)?;
            let span = lhs.span().to(rhs.span());
            let h = lh.max(rh) + 1;
            self.check_height(h, span)?;
            lhs = Expr::Binary(BinaryExpr {
                op,
                lhs: Box::new(lhs),
                rhs: Box::new(rhs),
                return_bool,
                matching: Some(matching),
                span,
            });
            lh = h;
        }
        Ok((lhs, lh))
    }

    /// `[bool] [on|ignoring (labels) [group_left|group_right [(labels)]]]`
    fn bin_modifiers(&mut self) -> PResult<(bool, VectorMatching)> {
        let mut return_bool = false;
        if self.kind() == Tk::Bool {
            self.bump();
            return_bool = true;
        }
        let mut m = VectorMatching::default_for(VectorMatchCardinality::OneToOne);
        if matches!(self.kind(), Tk::On | Tk::Ignoring) {
            m.on = self.bump().kind == Tk::On;
            m.labels = self.grouping_labels()?;
            if matches!(self.kind(), Tk::GroupLeft | Tk::GroupRight) {
                m.card = if self.bump().kind == Tk::GroupLeft {
                    VectorMatchCardinality::ManyToOne
                } else {
                    VectorMatchCardinality::OneToMany
                };
                if self.kind() == Tk::LParen {
                    m.include = self.grouping_labels()?;
                }
            }
        }
        Ok((return_bool, m))
    }

    /// `(label, ...)` with an optional trailing comma; labels may be keywords or quoted.
    pub(crate) fn grouping_labels(&mut self) -> PResult<Vec<String>> {
        if self.kind() != Tk::LParen {
            return Err(self.unexpected("grouping opts", "\"(\""));
        }
        self.bump();
        let mut labels = Vec::new();
        loop {
            if self.kind() == Tk::RParen {
                self.bump();
                return Ok(labels);
            }
            let t = self.peek();
            let label = match t.kind {
                Tk::Str if t.value.is_empty() => {
                    let span = Span::new(t.start, t.end);
                    self.defer(span, "invalid label name for grouping: \"\"");
                    String::new()
                }
                Tk::Str => t.value.clone(),
                Tk::Ident
                | Tk::Agg(_)
                | Tk::Bool
                | Tk::By
                | Tk::Without
                | Tk::On
                | Tk::Ignoring
                | Tk::GroupLeft
                | Tk::GroupRight
                | Tk::And
                | Tk::Or
                | Tk::Unless
                | Tk::Offset
                | Tk::Start
                | Tk::End
                | Tk::Atan2
                | Tk::MetricIdent => t.text.to_string(),
                _ => return Err(self.unexpected("grouping opts", "label")),
            };
            self.bump();
            labels.push(label);
            match self.kind() {
                Tk::Comma => {
                    self.bump();
                }
                Tk::RParen => {}
                _ => return Err(self.unexpected("grouping opts", "\",\" or \")\"")),
            }
        }
    }

    /// Unary `+`/`-` (binding like `*`), or a primary expression with its modifiers.
    fn unary_expr(&mut self) -> PResult<Node> {
        let op = match self.kind() {
            Tk::Add => UnaryOp::Pos,
            Tk::Sub => UnaryOp::Neg,
            _ => return self.postfix_expr(),
        };
        let t = self.bump();
        let (operand, h) = self.expr(UNARY_OPERAND_PREC)?;
        let span = Span::new(t.start, t.end).to(operand.span());
        Ok(match operand {
            // A sign directly on a number literal folds into the literal.
            Expr::Number { val, .. } => {
                let val = if op == UnaryOp::Neg { -val } else { val };
                (Expr::Number { val, span }, h)
            }
            operand => {
                let h = h + 1;
                self.check_height(h, span)?;
                (
                    Expr::Unary {
                        op,
                        expr: Box::new(operand),
                        span,
                    },
                    h,
                )
            }
        })
    }

    /// A primary expression followed by any number of `[...]`, `offset` and `@`.
    fn postfix_expr(&mut self) -> PResult<Node> {
        let (mut e, mut h) = self.primary()?;
        loop {
            match self.kind() {
                Tk::LBracket => {
                    let (ne, nh) = self.range_or_subquery(e, h)?;
                    e = ne;
                    h = nh;
                }
                Tk::Offset => e = self.offset_modifier(e)?,
                Tk::At => e = self.at_modifier(e)?,
                _ => return Ok((e, h)),
            }
        }
    }

    fn primary(&mut self) -> PResult<Node> {
        let t = self.peek().clone();
        let span = Span::new(t.start, t.end);
        match t.kind {
            Tk::Number => {
                self.bump();
                let val = match number_value(t.text) {
                    Ok(v) => v,
                    Err(msg) => {
                        self.defer(span, msg);
                        0.0
                    }
                };
                Ok((Expr::Number { val, span }, 1))
            }
            Tk::Duration => {
                self.bump();
                let val = match duration_ms(t.text) {
                    Ok(ms) => ms as f64 / 1000.0,
                    Err(msg) => {
                        self.defer(span, msg);
                        0.0
                    }
                };
                Ok((Expr::Number { val, span }, 1))
            }
            Tk::Str => {
                self.bump();
                Ok((Expr::String { val: t.value, span }, 1))
            }
            Tk::LParen => self.paren_expr(),
            Tk::LBrace => self.vector_selector(None),
            Tk::Ident if self.kind_at(1) == Tk::LParen => self.function_call(),
            Tk::Agg(op) if !can_follow_selector(self.kind_at(1)) => self.aggregate_expr(op),
            Tk::Ident
            | Tk::MetricIdent
            | Tk::Agg(_)
            | Tk::By
            | Tk::Without
            | Tk::And
            | Tk::Or
            | Tk::Unless
            | Tk::Offset
            | Tk::Start
            | Tk::End => {
                let name = self.bump();
                self.vector_selector(Some(name))
            }
            _ => Err(self.unexpected("", "")),
        }
    }

    fn paren_expr(&mut self) -> PResult<Node> {
        let open = self.bump();
        // Parentheses count twice towards the nesting limit, like calls: each level
        // costs more stack than a unary operator.
        self.enter()?;
        let inner = self.expr(0);
        self.leave();
        let (inner, h) = inner?;
        if self.kind() != Tk::RParen {
            return Err(self.unexpected("", ""));
        }
        let close = self.bump();
        let span = Span::new(open.start, close.end);
        let h = h + 1;
        self.check_height(h, span)?;
        Ok((
            Expr::Paren {
                expr: Box::new(inner),
                span,
            },
            h,
        ))
    }

    /// `( [expr {, expr}] )`. Returns the arguments, the height of the tallest one and
    /// the end offset of the closing parenthesis.
    fn call_args(&mut self, context: &str) -> PResult<(Vec<Expr>, usize, usize)> {
        if self.kind() != Tk::LParen {
            return Err(self.unexpected(context, ""));
        }
        self.bump();
        let mut args = Vec::new();
        let mut h = 0;
        if self.kind() == Tk::RParen {
            let close = self.bump();
            return Ok((args, h, close.end));
        }
        loop {
            let (a, ah) = self.expr(0)?;
            args.push(a);
            h = h.max(ah);
            match self.kind() {
                Tk::Comma => {
                    let comma = self.bump();
                    if self.kind() == Tk::RParen {
                        self.defer(
                            Span::new(comma.start, comma.end),
                            "trailing commas not allowed in function call args",
                        );
                        let close = self.bump();
                        return Ok((args, h, close.end));
                    }
                }
                Tk::RParen => {
                    let close = self.bump();
                    return Ok((args, h, close.end));
                }
                _ => return Err(self.unexpected(context, "")),
            }
        }
    }

    fn function_call(&mut self) -> PResult<Node> {
        let name = self.bump();
        let func = Func::from_name(name.text);
        if func.is_none() {
            self.defer(
                Span::new(name.start, name.end),
                format!("unknown function with name {:?}", name.text),
            );
        }
        self.enter()?;
        let res = self.call_args("");
        self.leave();
        let (args, h, end) = res?;
        let span = Span::new(name.start, end);
        let Some(func) = func else {
            return Ok(placeholder(span));
        };
        let h = h + 1;
        self.check_height(h, span)?;
        Ok((Expr::Call(Call { func, args, span }), h))
    }

    fn aggregate_expr(&mut self, op: AggOp) -> PResult<Node> {
        let op_tok = self.bump();
        let mut grouping = None;
        let mut end;
        if matches!(self.kind(), Tk::By | Tk::Without) {
            grouping = Some(self.aggregate_modifier()?);
        }
        self.enter()?;
        let res = self.call_args("");
        self.leave();
        let (mut args, h, close) = res?;
        end = close;
        if grouping.is_none() && matches!(self.kind(), Tk::By | Tk::Without) {
            grouping = Some(self.aggregate_modifier()?);
            end = self
                .toks
                .get(self.pos.saturating_sub(1))
                .map_or(end, |t| t.end);
        }
        let span = Span::new(op_tok.start, end);
        if args.is_empty() {
            self.defer(span, "no arguments for aggregate expression provided");
            return Ok(placeholder(span));
        }
        let want = if op.has_param() { 2 } else { 1 };
        if args.len() != want {
            self.defer(
                span,
                format!(
                    "wrong number of arguments for aggregate expression provided, expected {want}, got {}",
                    args.len()
                ),
            );
            return Ok(placeholder(span));
        }
        let expr = args.pop().map(Box::new);
        let param = args.pop().map(Box::new);
        let Some(expr) = expr else {
            return Ok(placeholder(span));
        };
        let h = h + 1;
        self.check_height(h, span)?;
        Ok((
            Expr::Aggregate(AggregateExpr {
                op,
                expr,
                param,
                grouping: grouping.unwrap_or(Grouping::None),
                span,
            }),
            h,
        ))
    }

    /// `by (labels)` or `without (labels)`; `by ()` is the same as no clause.
    fn aggregate_modifier(&mut self) -> PResult<Grouping> {
        let without = self.bump().kind == Tk::Without;
        let labels = self.grouping_labels()?;
        Ok(if without {
            Grouping::Without(labels)
        } else if labels.is_empty() {
            Grouping::None
        } else {
            Grouping::By(labels)
        })
    }
}
