//! `grad_log_prob` of every prior against central differences of `log_prob`, and the
//! default (numerical) gradient of a prior that does not override it.

use nalgebra::{DMatrix, DVector};
use simfer_distributions::{
    BoxUniform, DistributionError, Independent, LogNormal, MultivariateNormal, Prior, Support,
};

fn central(p: &dyn Prior, theta: &[f64]) -> Vec<f64> {
    (0..theta.len())
        .map(|i| {
            let h = 1e-5;
            let (mut a, mut b) = (theta.to_vec(), theta.to_vec());
            a[i] += h;
            b[i] -= h;
            (p.log_prob(&a).unwrap() - p.log_prob(&b).unwrap()) / (2.0 * h)
        })
        .collect()
}

fn check(p: &dyn Prior, theta: &[f64]) {
    let g = p.grad_log_prob(theta).unwrap();
    let fd = central(p, theta);
    for (i, (a, b)) in g.iter().zip(&fd).enumerate() {
        assert!(
            (a - b).abs() < 1e-6 * (1.0 + b.abs()),
            "{p:?} at {theta:?}, {i}: {a} vs {b}"
        );
    }
    assert!(
        p.grad_log_prob(&theta[1..]).is_err(),
        "a θ of the wrong length"
    );
}

#[test]
fn closed_form_gradients_match_central_differences() {
    check(
        &BoxUniform::uniform(3, -2.0, 2.0).unwrap(),
        &[0.3, -1.0, 1.5],
    );
    check(
        &LogNormal::new(vec![0.1, -0.5], vec![0.4, 1.2]).unwrap(),
        &[1.3, 0.2],
    );
    let cov = DMatrix::from_row_slice(3, 3, &[2.0, 0.5, 0.1, 0.5, 1.0, -0.3, 0.1, -0.3, 0.7]);
    let mvn = MultivariateNormal::new(vec![1.0, -1.0, 0.5], cov.clone()).unwrap();
    check(&mvn, &[0.2, 0.4, -1.1]);
    let by_precision =
        MultivariateNormal::from_precision(vec![1.0, -1.0, 0.5], cov.try_inverse().unwrap())
            .unwrap();
    check(&by_precision, &[-0.6, 1.4, 0.3]);
    let product = Independent::new(vec![
        Box::new(BoxUniform::uniform(1, 0.0, 1.0).unwrap()),
        Box::new(mvn.clone()),
        Box::new(LogNormal::new(vec![0.0], vec![1.0]).unwrap()),
    ])
    .unwrap();
    check(&product, &[0.5, 0.2, 0.4, -1.1, 2.0]);
}

/// A prior of this file: N(0, 1) per dimension, without its own gradient.
#[derive(Debug)]
struct StdNormal(usize);

impl Prior for StdNormal {
    fn dim(&self) -> usize {
        self.0
    }
    fn sample(&self, rng: &mut dyn rand::RngCore) -> DVector<f64> {
        DVector::from_fn(self.0, |_, _| {
            rand_distr::Distribution::sample(&rand_distr::StandardNormal, rng)
        })
    }
    fn log_prob(&self, theta: &[f64]) -> Result<f64, DistributionError> {
        Ok(theta.iter().map(|t| -0.5 * t * t).sum())
    }
    fn support(&self) -> Vec<Support> {
        vec![Support::Real; self.0]
    }
}

#[test]
fn the_default_gradient_is_numerical_and_accurate() {
    let g = StdNormal(2).grad_log_prob(&[0.5, -2.0]).unwrap();
    assert!(
        (g[0] + 0.5).abs() < 1e-8 && (g[1] - 2.0).abs() < 1e-8,
        "{g:?}"
    );
}
