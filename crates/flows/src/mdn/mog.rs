//! Mixtures of Gaussians with full precision matrices: the distribution a mixture density
//! network outputs for one condition (sbi's `sbi.neural_nets.estimators.mog.MoG`).
//!
//! Component k has weight w_k = softmax(logits)_k, mean m_k, an upper-triangular
//! **precision factor** A_k with positive diagonal, and precision P_k. For the MDN,
//! P_k = A_kᵀA_k + εI with ε = [`EPSILON`]. Two densities are defined:
//!
//! ```text
//! reference:  log p(z) = logsumexp_k [ log w_k − (D/2) log 2π + Σ_d log A_k,dd
//!                                      − ½ (z − m_k)ᵀ P_k (z − m_k) ]
//! exact:      log p(z) = logsumexp_k [ log w_k − (D/2) log 2π + ½ log det P_k
//!                                      − ½ (z − m_k)ᵀ P_k (z − m_k) ]
//! ```
//!
//! The reference's normaliser Σ log A_k,dd = ½ log det(A_kᵀA_k) ignores the +εI of the
//! quadratic form, so its density integrates to
//! `Σ_k w_k √(det(A_kᵀA_k) / det(A_kᵀA_k + εI)) < 1` ([`Mixture::reference_mass`]);
//! the exact one integrates to 1. Sampling follows the reference too: k ~ Categorical(w),
//! ε ~ N(0, I), z = m_k + A_k⁻¹ε, so the samples' component covariance is (A_kᵀA_k)⁻¹
//! (again without ε; [`Mixture::mean`] and [`Mixture::covariance`] are the moments of
//! that sampling distribution).

use nalgebra::{DMatrix, DVector};
use rand::{Rng, RngCore};
use rand_distr::{Distribution, StandardNormal};

use crate::FlowError;

/// The ε added to the diagonal of every component's precision, A_kᵀA_k + εI (the
/// reference's `MultivariateGaussianMDN(epsilon=1e-4)`).
pub const EPSILON: f64 = 1e-4;

/// `ln 2π`.
pub(crate) const LN_2PI: f64 = 1.837_877_066_409_345_5;

/// A mixture of Gaussians over ℝ^D with normalized log-weights, means, upper-triangular
/// precision factors A_k and precisions P_k (see the [module docs](self)).
///
/// ```
/// use nalgebra::{DMatrix, DVector};
/// use simfer_flows::mdn::{EPSILON, Mixture};
///
/// // Two components in 1-D: N(−1, 1/4) and N(2, 1), weights 1/4 and 3/4 (up to ε).
/// let mix = Mixture::new(
///     vec![(0.25f64).ln(), (0.75f64).ln()],
///     vec![DVector::from_element(1, -1.0), DVector::from_element(1, 2.0)],
///     vec![DMatrix::from_element(1, 1, 2.0), DMatrix::from_element(1, 1, 1.0)],
///     EPSILON,
/// )?;
/// assert!((mix.mean()[0] - 1.25).abs() < 1e-12);
/// assert!(mix.log_prob(&[0.0])? < mix.log_prob_exact(&[0.0])?);
/// # Ok::<(), simfer_flows::FlowError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Mixture {
    dim: usize,
    log_weights: Vec<f64>,
    means: Vec<DVector<f64>>,
    factors: Vec<DMatrix<f64>>,
    precisions: Vec<DMatrix<f64>>,
    /// log det P_k.
    log_dets: Vec<f64>,
}

/// `logits − logsumexp(logits)`.
pub(crate) fn log_softmax(logits: &[f64]) -> Vec<f64> {
    let lse = logsumexp(logits);
    logits.iter().map(|l| l - lse).collect()
}

/// `log Σ exp(v)`, stable; −∞ for an empty slice.
pub(crate) fn logsumexp(v: &[f64]) -> f64 {
    let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !max.is_finite() {
        return max;
    }
    max + v.iter().map(|x| (x - max).exp()).sum::<f64>().ln()
}

