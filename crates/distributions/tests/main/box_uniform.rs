use nalgebra::DMatrix;
use proptest::prelude::*;
use simfer_distributions::{BoxUniform, DistributionError, Prior, Support, rng_from_seed};

use crate::common::{assert_all_close, moments};

#[test]
fn log_prob_is_minus_log_volume_on_the_closed_box_and_minus_infinity_outside() {
    let p = BoxUniform::new(vec![-1.0, 0.0, 2.0], vec![1.0, 0.5, 10.0]).unwrap();
    let expected = -(2.0f64 * 0.5 * 8.0).ln();
    for theta in [
        [0.0, 0.25, 3.0],
        [-1.0, 0.0, 2.0], // all lower corners
        [1.0, 0.5, 10.0], // all upper corners: finite, unlike the reference library
        [1.0, 0.0, 2.0],
    ] {
        assert!((p.log_prob(&theta).unwrap() - expected).abs() < 1e-14);
        assert!(p.in_support(&theta));
    }
    for theta in [
        [1.0 + 1e-12, 0.25, 3.0],
        [0.0, -1e-300, 3.0],
        [0.0, 0.25, f64::NAN],
        [0.0, 0.25, f64::INFINITY],
    ] {
        assert_eq!(p.log_prob(&theta).unwrap(), f64::NEG_INFINITY, "{theta:?}");
        assert!(!p.in_support(&theta));
    }
    let batch = DMatrix::from_column_slice(3, 2, &[1.0, 0.5, 10.0, 2.0, 0.0, 5.0]);
    let lp = p.log_prob_batch(&batch).unwrap();
    assert!((lp[0] - expected).abs() < 1e-14);
    assert_eq!(lp[1], f64::NEG_INFINITY);
}

#[test]
fn sample_moments_match_exact_values() {
    let p = BoxUniform::new(vec![-2.0, 0.0], vec![2.0, 0.1]).unwrap();
    let n = 200_000;
    let s = Prior::sample_batch(&p, n, &mut rng_from_seed(1));
    assert!(s.column_iter().all(|c| p.in_support(c.as_slice())));
    let (mean, var) = moments(&s);
    let exact_var = p.variance().unwrap();
    assert_all_close(
        exact_var.as_slice(),
        &[16.0 / 12.0, 0.01 / 12.0],
        1e-15,
        "exact var",
    );
    assert_all_close(
        p.mean().unwrap().as_slice(),
        &[0.0, 0.05],
        1e-15,
        "exact mean",
    );
    for d in 0..2 {
        // Standard error of the mean is sqrt(var/n); of the variance sqrt((m4 − var²)/n)
        // with m4 = 9/5 var² for a uniform. Five standard errors.
        let se_mean = (exact_var[d] / n as f64).sqrt();
        let se_var = (0.8 * exact_var[d].powi(2) / n as f64).sqrt();
        assert!(
            (mean[d] - p.mean().unwrap()[d]).abs() < 5.0 * se_mean,
            "mean {d}"
        );
        assert!((var[d] - exact_var[d]).abs() < 5.0 * se_var, "var {d}");
    }
}

#[test]
fn bad_bounds_are_errors() {
    assert!(matches!(
        BoxUniform::new(vec![0.0, 1.0], vec![1.0, 1.0]),
        Err(DistributionError::InvalidBounds { index: 1, .. })
    ));
    assert!(matches!(
        BoxUniform::new(vec![2.0], vec![1.0]),
        Err(DistributionError::InvalidBounds { index: 0, .. })
    ));
    assert!(matches!(
        BoxUniform::new(vec![0.0, f64::NAN], vec![1.0, 1.0]),
        Err(DistributionError::NonFinite { index: 1, .. })
    ));
    assert!(matches!(
        BoxUniform::new(vec![0.0], vec![f64::INFINITY]),
        Err(DistributionError::NonFinite { .. })
    ));
    assert!(matches!(
        BoxUniform::new(vec![0.0, 0.0], vec![1.0]),
        Err(DistributionError::DimensionMismatch {
            expected: 2,
            found: 1,
            ..
        })
    ));
    assert!(matches!(
        BoxUniform::new(vec![], vec![]),
        Err(DistributionError::Empty { .. })
    ));
    assert!(BoxUniform::uniform(0, 0.0, 1.0).is_err());
    let msg = BoxUniform::new(vec![3.0], vec![1.0])
        .unwrap_err()
        .to_string();
    assert!(msg.contains("low = 3") && msg.contains("high = 1"), "{msg}");
}

#[test]
fn wrong_theta_dimension_is_an_error() {
    let p = BoxUniform::uniform(2, 0.0, 1.0).unwrap();
    let err = p.log_prob(&[0.5]).unwrap_err();
    assert!(matches!(
        err,
        DistributionError::DimensionMismatch {
            expected: 2,
            found: 1,
            ..
        }
    ));
    assert!(p.log_prob_batch(&DMatrix::zeros(3, 4)).is_err());
    assert!(!p.in_support(&[0.5, 0.5, 0.5]));
}

#[test]
fn one_dimensional_prior_just_works() {
    let p = BoxUniform::new(vec![0.0], vec![4.0]).unwrap();
    assert_eq!(Prior::dim(&p), 1);
    assert_eq!(p.log_prob(&[4.0]).unwrap(), -(4f64.ln()));
    assert_eq!(
        p.support(),
        vec![Support::Interval {
            low: 0.0,
            high: 4.0
        }]
    );
    let s = Prior::sample_batch(&p, 10, &mut rng_from_seed(0));
    assert_eq!(s.shape(), (1, 10));
}

proptest! {
    #[test]
    fn every_point_of_the_closed_box_has_finite_log_prob(
        low in -1e3f64..1e3, width in 1e-6f64..1e3, u in 0.0f64..=1.0, seed in 0u64..1000,
    ) {
        let high = low + width;
        let p = BoxUniform::new(vec![low, low], vec![high, high]).unwrap();
        let lp = -(2.0 * width.ln());
        prop_assert!((p.log_prob(&[low, high]).unwrap() - lp).abs() < 1e-12 * lp.abs().max(1.0));
        let inside = (low + u * width).clamp(low, high);
        prop_assert!(p.log_prob(&[inside, high]).unwrap().is_finite());
        let theta = p.sample(&mut rng_from_seed(seed));
        prop_assert!(p.in_support(theta.as_slice()));
    }
}
