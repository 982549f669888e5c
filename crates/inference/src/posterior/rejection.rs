//! Posteriors over a potential sampled by rejection from the prior (the reference's
//! `RejectionPosterior`): a prior draw θ is accepted with probability
//! `exp(U(θ) − log p(θ) − M)`, where `U − log p` is the log-likelihood (or log-ratio) part
//! of the potential and `M` its maximum. `M` is found from prior draws and a MAP search;
//! should a later draw exceed it, `M` is raised and sampling starts again, so the samples
//! are exact draws of the potential. A budget of draws and seconds bounds every call.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use nalgebra::{DMatrix, DVector};
use rand::{Rng, RngCore};
use serde::{Deserialize, Serialize};
use simfer_distributions::{Prior, derive_rng};

use super::mcmc::PotentialModel;
use super::{Posterior, PosteriorKind, check_x};
use crate::InferenceError;
use crate::map::{MapEstimate, MapOptions, map_search};
use crate::potential::Potential;

/// Settings of a [`RejectionPosterior`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RejectionOptions {
    /// Prior draws behind the first estimate of the maximum (10 000).
    pub num_samples_to_find_max: usize,
    /// Largest batch of prior draws (10 000).
    pub max_sampling_batch_size: usize,
    /// Budget: at most this many prior draws per sampling call (10 000 000).
    pub max_draws: u64,
    /// Budget: at most this many seconds per sampling call (`None`: no limit).
    pub max_seconds: Option<f64>,
}

impl Default for RejectionOptions {
    fn default() -> Self {
        RejectionOptions {
            num_samples_to_find_max: 10_000,
            max_sampling_batch_size: 10_000,
            max_draws: 10_000_000,
            max_seconds: None,
        }
    }
}

impl RejectionOptions {
    /// Checks the settings.
    pub fn check(&self) -> Result<(), InferenceError> {
        if self.num_samples_to_find_max == 0
            || self.max_sampling_batch_size == 0
            || self.max_draws == 0
        {
            return Err(InferenceError::InvalidConfig {
                name: "num_samples_to_find_max / max_sampling_batch_size / max_draws",
                message: "expected at least 1 each".into(),
            });
        }
        if let Some(s) = self.max_seconds
            && (s.is_nan() || s <= 0.0)
        {
            return Err(InferenceError::InvalidConfig {
                name: "max_seconds",
                message: format!("expected a positive number, found {s}"),
            });
        }
        Ok(())
    }
}

/// A posterior ∝ exp(potential), sampled by rejection from the prior.
pub struct RejectionPosterior<M: PotentialModel> {
    model: M,
    prior: Arc<dyn Prior>,
    default_x: Option<DMatrix<f64>>,
    options: RejectionOptions,
    seed: u64,
    last_rate: Mutex<Option<f64>>,
}

impl<M: PotentialModel> Clone for RejectionPosterior<M> {
    fn clone(&self) -> Self {
        RejectionPosterior {
            model: self.model.clone(),
            prior: Arc::clone(&self.prior),
            default_x: self.default_x.clone(),
            options: self.options.clone(),
            seed: self.seed,
            last_rate: Mutex::new(self.last_acceptance_rate()),
        }
    }
}

impl<M: PotentialModel> std::fmt::Debug for RejectionPosterior<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RejectionPosterior")
            .field("model", &self.model.describe())
            .field("prior", &self.prior)
            .field("options", &self.options)
            .finish()
    }
}

impl<M: PotentialModel> RejectionPosterior<M> {
    /// The posterior of `model` for `prior`, sampled by rejection with `options`.
    ///
    /// # Errors
    /// A prior of another dimension than the model's θ, or bad options.
    pub fn new(
        model: M,
        prior: Arc<dyn Prior>,
        options: RejectionOptions,
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
        options.check()?;
        Ok(RejectionPosterior {
            model,
            prior,
            default_x: None,
            options,
            seed,
            last_rate: Mutex::new(None),
        })
    }

