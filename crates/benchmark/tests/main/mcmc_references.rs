//! The MCMC reference posteriors of slcp, slcp_distractors, bernoulli_glm and
//! bernoulli_glm_raw, checked against importance sampling computed here from the task
//! definitions (independent of the crate's likelihood code and of its sampler).

use std::f64::consts::PI;

use nalgebra::{DMatrix, DVector, Matrix2, Vector2};
use rand::{Rng, RngCore};
use rand_distr::{ChiSquared, Distribution, StandardNormal};
use rayon::prelude::*;
use simfer_benchmark::tasks::{
    BernoulliGlm, BernoulliGlmPosterior, Slcp, SlcpDistractors, SlcpPosterior,
};
use simfer_benchmark::{BenchmarkError, McmcDiagnostics, McmcError};
use simfer_benchmark::{MetropolisSettings, ReferencePosterior, task};
use simfer_distributions::{SeededRng, derive_rng, rng_from_seed};
use simfer_simulators::Simulator;

use crate::common::{covariance, mean_vector};
use crate::glm_and_slcp::{design_matrix, prior_precision};

/// Self-normalized importance-sampling estimates from values (one per column) and their
/// log weights.
struct Weighted {
    values: DMatrix<f64>,
    /// Normalized weights.
    weights: Vec<f64>,
    mean: DVector<f64>,
    cov: DMatrix<f64>,
    /// The variance of each centred product `(θ_i − μ_i)(θ_j − μ_j)`, for the standard
    /// error of the covariance without assuming Gaussian fourth moments.
    product_var: DMatrix<f64>,
    /// `(Σw)² / Σw²`.
    ess: f64,
}

fn weighted_moments(values: &DMatrix<f64>, log_w: &[f64]) -> Weighted {
    let max = log_w.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let w: Vec<f64> = log_w.iter().map(|l| (l - max).exp()).collect();
    let sum: f64 = w.iter().sum();
    let ess = sum * sum / w.iter().map(|v| v * v).sum::<f64>();
    let d = values.nrows();
    let mut mean = DVector::zeros(d);
    for (c, wi) in values.column_iter().zip(&w) {
        mean += c * (*wi / sum);
    }
    let mut cov = DMatrix::zeros(d, d);
    for (c, wi) in values.column_iter().zip(&w) {
        let r = c - &mean;
        cov += &r * r.transpose() * (*wi / sum);
    }
    let mut product_var = DMatrix::zeros(d, d);
    for (c, wi) in values.column_iter().zip(&w) {
        let r = c - &mean;
        product_var += (&r * r.transpose() - &cov).map(|v| v * v) * (*wi / sum);
    }
    Weighted {
        values: values.clone(),
        weights: w.iter().map(|v| v / sum).collect(),
        mean,
        cov,
        product_var,
        ess,
    }
}

impl Weighted {
    /// The estimated probability that coordinate `i` is at most `x`.
    fn cdf(&self, i: usize, x: f64) -> f64 {
        self.values
            .row(i)
            .iter()
            .zip(&self.weights)
            .filter(|(v, _)| **v <= x)
            .map(|(_, w)| w)
            .sum()
    }
}

/// Importance sampling in parallel: `chunks × per_chunk` draws of `(θ, log weight)` from
/// `draw`, chunk `c` drawing from `derive_rng(seed, c)`, reduced to [`Weighted`] moments.
/// Draws more than e⁴⁰ below their chunk's largest weight (so below the overall largest)
/// are dropped before the reduction: they change nothing, and it saves memory.
fn parallel_importance(
    seed: u64,
    chunks: u64,
    per_chunk: usize,
    draw: impl Fn(&mut SeededRng) -> (DVector<f64>, f64) + Sync,
) -> Weighted {
    let parts: Vec<Vec<(DVector<f64>, f64)>> = (0..chunks)
        .into_par_iter()
        .map(|c| {
            let mut r = derive_rng(seed, c);
            let draws: Vec<(DVector<f64>, f64)> = (0..per_chunk).map(|_| draw(&mut r)).collect();
            let max = draws.iter().map(|d| d.1).fold(f64::NEG_INFINITY, f64::max);
            draws.into_iter().filter(|d| d.1 > max - 40.0).collect()
        })
        .collect();
    let (values, log_w): (Vec<DVector<f64>>, Vec<f64>) = parts.into_iter().flatten().unzip();
    weighted_moments(&DMatrix::from_columns(&values), &log_w)
}

