use simfer_distributions::{
    BoxUniform, Independent, LogNormal, MultivariateNormal, Prior, Support, rng_from_seed,
};

use crate::common::{assert_all_close, moments};

fn mixed() -> Independent {
    Independent::new(vec![
        Box::new(BoxUniform::new(vec![-1.0], vec![3.0]).unwrap()),
        Box::new(MultivariateNormal::diagonal(vec![5.0], vec![4.0]).unwrap()),
        Box::new(LogNormal::new(vec![0.0], vec![0.25]).unwrap()),
    ])
    .unwrap()
}

#[test]
fn log_prob_support_and_moments_are_those_of_the_components() {
    let p = mixed();
    assert_eq!(Prior::dim(&p), 3);
    let theta = [3.0, 4.0, 1.5];
    let exact = -(4f64.ln())
        + (-0.5 * (2.0 * std::f64::consts::PI * 4.0).ln() - 1.0 / 8.0)
        + (-(1.5f64.ln())
            - 0.25f64.ln()
            - 0.5 * (2.0 * std::f64::consts::PI).ln()
            - 0.5 * (1.5f64.ln() / 0.25).powi(2));
    assert!((p.log_prob(&theta).unwrap() - exact).abs() < 1e-12);
    assert_eq!(p.log_prob(&[3.5, 4.0, 1.5]).unwrap(), f64::NEG_INFINITY);
    assert_eq!(p.log_prob(&[0.0, 4.0, -1.5]).unwrap(), f64::NEG_INFINITY);
    assert!(p.log_prob(&[0.0, 4.0]).is_err());
    assert_eq!(
        p.support(),
        vec![
            Support::Interval {
                low: -1.0,
                high: 3.0
            },
            Support::Real,
            Support::Positive
        ]
    );
    let mean = p.mean().unwrap();
    let var = p.variance().unwrap();
    assert_all_close(
        mean.as_slice(),
        &[1.0, 5.0, (0.25f64 * 0.25 / 2.0).exp()],
        1e-14,
        "mean",
    );
    let n = 200_000;
    let s = Prior::sample_batch(&p, n, &mut rng_from_seed(4));
    let (m, v) = moments(&s);
    for d in 0..3 {
        // Relative tolerance 2 %: > 5 standard errors of each sample variance at n = 2e5.
        assert!(
            (m[d] - mean[d]).abs() < 5.0 * (var[d] / n as f64).sqrt(),
            "mean {d}"
        );
        assert!((v[d] / var[d] - 1.0).abs() < 0.02, "var {d}");
    }
}

#[test]
fn empty_product_is_an_error() {
    assert!(Independent::new(vec![]).is_err());
}
