//! # simfer-inference: simulation-based inference, one round or sequential
//!
//! - [`Inference`]: one entry point for a whole run: the prior, the method and the
//!   estimator by name (`npe`, `snpe`, `tsnpe`, `nle`, `snle`, `nre`, `snre`; `maf`,
//!   `nsf`, `mdn`), rounds, simulations, the observation and a seed in; each round's
//!   posterior and [`RoundReport`] out.
//! - [`Sequential`]: the runner with the reference library's steps (simulate or append,
//!   train, build the posterior) for any [`Method`], which **records the proposal of
//!   every round itself**: θ's are drawn with [`Sequential::propose`] (or
//!   [`Sequential::simulate_round`]) and carry their proposal, so there is no proposal
//!   argument to forget. Invalid simulations are counted and handled by an explicit
//!   [`InvalidPolicy`]. [`Snpe`] (SNPE-C and TSNPE), [`Snle`] and [`Snre`] are its methods.
//! - [`Posterior`]: the interface of every posterior (sample, log-density, MAP, default
//!   x, use as the next proposal), with [`DirectPosterior`] (a density estimator of θ
//!   given x with rejection to the prior's support under a budget, the normalized
//!   log-density, save/load) and [`McmcPosterior`] (a potential sampled by slice sampling in
//!   unconstrained space, with its convergence diagnostics).
//! - Durable runs: [`Inference::run_logged`] keeps each round's proposal, every
//!   simulation as it returns and each round's model in a [`RunLog`], and continues from
//!   what the log holds, so a run killed at any moment ends as an uninterrupted one.
//! - [`Potential`]s, [`map_search`] for any differentiable potential, and TSNPE's
//!   [`TruncatedPrior`]. The random streams of a run are listed in [`streams`].
//!
//! ```
//! use rand_distr::{Distribution, StandardNormal};
//! use simfer_distributions::{BoxUniform, rng_from_seed};
//! use simfer_inference::Inference;
//! use simfer_simulators::FnSimulator;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // x = θ + 1 + 0.1·ε
//! let simulator = FnSimulator::new(3, 3, |theta: &[f64], rng: &mut dyn rand::RngCore| {
//!     theta
//!         .iter()
//!         .map(|t| t + 1.0 + 0.1 * <StandardNormal as Distribution<f64>>::sample(&StandardNormal, rng))
//!         .collect::<Vec<f64>>()
//! });
//! // Two rounds of 500 simulations of SNPE-C focused on x_o = 0, seed 1.
//! let run = Inference::new(BoxUniform::uniform(3, -2.0, 2.0)?)
//!     .method("snpe")
//!     .rounds(2)
//!     .simulations_per_round(500)
//!     .observation(&[0.0; 3])
//!     .seed(1)
//!     .run(&simulator)?;
//! let samples = run.posterior().sample(10_000, None, &mut rng_from_seed(2))?;
//! assert_eq!(samples.shape(), (3, 10_000));
//! let mean = samples.row(0).mean();
//! assert!((mean + 1.0).abs() < 0.05, "posterior mean {mean}, exact −1");
//! # Ok(()) }
//! ```

mod durable;
mod error;
mod map;
pub mod methods;
mod persist;
mod posterior;
pub mod potential;
mod progress;
mod runner;
mod sequential;
pub mod streams;
mod truncated;

pub use durable::{MemoryLog, RunLog, SavedProposal, SavedTraining};
pub use error::InferenceError;
pub use map::{MapEstimate, MapOptions, map_search};
pub use methods::nle::{Nle, NleConfig, Snle};
pub use methods::npe::{EstimatorBuilder, Npe, NpeProposal, Snpe, SnpeConfig};
pub use methods::nre::{Nre, NreConfig, Snre};
pub use persist::{POSTERIOR_FORMAT, POSTERIOR_FORMAT_VERSION};
pub use posterior::{
    DirectPosterior, LikelihoodModel, McmcPosterior, Posterior, PosteriorKind, PotentialModel,
    RatioModel, RejectionOptions, RejectionPosterior, RejectionStats, SamplingOptions,
};
pub use potential::{EstimatorPotential, LikelihoodPotential, Potential, RatioPotential};
pub use runner::{EstimatorChoice, Inference, InferenceRun, IntoPrior, MethodKind, RoundReport};
pub use sequential::{
    InvalidCounts, InvalidPolicy, Method, PosteriorContext, ProposalSource, Proposed, RoundData,
    RunnerSettings, Sequential, TrainContext,
};
pub use truncated::{TruncatedPrior, TruncationOptions};
