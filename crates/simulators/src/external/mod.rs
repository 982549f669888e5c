//! External simulators: a program in any language (Python, Julia, R, a shell script around a
//! compiled model) as a [`Simulator`], through a plain-text batch protocol on the stdin and
//! stdout of long-lived worker processes.
//!
//! [`ExternalSimulator`] starts up to `workers` copies of the program (when first needed)
//! and keeps them running; [`simulate_batch`](crate::simulate_batch) and everything built on
//! it ([`simulate_for_sbi`](crate::simulate_for_sbi), the multi-round orchestrator) hand each
//! worker whole batches of θ's. A worker that crashes, hangs or writes nonsense is killed and
//! replaced; the simulations it did not produce are marked failed and the rest of the run
//! goes on (see [Failures](#failures)).
//!
//! ```no_run
//! use std::time::Duration;
//! use nalgebra::DMatrix;
//! use simfer_simulators::external::ExternalSimulator;
//! use simfer_simulators::{SimulationOptions, simulate_batch};
//!
//! let sim = ExternalSimulator::builder("python3")
//!     .arg("examples/simulators/two_moons.py")
//!     .theta_dim(2)
//!     .x_dim(2)
//!     .workers(2)
//!     .batch_size(100)
//!     .timeout(Duration::from_secs(60))
//!     .build()?;
//! let theta = DMatrix::from_element(2, 1000, 0.25);
//! let sims = simulate_batch(&sim, &theta, &SimulationOptions::with_seed(1))?;
//! println!("{}", sims.invalid); // which simulations are NaN, and which failed and why
//! # Ok::<(), simfer_simulators::SimulatorError>(())
//! ```
//!
//! # The protocol
//!
//! Each worker reads **requests** on its stdin and writes **answers** on its stdout, one
//! batch after another, until its stdin closes. Everything is text, one record per line
//! (`\n`; a `\r` before it is ignored), so no library is needed on the simulator's side.
//!
//! A request is a header line `batch <m>` followed by `m` rows. A row is the simulation's
//! **seed** (a decimal `u64`) followed by the `theta_dim` values of θ, separated by single
//! spaces:
//!
//! ```text
//! batch 3
//! 9152047315082861316 0.25 -1.0
//! 1473284021356470937 0.5 0.125
//! 12060913562209714405 1e-7 -0.75
//! ```
//!
//! Numbers are written in the shortest form that parses back to the same `f64` (Rust's
//! `{:?}`: `0.1`, `-1.0`, `1e-7`, `2.5e300`), which `float()` in Python, `parse(Float64, s)`
//! in Julia, `as.numeric` in R and awk all read exactly.
//!
//! The answer is **exactly `m` lines, in the order of the rows**, each either
//! - the `x_dim` values of x, separated by spaces or tabs. Anything `f64::from_str` takes is
//!   accepted: `0.1`, `-3`, `1e-07`, `1.5E+3`, and `nan`, `NaN`, `-nan`, `inf`, `Inf`,
//!   `-Infinity` in any case. Write every digit (Python's `repr`/`print` of a float, Julia's
//!   `print`, awk's `printf "%.17g"`), or the values are rounded. NaN or ±∞ among the values
//!   make an *invalid simulation*, counted in [`InvalidReport`](crate::InvalidReport)'s
//!   `nan_rows`/`inf_rows` exactly like an in-process simulator's (the usual way for a model
//!   to say that it failed numerically: `nan nan`); or
//! - `error <message>`: the simulator declares that this simulation failed. Its x is NaN and
//!   it is listed in `InvalidReport::failed` with the message; the worker carries on.
//!
//! **Flush stdout** after the last line of each batch (a line filter: after every line); an
//! answer that stays in a buffer is an answer that never comes, and the timeout kills the
//! worker.
//!
//! There are two ways to read requests, and both work with any batch size:
//! - a **line filter** skips every line that starts with `batch` and answers each other line
//!   at once (`for line in sys.stdin` in Python, `while read` in shell, `eachline` in Julia);
//! - a **vectorizing** simulator reads the header, then the `m` rows, simulates them all at
//!   once (NumPy, a GPU, a model that takes many parameter sets) and writes `m` lines.
//!
//! **Seeds.** The seed of simulation `i` of a batch is the first `u64` of the generator
//! [`simulate_batch`](crate::simulate_batch) gives that simulation,
//! `derive_rng(opts.seed, opts.stream_offset + i)` (see
//! [`SimulationChunk::row_seed`](crate::SimulationChunk::row_seed)). A simulator that seeds
//! its generator from the row's seed and nothing else (Python `random.Random(seed)`, NumPy
//! `numpy.random.default_rng(seed)`, Julia `Xoshiro(seed)`) returns the same x whatever the
//! batch size, the number of workers, or the restarts: one seed reproduces the run. A
//! generator that takes 32 bits can use `seed % 2**32`; awk, whose numbers are doubles, can
//! use the seed's last 9 digits (as `examples/simulators/linear_gaussian.sh` does).
//!
//! **The rest of the contract.**
//! - stdout carries answers only: a stray `print` becomes a row that is "not a number" and
//!   the worker is restarted. Write logs and progress to **stderr**, which is read all the
//!   time (a simulator can write as much as it likes there without blocking), its last
//!   lines quoted in failure reasons, and copied to our stderr with a
//!   `[simulator worker k]` prefix if [`forward_stderr`](ExternalSimulatorBuilder::forward_stderr)
//!   is on.
//! - When the simulator is dropped (or [`shutdown`](ExternalSimulator::shutdown)), each
//!   worker's stdin is closed: it should exit when it reads end of file. One still running
//!   a second later is killed.
//! - Each worker has the environment variables `SIMFER_WORKER` (its number, `0` to
//!   `workers − 1`, e.g. for a scratch directory of its own), `SIMFER_THETA_DIM` and
//!   `SIMFER_X_DIM`, besides those of [`env`](ExternalSimulatorBuilder::env).
//! - On Unix each worker is the leader of its own process group, and a kill (SIGKILL) goes
//!   to the whole group, so a wrapper script takes the model it started with it.
//!
//! ## A vectorizing simulator in Python
//!
//! The shipped `examples/simulators/two_moons.py` is a complete one; in brief, x = θ + 0.1·ε:
//!
//! ```python
//! import random
//! import sys
//!
//! def simulate(theta, seed):
//!     rng = random.Random(seed)  # seeded from the row alone: reproducible
//!     return [t + 0.1 * rng.gauss(0.0, 1.0) for t in theta]
//!
//! while True:
//!     header = sys.stdin.readline()
//!     if not header:  # end of file: simfer is done with this worker
//!         break
//!     count = int(header.split()[1])  # "batch <count>"
//!     rows = [sys.stdin.readline().split() for _ in range(count)]
//!     lines = []
//!     for row in rows:
//!         seed, theta = int(row[0]), [float(v) for v in row[1:]]
//!         try:
//!             x = simulate(theta, seed)
//!             lines.append(" ".join(repr(v) for v in x))
//!         except Exception as e:  # one failed simulation, not a failed worker
//!             lines.append("error " + str(e).replace("\n", " "))
//!     sys.stdout.write("\n".join(lines) + "\n" if lines else "")
//!     sys.stdout.flush()
//! ```
//!
//! The same as a line filter:
//!
//! ```python
//! import random
//! import sys
//!
//! for line in sys.stdin:
//!     if line.startswith("batch"):
//!         continue
//!     seed, *theta = line.split()
//!     rng = random.Random(int(seed))
//!     print(*(float(t) + 0.1 * rng.gauss(0.0, 1.0) for t in theta), flush=True)
//! ```
//!
//! ## A line filter in shell
//!
//! Around a compiled model that takes its parameters and a seed on the command line and
//! prints x on one line (`examples/simulators/linear_gaussian.sh` is one in awk alone). The
//! model's stdin is `/dev/null`, so that it cannot eat the rows meant for the loop:
//!
//! ```sh
//! #!/bin/sh
//! while read -r seed alpha beta; do
//!     [ "$seed" = batch ] && continue
//!     ./model --seed "$seed" --alpha "$alpha" --beta "$beta" </dev/null \
//!         || echo "error model exited with status $?"
//! done
//! ```
//!
//! ## In Julia
//!
//! ```julia
//! using Random
//! for line in eachline(stdin)
//!     startswith(line, "batch") && continue
//!     fields = split(line)
//!     rng = Xoshiro(parse(UInt64, fields[1]))
//!     theta = parse.(Float64, fields[2:end])
//!     println(join(theta .+ 0.1 .* randn(rng, length(theta)), " "))
//!     flush(stdout)
//! end
//! ```
//!
//! # Failures
//!
//! | what a worker does | what happens |
//! |---|---|
//! | answers `error <message>` | that simulation failed: x = NaN, listed in `failed` with the message; the worker goes on |
//! | answers NaN or ±∞ values | an invalid simulation, in `nan_rows`/`inf_rows` (not in `failed`); the worker goes on |
//! | exits, hangs past the [timeout](ExternalSimulatorBuilder::timeout), answers fewer rows, writes a line that is not `x_dim` numbers | the worker is killed (its process group) and replaced; the rows it answered before are kept; the others of its batch are sent again *one at a time*, so that a row that fails on its own is the culprit: it gets x = NaN and is listed in `failed` with the reason (and the last lines of the worker's stderr), and the others are simulated normally |
//! | writes more lines than rows | noticed before its next batch is sent: the worker is restarted and nothing is lost; but an extra line that comes only after the next batch was sent is taken as that batch's first answer, so never write one |
//! | fails more than [`max_restarts`](ExternalSimulatorBuilder::max_restarts) times in a row, without a single row answered in between | the batch ends with [`SimulatorError::ExternalFailing`], naming the command and the last failure |
//! | the program cannot be started | [`SimulatorError::ExternalSpawn`] at once (call [`start`](ExternalSimulator::start) to find out before a run) |
//!
//! Because each row keeps its seed, the failed rows and every other x are the same whatever
//! the batch size and the number of workers. A row that hangs costs two timeouts (in its
//! batch, then alone, each a new worker's first batch, with the
//! [`startup_timeout`](ExternalSimulatorBuilder::startup_timeout) on top); a program that exits at once costs `max_restarts + 1` starts.
//! [`Simulator::simulate`] (one θ, as in [`check_sbi_inputs`](crate::check_sbi_inputs)) turns a
//! failed row into [`SimulatorError::ExternalSimulation`] instead.
//!
//! The reference library runs Python simulators in-process, parallelized with joblib
//! (`sbi.utils.simulation_utils.simulate_for_sbi` with `num_workers`); a worker process
//! here plays the role of one joblib worker, for a program in any language.

