//! The PromQL expression tree produced by [`crate::promql::parse`].
//!
//! The tree is fully type-checked when the parser returns it: every operand has the type
//! its operator or function expects. Spans are byte offsets into the original query.
//! [`std::fmt::Display`] prints valid PromQL in Prometheus's canonical style that parses
//! back to an equal tree (spans aside).

use std::fmt;

use crate::model::{MatchOp, Matcher, METRIC_NAME};
use crate::promql::func::Func;

/// A byte range `[start, end)` in the query text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Span {
    /// First byte.
    pub start: u32,
    /// One past the last byte.
    pub end: u32,
}

impl Span {
    /// A span from `start` to `end` (byte offsets).
    pub fn new(start: usize, end: usize) -> Self {
        Span {
            start: u32::try_from(start).unwrap_or(u32::MAX),
            end: u32::try_from(end).unwrap_or(u32::MAX),
        }
    }

    /// The smallest span covering both.
    pub fn to(self, other: Span) -> Span {
        Span {
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }

    /// 1-based line and column of `start` in `query`, exactly as Prometheus prints
    /// positions (`1:5`): the column counts bytes from the start of the line, so it
    /// equals the character column for ASCII text.
    pub fn line_col(&self, query: &str) -> (usize, usize) {
        line_col(query, self.start as usize)
    }
}

/// 1-based line and byte column of byte offset `pos` in `query` (Prometheus's
/// `StartPosInput`).
pub(crate) fn line_col(query: &str, pos: usize) -> (usize, usize) {
    let bytes = query.as_bytes();
    let pos = pos.min(bytes.len());
    let before = bytes.get(..pos).unwrap_or_default();
    let line = 1 + before.iter().filter(|b| **b == b'\n').count();
    let col = match before.iter().rposition(|b| *b == b'\n') {
        Some(nl) => pos - nl,
        None => pos + 1,
    };
    (line, col)
}

/// The type of value an expression evaluates to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueType {
    /// A single float.
    Scalar,
    /// An instant vector.
    Vector,
    /// A range vector.
    Matrix,
    /// A string.
    String,
}

impl ValueType {
    /// The name Prometheus uses in error messages (`instant vector`, `range vector`, ...).
    pub fn documented_name(self) -> &'static str {
        match self {
            ValueType::Scalar => "scalar",
            ValueType::Vector => "instant vector",
            ValueType::Matrix => "range vector",
            ValueType::String => "string",
        }
    }

    /// The short name used by Prometheus in some messages (`scalar`, `vector`, `matrix`).
    pub fn short_name(self) -> &'static str {
        match self {
            ValueType::Scalar => "scalar",
            ValueType::Vector => "vector",
            ValueType::Matrix => "matrix",
            ValueType::String => "string",
        }
    }
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.documented_name())
    }
}

/// The `@` modifier of a selector or subquery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AtModifier {
    /// `@ <seconds>`, stored in milliseconds.
    Timestamp(i64),
    /// `@ start()`
    Start,
    /// `@ end()`
    End,
}

/// An instant vector selector: `name{matchers} offset d @ t`.
#[derive(Clone, Debug, PartialEq)]
pub struct VectorSelector {
    /// The metric name, when given outside the braces (or as a bare quoted string inside).
    pub name: Option<String>,
    /// All matchers, including the `__name__="x"` matcher when a name is given.
    pub matchers: Vec<Matcher>,
    /// `offset`, in milliseconds (negative allowed).
    pub offset_ms: i64,
    /// `@` modifier.
    pub at: Option<AtModifier>,
    /// Position of the selector (name and braces; modifiers excluded).
    pub span: Span,
}

/// A range vector selector: `selector[range]`.
#[derive(Clone, Debug, PartialEq)]
pub struct MatrixSelector {
    /// The underlying selector, carrying offset and `@`.
    pub vs: VectorSelector,
    /// The range, in milliseconds.
    pub range_ms: i64,
    /// Position of the whole selector including the range.
    pub span: Span,
}

