//! Posteriors over a potential, sampled by MCMC (the reference's `MCMCPosterior` with
//! `slice_np_vectorized`): the potential of a likelihood estimator (NLE) or a ratio
//! classifier (NRE) for an observation, moved to the unconstrained space of the prior's
//! support (`U_z(z) = U(θ(z)) + ln |det ∂θ/∂z|`), sampled by simfer-mcmc's vectorized slice
//! sampler from starts resampled among prior draws, and returned in θ space with the
//! chains' convergence diagnostics.

use std::sync::{Arc, Mutex};

use nalgebra::{DMatrix, DVector};
use rand::RngCore;
use simfer_distributions::{DistributionError, Prior, Support, UnconstrainedTransform, derive_rng};
use simfer_flows::{ConditionalDensityEstimator, RatioClassifier};
use simfer_mcmc::{LogDensity, McmcDiagnostics, SliceSampler, SliceSettings};

use super::{Posterior, PosteriorKind, check_x};
use crate::InferenceError;
use crate::map::{MapEstimate, MapOptions, map_search};
use crate::potential::{LikelihoodPotential, Potential, RatioPotential};

/// What an MCMC posterior samples: a trained model that gives a potential for an
/// observation (its columns independent trials).
pub trait PotentialModel: Clone + Send + Sync + std::fmt::Debug + 'static {
    /// A short name for messages ("likelihood estimator", "ratio classifier").
    fn describe(&self) -> &'static str;
    /// Dimension of θ.
    fn theta_dim(&self) -> usize;
    /// Dimension of x (of one trial).
    fn x_dim(&self) -> usize;
    /// The potential at the trials `x_o` (`x_dim × trials`).
    fn potential(
        &self,
        prior: &Arc<dyn Prior>,
        x_o: &DMatrix<f64>,
    ) -> Result<Box<dyn Potential + '_>, InferenceError>;
}

/// A likelihood estimator q(x | θ) as a [`PotentialModel`] (NLE).
#[derive(Clone, Debug)]
pub struct LikelihoodModel<E>(pub E);

impl<E: ConditionalDensityEstimator + Clone + std::fmt::Debug + 'static> PotentialModel
    for LikelihoodModel<E>
{
    fn describe(&self) -> &'static str {
        "likelihood estimator"
    }
    fn theta_dim(&self) -> usize {
        self.0.condition_dim()
    }
    fn x_dim(&self) -> usize {
        self.0.input_dim()
    }
    fn potential(
        &self,
        prior: &Arc<dyn Prior>,
        x_o: &DMatrix<f64>,
    ) -> Result<Box<dyn Potential + '_>, InferenceError> {
        Ok(Box::new(LikelihoodPotential::new(
            &self.0,
            Arc::clone(prior),
            x_o.clone(),
        )?))
    }
}

/// A ratio classifier as a [`PotentialModel`] (NRE).
#[derive(Clone, Debug)]
pub struct RatioModel(pub RatioClassifier);

impl PotentialModel for RatioModel {
    fn describe(&self) -> &'static str {
        "ratio classifier"
    }
    fn theta_dim(&self) -> usize {
        self.0.theta_dim()
    }
    fn x_dim(&self) -> usize {
        self.0.x_dim()
    }
    fn potential(
        &self,
        prior: &Arc<dyn Prior>,
        x_o: &DMatrix<f64>,
    ) -> Result<Box<dyn Potential + '_>, InferenceError> {
        Ok(Box::new(RatioPotential::new(
            &self.0,
            Arc::clone(prior),
            x_o.clone(),
        )?))
    }
}

/// The potential in unconstrained space, as simfer-mcmc's target.
struct Unconstrained<'a> {
    potential: &'a dyn Potential,
    transform: &'a UnconstrainedTransform,
    /// The first error of a potential evaluation (the sampler sees −∞).
    error: Mutex<Option<InferenceError>>,
}

impl LogDensity for Unconstrained<'_> {
    fn dim(&self) -> usize {
        self.transform.dim()
    }

    fn log_density(&self, z: &[f64]) -> f64 {
        let mut out = [0.0];
        self.log_density_batch(&DMatrix::from_column_slice(z.len(), 1, z), &mut out);
        out[0]
    }

    fn log_density_batch(&self, zs: &DMatrix<f64>, out: &mut [f64]) {
        let result = self
            .transform
            .from_unconstrained_batch(zs)
            .map_err(InferenceError::from)
            .and_then(|(theta, log_det)| {
                let u = self.potential.log_potential(&theta)?;
                Ok(u + log_det)
            });
        match result {
            Ok(v) => out.copy_from_slice(v.as_slice()),
            Err(e) => {
                out.fill(f64::NEG_INFINITY);
                if let Ok(mut slot) = self.error.lock() {
                    slot.get_or_insert(e);
                }
            }
        }
    }
}

