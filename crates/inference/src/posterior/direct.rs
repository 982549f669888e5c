//! The trained posterior: rejection to the prior's support, normalized density, batched
//! sampling, and use as the proposal of the next round (spec §5).

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use nalgebra::{DMatrix, DVector};
use rand::RngCore;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use simfer_distributions::{DistributionError, Prior, Proposal, Support, derive_rng};
use simfer_flows::{ConditionalDensityEstimator, Estimator};
use simfer_snpe::TrainingHistory;

use crate::InferenceError;

/// How the posterior samples, and the budget that keeps rejection from hanging.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SamplingOptions {
    /// Reject samples outside the prior's support (true, as the reference). Without it
    /// the raw estimator samples are returned, which can leak out of a bounded prior.
    pub reject_outside_prior: bool,
    /// Largest number of candidates drawn at once (10,000).
    pub max_sampling_batch_size: usize,
    /// Budget: stop with an error after this many candidates (10,000,000). Sampling also
    /// stops early once the acceptance rate shows that the budget cannot suffice.
    pub max_draws: u64,
    /// Budget: stop with an error after this many seconds (`None`: no time limit).
    pub max_seconds: Option<f64>,
    /// Accepted samples used to estimate the acceptance rate that normalizes
    /// [`DirectPosterior::log_prob`] (10,000, spec §5.2).
    pub acceptance_samples: usize,
    /// Show a progress bar while sampling (only when stderr is a terminal).
    #[serde(default)]
    pub progress: bool,
}

impl Default for SamplingOptions {
    fn default() -> Self {
        Self {
            reject_outside_prior: true,
            max_sampling_batch_size: 10_000,
            max_draws: 10_000_000,
            max_seconds: None,
            acceptance_samples: 10_000,
            progress: false,
        }
    }
}

impl SamplingOptions {
    /// Checks the settings.
    pub fn check(&self) -> Result<(), InferenceError> {
        let bad = |name, message: String| Err(InferenceError::InvalidConfig { name, message });
        if self.max_sampling_batch_size == 0 {
            return bad(
                "max_sampling_batch_size",
                "expected at least 1, found 0".into(),
            );
        }
        if self.max_draws == 0 {
            return bad("max_draws", "expected at least 1, found 0".into());
        }
        if let Some(s) = self.max_seconds
            && (s.is_nan() || s <= 0.0)
        {
            return bad(
                "max_seconds",
                format!("expected a positive number, found {s}"),
            );
        }
        if self.acceptance_samples == 0 {
            return bad("acceptance_samples", "expected at least 1, found 0".into());
        }
        Ok(())
    }
}

/// Counts of a rejection run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RejectionStats {
    /// Candidates drawn from the estimator.
    pub drawn: u64,
    /// Candidates inside the prior's support.
    pub accepted: u64,
}

impl RejectionStats {
    /// accepted / drawn (1 when nothing was drawn).
    pub fn acceptance_rate(&self) -> f64 {
        if self.drawn == 0 {
            1.0
        } else {
            self.accepted as f64 / self.drawn as f64
        }
    }
}

/// A trained posterior q(θ | x) restricted to the prior's support.
///
/// Sampling draws from the estimator and rejects samples outside the prior's support
/// (with a budget, so it never hangs); [`log_prob`](Self::log_prob) is the density of that
/// truncated distribution, normalized by the estimated acceptance rate, which is cached per
/// x. With a default x the posterior is a [`Proposal`] for the next round.
pub struct DirectPosterior<E: ConditionalDensityEstimator = Estimator> {
    pub(crate) estimator: E,
    pub(crate) prior: Arc<dyn Prior>,
    pub(crate) default_x: Option<DVector<f64>>,
    pub(crate) options: SamplingOptions,
    pub(crate) history: Vec<TrainingHistory>,
    pub(crate) seed: u64,
    acceptance: Mutex<HashMap<Vec<u64>, f64>>,
}

