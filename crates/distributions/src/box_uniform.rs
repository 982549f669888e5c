//! The uniform distribution on a box.

use nalgebra::{DMatrix, DVector};
use rand::{Rng, RngCore};

use crate::error::{check_finite, check_len};
use crate::prior::{check_batch_rows, columns};
use crate::{DistributionError, Prior, PriorSpec, Support};

/// The uniform distribution on the closed box `[low_1, high_1] × … × [low_D, high_D]`.
///
/// `ln p(θ) = −Σ_d ln(high_d − low_d)` on the whole closed box (both ends included, unlike
/// the reference library, whose density is −∞ at `high`), −∞ outside.
/// Mean `(low + high)/2`, variance `(high − low)²/12`.
///
/// ```
/// use simfer_distributions::{BoxUniform, Prior, rng_from_seed};
/// let prior = BoxUniform::uniform(3, -2.0, 2.0)?;
/// let theta = prior.sample(&mut rng_from_seed(0));
/// assert!(prior.in_support(theta.as_slice()));
/// assert_eq!(prior.log_prob(&[2.0, -2.0, 0.0])?, -3.0 * 4f64.ln());
/// # Ok::<(), simfer_distributions::DistributionError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct BoxUniform {
    low: Vec<f64>,
    high: Vec<f64>,
    log_density: f64,
}

impl BoxUniform {
    /// The box with the given bounds.
    ///
    /// # Errors
    /// Empty or mismatched bounds, non-finite bounds, or `low_d >= high_d` for some d.
    pub fn new(low: Vec<f64>, high: Vec<f64>) -> Result<Self, DistributionError> {
        if low.is_empty() {
            return Err(DistributionError::Empty {
                what: "BoxUniform bounds",
            });
        }
        check_len("BoxUniform: high (must match low)", low.len(), high.len())?;
        check_finite("BoxUniform low", &low)?;
        check_finite("BoxUniform high", &high)?;
        if let Some(index) = (0..low.len()).find(|&d| low[d] >= high[d]) {
            return Err(DistributionError::InvalidBounds {
                index,
                low: low[index],
                high: high[index],
            });
        }
        let log_density = -low
            .iter()
            .zip(&high)
            .map(|(l, h)| (h - l).ln())
            .sum::<f64>();
        Ok(Self {
            low,
            high,
            log_density,
        })
    }

    /// The cube `[low, high]^dim`.
    ///
    /// # Errors
    /// As [`new`](Self::new), and for `dim == 0`.
    pub fn uniform(dim: usize, low: f64, high: f64) -> Result<Self, DistributionError> {
        Self::new(vec![low; dim], vec![high; dim])
    }

    /// Lower bounds.
    pub fn low(&self) -> &[f64] {
        &self.low
    }

    /// Upper bounds.
    pub fn high(&self) -> &[f64] {
        &self.high
    }

    fn contains(&self, theta: &[f64]) -> bool {
        theta
            .iter()
            .zip(self.low.iter().zip(&self.high))
            .all(|(&v, (&l, &h))| l <= v && v <= h)
    }
}

impl Prior for BoxUniform {
    fn dim(&self) -> usize {
        self.low.len()
    }

    fn sample(&self, rng: &mut dyn RngCore) -> DVector<f64> {
        DVector::from_iterator(
            self.dim(),
            self.low
                .iter()
                .zip(&self.high)
                .map(|(&l, &h)| l + (h - l) * rng.random::<f64>()),
        )
    }

    fn sample_batch(&self, n: usize, rng: &mut dyn RngCore) -> DMatrix<f64> {
        let d = self.dim();
        let mut out = DMatrix::zeros(d, n);
        for (k, v) in out.as_mut_slice().iter_mut().enumerate() {
            let (l, h) = (self.low[k % d], self.high[k % d]);
            *v = l + (h - l) * rng.random::<f64>();
        }
        out
    }

    fn log_prob(&self, theta: &[f64]) -> Result<f64, DistributionError> {
        check_len("θ", self.dim(), theta.len())?;
        Ok(if self.contains(theta) {
            self.log_density
        } else {
            f64::NEG_INFINITY
        })
    }

    fn log_prob_batch(&self, theta: &DMatrix<f64>) -> Result<DVector<f64>, DistributionError> {
        check_batch_rows(self.dim(), theta)?;
        Ok(DVector::from_iterator(
            theta.ncols(),
            columns(theta).map(|c| {
                if self.contains(c) {
                    self.log_density
                } else {
                    f64::NEG_INFINITY
                }
            }),
        ))
    }

    /// Zero: the density is constant on the box.
    fn grad_log_prob(&self, theta: &[f64]) -> Result<Vec<f64>, DistributionError> {
        check_len("θ", self.dim(), theta.len())?;
        Ok(vec![0.0; theta.len()])
    }

    fn support(&self) -> Vec<Support> {
        self.low
            .iter()
            .zip(&self.high)
            .map(|(&low, &high)| Support::Interval { low, high })
            .collect()
    }

    fn in_support(&self, theta: &[f64]) -> bool {
        theta.len() == self.dim() && self.contains(theta)
    }

    fn mean(&self) -> Option<DVector<f64>> {
        Some(DVector::from_iterator(
            self.dim(),
            self.low.iter().zip(&self.high).map(|(l, h)| 0.5 * (l + h)),
        ))
    }

    fn variance(&self) -> Option<DVector<f64>> {
        Some(DVector::from_iterator(
            self.dim(),
            self.low
                .iter()
                .zip(&self.high)
                .map(|(l, h)| (h - l).powi(2) / 12.0),
        ))
    }

    fn spec(&self) -> PriorSpec {
        PriorSpec::BoxUniform {
            low: self.low.clone(),
            high: self.high.clone(),
        }
    }
}
