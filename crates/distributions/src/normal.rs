//! The multivariate normal distribution.

use nalgebra::{Cholesky, DMatrix, DVector};
use rand::RngCore;
use rand_distr::{Distribution, StandardNormal};

use crate::error::{check_finite, check_len, check_positive};
use crate::prior::check_batch_rows;
use crate::{DistributionError, HALF_LN_2PI, Prior, PriorSpec, Support};

/// How the distribution was parametrized, with the lower Cholesky factor of that matrix.
#[derive(Clone, Debug, PartialEq)]
enum Factor {
    /// `L` with covariance `Σ = L Lᵀ`: sample `μ + L z`, whiten with `L⁻¹(θ − μ)`.
    Covariance(DMatrix<f64>),
    /// `L` with precision `Λ = L Lᵀ`: sample `μ + L⁻ᵀ z`, whiten with `Lᵀ(θ − μ)`.
    Precision(DMatrix<f64>),
}

/// The multivariate normal `N(μ, Σ)`, given by its covariance or by its precision `Λ = Σ⁻¹`.
///
/// Both parametrizations are exact: the precision form factorizes `Λ` itself and never
/// inverts it for sampling or densities.
/// `ln p(θ) = −D/2 ln 2π − ½ ln det Σ − ½ (θ − μ)ᵀ Σ⁻¹ (θ − μ)`.
///
/// ```
/// use nalgebra::DMatrix;
/// use simfer_distributions::{MultivariateNormal, Prior};
/// let cov = DMatrix::from_row_slice(2, 2, &[2.0, 0.5, 0.5, 1.0]);
/// let prior = MultivariateNormal::new(vec![1.0, -1.0], cov)?;
/// assert_eq!(prior.variance().unwrap().as_slice(), &[2.0, 1.0]);
/// // A matrix that is not positive definite is an error, not a panic.
/// let bad = DMatrix::from_row_slice(2, 2, &[1.0, 2.0, 2.0, 1.0]);
/// assert!(MultivariateNormal::new(vec![0.0, 0.0], bad).is_err());
/// # Ok::<(), simfer_distributions::DistributionError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct MultivariateNormal {
    loc: DVector<f64>,
    /// The covariance or precision matrix as given (symmetrized).
    matrix: DMatrix<f64>,
    factor: Factor,
    /// `Lᵀ` of the precision form (whitening is a product with it).
    factor_t: DMatrix<f64>,
    variance: DVector<f64>,
    /// `−D/2 ln 2π − ½ ln det Σ`.
    log_norm: f64,
}

/// Validates a symmetric positive-definite matrix and returns its Cholesky factorization.
fn factorize(
    what: &'static str,
    dim: usize,
    m: &DMatrix<f64>,
) -> Result<(DMatrix<f64>, Cholesky<f64, nalgebra::Dyn>), DistributionError> {
    if m.nrows() != dim || m.ncols() != dim {
        return Err(DistributionError::ShapeMismatch {
            what,
            expected_rows: dim,
            expected_cols: dim,
            rows: m.nrows(),
            cols: m.ncols(),
        });
    }
    let row_major: Vec<f64> = m.transpose().as_slice().to_vec();
    check_finite(what, &row_major)?;
    let scale = m.amax();
    for r in 0..dim {
        for c in r + 1..dim {
            let (upper, lower) = (m[(r, c)], m[(c, r)]);
            if (upper - lower).abs() > 1e-10 * scale {
                return Err(DistributionError::NotSymmetric {
                    what,
                    row: r,
                    col: c,
                    upper,
                    lower,
                });
            }
        }
    }
    let sym = (m + m.transpose()) * 0.5;
    let chol = Cholesky::new(sym.clone()).ok_or(DistributionError::NotPositiveDefinite { what })?;
    if chol
        .l_dirty()
        .diagonal()
        .iter()
        .any(|&v| v.is_nan() || v <= 0.0)
    {
        return Err(DistributionError::NotPositiveDefinite { what });
    }
    Ok((sym, chol))
}

