//! The benchmark tasks: the tutorial's `linear_gaussian` and the ten tasks of the
//! sbibm suite (Lueckmann et al., 2021), defined exactly as in `spec/benchmark-tasks.md`.
//!
//! Each task gives its prior, its simulator, the names of its parameters, and a reference
//! posterior sampler for an observation x_o: exact in closed form or by inverting the
//! simulator (linear_gaussian, gaussian_linear, gaussian_linear_uniform, gaussian_mixture,
//! two_moons), or by MCMC on the exact likelihood, checked for convergence (slcp,
//! slcp_distractors, bernoulli_glm, bernoulli_glm_raw; see [`simfer_mcmc::metropolis`]). sir and
//! lotka_volterra have none. Every task type is itself a [`Simulator`].

use nalgebra::{DMatrix, DVector};
use rand::RngCore;
use simfer_distributions::Prior;

use crate::error::check_finite;
use simfer_simulators::Simulator;

use crate::BenchmarkError;

mod bernoulli_glm;
mod gaussian;
mod ode;
mod reference;
mod slcp;
mod two_moons;

pub use bernoulli_glm::{BernoulliGlm, BernoulliGlmPosterior};
pub use gaussian::{GaussianLinear, GaussianLinearUniform, GaussianMixture, LinearGaussian};
pub use ode::{LotkaVolterra, ODE_TOLERANCE, Sir};
pub use reference::{GaussianPosterior, TruncatedGaussianMixture};
pub use slcp::{Slcp, SlcpDistractors, SlcpPosterior};
pub use two_moons::{TwoMoons, TwoMoonsPosterior};

/// A benchmark task: prior, simulator, parameter names and, where one exists, a reference
/// posterior.
pub trait Task: Send + Sync {
    /// The task's name, as in [`task_names`].
    fn name(&self) -> &'static str;
    /// The prior over θ.
    fn prior(&self) -> Box<dyn Prior>;
    /// The simulator.
    fn simulator(&self) -> Box<dyn Simulator>;
    /// One name per dimension of θ.
    fn parameter_names(&self) -> Vec<String>;
    /// A reference posterior sampler for `x_o`, or `None` where the task has none (sir and
    /// lotka_volterra, whose likelihoods are not available).
    ///
    /// The inner `Result` reports an `x_o` of the wrong length or with non-finite values
    /// (or, for bernoulli_glm_raw, with values other than 0 and 1).
    fn reference_posterior(
        &self,
        x_o: &[f64],
    ) -> Option<Result<Box<dyn ReferencePosterior>, BenchmarkError>> {
        let _ = x_o;
        None
    }
    /// Dimension of θ.
    fn theta_dim(&self) -> usize {
        self.simulator().theta_dim()
    }
    /// Dimension of x.
    fn x_dim(&self) -> usize {
        self.simulator().x_dim()
    }
}

/// A sampler of a task's exact posterior for one observation: independent exact draws, or
/// (for the MCMC samplers) thinned draws of chains that passed their convergence checks.
pub trait ReferencePosterior: Send + Sync {
    /// Dimension of θ.
    fn dim(&self) -> usize;
    /// `n` draws, one per column (`dim × n`): independent, or approximately independent
    /// for MCMC (their effective sample size is at least `n`).
    ///
    /// # Errors
    /// Samplers that reject have a budget and fail with
    /// [`BenchmarkError::RejectionBudget`] instead of looping forever; MCMC samplers have a
    /// budget too and fail with [`BenchmarkError::Mcmc`] (an
    /// [`McmcError::Convergence`](simfer_mcmc::McmcError::Convergence)) when their chains
    /// do not pass the convergence checks within it.
    fn sample(&self, n: usize, rng: &mut dyn RngCore) -> Result<DMatrix<f64>, BenchmarkError>;
    /// The posterior mean, where known in closed form.
    fn mean(&self) -> Option<DVector<f64>> {
        None
    }
    /// The posterior covariance, where known in closed form.
    fn covariance(&self) -> Option<DMatrix<f64>> {
        None
    }
}