/// The prior moved to unconstrained space (for the starting points of the chains).
#[derive(Debug)]
struct PriorInUnconstrained<'a> {
    prior: &'a dyn Prior,
    transform: &'a UnconstrainedTransform,
}

impl Prior for PriorInUnconstrained<'_> {
    fn dim(&self) -> usize {
        self.prior.dim()
    }
    fn sample(&self, rng: &mut dyn RngCore) -> DVector<f64> {
        let theta = self.prior.sample(rng);
        let z = self
            .transform
            .to_unconstrained(theta.as_slice())
            .unwrap_or_else(|_| vec![f64::NAN; theta.len()]);
        DVector::from_vec(z)
    }
    fn sample_batch(&self, n: usize, rng: &mut dyn RngCore) -> DMatrix<f64> {
        let theta = self.prior.sample_batch(n, rng);
        self.transform
            .to_unconstrained_batch(&theta)
            .unwrap_or_else(|_| DMatrix::from_element(theta.nrows(), n, f64::NAN))
    }
    fn log_prob(&self, z: &[f64]) -> Result<f64, DistributionError> {
        let (theta, log_det) = self.transform.from_unconstrained(z)?;
        Ok(self.prior.log_prob(&theta)? + log_det)
    }
    fn support(&self) -> Vec<Support> {
        vec![Support::Real; self.prior.dim()]
    }
}

/// A posterior ∝ exp(potential), sampled by MCMC.
pub struct McmcPosterior<M: PotentialModel> {
    model: M,
    prior: Arc<dyn Prior>,
    transform: UnconstrainedTransform,
    default_x: Option<DMatrix<f64>>,
    settings: SliceSettings,
    seed: u64,
    last: Mutex<Option<McmcDiagnostics>>,
}

impl<M: PotentialModel> Clone for McmcPosterior<M> {
    fn clone(&self) -> Self {
        McmcPosterior {
            model: self.model.clone(),
            prior: Arc::clone(&self.prior),
            transform: self.transform.clone(),
            default_x: self.default_x.clone(),
            settings: self.settings.clone(),
            seed: self.seed,
            last: Mutex::new(self.last_diagnostics()),
        }
    }
}

impl<M: PotentialModel> std::fmt::Debug for McmcPosterior<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McmcPosterior")
            .field("model", &self.model.describe())
            .field("theta_dim", &self.model.theta_dim())
            .field("x_dim", &self.model.x_dim())
            .field("prior", &self.prior)
            .field("settings", &self.settings)
            .finish()
    }
}

impl<M: PotentialModel> McmcPosterior<M> {
    /// The posterior of `model` for `prior`, sampled with `settings` (the reference's
    /// defaults: 20 chains, 200 warm-up sweeps, starts resampled among 10 000 prior draws).
    /// `seed` makes the MCMC runs reproducible when sampling is asked with a generator.
    ///
    /// # Errors
    /// A prior of another dimension than the model's θ, or bad settings.
    pub fn new(
        model: M,
        prior: Arc<dyn Prior>,
        settings: SliceSettings,
        seed: u64,
    ) -> Result<Self, InferenceError> {
        if prior.dim() != model.theta_dim() {
            return Err(InferenceError::DimensionMismatch {
                what: format!(
                    "dimension of the prior, to match the {}'s θ",
                    model.describe()
                ),
                expected: model.theta_dim(),
                found: prior.dim(),
            });
        }
        settings.check()?;
        let transform = UnconstrainedTransform::for_prior(prior.as_ref());
        Ok(McmcPosterior {
            model,
            prior,
            transform,
            default_x: None,
            settings,
            seed,
            last: Mutex::new(None),
        })
    }

    /// The trained model.
    pub fn model(&self) -> &M {
        &self.model
    }

    /// The sampler's settings.
    pub fn settings(&self) -> &SliceSettings {
        &self.settings
    }

    /// Sets the sampler's settings (checked).
    pub fn set_settings(&mut self, settings: SliceSettings) -> Result<(), InferenceError> {
        settings.check()?;
        self.settings = settings;
        Ok(())
    }

    /// The diagnostics of the last MCMC run (R̂, bulk and tail ESS per coordinate, …).
    pub fn last_diagnostics(&self) -> Option<McmcDiagnostics> {
        self.last.lock().ok().and_then(|d| d.clone())
    }

    /// Sets the default observation: several independent trials (`x_dim × trials`).
    pub fn set_default_trials(&mut self, x_o: DMatrix<f64>) -> Result<(), InferenceError> {
        self.check_trials(&x_o)?;
        self.default_x = Some(x_o);
        Ok(())
    }

