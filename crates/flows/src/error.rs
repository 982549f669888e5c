//! The error type of this crate.

/// Everything that can go wrong when building, evaluating, training or loading a flow.
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
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
    /// Not enough finite samples to compute standardization statistics.
    #[error(
        "not enough finite samples to standardize: need at least {needed} columns with only finite entries, found {found} (of {total})"
    )]
    InsufficientData {
        /// Minimum number of valid samples.
        needed: usize,
        /// Number of valid (all-finite) samples found.
        found: usize,
        /// Number of samples given.
        total: usize,
    },
    /// A configuration value is out of range.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// An input that must be finite was not.
    #[error("non-finite value in {0}")]
    NonFinite(&'static str),
    /// A saved model has another format version than this library reads.
    #[error(
        "unsupported file format: expected {expected_format} version {oldest_version} to {expected_version}, found {found_format} version {found_version}"
    )]
    VersionMismatch {
        /// Format tag this library writes.
        expected_format: String,
        /// The oldest version this library reads.
        oldest_version: u32,
        /// The version this library writes (the newest it reads).
        expected_version: u32,
        /// Format tag found in the data.
        found_format: String,
        /// Version found in the data.
        found_version: u32,
    },
    /// A saved model does not have the expected architecture, or is internally inconsistent.
    #[error("architecture mismatch: {0}")]
    ArchitectureMismatch(String),
    /// Reading or writing a file failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// Reading or writing the file `path` failed.
    #[error("{}: {source}", path.display())]
    File {
        /// The file.
        path: std::path::PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// Encoding or decoding a saved model failed.
    #[error("serialization error: {0}")]
    Serialization(String),
    /// A saved estimator is of a kind this library does not know, or of another kind
    /// than the one asked for.
    #[error("unknown estimator kind: expected {expected}, found `{found}`")]
    UnknownKind {
        /// The kind (or kinds) that would have been accepted.
        expected: String,
        /// The kind found.
        found: String,
    },
    /// Calls came in an order that cannot work (e.g. a backward pass without a forward).
    #[error("out of order: {0}")]
    OutOfOrder(String),
    /// A saved file whose content does not match its checksum (or that lacks the checksum
    /// its version carries, or holds bytes after its end): it was changed or corrupted
    /// after it was written, and is not loaded as another estimator.
    #[error("{}{what}; the file was changed or corrupted", file_prefix(path.as_deref()))]
    Corrupted {
        /// The file, where the data came from one.
        path: Option<std::path::PathBuf>,
        /// What was expected and what was found (e.g. the checksum the file records and
        /// the one its content gives).
        what: String,
    },
}

/// Checks that a model's parameters (e.g. read from a file) are all finite.
pub(crate) fn check_finite_params(params: &[f64]) -> Result<(), FlowError> {
    if params.iter().any(|v| !v.is_finite()) {
        return Err(FlowError::NonFinite("the parameters"));
    }
    Ok(())
}

/// A lower bound of a number of parameters: the product of `factors`, saturating.
pub(crate) fn at_least(factors: &[usize]) -> usize {
    factors.iter().fold(1, |a, &b| a.saturating_mul(b))
}

/// Checks, before the architecture a file describes is built, that the `params` parameters
/// the file holds could be that architecture: each of `lower_bounds` (what it counts, and a
/// number of parameters the architecture has at least, see [`at_least`]) at most
/// `params`. A corrupted count of hidden units, layers or transforms is then an
/// [`FlowError::ArchitectureMismatch`], not a structure too large to build or a count that
/// overflows.
pub(crate) fn check_stored_size(
    model: &str,
    params: usize,
    lower_bounds: &[(&str, usize)],
) -> Result<(), FlowError> {
    match lower_bounds.iter().find(|(_, n)| *n > params) {
        Some((what, n)) => Err(FlowError::ArchitectureMismatch(format!(
            "{model} has at least {n} parameters ({what}), found {params}"
        ))),
        None => Ok(()),
    }
}

/// `"path: "`, or nothing.
pub(crate) fn file_prefix(path: Option<&std::path::Path>) -> String {
    path.map(|p| format!("{}: ", p.display()))
        .unwrap_or_default()
}

impl From<simfer_nn::NnError> for FlowError {
    fn from(e: simfer_nn::NnError) -> Self {
        match e {
            simfer_nn::NnError::DimensionMismatch {
                what,
                expected,
                found,
            } => FlowError::DimensionMismatch {
                what,
                expected,
                found,
            },
            simfer_nn::NnError::InvalidConfig(m) => FlowError::InvalidConfig(m),
            simfer_nn::NnError::OutOfOrder(m) => FlowError::OutOfOrder(m),
        }
    }
}

impl FlowError {
    /// The error with the file it concerns, for errors that name one
    /// ([`Corrupted`](Self::Corrupted)); others are returned as they are.
    pub fn in_file(self, file: impl AsRef<std::path::Path>) -> Self {
        match self {
            FlowError::Corrupted { path: None, what } => FlowError::Corrupted {
                path: Some(file.as_ref().to_path_buf()),
                what,
            },
            e => e,
        }
    }

    /// A [`DimensionMismatch`](Self::DimensionMismatch) from anything printable.
    pub fn dims(what: &'static str, expected: impl ToString, found: impl ToString) -> Self {
        FlowError::DimensionMismatch {
            what,
            expected: expected.to_string(),
            found: found.to_string(),
        }
    }
}
