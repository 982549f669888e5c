//! The seeded parallel simulation runner.

use std::fmt;
use std::io::IsTerminal;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use nalgebra::DMatrix;
use rayon::prelude::*;
use simfer_distributions::{Prior, Proposal, derive_rng};

use crate::{BatchPlan, SimulationChunk, Simulator, SimulatorError};

/// Options of [`simulate_batch`] and [`simulate_for_sbi`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimulationOptions {
    /// Simulation `i` draws only from `derive_rng(seed, stream_offset + i)`.
    pub seed: u64,
    /// Show a progress bar on stderr (never shown when stderr is not a terminal).
    pub progress: bool,
    /// Added to the simulation index to pick its random stream, so that several batches
    /// with the same seed (e.g. rounds) use disjoint streams. Default 0.
    pub stream_offset: u64,
}

impl Default for SimulationOptions {
    /// Seed 0, progress bar on (when stderr is a terminal), stream offset 0.
    fn default() -> Self {
        Self {
            seed: 0,
            progress: true,
            stream_offset: 0,
        }
    }
}

impl SimulationOptions {
    /// Default options with the given seed.
    pub fn with_seed(seed: u64) -> Self {
        Self {
            seed,
            ..Self::default()
        }
    }

    /// These options with the progress bar switched on or off.
    pub fn with_progress(mut self, progress: bool) -> Self {
        self.progress = progress;
        self
    }

    /// These options with another stream offset.
    pub fn with_stream_offset(mut self, offset: u64) -> Self {
        self.stream_offset = offset;
        self
    }
}

/// Which simulations produced NaN or ±∞ values.
///
/// Indices are simulation indices, i.e. columns of θ and x (the reference library's
/// rows). A simulation with any NaN is in `nan_rows`; one with ±∞ but no NaN is in
/// `inf_rows`, so the two lists are disjoint. Both are sorted.
///
/// A batch simulator (an [`ExternalSimulator`](crate::external::ExternalSimulator)) can
/// also fail to produce a simulation at all: a worker that crashed, hung or wrote something
/// that is not an answer. Such a simulation has x = NaN, so it is in `nan_rows` too, and is
/// listed in `failed` with the reason.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InvalidReport {
    /// Simulations with at least one NaN.
    pub nan_rows: Vec<usize>,
    /// Simulations with at least one ±∞ and no NaN.
    pub inf_rows: Vec<usize>,
    /// The number of simulations examined.
    pub total: usize,
    /// Simulations the simulator failed to produce, with a short reason each, sorted by
    /// index (a subset of `nan_rows`). Always empty for a per-θ simulator.
    pub failed: Vec<(usize, String)>,
}

impl InvalidReport {
    /// Classifies the columns of `x` (one simulation per column).
    pub fn from_columns(x: &DMatrix<f64>) -> Self {
        let mut report = Self {
            total: x.ncols(),
            ..Self::default()
        };
        for (j, col) in x.column_iter().enumerate() {
            if col.iter().any(|v| v.is_nan()) {
                report.nan_rows.push(j);
            } else if col.iter().any(|v| v.is_infinite()) {
                report.inf_rows.push(j);
            }
        }
        report
    }

    /// Number of simulations with NaN.
    pub fn num_nan(&self) -> usize {
        self.nan_rows.len()
    }

    /// Number of simulations with ±∞ (and no NaN).
    pub fn num_inf(&self) -> usize {
        self.inf_rows.len()
    }

    /// Number of simulations the simulator failed to produce (see [`failed`](Self::failed)).
    pub fn num_failed(&self) -> usize {
        self.failed.len()
    }

    /// Number of invalid simulations.
    pub fn num_invalid(&self) -> usize {
        self.nan_rows.len() + self.inf_rows.len()
    }

    /// Whether every simulation is finite.
    pub fn is_empty(&self) -> bool {
        self.num_invalid() == 0
    }

