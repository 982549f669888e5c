//! The [`Prior`] and [`Proposal`] traits.

use std::sync::Arc;

use nalgebra::{DMatrix, DVector};
use rand::RngCore;

use crate::error::check_len;
use crate::{DistributionError, PriorSpec, Support};

/// Anything that can propose θ's in batches: a prior, or a posterior with a default x.
///
/// Every [`Prior`] is a proposal through a blanket impl. Sampling may fail (a posterior's
/// rejection sampler can spend its budget), so it returns a `Result`.
/// Its methods have names of their own, so `Prior` and `Proposal` can both be in scope.
pub trait Proposal: Send + Sync {
    /// Dimension of θ.
    fn theta_dim(&self) -> usize;
    /// `n` draws, one per column (`theta_dim × n`).
    fn propose(&self, n: usize, rng: &mut dyn RngCore) -> Result<DMatrix<f64>, DistributionError>;
}

/// A prior distribution over θ ∈ ℝᴰ.
///
/// Object safe: `Box<dyn Prior>`, `Arc<dyn Prior>` and `&dyn Prior` are priors themselves.
/// Batches hold one θ per column (`D × n`). [`sample_batch`](Self::sample_batch) with `n`
/// columns draws exactly what `n` calls of [`sample`](Self::sample) would, from the same
/// generator, for every prior of this crate.
pub trait Prior: Send + Sync + std::fmt::Debug {
    /// Dimension D of θ.
    fn dim(&self) -> usize;

    /// One draw.
    fn sample(&self, rng: &mut dyn RngCore) -> DVector<f64>;

    /// `n` draws, one per column (`D × n`).
    fn sample_batch(&self, n: usize, rng: &mut dyn RngCore) -> DMatrix<f64> {
        let d = self.dim();
        let mut out = DMatrix::zeros(d, n);
        for j in 0..n {
            out.set_column(j, &self.sample(rng));
        }
        out
    }

    /// `ln p(θ)`: finite on the support, −∞ outside it (and for NaN entries).
    ///
    /// # Errors
    /// [`DistributionError::DimensionMismatch`] if `theta.len() != dim()`.
    fn log_prob(&self, theta: &[f64]) -> Result<f64, DistributionError>;

    /// `ln p(θ_j)` for each column of a `D × n` batch.
    ///
    /// # Errors
    /// [`DistributionError::DimensionMismatch`] if the batch does not have `dim()` rows.
    fn log_prob_batch(&self, theta: &DMatrix<f64>) -> Result<DVector<f64>, DistributionError> {
        check_batch_rows(self.dim(), theta)?;
        let mut out = DVector::zeros(theta.ncols());
        for (j, col) in columns(theta).enumerate() {
            out[j] = self.log_prob(col)?;
        }
        Ok(out)
    }

    /// `∇_θ ln p(θ)` at a θ inside the support (for MAP search and gradient-based
    /// samplers). The default takes central differences of [`log_prob`](Self::log_prob)
    /// (step `1e-6·max(1, |θᵢ|)`, kept inside the support); the priors of this crate
    /// override it with the closed form.
    ///
    /// # Errors
    /// [`DistributionError::DimensionMismatch`] if `theta.len() != dim()`.
    fn grad_log_prob(&self, theta: &[f64]) -> Result<Vec<f64>, DistributionError> {
        check_len("θ", self.dim(), theta.len())?;
        let support = self.support();
        let mut x = theta.to_vec();
        let mut g = vec![0.0; theta.len()];
        for i in 0..theta.len() {
            let h = 1e-6 * theta[i].abs().max(1.0);
            let (lo, hi) = (theta[i] - h, theta[i] + h);
            let s = support.get(i).copied().unwrap_or(Support::Real);
            let (lo, hi) = (lo.max(s.lower()), hi.min(s.upper()));
            x[i] = hi;
            let up = self.log_prob(&x)?;
            x[i] = lo;
            let down = self.log_prob(&x)?;
            x[i] = theta[i];
            g[i] = if hi > lo {
                (up - down) / (hi - lo)
            } else {
                0.0
            };
        }
        Ok(g)
    }

    /// The support of each dimension.
    fn support(&self) -> Vec<Support>;

    /// Whether θ lies in the (closed) support; `false` for a θ of the wrong length.
    fn in_support(&self, theta: &[f64]) -> bool {
        let support = self.support();
        theta.len() == support.len() && support.iter().zip(theta).all(|(s, &v)| s.contains(v))
    }

    /// The mean, where it is known in closed form.
    fn mean(&self) -> Option<DVector<f64>> {
        None
    }

    /// The per-dimension variance, where it is known in closed form.
    fn variance(&self) -> Option<DVector<f64>> {
        None
    }

    /// A serializable description, to save a trained posterior together with its prior.
    /// Priors defined outside this crate describe themselves as
    /// [`PriorSpec::Custom`] (by their `Debug` text) unless they override this.
    fn spec(&self) -> PriorSpec {
        PriorSpec::Custom {
            name: format!("{self:?}"),
        }
    }
}

impl<P: Prior + ?Sized> Proposal for P {
    fn theta_dim(&self) -> usize {
        Prior::dim(self)
    }
    fn propose(&self, n: usize, rng: &mut dyn RngCore) -> Result<DMatrix<f64>, DistributionError> {
        Ok(Prior::sample_batch(self, n, rng))
    }
}

macro_rules! forward_prior {
    ($($wrapper:ty),*) => {$(
        impl<P: Prior + ?Sized> Prior for $wrapper {
            fn dim(&self) -> usize {
                Prior::dim(&**self)
            }
            fn sample(&self, rng: &mut dyn RngCore) -> DVector<f64> {
                (**self).sample(rng)
            }
            fn sample_batch(&self, n: usize, rng: &mut dyn RngCore) -> DMatrix<f64> {
                Prior::sample_batch(&**self, n, rng)
            }
            fn log_prob(&self, theta: &[f64]) -> Result<f64, DistributionError> {
                (**self).log_prob(theta)
            }
            fn log_prob_batch(
                &self,
                theta: &DMatrix<f64>,
            ) -> Result<DVector<f64>, DistributionError> {
                (**self).log_prob_batch(theta)
            }
            fn grad_log_prob(&self, theta: &[f64]) -> Result<Vec<f64>, DistributionError> {
                (**self).grad_log_prob(theta)
            }
            fn support(&self) -> Vec<Support> {
                (**self).support()
            }
            fn in_support(&self, theta: &[f64]) -> bool {
                (**self).in_support(theta)
            }
            fn mean(&self) -> Option<DVector<f64>> {
                (**self).mean()
            }
            fn variance(&self) -> Option<DVector<f64>> {
                (**self).variance()
            }
            fn spec(&self) -> PriorSpec {
                (**self).spec()
            }
        }
    )*};
}

forward_prior!(Box<P>, Arc<P>, &P);

/// Checks that a batch has `dim` rows.
pub(crate) fn check_batch_rows(dim: usize, theta: &DMatrix<f64>) -> Result<(), DistributionError> {
    if theta.nrows() == dim {
        Ok(())
    } else {
        Err(DistributionError::DimensionMismatch {
            what: "rows of the θ batch (dimension of θ)",
            expected: dim,
            found: theta.nrows(),
        })
    }
}

/// The columns of a column-major matrix as slices.
pub(crate) fn columns(m: &DMatrix<f64>) -> impl Iterator<Item = &[f64]> {
    let d = m.nrows().max(1);
    m.as_slice().chunks_exact(d).take(m.ncols())
}
