//! The MCMC posterior with exact potentials: moments against closed forms (through the
//! unconstrained transform of a bounded and of a Gaussian prior), the diagnostics it
//! reports, MAP, and the errors of a potential that is −∞ or NaN everywhere and of a spent
//! budget.

use std::sync::Arc;

use nalgebra::{DMatrix, DVector};
use simfer_distributions::{BoxUniform, MultivariateNormal, Prior, rng_from_seed};
use simfer_inference::{
    InferenceError, MapOptions, McmcPosterior, Posterior, PosteriorKind, Potential, PotentialModel,
    RejectionOptions, RejectionPosterior,
};
use simfer_mcmc::{McmcError, SliceSettings};

/// A Gaussian likelihood x ~ N(θ, s² I) in closed form; `mode` breaks it on purpose.
#[derive(Clone, Debug)]
struct GaussianLikelihood {
    d: usize,
    s: f64,
    mode: Mode,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    Exact,
    MinusInfinity,
    Nan,
}

struct Exact<'a> {
    model: &'a GaussianLikelihood,
    prior: Arc<dyn Prior>,
    x_o: DMatrix<f64>,
}

impl Potential for Exact<'_> {
    fn theta_dim(&self) -> usize {
        self.model.d
    }
    fn prior(&self) -> &Arc<dyn Prior> {
        &self.prior
    }
    fn log_potential(&self, theta: &DMatrix<f64>) -> Result<DVector<f64>, InferenceError> {
        let lp = self.prior.log_prob_batch(theta)?;
        Ok(DVector::from_fn(theta.ncols(), |j, _| {
            match self.model.mode {
                Mode::MinusInfinity => f64::NEG_INFINITY,
                Mode::Nan => f64::NAN,
                Mode::Exact => {
                    let mut ll = 0.0;
                    for t in 0..self.x_o.ncols() {
                        for i in 0..self.model.d {
                            let r = self.x_o[(i, t)] - theta[(i, j)];
                            ll -= 0.5 * r * r / (self.model.s * self.model.s);
                        }
                    }
                    ll + lp[j]
                }
            }
        }))
    }
    fn log_potential_grad(
        &self,
        theta: &DMatrix<f64>,
    ) -> Result<(DVector<f64>, DMatrix<f64>), InferenceError> {
        let u = self.log_potential(theta)?;
        let s2 = self.model.s * self.model.s;
        let mut g = DMatrix::zeros(theta.nrows(), theta.ncols());
        for j in 0..theta.ncols() {
            let gp = self.prior.grad_log_prob(theta.column(j).as_slice())?;
            for i in 0..theta.nrows() {
                let r: f64 = (0..self.x_o.ncols())
                    .map(|t| self.x_o[(i, t)] - theta[(i, j)])
                    .sum();
                g[(i, j)] = r / s2 + gp[i];
            }
        }
        Ok((u, g))
    }
}

impl PotentialModel for GaussianLikelihood {
    fn describe(&self) -> &'static str {
        "exact Gaussian likelihood"
    }
    fn theta_dim(&self) -> usize {
        self.d
    }
    fn x_dim(&self) -> usize {
        self.d
    }
    fn potential(
        &self,
        prior: &Arc<dyn Prior>,
        x_o: &DMatrix<f64>,
    ) -> Result<Box<dyn Potential + '_>, InferenceError> {
        Ok(Box::new(Exact {
            model: self,
            prior: Arc::clone(prior),
            x_o: x_o.clone(),
        }))
    }
}

fn moments(s: &DMatrix<f64>) -> (DVector<f64>, DVector<f64>) {
    let mean = s.column_mean();
    let var = DVector::from_fn(s.nrows(), |i, _| {
        s.row(i).iter().map(|v| (v - mean[i]).powi(2)).sum::<f64>() / (s.ncols() as f64 - 1.0)
    });
    (mean, var)
}

