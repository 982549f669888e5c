use simfer_distributions::{LogNormal, MultivariateNormal, Prior, Support, rng_from_seed};

use crate::common::moments;

#[test]
fn log_prob_is_the_normal_density_of_ln_theta_with_its_jacobian() {
    let mu = vec![0.4f64.ln(), -3.0];
    let sigma = vec![0.5, 0.2];
    let p = LogNormal::new(mu.clone(), sigma.clone()).unwrap();
    let normal = MultivariateNormal::diagonal(mu, sigma.iter().map(|s| s * s).collect()).unwrap();
    for theta in [[0.4f64, 0.05], [1.3, 0.01], [1e-3, 2.0]] {
        let logs: Vec<f64> = theta.iter().map(|v| v.ln()).collect();
        let exact = normal.log_prob(&logs).unwrap() - logs.iter().sum::<f64>();
        assert!((p.log_prob(&theta).unwrap() - exact).abs() < 1e-12);
    }
    for theta in [[0.0, 1.0], [-1.0, 1.0], [1.0, f64::NAN]] {
        assert_eq!(p.log_prob(&theta).unwrap(), f64::NEG_INFINITY);
        assert!(!p.in_support(&theta));
    }
    assert_eq!(p.support(), vec![Support::Positive; 2]);
    assert!(p.log_prob(&[1.0]).is_err());
}

#[test]
fn density_integrates_to_one() {
    // Midpoint rule on ln-spaced cells over ±10σ of a 1-D log-normal.
    let p = LogNormal::new(vec![0.3], vec![0.7]).unwrap();
    let (lo, hi, cells) = (0.3 - 7.0, 0.3 + 7.0, 200_000);
    let h = (hi - lo) / cells as f64;
    let total: f64 = (0..cells)
        .map(|i| {
            let y = lo + (i as f64 + 0.5) * h;
            let x = y.exp();
            p.log_prob(&[x]).unwrap().exp() * x * h
        })
        .sum();
    assert!((total - 1.0).abs() < 1e-9, "{total}");
}

#[test]
fn sample_moments_match_exact_values() {
    let p = LogNormal::new(vec![-0.125, -3.0], vec![0.5, 0.5]).unwrap();
    let n = 400_000;
    let s = Prior::sample_batch(&p, n, &mut rng_from_seed(3));
    let (mean, var) = moments(&s);
    let exact_mean = p.mean().unwrap();
    let exact_var = p.variance().unwrap();
    for d in 0..2 {
        let (m, s2) = ([-0.125f64, -3.0][d], 0.25f64);
        assert!((exact_mean[d] - (m + s2 / 2.0).exp()).abs() < 1e-14);
        assert!((exact_var[d] - (s2.exp() - 1.0) * (2.0 * m + s2).exp()).abs() < 1e-14);
        // Relative standard errors at n = 4e5: mean sqrt(e^{σ²} − 1)/√n ≈ 0.08 %,
        // variance ≈ sqrt((kurtosis − 1)/n) ≈ 0.45 % (kurtosis ≈ 8.9). Tolerances ≈ 5 s.e.
        assert!((mean[d] / exact_mean[d] - 1.0).abs() < 0.004, "mean {d}");
        assert!((var[d] / exact_var[d] - 1.0).abs() < 0.025, "var {d}");
    }
}

#[test]
fn invalid_parameters_are_errors() {
    assert!(LogNormal::new(vec![0.0], vec![0.0]).is_err());
    assert!(LogNormal::new(vec![0.0], vec![-1.0]).is_err());
    assert!(LogNormal::new(vec![f64::NAN], vec![1.0]).is_err());
    assert!(LogNormal::new(vec![0.0, 0.0], vec![1.0]).is_err());
    assert!(LogNormal::iid(0, 0.0, 1.0).is_err());
}
