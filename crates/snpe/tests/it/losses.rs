//! The losses against hand computations and finite differences.

use nalgebra::DMatrix;
use simfer_distributions::rng_from_seed;
use simfer_flows::ConditionalDensityEstimator;
use simfer_flows::Parameterized;
use simfer_snpe::{AtomicLoss, Batch, Loss, MaximumLikelihood};

use crate::mock::Gaussian;

fn estimator() -> Gaussian {
    // D = 2, C = 2: A, b, s.
    Gaussian::new(2, 2, vec![0.8, -0.3, 0.2, 1.1, 0.1, -0.2, -0.4, 0.3])
}

fn data() -> (DMatrix<f64>, DMatrix<f64>, Vec<f64>, Vec<bool>) {
    let theta = DMatrix::from_column_slice(2, 3, &[0.1, -0.5, 0.7, 0.2, -0.3, 0.9]);
    let x = DMatrix::from_column_slice(2, 3, &[0.3, 0.1, -0.8, 0.5, 0.4, -0.6]);
    // A non-uniform "prior" so that its subtraction matters.
    let lp = vec![-1.2, -0.4, -2.5];
    (theta, x, lp, vec![true, false, true])
}

fn col(m: &DMatrix<f64>, j: usize) -> Vec<f64> {
    m.column(j).iter().copied().collect()
}

#[test]
fn atomic_loss_matches_hand_computation() {
    let est = estimator();
    let (theta, x, lp, mask) = data();
    let batch = Batch {
        theta: theta.as_view(),
        x: x.as_view(),
        prior_log_prob: &lp,
        from_prior: &mask,
    };
    // With num_atoms = B = 3 every row's atoms are all rows, whatever the random draw.
    for combined in [false, true] {
        let mut loss = AtomicLoss::new(3, combined).unwrap();
        let mut ws = est.workspace();
        let value = loss
            .evaluate(&est, &mut ws, &batch, &mut rng_from_seed(3), None)
            .unwrap();
        let mut expected = 0.0;
        for i in 0..3 {
            let u: Vec<f64> = (0..3)
                .map(|k| est.log_density(&col(&theta, k), &col(&x, i)) - lp[k])
                .collect();
            let lse = u.iter().map(|v| v.exp()).sum::<f64>().ln();
            let mut log_pp = u[i] - lse;
            if combined && mask[i] {
                log_pp += est.log_density(&col(&theta, i), &col(&x, i));
            }
            expected -= log_pp / 3.0;
        }
        assert!(
            (value - expected).abs() < 1e-12,
            "combined={combined}: {value} vs {expected}"
        );
    }
}

#[test]
fn atomic_loss_with_identical_atoms_is_log_num_atoms() {
    let est = estimator();
    let b = 7;
    let theta = DMatrix::from_fn(2, b, |i, _| 0.3 - 0.5 * i as f64);
    let x = DMatrix::from_fn(2, b, |i, j| (i as f64 - j as f64) * 0.1);
    let lp = vec![-0.7; b];
    let mask = vec![false; b];
    let batch = Batch {
        theta: theta.as_view(),
        x: x.as_view(),
        prior_log_prob: &lp,
        from_prior: &mask,
    };
    for na in [2, 4, 7] {
        let mut loss = AtomicLoss::new(na, false).unwrap();
        let mut ws = est.workspace();
        let v = loss
            .evaluate(&est, &mut ws, &batch, &mut rng_from_seed(9), None)
            .unwrap();
        assert!((v - (na as f64).ln()).abs() < 1e-12, "na={na}: {v}");
    }
    // num_atoms above the batch size is clamped to it.
    let mut loss = AtomicLoss::new(50, false).unwrap();
    let mut ws = est.workspace();
    let v = loss
        .evaluate(&est, &mut ws, &batch, &mut rng_from_seed(9), None)
        .unwrap();
    assert!((v - (b as f64).ln()).abs() < 1e-12);
}

