//! Potentials: unnormalized log posteriors over θ for one observation, the objects that
//! MCMC, rejection sampling and MAP search work on (the reference's
//! `sbi.inference.potentials`).
//!
//! * [`EstimatorPotential`]: log q(θ | x_o) of a posterior estimator (NPE), −∞ outside
//!   the prior's support;
//! * [`LikelihoodPotential`]: Σ_j log q(x_o,j | θ) + log p(θ) of a likelihood estimator
//!   (NLE), the columns of x_o taken as independent trials;
//! * [`RatioPotential`]: Σ_j f(θ, x_o,j) + log p(θ) of a ratio classifier (NRE).

use std::sync::Arc;

use nalgebra::{DMatrix, DVector};
use simfer_distributions::Prior;
use simfer_flows::{ConditionalDensityEstimator, RatioClassifier};

use crate::InferenceError;

/// An unnormalized log posterior over θ for a fixed observation.
pub trait Potential: Send + Sync {
    /// Dimension of θ.
    fn theta_dim(&self) -> usize;
    /// The prior (its support bounds the potential).
    fn prior(&self) -> &Arc<dyn Prior>;
    /// `U(θ_j)` for each column of θ (`theta_dim × n`); −∞ outside the prior's support.
    fn log_potential(&self, theta: &DMatrix<f64>) -> Result<DVector<f64>, InferenceError>;
    /// `U(θ_j)` and `∇_θ U(θ_j)` (`theta_dim × n`) for each column, for points inside the
    /// prior's support.
    fn log_potential_grad(
        &self,
        theta: &DMatrix<f64>,
    ) -> Result<(DVector<f64>, DMatrix<f64>), InferenceError>;
}

fn check_rows(theta: &DMatrix<f64>, d: usize) -> Result<(), InferenceError> {
    if theta.nrows() != d {
        return Err(InferenceError::DimensionMismatch {
            what: "rows of θ (one sample per column)".into(),
            expected: d,
            found: theta.nrows(),
        });
    }
    Ok(())
}

/// Sets `U = −∞` where θ is outside the prior's support.
fn mask_support(prior: &dyn Prior, theta: &DMatrix<f64>, values: &mut DVector<f64>) {
    let d = theta.nrows();
    for (j, v) in values.iter_mut().enumerate() {
        if !prior.in_support(&theta.as_slice()[j * d..(j + 1) * d]) {
            *v = f64::NEG_INFINITY;
        }
    }
}

/// `log q(θ | x_o)` of a posterior estimator, −∞ outside the prior's support (the
/// objective of the direct posterior's MAP search; no leakage normalization, which does
/// not move the maximum).
pub struct EstimatorPotential<'a, E: ConditionalDensityEstimator> {
    estimator: &'a E,
    prior: Arc<dyn Prior>,
    x: DVector<f64>,
}

impl<'a, E: ConditionalDensityEstimator> EstimatorPotential<'a, E> {
    /// The potential of `estimator` (θ given x) at the observation `x`.
    pub fn new(estimator: &'a E, prior: Arc<dyn Prior>, x: &[f64]) -> Self {
        EstimatorPotential {
            estimator,
            prior,
            x: DVector::from_column_slice(x),
        }
    }

    fn conditions(&self, n: usize) -> DMatrix<f64> {
        DMatrix::from_fn(self.x.len(), n, |i, _| self.x[i])
    }
}

impl<E: ConditionalDensityEstimator> Potential for EstimatorPotential<'_, E> {
    fn theta_dim(&self) -> usize {
        self.estimator.input_dim()
    }
    fn prior(&self) -> &Arc<dyn Prior> {
        &self.prior
    }
    fn log_potential(&self, theta: &DMatrix<f64>) -> Result<DVector<f64>, InferenceError> {
        check_rows(theta, self.theta_dim())?;
        let mut lp = self
            .estimator
            .log_prob(theta, &self.conditions(theta.ncols()))?;
        mask_support(self.prior.as_ref(), theta, &mut lp);
        Ok(lp)
    }
    fn log_potential_grad(
        &self,
        theta: &DMatrix<f64>,
    ) -> Result<(DVector<f64>, DMatrix<f64>), InferenceError> {
        check_rows(theta, self.theta_dim())?;
        let (mut lp, g) = self
            .estimator
            .log_prob_grad_input(theta, &self.conditions(theta.ncols()))?;
        mask_support(self.prior.as_ref(), theta, &mut lp);
        Ok((lp, g))
    }
}

