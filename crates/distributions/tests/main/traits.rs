//! Properties every prior has, and the trait plumbing (Box/Arc/&, Proposal, PriorSpec).

use std::sync::Arc;

use nalgebra::{DMatrix, DVector};
use rand::RngCore;
use simfer_distributions::{
    BoxUniform, DistributionError, Independent, LogNormal, MultivariateNormal, Prior, PriorSpec,
    Proposal, derive_rng, rng_from_seed,
};

fn all_priors() -> Vec<Box<dyn Prior>> {
    let cov = DMatrix::from_row_slice(2, 2, &[1.0, 0.3, 0.3, 0.5]);
    vec![
        Box::new(BoxUniform::new(vec![-1.0, 0.0], vec![1.0, 2.0]).unwrap()),
        Box::new(MultivariateNormal::new(vec![0.0, 1.0], cov.clone()).unwrap()),
        Box::new(MultivariateNormal::from_precision(vec![0.0, 1.0], cov).unwrap()),
        Box::new(LogNormal::new(vec![0.0, -1.0], vec![0.5, 1.0]).unwrap()),
        Box::new(
            Independent::new(vec![
                Box::new(BoxUniform::uniform(1, 0.0, 1.0).unwrap()),
                Box::new(LogNormal::iid(2, 0.0, 1.0).unwrap()),
            ])
            .unwrap(),
        ),
    ]
}

#[test]
fn batch_sampling_equals_repeated_single_draws() {
    for p in all_priors() {
        let batch = Prior::sample_batch(&p, 7, &mut rng_from_seed(9));
        let mut rng = rng_from_seed(9);
        for j in 0..7 {
            let single = p.sample(&mut rng);
            assert_eq!(batch.column(j), single, "{p:?}, column {j}");
        }
    }
}

#[test]
fn batch_log_prob_equals_single_log_prob_and_samples_are_in_support() {
    for p in all_priors() {
        let batch = Prior::sample_batch(&p, 50, &mut rng_from_seed(2));
        let lp = p.log_prob_batch(&batch).unwrap();
        for (j, col) in batch.column_iter().enumerate() {
            let single = p.log_prob(col.as_slice()).unwrap();
            assert!(
                (lp[j] - single).abs() < 1e-12 * single.abs().max(1.0),
                "{p:?}"
            );
            assert!(single.is_finite() && p.in_support(col.as_slice()), "{p:?}");
        }
        let wrong = DMatrix::zeros(Prior::dim(&p) + 1, 3);
        assert!(matches!(
            p.log_prob_batch(&wrong),
            Err(DistributionError::DimensionMismatch { .. })
        ));
    }
}

#[test]
fn specs_round_trip_through_json() {
    for p in all_priors() {
        let spec = p.spec();
        let json = serde_json::to_string(&spec).unwrap();
        let back: PriorSpec = serde_json::from_str(&json).unwrap();
        assert_eq!(back, spec);
        let rebuilt = back.build().unwrap();
        let theta = Prior::sample_batch(&p, 5, &mut rng_from_seed(1));
        assert_eq!(
            rebuilt.log_prob_batch(&theta).unwrap(),
            p.log_prob_batch(&theta).unwrap()
        );
    }
    let bad = PriorSpec::BoxUniform {
        low: vec![1.0],
        high: vec![0.0],
    };
    assert!(bad.build().is_err());
    let ragged = PriorSpec::MultivariateNormal {
        mean: vec![0.0, 0.0],
        covariance: vec![vec![1.0, 0.0], vec![0.0]],
    };
    assert!(ragged.build().is_err());
}

#[derive(Debug)]
struct Custom;

impl Prior for Custom {
    fn dim(&self) -> usize {
        1
    }
    fn sample(&self, _rng: &mut dyn RngCore) -> DVector<f64> {
        DVector::from_element(1, 0.5)
    }
    fn log_prob(&self, theta: &[f64]) -> Result<f64, DistributionError> {
        Ok(if theta[0] == 0.5 {
            0.0
        } else {
            f64::NEG_INFINITY
        })
    }
    fn support(&self) -> Vec<simfer_distributions::Support> {
        vec![simfer_distributions::Support::Real]
    }
}

#[test]
fn a_custom_prior_gets_default_methods_and_a_non_buildable_spec() {
    let p = Custom;
    assert!(p.in_support(&[0.5]) && !p.in_support(&[0.5, 0.5]));
    assert_eq!(p.mean(), None);
    let spec = p.spec();
    assert_eq!(
        spec,
        PriorSpec::Custom {
            name: "Custom".into()
        }
    );
    let err = spec.build().unwrap_err().to_string();
    assert!(err.contains("Custom"), "{err}");
}

/// Stands in for a posterior defined in another crate: it is a proposal but not a prior.
struct FakePosterior;

impl Proposal for FakePosterior {
    fn theta_dim(&self) -> usize {
        2
    }
    fn propose(
        &self,
        _n: usize,
        _rng: &mut dyn RngCore,
    ) -> Result<DMatrix<f64>, DistributionError> {
        Err(DistributionError::sampling("rejection budget spent"))
    }
}

fn draw(proposal: &dyn Proposal, n: usize) -> Result<DMatrix<f64>, DistributionError> {
    proposal.propose(n, &mut derive_rng(0, 0))
}

fn takes_prior(p: impl Prior) -> usize {
    Prior::dim(&p)
}

#[test]
fn priors_posteriors_and_smart_pointers_are_interchangeable() {
    let prior = BoxUniform::uniform(2, 0.0, 1.0).unwrap();
    assert_eq!(draw(&prior, 3).unwrap().shape(), (2, 3));
    let err = draw(&FakePosterior, 3).unwrap_err();
    assert!(err.to_string().contains("rejection budget spent"));

    let boxed: Box<dyn Prior> = Box::new(prior.clone());
    let shared: Arc<dyn Prior> = Arc::new(prior.clone());
    assert_eq!(takes_prior(&prior), 2);
    assert_eq!(takes_prior(&boxed), 2);
    assert_eq!(takes_prior(shared.clone()), 2);
    assert_eq!(takes_prior(boxed), 2);
    assert_eq!(draw(&shared, 4).unwrap().shape(), (2, 4));
    let by_ref: &dyn Prior = &prior;
    assert_eq!(draw(&by_ref, 1).unwrap().ncols(), 1);
}

#[test]
fn derived_streams_are_reproducible_and_distinct() {
    let a: Vec<u64> = (0..4).map(|_| derive_rng(3, 17).next_u64()).collect();
    assert!(a.windows(2).all(|w| w[0] == w[1]));
    assert_ne!(derive_rng(3, 17).next_u64(), derive_rng(3, 18).next_u64());
    assert_ne!(derive_rng(3, 17).next_u64(), derive_rng(4, 17).next_u64());
}
