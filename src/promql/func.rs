//! The closed set of PromQL functions and their signatures.
//!
//! Signatures follow Prometheus: a function has a list of argument types; a variadic
//! function may omit its last argument (or repeat it, for `label_join` and
//! `sort_by_label`). Experimental functions are included; they are accepted by the parser.

use crate::promql::ast::ValueType;

/// A PromQL function.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Func {
    /// `abs`
    Abs,
    /// `absent`
    Absent,
    /// `absent_over_time`
    AbsentOverTime,
    /// `acos`
    Acos,
    /// `acosh`
    Acosh,
    /// `asin`
    Asin,
    /// `asinh`
    Asinh,
    /// `atan`
    Atan,
    /// `atanh`
    Atanh,
    /// `avg_over_time`
    AvgOverTime,
    /// `ceil`
    Ceil,
    /// `changes`
    Changes,
    /// `clamp`
    Clamp,
    /// `clamp_max`
    ClampMax,
    /// `clamp_min`
    ClampMin,
    /// `cos`
    Cos,
    /// `cosh`
    Cosh,
    /// `count_over_time`
    CountOverTime,
    /// `days_in_month`
    DaysInMonth,
    /// `day_of_month`
    DayOfMonth,
    /// `day_of_week`
    DayOfWeek,
    /// `day_of_year`
    DayOfYear,
    /// `deg`
    Deg,
    /// `delta`
    Delta,
    /// `deriv`
    Deriv,
    /// `double_exponential_smoothing`
    DoubleExponentialSmoothing,
    /// `exp`
    Exp,
    /// `first_over_time`
    FirstOverTime,
    /// `floor`
    Floor,
    /// `histogram_avg`
    HistogramAvg,
    /// `histogram_count`
    HistogramCount,
    /// `histogram_fraction`
    HistogramFraction,
    /// `histogram_quantile`
    HistogramQuantile,
    /// `histogram_stddev`
    HistogramStddev,
    /// `histogram_stdvar`
    HistogramStdvar,
    /// `histogram_sum`
    HistogramSum,
    /// `hour`
    Hour,
    /// `idelta`
    Idelta,
    /// `increase`
    Increase,
    /// `irate`
    Irate,
    /// `label_join`
    LabelJoin,
    /// `label_replace`
    LabelReplace,
    /// `last_over_time`
    LastOverTime,
    /// `ln`
    Ln,
    /// `log10`
    Log10,
    /// `log2`
    Log2,
    /// `mad_over_time`
    MadOverTime,
    /// `max_over_time`
    MaxOverTime,
    /// `min_over_time`
    MinOverTime,
    /// `minute`
    Minute,
    /// `month`
    Month,
    /// `pi`
    Pi,
    /// `predict_linear`
    PredictLinear,
    /// `present_over_time`
    PresentOverTime,
    /// `quantile_over_time`
    QuantileOverTime,
    /// `rad`
    Rad,
    /// `rate`
    Rate,
    /// `resets`
    Resets,
    /// `round`
    Round,
    /// `scalar`
    Scalar,
    /// `sgn`
    Sgn,
    /// `sin`
    Sin,
    /// `sinh`
    Sinh,
    /// `sort`
    Sort,
    /// `sort_by_label`
    SortByLabel,
    /// `sort_by_label_desc`
    SortByLabelDesc,
    /// `sort_desc`
    SortDesc,
    /// `sqrt`
    Sqrt,
    /// `stddev_over_time`
    StddevOverTime,
    /// `stdvar_over_time`
    StdvarOverTime,
    /// `sum_over_time`
    SumOverTime,
    /// `tan`
    Tan,
    /// `tanh`
    Tanh,
    /// `time`
    Time,
    /// `timestamp`
    Timestamp,
    /// `ts_of_first_over_time`
    TsOfFirstOverTime,
    /// `ts_of_last_over_time`
    TsOfLastOverTime,
    /// `ts_of_max_over_time`
    TsOfMaxOverTime,
    /// `ts_of_min_over_time`
    TsOfMinOverTime,
    /// `vector`
    Vector,
    /// `year`
    Year,
}

