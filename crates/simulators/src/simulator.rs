//! The [`Simulator`] trait and closures as simulators.

use std::sync::Arc;

use rand::RngCore;
use simfer_distributions::{SeededRng, derive_rng};

use crate::SimulatorError;

/// How the runner hands work to a batch simulator: see [`Simulator::batch_plan`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchPlan {
    /// The largest number of θ's in one call of [`Simulator::simulate_many`] (at least 1).
    pub batch_size: usize,
    /// The largest number of calls of [`Simulator::simulate_many`] that run at once (at
    /// least 1), e.g. the number of worker processes.
    pub concurrency: usize,
}

/// A contiguous run of simulations of a batch, handed to [`Simulator::simulate_many`].
///
/// Row `k` is simulation [`index(k)`](Self::index) of the batch (a column of θ and x); it
/// draws only from [`rng(k)`](Self::rng) `= derive_rng(seed, stream(k))`, the generator the
/// runner gives that simulation whatever the chunking, so a chunk simulated row by row gives
/// the same result as [`Simulator::simulate`] with that generator.
#[derive(Clone, Copy, Debug)]
pub struct SimulationChunk<'a> {
    theta: &'a [f64],
    theta_dim: usize,
    first_index: usize,
    seed: u64,
    first_stream: u64,
}

impl<'a> SimulationChunk<'a> {
    /// A chunk of `theta.len() / theta_dim` θ's stored one after another (column-major, as
    /// in a `theta_dim × m` `DMatrix`), the first being simulation `first_index`, whose random
    /// stream is `first_stream` (streams then follow consecutively).
    ///
    /// # Errors
    /// [`SimulatorError::InvalidArgument`] if `theta_dim` is 0 or does not divide
    /// `theta.len()`.
    pub fn new(
        theta: &'a [f64],
        theta_dim: usize,
        first_index: usize,
        seed: u64,
        first_stream: u64,
    ) -> Result<Self, SimulatorError> {
        if theta_dim == 0 || !theta.len().is_multiple_of(theta_dim) {
            return Err(SimulatorError::InvalidArgument(format!(
                "a chunk of {} values cannot hold θ's of dimension {theta_dim}",
                theta.len()
            )));
        }
        Ok(Self {
            theta,
            theta_dim,
            first_index,
            seed,
            first_stream,
        })
    }

    /// Number of θ's in the chunk.
    pub fn len(&self) -> usize {
        self.theta.len() / self.theta_dim
    }

    /// Whether the chunk is empty.
    pub fn is_empty(&self) -> bool {
        self.theta.is_empty()
    }

    /// Dimension of each θ.
    pub fn theta_dim(&self) -> usize {
        self.theta_dim
    }

    /// All θ's, one after another (`theta_dim × len`, column-major).
    pub fn thetas(&self) -> &'a [f64] {
        self.theta
    }

    /// θ of row `k`.
    ///
    /// # Panics
    /// If `k >= len()`.
    pub fn theta(&self, k: usize) -> &'a [f64] {
        &self.theta[k * self.theta_dim..(k + 1) * self.theta_dim]
    }

    /// The simulation index (column of the batch) of row `k`.
    pub fn index(&self, k: usize) -> usize {
        self.first_index + k
    }

    /// The seed the chunk's generators are derived from (the batch's seed).
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The random stream of row `k`: `first_stream + k` (wrapping).
    pub fn stream(&self, k: usize) -> u64 {
        self.first_stream.wrapping_add(k as u64)
    }

    /// The generator of row `k`: `derive_rng(seed, stream(k))`.
    pub fn rng(&self, k: usize) -> SeededRng {
        derive_rng(self.seed, self.stream(k))
    }

    /// The seed of row `k` for a simulator that seeds itself (an external process): the
    /// first `u64` of [`rng(k)`](Self::rng), which is also what
    /// [`ExternalSimulator`](crate::external::ExternalSimulator) takes from the generator it
    /// is given in [`Simulator::simulate`].
    pub fn row_seed(&self, k: usize) -> u64 {
        self.rng(k).next_u64()
    }
}