/// A subquery: `expr[range:step]`.
#[derive(Clone, Debug, PartialEq)]
pub struct SubqueryExpr {
    /// The inner instant-vector expression.
    pub expr: Box<Expr>,
    /// The range, in milliseconds.
    pub range_ms: i64,
    /// The step, in milliseconds; `None` uses the engine's default.
    pub step_ms: Option<i64>,
    /// `offset`, in milliseconds.
    pub offset_ms: i64,
    /// `@` modifier.
    pub at: Option<AtModifier>,
    /// Position of the whole subquery.
    pub span: Span,
}

/// A unary operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnaryOp {
    /// `-`
    Neg,
    /// `+`
    Pos,
}

impl UnaryOp {
    /// The operator symbol.
    pub fn as_str(self) -> &'static str {
        match self {
            UnaryOp::Neg => "-",
            UnaryOp::Pos => "+",
        }
    }
}

/// A binary operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `%`
    Mod,
    /// `^`
    Pow,
    /// `atan2`
    Atan2,
    /// `==`
    Eql,
    /// `!=`
    Neq,
    /// `>`
    Gtr,
    /// `<`
    Lss,
    /// `>=`
    Gte,
    /// `<=`
    Lte,
    /// `and`
    And,
    /// `or`
    Or,
    /// `unless`
    Unless,
}

impl BinOp {
    /// Whether this is a comparison operator (`==`, `!=`, `>`, `<`, `>=`, `<=`).
    pub fn is_comparison(self) -> bool {
        matches!(
            self,
            BinOp::Eql | BinOp::Neq | BinOp::Gtr | BinOp::Lss | BinOp::Gte | BinOp::Lte
        )
    }

    /// Whether this is a set operator (`and`, `or`, `unless`).
    pub fn is_set_op(self) -> bool {
        matches!(self, BinOp::And | BinOp::Or | BinOp::Unless)
    }

    /// Binding strength: higher binds tighter (`or` = 1 ... `^` = 6).
    pub fn precedence(self) -> u8 {
        match self {
            BinOp::Or => 1,
            BinOp::And | BinOp::Unless => 2,
            BinOp::Eql | BinOp::Neq | BinOp::Gtr | BinOp::Lss | BinOp::Gte | BinOp::Lte => 3,
            BinOp::Add | BinOp::Sub => 4,
            BinOp::Mul | BinOp::Div | BinOp::Mod | BinOp::Atan2 => 5,
            BinOp::Pow => 6,
        }
    }

    /// Whether the operator associates to the right (only `^`).
    pub fn is_right_associative(self) -> bool {
        self == BinOp::Pow
    }

    /// The operator as written in PromQL.
    pub fn as_str(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Mod => "%",
            BinOp::Pow => "^",
            BinOp::Atan2 => "atan2",
            BinOp::Eql => "==",
            BinOp::Neq => "!=",
            BinOp::Gtr => ">",
            BinOp::Lss => "<",
            BinOp::Gte => ">=",
            BinOp::Lte => "<=",
            BinOp::And => "and",
            BinOp::Or => "or",
            BinOp::Unless => "unless",
        }
    }
}

impl fmt::Display for BinOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How series on both sides of a vector-vector operation are matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VectorMatchCardinality {
    /// Default matching.
    OneToOne,
    /// `group_left`
    ManyToOne,
    /// `group_right`
    OneToMany,
    /// Set operators.
    ManyToMany,
}

/// The matching clause of a vector-vector binary operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VectorMatching {
    /// Cardinality.
    pub card: VectorMatchCardinality,
    /// `true` for `on(labels)`, `false` for `ignoring(labels)` (and for the default).
    pub on: bool,
    /// The `on`/`ignoring` labels.
    pub labels: Vec<String>,
    /// The extra labels of `group_left(...)`/`group_right(...)`.
    pub include: Vec<String>,
}

impl VectorMatching {
    /// Default matching for the given cardinality: `ignoring()`, no extra labels.
    pub fn default_for(card: VectorMatchCardinality) -> Self {
        VectorMatching {
            card,
            on: false,
            labels: Vec::new(),
            include: Vec::new(),
        }
    }
}