impl<E: ConditionalDensityEstimator + Clone> Clone for DirectPosterior<E> {
    fn clone(&self) -> Self {
        let cache = self
            .acceptance
            .lock()
            .map(|c| c.clone())
            .unwrap_or_default();
        Self {
            estimator: self.estimator.clone(),
            prior: Arc::clone(&self.prior),
            default_x: self.default_x.clone(),
            options: self.options.clone(),
            history: self.history.clone(),
            seed: self.seed,
            acceptance: Mutex::new(cache),
        }
    }
}

impl<E: ConditionalDensityEstimator> std::fmt::Debug for DirectPosterior<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Posterior")
            .field("theta_dim", &self.estimator.input_dim())
            .field("x_dim", &self.estimator.condition_dim())
            .field("prior", &self.prior)
            .field(
                "default_x",
                &self.default_x.as_ref().map(|x| x.as_slice().to_vec()),
            )
            .field("rounds", &self.history.len())
            .finish()
    }
}

impl<E: ConditionalDensityEstimator> DirectPosterior<E> {
    /// A posterior from a trained estimator and the prior it was trained for. `seed` drives
    /// the acceptance-rate estimates behind [`log_prob`](Self::log_prob), so they are
    /// reproducible.
    pub fn new(estimator: E, prior: Arc<dyn Prior>, seed: u64) -> Result<Self, InferenceError> {
        if estimator.input_dim() != prior.dim() {
            return Err(InferenceError::DimensionMismatch {
                what: "dimension of θ of the estimator, to match the prior".into(),
                expected: prior.dim(),
                found: estimator.input_dim(),
            });
        }
        Ok(Self {
            estimator,
            prior,
            default_x: None,
            options: SamplingOptions::default(),
            history: Vec::new(),
            seed,
            acceptance: Mutex::new(HashMap::new()),
        })
    }

    /// Attaches the training history of the rounds that produced this posterior.
    pub fn with_history(mut self, history: Vec<TrainingHistory>) -> Self {
        self.history = history;
        self
    }

    /// Sets the default observation (checked: length and finiteness) and returns self, so
    /// the posterior can serve as a proposal.
    pub fn with_default_x(mut self, x: &[f64]) -> Result<Self, InferenceError> {
        self.set_default_x(x)?;
        Ok(self)
    }

    /// Sets the default observation (checked: length and finiteness).
    pub fn set_default_x(&mut self, x: &[f64]) -> Result<&mut Self, InferenceError> {
        self.check_x(x)?;
        self.default_x = Some(DVector::from_column_slice(x));
        Ok(self)
    }

    /// The default observation, if set.
    pub fn default_x(&self) -> Option<&[f64]> {
        self.default_x.as_ref().map(|x| x.as_slice())
    }

    /// Sets the sampling options (checked).
    pub fn set_sampling_options(&mut self, options: SamplingOptions) -> Result<(), InferenceError> {
        options.check()?;
        self.options = options;
        Ok(())
    }

    /// The sampling options.
    pub fn sampling_options(&self) -> &SamplingOptions {
        &self.options
    }

    /// The trained estimator.
    pub fn estimator(&self) -> &E {
        &self.estimator
    }

    /// The prior.
    pub fn prior(&self) -> &Arc<dyn Prior> {
        &self.prior
    }

    /// The training history of every round up to this posterior.
    pub fn history(&self) -> &[TrainingHistory] {
        &self.history
    }

    /// Dimension of θ.
    pub fn theta_dim(&self) -> usize {
        self.estimator.input_dim()
    }

    /// Dimension of x.
    pub fn x_dim(&self) -> usize {
        self.estimator.condition_dim()
    }

    fn check_x(&self, x: &[f64]) -> Result<(), InferenceError> {
        super::check_x(self.x_dim(), x)
    }