/// Static description of one function.
struct Signature {
    func: Func,
    name: &'static str,
    args: &'static [ValueType],
    /// 0: fixed arity; n > 0: up to n trailing optional arguments; -1: last argument
    /// repeated without bound.
    variadic: i8,
    ret: ValueType,
    experimental: bool,
}

/// Never used: every variant has a row in `SIGNATURES` (checked by a unit test).
const FALLBACK: Signature = Signature {
    func: Func::Abs,
    name: "abs",
    args: &[ValueType::Vector],
    variadic: 0,
    ret: ValueType::Vector,
    experimental: false,
};

const SIGNATURES: &[Signature] = &[
    Signature {
        func: Func::Abs,
        name: "abs",
        args: &[ValueType::Vector],
        variadic: 0,
        ret: ValueType::Vector,
        experimental: false,
    },
    Signature {
        func: Func::Absent,
        name: "absent",
        args: &[ValueType::Vector],
        variadic: 0,
        ret: ValueType::Vector,
        experimental: false,
    },
    Signature {
        func: Func::AbsentOverTime,
        name: "absent_over_time",
        args: &[ValueType::Matrix],
        variadic: 0,
        ret: ValueType::Vector,
        experimental: false,
    },
    Signature {
        func: Func::Acos,
        name: "acos",
        args: &[ValueType::Vector],
        variadic: 0,
        ret: ValueType::Vector,
        experimental: false,
    },
    Signature {
        func: Func::Acosh,
        name: "acosh",
        args: &[ValueType::Vector],
        variadic: 0,
        ret: ValueType::Vector,
        experimental: false,
    },
    Signature {
        func: Func::Asin,
        name: "asin",
        args: &[ValueType::Vector],
        variadic: 0,
        ret: ValueType::Vector,
        experimental: false,
    },
    Signature {
        func: Func::Asinh,
        name: "asinh",
        args: &[ValueType::Vector],
        variadic: 0,
        ret: ValueType::Vector,
        experimental: false,
    },
    Signature {
        func: Func::Atan,
        name: "atan",
        args: &[ValueType::Vector],
        variadic: 0,
        ret: ValueType::Vector,
        experimental: false,
    },
    Signature {
        func: Func::Atanh,
        name: "atanh",
        args: &[ValueType::Vector],
        variadic: 0,
        ret: ValueType::Vector,
        experimental: false,
    },
    Signature {
        func: Func::AvgOverTime,
        name: "avg_over_time",
        args: &[ValueType::Matrix],
        variadic: 0,
        ret: ValueType::Vector,
        experimental: false,
    },
    Signature {
        func: Func::Ceil,
        name: "ceil",
        args: &[ValueType::Vector],
        variadic: 0,
        ret: ValueType::Vector,
        experimental: false,
    },
    Signature {
        func: Func::Changes,
        name: "changes",
        args: &[ValueType::Matrix],
        variadic: 0,
        ret: ValueType::Vector,
        experimental: false,
    },
    Signature {
        func: Func::Clamp,
        name: "clamp",
        args: &[ValueType::Vector, ValueType::Scalar, ValueType::Scalar],
        variadic: 0,
        ret: ValueType::Vector,
        experimental: false,
    },
    Signature {
        func: Func::ClampMax,
        name: "clamp_max",
        args: &[ValueType::Vector, ValueType::Scalar],
        variadic: 0,
        ret: ValueType::Vector,
        experimental: false,
    },
    Signature {
        func: Func::ClampMin,
        name: "clamp_min",
        args: &[ValueType::Vector, ValueType::Scalar],
        variadic: 0,
        ret: ValueType::Vector,
        experimental: false,
    },
    Signature {
        func: Func::Cos,
        name: "cos",
        args: &[ValueType::Vector],
        variadic: 0,
        ret: ValueType::Vector,
        experimental: false,
    },
    Signature {
        func: Func::Cosh,
        name: "cosh",
        args: &[ValueType::Vector],
        variadic: 0,
        ret: ValueType::Vector,
        experimental: false,
    },
    Signature {
        func: Func::CountOverTime,
        name: "count_over_time",
        args: &[ValueType::Matrix],
        variadic: 0,
        ret: ValueType::Vector,
        experimental: false,
    },
    Signature {
        func: Func::DaysInMonth,
        name: "days_in_month",
        args: &[ValueType::Vector],
        variadic: 1,
        ret: ValueType::Vector,
        experimental: false,
    },
    Signature {
        func: Func::DayOfMonth,
        name: "day_of_month",
        args: &[ValueType::Vector],
        variadic: 1,
        ret: ValueType::Vector,
        experimental: false,
    },
    Signature {
        func: Func::DayOfWeek,
        name: "day_of_week",
        args: &[ValueType::Vector],
        variadic: 1,
        ret: ValueType::Vector,
        experimental: false,
    },
    Signature {
        func: Func::DayOfYear,
        name: "day_of_year",
        args: &[ValueType::Vector],
        variadic: 1,
        ret: ValueType::Vector,
        experimental: false,
    },
    Signature {
        func: Func::Deg,
        name: "deg",
        args: &[ValueType::Vector],
        variadic: 0,
        ret: ValueType::Vector,
        experimental: false,
    },
    Signature {
        func: Func::Delta,
        name: "delta",
        args: &[ValueType::Matrix],
        variadic: 0,
        ret: ValueType::Vector,
        experimental: false,
    },
    Signature {
        func: Func::Deriv,
        name: "deriv",
        args: &[ValueType::Matrix],
        variadic: 0,
        ret: ValueType::Vector,
        experimental: false,
    },
    Signature {
        func: Func::DoubleExponentialSmoothing,
        name: "double_exponential_smoothing",
        args: &[ValueType::Matrix, ValueType::Scalar, ValueType::Scalar],
        variadic: 0,
        ret: ValueType::Vector,
        experimental: true,
    },
    Signature {
        func: Func::Exp,
        name: "exp",
        args: &[ValueType::Vector],
        variadic: 0,
        ret: ValueType::Vector,
        experimental: false,
    },
    Signature {
        func: Func::FirstOverTime,
        name: "first_over_time",
        args: &[ValueType::Matrix],
        variadic: 0,
        ret: ValueType::Vector,
        experimental: true,
    },
    Signature {
        func: Func::Floor,
        name: "floor",
        args: &[ValueType::Vector],
        variadic: 0,
        ret: ValueType::Vector,
        experimental: false,
    },
    Signature {
        func: Func::HistogramAvg,
        name: "histogram_avg",
        args: &[ValueType::Vector],
        variadic: 0,
        ret: ValueType::Vector,
        experimental: false,
    },
    Signature {
        func: Func::HistogramCount,
        name: "histogram_count",
        args: &[ValueType::Vector],
        variadic: 0,
        ret: ValueType::Vector,
        experimental: false,
    },
    Signature {
        func: Func::HistogramFraction,
        name: "histogram_fraction",
        args: &[ValueType::Scalar, ValueType::Scalar, ValueType::Vector],
        variadic: 0,
        ret: ValueType::Vector,
        experimental: false,
    },
    Signature {
        func: Func::HistogramQuantile,
        name: "histogram_quantile",
        args: &[ValueType::Scalar, ValueType::Vector],
        variadic: 0,
        ret: ValueType::Vector,
        experimental: false,
    },
    Signature {
        func: Func::HistogramStddev,
        name: "histogram_stddev",
        args: &[ValueType::Vector],
        variadic: 0,
        ret: ValueType::Vector,
        experimental: false,
    },
    Signature {
        func: Func::HistogramStdvar,
        name: "histogram_stdvar",
        args: &[ValueType::Vector],
        variadic: 0,
        ret: ValueType::Vector,
        experimental: false,
    },
    Signature {
        func: Func::HistogramSum,
        name: "histogram_sum",
        args: &[ValueType::Vector],
        variadic: 0,
        ret: ValueType::Vector,
        experimental: false,
    },
    Signature {
        func: Func::Hour,
        name: "hour",
        args: &[ValueType::Vector],
        variadic: 1,
        ret: ValueType::Vector,
        experimental: false,
    },
    Signature {
        func: Func::Idelta,
        name: "idelta",
        args: &[ValueType::Matrix],
        variadic: 0,
        ret: ValueType::Vector,
        experimental: false,
    },
    Signature {
        func: Func::Increase,
        name: "increase",
        args: &[ValueType::Matrix],
        variadic: 0,
        ret: ValueType::Vector,
        experimental: false,
    },
    Signature {
        func: Func::Irate,
        name: "irate",
        args: &[ValueType::Matrix],
        variadic: 0,
        ret: ValueType::Vector,
        experimental: false,
    },
    Signature {
        func: Func::LabelJoin,
        name: "label_join",
        args: &[
            ValueType::Vector,
            ValueType::String,
            ValueType::String,
            ValueType::String,
        ],
        variadic: -1,
        ret: ValueType::Vector,
        experimental: false,
    },
    Signature {
        func: Func::LabelReplace,
        name: "label_replace",
        args: &[
            ValueType::Vector,
            ValueType::String,
            ValueType::String,
            ValueType::String,
            ValueType::String,
        ],
        variadic: 0,
        ret: ValueType::Vector,
        experimental: false,
    },
    Signature {
        func: Func::LastOverTime,
        name: "last_over_time",
        args: &[ValueType::Matrix],
        variadic: 0,
        ret: ValueType::Vector,
        experimental: false,
    },
    Signature {
        func: Func::Ln,
        name: "ln",
        args: &[ValueType::Vector],
        variadic: 0,
        ret: ValueType::Vector,
        experimental: false,
    },
    Signature {
        func: Func::Log10,
        name: "log10",
        args: &[ValueType::Vector],
        variadic: 0,
        ret: ValueType::Vector,
        experimental: false,
    },
    Signature {
        func: Func::Log2,
        name: "log2",
        args: &[ValueType::Vector],
        variadic: 0,
        ret: ValueType::Vector,
        experimental: false,
    },
    Signature {
        func: Func::MadOverTime,
        name: "mad_over_time",
        args: &[ValueType::Matrix],
        variadic: 0,
        ret: ValueType::Vector,
        experimental: true,
    },
    Signature {
        func: Func::MaxOverTime,
        name: "max_over_time",
        args: &[ValueType::Matrix],
        variadic: 0,
        ret: ValueType::Vector,
        experimental: false,
    },
    Signature {
        func: Func::MinOverTime,
        name: "min_over_time",
        args: &[ValueType::Matrix],
        variadic: 0,
        ret: ValueType::Vector,
        experimental: false,
    },
    Signature {
        func: Func::Minute,
        name: "minute",
        args: &[ValueType::Vector],
        variadic: 1,
        ret: ValueType::Vector,
        experimental: false,
    },
    Signature {
        func: Func::Month,
        name: "month",
        args: &[ValueType::Vector],
        variadic: 1,
        ret: ValueType::Vector,
        experimental: false,
    },
    Signature {
        func: Func::Pi,
        name: "pi",
        args: &[],
        variadic: 0,
        ret: ValueType::Scalar,
        experimental: false,
    },
    Signature {
        func: Func::PredictLinear,
        name: "predict_linear",
        args: &[ValueType::Matrix, ValueType::Scalar],
        variadic: 0,
        ret: ValueType::Vector,
        experimental: false,
    },
    Signature {
        func: Func::PresentOverTime,
        name: "present_over_time",
        args: &[ValueType::Matrix],
        variadic: 0,
        ret: ValueType::Vector,
        experimental: false,
    },
    Signature {
        func: Func::QuantileOverTime,
        name: "quantile_over_time",
        args: &[ValueType::Scalar, ValueType::Matrix],
        variadic: 0,
        ret: ValueType::Vector,
        experimental: false,
    },
    Signature {
        func: Func::Rad,
        name: "rad",
        args: &[ValueType::Vector],
        variadic: 0,
        ret: ValueType::Vector,
        experimental: false,
    },
    Signature {
        func: Func::Rate,
        name: "rate",
        args: &[ValueType::Matrix],
        variadic: 0,
        ret: ValueType::Vector,
        experimental: false,
    },
    Signature {
        func: Func::Resets,
        name: "resets",
        args: &[ValueType::Matrix],
        variadic: 0,
        ret: ValueType::Vector,
        experimental: false,
    },
    Signature {
        func: Func::Round,
        name: "round",
        args: &[ValueType::Vector, ValueType::Scalar],
        variadic: 1,
        ret: ValueType::Vector,
        experimental: false,
    },
    Signature {
        func: Func::Scalar,
        name: "scalar",
        args: &[ValueType::Vector],
        variadic: 0,
        ret: ValueType::Scalar,
        experimental: false,
    },
    Signature {
        func: Func::Sgn,
        name: "sgn",
        args: &[ValueType::Vector],
        variadic: 0,
        ret: ValueType::Vector,
        experimental: false,
    },
    Signature {
        func: Func::Sin,
        name: "sin",
        args: &[ValueType::Vector],
        variadic: 0,
        ret: ValueType::Vector,
        experimental: false,
    },
    Signature {
        func: Func::Sinh,
        name: "sinh",
        args: &[ValueType::Vector],
        variadic: 0,
        ret: ValueType::Vector,
        experimental: false,
    },
    Signature {
        func: Func::Sort,
        name: "sort",
        args: &[ValueType::Vector],
        variadic: 0,
        ret: ValueType::Vector,
        experimental: false,
    },
    Signature {
        func: Func::SortByLabel,
        name: "sort_by_label",
        args: &[ValueType::Vector, ValueType::String],
        variadic: -1,
        ret: ValueType::Vector,
        experimental: true,
    },
    Signature {
        func: Func::SortByLabelDesc,
        name: "sort_by_label_desc",
        args: &[ValueType::Vector, ValueType::String],
        variadic: -1,
        ret: ValueType::Vector,
        experimental: true,
    },
    Signature {
        func: Func::SortDesc,
        name: "sort_desc",
        args: &[ValueType::Vector],
        variadic: 0,
        ret: ValueType::Vector,
        experimental: false,
    },
    Signature {
        func: Func::Sqrt,
        name: "sqrt",
        args: &[ValueType::Vector],
        variadic: 0,
        ret: ValueType::Vector,
        experimental: false,
    },
    Signature {
        func: Func::StddevOverTime,
        name: "stddev_over_time",
        args: &[ValueType::Matrix],
        variadic: 0,
        ret: ValueType::Vector,
        experimental: false,
    },
    Signature {
        func: Func::StdvarOverTime,
        name: "stdvar_over_time",
        args: &[ValueType::Matrix],
        variadic: 0,
        ret: ValueType::Vector,
        experimental: false,
    },
    Signature {
        func: Func::SumOverTime,
        name: "sum_over_time",
        args: &[ValueType::Matrix],
        variadic: 0,
        ret: ValueType::Vector,
        experimental: false,
    },
    Signature {
        func: Func::Tan,
        name: "tan",
        args: &[ValueType::Vector],
        variadic: 0,
        ret: ValueType::Vector,
        experimental: false,
    },
    Signature {
        func: Func::Tanh,
        name: "tanh",
        args: &[ValueType::Vector],
        variadic: 0,
        ret: ValueType::Vector,
        experimental: false,
    },
    Signature {
        func: Func::Time,
        name: "time",
        args: &[],
        variadic: 0,
        ret: ValueType::Scalar,
        experimental: false,
    },
    Signature {
        func: Func::Timestamp,
        name: "timestamp",
        args: &[ValueType::Vector],
        variadic: 0,
        ret: ValueType::Vector,
        experimental: false,
    },
    Signature {
        func: Func::TsOfFirstOverTime,
        name: "ts_of_first_over_time",
        args: &[ValueType::Matrix],
        variadic: 0,
        ret: ValueType::Vector,
        experimental: true,
    },
    Signature {
        func: Func::TsOfLastOverTime,
        name: "ts_of_last_over_time",
        args: &[ValueType::Matrix],
        variadic: 0,
        ret: ValueType::Vector,
        experimental: true,
    },
    Signature {
        func: Func::TsOfMaxOverTime,
        name: "ts_of_max_over_time",
        args: &[ValueType::Matrix],
        variadic: 0,
        ret: ValueType::Vector,
        experimental: true,
    },
    Signature {
        func: Func::TsOfMinOverTime,
        name: "ts_of_min_over_time",
        args: &[ValueType::Matrix],
        variadic: 0,
        ret: ValueType::Vector,
        experimental: true,
    },
    Signature {
        func: Func::Vector,
        name: "vector",
        args: &[ValueType::Scalar],
        variadic: 0,
        ret: ValueType::Vector,
        experimental: false,
    },
    Signature {
        func: Func::Year,
        name: "year",
        args: &[ValueType::Vector],
        variadic: 1,
        ret: ValueType::Vector,
        experimental: false,
    },
];

