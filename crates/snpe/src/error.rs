//! The error type of this crate.

use simfer_distributions::DistributionError;
use simfer_flows::FlowError;

/// Everything that can go wrong while computing a loss or training an estimator.
#[derive(Debug, thiserror::Error)]
pub enum SnpeError {
    /// The density estimator reported an error (e.g. a shape mismatch).
    #[error("density estimator: {0}")]
    Flow(#[from] FlowError),
    /// The prior reported an error (e.g. θ of the wrong dimension).
    #[error("prior: {0}")]
    Distribution(#[from] DistributionError),
    /// Two pieces of data that must agree in size do not.
    #[error("{what}: expected {expected}, found {found}")]
    DimensionMismatch {
        /// What was being compared.
        what: String,
        /// The size that was expected.
        expected: usize,
        /// The size that was found.
        found: usize,
    },
    /// The training data are too few for the requested split and batch size.
    #[error(
        "not enough training data: {found} valid rows, but at least {needed} are needed \
         ({reason})"
    )]
    NotEnoughData {
        /// Rows available.
        found: usize,
        /// Rows needed.
        needed: usize,
        /// Why that many are needed.
        reason: String,
    },
    /// The training data contain a non-finite value (NaN or ±∞).
    #[error(
        "training data: {what} has a non-finite value in row {row}; remove invalid simulations first"
    )]
    NonFiniteData {
        /// θ or x.
        what: &'static str,
        /// The 0-based row (sample) index.
        row: usize,
    },
    /// A setting is out of its valid range.
    #[error("invalid training setting `{name}`: {message}")]
    InvalidConfig {
        /// The setting's name.
        name: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// The loss, or its gradient, became NaN or infinite (a huge but finite loss can
    /// have a gradient that overflows). The estimator holds the best weights found
    /// before it happened.
    #[error(
        "the loss or its gradient is not finite (loss {value}) in round {round}, epoch \
         {epoch}, batch {batch} ({phase}); the best weights so far (epoch {best_epoch}) were \
         restored. Try a lower learning rate, a tighter gradient clip, or check the data for \
         extreme values"
    )]
    NonFiniteLoss {
        /// The loss value (finite when only the gradient was not).
        value: f64,
        /// Round index (0-based).
        round: usize,
        /// Epoch (1-based) in which it happened.
        epoch: usize,
        /// Batch index (0-based) within the epoch.
        batch: usize,
        /// "training" or "validation".
        phase: &'static str,
        /// The epoch whose weights were restored (0 = the weights before training).
        best_epoch: usize,
    },
    /// An interruption check (see [`with_interrupt_check`](crate::with_interrupt_check))
    /// asked training to stop. The estimator holds the best weights found before it.
    #[error(
        "training was interrupted in round {round}, epoch {epoch}; the best weights so far \
         (epoch {best_epoch}) were restored"
    )]
    Interrupted {
        /// Round index (0-based).
        round: usize,
        /// Epoch (1-based) in which it stopped.
        epoch: usize,
        /// The epoch whose weights were restored (0 = the weights before training).
        best_epoch: usize,
    },
}
