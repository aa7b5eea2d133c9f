//! Element-wise math functions (`abs`, `ceil`, `round`, `clamp`, trigonometry, ...)
//! and the float arithmetic of binary operators.
//!
//! All functions map one float to one float (NaN and ±Inf in, IEEE results out), with
//! Go's `math` package semantics where they differ from Rust's standard library
//! (`math.Max`/`math.Min` propagate NaN; `%` is `math.Mod`).

use crate::promql::ast::BinOp;

/// `abs(v)`.
pub fn abs(v: f64) -> f64 {
    v.abs()
}

/// `ceil(v)`.
pub fn ceil(v: f64) -> f64 {
    v.ceil()
}

/// `floor(v)`.
pub fn floor(v: f64) -> f64 {
    v.floor()
}

/// `round(v, to_nearest)`: rounds to the nearest multiple of `to_nearest` (1 when the
/// argument is absent), ties rounding up: `floor(v / to_nearest + 0.5) * to_nearest`,
/// computed through the inverse `1 / to_nearest` as Prometheus does.
pub fn round(v: f64, to_nearest: f64) -> f64 {
    let inv = 1.0 / to_nearest;
    (v * inv + 0.5).floor() / inv
}

/// `sqrt(v)`.
pub fn sqrt(v: f64) -> f64 {
    v.sqrt()
}

/// `exp(v)`.
pub fn exp(v: f64) -> f64 {
    v.exp()
}

/// `ln(v)`.
pub fn ln(v: f64) -> f64 {
    v.ln()
}

/// `log2(v)`.
pub fn log2(v: f64) -> f64 {
    v.log2()
}

/// `log10(v)`.
pub fn log10(v: f64) -> f64 {
    v.log10()
}

/// `sgn(v)`: -1, 1, or `v` itself for ±0 and NaN.
pub fn sgn(v: f64) -> f64 {
    if v < 0.0 {
        -1.0
    } else if v > 0.0 {
        1.0
    } else {
        v
    }
}

/// Go's `math.Max`: +Inf if either is +Inf, else NaN if either is NaN; +0 beats -0.
pub fn go_max(x: f64, y: f64) -> f64 {
    if x == f64::INFINITY || y == f64::INFINITY {
        f64::INFINITY
    } else if x.is_nan() || y.is_nan() {
        f64::NAN
    } else if x == 0.0 && y == 0.0 {
        if x.is_sign_negative() {
            y
        } else {
            x
        }
    } else if x > y {
        x
    } else {
        y
    }
}

/// Go's `math.Min`: -Inf if either is -Inf, else NaN if either is NaN; -0 beats +0.
pub fn go_min(x: f64, y: f64) -> f64 {
    if x == f64::NEG_INFINITY || y == f64::NEG_INFINITY {
        f64::NEG_INFINITY
    } else if x.is_nan() || y.is_nan() {
        f64::NAN
    } else if x == 0.0 && y == 0.0 {
        if x.is_sign_negative() {
            x
        } else {
            y
        }
    } else if x < y {
        x
    } else {
        y
    }
}

/// `clamp(v, min, max)`: `None` means the function returns an empty vector (when
/// `max < min`). A NaN bound, or a NaN value, gives NaN.
pub fn clamp(v: f64, min: f64, max: f64) -> Option<f64> {
    if max < min {
        return None;
    }
    Some(go_max(min, go_min(max, v)))
}

/// `clamp_min(v, min)`.
pub fn clamp_min(v: f64, min: f64) -> f64 {
    go_max(min, go_min(f64::INFINITY, v))
}

/// `clamp_max(v, max)`.
pub fn clamp_max(v: f64, max: f64) -> f64 {
    go_max(f64::NEG_INFINITY, go_min(max, v))
}

/// `sin(v)`.
pub fn sin(v: f64) -> f64 {
    v.sin()
}
/// `cos(v)`.
pub fn cos(v: f64) -> f64 {
    v.cos()
}
/// `tan(v)`.
pub fn tan(v: f64) -> f64 {
    v.tan()
}
/// `asin(v)`.
pub fn asin(v: f64) -> f64 {
    v.asin()
}
/// `acos(v)`.
pub fn acos(v: f64) -> f64 {
    v.acos()
}
/// `atan(v)`.
pub fn atan(v: f64) -> f64 {
    v.atan()
}
/// `sinh(v)`.
pub fn sinh(v: f64) -> f64 {
    v.sinh()
}
/// `cosh(v)`.
pub fn cosh(v: f64) -> f64 {
    v.cosh()
}
/// `tanh(v)`.
pub fn tanh(v: f64) -> f64 {
    v.tanh()
}
/// `asinh(v)`.
pub fn asinh(v: f64) -> f64 {
    v.asinh()
}
/// `acosh(v)`.
pub fn acosh(v: f64) -> f64 {
    v.acosh()
}
/// `atanh(v)`.
pub fn atanh(v: f64) -> f64 {
    v.atanh()
}