    /// The observation to use: `x` if given (checked), else the default.
    pub(crate) fn resolve_x<'a>(
        &'a self,
        x: Option<&'a [f64]>,
    ) -> Result<&'a [f64], InferenceError> {
        match x {
            Some(x) => {
                self.check_x(x)?;
                Ok(x)
            }
            None => self.default_x().ok_or(InferenceError::NoObservation),
        }
    }

    /// Draws `n` samples θ ~ p(θ | x) as `theta_dim × n` (x: `None` for the default x).
    pub fn sample(
        &self,
        n: usize,
        x: Option<&[f64]>,
        rng: &mut dyn RngCore,
    ) -> Result<DMatrix<f64>, InferenceError> {
        Ok(self.sample_with_stats(n, x, rng)?.0)
    }

    /// Like [`sample`](Self::sample), also returning how many candidates were drawn.
    pub fn sample_with_stats(
        &self,
        n: usize,
        x: Option<&[f64]>,
        rng: &mut dyn RngCore,
    ) -> Result<(DMatrix<f64>, RejectionStats), InferenceError> {
        let x = self.resolve_x(x)?;
        if !self.options.reject_outside_prior {
            let s = self.estimator.sample(n, x, rng)?;
            let stats = RejectionStats {
                drawn: n as u64,
                accepted: n as u64,
            };
            return Ok((s, stats));
        }
        let (samples, stats) = self.rejection(n, x, rng, true)?;
        Ok((
            samples.unwrap_or_else(|| DMatrix::zeros(self.theta_dim(), 0)),
            stats,
        ))
    }

    /// `n` samples for each column of `xs` (`x_dim × m`), in parallel; observation `i` uses
    /// the generator derived from `(seed, i)`, so the result does not depend on the number
    /// of threads.
    pub fn sample_batched(
        &self,
        n: usize,
        xs: &DMatrix<f64>,
        seed: u64,
    ) -> Result<Vec<DMatrix<f64>>, InferenceError> {
        if xs.nrows() != self.x_dim() {
            return Err(InferenceError::DimensionMismatch {
                what: "rows of the observation matrix (one observation per column)".into(),
                expected: self.x_dim(),
                found: xs.nrows(),
            });
        }
        (0..xs.ncols())
            .into_par_iter()
            .map(|i| {
                let x: Vec<f64> = xs.column(i).iter().copied().collect();
                let mut rng = derive_rng(seed, i as u64);
                self.sample(n, Some(&x), &mut rng)
            })
            .collect()
    }

    /// Rejection loop of spec §5.1 with a budget. Keeps the samples if `keep`, else only
    /// counts (for the acceptance rate).
    fn rejection(
        &self,
        n: usize,
        x: &[f64],
        rng: &mut dyn RngCore,
        keep: bool,
    ) -> Result<(Option<DMatrix<f64>>, RejectionStats), InferenceError> {
        let d = self.theta_dim();
        let opts = &self.options;
        let start = Instant::now();
        let mut kept: Vec<f64> = Vec::with_capacity(if keep { n * d } else { 0 });
        let mut stats = RejectionStats {
            drawn: 0,
            accepted: 0,
        };
        let mut batch = n.min(opts.max_sampling_batch_size).max(1);
        let bar = (keep && opts.progress && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new(n as u64);
            if let Ok(style) = ProgressStyle::with_template(
                "{prefix} {wide_bar} {pos}/{len} [{elapsed}<{eta}] {msg}",
            ) {
                bar.set_style(style);
            }
            bar.set_prefix(format!("drawing {n} posterior samples"));
            bar
        });
        while (stats.accepted as usize) < n {
            let cand = self.estimator.sample(batch, x, rng)?;
            let slice = cand.as_slice();
            for j in 0..batch {
                let col = &slice[j * d..(j + 1) * d];
                if self.prior.in_support(col) {
                    if (stats.accepted as usize) < n && keep {
                        kept.extend_from_slice(col);
                    }
                    stats.accepted += 1;
                }
            }
            stats.drawn += batch as u64;
            if let Some(bar) = &bar {
                bar.set_position(stats.accepted.min(n as u64));
                bar.set_message(format!(
                    "acceptance {:.1}%",
                    100.0 * stats.acceptance_rate()
                ));
            }
            let remaining = n.saturating_sub(stats.accepted as usize);
            if remaining == 0 {
                break;
            }
            let rate = stats.acceptance_rate();
            let projected = projected_draws(stats.drawn, stats.accepted, remaining);
            let spent = stats.drawn >= opts.max_draws;
            let hopeless = stats.drawn >= 10_000 && projected > opts.max_draws as f64;
            let out_of_draws = spent || hopeless;
            let out_of_time = opts
                .max_seconds
                .is_some_and(|s| start.elapsed().as_secs_f64() > s);
            if out_of_draws || out_of_time {
                if let Some(bar) = &bar {
                    bar.abandon();
                }
                let limit = if out_of_time {
                    format!(
                        " (time budget of {} s spent)",
                        opts.max_seconds.unwrap_or(0.0)
                    )
                } else if spent {
                    format!(" (the budget of {} draws is spent)", opts.max_draws)
                } else {
                    format!(
                        " (stopped early: even at an optimistic acceptance rate the {remaining} \
                         missing samples would take about {projected:.1e} draws in all, over \
                         the budget of {} draws)",
                        opts.max_draws
                    )
                };
                return Err(InferenceError::RejectionBudget {
                    requested: n,
                    accepted: stats.accepted as usize,
                    drawn: stats.drawn,
                    rate_percent: 100.0 * rate,
                    limit,
                });
            }
            let want = (1.5 * remaining as f64 / rate.max(1e-12)).min(1e12) as usize;
            batch = want.max(100).min(opts.max_sampling_batch_size);
        }
        if let Some(bar) = bar {
            bar.finish();
        }
        let samples = keep.then(|| DMatrix::from_vec(d, n, kept));
        Ok((samples, stats))
    }

    /// The estimated probability mass of q(θ | x) inside the prior's support: the
    /// acceptance rate of rejection sampling until
    /// [`SamplingOptions::acceptance_samples`] are accepted. Cached per x; reproducible
    /// (the generator is derived from the posterior's seed and x).
    pub fn acceptance_rate(&self, x: Option<&[f64]>) -> Result<f64, InferenceError> {
        let x = self.resolve_x(x)?;
        if self
            .prior
            .support()
            .iter()
            .all(|s| matches!(s, Support::Real))
        {
            // Nothing can leak out of an unbounded support.
            return Ok(1.0);
        }
        let key: Vec<u64> = x.iter().map(|v| v.to_bits()).collect();
        if let Some(&r) = self
            .acceptance
            .lock()
            .ok()
            .and_then(|c| c.get(&key).copied())
            .as_ref()
        {
            return Ok(r);
        }
        let stream = key.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
            (h ^ b).wrapping_mul(0x0100_0000_01b3)
        });
        let mut rng = derive_rng(self.seed, stream);
        let (_, stats) = self.rejection(self.options.acceptance_samples, x, &mut rng, false)?;
        let rate = stats.acceptance_rate();
        if let Ok(mut c) = self.acceptance.lock() {
            c.insert(key, rate);
        }
        Ok(rate)
    }

    /// log p(θ_j | x) for each column of θ (`theta_dim × n`): the estimator's log-density,
    /// −∞ outside the prior's support, minus the log of the
    /// [acceptance rate](Self::acceptance_rate), so the density integrates to 1 over the
    /// support (spec §5.2).
    pub fn log_prob(
        &self,
        theta: &DMatrix<f64>,
        x: Option<&[f64]>,
    ) -> Result<DVector<f64>, InferenceError> {
        let mut lp = self.log_prob_unnormalized(theta, x)?;
        let log_rate = self.acceptance_rate(x)?.ln();
        lp.iter_mut().for_each(|v| *v -= log_rate);
        Ok(lp)
    }

    /// The estimator's log q(θ_j | x), −∞ outside the prior's support, without the
    /// normalization of [`log_prob`](Self::log_prob).
    pub fn log_prob_unnormalized(
        &self,
        theta: &DMatrix<f64>,
        x: Option<&[f64]>,
    ) -> Result<DVector<f64>, InferenceError> {
        let x = self.resolve_x(x)?;
        if theta.nrows() != self.theta_dim() {
            return Err(InferenceError::DimensionMismatch {
                what: "rows of θ (one sample per column)".into(),
                expected: self.theta_dim(),
                found: theta.nrows(),
            });
        }
        let n = theta.ncols();
        let xs = DMatrix::from_fn(x.len(), n, |i, _| x[i]);
        let mut lp = self.estimator.log_prob(theta, &xs)?;
        let d = self.theta_dim();
        for j in 0..n {
            if !self.prior.in_support(&theta.as_slice()[j * d..(j + 1) * d]) {
                lp[j] = f64::NEG_INFINITY;
            }
        }
        Ok(lp)
    }
}

