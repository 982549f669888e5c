//! SBC, expected coverage and TARP on gaussian_linear, where the posterior is exact:
//! θ ~ N(0, 0.1·I), x ~ N(θ, 0.1·I), p(θ | x) = N(x/2, 0.05·I).

use nalgebra::{DMatrix, DVector};
use rand::RngCore;
use rand_distr::{Distribution, StandardNormal};
use simfer_analysis::{
    AnalysisError, CalibrationStyle, TarpOptions, expected_coverage, run_sbc, run_tarp, tarp_svg,
};

use crate::common::{check_xml, normal, rng};

const D: usize = 3;
const N: usize = 300;
const L: usize = 200;

/// (θ, x) pairs of gaussian_linear.
fn pairs(seed: u64) -> (DMatrix<f64>, DMatrix<f64>) {
    let mut r = rng(seed);
    let thetas = normal(D, N, 0.0, 0.1f64.sqrt(), &mut r);
    let noise = normal(D, N, 0.0, 0.1f64.sqrt(), &mut r);
    let xs = &thetas + noise;
    (thetas, xs)
}

/// Samples of N(x/2, var·I): `var = 0.05` is the exact posterior.
fn posterior(
    var: f64,
) -> impl FnMut(&[f64], usize, &mut dyn RngCore) -> Result<DMatrix<f64>, std::convert::Infallible> {
    move |x: &[f64], n: usize, rng: &mut dyn RngCore| {
        Ok(DMatrix::from_fn(x.len(), n, |i, _| {
            let z: f64 = StandardNormal.sample(rng);
            x[i] / 2.0 + var.sqrt() * z
        }))
    }
}

fn log_prob(
    var: f64,
) -> impl FnMut(&DMatrix<f64>, &[f64]) -> Result<DVector<f64>, std::convert::Infallible> {
    move |th: &DMatrix<f64>, x: &[f64]| {
        Ok(DVector::from_iterator(
            th.ncols(),
            th.column_iter().map(|c| {
                -c.iter()
                    .zip(x)
                    .map(|(t, xi)| (t - xi / 2.0).powi(2))
                    .sum::<f64>()
                    / (2.0 * var)
            }),
        ))
    }
}

#[test]
fn sbc_ranks_are_uniform_for_the_exact_posterior_and_not_for_a_narrow_one() {
    let (thetas, xs) = pairs(30);
    let exact = run_sbc(&thetas, &xs, L, posterior(0.05), &mut rng(31)).unwrap();
    assert_eq!(exact.ranks.len(), D);
    assert!(exact.ranks.iter().flatten().all(|&r| r <= L));
    for (d, ks) in exact.ks.iter().enumerate() {
        assert!(ks.p_value > 0.01, "dimension {d}: KS p = {}", ks.p_value);
    }
    // Rank histograms: N pairs in each dimension.
    for h in exact.rank_histograms(10).unwrap() {
        assert_eq!(h.iter().sum::<u64>(), N as u64);
    }
    // Variance 0.05/4: ranks pile up at both ends.
    let narrow = run_sbc(&thetas, &xs, L, posterior(0.05 / 4.0), &mut rng(31)).unwrap();
    for (d, ks) in narrow.ks.iter().enumerate() {
        assert!(ks.p_value < 1e-4, "dimension {d}: KS p = {}", ks.p_value);
    }
    // The data-averaged posterior of the exact posterior has the prior's spread.
    let dap_var = exact.dap_samples.iter().map(|v| v * v).sum::<f64>() / (D * N) as f64;
    assert!((dap_var - 0.1).abs() < 0.02, "DAP variance {dap_var}");
    // Same seed, same result.
    assert_eq!(
        run_sbc(&thetas, &xs, L, posterior(0.05), &mut rng(31)).unwrap(),
        exact
    );
}

