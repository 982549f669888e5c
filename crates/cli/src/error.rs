//! The crate's one error type.

use std::path::PathBuf;

use simfer_analysis::AnalysisError;
use simfer_distributions::DistributionError;
use simfer_inference::InferenceError;
use simfer_simulators::SimulatorError;

/// Everything `simfer` can fail with. Each message says what was expected and what was
/// found, and names the file (with line and column, or record and row) where there is one.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A mistake in a config file: its place and key, what was expected and found.
    #[error("{path}:{line}:{column}: {key}{message}", key = key_prefix(key))]
    Config {
        /// The config file.
        path: PathBuf,
        /// The line, from 1.
        line: usize,
        /// The column, from 1 (in characters).
        column: usize,
        /// The dotted key, e.g. `simulator.workers` (empty for the whole file).
        key: String,
        /// What is wrong.
        message: String,
    },
    /// A file that could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// A corrupted record in a run directory's file (not its last one, which is dropped
    /// with a warning).
    #[error(
        "{}: record {record} is corrupted ({what}); the records after it are intact, so this \
         is not a write cut short by a kill: restore the file from a backup or start the run \
         again",
        path.display()
    )]
    Corrupted {
        /// The file.
        path: PathBuf,
        /// The record, from 1.
        record: usize,
        /// What is wrong with it.
        what: String,
    },
    /// A file that is not what it should be (another format, version or run).
    #[error("{}: {message}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// What was expected and found.
        message: String,
    },
    /// A run directory whose config has changed since the run started.
    #[error(
        "{}: the config has changed since the run started ({changes}); a run can only be \
         continued with the settings it started with: restore them, or start a new run in \
         another directory",
        path.display()
    )]
    ConfigChanged {
        /// The run's config copy.
        path: PathBuf,
        /// The settings that differ.
        changes: String,
    },
    /// θ's and x's simulated elsewhere that do not fit the run.
    #[error("{}: {message}", path.display())]
    Append {
        /// The data file.
        path: PathBuf,
        /// What is wrong (with the row).
        message: String,
    },
    /// A wrong command-line argument or a command that does not fit the run's state.
    #[error("{0}")]
    Usage(String),
    /// The inference failed.
    #[error(transparent)]
    Inference(#[from] InferenceError),
    /// A simulator could not be set up or failed.
    #[error(transparent)]
    Simulator(#[from] SimulatorError),
    /// A prior could not be built.
    #[error(transparent)]
    Distribution(#[from] DistributionError),
    /// Samples, plots or their files.
    #[error(transparent)]
    Analysis(#[from] AnalysisError),
    /// A built-in task.
    #[error(transparent)]
    Benchmark(#[from] simfer_benchmark::BenchmarkError),
}

fn key_prefix(key: &str) -> String {
    if key.is_empty() {
        String::new()
    } else {
        format!("`{key}`: ")
    }
}

impl CliError {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        CliError::Io {
            path: path.into(),
            source,
        }
    }

    /// A file of the wrong format.
    pub fn format(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        CliError::Format {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// The result of this crate's functions.
pub type Result<T, E = CliError> = std::result::Result<T, E>;
