//! The crate's error type and the input checks shared by all modules.

use std::path::PathBuf;

use nalgebra::DMatrix;

/// Everything that can go wrong in `simfer-analysis`.
#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    /// A sample set (or another batch) has fewer columns than the computation needs.
    #[error("{what}: expected at least {expected} sample(s), found {found}")]
    TooFewSamples {
        /// Which input.
        what: String,
        /// Minimum number of samples.
        expected: usize,
        /// Number of samples given.
        found: usize,
    },
    /// Two inputs that must agree in dimension (or length) do not.
    #[error("{what}: expected dimension {expected}, found {found}")]
    DimensionMismatch {
        /// Which input.
        what: String,
        /// Expected dimension (or length).
        expected: usize,
        /// Dimension (or length) found.
        found: usize,
    },
    /// A NaN or ±∞ in data that must be finite.
    #[error("{what}: expected finite values, found {value} at dimension {dim}, sample {sample}")]
    NonFinite {
        /// Which input.
        what: String,
        /// Row of the offending entry.
        dim: usize,
        /// Column of the offending entry.
        sample: usize,
        /// The value itself.
        value: f64,
    },
    /// A dimension without spread where the computation needs one (z-scoring, KDE).
    #[error("{what}: dimension {dim} has zero variance; expected a non-degenerate sample")]
    Degenerate {
        /// Which input.
        what: String,
        /// The degenerate dimension (or 0 for a singular covariance).
        dim: usize,
    },
    /// An option or argument outside its valid range.
    #[error("invalid {name}: expected {expected}, found {found}")]
    InvalidArgument {
        /// The argument's name.
        name: String,
        /// What is accepted.
        expected: String,
        /// What was given.
        found: String,
    },
    /// The user's posterior (or log-prob) closure failed.
    #[error("the posterior failed for simulation {index}: {source}")]
    Posterior {
        /// Index of the (θ, x) pair being processed.
        index: usize,
        /// The closure's error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Rendering a plot failed.
    #[error("plotting failed: {0}")]
    Plot(String),
    /// Writing a file failed.
    #[error("writing {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// JSON (de)serialization failed.
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// Shorthand for results of this crate.
pub type Result<T, E = AnalysisError> = std::result::Result<T, E>;

pub(crate) fn invalid(
    name: impl Into<String>,
    expected: impl Into<String>,
    found: impl std::fmt::Display,
) -> AnalysisError {
    AnalysisError::InvalidArgument {
        name: name.into(),
        expected: expected.into(),
        found: found.to_string(),
    }
}

/// Checks a `D × n` sample matrix: `D ≥ 1`, `n ≥ min_samples`, all entries finite.
pub(crate) fn check_samples(what: &str, m: &DMatrix<f64>, min_samples: usize) -> Result<()> {
    if m.nrows() == 0 {
        return Err(AnalysisError::DimensionMismatch {
            what: format!("{what} (rows = dimensions)"),
            expected: 1,
            found: 0,
        });
    }
    if m.ncols() < min_samples {
        return Err(AnalysisError::TooFewSamples {
            what: what.to_string(),
            expected: min_samples,
            found: m.ncols(),
        });
    }
    check_finite_matrix(what, m)
}

pub(crate) fn check_finite_matrix(what: &str, m: &DMatrix<f64>) -> Result<()> {
    let d = m.nrows().max(1);
    match m.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(k) => Err(AnalysisError::NonFinite {
            what: what.to_string(),
            dim: k % d,
            sample: k / d,
            value: m[k],
        }),
    }
}

/// Checks a slice of values of one dimension: at least `min_samples`, all finite.
pub(crate) fn check_values(what: &str, v: &[f64], min_samples: usize) -> Result<()> {
    if v.len() < min_samples {
        return Err(AnalysisError::TooFewSamples {
            what: what.to_string(),
            expected: min_samples,
            found: v.len(),
        });
    }
    match v.iter().position(|x| !x.is_finite()) {
        None => Ok(()),
        Some(k) => Err(AnalysisError::NonFinite {
            what: what.to_string(),
            dim: 0,
            sample: k,
            value: v[k],
        }),
    }
}

pub(crate) fn check_same_dim(what: &str, expected: usize, found: usize) -> Result<()> {
    if expected == found {
        Ok(())
    } else {
        Err(AnalysisError::DimensionMismatch {
            what: what.to_string(),
            expected,
            found,
        })
    }
}

/// Checks `lo < hi`, both finite.
pub(crate) fn check_limits(what: &str, lim: [f64; 2]) -> Result<()> {
    if lim[0].is_finite() && lim[1].is_finite() && lim[0] < lim[1] {
        Ok(())
    } else {
        Err(invalid(
            what,
            "finite limits [lo, hi] with lo < hi",
            format!("[{}, {}]", lim[0], lim[1]),
        ))
    }
}

/// Checks a probability mass in `[0, 1]` (strictly inside when `open`).
pub(crate) fn check_probability(what: &str, p: f64, open: bool) -> Result<()> {
    let ok = if open {
        p > 0.0 && p < 1.0
    } else {
        (0.0..=1.0).contains(&p)
    };
    if ok {
        Ok(())
    } else {
        let range = if open { "in (0, 1)" } else { "in [0, 1]" };
        Err(invalid(what, range, p))
    }
}