impl Mixture {
    /// A mixture from unnormalized `logits` (K), means (K vectors of length D) and
    /// upper-triangular precision factors A_k (K matrices D × D with positive diagonal);
    /// the precisions are A_kᵀA_k + `epsilon`·I (the MDN's: [`EPSILON`]).
    ///
    /// Errors on inconsistent shapes, no component, non-finite values, a factor that is not
    /// upper triangular or has a non-positive diagonal, or a negative `epsilon`.
    pub fn new(
        logits: Vec<f64>,
        means: Vec<DVector<f64>>,
        factors: Vec<DMatrix<f64>>,
        epsilon: f64,
    ) -> Result<Mixture, FlowError> {
        if !(epsilon >= 0.0 && epsilon.is_finite()) {
            return Err(FlowError::InvalidConfig(format!(
                "the precision's diagonal offset must be finite and non-negative, found {epsilon}"
            )));
        }
        let dim = check_shapes(&logits, &means, factors.len())?;
        for (k, a) in factors.iter().enumerate() {
            check_square(a, dim, "precision factors")?;
            for c in 0..dim {
                for r in 0..dim {
                    let v = a[(r, c)];
                    if !v.is_finite() {
                        return Err(FlowError::NonFinite("a mixture's precision factors"));
                    }
                    if r > c && v != 0.0 {
                        return Err(FlowError::InvalidConfig(format!(
                            "precision factor {k} must be upper triangular, found {v} at ({r}, {c})"
                        )));
                    }
                }
                if a[(c, c)] <= 0.0 {
                    return Err(FlowError::InvalidConfig(format!(
                        "precision factor {k} must have a positive diagonal, found {} at ({c}, {c})",
                        a[(c, c)]
                    )));
                }
            }
        }
        let precisions = factors
            .iter()
            .map(|a| {
                let mut p = a.transpose() * a;
                for d in 0..dim {
                    p[(d, d)] += epsilon;
                }
                p
            })
            .collect::<Vec<_>>();
        Mixture::assemble(dim, &logits, means, factors, precisions)
    }

    fn assemble(
        dim: usize,
        logits: &[f64],
        means: Vec<DVector<f64>>,
        factors: Vec<DMatrix<f64>>,
        precisions: Vec<DMatrix<f64>>,
    ) -> Result<Mixture, FlowError> {
        let log_dets: Vec<f64> = precisions.iter().map(log_det_spd).collect();
        if let Some(k) = log_dets.iter().position(|v| !v.is_finite()) {
            return Err(FlowError::InvalidConfig(format!(
                "precision {k} is not positive definite (in floating point)"
            )));
        }
        Ok(Mixture {
            dim,
            log_weights: log_softmax(logits),
            means,
            factors,
            precisions,
            log_dets,
        })
    }

    /// A mixture from unnormalized `logits`, means and symmetric positive definite
    /// precisions; the factors are their Cholesky factors A_k = Lᵀ (so A_kᵀA_k = P_k
    /// exactly and both normalisers agree). Errors if a precision is not symmetric positive
    /// definite.
    pub fn from_precisions(
        logits: Vec<f64>,
        means: Vec<DVector<f64>>,
        precisions: Vec<DMatrix<f64>>,
    ) -> Result<Mixture, FlowError> {
        let dim = check_shapes(&logits, &means, precisions.len())?;
        let mut factors = Vec::with_capacity(precisions.len());
        for (k, p) in precisions.iter().enumerate() {
            check_square(p, dim, "precisions")?;
            if p.iter().any(|v| !v.is_finite()) {
                return Err(FlowError::NonFinite("a mixture's precisions"));
            }
            let sym = (0..dim).all(|r| {
                (0..dim).all(|c| {
                    (p[(r, c)] - p[(c, r)]).abs() <= 1e-12 * (p[(r, c)].abs() + p[(c, r)].abs())
                })
            });
            let chol = if sym { p.clone().cholesky() } else { None };
            let Some(chol) = chol else {
                return Err(FlowError::InvalidConfig(format!(
                    "precision {k} must be symmetric positive definite"
                )));
            };
            factors.push(chol.l().transpose());
        }
        Mixture::assemble(dim, &logits, means, factors, precisions)
    }

    /// The dimension D.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The number of components K.
    pub fn num_components(&self) -> usize {
        self.log_weights.len()
    }

    /// The normalized log-weights log w_k.
    pub fn log_weights(&self) -> &[f64] {
        &self.log_weights
    }

    /// The weights w_k (summing to 1).
    pub fn weights(&self) -> Vec<f64> {
        self.log_weights.iter().map(|l| l.exp()).collect()
    }

    /// The means m_k.
    pub fn means(&self) -> &[DVector<f64>] {
        &self.means
    }

    /// The upper-triangular precision factors A_k.
    pub fn factors(&self) -> &[DMatrix<f64>] {
        &self.factors
    }

    /// The precisions P_k (for an MDN A_kᵀA_k + εI).
    pub fn precisions(&self) -> &[DMatrix<f64>] {
        &self.precisions
    }

    /// log det P_k of every component.
    pub fn log_det_precisions(&self) -> &[f64] {
        &self.log_dets
    }