    /// All invalid indices, sorted.
    pub fn invalid_indices(&self) -> Vec<usize> {
        let mut all = [self.nan_rows.as_slice(), self.inf_rows.as_slice()].concat();
        all.sort_unstable();
        all
    }
}

impl fmt::Display for InvalidReport {
    /// `Found 2 NaN simulations and 1 Inf simulations (of 1000), at indices [3, 17, 40]`
    /// (at most 10 indices listed), followed, when simulations failed, by
    /// `; 2 failed in the simulator: #17 the simulator reported: diverged | #40 …` (at most 5
    /// listed).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Found {} NaN simulations and {} Inf simulations (of {})",
            self.num_nan(),
            self.num_inf(),
            self.total
        )?;
        let all = self.invalid_indices();
        if !all.is_empty() {
            let shown: Vec<String> = all.iter().take(10).map(usize::to_string).collect();
            let more = if all.len() > 10 { ", …" } else { "" };
            write!(f, ", at indices [{}{more}]", shown.join(", "))?;
        }
        if !self.failed.is_empty() {
            let shown: Vec<String> = self
                .failed
                .iter()
                .take(5)
                .map(|(i, why)| format!("#{i} {why}"))
                .collect();
            let more = if self.failed.len() > 5 { " | …" } else { "" };
            write!(
                f,
                "; {} failed in the simulator: {}{more}",
                self.failed.len(),
                shown.join(" | ")
            )?;
        }
        Ok(())
    }
}

/// A batch of simulations: θ (`theta_dim × n`), x (`x_dim × n`) and which x are invalid.
/// Column `i` of `x` is the simulation of column `i` of `theta`; invalid ones are kept.
#[derive(Clone, Debug, PartialEq)]
pub struct Simulations {
    /// The parameters, one per column.
    pub theta: DMatrix<f64>,
    /// The simulations, one per column (NaN/±∞ kept in place).
    pub x: DMatrix<f64>,
    /// Which columns of `x` contain NaN or ±∞.
    pub invalid: InvalidReport,
}

impl Simulations {
    /// Number of simulations.
    pub fn len(&self) -> usize {
        self.x.ncols()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `(θ, x)` with the invalid simulations removed.
    pub fn valid(&self) -> (DMatrix<f64>, DMatrix<f64>) {
        let invalid = self.invalid.invalid_indices();
        (
            self.theta.clone().remove_columns_at(&invalid),
            self.x.clone().remove_columns_at(&invalid),
        )
    }
}

/// Receives simulations as they return, from the threads that ran them: to save each one
/// as soon as it exists (a durable run), or to watch a batch.
///
/// [`simulate_batch_with`] calls [`done`](Self::done) once per simulation for a simulator
/// without a [`BatchPlan`], once per chunk for one with a plan, in no particular order.
/// A sink that fails stops the batch with [`SimulatorError::Sink`].
///
/// ```
/// use std::sync::Mutex;
/// use nalgebra::DMatrix;
/// use simfer_simulators::{SimulationOptions, SimulationSink, SliceSimulator, simulate_batch_with};
///
/// struct Count(Mutex<usize>);
/// impl SimulationSink for Count {
///     fn done(&self, _first: usize, x: &[f64], _failed: &[(usize, String)]) -> Result<(), String> {
///         *self.0.lock().map_err(|e| e.to_string())? += x.len();
///         Ok(())
///     }
/// }
/// let sim = SliceSimulator::new(1, 1, |t: &[f64], _rng: &mut dyn rand::RngCore, out: &mut [f64]| {
///     out[0] = 2.0 * t[0];
/// });
/// let count = Count(Mutex::new(0));
/// let theta = DMatrix::from_element(1, 10, 1.0);
/// simulate_batch_with(&sim, &theta, &SimulationOptions::with_seed(1), Some(&count))?;
/// assert_eq!(*count.0.lock().unwrap(), 10);
/// # Ok::<(), simfer_simulators::SimulatorError>(())
/// ```
pub trait SimulationSink: Sync {
    /// Simulations `first..first + m` of the batch returned `x` (`x_dim · m` values,
    /// simulation after simulation). Those listed in `failed` (batch indices, with the
    /// reason) could not be produced; their values are NaN.
    ///
    /// # Errors
    /// A message saying why the simulations could not be kept.
    fn done(&self, first: usize, x: &[f64], failed: &[(usize, String)]) -> Result<(), String>;
}

fn progress_bar(n: usize, show: bool) -> ProgressBar {
    if !show || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::with_draw_target(Some(n as u64), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(
        "{msg} {wide_bar} {pos}/{len} [{elapsed_precise} < {eta_precise}, {rate}]",
    ) {
        pb.set_style(style.with_key(
            "rate",
            |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{:.0} sims/s", state.per_sec());
            },
        ));
    }
    pb.set_message("simulating");
    pb
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(a panic payload that is not a string)".to_string()
    }
}