impl MultivariateNormal {
    /// `N(mean, covariance)`.
    ///
    /// # Errors
    /// Empty or mismatched mean, a non-square, non-finite, non-symmetric or not positive
    /// definite covariance.
    pub fn new(mean: Vec<f64>, covariance: DMatrix<f64>) -> Result<Self, DistributionError> {
        let loc = Self::check_mean(mean)?;
        let (matrix, chol) = factorize("covariance", loc.len(), &covariance)?;
        let l = chol.l();
        let variance = matrix.diagonal();
        let log_norm = -(loc.len() as f64) * HALF_LN_2PI - l.diagonal().map(f64::ln).sum();
        Ok(Self {
            loc,
            matrix,
            factor_t: DMatrix::zeros(0, 0),
            factor: Factor::Covariance(l),
            variance,
            log_norm,
        })
    }

    /// `N(mean, precision⁻¹)`: a Gaussian given by its precision matrix (as the
    /// bernoulli_glm prior is).
    ///
    /// # Errors
    /// As [`new`](Self::new), for the precision matrix.
    pub fn from_precision(
        mean: Vec<f64>,
        precision: DMatrix<f64>,
    ) -> Result<Self, DistributionError> {
        let loc = Self::check_mean(mean)?;
        let (matrix, chol) = factorize("precision", loc.len(), &precision)?;
        let l = chol.l();
        let variance = chol.inverse().diagonal();
        let log_norm = -(loc.len() as f64) * HALF_LN_2PI + l.diagonal().map(f64::ln).sum();
        Ok(Self {
            loc,
            matrix,
            factor_t: l.transpose(),
            factor: Factor::Precision(l),
            variance,
            log_norm,
        })
    }

    /// Independent normals `N(mean_d, variance_d)`.
    ///
    /// # Errors
    /// Empty or mismatched vectors, non-finite values, or a variance `<= 0`.
    pub fn diagonal(mean: Vec<f64>, variance: Vec<f64>) -> Result<Self, DistributionError> {
        check_len(
            "MultivariateNormal: variance (must match mean)",
            mean.len(),
            variance.len(),
        )?;
        check_positive("variance", &variance)?;
        Self::new(mean, DMatrix::from_diagonal(&DVector::from_vec(variance)))
    }

    /// `N(mean, variance · I)`.
    ///
    /// # Errors
    /// As [`diagonal`](Self::diagonal).
    pub fn isotropic(mean: Vec<f64>, variance: f64) -> Result<Self, DistributionError> {
        let d = mean.len();
        Self::diagonal(mean, vec![variance; d])
    }

    fn check_mean(mean: Vec<f64>) -> Result<DVector<f64>, DistributionError> {
        if mean.is_empty() {
            return Err(DistributionError::Empty {
                what: "MultivariateNormal mean",
            });
        }
        check_finite("mean", &mean)?;
        Ok(DVector::from_vec(mean))
    }

    /// The mean μ.
    pub fn loc(&self) -> &DVector<f64> {
        &self.loc
    }

    /// The covariance Σ (computed by inversion for the precision form).
    pub fn covariance(&self) -> DMatrix<f64> {
        match &self.factor {
            Factor::Covariance(_) => self.matrix.clone(),
            Factor::Precision(l) => Cholesky::pack_dirty(l.clone()).inverse(),
        }
    }

    /// The precision Σ⁻¹ (computed by inversion for the covariance form).
    pub fn precision(&self) -> DMatrix<f64> {
        match &self.factor {
            Factor::Covariance(l) => Cholesky::pack_dirty(l.clone()).inverse(),
            Factor::Precision(_) => self.matrix.clone(),
        }
    }

    /// Turns a `D × n` block of standard normals into draws, in place.
    fn transform_standard(&self, z: &mut DMatrix<f64>) {
        match &self.factor {
            Factor::Covariance(l) => *z = l * &*z,
            Factor::Precision(l) => {
                let ok = l.tr_solve_lower_triangular_mut(z);
                debug_assert!(ok, "Cholesky factor has a zero on its diagonal");
            }
        }
        for mut col in z.column_iter_mut() {
            col += &self.loc;
        }
    }