const TASK_NAMES: [&str; 11] = [
    "linear_gaussian",
    "gaussian_linear",
    "gaussian_linear_uniform",
    "two_moons",
    "slcp",
    "slcp_distractors",
    "gaussian_mixture",
    "bernoulli_glm",
    "bernoulli_glm_raw",
    "sir",
    "lotka_volterra",
];

/// The names of all tasks.
pub fn task_names() -> &'static [&'static str] {
    &TASK_NAMES
}

/// The task called `name` (`linear_gaussian` has D = 3; use [`LinearGaussian::new`] for
/// another D).
///
/// # Errors
/// [`BenchmarkError::UnknownTask`], listing the valid names.
///
/// ```
/// let task = simfer_benchmark::task("two_moons")?;
/// assert_eq!(task.parameter_names(), ["theta_1", "theta_2"]);
/// assert!(simfer_benchmark::task("three_moons").is_err());
/// # Ok::<(), simfer_benchmark::BenchmarkError>(())
/// ```
pub fn task(name: &str) -> Result<Box<dyn Task>, BenchmarkError> {
    Ok(match name {
        "linear_gaussian" => Box::new(LinearGaussian::default()),
        "gaussian_linear" => Box::new(GaussianLinear),
        "gaussian_linear_uniform" => Box::new(GaussianLinearUniform),
        "two_moons" => Box::new(TwoMoons),
        "slcp" => Box::new(Slcp),
        "slcp_distractors" => Box::new(SlcpDistractors),
        "gaussian_mixture" => Box::new(GaussianMixture),
        "bernoulli_glm" => Box::new(BernoulliGlm::summary()),
        "bernoulli_glm_raw" => Box::new(BernoulliGlm::raw()),
        "sir" => Box::new(Sir),
        "lotka_volterra" => Box::new(LotkaVolterra),
        _ => {
            return Err(BenchmarkError::UnknownTask {
                name: name.to_string(),
                valid: TASK_NAMES.join(", "),
            });
        }
    })
}

/// `theta_1, …, theta_n`.
pub(crate) fn numbered_names(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("theta_{i}")).collect()
}

/// Checks an observation's length and finiteness.
pub(crate) fn check_observation(x_o: &[f64], x_dim: usize) -> Result<(), BenchmarkError> {
    if x_o.len() != x_dim {
        return Err(BenchmarkError::DimensionMismatch {
            what: "length of the observation x_o",
            expected: x_dim,
            found: x_o.len(),
        });
    }
    check_finite("x_o", x_o)
}

/// The proposal budget of the rejection samplers for `n` samples.
fn rejection_budget(n: usize) -> usize {
    n.saturating_mul(1000).max(1_000_000)
}

/// Accept/reject sampling of `n` draws of dimension `dim`: `propose` writes a candidate into
/// its slice and says whether to accept it. Fails with
/// [`BenchmarkError::RejectionBudget`] after `max(10⁶, 1000·n)` proposals.
pub(crate) fn rejection_sample(
    what: &str,
    dim: usize,
    n: usize,
    rng: &mut dyn RngCore,
    mut propose: impl FnMut(&mut dyn RngCore, &mut [f64]) -> bool,
) -> Result<DMatrix<f64>, BenchmarkError> {
    let budget = rejection_budget(n);
    let mut out = DMatrix::zeros(dim, n);
    let (mut accepted, mut proposals) = (0, 0);
    while accepted < n {
        if proposals == budget {
            return Err(BenchmarkError::RejectionBudget {
                what: what.to_string(),
                accepted,
                requested: n,
                proposals,
                rate: accepted as f64 / proposals as f64,
            });
        }
        proposals += 1;
        let col = &mut out.as_mut_slice()[accepted * dim..(accepted + 1) * dim];
        if propose(rng, col) {
            accepted += 1;
        }
    }
    Ok(out)
}

/// Parses embedded CSV data (one row per line). The files ship with the crate, so a parse
/// failure is a broken build, not a user error.
pub(crate) fn parse_csv(text: &str) -> Vec<Vec<f64>> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            l.split(',')
                .map(|v| {
                    v.trim()
                        .parse::<f64>()
                        .expect("embedded task data is valid CSV of numbers")
                })
                .collect()
        })
        .collect()
}