#[test]
fn marginal_and_hpd_coverage_follow_the_diagonal_when_calibrated() {
    let (thetas, xs) = pairs(32);
    let levels: Vec<f64> = (0..=10).map(|k| k as f64 / 10.0).collect();
    let sbc = run_sbc(&thetas, &xs, L, posterior(0.05), &mut rng(33)).unwrap();
    for c in sbc.marginal_coverage(&levels).unwrap() {
        // 99 % binomial band at N = 300 is ±0.074 at α = ½; allow for the max over levels.
        assert!(c.max_deviation() < 0.09, "{}: {:?}", c.name, c.empirical);
    }
    let hpd = expected_coverage(
        &thetas,
        &xs,
        L,
        &levels,
        posterior(0.05),
        log_prob(0.05),
        &mut rng(34),
    )
    .unwrap();
    assert!(hpd.max_deviation() < 0.09, "{:?}", hpd.empirical);
    assert_eq!(hpd.empirical[0], 0.0);
    assert_eq!(hpd.empirical[10], 1.0);
    // Overconfident: the 50 % region of a posterior with a quarter of the variance holds
    // the truth far less often (exactly: P(χ²₃ < 2.37/4) ≈ 0.10).
    let narrow = expected_coverage(
        &thetas,
        &xs,
        L,
        &levels,
        posterior(0.0125),
        log_prob(0.0125),
        &mut rng(34),
    )
    .unwrap();
    assert!(narrow.empirical[5] < 0.25, "{:?}", narrow.empirical);
}

#[test]
fn tarp_is_calibrated_for_the_exact_posterior_only() {
    let (thetas, xs) = pairs(35);
    let opts = TarpOptions::default();
    let exact = run_tarp(&thetas, &xs, L, &opts, posterior(0.05), &mut rng(36)).unwrap();
    assert!(exact.ks.p_value > 0.01, "KS p = {}", exact.ks.p_value);
    assert!(exact.atc.abs() < 0.03, "ATC = {}", exact.atc);
    assert_eq!(exact.alpha.len(), N / 10 + 1);
    assert_eq!(*exact.ecp.last().unwrap(), 1.0);
    assert_eq!(exact.ecp[0], 0.0);
    let narrow = run_tarp(&thetas, &xs, L, &opts, posterior(0.05 / 4.0), &mut rng(36)).unwrap();
    assert!(narrow.ks.p_value < 1e-3, "KS p = {}", narrow.ks.p_value);
    assert!(narrow.atc < -0.03, "overconfident ATC = {}", narrow.atc);
    let wide = run_tarp(&thetas, &xs, L, &opts, posterior(0.05 * 4.0), &mut rng(36)).unwrap();
    assert!(wide.atc > 0.03, "underconfident ATC = {}", wide.atc);
    check_xml(&tarp_svg(&exact, &CalibrationStyle::default()).unwrap()).unwrap();
}

#[test]
fn posterior_failures_and_bad_samples_are_reported_with_the_simulation_index() {
    let (thetas, xs) = pairs(37);
    let mut calls = 0;
    let failing = |x: &[f64], n: usize, rng: &mut dyn RngCore| {
        calls += 1;
        if calls == 5 {
            return Err(std::io::Error::other("sampler diverged"));
        }
        Ok(DMatrix::from_fn(x.len(), n, |_, _| rng.next_u32() as f64))
    };
    match run_sbc(&thetas, &xs, 10, failing, &mut rng(1)) {
        Err(AnalysisError::Posterior { index, source }) => {
            assert_eq!(index, 4);
            assert_eq!(source.to_string(), "sampler diverged");
        }
        other => panic!("expected a posterior error, got {other:?}"),
    }
    let wrong_dim = |_: &[f64], n: usize, _: &mut dyn RngCore| {
        Ok::<_, std::convert::Infallible>(DMatrix::zeros(D + 1, n))
    };
    assert!(matches!(
        run_tarp(
            &thetas,
            &xs,
            10,
            &TarpOptions::default(),
            wrong_dim,
            &mut rng(1)
        ),
        Err(AnalysisError::DimensionMismatch { .. })
    ));
    let nan = |_: &[f64], n: usize, _: &mut dyn RngCore| {
        Ok::<_, std::convert::Infallible>(DMatrix::from_element(D, n, f64::NAN))
    };
    assert!(matches!(
        run_sbc(&thetas, &xs, 10, nan, &mut rng(1)),
        Err(AnalysisError::NonFinite { .. })
    ));
    let short = xs.columns(0, N - 1).into_owned();
    assert!(matches!(
        run_sbc(&thetas, &short, 10, posterior(0.05), &mut rng(1)),
        Err(AnalysisError::DimensionMismatch { .. })
    ));
}