    /// Whitens a `D × n` block of `θ − μ` in place and returns the half squared norms.
    fn log_prob_of_centered(&self, mut diff: DMatrix<f64>) -> DVector<f64> {
        match &self.factor {
            Factor::Covariance(l) => {
                let ok = l.solve_lower_triangular_mut(&mut diff);
                debug_assert!(ok, "Cholesky factor has a zero on its diagonal");
            }
            Factor::Precision(_) => diff = &self.factor_t * diff,
        }
        DVector::from_iterator(
            diff.ncols(),
            diff.column_iter()
                .map(|c| self.log_norm - 0.5 * c.norm_squared()),
        )
    }
}

impl Prior for MultivariateNormal {
    fn dim(&self) -> usize {
        self.loc.len()
    }

    fn sample(&self, rng: &mut dyn RngCore) -> DVector<f64> {
        let mut z = DMatrix::from_fn(self.dim(), 1, |_, _| StandardNormal.sample(rng));
        self.transform_standard(&mut z);
        z.column(0).into_owned()
    }

    fn sample_batch(&self, n: usize, rng: &mut dyn RngCore) -> DMatrix<f64> {
        let d = self.dim();
        let mut z = DMatrix::zeros(d, n);
        for v in z.as_mut_slice() {
            *v = StandardNormal.sample(rng);
        }
        self.transform_standard(&mut z);
        z
    }

    fn log_prob(&self, theta: &[f64]) -> Result<f64, DistributionError> {
        check_len("θ", self.dim(), theta.len())?;
        if theta.iter().any(|v| !v.is_finite()) {
            return Ok(f64::NEG_INFINITY);
        }
        let diff = DMatrix::from_iterator(
            self.dim(),
            1,
            theta.iter().zip(self.loc.iter()).map(|(t, m)| t - m),
        );
        Ok(self.log_prob_of_centered(diff)[0])
    }

    fn log_prob_batch(&self, theta: &DMatrix<f64>) -> Result<DVector<f64>, DistributionError> {
        check_batch_rows(self.dim(), theta)?;
        let mut diff = theta.clone();
        for mut col in diff.column_iter_mut() {
            col -= &self.loc;
        }
        let mut out = self.log_prob_of_centered(diff);
        for (j, col) in theta.column_iter().enumerate() {
            if col.iter().any(|v| !v.is_finite()) {
                out[j] = f64::NEG_INFINITY;
            }
        }
        Ok(out)
    }

    /// `−Σ⁻¹(θ − μ)`.
    fn grad_log_prob(&self, theta: &[f64]) -> Result<Vec<f64>, DistributionError> {
        check_len("θ", self.dim(), theta.len())?;
        let mut diff = DMatrix::from_iterator(
            self.dim(),
            1,
            theta.iter().zip(self.loc.iter()).map(|(t, m)| t - m),
        );
        let pd = match &self.factor {
            Factor::Covariance(l) => {
                // Σ = LLᵀ: Σ⁻¹d = L⁻ᵀ(L⁻¹d).
                let ok = l.solve_lower_triangular_mut(&mut diff)
                    && l.tr_solve_lower_triangular_mut(&mut diff);
                debug_assert!(ok, "Cholesky factor has a zero on its diagonal");
                diff
            }
            // P = L Lᵀ with Lᵀ stored: Pd = (Lᵀ)ᵀ(Lᵀd).
            Factor::Precision(_) => self.factor_t.transpose() * (&self.factor_t * diff),
        };
        Ok(pd.iter().map(|v| -v).collect())
    }

    fn support(&self) -> Vec<Support> {
        vec![Support::Real; self.dim()]
    }

    fn in_support(&self, theta: &[f64]) -> bool {
        theta.len() == self.dim() && theta.iter().all(|v| v.is_finite())
    }

    fn mean(&self) -> Option<DVector<f64>> {
        Some(self.loc.clone())
    }

    fn variance(&self) -> Option<DVector<f64>> {
        Some(self.variance.clone())
    }

    fn spec(&self) -> PriorSpec {
        let rows = self
            .matrix
            .row_iter()
            .map(|r| r.iter().copied().collect())
            .collect();
        let mean = self.loc.as_slice().to_vec();
        match self.factor {
            Factor::Covariance(_) => PriorSpec::MultivariateNormal {
                mean,
                covariance: rows,
            },
            Factor::Precision(_) => PriorSpec::GaussianPrecision {
                mean,
                precision: rows,
            },
        }
    }
}
