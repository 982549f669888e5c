//! The error type of this crate.

use simfer_distributions::DistributionError;
use simfer_mcmc::McmcError;
use simfer_simulators::SimulatorError;

/// Everything that can go wrong when using a benchmark task or sampling its reference
/// posterior.
///
/// Messages say what was expected and what was found.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchmarkError {
    /// Two sizes that must agree do not.
    #[error("{what}: expected {expected}, found {found}")]
    DimensionMismatch {
        /// What was compared.
        what: &'static str,
        /// The expected size.
        expected: usize,
        /// The size found.
        found: usize,
    },
    /// A value that must be finite was not.
    #[error("{what}[{index}] = {value}: expected a finite number")]
    NonFinite {
        /// What held the value.
        what: &'static str,
        /// Its index.
        index: usize,
        /// The value.
        value: f64,
    },
    /// An argument is out of its valid range.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// An accept/reject sampler spent its budget.
    #[error(
        "rejection sampling from {what}: accepted {accepted} of {proposals} proposals \
         (acceptance rate {rate:.3e}) before the budget of {proposals} proposals ran out, \
         but {requested} samples were requested; the observation is probably far from \
         anything the prior can produce (check x_o), or request fewer samples"
    )]
    RejectionBudget {
        /// The distribution being sampled.
        what: String,
        /// Samples accepted.
        accepted: usize,
        /// Samples requested.
        requested: usize,
        /// Proposals made (the budget).
        proposals: usize,
        /// `accepted / proposals`.
        rate: f64,
    },
    /// An MCMC reference sampler failed: invalid settings, no valid start, or
    /// ([`McmcError::Convergence`]) a budget spent without passing its convergence checks.
    #[error(transparent)]
    Mcmc(#[from] McmcError),
    /// There is no task of that name.
    #[error("unknown task `{name}`; the tasks are: {valid}")]
    UnknownTask {
        /// The name asked for.
        name: String,
        /// The valid names, comma-separated.
        valid: String,
    },
    /// A prior or proposal failed.
    #[error(transparent)]
    Distribution(#[from] DistributionError),
    /// A simulation failed.
    #[error(transparent)]
    Simulator(#[from] SimulatorError),
}

/// Checks that every value is finite.
pub(crate) fn check_finite(what: &'static str, values: &[f64]) -> Result<(), BenchmarkError> {
    match values.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(BenchmarkError::NonFinite {
            what,
            index,
            value: values[index],
        }),
        None => Ok(()),
    }
}
