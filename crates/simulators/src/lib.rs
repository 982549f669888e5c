//! Simulators for simulation-based inference: the [`Simulator`] trait (closures are
//! simulators too), programs in any language as simulators ([`external`]), a seeded
//! parallel runner whose output does not depend on the number of threads, and input
//! checks. The benchmark tasks live in `simfer-benchmark`, so a user's simulator does not
//! pull them in.
//!
//! - [`simulate_batch`] simulates a `theta_dim × n` batch with rayon; simulation `i` draws
//!   only from `derive_rng(seed, i)`. NaN/±∞ simulations are kept and reported by index
//!   ([`InvalidReport`]); a simulator that errors, writes the wrong length or panics
//!   becomes an error naming the θ index. Simulators that work on whole batches (external
//!   programs) get chunks of rows through [`Simulator::simulate_many`].
//! - [`simulate_for_sbi`] draws θ from a proposal (a prior, or later a posterior) and
//!   simulates; [`check_sbi_inputs`] checks that a prior and a simulator fit together.
//! - [`external`]: a long-lived program speaking a plain-text batch protocol on its stdin
//!   and stdout, with worker processes, timeouts and restarts.
//! - `mpi` (with the cargo feature `mpi`): simulation across the ranks of an MPI job
//!   (`mpirun`, SLURM's `srun`): rank 0 runs the inference with an `MpiSimulator` and every
//!   rank simulates its share of each batch, with the same result as one process.
//!
//! ```
//! use simfer_distributions::BoxUniform;
//! use simfer_simulators::{FnSimulator, SimulationOptions, check_sbi_inputs, simulate_for_sbi};
//!
//! // x = θ₁ + θ₂·u with u uniform on (0, 1).
//! let simulator = FnSimulator::new(2, 1, |theta: &[f64], rng: &mut dyn rand::RngCore| {
//!     vec![theta[0] + theta[1] * rand::Rng::random::<f64>(rng)]
//! });
//! let prior = BoxUniform::uniform(2, 0.0, 1.0)?;
//! check_sbi_inputs(&simulator, &prior)?;
//! let sims = simulate_for_sbi(&simulator, &prior, 1000, &SimulationOptions::with_seed(7))?;
//! assert_eq!(sims.theta.shape(), (2, 1000));
//! assert_eq!(sims.x.shape(), (1, 1000));
//! assert!(sims.invalid.is_empty());
//! # Ok::<(), simfer_simulators::SimulatorError>(())
//! ```

mod error;
pub mod external;
#[cfg(feature = "mpi")]
pub mod mpi;
mod runner;
mod simulator;

pub use error::SimulatorError;
pub use external::{ExternalSimulator, ExternalSimulatorBuilder};
pub use runner::{
    InvalidReport, SimulationOptions, SimulationSink, Simulations, check_sbi_inputs,
    simulate_batch, simulate_batch_with, simulate_for_sbi,
};
pub use simulator::{
    BatchPlan, FnSimulator, SimulationChunk, Simulator, SliceSimulator, check_chunk, check_lengths,
};
