//! Loss functions: maximum likelihood (round 0) and the APT atomic loss (later rounds).
//!
//! A [`Loss`] turns a minibatch of (θ, x) pairs and an estimator into the mean
//! per-sample loss and, on request, **adds** its gradient with respect to the estimator's
//! parameters into a flat gradient vector. Losses own their scratch buffers, so a training
//! step allocates nothing once the buffers have grown to the batch size.

use nalgebra::{DMatrix, DMatrixView};
use rand::{Rng, RngCore};
use simfer_flows::{ConditionalDensityEstimator, Gradients, Workspace};

use crate::SnpeError;

/// One minibatch, one sample per column.
#[derive(Debug, Clone, Copy)]
pub struct Batch<'a> {
    /// θ, `theta_dim × B`.
    pub theta: DMatrixView<'a, f64>,
    /// x, `x_dim × B`.
    pub x: DMatrixView<'a, f64>,
    /// log p(θ_i) under the **true prior**, one per column.
    pub prior_log_prob: &'a [f64],
    /// Whether column i was simulated from the prior (round-0 data).
    pub from_prior: &'a [bool],
}

impl Batch<'_> {
    /// Number of samples in the batch.
    pub fn len(&self) -> usize {
        self.theta.ncols()
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A training loss over minibatches for models of type `E` (a density estimator, a
/// classifier, …).
pub trait Loss<E: ?Sized>: Send {
    /// A short name for messages, e.g. `"maximum likelihood"`.
    fn name(&self) -> &'static str;

    /// Checks, before training, that the model fits the data (e.g. its dimensions); the
    /// error names what was expected and found.
    fn check(&self, model: &E, data: &crate::TrainingData) -> Result<(), SnpeError> {
        let _ = (model, data);
        Ok(())
    }

    /// Returns the mean per-sample loss of `batch`; when `grad` is given, **adds** the
    /// gradient of that mean with respect to the estimator's parameters into it.
    ///
    /// A non-finite loss is returned as a value (the trainer turns it into an error with
    /// its round, epoch and batch); errors are for malformed input.
    fn evaluate(
        &mut self,
        estimator: &E,
        workspace: &mut Workspace,
        batch: &Batch<'_>,
        rng: &mut dyn RngCore,
        grad: Option<&mut [f64]>,
    ) -> Result<f64, SnpeError>;
}

/// Maximum likelihood: `loss_i = −log q(θ_i | x_i)` for a posterior estimator (spec §1.3,
/// round 0), or `loss_i = −log q(x_i | θ_i)` for a likelihood estimator (NLE).
///
/// Trained on data that did not come from the prior, a posterior estimator learns the
/// *proposal* posterior; a likelihood estimator learns the likelihood whatever the
/// proposal.
#[derive(Debug, Clone, Default)]
pub struct MaximumLikelihood {
    likelihood: bool,
    log_q: Vec<f64>,
    weights: Vec<f64>,
}

impl MaximumLikelihood {
    /// Maximum likelihood of a posterior estimator q(θ | x).
    pub fn new() -> Self {
        Self::default()
    }

    /// Maximum likelihood of a likelihood estimator q(x | θ) (its input is x, its
    /// condition θ).
    pub fn for_likelihood() -> Self {
        Self {
            likelihood: true,
            ..Self::default()
        }
    }

    /// Whether the estimator models x given θ.
    pub fn is_likelihood(&self) -> bool {
        self.likelihood
    }
}

/// Checks that an estimator's input and condition have the dimensions of the data's θ and
/// x (or of x and θ for a likelihood estimator).
pub(crate) fn check_estimator<E: ConditionalDensityEstimator + ?Sized>(
    estimator: &E,
    data: &crate::TrainingData,
    likelihood: bool,
) -> Result<(), SnpeError> {
    let (input, condition) = if likelihood { ("x", "θ") } else { ("θ", "x") };
    let (input_rows, condition_rows) = if likelihood {
        (data.x().nrows(), data.theta().nrows())
    } else {
        (data.theta().nrows(), data.x().nrows())
    };
    if input_rows != estimator.input_dim() {
        return Err(SnpeError::DimensionMismatch {
            what: format!(
                "dimension of {input} in the training data, to match the estimator's input"
            ),
            expected: estimator.input_dim(),
            found: input_rows,
        });
    }
    if condition_rows != estimator.condition_dim() {
        return Err(SnpeError::DimensionMismatch {
            what: format!(
                "dimension of {condition} in the training data, to match the estimator's condition"
            ),
            expected: estimator.condition_dim(),
            found: condition_rows,
        });
    }
    Ok(())
}

impl<E: ConditionalDensityEstimator> Loss<E> for MaximumLikelihood {
    fn name(&self) -> &'static str {
        if self.likelihood {
            "maximum likelihood (of x given θ)"
        } else {
            "maximum likelihood"
        }
    }

    fn check(&self, estimator: &E, data: &crate::TrainingData) -> Result<(), SnpeError> {
        check_estimator(estimator, data, self.likelihood)
    }

    fn evaluate(
        &mut self,
        estimator: &E,
        workspace: &mut Workspace,
        batch: &Batch<'_>,
        _rng: &mut dyn RngCore,
        grad: Option<&mut [f64]>,
    ) -> Result<f64, SnpeError> {
        let b = batch.len();
        check_batch(batch)?;
        self.log_q.resize(b, 0.0);
        let (input, condition) = if self.likelihood {
            (batch.x, batch.theta)
        } else {
            (batch.theta, batch.x)
        };
        estimator.forward(workspace, input, condition, &mut self.log_q)?;
        let loss = -self.log_q.iter().sum::<f64>() / b as f64;
        if let Some(grad) = grad {
            self.weights.clear();
            self.weights.resize(b, -1.0 / b as f64);
            estimator.backward(workspace, &self.weights, Gradients::params(grad))?;
        }
        Ok(loss)
    }
}

/// The APT atomic loss of SNPE-C (Greenberg et al. 2019; spec §1.3).
///
/// For each row i of a batch of size B, `num_atoms − 1` contrasting θ's are drawn
/// uniformly without replacement from the *other* rows of the same batch; the row's own
/// θ is atom 0. With `u_ik = log q(atom_ik | x_i) − log p(atom_ik)` (p the true prior),
///
/// ```text
/// loss_i = −(u_i0 − logsumexp_k u_ik)
/// ```
///
/// and the batch loss is the mean. With the combined loss, rows simulated from the prior
/// also get the maximum-likelihood term: `loss_i −= log q(θ_i | x_i)`.
///
/// `num_atoms` is clamped to `[2, B]`.
#[derive(Debug, Clone)]
pub struct AtomicLoss {
    num_atoms: usize,
    combined: bool,
    atoms_theta: DMatrix<f64>,
    atoms_x: DMatrix<f64>,
    atoms_prior: Vec<f64>,
    choice: Vec<usize>,
    log_q: Vec<f64>,
    weights: Vec<f64>,
}

impl AtomicLoss {
    /// The atomic loss with `num_atoms` atoms per row (the reference's default is 10).
    /// `combined` adds the maximum-likelihood term on prior samples
    /// (`use_combined_loss` in the reference).
    pub fn new(num_atoms: usize, combined: bool) -> Result<Self, SnpeError> {
        if num_atoms < 2 {
            return Err(SnpeError::InvalidConfig {
                name: "num_atoms",
                message: format!("expected at least 2 atoms, found {num_atoms}"),
            });
        }
        Ok(Self {
            num_atoms,
            combined,
            atoms_theta: DMatrix::zeros(0, 0),
            atoms_x: DMatrix::zeros(0, 0),
            atoms_prior: Vec::new(),
            choice: Vec::new(),
            log_q: Vec::new(),
            weights: Vec::new(),
        })
    }

    /// The number of atoms requested (before clamping to the batch size).
    pub fn num_atoms(&self) -> usize {
        self.num_atoms
    }

    /// Whether the maximum-likelihood term on prior samples is added.
    pub fn combined(&self) -> bool {
        self.combined
    }

    /// Lays out the atoms of every row: column `i·na + k` holds atom k of row i.
    fn build_atoms(&mut self, batch: &Batch<'_>, na: usize, rng: &mut dyn RngCore) {
        let b = batch.len();
        let d = batch.theta.nrows();
        let c = batch.x.nrows();
        let cols = b * na;
        if self.atoms_theta.shape() != (d, cols) {
            self.atoms_theta = DMatrix::zeros(d, cols);
        }
        if self.atoms_x.shape() != (c, cols) {
            self.atoms_x = DMatrix::zeros(c, cols);
        }
        self.atoms_prior.resize(cols, 0.0);
        for i in 0..b {
            sample_others(b, i, na - 1, rng, &mut self.choice);
            for k in 0..na {
                let src = if k == 0 { i } else { self.choice[k - 1] };
                let col = i * na + k;
                self.atoms_theta
                    .column_mut(col)
                    .copy_from(&batch.theta.column(src));
                self.atoms_x.column_mut(col).copy_from(&batch.x.column(i));
                self.atoms_prior[col] = batch.prior_log_prob[src];
            }
        }
    }
}

/// Draws `m` distinct indices uniformly from `{0, …, n−1} \ {skip}` (Floyd's algorithm).
pub(crate) fn sample_others(
    n: usize,
    skip: usize,
    m: usize,
    rng: &mut dyn RngCore,
    out: &mut Vec<usize>,
) {
    out.clear();
    let pool = n - 1;
    for j in (pool - m)..pool {
        let t = rng.random_range(0..=j);
        let pick = if out.contains(&t) { j } else { t };
        out.push(pick);
    }
    for v in out.iter_mut() {
        if *v >= skip {
            *v += 1;
        }
    }
}

impl<E: ConditionalDensityEstimator> Loss<E> for AtomicLoss {
    fn name(&self) -> &'static str {
        if self.combined {
            "atomic (APT) + maximum likelihood on prior samples"
        } else {
            "atomic (APT)"
        }
    }

    fn check(&self, estimator: &E, data: &crate::TrainingData) -> Result<(), SnpeError> {
        check_estimator(estimator, data, false)
    }

    fn evaluate(
        &mut self,
        estimator: &E,
        workspace: &mut Workspace,
        batch: &Batch<'_>,
        rng: &mut dyn RngCore,
        grad: Option<&mut [f64]>,
    ) -> Result<f64, SnpeError> {
        check_batch(batch)?;
        let b = batch.len();
        if b < 2 {
            return Err(SnpeError::NotEnoughData {
                found: b,
                needed: 2,
                reason: "the atomic loss draws its contrasting atoms from the other rows of a \
                         batch"
                    .into(),
            });
        }
        let na = self.num_atoms.clamp(2, b);
        self.build_atoms(batch, na, rng);
        let cols = b * na;
        self.log_q.resize(cols, 0.0);
        estimator.forward(
            workspace,
            self.atoms_theta.as_view(),
            self.atoms_x.as_view(),
            &mut self.log_q,
        )?;
        let want_grad = grad.is_some();
        if want_grad {
            self.weights.resize(cols, 0.0);
        }
        let inv_b = 1.0 / b as f64;
        let mut total = 0.0;
        for i in 0..b {
            let lq = &self.log_q[i * na..(i + 1) * na];
            let lp = &self.atoms_prior[i * na..(i + 1) * na];
            let max = lq
                .iter()
                .zip(lp)
                .map(|(q, p)| q - p)
                .fold(f64::NEG_INFINITY, f64::max);
            let sum: f64 = lq.iter().zip(lp).map(|(q, p)| (q - p - max).exp()).sum();
            let lse = max + sum.ln();
            let mut log_pp = (lq[0] - lp[0]) - lse;
            let ml_term = self.combined && batch.from_prior[i];
            if ml_term {
                log_pp += lq[0];
            }
            total -= log_pp;
            if want_grad {
                let w = &mut self.weights[i * na..(i + 1) * na];
                for k in 0..na {
                    // ∂loss_i/∂lq_ik = softmax_k(u_i) − δ_k0 (− δ_k0 for the ML term).
                    w[k] = ((lq[k] - lp[k] - lse).exp()) * inv_b;
                }
                w[0] -= inv_b;
                if ml_term {
                    w[0] -= inv_b;
                }
            }
        }
        let loss = total * inv_b;
        if let Some(grad) = grad
            && loss.is_finite()
        {
            estimator.backward(workspace, &self.weights, Gradients::params(grad))?;
        }
        Ok(loss)
    }
}

fn check_batch(batch: &Batch<'_>) -> Result<(), SnpeError> {
    let b = batch.len();
    if b == 0 {
        return Err(SnpeError::NotEnoughData {
            found: 0,
            needed: 1,
            reason: "a batch must hold at least one sample".into(),
        });
    }
    for (what, found) in [
        ("columns of x in the batch", batch.x.ncols()),
        ("prior log-probs in the batch", batch.prior_log_prob.len()),
        ("prior flags in the batch", batch.from_prior.len()),
    ] {
        if found != b {
            return Err(SnpeError::DimensionMismatch {
                what: what.into(),
                expected: b,
                found,
            });
        }
    }
    Ok(())
}
