//! The error type of this crate, and how each error becomes a Python exception.
//!
//! Mistakes in what the caller passed (shapes, dtypes, NaN, settings, a step out of
//! order) are `ValueError`s or `TypeError`s; failures while computing (a training that
//! diverged, a spent sampling budget) are `RuntimeError`s; an exception raised by the
//! user's Python code (the simulator) comes back as itself; Ctrl-C is `KeyboardInterrupt`.

use pyo3::PyErr;
use pyo3::exceptions::{
    PyKeyboardInterrupt, PyNotImplementedError, PyOSError, PyRuntimeError, PyTypeError,
    PyValueError,
};
use simfer_analysis::AnalysisError;
use simfer_distributions::DistributionError;
use simfer_inference::InferenceError;
use simfer_simulators::SimulatorError;

/// Everything that can go wrong in a call from Python.
#[derive(Debug, thiserror::Error)]
pub enum PyError {
    /// A value the caller passed is wrong (shape, NaN, range).
    #[error("{0}")]
    Value(String),
    /// An argument of the wrong type or dtype.
    #[error("{0}")]
    Type(String),
    /// Something this build cannot do.
    #[error("{0}")]
    NotImplemented(String),
    /// From the inference crate.
    #[error(transparent)]
    Inference(#[from] InferenceError),
    /// From the simulators crate.
    #[error(transparent)]
    Simulator(#[from] SimulatorError),
    /// From the distributions crate.
    #[error(transparent)]
    Distribution(#[from] DistributionError),
    /// From the analysis crate.
    #[error(transparent)]
    Analysis(#[from] AnalysisError),
    /// The call was interrupted (Ctrl-C) and Python's handler raised nothing itself.
    #[error("interrupted")]
    Interrupted,
    /// An exception raised by Python code (the simulator, a signal handler).
    #[error("{0}")]
    Python(#[from] PyErr),
    /// A panic inside simfer: a bug, reported instead of crossing into Python.
    #[error(
        "internal error in simfer (please report it): {0}; the object it happened in may be \
         left in an unfinished state"
    )]
    Panic(String),
}

fn inference_exception(e: &InferenceError) -> fn(String) -> PyErr {
    match e {
        InferenceError::DimensionMismatch { .. }
        | InferenceError::NonFiniteObservation { .. }
        | InferenceError::NoObservation
        | InferenceError::OutOfOrder(_)
        | InferenceError::InvalidConfig { .. }
        | InferenceError::InvalidSimulations { .. }
        | InferenceError::NoValidSimulations { .. }
        | InferenceError::Format(_)
        | InferenceError::Corrupted { .. } => PyValueError::new_err,
        InferenceError::Training(
            simfer_snpe::SnpeError::DimensionMismatch { .. }
            | simfer_snpe::SnpeError::NotEnoughData { .. }
            | simfer_snpe::SnpeError::NonFiniteData { .. }
            | simfer_snpe::SnpeError::InvalidConfig { .. },
        ) => PyValueError::new_err,
        InferenceError::Training(simfer_snpe::SnpeError::Interrupted { .. }) => {
            PyKeyboardInterrupt::new_err
        }
        InferenceError::Io { .. } => PyOSError::new_err,
        InferenceError::Unsupported(_) => PyNotImplementedError::new_err,
        _ => PyRuntimeError::new_err,
    }
}

impl From<PyError> for PyErr {
    fn from(e: PyError) -> PyErr {
        let message = e.to_string();
        match e {
            PyError::Value(_) | PyError::Distribution(_) | PyError::Analysis(_) => {
                PyValueError::new_err(message)
            }
            PyError::Type(_) => PyTypeError::new_err(message),
            PyError::NotImplemented(_) => PyNotImplementedError::new_err(message),
            PyError::Inference(inner) => inference_exception(&inner)(message),
            PyError::Simulator(inner) => match inner {
                SimulatorError::ThetaDimension { .. }
                | SimulatorError::OutputLength { .. }
                | SimulatorError::DimensionMismatch { .. }
                | SimulatorError::NonFinite { .. }
                | SimulatorError::InvalidArgument(_)
                | SimulatorError::Check(_) => PyValueError::new_err(message),
                _ => PyRuntimeError::new_err(message),
            },
            PyError::Interrupted => PyKeyboardInterrupt::new_err("interrupted"),
            PyError::Python(err) => err,
            PyError::Panic(_) => PyRuntimeError::new_err(message),
        }
    }
}

/// The result type of this crate.
pub type Result<T> = std::result::Result<T, PyError>;
