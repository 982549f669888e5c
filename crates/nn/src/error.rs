//! The error type of this crate.

/// What can go wrong when a pass is driven with inconsistent arguments.
///
/// The variant names are the workspace's: the same failure has the same name in every
/// crate (the flows' `FlowError` has a variant of each name below).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NnError {
    /// A matrix, vector or slice had the wrong shape or length.
    #[error("dimension mismatch in {what}: expected {expected}, found {found}")]
    DimensionMismatch {
        /// Which argument or quantity was wrong.
        what: &'static str,
        /// The expected shape or length.
        expected: String,
        /// The shape or length that was given.
        found: String,
    },
    /// A setting is out of its valid range.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// Calls came in an order that cannot work (e.g. a backward pass without a forward).
    #[error("out of order: {0}")]
    OutOfOrder(String),
}

impl NnError {
    /// A [`DimensionMismatch`](Self::DimensionMismatch) from anything printable.
    pub fn dims(what: &'static str, expected: impl ToString, found: impl ToString) -> Self {
        NnError::DimensionMismatch {
            what,
            expected: expected.to_string(),
            found: found.to_string(),
        }
    }
}