/// A stochastic simulator `x ~ p(x | θ)`.
///
/// [`simulate`](Self::simulate) writes one simulation of one θ into `out`, drawing all its
/// randomness from `rng`. A numerical failure (an ODE that cannot be solved, an overflow)
/// should give NaN outputs, not an error: the runner counts and reports invalid
/// simulations. Errors are for misuse (wrong lengths).
///
/// `Box<S>`, `Arc<S>` and `&S` are simulators when `S` is, and so are closures through
/// [`FnSimulator`] and [`SliceSimulator`].
///
/// A simulator that is better called with many θ's at once (a process, a vectorized or GPU
/// model) also returns a [`BatchPlan`] from [`batch_plan`](Self::batch_plan) and implements
/// [`simulate_many`](Self::simulate_many); the runner then hands it whole chunks. Both have
/// defaults, so a per-θ simulator implements neither.
pub trait Simulator: Send + Sync {
    /// Dimension of θ.
    fn theta_dim(&self) -> usize;
    /// Dimension of x.
    fn x_dim(&self) -> usize;
    /// Simulates θ (length `theta_dim`) into `out` (length `x_dim`).
    ///
    /// # Errors
    /// [`SimulatorError::ThetaDimension`] or [`SimulatorError::OutputLength`] for slices
    /// of the wrong length (see [`check_lengths`]).
    fn simulate(
        &self,
        theta: &[f64],
        rng: &mut dyn RngCore,
        out: &mut [f64],
    ) -> Result<(), SimulatorError>;

    /// `None` (the default): the runner calls [`simulate`](Self::simulate) once per θ on
    /// the rayon pool. `Some(plan)`: the runner hands the simulator whole chunks through
    /// [`simulate_many`](Self::simulate_many), of at most `plan.batch_size` θ's, from at most
    /// `plan.concurrency` threads at once (an external process, a vectorized or GPU
    /// simulator).
    fn batch_plan(&self) -> Option<BatchPlan> {
        None
    }

    /// Simulates every row of `chunk` into `out` (`x_dim × chunk.len()`, column-major: row
    /// `k` writes `out[k·x_dim..(k + 1)·x_dim]`), row `k` drawing only from `chunk.rng(k)`
    /// (or, for a simulator that seeds itself, from `chunk.row_seed(k)`).
    ///
    /// A row that the simulator could not produce (a crashed or hung worker, an output that
    /// cannot be parsed) is pushed onto `failed` as `(chunk.index(k), reason)`; the runner
    /// sets its x to NaN and lists it in [`InvalidReport::failed`](crate::InvalidReport).
    /// The default calls [`simulate`](Self::simulate) row by row with `chunk.rng(k)`, so its
    /// result is the same as the per-θ runner's.
    ///
    /// # Errors
    /// An error ends the whole batch: lengths that do not fit, and for the default, the
    /// first row whose `simulate` fails or panics (as [`SimulatorError::Simulation`] or
    /// [`SimulatorError::Panicked`] naming its index).
    fn simulate_many(
        &self,
        chunk: &SimulationChunk<'_>,
        out: &mut [f64],
        failed: &mut Vec<(usize, String)>,
    ) -> Result<(), SimulatorError> {
        let _ = failed;
        check_chunk(self, chunk, out)?;
        let xd = self.x_dim();
        for (k, row) in out.chunks_mut(xd).enumerate() {
            let mut rng = chunk.rng(k);
            crate::runner::run_one(self, chunk.index(k), chunk.theta(k), &mut rng, row)?;
        }
        Ok(())
    }
}

/// Checks a chunk's θ dimension and the length of its output slice against a simulator's
/// dimensions.
///
/// # Errors
/// [`SimulatorError::ThetaDimension`] or [`SimulatorError::DimensionMismatch`].
pub fn check_chunk<S: Simulator + ?Sized>(
    sim: &S,
    chunk: &SimulationChunk<'_>,
    out: &[f64],
) -> Result<(), SimulatorError> {
    if chunk.theta_dim() != sim.theta_dim() {
        return Err(SimulatorError::ThetaDimension {
            expected: sim.theta_dim(),
            found: chunk.theta_dim(),
        });
    }
    if out.len() != sim.x_dim() * chunk.len() {
        return Err(SimulatorError::DimensionMismatch {
            what: "length of the output slice (x_dim × rows of the chunk)",
            expected: sim.x_dim() * chunk.len(),
            found: out.len(),
        });
    }
    Ok(())
}

/// Checks the lengths of θ and of the output slice against a simulator's dimensions.
///
/// # Errors
/// [`SimulatorError::ThetaDimension`] or [`SimulatorError::OutputLength`].
pub fn check_lengths<S: Simulator + ?Sized>(
    sim: &S,
    theta: &[f64],
    out: &[f64],
) -> Result<(), SimulatorError> {
    if theta.len() != sim.theta_dim() {
        return Err(SimulatorError::ThetaDimension {
            expected: sim.theta_dim(),
            found: theta.len(),
        });
    }
    if out.len() != sim.x_dim() {
        return Err(SimulatorError::DimensionMismatch {
            what: "length of the output slice (x_dim)",
            expected: sim.x_dim(),
            found: out.len(),
        });
    }
    Ok(())
}

