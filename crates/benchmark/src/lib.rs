//! # simfer-benchmark: the benchmark tasks and their reference posteriors
//!
//! The tutorial's `linear_gaussian` and the ten tasks of the sbibm suite (Lueckmann et
//! al., 2021): each gives its prior, its simulator (a `simfer_simulators::Simulator`), the
//! names of its parameters, and a reference posterior sampler for an observation, exact in
//! closed form or by inverting the simulator, or by MCMC on the exact likelihood checked
//! for convergence (simfer-mcmc's [`Metropolis`](simfer_mcmc::Metropolis)). [`task`]
//! finds a task by name.
//!
//! ```
//! use simfer_benchmark::task;
//! use simfer_simulators::{SimulationOptions, check_sbi_inputs, simulate_for_sbi};
//!
//! let task = task("two_moons")?;
//! let (prior, simulator) = (task.prior(), task.simulator());
//! check_sbi_inputs(simulator.as_ref(), prior.as_ref())?;
//! let sims = simulate_for_sbi(simulator.as_ref(), &prior, 1000, &SimulationOptions::with_seed(7))?;
//! assert_eq!(sims.x.shape(), (2, 1000));
//!
//! // The exact posterior for an observation.
//! let x_o = sims.x.column(0).iter().copied().collect::<Vec<f64>>();
//! let posterior = task.reference_posterior(&x_o).unwrap()?;
//! let samples = posterior.sample(100, &mut simfer_distributions::rng_from_seed(0))?;
//! assert_eq!(samples.shape(), (2, 100));
//! # Ok::<(), simfer_benchmark::BenchmarkError>(())
//! ```

mod error;
mod special;
pub mod tasks;

pub use error::BenchmarkError;
pub use simfer_mcmc::{McmcDiagnostics, McmcError, MetropolisSettings};
pub use tasks::{ReferencePosterior, Task, task, task_names};