/// The analytic parameter gradient of a loss against central finite differences, with the
/// same seed (hence the same atoms) for every evaluation.
fn check_gradient<L: Loss<Gaussian>>(loss: &mut L, batch: &Batch<'_>) {
    let mut est = estimator();
    let mut ws = est.workspace();
    let mut grad = vec![0.0; est.num_params()];
    loss.evaluate(&est, &mut ws, batch, &mut rng_from_seed(5), Some(&mut grad))
        .unwrap();
    let h = 1e-6;
    for p in 0..est.num_params() {
        let orig = est.params[p];
        est.params[p] = orig + h;
        let up = loss
            .evaluate(&est, &mut ws, batch, &mut rng_from_seed(5), None)
            .unwrap();
        est.params[p] = orig - h;
        let down = loss
            .evaluate(&est, &mut ws, batch, &mut rng_from_seed(5), None)
            .unwrap();
        est.params[p] = orig;
        let fd = (up - down) / (2.0 * h);
        let err = (fd - grad[p]).abs() / fd.abs().max(grad[p].abs()).max(1e-3);
        assert!(
            err < 1e-7,
            "{}: param {p}: analytic {} vs fd {fd}",
            loss.name(),
            grad[p]
        );
    }
}

#[test]
fn loss_gradients_match_finite_differences() {
    let b = 12;
    let theta = DMatrix::from_fn(2, b, |i, j| ((i * 7 + j * 3) % 11) as f64 / 5.0 - 1.0);
    let x = DMatrix::from_fn(2, b, |i, j| ((i * 5 + j * 2) % 13) as f64 / 6.0 - 1.0);
    let lp: Vec<f64> = (0..b).map(|j| -1.0 - 0.1 * j as f64).collect();
    let mask: Vec<bool> = (0..b).map(|j| j % 3 == 0).collect();
    let batch = Batch {
        theta: theta.as_view(),
        x: x.as_view(),
        prior_log_prob: &lp,
        from_prior: &mask,
    };
    check_gradient(&mut MaximumLikelihood::new(), &batch);
    check_gradient(&mut AtomicLoss::new(4, false).unwrap(), &batch);
    check_gradient(&mut AtomicLoss::new(10, true).unwrap(), &batch);
}

#[test]
fn maximum_likelihood_is_mean_negative_log_density() {
    let est = estimator();
    let (theta, x, lp, mask) = data();
    let batch = Batch {
        theta: theta.as_view(),
        x: x.as_view(),
        prior_log_prob: &lp,
        from_prior: &mask,
    };
    let v = MaximumLikelihood::new()
        .evaluate(
            &est,
            &mut est.workspace(),
            &batch,
            &mut rng_from_seed(0),
            None,
        )
        .unwrap();
    let expected = -(0..3)
        .map(|j| est.log_density(&col(&theta, j), &col(&x, j)))
        .sum::<f64>()
        / 3.0;
    assert!((v - expected).abs() < 1e-12);
}

#[test]
fn atoms_outside_the_prior_support_give_a_non_finite_loss() {
    let est = estimator();
    let (theta, x, mut lp, mask) = data();
    lp[1] = f64::NEG_INFINITY;
    let batch = Batch {
        theta: theta.as_view(),
        x: x.as_view(),
        prior_log_prob: &lp,
        from_prior: &mask,
    };
    let v = AtomicLoss::new(3, false)
        .unwrap()
        .evaluate(
            &est,
            &mut est.workspace(),
            &batch,
            &mut rng_from_seed(0),
            None,
        )
        .unwrap();
    assert!(!v.is_finite());
}

#[test]
fn bad_batches_and_settings_are_errors() {
    let est = estimator();
    let (theta, x, lp, mask) = data();
    assert!(AtomicLoss::new(1, false).is_err());
    let short = &lp[..2];
    let batch = Batch {
        theta: theta.as_view(),
        x: x.as_view(),
        prior_log_prob: short,
        from_prior: &mask,
    };
    let err = MaximumLikelihood::new()
        .evaluate(
            &est,
            &mut est.workspace(),
            &batch,
            &mut rng_from_seed(0),
            None,
        )
        .unwrap_err();
    assert!(err.to_string().contains("expected 3, found 2"), "{err}");
    let one = theta.columns(0, 1).into_owned();
    let one_x = x.columns(0, 1).into_owned();
    let batch = Batch {
        theta: one.as_view(),
        x: one_x.as_view(),
        prior_log_prob: &lp[..1],
        from_prior: &mask[..1],
    };
    assert!(
        AtomicLoss::new(10, false)
            .unwrap()
            .evaluate(
                &est,
                &mut est.workspace(),
                &batch,
                &mut rng_from_seed(0),
                None
            )
            .is_err()
    );
}
