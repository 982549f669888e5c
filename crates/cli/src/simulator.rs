//! The run's simulator from its config, and two wrappers the commands need: one that hands
//! an in-process simulator its work in chunks (so that a durable run keeps one record per
//! chunk, not per simulation), and one that refuses to simulate (`--no-simulate`).

use std::sync::atomic::{AtomicBool, Ordering};

use rand::RngCore;
use simfer_simulators::external::ExternalSimulator;
use simfer_simulators::{BatchPlan, SimulationChunk, Simulator, SimulatorError};

use crate::Result;
use crate::config::{RunConfig, SimulatorConfig};

/// Simulations per chunk of an in-process simulator (one record of the run's log each).
pub const IN_PROCESS_CHUNK: usize = 50;

/// The simulator of `config`: the built-in task's (handed its work in chunks of
/// [`IN_PROCESS_CHUNK`]) or the external program's worker processes (started when first
/// needed).
///
/// # Errors
/// An unknown task, or settings the external simulator refuses.
pub fn build_simulator(config: &RunConfig) -> Result<Box<dyn Simulator>> {
    let theta_dim = config.parameters.len();
    match &config.simulator {
        SimulatorConfig::Task { name } => {
            let task = simfer_benchmark::task(name)?;
            Ok(Box::new(Chunked::new(task.simulator(), IN_PROCESS_CHUNK)))
        }
        SimulatorConfig::External(e) => {
            let mut builder = ExternalSimulator::builder(&e.program)
                .args(&e.args)
                .theta_dim(theta_dim)
                .x_dim(e.x_dim)
                .workers(e.workers)
                .batch_size(e.batch_size)
                .timeout(e.timeout())
                .startup_timeout(std::time::Duration::from_secs_f64(e.startup_timeout))
                .max_restarts(e.max_restarts)
                .forward_stderr(e.forward_stderr)
                .current_dir(&e.dir);
            for (k, v) in &e.env {
                builder = builder.env(k, v);
            }
            Ok(Box::new(builder.build()?))
        }
    }
}

/// An in-process simulator handed its work in chunks of at most `size` simulations, from as
/// many threads as the rayon pool has. Every simulation keeps its own random stream, so the
/// result is the same as without chunks; a simulator that has a batch plan of its own
/// keeps it.
pub struct Chunked<S> {
    inner: S,
    size: usize,
}

impl<S: Simulator> Chunked<S> {
    /// `inner` in chunks of at most `size` (at least 1).
    pub fn new(inner: S, size: usize) -> Self {
        Chunked {
            inner,
            size: size.max(1),
        }
    }
}

impl<S: Simulator> Simulator for Chunked<S> {
    fn theta_dim(&self) -> usize {
        self.inner.theta_dim()
    }

    fn x_dim(&self) -> usize {
        self.inner.x_dim()
    }

    fn simulate(
        &self,
        theta: &[f64],
        rng: &mut dyn RngCore,
        out: &mut [f64],
    ) -> Result<(), SimulatorError> {
        self.inner.simulate(theta, rng, out)
    }

    fn batch_plan(&self) -> Option<BatchPlan> {
        self.inner.batch_plan().or(Some(BatchPlan {
            batch_size: self.size,
            concurrency: rayon::current_num_threads().max(1),
        }))
    }

    fn simulate_many(
        &self,
        chunk: &SimulationChunk<'_>,
        out: &mut [f64],
        failed: &mut Vec<(usize, String)>,
    ) -> Result<(), SimulatorError> {
        self.inner.simulate_many(chunk, out, failed)
    }
}

/// A simulator of the given dimensions that simulates nothing: asked to, it notes that it
/// was and fails. `--no-simulate` runs with it, so a run stops where a round needs
/// simulations (with the round's proposal saved).
pub struct Refusing {
    theta_dim: usize,
    x_dim: usize,
    asked: AtomicBool,
}

/// The message of a [`Refusing`] simulator's failure.
const REFUSED: &str = "simulations are not run here (--no-simulate)";

impl Refusing {
    /// A refusing simulator of `theta_dim` → `x_dim`.
    pub fn new(theta_dim: usize, x_dim: usize) -> Self {
        Refusing {
            theta_dim,
            x_dim,
            asked: AtomicBool::new(false),
        }
    }

    /// Whether it was asked to simulate.
    pub fn was_asked(&self) -> bool {
        self.asked.load(Ordering::SeqCst)
    }

    fn refuse(&self) -> Result<(), SimulatorError> {
        self.asked.store(true, Ordering::SeqCst);
        Err(SimulatorError::InvalidArgument(REFUSED.into()))
    }
}

impl Simulator for Refusing {
    fn theta_dim(&self) -> usize {
        self.theta_dim
    }

    fn x_dim(&self) -> usize {
        self.x_dim
    }

    fn simulate(
        &self,
        _theta: &[f64],
        _rng: &mut dyn RngCore,
        _out: &mut [f64],
    ) -> Result<(), SimulatorError> {
        self.refuse()
    }

    fn batch_plan(&self) -> Option<BatchPlan> {
        Some(BatchPlan {
            batch_size: usize::MAX,
            concurrency: 1,
        })
    }

    fn simulate_many(
        &self,
        _chunk: &SimulationChunk<'_>,
        _out: &mut [f64],
        _failed: &mut Vec<(usize, String)>,
    ) -> Result<(), SimulatorError> {
        self.refuse()
    }
}

/// The x dimension of the run's simulator, without starting anything.
///
/// # Errors
/// An unknown task.
pub fn x_dim(config: &RunConfig) -> Result<usize> {
    Ok(match &config.simulator {
        SimulatorConfig::Task { name } => simfer_benchmark::task(name)?.simulator().x_dim(),
        SimulatorConfig::External(e) => e.x_dim,
    })
}

#[cfg(test)]
mod tests {
    use nalgebra::DMatrix;
    use simfer_simulators::{SimulationOptions, simulate_batch};

    use super::*;

    #[test]
    fn chunks_change_no_simulation() {
        let task = simfer_benchmark::task("two_moons").unwrap();
        let theta = DMatrix::from_fn(2, 333, |i, j| (i as f64 - 0.5) * (j as f64) / 400.0);
        let opts = SimulationOptions::with_seed(9).with_progress(false);
        let plain = simulate_batch(task.simulator().as_ref(), &theta, &opts).unwrap();
        let chunked = simulate_batch(&Chunked::new(task.simulator(), 7), &theta, &opts).unwrap();
        assert_eq!(plain.x, chunked.x);
        assert!(Chunked::new(task.simulator(), 7).batch_plan().is_some());
    }

    #[test]
    fn a_refusing_simulator_refuses_and_remembers() {
        let r = Refusing::new(2, 3);
        assert!(!r.was_asked());
        let theta = DMatrix::zeros(2, 4);
        let opts = SimulationOptions::with_seed(1).with_progress(false);
        assert!(simulate_batch(&r, &theta, &opts).is_err());
        assert!(r.was_asked());
    }
}