pub mod protocol;
mod worker;

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rand::RngCore;

use self::worker::{Outcome, SHUTDOWN_GRACE, Worker};
use crate::simulator::{check_chunk, check_lengths};
use crate::{BatchPlan, SimulationChunk, Simulator, SimulatorError};

/// What the workers are started with, checked.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub(crate) program: OsString,
    pub(crate) args: Vec<OsString>,
    pub(crate) current_dir: Option<PathBuf>,
    pub(crate) env: Vec<(OsString, OsString)>,
    pub(crate) theta_dim: usize,
    pub(crate) x_dim: usize,
    pub(crate) workers: usize,
    pub(crate) batch_size: usize,
    pub(crate) timeout: Option<Duration>,
    pub(crate) startup_timeout: Duration,
    pub(crate) max_restarts: usize,
    pub(crate) forward_stderr: bool,
    pub(crate) command_line: String,
}

/// The settings of an [`ExternalSimulator`]; from [`ExternalSimulator::builder`].
#[derive(Clone, Debug)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct ExternalSimulatorBuilder {
    program: OsString,
    args: Vec<OsString>,
    current_dir: Option<PathBuf>,
    env: Vec<(OsString, OsString)>,
    theta_dim: Option<usize>,
    x_dim: Option<usize>,
    workers: usize,
    batch_size: usize,
    timeout: Option<Duration>,
    startup_timeout: Duration,
    max_restarts: usize,
    forward_stderr: bool,
}