/// Runs one simulation, turning errors and panics into errors that name index `i`.
pub(crate) fn run_one<S: Simulator + ?Sized>(
    sim: &S,
    index: usize,
    theta: &[f64],
    rng: &mut dyn rand::RngCore,
    out: &mut [f64],
) -> Result<(), SimulatorError> {
    match catch_unwind(AssertUnwindSafe(|| sim.simulate(theta, rng, out))) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(SimulatorError::Simulation {
            index,
            theta: theta.to_vec(),
            source: Box::new(e),
        }),
        Err(payload) => Err(SimulatorError::Panicked {
            index,
            theta: theta.to_vec(),
            message: panic_message(payload.as_ref()),
        }),
    }
}

fn check_simulator(sim: &dyn Simulator) -> Result<(), SimulatorError> {
    if sim.theta_dim() == 0 || sim.x_dim() == 0 {
        return Err(SimulatorError::InvalidArgument(format!(
            "a simulator needs theta_dim >= 1 and x_dim >= 1, found theta_dim = {} and x_dim = {}",
            sim.theta_dim(),
            sim.x_dim()
        )));
    }
    Ok(())
}

/// Simulates every column of `theta` (`theta_dim × n`) in parallel on the current rayon
/// pool.
///
/// Simulation `i` draws only from `derive_rng(opts.seed, opts.stream_offset + i)`, so the
/// result is bit-identical for any number of threads. Simulations with NaN/±∞ are kept and
/// listed in [`Simulations::invalid`].
///
/// A simulator with a [`BatchPlan`] ([`Simulator::batch_plan`], e.g. an
/// [`ExternalSimulator`](crate::external::ExternalSimulator)) is instead handed contiguous
/// chunks of at most `batch_size` θ's through [`Simulator::simulate_many`] from at most
/// `concurrency` threads of its own (not the rayon pool); the chunk is also at most
/// `⌈n / concurrency⌉`, so that every worker has work. Rows it failed to produce are NaN and
/// listed in [`InvalidReport::failed`]. Each row still has its own stream, so neither the
/// chunking nor the number of workers changes the result.
///
/// # Errors
/// θ of the wrong dimension, a simulator with a zero dimension, and a simulation that
/// returns an error or panics: the error names the lowest such θ index and θ itself (the
/// panic message also goes to stderr through the panic hook). Simulations after a failure
/// are skipped.
///
/// ```
/// use nalgebra::DMatrix;
/// use rand::Rng;
/// use simfer_simulators::{SimulationOptions, SliceSimulator, simulate_batch};
///
/// // x = θ + uniform noise on (0, 1).
/// let sim = SliceSimulator::new(2, 2, |theta: &[f64], rng: &mut dyn rand::RngCore, out: &mut [f64]| {
///     for (o, t) in out.iter_mut().zip(theta) {
///         *o = t + rng.random::<f64>();
///     }
/// });
/// let theta = DMatrix::from_element(2, 100, 0.2);
/// let sims = simulate_batch(&sim, &theta, &SimulationOptions::with_seed(1))?;
/// assert_eq!(sims.x.shape(), (2, 100));
/// assert!(sims.invalid.is_empty());
/// # Ok::<(), simfer_simulators::SimulatorError>(())
/// ```
pub fn simulate_batch(
    sim: &dyn Simulator,
    theta: &DMatrix<f64>,
    opts: &SimulationOptions,
) -> Result<Simulations, SimulatorError> {
    simulate_batch_with(sim, theta, opts, None)
}