/// A binary operation.
#[derive(Clone, Debug, PartialEq)]
pub struct BinaryExpr {
    /// The operator.
    pub op: BinOp,
    /// Left operand.
    pub lhs: Box<Expr>,
    /// Right operand.
    pub rhs: Box<Expr>,
    /// `bool` modifier on a comparison.
    pub return_bool: bool,
    /// Matching clause: `Some` exactly when both operands are instant vectors.
    pub matching: Option<VectorMatching>,
    /// Position of the whole operation.
    pub span: Span,
}

/// An aggregation operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AggOp {
    /// `sum`
    Sum,
    /// `min`
    Min,
    /// `max`
    Max,
    /// `avg`
    Avg,
    /// `count`
    Count,
    /// `group`
    Group,
    /// `stddev`
    Stddev,
    /// `stdvar`
    Stdvar,
    /// `topk`
    Topk,
    /// `bottomk`
    Bottomk,
    /// `quantile`
    Quantile,
    /// `count_values`
    CountValues,
    /// `limitk`
    Limitk,
    /// `limit_ratio`
    LimitRatio,
}

impl AggOp {
    /// All aggregation operators.
    pub const ALL: [AggOp; 14] = [
        AggOp::Sum,
        AggOp::Min,
        AggOp::Max,
        AggOp::Avg,
        AggOp::Count,
        AggOp::Group,
        AggOp::Stddev,
        AggOp::Stdvar,
        AggOp::Topk,
        AggOp::Bottomk,
        AggOp::Quantile,
        AggOp::CountValues,
        AggOp::Limitk,
        AggOp::LimitRatio,
    ];

    /// The operator's name.
    pub fn name(self) -> &'static str {
        match self {
            AggOp::Sum => "sum",
            AggOp::Min => "min",
            AggOp::Max => "max",
            AggOp::Avg => "avg",
            AggOp::Count => "count",
            AggOp::Group => "group",
            AggOp::Stddev => "stddev",
            AggOp::Stdvar => "stdvar",
            AggOp::Topk => "topk",
            AggOp::Bottomk => "bottomk",
            AggOp::Quantile => "quantile",
            AggOp::CountValues => "count_values",
            AggOp::Limitk => "limitk",
            AggOp::LimitRatio => "limit_ratio",
        }
    }

    /// Looks an operator up by name (case-insensitive, as Prometheus's lexer does).
    pub fn from_name(name: &str) -> Option<AggOp> {
        AggOp::ALL
            .into_iter()
            .find(|op| op.name().eq_ignore_ascii_case(name))
    }

    /// Whether the operator takes a parameter before the vector.
    pub fn has_param(self) -> bool {
        self.param_type().is_some()
    }

    /// The parameter type, for operators that take one.
    pub fn param_type(self) -> Option<ValueType> {
        match self {
            AggOp::Topk | AggOp::Bottomk | AggOp::Quantile | AggOp::Limitk | AggOp::LimitRatio => {
                Some(ValueType::Scalar)
            }
            AggOp::CountValues => Some(ValueType::String),
            _ => None,
        }
    }
}

impl fmt::Display for AggOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The grouping clause of an aggregation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Grouping {
    /// No clause (or `by ()`): aggregate everything into one group.
    None,
    /// `by (labels)`
    By(Vec<String>),
    /// `without (labels)`
    Without(Vec<String>),
}

/// An aggregation: `op [by|without (labels)] ([param,] expr)`.
#[derive(Clone, Debug, PartialEq)]
pub struct AggregateExpr {
    /// The operator.
    pub op: AggOp,
    /// The aggregated instant vector.
    pub expr: Box<Expr>,
    /// The parameter of `topk`, `bottomk`, `quantile`, `count_values`, `limitk`,
    /// `limit_ratio`.
    pub param: Option<Box<Expr>>,
    /// Grouping clause.
    pub grouping: Grouping,
    /// Position of the whole aggregation.
    pub span: Span,
}

/// A function call.
#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    /// The function.
    pub func: Func,
    /// Arguments, already checked against the function's signature.
    pub args: Vec<Expr>,
    /// Position of the whole call.
    pub span: Span,
}

