//! Simulators for simulation-based inference: the [`Simulator`] trait (closures are
//! simulators too), a seeded parallel runner whose output does not depend on the number of
//! threads, input checks, and the standard benchmark tasks.
//!
//! - [`simulate_batch`] simulates a `theta_dim × n` batch with rayon; simulation `i` draws
//!   only from `derive_rng(seed, i)`. NaN/±∞ simulations are kept and reported by index
//!   ([`InvalidReport`]); a simulator that errors, writes the wrong length or panics
//!   becomes an error naming the θ index.
//! - [`simulate_for_sbi`] draws θ from a proposal (a prior, or later a posterior) and
//!   simulates; [`check_sbi_inputs`] checks that a prior and a simulator fit together.
//! - [`external`]: a program in any language as a simulator ([`ExternalSimulator`]), through
//!   a plain-text batch protocol on the stdin/stdout of long-lived worker processes;
//!   simulators that take whole batches implement [`Simulator::batch_plan`] and
//!   [`Simulator::simulate_many`].
//! - [`tasks`]: linear_gaussian and the ten sbibm tasks, with reference posteriors (in
//!   closed form, by inversion, or by MCMC on the exact likelihood for slcp(_distractors)
//!   and bernoulli_glm(_raw): [`mcmc`]); [`task`] finds one by name.
//!
//! ```
//! use simfer_simulators::{SimulationOptions, check_sbi_inputs, simulate_for_sbi, task};
//!
//! let task = task("two_moons")?;
//! let (prior, simulator) = (task.prior(), task.simulator());
//! check_sbi_inputs(simulator.as_ref(), prior.as_ref())?;
//! let sims = simulate_for_sbi(simulator.as_ref(), &prior, 1000, &SimulationOptions::with_seed(7))?;
//! assert_eq!(sims.theta.shape(), (2, 1000));
//! assert_eq!(sims.x.shape(), (2, 1000));
//! assert!(sims.invalid.is_empty());
//!
//! // The exact posterior for an observation.
//! let x_o = sims.x.column(0).iter().copied().collect::<Vec<f64>>();
//! let posterior = task.reference_posterior(&x_o).unwrap()?;
//! let samples = posterior.sample(100, &mut simfer_distributions::rng_from_seed(0))?;
//! assert_eq!(samples.shape(), (2, 100));
//! # Ok::<(), simfer_simulators::SimulatorError>(())
//! ```

mod error;
pub mod external;
pub mod mcmc;
mod runner;
mod simulator;
mod special;
pub mod tasks;

pub use error::SimulatorError;
pub use external::{ExternalSimulator, ExternalSimulatorBuilder};
pub use mcmc::{McmcDiagnostics, McmcSettings};
pub use runner::{
    InvalidReport, SimulationOptions, Simulations, check_sbi_inputs, simulate_batch,
    simulate_for_sbi,
};
pub use simulator::{
    BatchPlan, FnSimulator, SimulationChunk, Simulator, SliceSimulator, check_chunk, check_lengths,
};
pub use tasks::{ReferencePosterior, Task, task, task_names};
