use nalgebra::{DMatrix, DVector};
use simfer_distributions::{DistributionError, MultivariateNormal, Prior, rng_from_seed};

use crate::common::{assert_all_close, covariance, moments};

fn example_covariance() -> DMatrix<f64> {
    DMatrix::from_row_slice(3, 3, &[2.0, 0.6, -0.3, 0.6, 1.0, 0.2, -0.3, 0.2, 0.5])
}

/// `ln N(θ; μ, Σ)` from the LU inverse and determinant, independent of the Cholesky path.
fn direct_log_density(theta: &[f64], mean: &[f64], cov: &DMatrix<f64>) -> f64 {
    let d = mean.len();
    let diff = DVector::from_iterator(d, theta.iter().zip(mean).map(|(t, m)| t - m));
    let inv = cov.clone().try_inverse().unwrap();
    let quad = (diff.transpose() * inv * &diff)[0];
    -0.5 * (d as f64) * (2.0 * std::f64::consts::PI).ln()
        - 0.5 * cov.determinant().ln()
        - 0.5 * quad
}

#[test]
fn log_prob_matches_the_direct_formula_in_both_parametrizations() {
    let mean = vec![1.0, -2.0, 0.5];
    let cov = example_covariance();
    let by_cov = MultivariateNormal::new(mean.clone(), cov.clone()).unwrap();
    let precision = cov.clone().try_inverse().unwrap();
    let by_prec = MultivariateNormal::from_precision(mean.clone(), precision).unwrap();
    let thetas = [[1.0, -2.0, 0.5], [0.0, 0.0, 0.0], [3.0, -1.0, -2.0]];
    let mut batch = DMatrix::zeros(3, thetas.len());
    for (j, t) in thetas.iter().enumerate() {
        let exact = direct_log_density(t, &mean, &cov);
        assert!((by_cov.log_prob(t).unwrap() - exact).abs() < 1e-12);
        assert!((by_prec.log_prob(t).unwrap() - exact).abs() < 1e-12);
        batch.set_column(j, &DVector::from_row_slice(t));
    }
    let lp_cov = by_cov.log_prob_batch(&batch).unwrap();
    let lp_prec = by_prec.log_prob_batch(&batch).unwrap();
    for (j, t) in thetas.iter().enumerate() {
        let exact = direct_log_density(t, &mean, &cov);
        assert!((lp_cov[j] - exact).abs() < 1e-12 && (lp_prec[j] - exact).abs() < 1e-12);
    }
    assert_all_close(
        by_prec.variance().unwrap().as_slice(),
        &[2.0, 1.0, 0.5],
        1e-12,
        "precision-form variance",
    );
    assert_eq!(
        by_cov.log_prob(&[f64::NAN, 0.0, 0.0]).unwrap(),
        f64::NEG_INFINITY
    );
}

#[test]
fn sample_mean_and_covariance_match_in_both_parametrizations() {
    let mean = vec![1.0, -2.0, 0.5];
    let cov = example_covariance();
    let n = 200_000;
    let priors = [
        MultivariateNormal::new(mean.clone(), cov.clone()).unwrap(),
        MultivariateNormal::from_precision(mean.clone(), cov.clone().try_inverse().unwrap())
            .unwrap(),
    ];
    for (k, p) in priors.iter().enumerate() {
        let s = Prior::sample_batch(p, n, &mut rng_from_seed(10 + k as u64));
        let (m, _) = moments(&s);
        // Standard errors: sqrt(Σ_dd / n) <= 0.0032 for the mean; for a covariance entry
        // sqrt((Σ_ii Σ_jj + Σ_ij²)/n) <= 0.0045. Tolerances are > 5 standard errors.
        assert_all_close(m.as_slice(), &mean, 0.016, "sample mean");
        let c = covariance(&s);
        assert_all_close(c.as_slice(), cov.as_slice(), 0.025, "sample covariance");
        assert!((p.covariance() - &cov).amax() < 1e-12);
        assert!((p.precision() - cov.clone().try_inverse().unwrap()).amax() < 1e-10);
    }
}

#[test]
fn invalid_matrices_are_errors() {
    let not_pd = DMatrix::from_row_slice(2, 2, &[1.0, 2.0, 2.0, 1.0]);
    assert!(matches!(
        MultivariateNormal::new(vec![0.0, 0.0], not_pd.clone()),
        Err(DistributionError::NotPositiveDefinite { .. })
    ));
    assert!(matches!(
        MultivariateNormal::from_precision(vec![0.0, 0.0], not_pd),
        Err(DistributionError::NotPositiveDefinite { .. })
    ));
    let singular = DMatrix::from_row_slice(2, 2, &[1.0, 1.0, 1.0, 1.0]);
    assert!(MultivariateNormal::new(vec![0.0, 0.0], singular).is_err());
    let asym = DMatrix::from_row_slice(2, 2, &[1.0, 0.5, 0.0, 1.0]);
    assert!(matches!(
        MultivariateNormal::new(vec![0.0, 0.0], asym),
        Err(DistributionError::NotSymmetric { row: 0, col: 1, .. })
    ));
    assert!(matches!(
        MultivariateNormal::new(vec![0.0, 0.0, 0.0], DMatrix::identity(2, 2)),
        Err(DistributionError::ShapeMismatch {
            expected_rows: 3,
            rows: 2,
            ..
        })
    ));
    let mut nan = DMatrix::identity(2, 2);
    nan[(1, 1)] = f64::NAN;
    assert!(matches!(
        MultivariateNormal::new(vec![0.0, 0.0], nan),
        Err(DistributionError::NonFinite { .. })
    ));
    assert!(MultivariateNormal::new(vec![f64::INFINITY], DMatrix::identity(1, 1)).is_err());
    assert!(MultivariateNormal::diagonal(vec![0.0, 0.0], vec![1.0, 0.0]).is_err());
    assert!(MultivariateNormal::diagonal(vec![0.0, 0.0], vec![1.0]).is_err());
    assert!(MultivariateNormal::isotropic(vec![], 1.0).is_err());
    let p = MultivariateNormal::isotropic(vec![0.0; 2], 1.0).unwrap();
    assert!(p.log_prob(&[0.0; 3]).is_err());
}

#[test]
fn one_dimensional_normal_matches_the_scalar_formula() {
    let p = MultivariateNormal::diagonal(vec![2.0], vec![0.25]).unwrap();
    let x = 2.7f64;
    let exact = -0.5 * (2.0 * std::f64::consts::PI * 0.25).ln() - (x - 2.0).powi(2) / 0.5;
    assert!((p.log_prob(&[x]).unwrap() - exact).abs() < 1e-14);
}