/// A PromQL expression.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// A number literal (unary minus on a literal is folded into it).
    Number {
        /// The value.
        val: f64,
        /// Position.
        span: Span,
    },
    /// A string literal.
    String {
        /// The unescaped value.
        val: String,
        /// Position.
        span: Span,
    },
    /// An instant vector selector.
    Vector(VectorSelector),
    /// A range vector selector.
    Matrix(MatrixSelector),
    /// A subquery.
    Subquery(SubqueryExpr),
    /// A parenthesised expression.
    Paren {
        /// The inner expression.
        expr: Box<Expr>,
        /// Position including the parentheses.
        span: Span,
    },
    /// A unary operation.
    Unary {
        /// The operator.
        op: UnaryOp,
        /// The operand.
        expr: Box<Expr>,
        /// Position.
        span: Span,
    },
    /// A binary operation.
    Binary(BinaryExpr),
    /// An aggregation.
    Aggregate(AggregateExpr),
    /// A function call.
    Call(Call),
}

impl Expr {
    /// The type of value this expression evaluates to.
    pub fn value_type(&self) -> ValueType {
        match self {
            Expr::Number { .. } => ValueType::Scalar,
            Expr::String { .. } => ValueType::String,
            Expr::Vector(_) => ValueType::Vector,
            Expr::Matrix(_) | Expr::Subquery(_) => ValueType::Matrix,
            Expr::Paren { expr, .. } | Expr::Unary { expr, .. } => expr.value_type(),
            Expr::Binary(b) => {
                if b.lhs.value_type() == ValueType::Scalar
                    && b.rhs.value_type() == ValueType::Scalar
                {
                    ValueType::Scalar
                } else {
                    ValueType::Vector
                }
            }
            Expr::Aggregate(_) => ValueType::Vector,
            Expr::Call(c) => c.func.return_type(),
        }
    }

    /// The expression's position in the query.
    pub fn span(&self) -> Span {
        match self {
            Expr::Number { span, .. }
            | Expr::String { span, .. }
            | Expr::Paren { span, .. }
            | Expr::Unary { span, .. } => *span,
            Expr::Vector(v) => v.span,
            Expr::Matrix(m) => m.span,
            Expr::Subquery(s) => s.span,
            Expr::Binary(b) => b.span,
            Expr::Aggregate(a) => a.span,
            Expr::Call(c) => c.span,
        }
    }

    /// Mutable access to the expression's span.
    pub fn span_mut(&mut self) -> &mut Span {
        match self {
            Expr::Number { span, .. }
            | Expr::String { span, .. }
            | Expr::Paren { span, .. }
            | Expr::Unary { span, .. } => span,
            Expr::Vector(v) => &mut v.span,
            Expr::Matrix(m) => &mut m.span,
            Expr::Subquery(s) => &mut s.span,
            Expr::Binary(b) => &mut b.span,
            Expr::Aggregate(a) => &mut a.span,
            Expr::Call(c) => &mut c.span,
        }
    }

    /// The direct children, in evaluation order.
    pub fn children(&self) -> Vec<&Expr> {
        match self {
            Expr::Number { .. } | Expr::String { .. } | Expr::Vector(_) | Expr::Matrix(_) => {
                Vec::new()
            }
            Expr::Subquery(s) => vec![&*s.expr],
            Expr::Paren { expr, .. } | Expr::Unary { expr, .. } => vec![&**expr],
            Expr::Binary(b) => vec![&*b.lhs, &*b.rhs],
            Expr::Aggregate(a) => match &a.param {
                Some(p) => vec![&**p, &*a.expr],
                None => vec![&*a.expr],
            },
            Expr::Call(c) => c.args.iter().collect(),
        }
    }

    /// The direct children, mutably, in evaluation order.
    pub fn children_mut(&mut self) -> Vec<&mut Expr> {
        match self {
            Expr::Number { .. } | Expr::String { .. } | Expr::Vector(_) | Expr::Matrix(_) => {
                Vec::new()
            }
            Expr::Subquery(s) => vec![&mut *s.expr],
            Expr::Paren { expr, .. } | Expr::Unary { expr, .. } => vec![&mut **expr],
            Expr::Binary(b) => vec![&mut *b.lhs, &mut *b.rhs],
            Expr::Aggregate(a) => match &mut a.param {
                Some(p) => vec![&mut **p, &mut *a.expr],
                None => vec![&mut *a.expr],
            },
            Expr::Call(c) => c.args.iter_mut().collect(),
        }
    }