impl ExternalSimulatorBuilder {
    /// One argument more for the program.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_os_string());
        self
    }

    /// Arguments more for the program.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_os_string()));
        self
    }

    /// The working directory of the workers (default: ours). A relative program path is
    /// looked up as the operating system does (on Unix, relative to this directory when it
    /// contains a `/`).
    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.current_dir = Some(dir.as_ref().to_path_buf());
        self
    }

    /// An environment variable for the workers, besides those they inherit.
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.env
            .push((key.as_ref().to_os_string(), value.as_ref().to_os_string()));
        self
    }

    /// The dimension of θ (required).
    pub fn theta_dim(mut self, dim: usize) -> Self {
        self.theta_dim = Some(dim);
        self
    }

    /// The dimension of x (required).
    pub fn x_dim(mut self, dim: usize) -> Self {
        self.x_dim = Some(dim);
        self
    }

    /// The number of worker processes, i.e. of batches simulated at once (default 1, as the
    /// reference library's `num_workers`).
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = n;
        self
    }

    /// The largest number of θ's per request (default 100). The runner also makes batches no
    /// larger than `⌈n / workers⌉`, so that every worker has work.
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = n;
        self
    }

    /// The longest a worker may take to answer a whole request, from sending it to reading
    /// its last line (default one hour). A worker that takes longer is killed and the rows
    /// it has not answered are retried alone (see [Failures](self#failures)).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The extra time a newly started worker has for its first answer, on top of the
    /// [`timeout`](Self::timeout), to load its interpreter, packages or model (default one
    /// minute; zero is allowed). There is no start-up handshake in the protocol: the clock
    /// of the first request starts when it is sent, right after the worker is started.
    pub fn startup_timeout(mut self, extra: Duration) -> Self {
        self.startup_timeout = extra;
        self
    }

    /// No timeout: wait for every answer as long as it takes. A worker that hangs then
    /// hangs the run; prefer a generous [`timeout`](Self::timeout).
    pub fn no_timeout(mut self) -> Self {
        self.timeout = None;
        self
    }

    /// How many times in a row workers may fail and be replaced without a single row
    /// answered in between, before the batch ends with [`SimulatorError::ExternalFailing`]
    /// (default 3). An answered row resets the count.
    pub fn max_restarts(mut self, n: usize) -> Self {
        self.max_restarts = n;
        self
    }

    /// Also copy every line the workers write to stderr to our stderr, prefixed with
    /// `[simulator worker k]` (default off; the last lines are kept for error messages
    /// either way).
    pub fn forward_stderr(mut self, forward: bool) -> Self {
        self.forward_stderr = forward;
        self
    }

    /// Checks the settings. No process is started yet: that happens when a worker is first
    /// needed, or on [`ExternalSimulator::start`].
    ///
    /// # Errors
    /// [`SimulatorError::InvalidArgument`] for an empty program, a missing or zero
    /// dimension, zero workers, a zero batch size or a zero timeout.
    pub fn build(self) -> Result<ExternalSimulator, SimulatorError> {
        let invalid = |what: String| Err(SimulatorError::InvalidArgument(what));
        if self.program.is_empty() {
            return invalid("an external simulator needs a program, found an empty name".into());
        }
        let (Some(theta_dim), Some(x_dim)) = (self.theta_dim, self.x_dim) else {
            return invalid(format!(
                "an external simulator needs theta_dim and x_dim (set them with .theta_dim(d) \
                 and .x_dim(d)), found theta_dim = {:?} and x_dim = {:?}",
                self.theta_dim, self.x_dim
            ));
        };
        if theta_dim == 0 || x_dim == 0 {
            return invalid(format!(
                "an external simulator needs theta_dim >= 1 and x_dim >= 1, found theta_dim = \
                 {theta_dim} and x_dim = {x_dim}"
            ));
        }
        if self.workers == 0 || self.batch_size == 0 {
            return invalid(format!(
                "an external simulator needs workers >= 1 and batch_size >= 1, found workers = \
                 {} and batch_size = {}",
                self.workers, self.batch_size
            ));
        }
        if self.timeout == Some(Duration::ZERO) {
            return invalid("an external simulator's timeout must be positive, found 0".into());
        }
        let command_line = std::iter::once(&self.program)
            .chain(&self.args)
            .map(|a| quote(a))
            .collect::<Vec<String>>()
            .join(" ");
        let config = Config {
            program: self.program,
            args: self.args,
            current_dir: self.current_dir,
            env: self.env,
            theta_dim,
            x_dim,
            workers: self.workers,
            batch_size: self.batch_size,
            timeout: self.timeout,
            startup_timeout: self.startup_timeout,
            max_restarts: self.max_restarts,
            forward_stderr: self.forward_stderr,
            command_line,
        };
        let idle = (0..config.workers)
            .rev()
            .map(|index| Slot {
                index,
                worker: None,
            })
            .collect();
        Ok(ExternalSimulator {
            config,
            pool: Mutex::new(Pool {
                idle,
                failures_in_a_row: 0,
                restarts: 0,
            }),
            returned: Condvar::new(),
        })
    }
}