/// [`simulate_batch`], handing every simulation to `sink` as soon as it returns (a
/// durable run saves it then). The result is the same with or without a sink.
///
/// # Errors
/// Those of [`simulate_batch`], and [`SimulatorError::Sink`] when the sink fails.
pub fn simulate_batch_with(
    sim: &dyn Simulator,
    theta: &DMatrix<f64>,
    opts: &SimulationOptions,
    sink: Option<&dyn SimulationSink>,
) -> Result<Simulations, SimulatorError> {
    check_simulator(sim)?;
    let (td, xd, n) = (sim.theta_dim(), sim.x_dim(), theta.ncols());
    if theta.nrows() != td {
        return Err(SimulatorError::ThetaDimension {
            expected: td,
            found: theta.nrows(),
        });
    }
    let mut x = DMatrix::zeros(xd, n);
    let mut failed = Vec::new();
    if let (true, Some(plan)) = (n > 0, sim.batch_plan()) {
        let pb = progress_bar(n, opts.progress);
        let result = simulate_chunks(sim, plan, theta, &mut x, opts, &pb, sink);
        pb.finish_and_clear();
        failed = result?;
    } else if n > 0 {
        let pb = progress_bar(n, opts.progress);
        // Chunks only group work for scheduling and progress; every simulation still has its
        // own stream, so the chunk size does not change the result.
        let per_chunk = (n / (rayon::current_num_threads() * 8)).clamp(1, 256);
        // A hidden bar is not updated: an update reads the clock and takes time-dependent
        // branches (its rate estimate), which would make the work vary from run to run.
        let show = !pb.is_hidden();
        let lowest_failure = AtomicUsize::new(usize::MAX);
        let failures: Mutex<Vec<(usize, SimulatorError)>> = Mutex::new(Vec::new());
        let thetas = theta.as_slice();
        x.as_mut_slice()
            .par_chunks_mut(xd * per_chunk)
            .enumerate()
            .for_each(|(c, chunk)| {
                for (k, out) in chunk.chunks_mut(xd).enumerate() {
                    let i = c * per_chunk + k;
                    // Skip only work *after* a known failure, so the lowest failing index
                    // is always found, whatever the scheduling.
                    if i > lowest_failure.load(Ordering::Relaxed) {
                        break;
                    }
                    let mut rng = derive_rng(opts.seed, opts.stream_offset.wrapping_add(i as u64));
                    let th = &thetas[i * td..(i + 1) * td];
                    let kept = run_one(sim, i, th, &mut rng, out).and_then(|()| match sink {
                        Some(sink) => {
                            sink.done(i, out, &[])
                                .map_err(|message| SimulatorError::Sink {
                                    first: i,
                                    end: i + 1,
                                    message,
                                })
                        }
                        None => Ok(()),
                    });
                    if let Err(e) = kept {
                        lowest_failure.fetch_min(i, Ordering::Relaxed);
                        if let Ok(mut f) = failures.lock() {
                            f.push((i, e));
                        }
                        break;
                    }
                }
                if show {
                    pb.inc((chunk.len() / xd) as u64);
                }
            });
        pb.finish_and_clear();
        let failures = failures
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((_, e)) = failures.into_iter().min_by_key(|(i, _)| *i) {
            return Err(e);
        }
    }
    let mut invalid = InvalidReport::from_columns(&x);
    invalid.failed = failed;
    Ok(Simulations {
        theta: theta.clone(),
        x,
        invalid,
    })
}

