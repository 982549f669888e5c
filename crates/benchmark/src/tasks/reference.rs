//! Reference posteriors shared by the Gaussian tasks.

use nalgebra::{DMatrix, DVector};
use rand::{Rng, RngCore};
use rand_distr::{Distribution, StandardNormal};
use simfer_distributions::{MultivariateNormal, Prior};

use super::{ReferencePosterior, rejection_sample};
use crate::BenchmarkError;
use crate::special::truncated_normal_moments;

/// An untruncated Gaussian posterior (gaussian_linear).
#[derive(Clone, Debug)]
pub struct GaussianPosterior {
    dist: MultivariateNormal,
}

impl GaussianPosterior {
    /// The posterior `dist`.
    pub fn new(dist: MultivariateNormal) -> Self {
        Self { dist }
    }
}

impl ReferencePosterior for GaussianPosterior {
    fn dim(&self) -> usize {
        Prior::dim(&self.dist)
    }
    fn sample(&self, n: usize, rng: &mut dyn RngCore) -> Result<DMatrix<f64>, BenchmarkError> {
        Ok(Prior::sample_batch(&self.dist, n, rng))
    }
    fn mean(&self) -> Option<DVector<f64>> {
        Some(self.dist.loc().clone())
    }
    fn covariance(&self) -> Option<DMatrix<f64>> {
        Some(self.dist.covariance())
    }
}

/// A mixture of isotropic Gaussians restricted to a box, sampled exactly by rejection
/// (linear_gaussian, gaussian_linear_uniform, gaussian_mixture).
///
/// The density is `∝ Σ_k w_k N(θ; m_k, s_k² I)` on the closed box, 0 outside. Mean and
/// covariance are exact (products of truncated-normal moments per dimension).
#[derive(Clone, Debug)]
pub struct TruncatedGaussianMixture {
    what: String,
    weights: Vec<f64>,
    means: Vec<Vec<f64>>,
    sds: Vec<f64>,
    low: Vec<f64>,
    high: Vec<f64>,
}

impl TruncatedGaussianMixture {
    /// Components `(weight, mean, standard deviation)` restricted to `[low, high]`;
    /// `what` names the distribution in error messages. The weights need not sum to one.
    /// Callers validate their inputs (finite, matching lengths, positive weights and sds).
    pub(crate) fn new(
        what: String,
        components: Vec<(f64, Vec<f64>, f64)>,
        low: Vec<f64>,
        high: Vec<f64>,
    ) -> Self {
        let total: f64 = components.iter().map(|c| c.0).sum();
        let mut weights = Vec::new();
        let mut means = Vec::new();
        let mut sds = Vec::new();
        for (w, m, s) in components {
            weights.push(w / total);
            means.push(m);
            sds.push(s);
        }
        Self {
            what,
            weights,
            means,
            sds,
            low,
            high,
        }
    }

    /// Per component: the posterior weight (prior weight × mass inside the box, normalized)
    /// and the per-dimension truncated means and variances.
    #[allow(clippy::type_complexity)]
    fn truncated_components(&self) -> Option<Vec<(f64, Vec<f64>, Vec<f64>)>> {
        let mut parts = Vec::new();
        let mut total = 0.0;
        for ((w, m), &s) in self.weights.iter().zip(&self.means).zip(&self.sds) {
            let mut mass = *w;
            let (mut mean, mut var) = (Vec::new(), Vec::new());
            for (d, &md) in m.iter().enumerate() {
                let (z, mu, v) = truncated_normal_moments(md, s, self.low[d], self.high[d]);
                mass *= z;
                mean.push(mu);
                var.push(v);
            }
            total += mass;
            parts.push((mass, mean, var));
        }
        if !(total > 0.0 && total.is_finite()) {
            return None;
        }
        for p in &mut parts {
            p.0 /= total;
        }
        // A component without mass contributes nothing (and may have NaN moments).
        parts.retain(|p| p.0 > 0.0);
        Some(parts)
    }
}

impl ReferencePosterior for TruncatedGaussianMixture {
    fn dim(&self) -> usize {
        self.low.len()
    }

    fn sample(&self, n: usize, rng: &mut dyn RngCore) -> Result<DMatrix<f64>, BenchmarkError> {
        rejection_sample(&self.what, self.dim(), n, rng, |rng, theta| {
            let mut k = 0;
            if self.weights.len() > 1 {
                let u: f64 = rng.random();
                let mut acc = 0.0;
                while k + 1 < self.weights.len() {
                    acc += self.weights[k];
                    if u < acc {
                        break;
                    }
                    k += 1;
                }
            }
            let (m, s) = (&self.means[k], self.sds[k]);
            for (i, t) in theta.iter_mut().enumerate() {
                let z: f64 = StandardNormal.sample(rng);
                *t = m[i] + s * z;
                if !(self.low[i] <= *t && *t <= self.high[i]) {
                    return false;
                }
            }
            true
        })
    }

    fn mean(&self) -> Option<DVector<f64>> {
        let parts = self.truncated_components()?;
        let mut mean = DVector::zeros(self.dim());
        for (w, m, _) in &parts {
            mean += DVector::from_column_slice(m) * *w;
        }
        Some(mean)
    }

    fn covariance(&self) -> Option<DMatrix<f64>> {
        let parts = self.truncated_components()?;
        let mean = self.mean()?;
        // Within a component the dimensions are independent: E[θθᵀ] = diag(v) + m mᵀ.
        let mut second = DMatrix::zeros(self.dim(), self.dim());
        for (w, m, v) in &parts {
            let m = DVector::from_column_slice(m);
            second +=
                (DMatrix::from_diagonal(&DVector::from_column_slice(v)) + &m * m.transpose()) * *w;
        }
        Some(second - &mean * mean.transpose())
    }
}
