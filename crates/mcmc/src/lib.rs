//! # simfer-mcmc: samplers over a log density, and their convergence diagnostics
//!
//! - [`LogDensity`]: the target, an unnormalized log density with a batch method.
//!   Closures through [`from_fn`]; [`ParallelBatch`] evaluates batches on rayon's pool.
//! - [`Metropolis`]: adaptive random-walk Metropolis that extends its chains until the
//!   convergence checks pass (the benchmark's reference posteriors).
//! - [`diagnostics`]: rank-normalized (folded) split-R̂ and bulk/tail ESS on any set of
//!   chains; every run reports a [`McmcDiagnostics`].
//!
//! One seed reproduces a run bit for bit, whatever the number of threads: chain `c` draws
//! only from `derive_rng(seed, c)`.

mod density;
pub mod diagnostics;
mod error;
pub mod metropolis;

pub use density::{FnDensity, LogDensity, ParallelBatch, from_fn};
pub use diagnostics::{ChainDiagnostics, McmcDiagnostics, SamplerKind};
pub use error::{BudgetKind, McmcError};
pub use metropolis::{Metropolis, MetropolisSettings, MetropolisTarget};
