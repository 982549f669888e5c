//! The [`Simulator`] trait and closures as simulators.

use std::sync::Arc;

use rand::RngCore;

use crate::SimulatorError;

/// A stochastic simulator `x ~ p(x | θ)`.
///
/// [`simulate`](Self::simulate) writes one simulation of one θ into `out`, drawing all its
/// randomness from `rng`. A numerical failure (an ODE that cannot be solved, an overflow)
/// should give NaN outputs, not an error: the runner counts and reports invalid
/// simulations. Errors are for misuse (wrong lengths).
///
/// `Box<S>`, `Arc<S>` and `&S` are simulators when `S` is, and so are closures through
/// [`FnSimulator`] and [`SliceSimulator`].
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