/// `deg(v)`: radians to degrees (`v * 180 / pi`).
pub fn deg(v: f64) -> f64 {
    v * 180.0 / std::f64::consts::PI
}

/// `rad(v)`: degrees to radians (`v * pi / 180`).
pub fn rad(v: f64) -> f64 {
    v * std::f64::consts::PI / 180.0
}

/// `pi()`.
pub fn pi() -> f64 {
    std::f64::consts::PI
}

/// Go's `math.Mod`: the remainder of `x / y` with the sign of `x` (C `fmod`).
/// NaN when `x` is ±Inf or NaN or `y` is 0 or NaN; `x` when `y` is ±Inf.
pub fn go_mod(x: f64, y: f64) -> f64 {
    x % y
}

/// Go's `math.Pow`, including its special cases (`pow(x, ±0) = 1`, `pow(1, y) = 1`
/// even for NaN `y`, `pow(-1, ±Inf) = 1`).
pub fn go_pow(x: f64, y: f64) -> f64 {
    if y == 0.0 || x == 1.0 {
        return 1.0;
    }
    if x == -1.0 && y.is_infinite() {
        return 1.0;
    }
    x.powf(y)
}

/// Go's `math.Atan2`.
pub fn atan2(y: f64, x: f64) -> f64 {
    y.atan2(x)
}

/// The float result of an arithmetic operator (`+ - * / % ^ atan2`), or of a
/// comparison operator with the `bool` modifier (1 for true, 0 for false).
/// Set operators (`and`, `or`, `unless`) have no float result: `None`.
pub fn binop(op: BinOp, lhs: f64, rhs: f64) -> Option<f64> {
    let b = |x: bool| if x { 1.0 } else { 0.0 };
    Some(match op {
        BinOp::Add => lhs + rhs,
        BinOp::Sub => lhs - rhs,
        BinOp::Mul => lhs * rhs,
        BinOp::Div => lhs / rhs,
        BinOp::Mod => go_mod(lhs, rhs),
        BinOp::Pow => go_pow(lhs, rhs),
        BinOp::Atan2 => atan2(lhs, rhs),
        BinOp::Eql => b(lhs == rhs),
        BinOp::Neq => b(lhs != rhs),
        BinOp::Gtr => b(lhs > rhs),
        BinOp::Lss => b(lhs < rhs),
        BinOp::Gte => b(lhs >= rhs),
        BinOp::Lte => b(lhs <= rhs),
        BinOp::And | BinOp::Or | BinOp::Unless => return None,
    })
}