/// Asserts that the sample mean and covariance of `samples` (n approximately independent
/// MCMC draws) match the importance-sampling estimates, and that the MCMC quantiles at
/// 2.5 %, 25 %, 50 %, 75 % and 97.5 % of each coordinate have those probabilities under
/// importance sampling, all within 4.5 combined standard errors.
///
/// The standard error of a covariance entry uses the variance of the centred products (the
/// larger of the MCMC and the IS estimate), not the Gaussian formula: the slcp marginals
/// have heavy tails (a mean's scale is itself uncertain), and their fourth moments are
/// several times the Gaussian ones.
fn assert_moments_match(what: &str, samples: &DMatrix<f64>, is: &Weighted) {
    let n = samples.ncols() as f64;
    let d = samples.nrows();
    let mcmc = weighted_moments(samples, &vec![0.0; samples.ncols()]);
    // The returned draws are thinned from chains whose ESS is at least n, so they are close
    // to independent; 1.5/n instead of 1/n allows for an effective size somewhat below n.
    let inv = 1.5 / n + 1.0 / is.ess;
    for i in 0..d {
        let se = (is.cov[(i, i)].max(mcmc.cov[(i, i)]) * inv).sqrt();
        assert!(
            (mcmc.mean[i] - is.mean[i]).abs() < 4.5 * se,
            "{what}: mean[{i}] MCMC {} vs IS {} (se {se})",
            mcmc.mean[i],
            is.mean[i]
        );
        for j in 0..d {
            let se = (is.product_var[(i, j)].max(mcmc.product_var[(i, j)]) * inv).sqrt();
            assert!(
                (mcmc.cov[(i, j)] - is.cov[(i, j)]).abs() < 4.5 * se,
                "{what}: cov[({i}, {j})] MCMC {} vs IS {} (se {se})",
                mcmc.cov[(i, j)],
                is.cov[(i, j)]
            );
        }
        let mut sorted: Vec<f64> = samples.row(i).iter().copied().collect();
        sorted.sort_unstable_by(f64::total_cmp);
        for level in [0.025, 0.25, 0.5, 0.75, 0.975] {
            let q = sorted[(level * n) as usize - 1];
            let p = is.cdf(i, q);
            let se = (level * (1.0 - level) * inv).sqrt();
            assert!(
                (p - level).abs() < 4.5 * se,
                "{what}: coordinate {i}: the MCMC {level} quantile {q} has IS probability {p}"
            );
        }
    }
}

/// The reference posterior of task `name` for `x_o`.
fn reference(name: &str, x_o: &[f64]) -> Box<dyn ReferencePosterior> {
    task(name)
        .unwrap()
        .reference_posterior(x_o)
        .expect("the task has a reference posterior")
        .unwrap()
}

// ---------------------------------------------------------------- bernoulli_glm

/// The log posterior from the spec, constants included:
/// `Σ_t [y_t η_t − ln(1 + e^{η_t})] + ln N(θ; 0, B⁻¹)` with `Σ_t y_t η_t = θᵀ(Xᵀy)`.
fn glm_log_posterior(
    x: &DMatrix<f64>,
    b: &DMatrix<f64>,
    s: &DVector<f64>,
    theta: &DVector<f64>,
) -> f64 {
    let eta = x * theta;
    let log_lik = theta.dot(s) - eta.iter().map(|&e| (1.0 + e.exp()).ln()).sum::<f64>();
    let log_prior = -5.0 * (2.0 * PI).ln() + 0.5 * b.determinant().ln()
        - 0.5 * (theta.transpose() * b * theta)[0];
    log_lik + log_prior
}