impl Func {
    /// Every function, in alphabetical order of name.
    pub fn all() -> impl Iterator<Item = Func> {
        SIGNATURES.iter().map(|s| s.func)
    }

    fn signature(self) -> &'static Signature {
        // SIGNATURES holds one row per variant, in declaration order.
        match SIGNATURES.get(self as usize) {
            Some(s) if s.func == self => s,
            _ => SIGNATURES
                .iter()
                .find(|s| s.func == self)
                .unwrap_or(&FALLBACK),
        }
    }

    /// Looks a function up by its exact (case-sensitive) name.
    pub fn from_name(name: &str) -> Option<Func> {
        SIGNATURES.iter().find(|s| s.name == name).map(|s| s.func)
    }

    /// The function's name.
    pub fn name(self) -> &'static str {
        self.signature().name
    }

    /// Declared argument types. For variadic functions the last type applies to every
    /// extra argument.
    pub fn arg_types(self) -> &'static [ValueType] {
        self.signature().args
    }

    /// The type of argument `i` (repeating the last type for variadic functions).
    pub fn arg_type(self, i: usize) -> Option<ValueType> {
        let args = self.arg_types();
        match args.get(i) {
            Some(t) => Some(*t),
            None if self.signature().variadic != 0 => args.last().copied(),
            None => None,
        }
    }

    /// Fewest arguments accepted.
    pub fn min_args(self) -> usize {
        let s = self.signature();
        if s.variadic == 0 {
            s.args.len()
        } else {
            s.args.len().saturating_sub(1)
        }
    }

    /// Most arguments accepted; `None` when unbounded.
    pub fn max_args(self) -> Option<usize> {
        let s = self.signature();
        match s.variadic {
            0 => Some(s.args.len()),
            n if n > 0 => Some(s.args.len().saturating_sub(1) + n as usize),
            _ => None,
        }
    }

    /// Whether the signature is variadic (optional or repeated trailing arguments).
    pub fn is_variadic(self) -> bool {
        self.signature().variadic != 0
    }

    /// The result type.
    pub fn return_type(self) -> ValueType {
        self.signature().ret
    }

    /// Whether Prometheus marks the function experimental.
    pub fn is_experimental(self) -> bool {
        self.signature().experimental
    }
}

