//! The error type of this crate.

use simfer_distributions::DistributionError;

/// Everything that can go wrong when simulating.
///
/// Messages say what was expected and what was found; errors from a simulation name the
/// index of the θ (the column of the batch) that caused them.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimulatorError {
    /// θ (or a batch of θ's) of the wrong dimension.
    #[error("θ has dimension {found}, but the simulator expects dimension {expected}")]
    ThetaDimension {
        /// The simulator's `theta_dim()`.
        expected: usize,
        /// The dimension given.
        found: usize,
    },
    /// A simulator produced a different number of values than its `x_dim()`.
    #[error("the simulator returned {found} values, but declares x_dim = {expected}")]
    OutputLength {
        /// The simulator's `x_dim()`.
        expected: usize,
        /// The number of values it returned.
        found: usize,
    },
    /// Simulation `index` of a batch returned an error.
    #[error("simulation {index} (θ = {theta:?}) failed: {source}")]
    Simulation {
        /// The column of θ that was being simulated.
        index: usize,
        /// That θ.
        theta: Vec<f64>,
        /// What went wrong.
        #[source]
        source: Box<SimulatorError>,
    },
    /// Simulation `index` of a batch panicked.
    #[error("simulation {index} (θ = {theta:?}) panicked: {message}")]
    Panicked {
        /// The column of θ that was being simulated.
        index: usize,
        /// That θ.
        theta: Vec<f64>,
        /// The panic message.
        message: String,
    },
    /// Lengths or dimensions that do not fit together (other than θ's).
    #[error("{what}: expected {expected}, found {found}")]
    DimensionMismatch {
        /// What did not fit.
        what: &'static str,
        /// The expected size.
        expected: usize,
        /// The size found.
        found: usize,
    },
    /// A NaN or infinite value where a finite one is needed (e.g. in an observation).
    #[error("{what}[{index}] = {value}: expected a finite number")]
    NonFinite {
        /// Which input.
        what: &'static str,
        /// The position of the value.
        index: usize,
        /// The value.
        value: f64,
    },
    /// An argument that makes no sense (e.g. a task of dimension 0).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// [`check_sbi_inputs`](crate::check_sbi_inputs) found a problem with the prior.
    #[error("input check failed: {0}")]
    Check(String),
    /// An ODE solve failed; simulators turn this into NaN outputs.
    #[error("the ODE solver failed: {0}")]
    Ode(String),
    /// A prior or proposal failed.
    #[error(transparent)]
    Distribution(#[from] DistributionError),
    /// A [`SimulationSink`](crate::SimulationSink) could not keep simulations that
    /// returned (e.g. the disk of a durable run is full); the batch stops.
    #[error("keeping simulations {first}..{end} failed: {message}")]
    Sink {
        /// The first simulation (index in the batch) the sink was given.
        first: usize,
        /// One past the last.
        end: usize,
        /// What went wrong.
        message: String,
    },
    /// An external simulator's program could not be started (it does not exist, is not
    /// executable, or the working directory does not exist).
    #[error("could not start the external simulator `{command}`: {source}{}", spawn_hint(.source))]
    ExternalSpawn {
        /// The command line.
        command: String,
        /// Why the operating system refused.
        #[source]
        source: std::io::Error,
    },
    /// An external simulator's workers failed more times in a row than its `max_restarts`
    /// allows (without answering a single row in between).
    #[error(
        "the external simulator `{command}` failed {failures} times in a row, more than \
         max_restarts = {max_restarts} allows; the last failure: {last}"
    )]
    ExternalFailing {
        /// The command line.
        command: String,
        /// Failures in a row.
        failures: usize,
        /// The simulator's restart cap.
        max_restarts: usize,
        /// What happened the last time.
        last: String,
    },
    /// An external simulator did not produce the simulation of one θ (only from
    /// [`Simulator::simulate`](crate::Simulator::simulate); the runner lists such rows in
    /// [`InvalidReport::failed`](crate::InvalidReport) instead).
    #[error("the external simulator `{command}` did not simulate this θ: {reason}")]
    ExternalSimulation {
        /// The command line.
        command: String,
        /// What went wrong.
        reason: String,
    },
    /// MPI used in a way that cannot work (with the `mpi` feature): MPI initialized twice,
    /// an `mpi::MpiSimulator` made on a rank other than 0 or `serve` called on rank
    /// 0, a second simulator on a world still in use, a call from a thread that the MPI
    /// library's threading level does not allow, or a finished simulator used again.
    #[error("MPI: {0}")]
    Mpi(String),
    /// An MPI worker rank could not simulate its share of a batch (its simulator returned an
    /// error or panicked: `message` is that error, naming the simulation index in the whole
    /// batch), or answered something other than what rank 0 expected.
    #[error("MPI rank {rank}: {message}")]
    MpiRank {
        /// The rank that failed.
        rank: usize,
        /// What went wrong there.
        message: String,
    },
}

/// A hint for the commonest reasons a program does not start.
fn spawn_hint(e: &std::io::Error) -> &'static str {
    match e.kind() {
        std::io::ErrorKind::NotFound => {
            "; expected an executable program: check that it is installed and on PATH (or \
             give its path), and that the working directory exists"
        }
        std::io::ErrorKind::PermissionDenied => {
            "; expected an executable program: check its execute permission (chmod +x)"
        }
        _ => "",
    }
}
