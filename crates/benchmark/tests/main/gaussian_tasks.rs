//! linear_gaussian, gaussian_linear, gaussian_linear_uniform, gaussian_mixture: simulators
//! and reference posteriors.

use nalgebra::DMatrix;
use simfer_benchmark::BenchmarkError;
use simfer_benchmark::Task;
use simfer_benchmark::tasks::{
    GaussianLinear, GaussianLinearUniform, GaussianMixture, LinearGaussian,
};
use simfer_distributions::{Prior, rng_from_seed};
use simfer_simulators::{SimulationOptions, simulate_batch};

use crate::common::{assert_all_close, covariance, mean_vector, truncated_moments_by_quadrature};

fn opts(seed: u64) -> SimulationOptions {
    SimulationOptions::with_seed(seed).with_progress(false)
}

/// The noise `x − θ` of `n` simulations at a fixed θ.
fn noise(task: &dyn Task, theta: &[f64], n: usize) -> DMatrix<f64> {
    let thetas = DMatrix::from_fn(theta.len(), n, |i, _| theta[i]);
    let sims = simulate_batch(task.simulator().as_ref(), &thetas, &opts(3)).unwrap();
    sims.x - thetas
}

#[test]
fn gaussian_simulators_add_the_specified_noise() {
    let n = 100_000;
    // linear_gaussian: x − θ ~ N(1, 0.01 I).
    let lg = LinearGaussian::new(4).unwrap();
    let e = noise(&lg, &[0.5, -1.0, 2.0, -2.0], n);
    // Standard errors: mean 0.1/√n = 3e-4, covariance entries ≈ 0.01·√(2/n) = 4.5e-5.
    assert_all_close(
        mean_vector(&e).as_slice(),
        &[1.0; 4],
        1.5e-3,
        "linear_gaussian mean",
    );
    let c = covariance(&e);
    assert_all_close(
        c.as_slice(),
        DMatrix::<f64>::identity(4, 4).scale(0.01).as_slice(),
        3e-4,
        "cov",
    );
    // gaussian_linear and gaussian_linear_uniform: x − θ ~ N(0, 0.1 I).
    for task in [&GaussianLinear as &dyn Task, &GaussianLinearUniform] {
        let e = noise(task, &[0.3; 10], n);
        assert_all_close(mean_vector(&e).as_slice(), &[0.0; 10], 5e-3, "mean");
        let c = covariance(&e);
        assert_all_close(
            c.as_slice(),
            DMatrix::<f64>::identity(10, 10).scale(0.1).as_slice(),
            3e-3,
            task.name(),
        );
    }
}

#[test]
fn gaussian_mixture_draws_one_component_per_simulation() {
    let n = 200_000;
    let e = noise(&GaussianMixture, &[3.0, -4.0], n);
    let (mut m2, mut m4, mut cross) = (0.0, 0.0, 0.0);
    for c in e.column_iter() {
        m2 += c[0] * c[0];
        m4 += c[0].powi(4);
        cross += c[0] * c[0] * c[1] * c[1];
    }
    let nf = n as f64;
    // E[e²] = ½·1 + ½·0.01; E[e⁴] = ½·3 + ½·3e-4; with one component per simulation
    // E[e1² e2²] = ½·1 + ½·1e-4 (it would be 0.505² ≈ 0.255 with one per dimension).
    // Tolerances ≈ 5 standard errors (sd of e² ≈ 1.2, of e⁴ ≈ 7, of e1²e2² ≈ 2.3).
    assert!((m2 / nf - 0.505).abs() < 0.015, "{}", m2 / nf);
    assert!((m4 / nf - 1.50015).abs() < 0.08, "{}", m4 / nf);
    assert!((cross / nf - 0.50005).abs() < 0.03, "{}", cross / nf);
}