/// An argument as a shell would need it, for messages.
fn quote(arg: &OsStr) -> String {
    let s = arg.to_string_lossy();
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_alphanumeric() || "-_./=:,+@%".contains(c));
    if plain {
        s.into_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// A worker's place in the pool: its number and, once started, its process.
struct Slot {
    index: usize,
    worker: Option<Worker>,
}

struct Pool {
    /// Slots not in use (each in use by one call at most).
    idle: Vec<Slot>,
    /// Worker failures since a row was last answered.
    failures_in_a_row: usize,
    /// Worker failures in all (each replaces the worker).
    restarts: usize,
}

/// A slot taken from the pool for one call; it goes back when dropped.
struct SlotGuard<'a> {
    sim: &'a ExternalSimulator,
    slot: Slot,
}

impl Drop for SlotGuard<'_> {
    fn drop(&mut self) {
        let slot = Slot {
            index: self.slot.index,
            worker: self.slot.worker.take(),
        };
        self.sim.lock().idle.push(slot);
        self.sim.returned.notify_one();
    }
}

/// One row of a request: its simulation index, its seed and its θ.
struct Row<'a> {
    index: usize,
    seed: u64,
    theta: &'a [f64],
}

/// A program speaking the [batch protocol](self#the-protocol) on stdin/stdout, as a
/// [`Simulator`]: up to `workers` long-lived processes, each answering batches of at most
/// `batch_size` θ's.
///
/// Its [`batch_plan`](Simulator::batch_plan) makes [`simulate_batch`](crate::simulate_batch)
/// hand it chunks from `workers` threads; it can also be used from any number of threads
/// itself (calls wait for a free worker). Workers start when first needed and are shut down
/// when the simulator is dropped (stdin closed, one second's grace, then killed).
///
/// ```no_run
/// use simfer_simulators::Simulator;
/// use simfer_simulators::external::ExternalSimulator;
///
/// let sim = ExternalSimulator::builder("sh")
///     .arg("examples/simulators/linear_gaussian.sh")
///     .theta_dim(3)
///     .x_dim(3)
///     .build()?;
/// sim.start()?; // a program that cannot be started is reported here
/// let mut x = [0.0; 3];
/// sim.simulate(&[0.5, -0.5, 0.0], &mut simfer_distributions::rng_from_seed(1), &mut x)?;
/// # Ok::<(), simfer_simulators::SimulatorError>(())
/// ```
pub struct ExternalSimulator {
    config: Config,
    pool: Mutex<Pool>,
    returned: Condvar,
}