impl std::fmt::Display for Func {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_in_declaration_order_and_names_round_trip() {
        for (i, s) in SIGNATURES.iter().enumerate() {
            assert_eq!(s.func as usize, i, "{}", s.name);
            assert_eq!(Func::from_name(s.name), Some(s.func));
            assert_eq!(s.func.name(), s.name);
        }
        assert_eq!(Func::from_name("nope"), None);
        assert_eq!(Func::from_name("RATE"), None);
    }

    #[test]
    fn arities() {
        assert_eq!(Func::Rate.min_args(), 1);
        assert_eq!(Func::Rate.max_args(), Some(1));
        assert_eq!(Func::Round.min_args(), 1);
        assert_eq!(Func::Round.max_args(), Some(2));
        assert_eq!(Func::Hour.min_args(), 0);
        assert_eq!(Func::Hour.max_args(), Some(1));
        assert_eq!(Func::LabelJoin.min_args(), 3);
        assert_eq!(Func::LabelJoin.max_args(), None);
        assert_eq!(Func::LabelJoin.arg_type(7), Some(ValueType::String));
        assert_eq!(Func::Time.max_args(), Some(0));
        assert_eq!(Func::Time.return_type(), ValueType::Scalar);
        assert_eq!(
            Func::HistogramQuantile.arg_types(),
            &[ValueType::Scalar, ValueType::Vector]
        );
    }
}
