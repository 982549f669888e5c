//! The target of the samplers: an unnormalized log density, evaluated one point or one
//! batch at a time.

use std::sync::Arc;

use nalgebra::DMatrix;
use rayon::prelude::*;

/// An unnormalized log density `ln π(x) + const` on ℝᴰ (a potential, in the reference
/// library's words).
///
/// −∞ outside the support. NaN and +∞ are not valid values: the samplers treat them as
/// −∞ (the point is never entered) and count them in
/// [`McmcDiagnostics::invalid_evaluations`](crate::McmcDiagnostics::invalid_evaluations).
///
/// Object safe (`&dyn LogDensity`, `Box<dyn LogDensity>`). The vectorized slice sampler
/// evaluates all its chains' next points in one call of
/// [`log_density_batch`](Self::log_density_batch); override it where a batch is cheaper
/// than its points one by one (a neural network: one matrix product per layer), or wrap
/// an expensive density in [`ParallelBatch`]. The samplers' results never depend on how a
/// batch is evaluated, only on the values.
///
/// ```
/// use nalgebra::DMatrix;
/// use simfer_mcmc::LogDensity;
///
/// /// A standard normal in `dim` dimensions.
/// struct StdNormal(usize);
/// impl LogDensity for StdNormal {
///     fn dim(&self) -> usize {
///         self.0
///     }
///     fn log_density(&self, x: &[f64]) -> f64 {
///         -0.5 * x.iter().map(|v| v * v).sum::<f64>()
///     }
/// }
/// let xs = DMatrix::from_column_slice(2, 2, &[0.0, 0.0, 1.0, 2.0]);
/// let mut out = [0.0; 2];
/// StdNormal(2).log_density_batch(&xs, &mut out);
/// assert_eq!(out, [0.0, -2.5]);
/// ```
pub trait LogDensity: Sync {
    /// Dimension D of the points.
    fn dim(&self) -> usize;

    /// The log density at `x` (of length [`dim`](Self::dim)).
    fn log_density(&self, x: &[f64]) -> f64;

    /// The log density at each column of `xs` (`dim × m`), written to `out[..m]`.
    ///
    /// The default evaluates the columns one by one, in order. Callers in this crate
    /// always pass `out.len() == xs.ncols()` and `xs.nrows() == self.dim()`.
    fn log_density_batch(&self, xs: &DMatrix<f64>, out: &mut [f64]) {
        let d = xs.nrows();
        for (j, o) in out.iter_mut().enumerate().take(xs.ncols()) {
            *o = self.log_density(&xs.as_slice()[j * d..(j + 1) * d]);
        }
    }
}

impl<T: LogDensity + ?Sized> LogDensity for &T {
    fn dim(&self) -> usize {
        (**self).dim()
    }
    fn log_density(&self, x: &[f64]) -> f64 {
        (**self).log_density(x)
    }
    fn log_density_batch(&self, xs: &DMatrix<f64>, out: &mut [f64]) {
        (**self).log_density_batch(xs, out)
    }
}

impl<T: LogDensity + ?Sized> LogDensity for Box<T> {
    fn dim(&self) -> usize {
        (**self).dim()
    }
    fn log_density(&self, x: &[f64]) -> f64 {
        (**self).log_density(x)
    }
    fn log_density_batch(&self, xs: &DMatrix<f64>, out: &mut [f64]) {
        (**self).log_density_batch(xs, out)
    }
}

impl<T: LogDensity + Send + ?Sized> LogDensity for Arc<T> {
    fn dim(&self) -> usize {
        (**self).dim()
    }
    fn log_density(&self, x: &[f64]) -> f64 {
        (**self).log_density(x)
    }
    fn log_density_batch(&self, xs: &DMatrix<f64>, out: &mut [f64]) {
        (**self).log_density_batch(xs, out)
    }
}

/// A closure as a log density: see [`from_fn`].
#[derive(Clone, Copy)]
pub struct FnDensity<F> {
    dim: usize,
    f: F,
}

impl<F> std::fmt::Debug for FnDensity<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FnDensity").field("dim", &self.dim).finish()
    }
}

/// The closure `f` as a log density on ℝ^`dim` (batches are evaluated point by point).
///
/// ```
/// use simfer_mcmc::{LogDensity, from_fn};
/// let banana = from_fn(2, |x: &[f64]| -(1.0 - x[0]).powi(2) - 5.0 * (x[1] - x[0] * x[0]).powi(2));
/// assert_eq!(banana.dim(), 2);
/// assert_eq!(banana.log_density(&[1.0, 1.0]), 0.0);
/// ```
pub fn from_fn<F: Fn(&[f64]) -> f64 + Sync>(dim: usize, f: F) -> FnDensity<F> {
    FnDensity { dim, f }
}

impl<F: Fn(&[f64]) -> f64 + Sync> LogDensity for FnDensity<F> {
    fn dim(&self) -> usize {
        self.dim
    }
    fn log_density(&self, x: &[f64]) -> f64 {
        (self.f)(x)
    }
}

/// A log density whose batches are evaluated in parallel, one column per task on rayon's
/// pool: worth it when one evaluation costs tens of microseconds or more (an ODE solve);
/// for cheap densities the overhead dominates. Each column's value is computed alone, so
/// the values do not depend on the number of threads.
///
/// ```
/// use nalgebra::DMatrix;
/// use simfer_mcmc::{LogDensity, ParallelBatch, from_fn};
/// let target = ParallelBatch(from_fn(1, |x: &[f64]| -x[0].abs()));
/// let mut out = [0.0; 3];
/// target.log_density_batch(&DMatrix::from_column_slice(1, 3, &[1.0, -2.0, 0.5]), &mut out);
/// assert_eq!(out, [-1.0, -2.0, -0.5]);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct ParallelBatch<T>(pub T);

impl<T: LogDensity> LogDensity for ParallelBatch<T> {
    fn dim(&self) -> usize {
        self.0.dim()
    }
    fn log_density(&self, x: &[f64]) -> f64 {
        self.0.log_density(x)
    }
    fn log_density_batch(&self, xs: &DMatrix<f64>, out: &mut [f64]) {
        let d = xs.nrows().max(1);
        let m = xs.ncols().min(out.len());
        out[..m]
            .par_iter_mut()
            .zip(xs.as_slice().par_chunks_exact(d))
            .for_each(|(o, x)| *o = self.0.log_density(x));
    }
}

/// A log-density value as the samplers use it: NaN and +∞ become −∞, counted in
/// `invalid`.
#[inline]
pub(crate) fn sanitize(value: f64, invalid: &mut u64) -> f64 {
    if value.is_nan() || value == f64::INFINITY {
        *invalid += 1;
        f64::NEG_INFINITY
    } else {
        value
    }
}