    fn check_point(&self, z: &[f64]) -> Result<(), FlowError> {
        if z.len() != self.dim {
            return Err(FlowError::dims(
                "point (the mixture's dimension)",
                self.dim,
                z.len(),
            ));
        }
        Ok(())
    }

    fn log_prob_with(&self, z: &[f64], exact: bool) -> Result<f64, FlowError> {
        self.check_point(z)?;
        let d = self.dim;
        let terms: Vec<f64> = (0..self.num_components())
            .map(|k| {
                let delta = DVector::from_iterator(d, (0..d).map(|i| z[i] - self.means[k][i]));
                let quad = delta.dot(&(&self.precisions[k] * &delta));
                let norm = if exact {
                    0.5 * self.log_dets[k]
                } else {
                    (0..d).map(|i| self.factors[k][(i, i)].ln()).sum()
                };
                self.log_weights[k] - 0.5 * d as f64 * LN_2PI + norm - 0.5 * quad
            })
            .collect();
        Ok(logsumexp(&terms))
    }

    /// The log-density with the reference's normaliser Σ log A_k,dd (what the MDN's
    /// `log_prob` uses; it integrates to [`reference_mass`](Self::reference_mass)).
    pub fn log_prob(&self, z: &[f64]) -> Result<f64, FlowError> {
        self.log_prob_with(z, false)
    }

    /// The normalized log-density, with ½ log det P_k as the normaliser.
    pub fn log_prob_exact(&self, z: &[f64]) -> Result<f64, FlowError> {
        self.log_prob_with(z, true)
    }

    /// The total mass of the reference density [`log_prob`](Self::log_prob):
    /// `Σ_k w_k √(det(A_kᵀA_k) / det P_k)` (1 when P_k = A_kᵀA_k, slightly below with the
    /// MDN's +εI).
    pub fn reference_mass(&self) -> f64 {
        (0..self.num_components())
            .map(|k| {
                let a = &self.factors[k];
                let log_det_ata: f64 = (0..self.dim).map(|i| 2.0 * a[(i, i)].ln()).sum();
                let l = self.log_weights[k] + 0.5 * (log_det_ata - self.log_dets[k]);
                l.exp()
            })
            .sum()
    }

    /// Covariance (A_kᵀA_k)⁻¹ = A_k⁻¹A_k⁻ᵀ of component k's samples.
    pub fn sample_covariance_of(&self, k: usize) -> DMatrix<f64> {
        let inv = upper_inverse(&self.factors[k]);
        &inv * inv.transpose()
    }

    /// The mean Σ_k w_k m_k.
    pub fn mean(&self) -> DVector<f64> {
        let mut m = DVector::zeros(self.dim);
        for (lw, mk) in self.log_weights.iter().zip(&self.means) {
            m += mk * lw.exp();
        }
        m
    }

    /// The covariance of the sampling distribution, Σ_k w_k [(A_kᵀA_k)⁻¹ + m_k m_kᵀ] − m mᵀ.
    pub fn covariance(&self) -> DMatrix<f64> {
        let m = self.mean();
        let mut c = DMatrix::zeros(self.dim, self.dim);
        for k in 0..self.num_components() {
            let w = self.log_weights[k].exp();
            c += (self.sample_covariance_of(k) + &self.means[k] * self.means[k].transpose()) * w;
        }
        c - &m * m.transpose()
    }

    /// The mixture of v = scale ⊙ u + shift for u from this mixture: means scale ⊙ m_k +
    /// shift, factors A_k S⁻¹ and precisions S⁻¹P_kS⁻¹ with S = diag(scale), weights
    /// unchanged. E.g. an MDN's mixture in its standardized space, with the input
    /// standardization's std and mean, gives the mixture over the input itself.
    pub fn affine(&self, scale: &[f64], shift: &[f64]) -> Result<Mixture, FlowError> {
        let d = self.dim;
        if scale.len() != d || shift.len() != d {
            return Err(FlowError::dims(
                "scale and shift (the mixture's dimension)",
                d,
                format!("{} and {}", scale.len(), shift.len()),
            ));
        }
        if scale.iter().chain(shift).any(|v| !v.is_finite()) || scale.iter().any(|s| *s <= 0.0) {
            return Err(FlowError::InvalidConfig(
                "an affine map needs finite shifts and positive finite scales".into(),
            ));
        }
        let means = self
            .means
            .iter()
            .map(|m| DVector::from_iterator(d, (0..d).map(|i| scale[i] * m[i] + shift[i])))
            .collect();
        let factors = self
            .factors
            .iter()
            .map(|a| DMatrix::from_fn(d, d, |r, c| a[(r, c)] / scale[c]))
            .collect();
        let precisions = self
            .precisions
            .iter()
            .map(|p| DMatrix::from_fn(d, d, |r, c| p[(r, c)] / (scale[r] * scale[c])))
            .collect();
        let log_s: f64 = scale.iter().map(|s| s.ln()).sum();
        Ok(Mixture {
            dim: d,
            log_weights: self.log_weights.clone(),
            means,
            factors,
            precisions,
            log_dets: self.log_dets.iter().map(|l| l - 2.0 * log_s).collect(),
        })
    }