impl fmt::Debug for ExternalSimulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExternalSimulator")
            .field("command", &self.config.command_line)
            .field("theta_dim", &self.config.theta_dim)
            .field("x_dim", &self.config.x_dim)
            .field("workers", &self.config.workers)
            .field("batch_size", &self.config.batch_size)
            .field("timeout", &self.config.timeout)
            .field("startup_timeout", &self.config.startup_timeout)
            .field("max_restarts", &self.config.max_restarts)
            .finish_non_exhaustive()
    }
}

impl ExternalSimulator {
    /// Settings for `program` (a path, or a name looked up on `PATH`) with the defaults:
    /// 1 worker, batches of 100, a timeout of one hour per batch (and a minute more for a new
    /// worker's first batch), 3 restarts in a row, stderr kept but not forwarded. `theta_dim` and `x_dim` must be set.
    pub fn builder(program: impl AsRef<OsStr>) -> ExternalSimulatorBuilder {
        ExternalSimulatorBuilder {
            program: program.as_ref().to_os_string(),
            args: Vec::new(),
            current_dir: None,
            env: Vec::new(),
            theta_dim: None,
            x_dim: None,
            workers: 1,
            batch_size: 100,
            timeout: Some(Duration::from_secs(3600)),
            startup_timeout: Duration::from_secs(60),
            max_restarts: 3,
            forward_stderr: false,
        }
    }