#[test]
fn a_gaussian_prior_and_likelihood_give_the_closed_form_posterior() {
    // Prior N(0, 4 I), likelihood N(θ, 0.5² I), two trials: the posterior is Gaussian with
    // precision 1/4 + 2/0.25 per dimension.
    let prior: Arc<dyn Prior> =
        Arc::new(MultivariateNormal::isotropic(vec![0.0, 0.0], 4.0).unwrap());
    let model = GaussianLikelihood {
        d: 2,
        s: 0.5,
        mode: Mode::Exact,
    };
    let mut posterior = McmcPosterior::new(model, prior, SliceSettings::default(), 3).unwrap();
    let x_o = DMatrix::from_column_slice(2, 2, &[1.0, -0.5, 1.4, -0.1]);
    posterior.set_default_trials(x_o.clone()).unwrap();
    assert_eq!(posterior.kind(), PosteriorKind::Mcmc);
    let (samples, diagnostics) = posterior
        .sample_trials(4000, &x_o, &mut rng_from_seed(1))
        .unwrap();
    let precision = 0.25 + 2.0 / 0.25;
    let var = 1.0 / precision;
    let mean = [(1.0 + 1.4) / 0.25 * var, (-0.5 - 0.1) / 0.25 * var];
    let (m, v) = moments(&samples);
    let ess = diagnostics.min_ess();
    assert!(ess > 500.0, "ESS {ess}");
    for i in 0..2 {
        // Four standard errors of the mean at the chains' ESS; the variance within 15 %.
        let se = (var / ess).sqrt();
        assert!(
            (m[i] - mean[i]).abs() < 4.0 * se,
            "mean {i}: {} vs {}",
            m[i],
            mean[i]
        );
        assert!(
            (v[i] / var - 1.0).abs() < 0.15,
            "variance {i}: {} vs {var}",
            v[i]
        );
    }
    assert!(diagnostics.max_rhat() < 1.05, "{:?}", diagnostics.rhat);
    assert_eq!(posterior.last_diagnostics().unwrap().chains, 20);
    // Reproducible from the generator.
    let again = posterior
        .sample_trials(4000, &x_o, &mut rng_from_seed(1))
        .unwrap()
        .0;
    assert_eq!(samples, again);
    // MAP is the posterior mean of a Gaussian (at the default trials, then at one x).
    let options = MapOptions {
        num_init_samples: 200,
        ..MapOptions::default()
    };
    let map = posterior.map(None, &options).unwrap();
    for i in 0..2 {
        assert!(
            (map.theta[i] - mean[i]).abs() < 1e-4,
            "{:?} vs {mean:?}",
            map.theta
        );
    }
    let mut one = posterior.clone();
    one.set_default_x(&[1.2, -0.3]).unwrap();
    let map = one.map(None, &options).unwrap();
    let expect = 1.2 / 0.25 / (0.25 + 1.0 / 0.25);
    assert!(
        (map.theta[0] - expect).abs() < 1e-4,
        "{:?} vs {expect}",
        map.theta
    );
}

#[test]
fn a_bounded_prior_is_sampled_through_its_unconstrained_space() {
    // Prior U(0, 1), likelihood N(θ, 0.3²) at x_o = 0.9: the posterior is the normal
    // N(0.9, 0.3²) truncated to [0, 1]; its moments by quadrature.
    let prior: Arc<dyn Prior> = Arc::new(BoxUniform::uniform(1, 0.0, 1.0).unwrap());
    let model = GaussianLikelihood {
        d: 1,
        s: 0.3,
        mode: Mode::Exact,
    };
    let posterior = McmcPosterior::new(model, prior, SliceSettings::default(), 5).unwrap();
    let samples = posterior
        .sample(4000, Some(&[0.9]), &mut rng_from_seed(2))
        .unwrap();
    assert!(samples.iter().all(|v| (0.0..=1.0).contains(v)));
    let m = 100_000;
    let (mut z, mut m1, mut m2) = (0.0, 0.0, 0.0);
    for k in 0..m {
        let t = (k as f64 + 0.5) / m as f64;
        let w = (-0.5 * ((t - 0.9) / 0.3f64).powi(2)).exp();
        z += w;
        m1 += w * t;
        m2 += w * t * t;
    }
    let (mean, var) = (m1 / z, m2 / z - (m1 / z).powi(2));
    let (sm, sv) = moments(&samples);
    let ess = posterior.last_diagnostics().unwrap().min_ess();
    assert!(
        (sm[0] - mean).abs() < 4.0 * (var / ess).sqrt(),
        "{} vs {mean}",
        sm[0]
    );
    assert!((sv[0] / var - 1.0).abs() < 0.15, "{} vs {var}", sv[0]);
}

