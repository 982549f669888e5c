//! The map between a prior's support and unconstrained space, one dimension at a time, as
//! the reference library builds it for MCMC and MAP (`sbi.utils.sbiutils.mcmc_transform`):
//! a bounded dimension by the logit of its position in the interval, a positive one by the
//! logarithm, a real one by standardizing with the prior's mean and standard deviation.

use nalgebra::{DMatrix, DVector};
use serde::{Deserialize, Serialize};

use crate::error::check_len;
use crate::{DistributionError, Prior, Support, derive_rng};

/// Prior draws that estimate the mean and standard deviation of a real dimension when the
/// prior does not know them in closed form (as the reference: 1000).
const MOMENT_DRAWS: usize = 1000;

/// How one coordinate maps between θ and the unconstrained z.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Coordinate {
    /// `θ = low + (high − low)·σ(z)` on `[low, high]`.
    Interval {
        /// Lower bound.
        low: f64,
        /// Upper bound.
        high: f64,
    },
    /// `θ = exp z` on `(0, ∞)`.
    Positive,
    /// `θ = shift + scale·z` on the real line.
    Affine {
        /// The prior's mean.
        shift: f64,
        /// The prior's standard deviation.
        scale: f64,
    },
}

impl Coordinate {
    /// `(θ, dθ/dz)` at `z`.
    pub fn from_unconstrained(self, z: f64) -> (f64, f64) {
        match self {
            Coordinate::Interval { low, high } => {
                let s = Support::Interval { low, high };
                let theta = s.from_unconstrained(z);
                (theta, s.log_abs_det_jacobian(z).exp())
            }
            Coordinate::Positive => {
                let e = z.exp();
                (e, e)
            }
            Coordinate::Affine { shift, scale } => (shift + scale * z, scale),
        }
    }

    /// `z` at `θ` (±∞ at the ends of an interval and at 0 for a positive coordinate).
    pub fn to_unconstrained(self, theta: f64) -> f64 {
        match self {
            Coordinate::Interval { low, high } => {
                Support::Interval { low, high }.to_unconstrained(theta)
            }
            Coordinate::Positive => theta.ln(),
            Coordinate::Affine { shift, scale } => (theta - shift) / scale,
        }
    }

    /// `ln |dθ/dz|` at `z`, and its derivative with respect to `z`.
    pub fn log_abs_det_jacobian(self, z: f64) -> (f64, f64) {
        match self {
            Coordinate::Interval { low, high } => {
                // ln(high − low) + ln σ(z) + ln σ(−z); d/dz = 1 − 2σ(z).
                let s = Support::Interval { low, high };
                let sig = 1.0 / (1.0 + (-z).exp());
                (s.log_abs_det_jacobian(z), 1.0 - 2.0 * sig)
            }
            Coordinate::Positive => (z, 1.0),
            Coordinate::Affine { scale, .. } => (scale.abs().ln(), 0.0),
        }
    }
}

/// The bijection between a prior's support and ℝᴰ used by the MCMC posteriors and by MAP
/// search.
///
/// ```
/// use simfer_distributions::{BoxUniform, UnconstrainedTransform};
///
/// let prior = BoxUniform::uniform(2, -2.0, 2.0)?;
/// let t = UnconstrainedTransform::for_prior(&prior);
/// let z = t.to_unconstrained(&[0.0, 1.0])?;
/// assert!((z[0]).abs() < 1e-12); // the middle of the box maps to 0
/// let (theta, _) = t.from_unconstrained(&z)?;
/// assert!((theta[1] - 1.0).abs() < 1e-12);
/// # Ok::<(), simfer_distributions::DistributionError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UnconstrainedTransform {
    coordinates: Vec<Coordinate>,
}

impl UnconstrainedTransform {
    /// The transform of `prior`: from its support, and for real dimensions its mean and
    /// standard deviation (in closed form, or estimated from 1000 draws with a fixed seed).
    pub fn for_prior(prior: &dyn Prior) -> Self {
        let support = prior.support();
        let needs_moments = support.iter().any(|s| matches!(s, Support::Real));
        let (mean, std) = if needs_moments {
            match (prior.mean(), prior.variance()) {
                (Some(m), Some(v)) => (m, v.map(f64::sqrt)),
                _ => {
                    let draws = prior.sample_batch(MOMENT_DRAWS, &mut derive_rng(0, 0));
                    let m = draws.column_mean();
                    let v = draws.column_variance();
                    (m, v.map(f64::sqrt))
                }
            }
        } else {
            (DVector::zeros(0), DVector::zeros(0))
        };
        let coordinates = support
            .iter()
            .enumerate()
            .map(|(i, s)| match *s {
                Support::Interval { low, high } => Coordinate::Interval { low, high },
                Support::Positive => Coordinate::Positive,
                Support::Real => Coordinate::Affine {
                    shift: mean
                        .get(i)
                        .copied()
                        .filter(|v| v.is_finite())
                        .unwrap_or(0.0),
                    scale: std
                        .get(i)
                        .copied()
                        .filter(|v| v.is_finite() && *v > 0.0)
                        .unwrap_or(1.0),
                },
            })
            .collect();
        UnconstrainedTransform { coordinates }
    }

