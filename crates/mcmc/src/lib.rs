//! # simfer-mcmc: samplers over a log density, and their convergence diagnostics
//!
//! - [`LogDensity`]: the target, an unnormalized log density with a batch method (one call
//!   evaluates every chain's next point: a neural potential is far faster per batch).
//!   Closures through [`from_fn`]; [`ParallelBatch`] evaluates batches on rayon's pool.
//! - [`SliceSampler`]: the vectorized per-coordinate slice sampler (Neal 2003), the
//!   reference library's default MCMC sampler (`sbi.samplers.mcmc.slice_numpy.
//!   SliceSamplerVectorized`) with its defaults, chains in lockstep, warm-up, thinning and
//!   the initialisation strategies of `sbi.samplers.mcmc.init_strategy`
//!   ([`InitStrategy`]), plus budgets of evaluations and time so that no run can hang.
//! - [`Metropolis`]: adaptive random-walk Metropolis that extends its chains until the
//!   convergence checks pass (the benchmark's reference posteriors).
//! - [`diagnostics`]: rank-normalized (folded) split-R̂ and bulk/tail ESS on any set of
//!   chains; every run reports a [`McmcDiagnostics`].
//!
//! One seed reproduces a run bit for bit, whatever the number of threads: chain `c` draws
//! only from `derive_rng(seed, c)`.
//!
//! ```
//! use simfer_distributions::BoxUniform;
//! use simfer_mcmc::{LogDensity, SliceSampler, SliceSettings, from_fn};
//!
//! // A posterior ∝ N(θ; (1, −1), 0.5² I) inside the prior box [−3, 3]².
//! let prior = BoxUniform::uniform(2, -3.0, 3.0)?;
//! let potential = from_fn(2, |t: &[f64]| {
//!     if t.iter().any(|v| v.abs() > 3.0) {
//!         return f64::NEG_INFINITY;
//!     }
//!     -((t[0] - 1.0).powi(2) + (t[1] + 1.0).powi(2)) / (2.0 * 0.25)
//! });
//! let sampler = SliceSampler::new(SliceSettings::default())?;
//! let run = sampler.sample(&potential, Some(&prior), 1000, 7)?;
//! // Defaults: 20 chains × (50 tuning + 200 warm-up + 50) sweeps, 50 samples per chain.
//! assert_eq!(run.samples.shape(), (2, 1000));
//! assert_eq!(run.diagnostics.draws_per_chain, 50);
//! let mean = run.samples.column_mean();
//! assert!((mean[0] - 1.0).abs() < 0.1 && (mean[1] + 1.0).abs() < 0.1);
//! assert!(run.diagnostics.max_rhat() < 1.05);
//!
//! // Continue the same chains for 1000 more samples (the reference's `latest_sample`).
//! let more = SliceSampler::new(
//!     SliceSettings::default().with_init(simfer_mcmc::InitStrategy::Given(run.final_states)),
//! )?
//! .sample(&potential, None, 1000, 8)?;
//! assert_eq!(more.samples.ncols(), 1000);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod density;
pub mod diagnostics;
mod error;
mod init;
pub mod metropolis;
pub mod slice;

pub use density::{FnDensity, LogDensity, ParallelBatch, from_fn};
pub use diagnostics::{ChainDiagnostics, McmcDiagnostics, SamplerKind};
pub use error::{BudgetKind, McmcError};
pub use init::InitStrategy;
pub use metropolis::{Metropolis, MetropolisSettings, MetropolisTarget};
pub use slice::{ConvergenceCheck, SliceOutput, SlicePlan, SliceSampler, SliceSettings};