macro_rules! forward_simulator {
    ($($wrapper:ty),*) => {$(
        impl<S: Simulator + ?Sized> Simulator for $wrapper {
            fn theta_dim(&self) -> usize {
                (**self).theta_dim()
            }
            fn x_dim(&self) -> usize {
                (**self).x_dim()
            }
            fn simulate(
                &self,
                theta: &[f64],
                rng: &mut dyn RngCore,
                out: &mut [f64],
            ) -> Result<(), SimulatorError> {
                (**self).simulate(theta, rng, out)
            }
            fn batch_plan(&self) -> Option<BatchPlan> {
                (**self).batch_plan()
            }
            fn simulate_many(
                &self,
                chunk: &SimulationChunk<'_>,
                out: &mut [f64],
                failed: &mut Vec<(usize, String)>,
            ) -> Result<(), SimulatorError> {
                (**self).simulate_many(chunk, out, failed)
            }
        }
    )*};
}

forward_simulator!(Box<S>, Arc<S>, &S);

/// A closure `|θ, rng| -> Vec<f64>` as a simulator; the returned length is checked.
///
/// ```
/// use rand::RngCore;
/// use rand_distr::{Distribution, StandardNormal};
/// use simfer_simulators::{FnSimulator, Simulator};
///
/// // x = θ + 0.1·ε
/// let sim = FnSimulator::new(2, 2, |theta: &[f64], rng: &mut dyn RngCore| {
///     theta
///         .iter()
///         .map(|t| {
///             let eps: f64 = StandardNormal.sample(rng);
///             t + 0.1 * eps
///         })
///         .collect::<Vec<f64>>()
/// });
/// let mut out = [0.0; 2];
/// sim.simulate(&[1.0, 2.0], &mut simfer_distributions::rng_from_seed(0), &mut out)?;
/// # Ok::<(), simfer_simulators::SimulatorError>(())
/// ```
pub struct FnSimulator<F> {
    theta_dim: usize,
    x_dim: usize,
    f: F,
}

impl<F> FnSimulator<F>
where
    F: Fn(&[f64], &mut dyn RngCore) -> Vec<f64> + Send + Sync,
{
    /// Wraps `f`, which maps θ (length `theta_dim`) to x (length `x_dim`).
    pub fn new(theta_dim: usize, x_dim: usize, f: F) -> Self {
        Self {
            theta_dim,
            x_dim,
            f,
        }
    }
}

impl<F> Simulator for FnSimulator<F>
where
    F: Fn(&[f64], &mut dyn RngCore) -> Vec<f64> + Send + Sync,
{
    fn theta_dim(&self) -> usize {
        self.theta_dim
    }
    fn x_dim(&self) -> usize {
        self.x_dim
    }
    fn simulate(
        &self,
        theta: &[f64],
        rng: &mut dyn RngCore,
        out: &mut [f64],
    ) -> Result<(), SimulatorError> {
        check_lengths(self, theta, out)?;
        let x = (self.f)(theta, rng);
        if x.len() != self.x_dim {
            return Err(SimulatorError::OutputLength {
                expected: self.x_dim,
                found: x.len(),
            });
        }
        out.copy_from_slice(&x);
        Ok(())
    }
}

/// A closure `|θ, rng, out|` that writes x into a slice of length `x_dim`, as a simulator.
/// It allocates nothing per simulation.
///
/// ```
/// use rand::{Rng, RngCore};
/// use simfer_simulators::{SliceSimulator, Simulator};
///
/// let sim = SliceSimulator::new(1, 3, |theta: &[f64], rng: &mut dyn RngCore, out: &mut [f64]| {
///     for o in out.iter_mut() {
///         *o = theta[0] * rng.random::<f64>();
///     }
/// });
/// assert_eq!(sim.x_dim(), 3);
/// ```
pub struct SliceSimulator<F> {
    theta_dim: usize,
    x_dim: usize,
    f: F,
}

impl<F> SliceSimulator<F>
where
    F: Fn(&[f64], &mut dyn RngCore, &mut [f64]) + Send + Sync,
{
    /// Wraps `f`, which writes the simulation of θ into `out`.
    pub fn new(theta_dim: usize, x_dim: usize, f: F) -> Self {
        Self {
            theta_dim,
            x_dim,
            f,
        }
    }
}

impl<F> Simulator for SliceSimulator<F>
where
    F: Fn(&[f64], &mut dyn RngCore, &mut [f64]) + Send + Sync,
{
    fn theta_dim(&self) -> usize {
        self.theta_dim
    }
    fn x_dim(&self) -> usize {
        self.x_dim
    }
    fn simulate(
        &self,
        theta: &[f64],
        rng: &mut dyn RngCore,
        out: &mut [f64],
    ) -> Result<(), SimulatorError> {
        check_lengths(self, theta, out)?;
        (self.f)(theta, rng, out);
        Ok(())
    }
}