    /// A transform from explicit coordinates.
    pub fn new(coordinates: Vec<Coordinate>) -> Self {
        UnconstrainedTransform { coordinates }
    }

    /// The coordinates' maps.
    pub fn coordinates(&self) -> &[Coordinate] {
        &self.coordinates
    }

    /// The dimension.
    pub fn dim(&self) -> usize {
        self.coordinates.len()
    }

    /// z of θ.
    ///
    /// # Errors
    /// [`DistributionError::DimensionMismatch`] for a θ of the wrong length.
    pub fn to_unconstrained(&self, theta: &[f64]) -> Result<Vec<f64>, DistributionError> {
        check_len("θ", self.dim(), theta.len())?;
        Ok(self
            .coordinates
            .iter()
            .zip(theta)
            .map(|(c, &t)| c.to_unconstrained(t))
            .collect())
    }

    /// θ of z, and `ln |det ∂θ/∂z|`.
    ///
    /// # Errors
    /// [`DistributionError::DimensionMismatch`] for a z of the wrong length.
    pub fn from_unconstrained(&self, z: &[f64]) -> Result<(Vec<f64>, f64), DistributionError> {
        check_len("z", self.dim(), z.len())?;
        let mut log_det = 0.0;
        let theta = self
            .coordinates
            .iter()
            .zip(z)
            .map(|(c, &v)| {
                log_det += c.log_abs_det_jacobian(v).0;
                c.from_unconstrained(v).0
            })
            .collect();
        Ok((theta, log_det))
    }

    /// θ, `dθ/dz` (the diagonal of the Jacobian) and the gradient of `ln |det ∂θ/∂z|`
    /// with respect to z, at z.
    ///
    /// # Errors
    /// [`DistributionError::DimensionMismatch`] for a z of the wrong length.
    pub fn jacobian(&self, z: &[f64]) -> Result<JacobianAt, DistributionError> {
        check_len("z", self.dim(), z.len())?;
        let mut out = JacobianAt {
            theta: Vec::with_capacity(z.len()),
            dtheta_dz: Vec::with_capacity(z.len()),
            log_det: 0.0,
            grad_log_det: Vec::with_capacity(z.len()),
        };
        for (c, &v) in self.coordinates.iter().zip(z) {
            let (t, d) = c.from_unconstrained(v);
            let (l, gl) = c.log_abs_det_jacobian(v);
            out.theta.push(t);
            out.dtheta_dz.push(d);
            out.log_det += l;
            out.grad_log_det.push(gl);
        }
        Ok(out)
    }

    /// θ of every column of z (`D × n`), and `ln |det ∂θ/∂z|` per column.
    ///
    /// # Errors
    /// [`DistributionError::DimensionMismatch`] if z does not have `D` rows.
    pub fn from_unconstrained_batch(
        &self,
        z: &DMatrix<f64>,
    ) -> Result<(DMatrix<f64>, DVector<f64>), DistributionError> {
        check_len("rows of z", self.dim(), z.nrows())?;
        let d = self.dim();
        let mut theta = DMatrix::zeros(d, z.ncols());
        let mut log_det = DVector::zeros(z.ncols());
        for j in 0..z.ncols() {
            for (i, c) in self.coordinates.iter().enumerate() {
                let v = z[(i, j)];
                theta[(i, j)] = c.from_unconstrained(v).0;
                log_det[j] += c.log_abs_det_jacobian(v).0;
            }
        }
        Ok((theta, log_det))
    }

    /// z of every column of θ (`D × n`).
    ///
    /// # Errors
    /// [`DistributionError::DimensionMismatch`] if θ does not have `D` rows.
    pub fn to_unconstrained_batch(
        &self,
        theta: &DMatrix<f64>,
    ) -> Result<DMatrix<f64>, DistributionError> {
        check_len("rows of θ", self.dim(), theta.nrows())?;
        Ok(DMatrix::from_fn(theta.nrows(), theta.ncols(), |i, j| {
            self.coordinates[i].to_unconstrained(theta[(i, j)])
        }))
    }
}