/// The batch path of [`simulate_batch`]: chunks of at most `plan.batch_size` θ's, taken in
/// order by at most `plan.concurrency` threads (this one and scoped ones). Returns the
/// failed rows, sorted, after setting their x to NaN.
fn simulate_chunks(
    sim: &dyn Simulator,
    plan: BatchPlan,
    theta: &DMatrix<f64>,
    x: &mut DMatrix<f64>,
    opts: &SimulationOptions,
    pb: &ProgressBar,
    sink: Option<&dyn SimulationSink>,
) -> Result<Vec<(usize, String)>, SimulatorError> {
    let (td, xd, n) = (sim.theta_dim(), sim.x_dim(), theta.ncols());
    let concurrency = plan.concurrency.max(1);
    let size = plan.batch_size.clamp(1, n.div_ceil(concurrency).max(1));
    let threads = concurrency.min(n.div_ceil(size));
    let thetas = theta.as_slice();
    let jobs = Mutex::new(x.as_mut_slice().chunks_mut(xd * size).enumerate());
    let lowest_failure = AtomicUsize::new(usize::MAX);
    // As in `simulate_batch_with`: a hidden bar is not updated.
    let show = !pb.is_hidden();
    let errors: Mutex<Vec<(usize, SimulatorError)>> = Mutex::new(Vec::new());
    let failed: Mutex<Vec<(usize, String)>> = Mutex::new(Vec::new());
    let work = || {
        loop {
            let next = match jobs.lock() {
                Ok(mut it) => it.next(),
                Err(_) => None,
            };
            let Some((c, out)) = next else { break };
            let first = c * size;
            // Chunks are taken in order, so every chunk before a failure has been taken.
            if first > lowest_failure.load(Ordering::Relaxed) {
                break;
            }
            let m = out.len() / xd;
            let stream = opts.stream_offset.wrapping_add(first as u64);
            let rows = &thetas[first * td..(first + m) * td];
            let result =
                SimulationChunk::new(rows, td, first, opts.seed, stream).and_then(|chunk| {
                    let mut rows_failed = Vec::new();
                    match catch_unwind(AssertUnwindSafe(|| {
                        sim.simulate_many(&chunk, out, &mut rows_failed)
                    })) {
                        Ok(Ok(())) => Ok(rows_failed),
                        Ok(Err(e)) => Err(e),
                        Err(payload) => Err(SimulatorError::Panicked {
                            index: first,
                            theta: chunk.theta(0).to_vec(),
                            message: format!(
                                "{} (in simulate_many of simulations {first}..{})",
                                panic_message(payload.as_ref()),
                                first + m
                            ),
                        }),
                    }
                });
            match result {
                Ok(rows_failed) => {
                    let mut kept = Vec::with_capacity(rows_failed.len());
                    let mut stray = false;
                    for (i, why) in rows_failed {
                        if !(first..first + m).contains(&i) {
                            stray = true;
                            lowest_failure.fetch_min(first, Ordering::Relaxed);
                            if let Ok(mut e) = errors.lock() {
                                e.push((
                                    first,
                                    SimulatorError::InvalidArgument(format!(
                                        "simulate_many of simulations {first}..{} reported \
                                         simulation {i} as failed, outside its chunk",
                                        first + m
                                    )),
                                ));
                            }
                            break;
                        }
                        out[(i - first) * xd..(i - first + 1) * xd].fill(f64::NAN);
                        kept.push((i, why));
                    }
                    if let (Some(sink), false) = (sink, stray)
                        && let Err(message) = sink.done(first, out, &kept)
                    {
                        lowest_failure.fetch_min(first, Ordering::Relaxed);
                        if let Ok(mut e) = errors.lock() {
                            e.push((
                                first,
                                SimulatorError::Sink {
                                    first,
                                    end: first + m,
                                    message,
                                },
                            ));
                        }
                    }
                    if let Ok(mut f) = failed.lock() {
                        f.extend(kept);
                    }
                }
                Err(e) => {
                    lowest_failure.fetch_min(first, Ordering::Relaxed);
                    if let Ok(mut errs) = errors.lock() {
                        errs.push((first, e));
                    }
                }
            }
            if show {
                pb.inc(m as u64);
            }
        }
    };
    std::thread::scope(|s| {
        // If the OS refuses a thread, the ones that started (this one at least) do the work.
        for _ in 1..threads {
            let _ = std::thread::Builder::new().spawn_scoped(s, work);
        }
        work();
    });
    let errors = errors
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((_, e)) = errors.into_iter().min_by_key(|(i, _)| *i) {
        return Err(e);
    }
    let mut failed = failed
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    failed.sort_by_key(|(i, _)| *i);
    failed.dedup_by_key(|(i, _)| *i);
    Ok(failed)
}

