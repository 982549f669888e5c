//! The error type of this crate.

use simfer_distributions::DistributionError;

/// Which budget a run spent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BudgetKind {
    /// The number of log-density evaluations (the initialisation's candidates included).
    Evaluations,
    /// The wall-clock time.
    Seconds,
}

impl std::fmt::Display for BudgetKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Evaluations => "log-density evaluations",
            Self::Seconds => "seconds",
        })
    }
}

/// Everything that can go wrong when configuring or running a sampler, or computing
/// diagnostics.
///
/// Messages say what was expected and what was found.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum McmcError {
    /// Settings or arguments that make no sense (e.g. no chains, a width of 0).
    #[error("invalid MCMC configuration: {0}")]
    InvalidConfig(String),
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
        /// Its index (column-major for matrices).
        index: usize,
        /// The value.
        value: f64,
    },
    /// A chain found no starting point with a finite log density.
    #[error(
        "chain {chain} has no valid starting point: the log density is −∞ or NaN at all \
         {candidates} candidate(s) {source_of_candidates}; check that the log density is \
         finite where the proposal puts its mass{hint}"
    )]
    NoValidStart {
        /// The chain.
        chain: usize,
        /// How many candidates were tried.
        candidates: usize,
        /// Where the candidates came from (e.g. "drawn from the proposal").
        source_of_candidates: &'static str,
        /// Advice for this strategy (starts with "; " or is empty).
        hint: &'static str,
    },
    /// A run spent its budget of evaluations or time.
    #[error(
        "{sampler} spent its budget of {limit} {kind} ({evaluations} evaluations in \
         {seconds:.2} s, {done} of {total} sweeps or iterations per chain done); {advice}"
    )]
    Budget {
        /// The sampler.
        sampler: &'static str,
        /// Which budget was spent.
        kind: BudgetKind,
        /// The budget.
        limit: f64,
        /// Evaluations made.
        evaluations: u64,
        /// Seconds spent.
        seconds: f64,
        /// Sweeps (or iterations) done by the slowest chain.
        done: usize,
        /// Sweeps (or iterations) the run needed per chain.
        total: usize,
        /// What to do about it.
        advice: String,
    },
    /// The chains did not pass the convergence checks.
    #[error(
        "MCMC sampling of {what} did not converge in {iterations} iterations in each of \
         {chains} chains: {failed}; {advice}"
    )]
    Convergence {
        /// The distribution being sampled.
        what: String,
        /// The checks that failed, with their values and thresholds.
        failed: String,
        /// Sampling iterations (or sweeps) per chain.
        iterations: usize,
        /// Number of chains.
        chains: usize,
        /// The largest split-R̂ over the coordinates.
        max_rhat: f64,
        /// The smallest bulk or tail ESS over the coordinates.
        min_ess: f64,
        /// The ESS required.
        required_ess: f64,
        /// What to do about it.
        advice: String,
    },
    /// The proposal of an initialisation strategy failed.
    #[error(transparent)]
    Distribution(#[from] DistributionError),
}

/// Checks that every value is finite.
pub(crate) fn check_finite(what: &'static str, values: &[f64]) -> Result<(), McmcError> {
    match values.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(McmcError::NonFinite {
            what,
            index,
            value: values[index],
        }),
        None => Ok(()),
    }
}