/// `Σ_j log q(x_o,j | θ) + log p(θ)` of a likelihood estimator q(x | θ) (input x,
/// condition θ): the potential of NLE, with the columns of `x_o` (`x_dim × trials`) as
/// independent trials (the reference's `LikelihoodBasedPotential`).
pub struct LikelihoodPotential<'a, E: ConditionalDensityEstimator> {
    estimator: &'a E,
    prior: Arc<dyn Prior>,
    x_o: DMatrix<f64>,
}

impl<'a, E: ConditionalDensityEstimator> LikelihoodPotential<'a, E> {
    /// The potential of `estimator` at the trials `x_o` (`x_dim × trials`).
    ///
    /// # Errors
    /// An `x_o` whose rows do not match the estimator's input, a non-finite value in it,
    /// or a prior whose dimension is not the estimator's condition dimension.
    pub fn new(
        estimator: &'a E,
        prior: Arc<dyn Prior>,
        x_o: DMatrix<f64>,
    ) -> Result<Self, InferenceError> {
        if x_o.nrows() != estimator.input_dim() || x_o.ncols() == 0 {
            return Err(InferenceError::DimensionMismatch {
                what: "rows of the observation (one trial per column), to match the likelihood \
                       estimator"
                    .into(),
                expected: estimator.input_dim(),
                found: x_o.nrows(),
            });
        }
        if let Some((index, &value)) = x_o.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(InferenceError::NonFiniteObservation { index, value });
        }
        if prior.dim() != estimator.condition_dim() {
            return Err(InferenceError::DimensionMismatch {
                what: "dimension of the prior, to match the likelihood estimator's condition (θ)"
                    .into(),
                expected: estimator.condition_dim(),
                found: prior.dim(),
            });
        }
        Ok(LikelihoodPotential {
            estimator,
            prior,
            x_o,
        })
    }

    /// The likelihood estimator.
    pub fn estimator(&self) -> &E {
        self.estimator
    }

    /// The trials, `x_dim × trials`.
    pub fn x_o(&self) -> &DMatrix<f64> {
        &self.x_o
    }

    /// Every (trial, θ) pair as one batch: column `j·trials + t` is trial `t` with θ_j.
    fn pairs(&self, theta: &DMatrix<f64>) -> (DMatrix<f64>, DMatrix<f64>) {
        let (n, m) = (theta.ncols(), self.x_o.ncols());
        let x = DMatrix::from_fn(self.x_o.nrows(), n * m, |i, k| self.x_o[(i, k % m)]);
        let t = DMatrix::from_fn(theta.nrows(), n * m, |i, k| theta[(i, k / m)]);
        (x, t)
    }
}

impl<E: ConditionalDensityEstimator> Potential for LikelihoodPotential<'_, E> {
    fn theta_dim(&self) -> usize {
        self.estimator.condition_dim()
    }
    fn prior(&self) -> &Arc<dyn Prior> {
        &self.prior
    }
    fn log_potential(&self, theta: &DMatrix<f64>) -> Result<DVector<f64>, InferenceError> {
        check_rows(theta, self.theta_dim())?;
        let (n, m) = (theta.ncols(), self.x_o.ncols());
        let (x, t) = self.pairs(theta);
        let lq = self.estimator.log_prob(&x, &t)?;
        let lp = self.prior.log_prob_batch(theta)?;
        Ok(DVector::from_fn(n, |j, _| {
            if lp[j] == f64::NEG_INFINITY {
                f64::NEG_INFINITY
            } else {
                lq.rows(j * m, m).sum() + lp[j]
            }
        }))
    }
    fn log_potential_grad(
        &self,
        theta: &DMatrix<f64>,
    ) -> Result<(DVector<f64>, DMatrix<f64>), InferenceError> {
        check_rows(theta, self.theta_dim())?;
        let d = self.theta_dim();
        let (n, m) = (theta.ncols(), self.x_o.ncols());
        let (x, t) = self.pairs(theta);
        let (lq, gc) = self.estimator.log_prob_grad_condition(&x, &t)?;
        let lp = self.prior.log_prob_batch(theta)?;
        let mut value = DVector::zeros(n);
        let mut grad = DMatrix::zeros(d, n);
        for j in 0..n {
            value[j] = lq.rows(j * m, m).sum() + lp[j];
            let gp = self
                .prior
                .grad_log_prob(&theta.as_slice()[j * d..(j + 1) * d])?;
            for i in 0..d {
                let mut s = gp[i];
                for k in 0..m {
                    s += gc[(i, j * m + k)];
                }
                grad[(i, j)] = s;
            }
        }
        mask_support(self.prior.as_ref(), theta, &mut value);
        Ok((value, grad))
    }
}

