//! Pure implementations of PromQL functions, over plain data (floats, samples, label
//! sets). The evaluator selects the inputs (windows, vectors, constant arguments) and
//! calls these; nothing here touches storage or the expression tree.
//!
//! Range-vector inputs are the float samples of one series in one window, in time
//! order, **with staleness markers already removed**. `None` results mean "this series
//! produces no output element".
//!
//! Entry points by family:
//!
//! - [`rate`]: [`rate::extrapolated_rate`] (with [`rate::rate`], [`rate::increase`],
//!   [`rate::delta`]), [`rate::instant_value`] (with [`rate::irate`],
//!   [`rate::idelta`]).
//! - [`over_time`]: the `*_over_time` functions (`sum avg count min max first last
//!   present quantile stddev stdvar mad`, `ts_of_first/last/min/max`),
//!   [`over_time::changes`], [`over_time::resets`], [`over_time::deriv`],
//!   [`over_time::predict_linear`], [`over_time::linear_regression`],
//!   [`over_time::double_exponential_smoothing`]; sliding-window forms that are
//!   bit-identical to the batch ones: [`over_time::SlidingExtreme`] (`min`/`max`) and
//!   [`over_time::PairEventPrefix`] (`changes`/`resets`).
//! - [`math`]: element-wise `abs ceil floor round sqrt exp ln log2 log10 sgn`,
//!   `clamp clamp_min clamp_max`, trigonometry, `deg rad pi`, and the float arithmetic
//!   of binary operators ([`math::binop`], [`math::compare`]).
//! - [`time`]: `year month day_of_month day_of_week day_of_year days_in_month hour
//!   minute` from Unix seconds (UTC), plus `time()`/`timestamp()` conversions.
//! - [`histogram`]: classic-bucket [`histogram::bucket_quantile`]
//!   (`histogram_quantile`), [`histogram::bucket_fraction`] (`histogram_fraction`),
//!   [`histogram::parse_le`].
//! - [`label`]: [`label::LabelReplace`] / [`label::label_replace`] and
//!   [`label::LabelJoin`] / [`label::label_join`], with Go's `$1`/`${name}` expansion;
//!   [`crate::model::goregex::translate_go_regex`] rewrites Go (RE2) regex syntax for Rust's `regex`.
//! - [`aggr`]: [`aggr::kahan_sum_inc`], [`aggr::KahanSum`] (`sum`),
//!   [`aggr::AvgAggregator`] (`avg`), [`aggr::VarianceAggregator`] (`stddev`,
//!   `stdvar`), [`aggr::quantile`] (`quantile`, `quantile_over_time`),
//!   [`aggr::natural_cmp`] (`sort_by_label`).

pub mod aggr;
pub mod histogram;
pub mod label;
pub mod math;
pub mod over_time;
pub mod rate;
pub mod time;
