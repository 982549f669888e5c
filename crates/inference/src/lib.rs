//! # simfer-inference: multi-round neural posterior estimation (SNPE-C / APT)
//!
//! - [`Snpe`]: the orchestrator with the reference library's steps (simulate or append,
//!   train, build the posterior), which **records the proposal of every round itself**:
//!   θ's are drawn with [`Snpe::propose`] (or [`Snpe::simulate_round`]) and carry their
//!   proposal, so there is no proposal argument to forget. Invalid simulations are counted
//!   and handled by an explicit [`InvalidPolicy`].
//! - [`run_snpe`]: prior, simulator, observation, rounds and a seed in; each round's
//!   posterior and [`RoundReport`] out.
//! - [`DirectPosterior`]: sampling with rejection to the prior's support under a budget (an error
//!   stating the acceptance rate instead of a hang), the normalized log-density (cached per
//!   x), batched sampling for many x's, MAP by L-BFGS, and save/load in a versioned file.
//!
//! ```
//! use std::sync::Arc;
//! use rand_distr::{Distribution, StandardNormal};
//! use simfer_distributions::{BoxUniform, Prior, rng_from_seed};
//! use simfer_inference::{SnpeConfig, run_snpe};
//! use simfer_simulators::FnSimulator;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let prior: Arc<dyn Prior> = Arc::new(BoxUniform::uniform(3, -2.0, 2.0)?);
//! // x = θ + 1 + 0.1·ε
//! let simulator = FnSimulator::new(3, 3, |theta: &[f64], rng: &mut dyn rand::RngCore| {
//!     theta
//!         .iter()
//!         .map(|t| t + 1.0 + 0.1 * <StandardNormal as Distribution<f64>>::sample(&StandardNormal, rng))
//!         .collect::<Vec<f64>>()
//! });
//! // Two rounds of 500 simulations focused on x_o = 0, seed 1.
//! let run = run_snpe(prior, &simulator, Some(&[0.0; 3]), 2, 500, 1, SnpeConfig::default())?;
//! let samples = run.posterior().sample(10_000, None, &mut rng_from_seed(2))?;
//! assert_eq!(samples.shape(), (3, 10_000));
//! let mean = samples.row(0).mean();
//! assert!((mean + 1.0).abs() < 0.05, "posterior mean {mean}, exact −1");
//! # Ok(()) }
//! ```

mod error;
mod map;
mod orchestrator;
mod persist;
mod posterior;
pub mod potential;
mod progress;
mod runner;
mod truncated;

pub use error::InferenceError;
pub use map::{MapEstimate, MapOptions, map_search};
pub use orchestrator::{
    EstimatorBuilder, InvalidCounts, InvalidPolicy, ProposalSource, Proposed, RoundData, Snpe,
    SnpeConfig,
};
pub use persist::{POSTERIOR_FORMAT, POSTERIOR_FORMAT_VERSION};
pub use posterior::{
    DirectPosterior, LikelihoodModel, McmcPosterior, Posterior, PosteriorKind, PotentialModel,
    RatioModel, RejectionStats, SamplingOptions,
};
pub use potential::{EstimatorPotential, LikelihoodPotential, Potential, RatioPotential};
pub use runner::{RoundReport, SnpeRun, run_snpe};
pub use truncated::{TruncatedPrior, TruncationOptions};
