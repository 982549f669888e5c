//! Truncated proposals (TSNPE, Deistler et al. 2022): the prior restricted to the region
//! where the current posterior's density is above its `1 − ε` highest-density threshold
//! (the reference's `sbi.utils.restriction_estimator.get_density_thresholder` and
//! `RestrictedPrior` with `sample_with="rejection"`).
//!
//! The threshold is the `ε`-quantile of the posterior's log-density over its own samples
//! (10⁶ samples and ε = 10⁻⁴ by default, as the reference), so the region holds about
//! `1 − ε` of the posterior's mass. Sampling rejects prior draws outside the region, with
//! a budget; the density is the prior's inside the region divided by the region's prior
//! mass (estimated once from 10 000 prior draws), −∞ outside it.

use std::sync::Arc;
use std::time::Instant;

use nalgebra::{DMatrix, DVector};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use simfer_distributions::{DistributionError, Prior, Proposal, derive_rng};

use crate::{InferenceError, Posterior};

/// Settings of a truncated prior; the defaults are the reference's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TruncationOptions {
    /// The posterior mass left out of the region, ε (1e-4).
    pub quantile: f64,
    /// Posterior samples behind the threshold (1 000 000).
    pub num_samples_to_estimate_support: usize,
    /// Prior draws behind the region's prior mass (10 000).
    pub num_rejection_samples: usize,
    /// Largest batch of prior draws (10 000).
    pub max_sampling_batch_size: usize,
    /// Budget: at most this many prior draws per sampling call (10 000 000).
    pub max_draws: u64,
    /// Budget: at most this many seconds per sampling call (`None`: no limit).
    pub max_seconds: Option<f64>,
}

impl Default for TruncationOptions {
    fn default() -> Self {
        TruncationOptions {
            quantile: 1e-4,
            num_samples_to_estimate_support: 1_000_000,
            num_rejection_samples: 10_000,
            max_sampling_batch_size: 10_000,
            max_draws: 10_000_000,
            max_seconds: None,
        }
    }
}

impl TruncationOptions {
    /// Checks the settings.
    pub fn check(&self) -> Result<(), InferenceError> {
        let bad = |name, message: String| Err(InferenceError::InvalidConfig { name, message });
        if !(self.quantile > 0.0 && self.quantile < 1.0) {
            return bad(
                "quantile",
                format!("expected a number in (0, 1), found {}", self.quantile),
            );
        }
        let least = (1.0 / self.quantile).ceil() as usize;
        if self.num_samples_to_estimate_support < least {
            return bad(
                "num_samples_to_estimate_support",
                format!(
                    "expected at least 1/quantile = {least} samples, found {}",
                    self.num_samples_to_estimate_support
                ),
            );
        }
        if self.num_rejection_samples == 0
            || self.max_sampling_batch_size == 0
            || self.max_draws == 0
        {
            return bad(
                "num_rejection_samples / max_sampling_batch_size / max_draws",
                "expected at least 1 each".into(),
            );
        }
        if let Some(s) = self.max_seconds
            && (s.is_nan() || s <= 0.0)
        {
            return bad(
                "max_seconds",
                format!("expected a positive number, found {s}"),
            );
        }
        Ok(())
    }
}

/// The prior truncated to a posterior's highest-density region (TSNPE's proposal).
pub struct TruncatedPrior {
    prior: Arc<dyn Prior>,
    posterior: Box<dyn Posterior>,
    x_o: Vec<f64>,
    threshold: f64,
    prior_mass: f64,
    options: TruncationOptions,
}

impl std::fmt::Debug for TruncatedPrior {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TruncatedPrior")
            .field("prior", &self.prior)
            .field("threshold", &self.threshold)
            .field("prior_mass", &self.prior_mass)
            .finish()
    }
}