    /// The command line, for messages.
    pub fn command_line(&self) -> &str {
        &self.config.command_line
    }

    /// The number of worker processes.
    pub fn workers(&self) -> usize {
        self.config.workers
    }

    /// The largest number of θ's per request.
    pub fn batch_size(&self) -> usize {
        self.config.batch_size
    }

    /// The number of worker failures so far; each one replaced the worker (the new one
    /// starts when next needed).
    pub fn restarts(&self) -> usize {
        self.lock().restarts
    }

    /// The process ids of the running workers that are not busy (for diagnostics).
    pub fn worker_pids(&self) -> Vec<u32> {
        let pool = self.lock();
        let mut pids: Vec<u32> = pool
            .idle
            .iter()
            .filter_map(|s| s.worker.as_ref().map(Worker::pid))
            .collect();
        pids.sort_unstable();
        pids
    }

    /// Starts every worker that is not running (and not busy) now, rather than when first
    /// needed.
    ///
    /// # Errors
    /// [`SimulatorError::ExternalSpawn`] if the program cannot be started.
    pub fn start(&self) -> Result<(), SimulatorError> {
        let mut pool = self.lock();
        for slot in pool.idle.iter_mut().filter(|s| s.worker.is_none()) {
            slot.worker = Some(self.spawn(slot.index)?);
        }
        Ok(())
    }

