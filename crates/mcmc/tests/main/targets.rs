//! The slice sampler on targets known in closed form: moments within tolerances derived
//! from the effective sample sizes, R̂ and ESS, and Kolmogorov–Smirnov tests in 1-D.

use simfer_distributions::BoxUniform;
use simfer_mcmc::{SliceSampler, SliceSettings, diagnostics, from_fn};

use crate::common::{Banana, Gauss2, assert_expectation, ks_distance, ks_p_value};

/// Standard errors allowed: 4.5 (a false alarm about once in 150 000 per check).
const Z: f64 = 4.5;

#[test]
fn correlated_gaussian_moments_rhat_and_ess() {
    let rho = 0.9;
    let prior = BoxUniform::uniform(2, -5.0, 5.0).unwrap();
    let n = 40_000;
    let run = SliceSampler::new(SliceSettings::default())
        .unwrap()
        .sample(&Gauss2 { rho }, Some(&prior), n, 11)
        .unwrap();
    let d = &run.diagnostics;
    assert_eq!((run.samples.ncols(), d.draws_per_chain), (n, 2000));
    assert!(d.max_rhat() <= 1.01, "{d:?}");
    // Per-coordinate slice sampling on ρ = 0.9 decorrelates like a Gibbs sampler, whose
    // lag-1 autocorrelation is ρ² per sweep: τ ≈ (1 + ρ²)/(1 − ρ²) ≈ 9.5, so an ESS near
    // 40 000/9.5 ≈ 4200 is expected; far less would mean a sampler that mixes badly.
    assert!(
        d.min_ess_bulk() > 2500.0 && d.min_ess_tail() > 1500.0,
        "{d:?}"
    );
    let c = &run.chains;
    for i in 0..2 {
        assert_expectation(&format!("E x{i}"), c, |x| x[i], 0.0, Z);
        assert_expectation(&format!("E x{i}²"), c, |x| x[i] * x[i], 1.0, Z);
    }
    assert_expectation("E x0 x1", c, |x| x[0] * x[1], rho, Z);
    // The same on the returned samples (the first N of the chain-major draws: all here).
    let cov = {
        let s = &run.samples;
        let m = s.column_mean();
        let centred = s.map_with_location(|r, _, v| v - m[r]);
        &centred * centred.transpose() / (n as f64 - 1.0)
    };
    assert!((cov[(0, 1)] - rho).abs() < 0.05, "{cov}");
}

#[test]
fn banana_moments_rhat_and_ess() {
    let b = 1.0;
    let prior = BoxUniform::uniform(2, -5.0, 5.0).unwrap();
    let n = 40_000;
    let run = SliceSampler::new(SliceSettings::default())
        .unwrap()
        .sample(&Banana { b }, Some(&prior), n, 12)
        .unwrap();
    let d = &run.diagnostics;
    assert!(d.max_rhat() <= 1.01, "{d:?}");
    assert!(d.min_ess() > 1000.0, "{d:?}");
    let c = &run.chains;
    assert_expectation("E x", c, |x| x[0], 0.0, Z);
    assert_expectation("E y", c, |x| x[1], 0.0, Z);
    assert_expectation("E x²", c, |x| x[0] * x[0], 1.0, Z);
    assert_expectation("E y²", c, |x| x[1] * x[1], 1.0 + 2.0 * b * b, Z);
    assert_expectation("E xy", c, |x| x[0] * x[1], 0.0, Z);
    // The curvature: E[x² y] = b E[x²(x² − 1)] = 2b.
    assert_expectation("E x²y", c, |x| x[0] * x[0] * x[1], 2.0 * b, Z);
}

#[test]
fn one_dimensional_targets_pass_a_kolmogorov_smirnov_test() {
    // Gumbel (skewed, one heavy side) and exponential (a hard boundary at 0, −∞ beyond).
    let gumbel = from_fn(1, |x: &[f64]| -x[0] - (-x[0]).exp());
    let gumbel_cdf = |x: f64| (-(-x).exp()).exp();
    let rate = 2.0;
    let exponential = from_fn(1, move |x: &[f64]| {
        if x[0] < 0.0 {
            f64::NEG_INFINITY
        } else {
            -rate * x[0]
        }
    });
    let exponential_cdf = move |x: f64| {
        if x < 0.0 {
            0.0
        } else {
            1.0 - (-rate * x).exp()
        }
    };
    let prior = BoxUniform::uniform(1, -2.0, 6.0).unwrap();
    let n = 10_000;
    // Thinning by 4 makes the draws nearly independent; the KS p-value uses the smaller of
    // the number of draws and their ESS.
    let sampler = SliceSampler::new(SliceSettings::default().with_thin(4)).unwrap();
    for (name, target, cdf) in [
        (
            "gumbel",
            &gumbel as &dyn simfer_mcmc::LogDensity,
            &gumbel_cdf as &dyn Fn(f64) -> f64,
        ),
        ("exponential", &exponential, &exponential_cdf),
    ] {
        let run = sampler.sample(target, Some(&prior), n, 5).unwrap();
        let draws: Vec<f64> = run.samples.iter().copied().collect();
        let ess = diagnostics::ess_bulk(&run.chains).unwrap()[0]
            .min(diagnostics::ess_tail(&run.chains).unwrap()[0])
            .min(n as f64);
        assert!(ess > 0.5 * n as f64, "{name}: ESS {ess}");
        let dn = ks_distance(&draws, cdf);
        let p = ks_p_value(dn, ess);
        assert!(
            p > 0.001,
            "{name}: KS distance {dn}, p-value {p} at n_eff {ess:.0}"
        );
        // The test has the power to see a distribution that is slightly off: the same
        // draws against the target shifted by a tenth of its scale.
        let shift = if name == "gumbel" { 0.1 } else { 0.05 };
        let p_wrong = ks_p_value(ks_distance(&draws, |x| cdf(x - shift)), ess);
        assert!(
            p_wrong < 1e-6,
            "{name}: a shifted target has p-value {p_wrong}"
        );
    }
}
