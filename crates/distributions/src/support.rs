//! The support of a prior, one dimension at a time.

use serde::{Deserialize, Serialize};
use simfer_nn::fastmath::softplus;

/// The support of one dimension of a prior.
///
/// An [`Interval`](Support::Interval) is **closed**: both bounds belong to it, and every
/// bounded prior in this crate has a finite log-density on all of it (the reference library
/// gives −∞ at the upper bound while calling it "in support"). [`Positive`](Support::Positive)
/// is the open half-line `(0, ∞)`, where log-normal densities are finite.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Support {
    /// The real line, `(−∞, ∞)`.
    Real,
    /// The positive half-line, `(0, ∞)`.
    Positive,
    /// The closed interval `[low, high]`.
    Interval {
        /// Lower bound (included).
        low: f64,
        /// Upper bound (included).
        high: f64,
    },
}

impl Support {
    /// Whether `v` lies in the support. NaN and ±∞ never do.
    pub fn contains(&self, v: f64) -> bool {
        match *self {
            Support::Real => v.is_finite(),
            Support::Positive => v > 0.0 && v.is_finite(),
            Support::Interval { low, high } => low <= v && v <= high,
        }
    }

    /// The infimum: −∞, 0 or `low`.
    pub fn lower(&self) -> f64 {
        match *self {
            Support::Real => f64::NEG_INFINITY,
            Support::Positive => 0.0,
            Support::Interval { low, .. } => low,
        }
    }

    /// The supremum: +∞ or `high`.
    pub fn upper(&self) -> f64 {
        match *self {
            Support::Real | Support::Positive => f64::INFINITY,
            Support::Interval { high, .. } => high,
        }
    }

    /// Whether both ends are finite.
    pub fn is_bounded(&self) -> bool {
        matches!(self, Support::Interval { .. })
    }

    /// Maps `v` from the support to the real line: identity, `ln v`, or the logit of
    /// `(v − low)/(high − low)`. The ends of an interval map to ±∞.
    pub fn to_unconstrained(&self, v: f64) -> f64 {
        match *self {
            Support::Real => v,
            Support::Positive => v.ln(),
            Support::Interval { low, high } => {
                let u = (v - low) / (high - low);
                u.ln() - (-u).ln_1p()
            }
        }
    }

    /// The inverse of [`to_unconstrained`](Self::to_unconstrained): identity, `exp u`, or
    /// `low + (high − low)·σ(u)` (clamped into `[low, high]` against rounding).
    pub fn from_unconstrained(&self, u: f64) -> f64 {
        match *self {
            Support::Real => u,
            Support::Positive => u.exp(),
            Support::Interval { low, high } => {
                let s = if u >= 0.0 {
                    1.0 / (1.0 + (-u).exp())
                } else {
                    let e = u.exp();
                    e / (1.0 + e)
                };
                (low + (high - low) * s).clamp(low, high)
            }
        }
    }

    /// `ln |dv/du|` of [`from_unconstrained`](Self::from_unconstrained) at `u`, to turn a
    /// density on the support into one on the real line.
    pub fn log_abs_det_jacobian(&self, u: f64) -> f64 {
        match *self {
            Support::Real => 0.0,
            Support::Positive => u,
            Support::Interval { low, high } => {
                // ln σ(u) + ln σ(−u) = −softplus(−u) − softplus(u), computed stably.
                (high - low).ln() - softplus(u) - softplus(-u)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_interval_contains_its_ends() {
        let s = Support::Interval {
            low: -1.0,
            high: 2.0,
        };
        assert!(s.contains(-1.0) && s.contains(2.0) && s.contains(0.5));
        assert!(!s.contains(2.0 + 1e-12) && !s.contains(-1.0 - 1e-12));
        assert!(!s.contains(f64::NAN));
        assert!(Support::Positive.contains(1e-300));
        assert!(!Support::Positive.contains(0.0));
        assert!(!Support::Real.contains(f64::INFINITY));
        assert!(Support::Real.contains(-1e300));
    }

    #[test]
    fn transforms_round_trip_and_jacobian_matches_finite_differences() {
        let supports = [
            Support::Real,
            Support::Positive,
            Support::Interval {
                low: -3.0,
                high: 5.0,
            },
        ];
        for s in supports {
            for &u in &[-4.0, -0.3, 0.0, 1.7, 6.0] {
                let v = s.from_unconstrained(u);
                assert!(s.contains(v));
                assert!((s.to_unconstrained(v) - u).abs() < 1e-9, "{s:?} at {u}");
                let h = 1e-5;
                let fd = (s.from_unconstrained(u + h) - s.from_unconstrained(u - h)) / (2.0 * h);
                let lj = s.log_abs_det_jacobian(u);
                assert!(
                    (fd.ln() - lj).abs() < 1e-7,
                    "{s:?} at {u}: {} vs {lj}",
                    fd.ln()
                );
            }
        }
    }
}