/// `Σ_j f(θ, x_o,j) + log p(θ)` of a ratio classifier (the potential of NRE, the
/// reference's `RatioBasedPotential`), the columns of `x_o` independent trials.
pub struct RatioPotential<'a> {
    classifier: &'a RatioClassifier,
    prior: Arc<dyn Prior>,
    x_o: DMatrix<f64>,
}

impl<'a> RatioPotential<'a> {
    /// The potential of `classifier` at the trials `x_o` (`x_dim × trials`).
    ///
    /// # Errors
    /// An `x_o` of the wrong dimension or with a non-finite value, or a prior of another
    /// dimension than θ.
    pub fn new(
        classifier: &'a RatioClassifier,
        prior: Arc<dyn Prior>,
        x_o: DMatrix<f64>,
    ) -> Result<Self, InferenceError> {
        if x_o.nrows() != classifier.x_dim() || x_o.ncols() == 0 {
            return Err(InferenceError::DimensionMismatch {
                what: "rows of the observation (one trial per column), to match the classifier"
                    .into(),
                expected: classifier.x_dim(),
                found: x_o.nrows(),
            });
        }
        if let Some((index, &value)) = x_o.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(InferenceError::NonFiniteObservation { index, value });
        }
        if prior.dim() != classifier.theta_dim() {
            return Err(InferenceError::DimensionMismatch {
                what: "dimension of the prior, to match the classifier's θ".into(),
                expected: classifier.theta_dim(),
                found: prior.dim(),
            });
        }
        Ok(RatioPotential {
            classifier,
            prior,
            x_o,
        })
    }

    fn pairs(&self, theta: &DMatrix<f64>) -> (DMatrix<f64>, DMatrix<f64>) {
        let (n, m) = (theta.ncols(), self.x_o.ncols());
        let x = DMatrix::from_fn(self.x_o.nrows(), n * m, |i, k| self.x_o[(i, k % m)]);
        let t = DMatrix::from_fn(theta.nrows(), n * m, |i, k| theta[(i, k / m)]);
        (t, x)
    }
}

impl Potential for RatioPotential<'_> {
    fn theta_dim(&self) -> usize {
        self.classifier.theta_dim()
    }
    fn prior(&self) -> &Arc<dyn Prior> {
        &self.prior
    }
    fn log_potential(&self, theta: &DMatrix<f64>) -> Result<DVector<f64>, InferenceError> {
        check_rows(theta, self.theta_dim())?;
        let (n, m) = (theta.ncols(), self.x_o.ncols());
        let (t, x) = self.pairs(theta);
        let f = self.classifier.logits(&t, &x)?;
        let lp = self.prior.log_prob_batch(theta)?;
        Ok(DVector::from_fn(n, |j, _| {
            if lp[j] == f64::NEG_INFINITY {
                f64::NEG_INFINITY
            } else {
                f.rows(j * m, m).sum() + lp[j]
            }
        }))
    }
    fn log_potential_grad(
        &self,
        theta: &DMatrix<f64>,
    ) -> Result<(DVector<f64>, DMatrix<f64>), InferenceError> {
        check_rows(theta, self.theta_dim())?;
        let d = self.theta_dim();
        let (n, m) = (theta.ncols(), self.x_o.ncols());
        let (t, x) = self.pairs(theta);
        let (f, gf) = self.classifier.logits_grad_theta(&t, &x)?;
        let lp = self.prior.log_prob_batch(theta)?;
        let mut value = DVector::zeros(n);
        let mut grad = DMatrix::zeros(d, n);
        for j in 0..n {
            value[j] = f.rows(j * m, m).sum() + lp[j];
            let gp = self
                .prior
                .grad_log_prob(&theta.as_slice()[j * d..(j + 1) * d])?;
            for i in 0..d {
                grad[(i, j)] = gp[i] + (0..m).map(|k| gf[(i, j * m + k)]).sum::<f64>();
            }
        }
        mask_support(self.prior.as_ref(), theta, &mut value);
        Ok((value, grad))
    }
}