/// Draws `n` θ's from `proposal`, then simulates them with [`simulate_batch`].
///
/// θ is drawn from `derive_rng(opts.seed, u64::MAX - opts.stream_offset)`, a stream the
/// simulations never use, so the whole result depends only on the options.
///
/// # Errors
/// A proposal whose dimension differs from the simulator's `theta_dim`, a proposal that
/// fails to sample or returns a batch of the wrong shape, and everything
/// [`simulate_batch`] reports.
pub fn simulate_for_sbi(
    sim: &dyn Simulator,
    proposal: &dyn Proposal,
    n: usize,
    opts: &SimulationOptions,
) -> Result<Simulations, SimulatorError> {
    check_simulator(sim)?;
    if proposal.theta_dim() != sim.theta_dim() {
        return Err(SimulatorError::DimensionMismatch {
            what: "dimension of the proposal vs the simulator's theta_dim",
            expected: sim.theta_dim(),
            found: proposal.theta_dim(),
        });
    }
    let mut rng = derive_rng(opts.seed, u64::MAX - opts.stream_offset);
    let theta = proposal.propose(n, &mut rng)?;
    if theta.shape() != (sim.theta_dim(), n) {
        return Err(SimulatorError::InvalidArgument(format!(
            "the proposal returned a {}×{} batch, expected {}×{}",
            theta.nrows(),
            theta.ncols(),
            sim.theta_dim(),
            n
        )));
    }
    simulate_batch(sim, &theta, opts)
}

/// Checks that a prior and a simulator fit together, like the reference library's
/// `check_sbi_inputs`: same θ dimension, one prior draw that lies in the prior's support
/// with a finite log-density, and one simulation of it that succeeds (no error, no panic,
/// the right output length).
///
/// # Errors
/// A clear error for the first problem found.
pub fn check_sbi_inputs(sim: &dyn Simulator, prior: &dyn Prior) -> Result<(), SimulatorError> {
    check_simulator(sim)?;
    if prior.dim() != sim.theta_dim() {
        return Err(SimulatorError::DimensionMismatch {
            what: "dimension of the prior vs the simulator's theta_dim",
            expected: sim.theta_dim(),
            found: prior.dim(),
        });
    }
    let mut rng = derive_rng(0, 0);
    let theta = prior.sample(&mut rng);
    if theta.len() != prior.dim() {
        return Err(SimulatorError::Check(format!(
            "the prior declares dimension {} but a draw has length {}",
            prior.dim(),
            theta.len()
        )));
    }
    if prior.support().len() != prior.dim() {
        return Err(SimulatorError::Check(format!(
            "the prior declares dimension {} but describes the support of {} dimensions",
            prior.dim(),
            prior.support().len()
        )));
    }
    if !prior.in_support(theta.as_slice()) {
        return Err(SimulatorError::Check(format!(
            "a draw from the prior, {:?}, is outside the prior's support",
            theta.as_slice()
        )));
    }
    let lp = prior.log_prob(theta.as_slice())?;
    if !lp.is_finite() {
        return Err(SimulatorError::Check(format!(
            "the prior's log_prob of its own draw {:?} is {lp}, expected a finite number",
            theta.as_slice()
        )));
    }
    let mut out = vec![0.0; sim.x_dim()];
    run_one(sim, 0, theta.as_slice(), &mut rng, &mut out)
}
