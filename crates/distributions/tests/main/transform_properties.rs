//! Properties of the bijections between a prior's support and unconstrained space
//! (`Support`'s maps and `UnconstrainedTransform`), over random priors and points: round
//! trips θ → z → θ and z → θ → z, and the log-det-Jacobian against central differences.
//!
//! Tolerances follow the rounding of the maps: a θ is known to a few ulps of the largest
//! number it is computed from (`|θ|` and the bounds or shift of its coordinate), and that
//! error reaches z divided by `|dθ/dz|` (a coordinate near the end of a long interval is
//! flat in z); a central difference with step h divides it by h once more.

use nalgebra::{DMatrix, DVector};
use proptest::collection::vec;
use proptest::prelude::*;
use simfer_distributions::{Coordinate, Support, UnconstrainedTransform, rng_from_seed};

use crate::arbitrary::any_prior;

/// Largest dimension of [`any_prior`]: three components of dimension 3.
const MAX_DIM: usize = 9;

/// The magnitude of the constants a coordinate's θ is computed from.
fn magnitude(c: Coordinate) -> f64 {
    match c {
        Coordinate::Interval { low, high } => low.abs() + high.abs(),
        Coordinate::Positive => 0.0,
        Coordinate::Affine { shift, .. } => shift.abs(),
    }
}

/// A bound on the rounding error of a θ computed by `c` (16 ulps of its inputs).
fn theta_rounding(c: Coordinate, theta: f64) -> f64 {
    16.0 * f64::EPSILON * (theta.abs() + magnitude(c))
}