/// Whether a comparison operator holds for `lhs op rhs` (IEEE: any comparison with
/// NaN is false except `!=`). `None` for non-comparison operators.
pub fn compare(op: BinOp, lhs: f64, rhs: f64) -> Option<bool> {
    Some(match op {
        BinOp::Eql => lhs == rhs,
        BinOp::Neq => lhs != rhs,
        BinOp::Gtr => lhs > rhs,
        BinOp::Lss => lhs < rhs,
        BinOp::Gte => lhs >= rhs,
        BinOp::Lte => lhs <= rhs,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding() {
        assert_eq!(round(2.5, 1.0), 3.0);
        assert_eq!(round(-2.5, 1.0), -2.0);
        assert_eq!(round(1.24, 0.1), 1.2);
        assert_eq!(round(1.25, 0.1), 1.3);
        assert_eq!(round(17.0, 5.0), 15.0);
        assert_eq!(round(17.5, 5.0), 20.0);
        assert!(round(f64::NAN, 1.0).is_nan());
        assert_eq!(round(f64::INFINITY, 1.0), f64::INFINITY);
        assert_eq!(ceil(1.1), 2.0);
        assert_eq!(floor(-1.1), -2.0);
        assert_eq!(abs(-3.0), 3.0);
    }

    #[test]
    fn sign() {
        assert_eq!(sgn(-5.0), -1.0);
        assert_eq!(sgn(0.1), 1.0);
        assert_eq!(sgn(0.0), 0.0);
        assert!(sgn(-0.0).is_sign_negative());
        assert!(sgn(f64::NAN).is_nan());
        assert_eq!(sgn(f64::NEG_INFINITY), -1.0);
    }

    #[test]
    fn clamping() {
        assert_eq!(clamp(5.0, 0.0, 3.0), Some(3.0));
        assert_eq!(clamp(-5.0, 0.0, 3.0), Some(0.0));
        assert_eq!(clamp(2.0, 0.0, 3.0), Some(2.0));
        assert_eq!(clamp(2.0, 3.0, 0.0), None);
        assert_eq!(clamp(2.0, 3.0, 3.0), Some(3.0));
        assert!(clamp(f64::NAN, 0.0, 3.0).unwrap().is_nan());
        assert!(clamp(2.0, f64::NAN, 3.0).unwrap().is_nan());
        assert!(clamp(2.0, 0.0, f64::NAN).unwrap().is_nan());
        assert_eq!(clamp_min(-1.0, 0.0), 0.0);
        assert_eq!(clamp_max(10.0, 5.0), 5.0);
        assert!(clamp_max(f64::NAN, 5.0).is_nan());
        assert!(clamp_min(1.0, f64::NAN).is_nan());
        assert_eq!(clamp_min(f64::INFINITY, 0.0), f64::INFINITY);
        assert_eq!(clamp_max(f64::NEG_INFINITY, 0.0), f64::NEG_INFINITY);
    }

    #[test]
    fn go_min_max() {
        assert_eq!(go_max(f64::NAN, f64::INFINITY), f64::INFINITY);
        assert!(go_max(f64::NAN, 1.0).is_nan());
        assert!(go_max(0.0, -0.0).is_sign_positive());
        assert!(go_max(-0.0, 0.0).is_sign_positive());
        assert!(go_min(0.0, -0.0).is_sign_negative());
        assert_eq!(go_min(f64::NAN, f64::NEG_INFINITY), f64::NEG_INFINITY);
    }

    #[test]
    fn trig_and_logs() {
        assert_eq!(deg(pi()), 180.0);
        assert_eq!(rad(180.0), pi());
        assert_eq!(log2(8.0), 3.0);
        assert_eq!(log10(1000.0), 3.0);
        assert_eq!(ln(1.0), 0.0);
        assert!(ln(-1.0).is_nan());
        assert_eq!(ln(0.0), f64::NEG_INFINITY);
        assert!(sqrt(-1.0).is_nan());
        assert_eq!(exp(0.0), 1.0);
        assert!(asin(2.0).is_nan());
        assert_eq!(atanh(1.0), f64::INFINITY);
        assert!(acosh(0.5).is_nan());
        assert_eq!(sinh(0.0), 0.0);
        assert_eq!(cosh(0.0), 1.0);
        assert_eq!(tanh(f64::INFINITY), 1.0);
        assert_eq!(asinh(0.0), 0.0);
        assert_eq!(sin(0.0), 0.0);
        assert_eq!(cos(0.0), 1.0);
        assert_eq!(tan(0.0), 0.0);
        assert_eq!(acos(1.0), 0.0);
        assert_eq!(atan(0.0), 0.0);
    }

    #[test]
    fn arithmetic() {
        assert_eq!(binop(BinOp::Add, 1.0, 2.0), Some(3.0));
        assert_eq!(binop(BinOp::Sub, 1.0, 2.0), Some(-1.0));
        assert_eq!(binop(BinOp::Mul, 3.0, 2.0), Some(6.0));
        assert_eq!(binop(BinOp::Div, 1.0, 0.0), Some(f64::INFINITY));
        assert!(binop(BinOp::Div, 0.0, 0.0).unwrap().is_nan());
        assert_eq!(binop(BinOp::Mod, 7.0, 3.0), Some(1.0));
        assert_eq!(binop(BinOp::Mod, -7.0, 3.0), Some(-1.0));
        assert_eq!(binop(BinOp::Mod, 7.5, -2.0), Some(1.5));
        assert!(binop(BinOp::Mod, 1.0, 0.0).unwrap().is_nan());
        assert!(binop(BinOp::Mod, f64::INFINITY, 2.0).unwrap().is_nan());
        assert_eq!(binop(BinOp::Mod, 5.0, f64::INFINITY), Some(5.0));
        assert_eq!(binop(BinOp::Pow, 2.0, 10.0), Some(1024.0));
        assert_eq!(binop(BinOp::Pow, f64::NAN, 0.0), Some(1.0));
        assert_eq!(binop(BinOp::Pow, 1.0, f64::NAN), Some(1.0));
        assert_eq!(binop(BinOp::Pow, -1.0, f64::INFINITY), Some(1.0));
        assert!(binop(BinOp::Pow, -8.0, 1.0 / 3.0).unwrap().is_nan());
        assert_eq!(
            binop(BinOp::Atan2, 1.0, 1.0),
            Some(std::f64::consts::FRAC_PI_4)
        );
        assert_eq!(binop(BinOp::Gtr, 2.0, 1.0), Some(1.0));
        assert_eq!(binop(BinOp::Eql, f64::NAN, f64::NAN), Some(0.0));
        assert_eq!(binop(BinOp::Neq, f64::NAN, f64::NAN), Some(1.0));
        assert_eq!(binop(BinOp::And, 1.0, 1.0), None);
        assert_eq!(compare(BinOp::Lte, 1.0, 1.0), Some(true));
        assert_eq!(compare(BinOp::Lss, f64::NAN, 1.0), Some(false));
        assert_eq!(compare(BinOp::Add, 1.0, 1.0), None);
    }
}