    /// Sets every span in the tree to the default (for comparing trees by structure).
    pub fn clear_spans(&mut self) {
        walk_mut(self, &mut |e| {
            *e.span_mut() = Span::default();
            match e {
                Expr::Vector(v) => v.span = Span::default(),
                Expr::Matrix(m) => m.vs.span = Span::default(),
                _ => {}
            }
            true
        });
    }

    /// The expression with parentheses removed from the top.
    pub fn unparen(&self) -> &Expr {
        let mut e = self;
        while let Expr::Paren { expr, .. } = e {
            e = expr;
        }
        e
    }
}

/// Visits `expr` and its descendants in pre-order. `f` returns whether to descend into
/// the children of the node it was given.
///
/// Recursion depth is bounded by the tree depth, which the parser limits.
pub fn walk<'a>(expr: &'a Expr, f: &mut impl FnMut(&'a Expr) -> bool) {
    if f(expr) {
        for c in expr.children() {
            walk(c, f);
        }
    }
}

/// Like [`walk`], with mutable access. `f` returns whether to descend.
pub fn walk_mut(expr: &mut Expr, f: &mut impl FnMut(&mut Expr) -> bool) {
    if f(expr) {
        for c in expr.children_mut() {
            walk_mut(c, f);
        }
    }
}

/// Fixes every vector selector, matrix selector and subquery that has no `@` modifier to
/// `@ t_ms`, without looking inside subqueries (whose inner expressions are evaluated at
/// the subquery's own steps). This is the step-invariance rewrite of the test-script
/// runner.
pub fn set_at_everywhere(expr: &mut Expr, t_ms: i64) {
    walk_mut(expr, &mut |e| match e {
        Expr::Vector(v) => {
            if v.at.is_none() {
                v.at = Some(AtModifier::Timestamp(t_ms));
            }
            false
        }
        Expr::Matrix(m) => {
            if m.vs.at.is_none() {
                m.vs.at = Some(AtModifier::Timestamp(t_ms));
            }
            false
        }
        Expr::Subquery(s) => {
            if s.at.is_none() {
                s.at = Some(AtModifier::Timestamp(t_ms));
            }
            false
        }
        _ => true,
    });
}

// ---------------------------------------------------------------------------------------
// Printing
// ---------------------------------------------------------------------------------------

/// Quotes `s` with Go's `strconv.Quote` rules (the form Prometheus prints).
pub fn quote_string(s: &str) -> String {
    crate::model::quote(s)
}

/// Whether `s` can be written as a bare label name.
fn is_plain_label_name(s: &str) -> bool {
    // `inf` and `nan` lex as numbers, so they must be quoted.
    crate::model::is_valid_label_name(s)
        && !s.eq_ignore_ascii_case("inf")
        && !s.eq_ignore_ascii_case("nan")
}

/// Whether `s` can be written as a bare metric name.
fn is_plain_metric_name(s: &str) -> bool {
    crate::model::is_valid_metric_name(s)
}

/// Writes a label name, quoting it when it is not a plain identifier.
fn write_label_name(f: &mut fmt::Formatter<'_>, name: &str) -> fmt::Result {
    if is_plain_label_name(name) {
        f.write_str(name)
    } else {
        f.write_str(&quote_string(name))
    }
}

fn write_label_list(f: &mut fmt::Formatter<'_>, names: &[String]) -> fmt::Result {
    f.write_str("(")?;
    for (i, n) in names.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write_label_name(f, n)?;
    }
    f.write_str(")")
}

