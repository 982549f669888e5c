//! # simfer: simulation-based inference in Rust
//!
//! Given a prior p(θ), a stochastic simulator x ~ p(x | θ) and an observation x_o,
//! simfer estimates the posterior p(θ | x_o) with neural posterior estimation, in one
//! round or in several rounds that focus on x_o (SNPE-C / APT).
//!
//! This crate is a facade: it re-exports the workspace's crates under short names and
//! gathers the most used items in [`prelude`].
//!
//! ```
//! use simfer::prelude::*;
//! let prior = BoxUniform::uniform(2, -1.0, 1.0).unwrap();
//! let theta = prior.sample_batch(5, &mut rng_from_seed(0));
//! assert_eq!(theta.shape(), (2, 5));
//! ```

pub use simfer_analysis as analysis;
pub use simfer_benchmark as benchmark;
pub use simfer_distributions as distributions;
pub use simfer_flows as flows;
pub use simfer_inference as inference;
pub use simfer_simulators as simulators;
pub use simfer_snpe as snpe;

/// The README's code samples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

/// The most used items, for `use simfer::prelude::*`.
pub mod prelude {
    pub use simfer_benchmark::task;
    pub use simfer_distributions::{
        BoxUniform, Independent, LogNormal, MultivariateNormal, Prior, Support, derive_rng,
        rng_from_seed,
    };
    pub use simfer_flows::{
        ConditionalDensityEstimator, EstimatorConfig, EstimatorKind, Maf, MafConfig, Parameterized,
        Precision,
    };
    pub use simfer_inference::{
        DirectPosterior, Inference, InferenceRun, InvalidPolicy, MapOptions, MethodKind, Posterior,
        SamplingOptions, Snle, Snpe, SnpeConfig, Snre,
    };
    pub use simfer_simulators::{
        ExternalSimulator, FnSimulator, SimulationOptions, Simulator, check_sbi_inputs,
        simulate_batch, simulate_for_sbi,
    };
    pub use simfer_snpe::TrainingConfig;
}