#[test]
fn an_invalid_potential_and_a_spent_budget_are_clear_errors() {
    let prior: Arc<dyn Prior> = Arc::new(BoxUniform::uniform(2, -1.0, 1.0).unwrap());
    for mode in [Mode::MinusInfinity, Mode::Nan] {
        let model = GaussianLikelihood { d: 2, s: 1.0, mode };
        let posterior =
            McmcPosterior::new(model, Arc::clone(&prior), SliceSettings::default(), 0).unwrap();
        let err = posterior
            .sample(100, Some(&[0.0, 0.0]), &mut rng_from_seed(0))
            .unwrap_err();
        assert!(
            matches!(err, InferenceError::Mcmc(McmcError::NoValidStart { .. })),
            "{mode:?}: {err}"
        );
    }
    let model = GaussianLikelihood {
        d: 2,
        s: 1.0,
        mode: Mode::Exact,
    };
    let tight = SliceSettings::default().with_max_evaluations(300_000);
    let posterior = McmcPosterior::new(model.clone(), Arc::clone(&prior), tight, 0).unwrap();
    let err = posterior
        .sample(100_000, Some(&[0.0, 0.0]), &mut rng_from_seed(0))
        .unwrap_err();
    assert!(
        matches!(err, InferenceError::Mcmc(McmcError::Budget { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("budget"), "{err}");
    // Wrong dimensions.
    let wrong: Arc<dyn Prior> = Arc::new(BoxUniform::uniform(3, -1.0, 1.0).unwrap());
    assert!(McmcPosterior::new(model.clone(), wrong, SliceSettings::default(), 0).is_err());
    let posterior = McmcPosterior::new(model, prior, SliceSettings::default(), 0).unwrap();
    assert!(
        posterior
            .sample(10, Some(&[0.0]), &mut rng_from_seed(0))
            .is_err()
    );
    assert!(matches!(
        posterior.sample(10, None, &mut rng_from_seed(0)),
        Err(InferenceError::NoObservation)
    ));
}

#[test]
fn rejection_sampling_of_a_potential_gives_exact_samples_within_its_budget() {
    // The truncated normal of the bounded-prior test, by rejection from the prior.
    let prior: Arc<dyn Prior> = Arc::new(BoxUniform::uniform(1, 0.0, 1.0).unwrap());
    let model = GaussianLikelihood {
        d: 1,
        s: 0.3,
        mode: Mode::Exact,
    };
    let posterior =
        RejectionPosterior::new(model, Arc::clone(&prior), RejectionOptions::default(), 1).unwrap();
    assert_eq!(posterior.kind(), PosteriorKind::Rejection);
    let n = 20_000;
    let samples = posterior
        .sample(n, Some(&[0.9]), &mut rng_from_seed(3))
        .unwrap();
    let m = 100_000;
    let (mut z, mut m1, mut m2) = (0.0, 0.0, 0.0);
    for k in 0..m {
        let t = (k as f64 + 0.5) / m as f64;
        let w = (-0.5 * ((t - 0.9) / 0.3f64).powi(2)).exp();
        z += w;
        m1 += w * t;
        m2 += w * t * t;
    }
    let (mean, var) = (m1 / z, m2 / z - (m1 / z).powi(2));
    let (sm, sv) = moments(&samples);
    // Independent draws: four standard errors.
    assert!(
        (sm[0] - mean).abs() < 4.0 * (var / n as f64).sqrt(),
        "{} vs {mean}",
        sm[0]
    );
    assert!((sv[0] / var - 1.0).abs() < 0.05, "{} vs {var}", sv[0]);
    // The acceptance rate is the evidence over the envelope: ∫ N(x; θ, s²) dθ / max.
    let rate = posterior.last_acceptance_rate().unwrap();
    assert!(
        (rate - z / m as f64).abs() < 0.02,
        "{rate} vs {}",
        z / m as f64
    );

    // A likelihood far narrower than the prior spends a small budget: a clear error.
    let narrow = GaussianLikelihood {
        d: 1,
        s: 1e-4,
        mode: Mode::Exact,
    };
    let tight = RejectionOptions {
        max_draws: 50_000,
        ..RejectionOptions::default()
    };
    let posterior = RejectionPosterior::new(narrow, prior, tight, 1).unwrap();
    let err = posterior
        .sample(1000, Some(&[0.5]), &mut rng_from_seed(3))
        .unwrap_err();
    assert!(
        matches!(err, InferenceError::RejectionBudget { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("MCMC"), "{err}");
}
