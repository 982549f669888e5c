//! Independent log-normal distributions.

use nalgebra::DVector;
use rand::RngCore;
use rand_distr::{Distribution, StandardNormal};

use crate::error::{check_finite, check_len, check_positive};
use crate::{DistributionError, HALF_LN_2PI, Prior, PriorSpec, Support};

/// Independent log-normals: `ln θ_d ~ N(μ_d, σ_d²)`.
///
/// `ln p(θ) = Σ_d [−ln θ_d − ln σ_d − ½ ln 2π − (ln θ_d − μ_d)²/(2σ_d²)]` for θ > 0, −∞
/// otherwise. Mean `exp(μ + σ²/2)`, variance `(exp(σ²) − 1)·exp(2μ + σ²)`.
///
/// ```
/// use simfer_distributions::{LogNormal, Prior};
/// // The SIR task's prior: β ~ LogN(ln 0.4, 0.5²), γ ~ LogN(ln 0.125, 0.2²).
/// let prior = LogNormal::new(vec![0.4f64.ln(), 0.125f64.ln()], vec![0.5, 0.2])?;
/// assert_eq!(prior.log_prob(&[-1.0, 0.1])?, f64::NEG_INFINITY);
/// # Ok::<(), simfer_distributions::DistributionError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct LogNormal {
    mu: Vec<f64>,
    sigma: Vec<f64>,
}

impl LogNormal {
    /// Log-normals with location `mu` and scale `sigma` (of ln θ) per dimension.
    ///
    /// # Errors
    /// Empty or mismatched vectors, non-finite values, or `sigma_d <= 0`.
    pub fn new(mu: Vec<f64>, sigma: Vec<f64>) -> Result<Self, DistributionError> {
        if mu.is_empty() {
            return Err(DistributionError::Empty {
                what: "LogNormal parameters",
            });
        }
        check_len("LogNormal: sigma (must match mu)", mu.len(), sigma.len())?;
        check_finite("LogNormal mu", &mu)?;
        check_positive("LogNormal sigma", &sigma)?;
        Ok(Self { mu, sigma })
    }

    /// `dim` independent copies of `LogN(mu, sigma²)`.
    ///
    /// # Errors
    /// As [`new`](Self::new), and for `dim == 0`.
    pub fn iid(dim: usize, mu: f64, sigma: f64) -> Result<Self, DistributionError> {
        Self::new(vec![mu; dim], vec![sigma; dim])
    }

    /// Locations μ of ln θ.
    pub fn mu(&self) -> &[f64] {
        &self.mu
    }

    /// Scales σ of ln θ.
    pub fn sigma(&self) -> &[f64] {
        &self.sigma
    }
}

impl Prior for LogNormal {
    fn dim(&self) -> usize {
        self.mu.len()
    }

    fn sample(&self, rng: &mut dyn RngCore) -> DVector<f64> {
        DVector::from_iterator(
            self.dim(),
            self.mu.iter().zip(&self.sigma).map(|(&m, &s)| {
                let z: f64 = StandardNormal.sample(rng);
                (m + s * z).exp()
            }),
        )
    }

    fn log_prob(&self, theta: &[f64]) -> Result<f64, DistributionError> {
        check_len("θ", self.dim(), theta.len())?;
        let mut lp = 0.0;
        for ((&v, &m), &s) in theta.iter().zip(&self.mu).zip(&self.sigma) {
            if !(v > 0.0 && v.is_finite()) {
                return Ok(f64::NEG_INFINITY);
            }
            let l = v.ln();
            let z = (l - m) / s;
            lp += -l - s.ln() - HALF_LN_2PI - 0.5 * z * z;
        }
        Ok(lp)
    }

    /// `−(1 + (ln θᵢ − μᵢ)/σᵢ²)/θᵢ` per dimension.
    fn grad_log_prob(&self, theta: &[f64]) -> Result<Vec<f64>, DistributionError> {
        check_len("θ", self.dim(), theta.len())?;
        Ok(theta
            .iter()
            .zip(&self.mu)
            .zip(&self.sigma)
            .map(|((&v, &m), &s)| -(1.0 + (v.ln() - m) / (s * s)) / v)
            .collect())
    }

    fn support(&self) -> Vec<Support> {
        vec![Support::Positive; self.dim()]
    }

    fn in_support(&self, theta: &[f64]) -> bool {
        theta.len() == self.dim() && theta.iter().all(|&v| Support::Positive.contains(v))
    }

    fn mean(&self) -> Option<DVector<f64>> {
        Some(DVector::from_iterator(
            self.dim(),
            self.mu
                .iter()
                .zip(&self.sigma)
                .map(|(m, s)| (m + 0.5 * s * s).exp()),
        ))
    }

    fn variance(&self) -> Option<DVector<f64>> {
        Some(DVector::from_iterator(
            self.dim(),
            self.mu
                .iter()
                .zip(&self.sigma)
                .map(|(m, s)| (s * s).exp_m1() * (2.0 * m + s * s).exp()),
        ))
    }

    fn spec(&self) -> PriorSpec {
        PriorSpec::LogNormal {
            mu: self.mu.clone(),
            sigma: self.sigma.clone(),
        }
    }
}