/// Newton's method written out for the test: mode and negative Hessian.
fn glm_newton(
    x: &DMatrix<f64>,
    b: &DMatrix<f64>,
    s: &DVector<f64>,
) -> (DVector<f64>, DMatrix<f64>) {
    let mut theta = DVector::zeros(10);
    for _ in 0..100 {
        let p = (x * &theta).map(|e| 1.0 / (1.0 + (-e).exp()));
        let g = s - x.transpose() * &p - b * &theta;
        let w = DMatrix::from_diagonal(&p.map(|v| v * (1.0 - v)));
        let h = b + x.transpose() * w * x;
        let step = h.clone().try_inverse().unwrap() * &g;
        // Halve the step until the log posterior does not decrease (it is concave).
        let mut t = 1.0;
        while glm_log_posterior(x, b, s, &(&theta + &step * t))
            < glm_log_posterior(x, b, s, &theta) - 1e-12
        {
            t /= 2.0;
        }
        theta += step * t;
        if g.norm() < 1e-11 {
            return (theta, h);
        }
    }
    panic!("the test's Newton iteration did not converge");
}

/// bernoulli_glm observation simulated at a fixed θ: (y, Xᵀy).
fn glm_observation(seed: u64) -> (Vec<f64>, Vec<f64>) {
    let theta = [0.5, 0.8, -0.3, 0.2, 0.1, -0.4, 0.3, 0.0, -0.1, 0.25];
    let mut y = vec![0.0; 100];
    BernoulliGlm::raw()
        .simulate(&theta, &mut rng_from_seed(seed), &mut y)
        .unwrap();
    let s = design_matrix().transpose() * DVector::from_column_slice(&y);
    (y, s.iter().copied().collect())
}

#[test]
fn bernoulli_glm_mcmc_matches_importance_sampling_from_the_laplace_approximation() {
    let (x, b) = (design_matrix(), prior_precision());
    let (_, s) = glm_observation(11);
    let s_vec = DVector::from_column_slice(&s);
    let (mode, h) = glm_newton(&x, &b, &s_vec);

    let posterior = BernoulliGlmPosterior::new(&s).unwrap();
    // The crate's mode and Laplace covariance agree with the test's Newton iteration.
    assert!((posterior.mode() - &mode).amax() < 1e-7, "mode");
    let laplace = h.clone().try_inverse().unwrap();
    assert!((posterior.laplace_covariance() - &laplace).amax() < 1e-9);
    // Its unnormalized log density differs from the full one by a constant.
    let offset =
        glm_log_posterior(&x, &b, &s_vec, &mode) - posterior.log_density(mode.as_slice()).unwrap();
    let mut rng = rng_from_seed(4);
    for _ in 0..5 {
        let theta = DVector::from_fn(10, |_, _| rng.random_range(-2.0..2.0));
        let diff = glm_log_posterior(&x, &b, &s_vec, &theta)
            - posterior.log_density(theta.as_slice()).unwrap();
        assert!((diff - offset).abs() < 1e-9, "{diff} vs {offset}");
    }

    // Importance sampling from a Student-t (ν = 5) centred at the mode with the Laplace
    // covariance as scale: heavier tails than the posterior, so bounded weights.
    let nu = 5.0;
    let l = laplace.clone().cholesky().unwrap().l();
    let chi = ChiSquared::new(nu).unwrap();
    let is = parallel_importance(99, 40, 5000, |r| {
        let z = DVector::from_fn(10, |_, _| StandardNormal.sample(&mut *r));
        let w: f64 = chi.sample(r);
        let dev = &l * z / (w / nu).sqrt();
        let maha = (dev.transpose() * &h * &dev)[0];
        let log_q = -(nu + 10.0) / 2.0 * (1.0 + maha / nu).ln();
        let theta = &mode + dev;
        let log_w = glm_log_posterior(&x, &b, &s_vec, &theta) - log_q;
        (theta, log_w)
    });
    assert!(is.ess > 0.3 * 200_000.0, "IS ESS {}", is.ess);

    let n = 10_000;
    let (samples, diagnostics) = posterior
        .sample_with_diagnostics(n, &mut rng_from_seed(5))
        .unwrap();
    assert_eq!(samples.shape(), (10, n));
    assert!(diagnostics.max_rhat() <= 1.01 && diagnostics.min_ess() >= n as f64);
    assert_moments_match("bernoulli_glm", &samples, &is);
    // The posterior is not the Laplace approximation: IS moves the mean measurably away from
    // the mode, and MCMC follows (a check that the comparison has power).
    let shift = (&is.mean - &mode).amax();
    assert!(shift > 0.02, "posterior mean − mode = {shift}");
}

