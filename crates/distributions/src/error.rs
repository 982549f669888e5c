//! The error type of this crate.

/// Everything that can go wrong when building or using a distribution.
///
/// Messages say what was expected and what was found.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DistributionError {
    /// A vector or slice has the wrong length (e.g. θ of the wrong dimension).
    #[error("{what}: expected length {expected}, found {found}")]
    DimensionMismatch {
        /// What had the wrong length.
        what: &'static str,
        /// The length that was expected.
        expected: usize,
        /// The length that was found.
        found: usize,
    },
    /// A matrix has the wrong shape.
    #[error("{what}: expected a {expected_rows}×{expected_cols} matrix, found {rows}×{cols}")]
    ShapeMismatch {
        /// What had the wrong shape.
        what: &'static str,
        /// Expected number of rows.
        expected_rows: usize,
        /// Expected number of columns.
        expected_cols: usize,
        /// Rows found.
        rows: usize,
        /// Columns found.
        cols: usize,
    },
    /// A distribution was given no dimensions at all.
    #[error("{what}: needs at least one dimension, found none")]
    Empty {
        /// What was empty.
        what: &'static str,
    },
    /// A parameter is NaN or infinite.
    #[error("{what}[{index}] = {value}: expected a finite number")]
    NonFinite {
        /// Which parameter.
        what: &'static str,
        /// Position in the parameter vector (row-major for matrices).
        index: usize,
        /// The offending value.
        value: f64,
    },
    /// Box bounds with `low >= high`.
    #[error("bounds of dimension {index}: expected low < high, found low = {low}, high = {high}")]
    InvalidBounds {
        /// The dimension.
        index: usize,
        /// Its lower bound.
        low: f64,
        /// Its upper bound.
        high: f64,
    },
    /// A scale parameter is zero or negative.
    #[error("{what}[{index}] = {value}: expected a value > 0")]
    NotPositive {
        /// Which parameter.
        what: &'static str,
        /// Position in the parameter vector.
        index: usize,
        /// The offending value.
        value: f64,
    },
    /// A covariance or precision matrix that is not symmetric.
    #[error("{what} is not symmetric: entry ({row}, {col}) = {upper} but ({col}, {row}) = {lower}")]
    NotSymmetric {
        /// Which matrix.
        what: &'static str,
        /// Row of the upper-triangle entry.
        row: usize,
        /// Column of the upper-triangle entry.
        col: usize,
        /// The entry at (row, col).
        upper: f64,
        /// The entry at (col, row).
        lower: f64,
    },
    /// A covariance or precision matrix that is not positive definite.
    #[error("{what} is not positive definite: its Cholesky factorization failed")]
    NotPositiveDefinite {
        /// Which matrix.
        what: &'static str,
    },
    /// A [`PriorSpec::Custom`](crate::PriorSpec::Custom) cannot be turned back into a prior.
    #[error(
        "cannot rebuild the custom prior `{name}` from its description; construct it in code instead"
    )]
    NotBuildable {
        /// The custom prior's name.
        name: String,
    },
    /// Sampling failed, e.g. a posterior used as a proposal spent its rejection budget.
    #[error("sampling failed: {0}")]
    Sampling(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl DistributionError {
    /// A [`DistributionError::Sampling`] from a message.
    pub fn sampling(message: impl Into<String>) -> Self {
        Self::Sampling(message.into().into())
    }
}

/// Checks that every value is finite.
pub(crate) fn check_finite(what: &'static str, values: &[f64]) -> Result<(), DistributionError> {
    match values.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(DistributionError::NonFinite {
            what,
            index,
            value: values[index],
        }),
        None => Ok(()),
    }
}

/// Checks that every value is finite and strictly positive.
pub(crate) fn check_positive(what: &'static str, values: &[f64]) -> Result<(), DistributionError> {
    check_finite(what, values)?;
    match values.iter().position(|&v| v <= 0.0) {
        Some(index) => Err(DistributionError::NotPositive {
            what,
            index,
            value: values[index],
        }),
        None => Ok(()),
    }
}

/// Checks a length.
pub(crate) fn check_len(
    what: &'static str,
    expected: usize,
    found: usize,
) -> Result<(), DistributionError> {
    if expected == found {
        Ok(())
    } else {
        Err(DistributionError::DimensionMismatch {
            what,
            expected,
            found,
        })
    }
}