impl<E: ConditionalDensityEstimator> Proposal for DirectPosterior<E> {
    fn theta_dim(&self) -> usize {
        DirectPosterior::theta_dim(self)
    }

    fn propose(&self, n: usize, rng: &mut dyn RngCore) -> Result<DMatrix<f64>, DistributionError> {
        self.sample(n, None, rng)
            .map_err(|e| DistributionError::Sampling(Box::new(e)))
    }
}

/// The candidates that rejection sampling would draw in all to collect `remaining` more
/// samples, after `accepted` of `drawn` were inside the support. The rate is taken
/// optimistically, at a Poisson upper bound `(k + 2√k + 3) / drawn` (the rule of three
/// when none was accepted), so that a budget is only declared insufficient when even a
/// rate well above the observed one could not meet it.
fn projected_draws(drawn: u64, accepted: u64, remaining: usize) -> f64 {
    let k = accepted as f64;
    let drawn = drawn.max(1) as f64;
    let optimistic_rate = ((k + 2.0 * k.sqrt() + 3.0) / drawn).min(1.0);
    drawn + remaining as f64 / optimistic_rate
}

impl<E: ConditionalDensityEstimator + Clone + 'static> super::Posterior for DirectPosterior<E> {
    fn kind(&self) -> super::PosteriorKind {
        super::PosteriorKind::Direct
    }
    fn theta_dim(&self) -> usize {
        DirectPosterior::theta_dim(self)
    }
    fn x_dim(&self) -> usize {
        DirectPosterior::x_dim(self)
    }
    fn prior(&self) -> &Arc<dyn Prior> {
        DirectPosterior::prior(self)
    }
    fn default_x(&self) -> Option<&[f64]> {
        DirectPosterior::default_x(self)
    }
    fn set_default_x(&mut self, x: &[f64]) -> Result<(), InferenceError> {
        DirectPosterior::set_default_x(self, x).map(|_| ())
    }
    fn sample(
        &self,
        n: usize,
        x: Option<&[f64]>,
        rng: &mut dyn RngCore,
    ) -> Result<DMatrix<f64>, InferenceError> {
        DirectPosterior::sample(self, n, x, rng)
    }
    fn log_prob(
        &self,
        theta: &DMatrix<f64>,
        x: Option<&[f64]>,
    ) -> Result<DVector<f64>, InferenceError> {
        DirectPosterior::log_prob(self, theta, x)
    }
    fn map(
        &self,
        x: Option<&[f64]>,
        options: &crate::MapOptions,
    ) -> Result<crate::MapEstimate, InferenceError> {
        DirectPosterior::map(self, x, options)
    }
    fn clone_boxed(&self) -> Box<dyn super::Posterior> {
        Box::new(self.clone())
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::projected_draws;

    #[test]
    fn projection_with_no_acceptance_uses_the_rule_of_three() {
        // None of 10^4 accepted: a rate up to 3·10^-4 is plausible, so 100 more samples
        // may need only about 3.3·10^5 more draws, well inside a budget of 10^7.
        let p = projected_draws(10_000, 0, 100);
        assert!(
            (p - (10_000.0 + 100.0 * 10_000.0 / 3.0)).abs() < 1e-6,
            "{p}"
        );
        assert!(p < 1e7);
    }

    #[test]
    fn projection_is_optimistic_but_close_to_the_observed_rate_for_many_acceptances() {
        // 5·10^5 of 10^6 accepted: the observed rate is 0.5; the bound ~0.5017.
        let p = projected_draws(1_000_000, 500_000, 1_000_000);
        let at_observed_rate = 1_000_000.0 + 2.0 * 1_000_000.0;
        assert!(p < at_observed_rate, "{p}");
        assert!(p > 0.99 * at_observed_rate, "{p}");
        // Everything accepted: the rate is capped at 1.
        assert_eq!(projected_draws(100, 100, 50), 150.0);
    }
}