#[test]
fn bernoulli_glm_raw_gives_the_same_samples_as_bernoulli_glm() {
    let (y, s) = glm_observation(12);
    let raw = reference("bernoulli_glm_raw", &y);
    let summary = reference("bernoulli_glm", &s);
    let a = raw.sample(1000, &mut rng_from_seed(8)).unwrap();
    let b = summary.sample(1000, &mut rng_from_seed(8)).unwrap();
    assert_eq!(a, b);
    // All-zero and all-one responses are extreme but valid observations.
    for value in [0.0, 1.0] {
        let p = BernoulliGlmPosterior::from_responses(&[value; 100]).unwrap();
        let (samples, d) = p
            .sample_with_diagnostics(200, &mut rng_from_seed(1))
            .unwrap();
        assert!(d.max_rhat() <= 1.01 && samples.iter().all(|v| v.is_finite()));
        // The intercept follows the responses.
        assert_eq!(p.mode()[0] > 0.0, value == 1.0);
    }
    let p = BernoulliGlmPosterior::from_responses(&y).unwrap();
    for (found, expected) in p.statistics().iter().zip(&s) {
        assert!((found - expected).abs() < 1e-12);
    }
    // Raw observations must be binary and 100 long; summaries 10 long.
    let mut bad = y.clone();
    bad[7] = 0.5;
    let err = BernoulliGlmPosterior::from_responses(&bad).unwrap_err();
    assert!(err.to_string().contains("y[7] = 0.5"), "{err}");
    assert!(matches!(
        BernoulliGlmPosterior::from_responses(&s),
        Err(BenchmarkError::DimensionMismatch {
            expected: 100,
            found: 10,
            ..
        })
    ));
    assert!(
        task("bernoulli_glm")
            .unwrap()
            .reference_posterior(&y)
            .unwrap()
            .is_err()
    );
    let mut nan = s.clone();
    nan[2] = f64::NAN;
    assert!(matches!(
        BernoulliGlmPosterior::new(&nan),
        Err(BenchmarkError::NonFinite { index: 2, .. })
    ));
}

// ---------------------------------------------------------------- slcp

/// The slcp log-likelihood from the spec, with nalgebra's 2 × 2 inverse and determinant.
fn slcp_log_likelihood(x_o: &[f64], theta: &[f64]) -> f64 {
    let (s1, s2, rho) = (theta[2].powi(2), theta[3].powi(2), theta[4].tanh());
    let sigma = Matrix2::new(s1 * s1 + 1e-6, rho * s1 * s2, rho * s1 * s2, s2 * s2 + 1e-6);
    let inv = sigma.try_inverse().unwrap();
    let log_det = sigma.determinant().ln();
    x_o.chunks_exact(2)
        .map(|p| {
            let d = Vector2::new(p[0] - theta[0], p[1] - theta[1]);
            -(2.0 * PI).ln() - 0.5 * log_det - 0.5 * (d.transpose() * inv * d)[0]
        })
        .sum()
}

fn slcp_observation(theta: &[f64], seed: u64) -> Vec<f64> {
    let mut x = vec![0.0; 8];
    Slcp.simulate(theta, &mut rng_from_seed(seed), &mut x)
        .unwrap();
    x
}

/// `(θ1, θ2, |θ3|, |θ4|, θ5)` of each column.
fn folded(samples: &DMatrix<f64>) -> DMatrix<f64> {
    let mut f = samples.clone();
    for mut c in f.column_iter_mut() {
        c[2] = c[2].abs();
        c[3] = c[3].abs();
    }
    f
}