    /// The acceptance rate of the last sampling call.
    pub fn last_acceptance_rate(&self) -> Option<f64> {
        self.last_rate.lock().ok().and_then(|r| *r)
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

    /// `U(θ) − log p(θ)` for each column (−∞ where either is).
    fn log_weight(
        &self,
        potential: &dyn Potential,
        theta: &DMatrix<f64>,
    ) -> Result<DVector<f64>, InferenceError> {
        let u = potential.log_potential(theta)?;
        let lp = self.prior.log_prob_batch(theta)?;
        Ok(DVector::from_fn(theta.ncols(), |j, _| {
            let w = u[j] - lp[j];
            if w.is_nan() { f64::NEG_INFINITY } else { w }
        }))
    }

    /// `n` exact samples at the trials `x_o` (`x_dim × trials`).
    ///
    /// # Errors
    /// A potential with no finite value at any prior draw, or a spent budget (the error
    /// states the acceptance rate).
    pub fn sample_trials(
        &self,
        n: usize,
        x_o: &DMatrix<f64>,
        rng: &mut dyn RngCore,
    ) -> Result<DMatrix<f64>, InferenceError> {
        let potential = self.model.potential(&self.prior, x_o)?;
        let d = self.prior.dim();
        let o = &self.options;
        // The maximum of U − log p: prior draws, then a MAP search of the potential from
        // the best of them (a mode of U − log p for a flat prior, close to it otherwise).
        let mut max_rng = derive_rng(self.seed, rng.next_u64());
        let candidates = self
            .prior
            .sample_batch(o.num_samples_to_find_max, &mut max_rng);
        let w = self.log_weight(potential.as_ref(), &candidates)?;
        let mut max = w.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if max == f64::NEG_INFINITY {
            return Err(InferenceError::InvalidConfig {
                name: "potential",
                message: format!(
                    "expected a finite potential at some of {} prior draws, found none",
                    o.num_samples_to_find_max
                ),
            });
        }
        let map_options = MapOptions {
            num_init_samples: candidates.ncols(),
            num_to_optimize: 5,
            ..MapOptions::default()
        };
        if let Ok(map) = map_search(potential.as_ref(), &candidates, &map_options) {
            let t = DMatrix::from_column_slice(d, 1, &map.theta);
            if let Ok(wm) = self.log_weight(potential.as_ref(), &t) {
                max = max.max(wm[0]);
            }
        }
        let start = Instant::now();
        let mut kept: Vec<f64> = Vec::with_capacity(n * d);
        let (mut drawn, mut accepted) = (0u64, 0usize);
        let mut batch = n.clamp(1, o.max_sampling_batch_size);
        while accepted < n {
            let theta = self.prior.sample_batch(batch, rng);
            let w = self.log_weight(potential.as_ref(), &theta)?;
            let batch_max = w.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            if batch_max > max {
                // The envelope was too low: raise it and start again, so that every kept
                // sample is accepted under the same (valid) envelope.
                max = batch_max;
                kept.clear();
                accepted = 0;
            }
            for j in 0..batch {
                let u: f64 = rng.random();
                if accepted < n && u.ln() < w[j] - max {
                    kept.extend_from_slice(&theta.as_slice()[j * d..(j + 1) * d]);
                    accepted += 1;
                }
            }
            drawn += batch as u64;
            if accepted >= n {
                break;
            }
            let out_of_time = o
                .max_seconds
                .is_some_and(|s| start.elapsed().as_secs_f64() > s);
            if drawn >= o.max_draws || out_of_time {
                return Err(InferenceError::RejectionBudget {
                    requested: n,
                    accepted,
                    drawn,
                    rate_percent: 100.0 * accepted as f64 / drawn as f64,
                    limit: " (rejection sampling of the potential: its budget is spent; the \
                            likelihood is far narrower than the prior: sample by MCMC instead)"
                        .into(),
                });
            }
            let rate = (accepted as f64 / drawn as f64).max(1e-6);
            let want = (1.5 * (n - accepted) as f64 / rate).min(1e12) as usize;
            batch = want.clamp(100, o.max_sampling_batch_size);
        }
        if let Ok(mut r) = self.last_rate.lock() {
            *r = Some(accepted as f64 / drawn.max(1) as f64);
        }
        Ok(DMatrix::from_vec(d, n, kept))
    }
}

impl<M: PotentialModel> Posterior for RejectionPosterior<M> {
    fn kind(&self) -> PosteriorKind {
        PosteriorKind::Rejection
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
        self.sample_trials(n, &x_o, rng)
    }
    /// The unnormalized potential.
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
    fn map(&self, x: Option<&[f64]>, options: &MapOptions) -> Result<MapEstimate, InferenceError> {
        options.check()?;
        let x_o = self.resolve(x)?;
        let mut rng = derive_rng(options.seed, 0);
        let init = self.sample_trials(options.num_init_samples, &x_o, &mut rng)?;
        let potential = self.model.potential(&self.prior, &x_o)?;
        map_search(potential.as_ref(), &init, options)
    }
    fn clone_boxed(&self) -> Box<dyn Posterior> {
        Box::new(self.clone())
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