/// Checks a reference posterior's samples against per-dimension truncated-normal moments.
fn check_truncated(task: &dyn Task, x_o: &[f64], mu: &[f64], sd: f64, low: f64, high: f64) {
    let post = task.reference_posterior(x_o).unwrap().unwrap();
    let n = 40_000;
    let s = post.sample(n, &mut rng_from_seed(1)).unwrap();
    assert_eq!(s.shape(), (mu.len(), n));
    assert!(
        s.iter().all(|&v| (low..=high).contains(&v)),
        "samples leave the box"
    );
    let mean = mean_vector(&s);
    let cov = covariance(&s);
    let closed_mean = post.mean().unwrap();
    let closed_cov = post.covariance().unwrap();
    for d in 0..mu.len() {
        let (_, qm, qv) = truncated_moments_by_quadrature(mu[d], sd, low, high);
        // Closed form against quadrature: both exact up to rounding.
        assert!(
            (closed_mean[d] - qm).abs() < 1e-9,
            "{}: mean {d}",
            task.name()
        );
        assert!(
            (closed_cov[(d, d)] - qv).abs() < 1e-9,
            "{}: var {d}",
            task.name()
        );
        // Samples against the exact moments: 5 standard errors.
        let se = (qv / n as f64).sqrt();
        assert!(
            (mean[d] - qm).abs() < 5.0 * se,
            "{}: sample mean {d}",
            task.name()
        );
        assert!(
            (cov[(d, d)] / qv - 1.0).abs() < 0.05,
            "{}: sample var {d}",
            task.name()
        );
    }
    // Independent dimensions.
    for i in 0..mu.len() {
        for j in 0..i {
            assert!(closed_cov[(i, j)].abs() < 1e-12);
            assert!(cov[(i, j)].abs() < 5.0 * (cov[(i, i)] * cov[(j, j)] / n as f64).sqrt());
        }
    }
}

#[test]
fn linear_gaussian_reference_posterior_is_the_truncated_gaussian() {
    // x_o chosen so that dimension 0 is cut at 1σ, dimension 2 has its mode outside.
    let x_o = [-0.9, 0.3, 3.05];
    let mu: Vec<f64> = x_o.iter().map(|x| x - 1.0).collect();
    check_truncated(&LinearGaussian::default(), &x_o, &mu, 0.1, -2.0, 2.0);
    // The tutorial's x_o = 0: mean −1, std 0.1 (the truncation is 10σ away).
    let post = LinearGaussian::default()
        .reference_posterior(&[0.0; 3])
        .unwrap()
        .unwrap();
    assert_all_close(
        post.mean().unwrap().as_slice(),
        &[-1.0; 3],
        1e-12,
        "x_o = 0",
    );
}

#[test]
fn gaussian_linear_uniform_reference_posterior_is_the_truncated_gaussian() {
    let x_o = [0.95, -1.2, 0.0, 0.5, -0.5, 1.4, 0.2, -0.9, 0.1, 0.7];
    check_truncated(&GaussianLinearUniform, &x_o, &x_o, 0.1f64.sqrt(), -1.0, 1.0);
}

#[test]
fn gaussian_linear_reference_posterior_matches_bayes_rule() {
    let x_o: Vec<f64> = (0..10).map(|i| 0.1 * i as f64 - 0.4).collect();
    let post = GaussianLinear.reference_posterior(&x_o).unwrap().unwrap();
    // Conjugate update: precision 1/0.1 + 1/0.1 = 20, mean = (x_o/0.1)/20 = x_o/2.
    let var = 1.0 / (1.0 / 0.1 + 1.0 / 0.1);
    let exact_mean: Vec<f64> = x_o.iter().map(|x| var * x / 0.1).collect();
    assert_all_close(
        post.mean().unwrap().as_slice(),
        &exact_mean,
        1e-14,
        "closed mean",
    );
    assert_all_close(
        post.covariance().unwrap().as_slice(),
        DMatrix::<f64>::identity(10, 10).scale(var).as_slice(),
        1e-14,
        "closed cov",
    );
    let n = 50_000;
    let s = post.sample(n, &mut rng_from_seed(2)).unwrap();
    // Standard errors: mean √(0.05/n) = 1e-3, covariance ≈ 0.05·√(2/n) = 3.2e-4.
    assert_all_close(mean_vector(&s).as_slice(), &exact_mean, 5e-3, "sample mean");
    assert_all_close(
        covariance(&s).as_slice(),
        DMatrix::<f64>::identity(10, 10).scale(var).as_slice(),
        1.6e-3,
        "sample cov",
    );
}