/// Importance sampling from the U(−3, 3)⁵ prior (weights ∝ likelihood): estimates of the
/// posterior mean and covariance of `(θ1, θ2, |θ3|, |θ4|, θ5)`, and the weights' ESS.
fn slcp_prior_importance(x_o: &[f64], chunks: u64) -> Weighted {
    parallel_importance(7, chunks, 50_000, |r| {
        let theta: Vec<f64> = (0..5).map(|_| r.random_range(-3.0..3.0)).collect();
        let log_w = slcp_log_likelihood(x_o, &theta);
        let folded = [theta[0], theta[1], theta[2].abs(), theta[3].abs(), theta[4]];
        (DVector::from_row_slice(&folded), log_w)
    })
}

#[test]
fn slcp_mcmc_matches_importance_sampling_and_has_four_equal_mirror_modes() {
    let x_o = slcp_observation(&[0.4, -0.6, 1.4, -1.2, 0.5], 21);
    let posterior = SlcpPosterior::new(&x_o).unwrap();

    // The likelihood is the spec's, and the mirror images have the same density.
    let mut rng = rng_from_seed(3);
    for _ in 0..20 {
        let theta: Vec<f64> = (0..5).map(|_| rng.random_range(-3.0..3.0)).collect();
        let expected = slcp_log_likelihood(&x_o, &theta);
        let found = posterior.log_likelihood(&theta).unwrap();
        assert!(
            (found - expected).abs() < 1e-9 * expected.abs().max(1.0),
            "{found} vs {expected}"
        );
        let ln_prior = -5.0 * 6f64.ln();
        let density = posterior.log_density(&theta).unwrap();
        assert!((density - found - ln_prior).abs() < 1e-12 * found.abs().max(1.0));
        for (f3, f4) in [(-1.0, 1.0), (1.0, -1.0), (-1.0, -1.0)] {
            let mut m = theta.clone();
            m[2] *= f3;
            m[3] *= f4;
            assert_eq!(
                posterior.log_density(&m).unwrap(),
                posterior.log_density(&theta).unwrap()
            );
        }
    }
    assert_eq!(
        posterior.log_density(&[0.0, 0.0, 3.1, 1.0, 0.0]).unwrap(),
        f64::NEG_INFINITY
    );
    assert!(posterior.log_density(&[0.0; 4]).is_err());

    let is = slcp_prior_importance(&x_o, 80);
    assert!(is.ess > 20_000.0, "IS ESS {}", is.ess);

    let n = 10_000;
    let (samples, diagnostics) = posterior
        .sample_with_diagnostics(n, &mut rng_from_seed(6))
        .unwrap();
    assert_eq!(samples.shape(), (5, n));
    assert!(diagnostics.max_rhat() <= 1.01 && diagnostics.min_ess() >= n as f64);
    assert!(samples.iter().all(|v| (-3.0..=3.0).contains(v)));
    assert_moments_match("slcp", &folded(&samples), &is);

    // The four mirror modes (signs of θ3, θ4) hold a quarter of the samples each.
    let mut quadrant = vec![Vec::new(); 4];
    for c in samples.column_iter() {
        let q = usize::from(c[2] < 0.0) + 2 * usize::from(c[3] < 0.0);
        quadrant[q].push(c.into_owned());
    }
    let sd = (n as f64 * 0.25 * 0.75).sqrt();
    for (q, members) in quadrant.iter().enumerate() {
        assert!(
            (members.len() as f64 - n as f64 / 4.0).abs() < 4.5 * sd,
            "quadrant {q}: {} of {n}",
            members.len()
        );
        // And within each, the same distribution of (θ1, θ2, |θ3|, |θ4|, θ5).
        let f = folded(&DMatrix::from_columns(members));
        let m = mean_vector(&f);
        for i in 0..5 {
            let se = (is.cov[(i, i)] * (1.5 / f.ncols() as f64 + 1.0 / is.ess)).sqrt();
            assert!(
                (m[i] - is.mean[i]).abs() < 4.5 * se,
                "quadrant {q}, mean[{i}]"
            );
        }
    }
}