/// Formats milliseconds as a Prometheus duration (`1h30m`, `5m`, `10s53ms`, `0s`).
pub fn format_duration(ms: i64) -> String {
    if ms == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    let mut rest = ms.unsigned_abs();
    if ms < 0 {
        out.push('-');
    }
    const UNITS: [(&str, u64); 7] = [
        ("y", 365 * 24 * 3_600_000),
        ("w", 7 * 24 * 3_600_000),
        ("d", 24 * 3_600_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
        ("ms", 1),
    ];
    for (unit, size) in UNITS {
        let n = rest / size;
        if n > 0 {
            out.push_str(&n.to_string());
            out.push_str(unit);
            rest -= n * size;
        }
    }
    out
}

/// Formats a float as Prometheus prints number literals.
pub fn format_number(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_string()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_string()
    } else {
        format!("{v}")
    }
}

fn write_modifiers(
    f: &mut fmt::Formatter<'_>,
    at: &Option<AtModifier>,
    offset_ms: i64,
) -> fmt::Result {
    match at {
        Some(AtModifier::Timestamp(t)) => {
            let sign = if *t < 0 { "-" } else { "" };
            let a = t.unsigned_abs();
            write!(f, " @ {sign}{}.{:03}", a / 1000, a % 1000)?;
        }
        Some(AtModifier::Start) => f.write_str(" @ start()")?,
        Some(AtModifier::End) => f.write_str(" @ end()")?,
        None => {}
    }
    if offset_ms != 0 {
        write!(f, " offset {}", format_duration(offset_ms))?;
    }
    Ok(())
}

impl VectorSelector {
    /// Writes the name and matchers without modifiers.
    fn write_base(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.name.as_deref().filter(|n| !n.is_empty());
        let mut rest: Vec<&Matcher> = Vec::with_capacity(self.matchers.len());
        let mut skipped_name = false;
        for m in &self.matchers {
            if !skipped_name
                && m.name == METRIC_NAME
                && m.op == MatchOp::Equal
                && Some(m.value.as_str()) == name
            {
                skipped_name = true;
                continue;
            }
            rest.push(m);
        }
        let mut in_braces = false;
        match name {
            Some(n) if skipped_name && is_plain_metric_name(n) => f.write_str(n)?,
            Some(n) if skipped_name => {
                in_braces = true;
                write!(f, "{{{}", quote_string(n))?;
            }
            _ => {}
        }
        if rest.is_empty() {
            if in_braces {
                f.write_str("}")?;
            } else if !skipped_name {
                f.write_str("{}")?;
            }
            return Ok(());
        }
        if !in_braces {
            f.write_str("{")?;
        }
        for (i, m) in rest.iter().enumerate() {
            if i > 0 || in_braces {
                f.write_str(",")?;
            }
            write_label_name(f, &m.name)?;
            write!(f, "{}{}", m.op, quote_string(&m.value))?;
        }
        f.write_str("}")
    }
}

impl fmt::Display for VectorSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_base(f)?;
        write_modifiers(f, &self.at, self.offset_ms)
    }
}

impl fmt::Display for MatrixSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.vs.write_base(f)?;
        write!(f, "[{}]", format_duration(self.range_ms))?;
        write_modifiers(f, &self.vs.at, self.vs.offset_ms)
    }
}

impl fmt::Display for SubqueryExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}[{}:", self.expr, format_duration(self.range_ms))?;
        if let Some(step) = self.step_ms {
            f.write_str(&format_duration(step))?;
        }
        f.write_str("]")?;
        write_modifiers(f, &self.at, self.offset_ms)
    }
}

impl fmt::Display for VectorMatching {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let grouped = matches!(
            self.card,
            VectorMatchCardinality::ManyToOne | VectorMatchCardinality::OneToMany
        );
        if self.on || !self.labels.is_empty() || grouped {
            f.write_str(if self.on { " on " } else { " ignoring " })?;
            write_label_list(f, &self.labels)?;
        }
        match self.card {
            VectorMatchCardinality::ManyToOne => {
                f.write_str(" group_left ")?;
                write_label_list(f, &self.include)?;
            }
            VectorMatchCardinality::OneToMany => {
                f.write_str(" group_right ")?;
                write_label_list(f, &self.include)?;
            }
            _ => {}
        }
        Ok(())
    }
}