/// The transform's value and derivatives at one point (see
/// [`UnconstrainedTransform::jacobian`]).
#[derive(Clone, Debug, PartialEq)]
pub struct JacobianAt {
    /// θ.
    pub theta: Vec<f64>,
    /// `dθᵢ/dzᵢ`.
    pub dtheta_dz: Vec<f64>,
    /// `ln |det ∂θ/∂z|`.
    pub log_det: f64,
    /// `∂ ln |det ∂θ/∂z| / ∂zᵢ`.
    pub grad_log_det: Vec<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BoxUniform, Independent, LogNormal, MultivariateNormal};

    fn prior() -> Independent {
        Independent::new(vec![
            Box::new(BoxUniform::new(vec![-1.0], vec![3.0]).unwrap()),
            Box::new(LogNormal::new(vec![0.2], vec![0.5]).unwrap()),
            Box::new(MultivariateNormal::new(vec![1.0], DMatrix::from_element(1, 1, 4.0)).unwrap()),
        ])
        .unwrap()
    }

    #[test]
    fn round_trips_and_the_jacobian_matches_central_differences() {
        let t = UnconstrainedTransform::for_prior(&prior());
        assert_eq!(
            t.coordinates()[2],
            Coordinate::Affine {
                shift: 1.0,
                scale: 2.0
            }
        );
        for z in [[-2.0, 0.3, 1.5], [0.0, -1.0, -0.7], [3.0, 2.0, 0.1]] {
            let (theta, log_det) = t.from_unconstrained(&z).unwrap();
            let back = t.to_unconstrained(&theta).unwrap();
            for i in 0..3 {
                assert!(
                    (back[i] - z[i]).abs() < 1e-10,
                    "{z:?} → {theta:?} → {back:?}"
                );
            }
            let jac = t.jacobian(&z).unwrap();
            assert_eq!(jac.theta, theta);
            assert!((jac.log_det - log_det).abs() < 1e-15);
            let h = 1e-6;
            let mut fd_log_det = 0.0;
            for i in 0..3 {
                let (mut zp, mut zm) = (z, z);
                zp[i] += h;
                zm[i] -= h;
                let (tp, lp) = t.from_unconstrained(&zp).unwrap();
                let (tm, lm) = t.from_unconstrained(&zm).unwrap();
                let d = (tp[i] - tm[i]) / (2.0 * h);
                assert!(
                    (d - jac.dtheta_dz[i]).abs() < 1e-7 * (1.0 + d.abs()),
                    "dθ/dz {i}"
                );
                let g = (lp - lm) / (2.0 * h);
                assert!((g - jac.grad_log_det[i]).abs() < 1e-6, "∂ log det / ∂z {i}");
                fd_log_det += (d.abs()).ln();
            }
            assert!(
                (fd_log_det - log_det).abs() < 1e-6,
                "log det {fd_log_det} vs {log_det}"
            );
        }
    }

    #[test]
    fn a_density_moved_to_unconstrained_space_still_integrates_to_one() {
        // ∫ p(θ(z)) |dθ/dz| dz = 1 for each 1-D prior.
        let priors: Vec<Box<dyn Prior>> = vec![
            Box::new(BoxUniform::new(vec![-1.0], vec![3.0]).unwrap()),
            Box::new(LogNormal::new(vec![0.2], vec![0.5]).unwrap()),
        ];
        for p in priors {
            let t = UnconstrainedTransform::for_prior(p.as_ref());
            let (lo, hi, m) = (-30.0, 30.0, 60_000);
            let h = (hi - lo) / m as f64;
            let mass: f64 = (0..m)
                .map(|k| {
                    let z = lo + h * (k as f64 + 0.5);
                    let (theta, log_det) = t.from_unconstrained(&[z]).unwrap();
                    (p.log_prob(&theta).unwrap() + log_det).exp() * h
                })
                .sum();
            assert!((mass - 1.0).abs() < 1e-6, "{p:?}: {mass}");
        }
    }

    #[test]
    fn priors_without_closed_form_moments_are_standardized_from_draws() {
        #[derive(Debug)]
        struct NoMoments(MultivariateNormal);
        impl Prior for NoMoments {
            fn dim(&self) -> usize {
                1
            }
            fn sample(&self, rng: &mut dyn rand::RngCore) -> DVector<f64> {
                self.0.sample(rng)
            }
            fn log_prob(&self, theta: &[f64]) -> Result<f64, DistributionError> {
                self.0.log_prob(theta)
            }
            fn support(&self) -> Vec<Support> {
                vec![Support::Real]
            }
        }
        let p = NoMoments(
            MultivariateNormal::new(vec![5.0], DMatrix::from_element(1, 1, 9.0)).unwrap(),
        );
        let Coordinate::Affine { shift, scale } =
            UnconstrainedTransform::for_prior(&p).coordinates()[0]
        else {
            panic!("expected an affine coordinate");
        };
        // 1000 draws: the mean within 4 standard errors (3/√1000), the std within 10 %.
        assert!((shift - 5.0).abs() < 4.0 * 3.0 / 1000f64.sqrt(), "{shift}");
        assert!((scale - 3.0).abs() < 0.3, "{scale}");
        assert!(
            UnconstrainedTransform::for_prior(&p)
                .to_unconstrained(&[1.0, 2.0])
                .is_err()
        );
    }
}
