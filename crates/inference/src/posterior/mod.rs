//! Posteriors: one interface ([`Posterior`]) and its kinds — [`DirectPosterior`] (a
//! density estimator of θ given x, with rejection to the prior's support), and the
//! posteriors over a potential (log-likelihood or log-ratio plus log-prior), sampled by
//! MCMC or by rejection.

use std::sync::Arc;

use nalgebra::{DMatrix, DVector};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use simfer_distributions::{DistributionError, Prior, Proposal};

use crate::InferenceError;
use crate::map::{MapEstimate, MapOptions};

mod direct;
mod mcmc;
mod rejection;

pub use direct::{DirectPosterior, RejectionStats, SamplingOptions};
pub use mcmc::{LikelihoodModel, McmcPosterior, PotentialModel, RatioModel};
pub use rejection::{RejectionOptions, RejectionPosterior};

/// The kinds of posterior.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PosteriorKind {
    /// A density estimator of θ given x, sampled directly (rejection to the support).
    Direct,
    /// A potential sampled by MCMC.
    Mcmc,
    /// A potential sampled by rejection from the prior.
    Rejection,
}

impl std::fmt::Display for PosteriorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PosteriorKind::Direct => "direct",
            PosteriorKind::Mcmc => "mcmc",
            PosteriorKind::Rejection => "rejection",
        })
    }
}

/// A posterior p(θ | x): sampling, log-density, MAP, a default x, and use as the proposal
/// of the next round (every posterior with a default x is a [`Proposal`]).
///
/// Object safe, so a method can hand back whichever kind it builds
/// (`Box<dyn Posterior>`). Every sampling loop has a budget: a posterior never hangs, it
/// fails with an error that says what ran out and what to do.
pub trait Posterior: Send + Sync + std::fmt::Debug {
    /// The kind.
    fn kind(&self) -> PosteriorKind;
    /// Dimension of θ.
    fn theta_dim(&self) -> usize;
    /// Dimension of x.
    fn x_dim(&self) -> usize;
    /// The prior.
    fn prior(&self) -> &Arc<dyn Prior>;
    /// The default observation, if set.
    fn default_x(&self) -> Option<&[f64]>;
    /// Sets the default observation (checked: length and finiteness).
    fn set_default_x(&mut self, x: &[f64]) -> Result<(), InferenceError>;
    /// `n` samples θ ~ p(θ | x) as `theta_dim × n` (`x`: `None` for the default x).
    fn sample(
        &self,
        n: usize,
        x: Option<&[f64]>,
        rng: &mut dyn RngCore,
    ) -> Result<DMatrix<f64>, InferenceError>;
    /// `log p(θ_j | x)` for each column: normalized for a [`DirectPosterior`] (over the
    /// prior's support), the unnormalized potential for a posterior over a potential
    /// (the normalizing constant is unknown, as in the reference).
    fn log_prob(
        &self,
        theta: &DMatrix<f64>,
        x: Option<&[f64]>,
    ) -> Result<DVector<f64>, InferenceError>;
    /// The maximum a posteriori θ for `x` (`None`: the default x).
    fn map(&self, x: Option<&[f64]>, options: &MapOptions) -> Result<MapEstimate, InferenceError>;
    /// A boxed copy.
    fn clone_boxed(&self) -> Box<dyn Posterior>;
    /// `self` as [`Any`](std::any::Any), to recover the concrete posterior (e.g. a
    /// [`DirectPosterior`] for its acceptance rates).
    fn as_any(&self) -> &dyn std::any::Any;
    /// The convergence diagnostics of the last MCMC run of this posterior (split-R̂, bulk
    /// and tail ESS per coordinate), for the posteriors sampled by MCMC.
    fn mcmc_diagnostics(&self) -> Option<simfer_mcmc::McmcDiagnostics> {
        None
    }
}

impl Clone for Box<dyn Posterior> {
    fn clone(&self) -> Self {
        self.clone_boxed()
    }
}

/// A posterior with a default x proposes θ's for the next round.
impl Proposal for dyn Posterior {
    fn theta_dim(&self) -> usize {
        Posterior::theta_dim(self)
    }

    fn propose(&self, n: usize, rng: &mut dyn RngCore) -> Result<DMatrix<f64>, DistributionError> {
        self.sample(n, None, rng)
            .map_err(|e| DistributionError::Sampling(Box::new(e)))
    }
}

/// Checks an observation against a posterior's x dimension: its length and finiteness.
pub(crate) fn check_x(x_dim: usize, x: &[f64]) -> Result<(), InferenceError> {
    if x.len() != x_dim {
        return Err(InferenceError::DimensionMismatch {
            what: "length of the observation x".into(),
            expected: x_dim,
            found: x.len(),
        });
    }
    if let Some((index, &value)) = x.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(InferenceError::NonFiniteObservation { index, value });
    }
    Ok(())
}