/// Importance sampling for slcp in the folded space `(θ1, θ2, |θ3|, |θ4|, θ5)` from the
/// defensive mixture 0.1 prior + 0.9 Student-t (ν = 4) centred at `centre` with scale
/// matrix `spread`: with the prior in the mixture the weights are bounded (by 10 × the
/// likelihood's maximum over its value at a prior draw's), whatever the Student-t.
fn slcp_defensive_importance(
    x_o: &[f64],
    centre: &DVector<f64>,
    spread: &DMatrix<f64>,
    seed: u64,
    chunks: u64,
) -> Weighted {
    let l = spread.clone().cholesky().unwrap().l();
    let prec = spread.clone().try_inverse().unwrap();
    let nu = 4.0;
    // Normalized folded-space densities: the prior is uniform on a box of volume 6³·3².
    let log_prior = -(216.0f64 * 9.0).ln();
    let log_det = l.diagonal().iter().map(|v| v.ln()).sum::<f64>();
    // Γ((ν + 5)/2) / (Γ(ν/2) (νπ)^{5/2} |Σ|^{1/2}) for ν = 4: Γ(4.5) = 3.5·2.5·1.5·0.5·√π,
    // Γ(2) = 1.
    let gamma_4_5 = 3.5 * 2.5 * 1.5 * 0.5 * PI.sqrt();
    let log_t = |d: &DVector<f64>| {
        gamma_4_5.ln()
            - 2.5 * (nu * PI).ln()
            - log_det
            - (nu + 5.0) / 2.0 * (1.0 + (d.transpose() * &prec * d)[0] / nu).ln()
    };
    let low = [-3.0, -3.0, 0.0, 0.0, -3.0];
    let chi = ChiSquared::new(nu).unwrap();
    parallel_importance(seed, chunks, 10_000, |r| {
        let theta: DVector<f64> = if r.random::<f64>() < 0.1 {
            DVector::from_fn(5, |i, _| {
                let width = if low[i] == 0.0 { 3.0 } else { 6.0 };
                low[i] + width * r.random::<f64>()
            })
        } else {
            let z = DVector::from_fn(5, |_, _| StandardNormal.sample(&mut *r));
            let w: f64 = chi.sample(r);
            centre + &l * z / (w / nu).sqrt()
        };
        let inside = (0..5).all(|i| low[i] <= theta[i] && theta[i] <= 3.0);
        let t = log_t(&(&theta - centre));
        let log_w = if inside {
            let m = t.max(log_prior);
            let log_q = m + (0.9 * (t - m).exp() + 0.1 * (log_prior - m).exp()).ln();
            slcp_log_likelihood(x_o, theta.as_slice()) + log_prior - log_q
        } else {
            f64::NEG_INFINITY
        };
        (theta, log_w)
    })
}

#[test]
fn slcp_on_a_hard_observation_matches_defensive_importance_sampling() {
    // Small scales (|θ3| = 0.3: s1 = 0.09) and a mean near the edge of the box make a
    // narrow posterior that touches the boundary: prior draws alone would almost never
    // land in it. The importance sampling proposal is fitted to the MCMC samples (scale
    // 1.5 times their standard deviations), but made defensive, so the estimate does not
    // rely on the MCMC being right.
    let x_o = slcp_observation(&[2.93, -1.0, 0.3, 1.1, 1.5], 5);
    let posterior = SlcpPosterior::new(&x_o).unwrap();
    let n = 10_000;
    let (samples, diagnostics) = posterior
        .sample_with_diagnostics(n, &mut rng_from_seed(2))
        .unwrap();
    assert!(diagnostics.max_rhat() <= 1.01 && diagnostics.min_ess() >= n as f64);
    let f = folded(&samples);
    let is = slcp_defensive_importance(&x_o, &mean_vector(&f), &(covariance(&f) * 2.25), 31, 40);
    assert!(is.ess > 20_000.0, "IS ESS {}", is.ess);
    assert_moments_match("slcp (hard)", &f, &is);
}