    /// Shuts down the workers that are not busy: closes their stdin, gives them a second to
    /// exit, then kills what is left. They start again when next needed. Dropping the
    /// simulator does this for all workers.
    pub fn shutdown(&self) {
        let mut workers: Vec<Worker> = {
            let mut pool = self.lock();
            pool.idle
                .iter_mut()
                .filter_map(|s| s.worker.take())
                .collect()
        };
        finish_all(&mut workers);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pool> {
        self.pool.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn spawn(&self, slot: usize) -> Result<Worker, SimulatorError> {
        Worker::spawn(&self.config, slot).map_err(|source| SimulatorError::ExternalSpawn {
            command: self.config.command_line.clone(),
            source,
        })
    }

    /// Waits for a free slot.
    fn acquire(&self) -> SlotGuard<'_> {
        let mut pool = self.lock();
        loop {
            if let Some(slot) = pool.idle.pop() {
                return SlotGuard { sim: self, slot };
            }
            pool = self
                .returned
                .wait(pool)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// A row was answered: the failures in a row start again from zero.
    fn answered(&self) {
        self.lock().failures_in_a_row = 0;
    }

    /// A worker failed (and will be replaced).
    fn failure(&self, reason: &str) -> Result<(), SimulatorError> {
        let mut pool = self.lock();
        pool.failures_in_a_row += 1;
        pool.restarts += 1;
        if pool.failures_in_a_row > self.config.max_restarts {
            return Err(SimulatorError::ExternalFailing {
                command: self.config.command_line.clone(),
                failures: pool.failures_in_a_row,
                max_restarts: self.config.max_restarts,
                last: reason.to_string(),
            });
        }
        Ok(())
    }

    /// Simulates `rows` into `out` on `slot`'s worker, in requests of at most `batch_size`.
    fn run(
        &self,
        slot: &mut Slot,
        rows: &[Row<'_>],
        out: &mut [f64],
        failed: &mut Vec<(usize, String)>,
    ) -> Result<(), SimulatorError> {
        let xd = self.config.x_dim;
        for (part, out) in rows
            .chunks(self.config.batch_size)
            .zip(out.chunks_mut(self.config.batch_size * xd))
        {
            self.request(slot, part, out, failed)?;
        }
        Ok(())
    }

    /// One request, with the recovery described in [Failures](self#failures).
    fn request(
        &self,
        slot: &mut Slot,
        rows: &[Row<'_>],
        out: &mut [f64],
        failed: &mut Vec<(usize, String)>,
    ) -> Result<(), SimulatorError> {
        let xd = self.config.x_dim;
        loop {
            let mut worker = match slot.worker.take() {
                Some(w) => w,
                None => self.spawn(slot.index)?,
            };
            let outcome = worker.request(
                rows.iter().map(|r| (r.seed, r.theta)),
                xd,
                out,
                self.config.timeout,
                self.config.startup_timeout,
            );
            match outcome {
                Outcome::Done { declared } => {
                    slot.worker = Some(worker);
                    self.answered();
                    failed.extend(declared.into_iter().map(|(k, why)| (rows[k].index, why)));
                    return Ok(());
                }
                Outcome::NotSent { reason } => {
                    drop(worker);
                    self.failure(&reason)?;
                }
                Outcome::Failed {
                    answered,
                    declared,
                    reason,
                } => {
                    drop(worker);
                    failed.extend(declared.into_iter().map(|(k, why)| (rows[k].index, why)));
                    if answered > 0 {
                        self.answered();
                    }
                    self.failure(&reason)?;
                    if rows.len() == 1 {
                        out.fill(f64::NAN);
                        failed.push((rows[0].index, reason));
                        return Ok(());
                    }
                    // The rows not answered, each alone, so that a failure names its row.
                    for k in answered..rows.len() {
                        let row_out = &mut out[k * xd..(k + 1) * xd];
                        self.request(slot, &rows[k..=k], row_out, failed)?;
                    }
                    return Ok(());
                }
            }
        }
    }
}

/// Closes every worker's stdin, then waits for them all (one grace period in all).
fn finish_all(workers: &mut [Worker]) {
    for w in workers.iter_mut() {
        w.close_input();
    }
    let deadline = Instant::now() + SHUTDOWN_GRACE;
    for w in workers.iter_mut() {
        w.finish(deadline);
    }
}

impl Drop for ExternalSimulator {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl Simulator for ExternalSimulator {
    fn theta_dim(&self) -> usize {
        self.config.theta_dim
    }

    fn x_dim(&self) -> usize {
        self.config.x_dim
    }

    /// Simulates one θ in a request of its own, with the seed `rng.next_u64()`.
    ///
    /// # Errors
    /// Wrong lengths; [`SimulatorError::ExternalSimulation`] if the row failed (the worker
    /// declared it, crashed, hung or wrote nonsense); [`SimulatorError::ExternalSpawn`] and
    /// [`SimulatorError::ExternalFailing`].
    fn simulate(
        &self,
        theta: &[f64],
        rng: &mut dyn RngCore,
        out: &mut [f64],
    ) -> Result<(), SimulatorError> {
        check_lengths(self, theta, out)?;
        let rows = [Row {
            index: 0,
            seed: rng.next_u64(),
            theta,
        }];
        let mut failed = Vec::new();
        let mut guard = self.acquire();
        self.run(&mut guard.slot, &rows, out, &mut failed)?;
        match failed.pop() {
            Some((_, reason)) => Err(SimulatorError::ExternalSimulation {
                command: self.config.command_line.clone(),
                reason,
            }),
            None => Ok(()),
        }
    }

    /// `batch_size` θ's per call, from `workers` threads at once.
    fn batch_plan(&self) -> Option<BatchPlan> {
        Some(BatchPlan {
            batch_size: self.config.batch_size,
            concurrency: self.config.workers,
        })
    }

    /// Simulates the chunk on one worker (waiting for a free one), in requests of at most
    /// `batch_size` rows seeded with [`SimulationChunk::row_seed`].
    fn simulate_many(
        &self,
        chunk: &SimulationChunk<'_>,
        out: &mut [f64],
        failed: &mut Vec<(usize, String)>,
    ) -> Result<(), SimulatorError> {
        check_chunk(self, chunk, out)?;
        let rows: Vec<Row<'_>> = (0..chunk.len())
            .map(|k| Row {
                index: chunk.index(k),
                seed: chunk.row_seed(k),
                theta: chunk.theta(k),
            })
            .collect();
        let mut guard = self.acquire();
        self.run(&mut guard.slot, &rows, out, failed)
    }
}
