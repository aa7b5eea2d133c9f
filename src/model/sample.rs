//! Samples and the staleness marker.

/// A timestamp in milliseconds since the Unix epoch.
pub type Timestamp = i64;

/// The bit pattern Prometheus uses to mark a series as stale.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// The staleness marker as an `f64` (a NaN with a special payload).
pub const STALE_NAN: f64 = f64::from_bits(STALE_NAN_BITS);

/// Whether `v` is the staleness marker (compares bits, not values).
#[inline]
pub fn is_stale_nan(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

/// One float sample of a series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Milliseconds since the Unix epoch.
    pub t: Timestamp,
    /// The value; may be NaN, ±Inf or the staleness marker.
    pub v: f64,
}

impl Sample {
    /// A sample at `t` with value `v`.
    #[inline]
    pub const fn new(t: Timestamp, v: f64) -> Self {
        Sample { t, v }
    }

    /// Bit-exact equality (NaN payloads included).
    #[inline]
    pub fn bit_eq(&self, other: &Sample) -> bool {
        self.t == other.t && self.v.to_bits() == other.v.to_bits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_marker_is_nan_and_recognised() {
        assert!(STALE_NAN.is_nan());
        assert!(is_stale_nan(STALE_NAN));
        assert!(!is_stale_nan(f64::NAN));
        assert!(!is_stale_nan(1.0));
    }
}