/// Writes an operand, adding parentheses where a hand-built tree would otherwise print
/// as something that parses differently. Trees from the parser carry explicit
/// [`Expr::Paren`] nodes, so this never changes their printing (except `+Inf ^ x`, which
/// prints as `Inf ^ x`).
fn write_operand(f: &mut fmt::Formatter<'_>, parent: BinOp, e: &Expr, left: bool) -> fmt::Result {
    let p = parent.precedence();
    let wrap = match e {
        Expr::Binary(c) => {
            let cp = c.op.precedence();
            cp < p || (cp == p && (left == parent.is_right_associative()))
        }
        Expr::Unary { .. } => left && parent == BinOp::Pow,
        Expr::Number { val, .. } if left && parent == BinOp::Pow => {
            if *val == f64::INFINITY {
                return f.write_str("Inf");
            }
            val.is_sign_negative() && !val.is_nan()
        }
        _ => false,
    };
    if wrap {
        write!(f, "({e})")
    } else {
        write!(f, "{e}")
    }
}

impl fmt::Display for BinaryExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_operand(f, self.op, &self.lhs, true)?;
        write!(f, " {}", self.op)?;
        if self.return_bool {
            f.write_str(" bool")?;
        }
        if let Some(m) = &self.matching {
            write!(f, "{m}")?;
        }
        f.write_str(" ")?;
        write_operand(f, self.op, &self.rhs, false)
    }
}

impl fmt::Display for AggregateExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.op.name())?;
        match &self.grouping {
            Grouping::None => {}
            Grouping::By(l) => {
                f.write_str(" by ")?;
                write_label_list(f, l)?;
                f.write_str(" ")?;
            }
            Grouping::Without(l) => {
                f.write_str(" without ")?;
                write_label_list(f, l)?;
                f.write_str(" ")?;
            }
        }
        f.write_str("(")?;
        if let Some(p) = &self.param {
            write!(f, "{p}, ")?;
        }
        write!(f, "{})", self.expr)
    }
}

impl fmt::Display for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}(", self.func.name())?;
        for (i, a) in self.args.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{a}")?;
        }
        f.write_str(")")
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Number { val, .. } => f.write_str(&format_number(*val)),
            Expr::String { val, .. } => f.write_str(&quote_string(val)),
            Expr::Vector(v) => write!(f, "{v}"),
            Expr::Matrix(m) => write!(f, "{m}"),
            Expr::Subquery(s) => write!(f, "{s}"),
            Expr::Paren { expr, .. } => write!(f, "({expr})"),
            Expr::Unary { op, expr, .. } => match &**expr {
                Expr::Binary(b) if b.op != BinOp::Pow => write!(f, "{}({expr})", op.as_str()),
                _ => write!(f, "{}{expr}", op.as_str()),
            },
            Expr::Binary(b) => write!(f, "{b}"),
            Expr::Aggregate(a) => write!(f, "{a}"),
            Expr::Call(c) => write!(f, "{c}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_format_largest_unit_first() {
        assert_eq!(format_duration(0), "0s");
        assert_eq!(format_duration(5_400_000), "1h30m");
        assert_eq!(format_duration(10_053), "10s53ms");
        assert_eq!(format_duration(365 * 24 * 3_600_000), "1y");
        assert_eq!(format_duration(-300_000), "-5m");
    }

    #[test]
    fn line_col_counts_bytes_like_prometheus() {
        assert_eq!(line_col("abc", 0), (1, 1));
        assert_eq!(line_col("abc", 2), (1, 3));
        assert_eq!(line_col("a\nbc", 3), (2, 2));
        assert_eq!(line_col("é x", 3), (1, 4));
        assert_eq!(line_col("a\n\nb", 3), (3, 1));
    }

    #[test]
    fn numbers_format_like_prometheus() {
        assert_eq!(format_number(1.0), "1");
        assert_eq!(format_number(-0.5), "-0.5");
        assert_eq!(format_number(f64::INFINITY), "+Inf");
        assert_eq!(format_number(f64::NEG_INFINITY), "-Inf");
        assert_eq!(format_number(f64::NAN), "NaN");
    }
}