    /// `n` samples (`D × n`), as the reference draws them: first the `n` components
    /// (categorical draws by inversion of one uniform each), then for each sample in turn
    /// `D` standard normals ε and z = m_k + A_k⁻¹ε. The draws come from `rng` in this fixed
    /// order.
    pub fn sample(&self, n: usize, rng: &mut dyn RngCore) -> DMatrix<f64> {
        let comps = self.sample_components(n, rng);
        let d = self.dim;
        let mut out = DMatrix::zeros(d, n);
        let mut eps = vec![0.0; d];
        for (j, &k) in comps.iter().enumerate() {
            for e in eps.iter_mut() {
                *e = StandardNormal.sample(rng);
            }
            let a = &self.factors[k];
            // Back substitution: A x = ε.
            for r in (0..d).rev() {
                let mut s = eps[r];
                for c in r + 1..d {
                    s -= a[(r, c)] * out[(c, j)];
                }
                out[(r, j)] = s / a[(r, r)];
            }
            for r in 0..d {
                out[(r, j)] += self.means[k][r];
            }
        }
        out
    }

    /// `n` component indices drawn by inverting the weights' CDF at one uniform each.
    pub(crate) fn sample_components(&self, n: usize, rng: &mut dyn RngCore) -> Vec<usize> {
        let mut cdf = Vec::with_capacity(self.num_components());
        let mut acc = 0.0;
        for lw in &self.log_weights {
            acc += lw.exp();
            cdf.push(acc);
        }
        // The last component with positive weight takes what rounding leaves at the top.
        let last = self
            .log_weights
            .iter()
            .rposition(|l| *l > f64::NEG_INFINITY)
            .unwrap_or(0);
        (0..n)
            .map(|_| {
                let u = rng.random::<f64>() * acc;
                cdf.iter().position(|c| u < *c).unwrap_or(last).min(last)
            })
            .collect()
    }
}

fn check_shapes(
    logits: &[f64],
    means: &[DVector<f64>],
    num_matrices: usize,
) -> Result<usize, FlowError> {
    let k = logits.len();
    if k == 0 {
        return Err(FlowError::InvalidConfig(
            "a mixture needs at least one component, found 0".into(),
        ));
    }
    if means.len() != k || num_matrices != k {
        return Err(FlowError::dims(
            "number of means and matrices (one per logit)",
            k,
            format!("{} and {}", means.len(), num_matrices),
        ));
    }
    let dim = means[0].len();
    if dim == 0 {
        return Err(FlowError::dims("mixture dimension", "at least 1", 0));
    }
    if let Some(m) = means.iter().find(|m| m.len() != dim) {
        return Err(FlowError::dims("length of every mean", dim, m.len()));
    }
    if logits.iter().any(|v| !v.is_finite()) || means.iter().flatten().any(|v| !v.is_finite()) {
        return Err(FlowError::NonFinite("a mixture's logits or means"));
    }
    Ok(dim)
}

fn check_square(m: &DMatrix<f64>, dim: usize, what: &'static str) -> Result<(), FlowError> {
    if m.shape() != (dim, dim) {
        return Err(FlowError::dims(
            what,
            format!("{dim} × {dim}"),
            format!("{} × {}", m.nrows(), m.ncols()),
        ));
    }
    Ok(())
}

/// `log det P` of a symmetric positive definite matrix (NaN if it is not).
fn log_det_spd(p: &DMatrix<f64>) -> f64 {
    match p.clone().cholesky() {
        Some(ch) => 2.0 * ch.l().diagonal().iter().map(|v| v.ln()).sum::<f64>(),
        None => f64::NAN,
    }
}

/// The inverse of an upper-triangular matrix with non-zero diagonal.
fn upper_inverse(a: &DMatrix<f64>) -> DMatrix<f64> {
    let d = a.nrows();
    let mut inv = DMatrix::zeros(d, d);
    for col in 0..d {
        // Solve A x = e_col.
        for r in (0..d).rev() {
            let mut s = if r == col { 1.0 } else { 0.0 };
            for c in r + 1..d {
                s -= a[(r, c)] * inv[(c, col)];
            }
            inv[(r, col)] = s / a[(r, r)];
        }
    }
    inv
}