proptest! {
    #[test]
    fn theta_to_z_to_theta_round_trips(
        params in any_prior(), seed in any::<u64>(), n in 1usize..10,
    ) {
        let p = params.build();
        let t = UnconstrainedTransform::for_prior(p.as_ref());
        prop_assert_eq!(t.dim(), p.dim());
        let theta = p.sample_batch(n, &mut rng_from_seed(seed));
        let z_batch = t.to_unconstrained_batch(&theta).unwrap();
        let (theta_batch, log_det_batch) = t.from_unconstrained_batch(&z_batch).unwrap();
        for (j, col) in theta.column_iter().enumerate() {
            let z = t.to_unconstrained(col.as_slice()).unwrap();
            prop_assert!(z.iter().all(|v| v.is_finite()), "z = {:?} of θ = {:?}", z, col);
            prop_assert_eq!(&z, &z_batch.column(j).iter().copied().collect::<Vec<_>>());
            let (back, log_det) = t.from_unconstrained(&z).unwrap();
            prop_assert_eq!(&back, &theta_batch.column(j).iter().copied().collect::<Vec<_>>());
            prop_assert_eq!(log_det.to_bits(), log_det_batch[j].to_bits());
            prop_assert!(p.in_support(&back), "{:?} left the support", back);
            for (i, c) in t.coordinates().iter().enumerate() {
                let tol = theta_rounding(*c, col[i]) * (1.0 + z[i].abs());
                prop_assert!(
                    (back[i] - col[i]).abs() <= tol,
                    "{:?}: θ {} → z {} → θ {} (tolerance {:e})", c, col[i], z[i], back[i], tol
                );
            }
        }
    }

    #[test]
    fn z_to_theta_to_z_round_trips(
        params in any_prior(), zs in vec(-10.0f64..10.0, MAX_DIM),
    ) {
        let p = params.build();
        let t = UnconstrainedTransform::for_prior(p.as_ref());
        let z = &zs[..t.dim()];
        let jac = t.jacobian(z).unwrap();
        let (theta, log_det) = t.from_unconstrained(z).unwrap();
        prop_assert_eq!(&jac.theta, &theta);
        prop_assert!((jac.log_det - log_det).abs() <= 1e-12 * log_det.abs().max(1.0));
        prop_assert!(p.in_support(&theta), "{:?} outside the support", theta);
        prop_assert!(p.log_prob(&theta).unwrap().is_finite());
        let back = t.to_unconstrained(&theta).unwrap();
        for (i, c) in t.coordinates().iter().enumerate() {
            let tol = 1e-12 * (1.0 + z[i].abs())
                + theta_rounding(*c, theta[i]) / jac.dtheta_dz[i].abs();
            prop_assert!(
                (back[i] - z[i]).abs() <= tol,
                "{:?}: z {} → θ {} → z {} (tolerance {:e})", c, z[i], theta[i], back[i], tol
            );
        }
    }

    #[test]
    fn log_det_jacobian_matches_central_differences_of_the_transform(
        params in any_prior(), zs in vec(-8.0f64..8.0, MAX_DIM),
    ) {
        let p = params.build();
        let t = UnconstrainedTransform::for_prior(p.as_ref());
        let d = t.dim();
        let z = &zs[..d];
        let h = 1e-4;
        let jac = t.jacobian(z).unwrap();
        let (_, log_det) = t.from_unconstrained(z).unwrap();
        // The whole Jacobian ∂θ/∂z, column k by central differences in z_k.
        let mut fd = DMatrix::zeros(d, d);
        let mut fd_grad_log_det = vec![0.0; d];
        for k in 0..d {
            let (mut up, mut down) = (z.to_vec(), z.to_vec());
            up[k] += h;
            down[k] -= h;
            let (tu, lu) = t.from_unconstrained(&up).unwrap();
            let (td, ld) = t.from_unconstrained(&down).unwrap();
            fd.set_column(k, &((DVector::from_vec(tu) - DVector::from_vec(td)) / (2.0 * h)));
            fd_grad_log_det[k] = (lu - ld) / (2.0 * h);
        }
        // The transform acts coordinate by coordinate: the off-diagonal differences are
        // exactly zero.
        for r in 0..d {
            for k in (0..d).filter(|&k| k != r) {
                prop_assert_eq!(fd[(r, k)], 0.0, "∂θ_{}/∂z_{}", r, k);
            }
        }
        // Relative error of each derivative: truncation (h²/6 · |θ'''/θ'| ≤ h² for these
        // maps) and rounding of θ divided by h·|dθ/dz|.
        let mut total_tol = 0.0;
        for (i, c) in t.coordinates().iter().enumerate() {
            let rel = 1e-7 + theta_rounding(*c, jac.theta[i]) / (h * jac.dtheta_dz[i].abs());
            total_tol += rel;
            prop_assert!(
                (fd[(i, i)] - jac.dtheta_dz[i]).abs() <= rel * jac.dtheta_dz[i].abs(),
                "{:?} at z {}: dθ/dz {} vs central difference {}",
                c, z[i], jac.dtheta_dz[i], fd[(i, i)]
            );
            // ln|dθ/dz| of these maps has a bounded third derivative; its value is a few
            // tens at most, so rounding adds ~1e-15·30/h.
            prop_assert!(
                (fd_grad_log_det[i] - jac.grad_log_det[i]).abs() <= 1e-7,
                "{:?} at z {}: ∂ log det/∂z {} vs central difference {}",
                c, z[i], jac.grad_log_det[i], fd_grad_log_det[i]
            );
        }
        let fd_log_det = fd.lu().determinant().abs().ln();
        prop_assert!(
            (fd_log_det - log_det).abs() <= total_tol,
            "log|det ∂θ/∂z| {} vs {} of the differenced Jacobian (tolerance {:e})",
            log_det, fd_log_det, total_tol
        );
    }

    #[test]
    fn support_maps_round_trip_and_their_log_det_matches_central_differences(
        kind in 0usize..3, low in -50.0f64..50.0, width in 1e-2f64..50.0, u in -8.0f64..8.0,
    ) {
        let s = match kind {
            0 => Support::Real,
            1 => Support::Positive,
            _ => Support::Interval { low, high: low + width },
        };
        let m = if s.is_bounded() { s.lower().abs() + s.upper().abs() } else { 0.0 };
        let v = s.from_unconstrained(u);
        prop_assert!(s.contains(v), "{:?}: {} ↦ {}", s, u, v);
        let h = 1e-4;
        let fd = (s.from_unconstrained(u + h) - s.from_unconstrained(u - h)) / (2.0 * h);
        let dv = s.log_abs_det_jacobian(u).exp();
        let rounding = 16.0 * f64::EPSILON * (v.abs() + m);
        let back = s.to_unconstrained(v);
        let tol = 1e-12 * (1.0 + u.abs()) + rounding / dv;
        prop_assert!((back - u).abs() <= tol, "{:?}: {} → {} → {}", s, u, v, back);
        let back_v = s.from_unconstrained(s.to_unconstrained(v));
        prop_assert!((back_v - v).abs() <= rounding * (1.0 + u.abs()), "{:?}: {} → {}", s, v, back_v);
        let rel = 1e-7 + rounding / (h * dv);
        prop_assert!(
            (fd - dv).abs() <= rel * dv,
            "{:?} at {}: exp(log det) {} vs central difference {}", s, u, dv, fd
        );
    }
}