impl TruncatedPrior {
    /// The truncation of `posterior`'s prior to the region where `posterior` (at its
    /// default x) has a log-density above the `options.quantile` quantile of its own
    /// samples. `seed` drives the posterior samples and the estimate of the region's prior
    /// mass.
    ///
    /// # Errors
    /// Bad options, a posterior without a default x, a failure to sample it, or a region
    /// that no prior draw reaches.
    pub fn new(
        posterior: Box<dyn Posterior>,
        options: TruncationOptions,
        seed: u64,
    ) -> Result<Self, InferenceError> {
        options.check()?;
        let x_o = posterior
            .default_x()
            .ok_or(InferenceError::NoObservation)?
            .to_vec();
        let prior = Arc::clone(posterior.prior());
        let n = options.num_samples_to_estimate_support;
        let mut rng = derive_rng(seed, 0);
        let mut lp: Vec<f64> = Vec::with_capacity(n);
        // In blocks, so memory stays bounded.
        let block = 100_000;
        let mut done = 0;
        while done < n {
            let m = block.min(n - done);
            let samples = posterior.sample(m, Some(&x_o), &mut rng)?;
            lp.extend(posterior.log_prob(&samples, Some(&x_o))?.iter());
            done += m;
        }
        lp.sort_by(f64::total_cmp);
        let threshold = lp[(options.quantile * n as f64) as usize];
        let mut truncated = TruncatedPrior {
            prior,
            posterior,
            x_o,
            threshold,
            prior_mass: 1.0,
            options,
        };
        truncated.prior_mass = truncated.estimate_prior_mass(&mut derive_rng(seed, 1))?;
        Ok(truncated)
    }

    /// The log-density threshold: θ is in the region if the posterior's log-density there
    /// is strictly above it.
    pub fn threshold(&self) -> f64 {
        self.threshold
    }

    /// The estimated prior mass of the region (the acceptance rate of sampling).
    pub fn prior_mass(&self) -> f64 {
        self.prior_mass
    }

    /// The settings.
    pub fn options(&self) -> &TruncationOptions {
        &self.options
    }

    /// Whether each column of θ (`D × n`) lies in the region.
    pub fn accepts(&self, theta: &DMatrix<f64>) -> Result<Vec<bool>, InferenceError> {
        let lp = self.posterior.log_prob(theta, Some(&self.x_o))?;
        Ok(lp.iter().map(|v| *v > self.threshold).collect())
    }

    fn estimate_prior_mass(&self, rng: &mut dyn RngCore) -> Result<f64, InferenceError> {
        let n = self.options.num_rejection_samples;
        let theta = self.prior.sample_batch(n, rng);
        let inside = self.accepts(&theta)?.iter().filter(|a| **a).count();
        if inside == 0 {
            return Err(InferenceError::RejectionBudget {
                requested: 1,
                accepted: 0,
                drawn: n as u64,
                rate_percent: 0.0,
                limit: " (no prior draw falls in the truncated region: the posterior's \
                        highest-density region is outside the prior's support)"
                    .into(),
            });
        }
        Ok(inside as f64 / n as f64)
    }

    /// `n` draws from the truncated prior (`D × n`), by rejection from the prior in
    /// batches (the first of `min(n, 10 000)`, then `1.5 ×` the expected need), within the
    /// budget.
    ///
    /// # Errors
    /// [`InferenceError::RejectionBudget`] when the budget runs out first.
    pub fn sample(&self, n: usize, rng: &mut dyn RngCore) -> Result<DMatrix<f64>, InferenceError> {
        let d = self.prior.dim();
        let o = &self.options;
        let start = Instant::now();
        let mut kept: Vec<f64> = Vec::with_capacity(n * d);
        let (mut drawn, mut accepted) = (0u64, 0usize);
        let mut batch = n.min(o.max_sampling_batch_size).max(1);
        while accepted < n {
            let theta = self.prior.sample_batch(batch, rng);
            for (j, ok) in self.accepts(&theta)?.into_iter().enumerate() {
                if ok && accepted < n {
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
                    limit: " (sampling the truncated prior: its budget is spent)".into(),
                });
            }
            let rate = (accepted as f64 / drawn as f64)
                .max(self.prior_mass * 0.5)
                .max(1e-12);
            let want = (1.5 * (n - accepted) as f64 / rate).min(1e12) as usize;
            batch = want.clamp(100, o.max_sampling_batch_size);
        }
        Ok(DMatrix::from_vec(d, n, kept))
    }

    /// `log p(θ)` of the prior inside the region minus the log of its prior mass, −∞
    /// outside, for each column of θ.
    pub fn log_prob(&self, theta: &DMatrix<f64>) -> Result<DVector<f64>, InferenceError> {
        let mut lp = self.prior.log_prob_batch(theta)?;
        let log_mass = self.prior_mass.ln();
        for (v, ok) in lp.iter_mut().zip(self.accepts(theta)?) {
            *v = if ok { *v - log_mass } else { f64::NEG_INFINITY };
        }
        Ok(lp)
    }
}

impl Proposal for TruncatedPrior {
    fn theta_dim(&self) -> usize {
        self.prior.dim()
    }

    fn propose(&self, n: usize, rng: &mut dyn RngCore) -> Result<DMatrix<f64>, DistributionError> {
        self.sample(n, rng)
            .map_err(|e| DistributionError::Sampling(Box::new(e)))
    }
}