#[test]
fn gaussian_mixture_reference_posterior_matches_quadrature() {
    // Near a corner, so the broad component is cut and the weights shift.
    let x_o = [9.4, -9.7];
    let post = GaussianMixture.reference_posterior(&x_o).unwrap().unwrap();
    // Exact moments by 2-D midpoint quadrature of the truncated mixture density.
    let (lo, hi, m) = (-10.0f64, 10.0f64, 4000);
    let h = (hi - lo) / m as f64;
    let dens = |a: f64, b: f64| {
        let r2 = (a - x_o[0]).powi(2) + (b - x_o[1]).powi(2);
        0.5 * (-0.5 * r2).exp() / (2.0 * std::f64::consts::PI)
            + 0.5 * (-0.5 * r2 / 0.01).exp() / (2.0 * std::f64::consts::PI * 0.01)
    };
    let (mut z, mut s) = (0.0, [0.0; 5]);
    // Only the region within 8 of x_o carries mass; the grid still covers the whole box.
    for i in 0..m {
        let a = lo + (i as f64 + 0.5) * h;
        if (a - x_o[0]).abs() > 8.0 {
            continue;
        }
        for j in 0..m {
            let b = lo + (j as f64 + 0.5) * h;
            let p = dens(a, b);
            z += p;
            s[0] += p * a;
            s[1] += p * b;
            s[2] += p * a * a;
            s[3] += p * b * b;
            s[4] += p * a * b;
        }
    }
    let qm = [s[0] / z, s[1] / z];
    let qc = [
        s[2] / z - qm[0] * qm[0],
        s[4] / z - qm[0] * qm[1],
        s[3] / z - qm[1] * qm[1],
    ];
    let cm = post.mean().unwrap();
    let cc = post.covariance().unwrap();
    // Midpoint rule with h = 0.005 on a component of sd 0.1: error far below 1e-5.
    assert_all_close(cm.as_slice(), &qm, 1e-5, "closed mean vs quadrature");
    assert_all_close(
        &[cc[(0, 0)], cc[(0, 1)], cc[(1, 1)]],
        &qc,
        1e-5,
        "closed cov",
    );
    let n = 40_000;
    let samples = post.sample(n, &mut rng_from_seed(4)).unwrap();
    assert!(samples.iter().all(|v| (-10.0..=10.0).contains(v)));
    let sm = mean_vector(&samples);
    let sc = covariance(&samples);
    for d in 0..2 {
        let var = [qc[0], qc[2]][d];
        assert!(
            (sm[d] - qm[d]).abs() < 5.0 * (var / n as f64).sqrt(),
            "mean {d}"
        );
    }
    // Relative tolerance 6 %: the mixture's variance estimate has relative s.e. ≈ 1.2 %.
    assert!((sc[(0, 0)] / qc[0] - 1.0).abs() < 0.06);
    assert!((sc[(1, 1)] / qc[2] - 1.0).abs() < 0.06);
}

#[test]
fn rejection_samplers_fail_instead_of_hanging() {
    // x_o far outside anything the prior can produce: acceptance rate ≈ 0.
    let post = LinearGaussian::default()
        .reference_posterior(&[10.0, 10.0, 10.0])
        .unwrap()
        .unwrap();
    let err = post.sample(10, &mut rng_from_seed(0)).unwrap_err();
    match &err {
        BenchmarkError::RejectionBudget {
            accepted,
            requested,
            proposals,
            ..
        } => {
            assert_eq!((*accepted, *requested, *proposals), (0, 10, 1_000_000));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.to_string().contains("acceptance rate"), "{err}");
}

#[test]
fn bad_observations_are_errors() {
    let task = LinearGaussian::default();
    assert!(matches!(
        task.reference_posterior(&[0.0; 2]),
        Some(Err(BenchmarkError::DimensionMismatch {
            expected: 3,
            found: 2,
            ..
        }))
    ));
    assert!(matches!(
        GaussianMixture.reference_posterior(&[f64::NAN, 0.0]),
        Some(Err(BenchmarkError::NonFinite { index: 0, .. }))
    ));
    assert!(LinearGaussian::new(0).is_err());
    let prior = LinearGaussian::new(5).unwrap().prior();
    assert_eq!(Prior::dim(&prior), 5);
}