#[test]
fn slcp_distractors_reference_is_the_slcp_reference_of_the_embedded_data() {
    let theta = [0.4, -0.6, 1.4, -1.2, 0.5];
    let mut x = vec![0.0; 100];
    SlcpDistractors
        .simulate(&theta, &mut rng_from_seed(4), &mut x)
        .unwrap();
    let data = SlcpDistractors::slcp_data(&x).unwrap();
    let embedded: Vec<f64> = SlcpDistractors::DATA_POSITIONS
        .iter()
        .map(|&p| x[p])
        .collect();
    assert_eq!(data.to_vec(), embedded);
    let distractors = reference("slcp_distractors", &x);
    let slcp = reference("slcp", &data);
    let a = distractors.sample(2000, &mut rng_from_seed(1)).unwrap();
    let b = slcp.sample(2000, &mut rng_from_seed(1)).unwrap();
    assert_eq!(a, b);
    assert!(matches!(
        SlcpDistractors::slcp_data(&data),
        Err(BenchmarkError::DimensionMismatch {
            expected: 100,
            found: 8,
            ..
        })
    ));
    assert!(
        task("slcp_distractors")
            .unwrap()
            .reference_posterior(&data)
            .unwrap()
            .is_err()
    );
}

// ---------------------------------------------------------------- budget, seeds, threads

#[test]
fn a_budget_too_small_is_a_convergence_error_naming_the_check() {
    let x_o = slcp_observation(&[0.4, -0.6, 1.4, -1.2, 0.5], 21);
    let settings = MetropolisSettings::default()
        .with_warmup(200)
        .with_max_iterations(100);
    let posterior = SlcpPosterior::new(&x_o)
        .unwrap()
        .with_settings(settings.clone())
        .unwrap();
    let err = posterior
        .sample_with_diagnostics(1000, &mut rng_from_seed(0))
        .unwrap_err();
    let msg = err.to_string();
    match err {
        BenchmarkError::Mcmc(McmcError::Convergence {
            iterations,
            chains,
            min_ess,
            required_ess,
            ..
        }) => {
            assert_eq!((iterations, chains), (100, 8));
            assert!(min_ess < required_ess && required_ess == 2000.0);
        }
        other => panic!("expected a convergence error, found {other:?}"),
    }
    assert!(
        msg.contains("the slcp posterior")
            && msg.contains("budget of 100 iterations")
            && msg.contains("ESS of")
            && msg.contains("at least 2000 required"),
        "{msg}"
    );
    // The same through the trait, for bernoulli_glm.
    let (_, s) = glm_observation(12);
    let glm = BernoulliGlmPosterior::new(&s)
        .unwrap()
        .with_settings(settings)
        .unwrap();
    let err = ReferencePosterior::sample(&glm, 500, &mut rng_from_seed(0)).unwrap_err();
    assert!(
        err.to_string().contains("the bernoulli_glm posterior"),
        "{err}"
    );
    // Settings that make no sense are refused up front.
    let bad = MetropolisSettings::default().with_chains(1);
    assert!(matches!(
        SlcpPosterior::new(&x_o).unwrap().with_settings(bad),
        Err(BenchmarkError::Mcmc(McmcError::InvalidConfig(_)))
    ));
    assert!(
        MetropolisSettings::default()
            .with_max_rhat(1.0)
            .check()
            .is_err()
    );
}

#[test]
fn mcmc_samples_depend_only_on_the_seed_not_on_the_thread_count() {
    let x_o = slcp_observation(&[0.4, -0.6, 1.4, -1.2, 0.5], 21);
    let (_, s) = glm_observation(12);
    let slcp = SlcpPosterior::new(&x_o).unwrap();
    let glm = BernoulliGlmPosterior::new(&s).unwrap();
    // Everything but the wall-clock time.
    let untimed = |(samples, diagnostics): (DMatrix<f64>, McmcDiagnostics)| {
        assert!(diagnostics.seconds > 0.0);
        let diagnostics = McmcDiagnostics {
            seconds: 0.0,
            ..diagnostics
        };
        (samples, diagnostics)
    };
    let run = |threads: usize, seed: u64| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let mut rng = rng_from_seed(seed);
            let a = untimed(slcp.sample_with_diagnostics(500, &mut rng).unwrap());
            let b = untimed(glm.sample_with_diagnostics(500, &mut rng).unwrap());
            // The caller's generator moves on by a fixed amount.
            (a, b, rng.next_u64())
        })
    };
    let one = run(1, 3);
    let two = run(2, 3);
    assert_eq!(one, two);
    let other = run(2, 4);
    assert_ne!(one.0.0, other.0.0);
    assert_ne!(one.1.0, other.1.0);
}