    fn check_trials(&self, x_o: &DMatrix<f64>) -> Result<(), InferenceError> {
        if x_o.nrows() != self.model.x_dim() || x_o.ncols() == 0 {
            return Err(InferenceError::DimensionMismatch {
                what: "rows of the observation (one trial per column)".into(),
                expected: self.model.x_dim(),
                found: x_o.nrows(),
            });
        }
        for v in x_o.iter() {
            check_x(1, std::slice::from_ref(v))?;
        }
        Ok(())
    }

    fn resolve(&self, x: Option<&[f64]>) -> Result<DMatrix<f64>, InferenceError> {
        match x {
            Some(x) => {
                check_x(self.model.x_dim(), x)?;
                Ok(DMatrix::from_column_slice(x.len(), 1, x))
            }
            None => self.default_x.clone().ok_or(InferenceError::NoObservation),
        }
    }

    /// `n` samples at the trials `x_o` (`x_dim × trials`) and the diagnostics of their
    /// chains; the run's seed is drawn from `rng`.
    ///
    /// # Errors
    /// A potential that is −∞ or NaN wherever the chains could start, a spent evaluation or
    /// time budget (the error says which and what to do), or a failing evaluation.
    pub fn sample_trials(
        &self,
        n: usize,
        x_o: &DMatrix<f64>,
        rng: &mut dyn RngCore,
    ) -> Result<(DMatrix<f64>, McmcDiagnostics), InferenceError> {
        self.check_trials(x_o)?;
        let potential = self.model.potential(&self.prior, x_o)?;
        let target = Unconstrained {
            potential: potential.as_ref(),
            transform: &self.transform,
            error: Mutex::new(None),
        };
        let proposal = PriorInUnconstrained {
            prior: self.prior.as_ref(),
            transform: &self.transform,
        };
        let seed = derive_rng(self.seed, rng.next_u64()).next_u64();
        let run =
            SliceSampler::new(self.settings.clone())?.sample(&target, Some(&proposal), n, seed);
        if let Some(e) = target.error.lock().ok().and_then(|mut e| e.take()) {
            return Err(e);
        }
        let run = run?;
        let (theta, _) = self.transform.from_unconstrained_batch(&run.samples)?;
        if let Ok(mut last) = self.last.lock() {
            *last = Some(run.diagnostics.clone());
        }
        Ok((theta, run.diagnostics))
    }
}

impl<M: PotentialModel> Posterior for McmcPosterior<M> {
    fn kind(&self) -> PosteriorKind {
        PosteriorKind::Mcmc
    }
    fn theta_dim(&self) -> usize {
        self.model.theta_dim()
    }
    fn x_dim(&self) -> usize {
        self.model.x_dim()
    }
    fn prior(&self) -> &Arc<dyn Prior> {
        &self.prior
    }
    fn default_x(&self) -> Option<&[f64]> {
        self.default_x
            .as_ref()
            .filter(|x| x.ncols() == 1)
            .map(|x| x.as_slice())
    }
    fn set_default_x(&mut self, x: &[f64]) -> Result<(), InferenceError> {
        check_x(self.model.x_dim(), x)?;
        self.default_x = Some(DMatrix::from_column_slice(x.len(), 1, x));
        Ok(())
    }
    fn sample(
        &self,
        n: usize,
        x: Option<&[f64]>,
        rng: &mut dyn RngCore,
    ) -> Result<DMatrix<f64>, InferenceError> {
        let x_o = self.resolve(x)?;
        Ok(self.sample_trials(n, &x_o, rng)?.0)
    }
    /// The unnormalized potential (its normalizing constant is unknown).
    fn log_prob(
        &self,
        theta: &DMatrix<f64>,
        x: Option<&[f64]>,
    ) -> Result<DVector<f64>, InferenceError> {
        let x_o = self.resolve(x)?;
        self.model
            .potential(&self.prior, &x_o)?
            .log_potential(theta)
    }
    /// L-BFGS from the best of `num_init_samples` posterior samples.
    fn map(&self, x: Option<&[f64]>, options: &MapOptions) -> Result<MapEstimate, InferenceError> {
        options.check()?;
        let x_o = self.resolve(x)?;
        let mut rng = derive_rng(options.seed, 0);
        let (init, _) = self.sample_trials(options.num_init_samples, &x_o, &mut rng)?;
        let potential = self.model.potential(&self.prior, &x_o)?;
        map_search(potential.as_ref(), &init, options)
    }
    fn clone_boxed(&self) -> Box<dyn Posterior> {
        Box::new(self.clone())
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
    fn mcmc_diagnostics(&self) -> Option<McmcDiagnostics> {
        self.last_diagnostics()
    }
}
