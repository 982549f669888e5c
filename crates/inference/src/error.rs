//! The error type of this crate.

use simfer_distributions::DistributionError;
use simfer_flows::FlowError;
use simfer_simulators::SimulatorError;
use simfer_snpe::SnpeError;

use crate::sequential::Proposed;

/// Everything that can go wrong in multi-round inference and with a trained posterior.
#[derive(Debug, thiserror::Error)]
pub enum InferenceError {
    /// Training failed (diverging loss, too little data, bad settings, ...).
    #[error(transparent)]
    Training(#[from] SnpeError),
    /// The density estimator reported an error (but for a corrupted file, which is
    /// [`Corrupted`](Self::Corrupted)).
    #[error("density estimator: {0}")]
    Flow(FlowError),
    /// The prior reported an error.
    #[error("prior: {0}")]
    Distribution(#[from] DistributionError),
    /// Simulation failed.
    #[error("simulation: {0}")]
    Simulation(#[from] SimulatorError),
    /// MCMC sampling failed: no valid start, a spent budget, bad settings.
    #[error("MCMC: {0}")]
    Mcmc(#[from] simfer_mcmc::McmcError),
    /// Two sizes that must agree do not.
    #[error("{what}: expected {expected}, found {found}")]
    DimensionMismatch {
        /// What was being compared.
        what: String,
        /// The expected size.
        expected: usize,
        /// The size found.
        found: usize,
    },
    /// An observation contains NaN or ±∞.
    #[error(
        "the observation x has a non-finite value at index {index} ({value}); observations must be finite"
    )]
    NonFiniteObservation {
        /// Index of the first non-finite entry.
        index: usize,
        /// Its value.
        value: f64,
    },
    /// No observation was given and the posterior has no default x.
    #[error(
        "no observation: pass x, or set a default x first (`set_default_x`), which a posterior \
         needs to act as a proposal"
    )]
    NoObservation,
    /// A step was called out of order.
    #[error("{0}")]
    OutOfOrder(String),
    /// A later round produced invalid simulations (NaN/±∞) and the policy forbids them.
    /// Nothing is lost: the proposed θ's and the simulated x are in the error, so the
    /// values can be repaired and appended with `append_proposed`.
    #[error(
        "round {round}: {nan} simulations with NaN and {inf} with ±∞ (of {total}); multi-round \
         SNPE-C with the atomic loss does not allow invalid simulations after round 0, because \
         excluding them biases the posterior. Replace invalid values by very low or high \
         finite values and append again, or set `InvalidPolicy::Exclude` to drop them anyway"
    )]
    InvalidSimulations {
        /// The round.
        round: usize,
        /// Simulations with a NaN.
        nan: usize,
        /// Simulations with ±∞ (and no NaN).
        inf: usize,
        /// All simulations of the round.
        total: usize,
        /// The proposed θ's, to append again once repaired.
        proposed: Box<Proposed>,
        /// The simulated x, `x_dim × n`, including the invalid columns.
        x: Box<nalgebra::DMatrix<f64>>,
    },
    /// Every simulation of the training data is invalid.
    #[error("no valid simulation to train on: all {total} simulations contain NaN or ±∞")]
    NoValidSimulations {
        /// Simulations in total.
        total: usize,
    },
    /// Rejection sampling used up its budget before collecting the samples asked for.
    #[error(
        "rejection sampling stopped after {drawn} draws, of which {accepted} fell inside the \
         prior's support where {requested} samples were requested: only {rate_percent:.4}% of \
         the estimator's samples fall inside the prior's support{limit}. The posterior leaks \
         out of the prior's support: use truncated proposals (method TSNPE), which cannot \
         leak, or NLE/NRE; or raise the budget (`SamplingOptions`), sample without rejection \
         (`reject_outside_prior: false`, biased), or train more (more simulations or rounds)"
    )]
    RejectionBudget {
        /// Samples requested.
        requested: usize,
        /// Samples accepted before stopping.
        accepted: usize,
        /// Candidates drawn.
        drawn: u64,
        /// Acceptance rate in percent.
        rate_percent: f64,
        /// Which limit was hit, for the message.
        limit: String,
    },
    /// A setting is out of range.
    #[error("invalid setting `{name}`: {message}")]
    InvalidConfig {
        /// The setting.
        name: &'static str,
        /// What is wrong.
        message: String,
    },
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A file is not a posterior file of a version this build reads.
    #[error("{0}")]
    Format(String),
    /// A saved file whose content does not match its checksum (or that lacks the checksum
    /// its version carries): it was changed or corrupted after it was written, and is not
    /// loaded as another posterior.
    #[error("{}{what}; the file was changed or corrupted", file_prefix(path.as_deref()))]
    Corrupted {
        /// The file, where the data came from one.
        path: Option<std::path::PathBuf>,
        /// What was expected and what was found (e.g. the checksum the file records and
        /// the one its content gives).
        what: String,
    },
    /// Something this method, estimator or model cannot do (e.g. save a researcher's
    /// estimator that has no serialization, to checkpoint a run).
    #[error("unsupported: {0}")]
    Unsupported(String),
}

impl From<FlowError> for InferenceError {
    /// [`FlowError::Corrupted`] becomes [`InferenceError::Corrupted`] (the same failure,
    /// the same name), every other error [`InferenceError::Flow`].
    fn from(e: FlowError) -> Self {
        match e {
            FlowError::Corrupted { path, what } => InferenceError::Corrupted { path, what },
            e => InferenceError::Flow(e),
        }
    }
}

impl InferenceError {
    /// The error with the file it concerns, for errors about a file's content
    /// ([`Corrupted`](Self::Corrupted) without a file, [`Format`](Self::Format), an
    /// estimator's [`Flow`](Self::Flow) error); others are returned as they are.
    pub fn in_file(self, file: impl AsRef<std::path::Path>) -> Self {
        let file = file.as_ref();
        match self {
            InferenceError::Corrupted { path: None, what } => InferenceError::Corrupted {
                path: Some(file.to_path_buf()),
                what,
            },
            InferenceError::Format(message) => {
                InferenceError::Format(format!("{}: {message}", file.display()))
            }
            InferenceError::Flow(e) => InferenceError::Flow(e.in_file(file)),
            e => e,
        }
    }
}

/// `"path: "`, or nothing.
fn file_prefix(path: Option<&std::path::Path>) -> String {
    path.map(|p| format!("{}: ", p.display()))
        .unwrap_or_default()
}
