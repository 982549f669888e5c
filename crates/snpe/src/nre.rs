//! The losses of neural ratio estimation, for a [`RatioClassifier`] f(θ, x) trained on
//! contrastive sets built from a minibatch (the reference's `sbi.inference.trainers.nre`):
//!
//! * **NRE-A** (AALR, Hermans et al. 2020): each row's (θ_b, x_b) against one (θ_c, x_b)
//!   with θ_c from another row; binary cross-entropy, labels 1 and 0;
//! * **NRE-B** (SRE, Durkan et al. 2020), the reference's default: `M` atoms per row, the
//!   row's own θ first, `M − 1` θ's from other rows, all with x_b;
//!   `loss_b = −(f_b0 − logsumexp_m f_bm)` — the ratio is learned up to a function of x;
//! * **NRE-C** (CNRE, Miller et al. 2022): `K` classes and a weight γ; the ratio is learned
//!   without the x-dependent constant;
//! * **BNRE** (Delaunoy et al. 2022): NRE-A plus `λ·(mean_b[σ(f_joint) + σ(f_marg)] − 1)²`,
//!   a balancing penalty towards conservative posteriors.
//!
//! Contrasting rows are drawn uniformly without replacement among the *other* rows of the
//! batch; the batch loss is the mean over its rows (the reference additionally divides the
//! losses it reports by the batch size, which changes no decision of the trainer).

use nalgebra::DMatrix;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use simfer_flows::nn::fastmath::{sigmoid, softplus};
use simfer_flows::{Gradients, RatioClassifier, Workspace};

use crate::loss::sample_others;
use crate::{Batch, Loss, SnpeError, TrainingData};

/// Which ratio-estimation loss, with its settings (the defaults are the reference's).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum NreVariant {
    /// NRE-A: binary cross-entropy on one joint and one marginal pair per row.
    A,
    /// NRE-B: the atomic (SRE) loss with `num_atoms` atoms per row (10).
    B {
        /// Atoms per row, the row's own θ included (at least 2).
        num_atoms: usize,
    },
    /// NRE-C: `num_classes` classes (5) and weight `gamma` (1.0).
    C {
        /// Classes K (at least 1).
        num_classes: usize,
        /// The weight γ of the joint class (positive).
        gamma: f64,
    },
    /// BNRE: NRE-A with the balancing penalty of strength `lambda` (100).
    Balanced {
        /// The penalty's strength λ (non-negative).
        lambda: f64,
    },
}

impl Default for NreVariant {
    fn default() -> Self {
        NreVariant::B { num_atoms: 10 }
    }
}

impl NreVariant {
    /// NRE-C with the reference's settings (K = 5, γ = 1).
    pub fn c() -> Self {
        NreVariant::C {
            num_classes: 5,
            gamma: 1.0,
        }
    }

    /// BNRE with the reference's settings (λ = 100).
    pub fn balanced() -> Self {
        NreVariant::Balanced { lambda: 100.0 }
    }

    /// Checks the settings.
    pub fn check(&self) -> Result<(), SnpeError> {
        let bad = |name, message: String| Err(SnpeError::InvalidConfig { name, message });
        match *self {
            NreVariant::B { num_atoms } if num_atoms < 2 => bad(
                "num_atoms",
                format!("expected at least 2, found {num_atoms}"),
            ),
            NreVariant::C { num_classes, .. } if num_classes < 1 => bad(
                "num_classes",
                format!("expected at least 1, found {num_classes}"),
            ),
            NreVariant::C { gamma, .. } if !(gamma.is_finite() && gamma > 0.0) => bad(
                "gamma",
                format!("expected a positive number, found {gamma}"),
            ),
            NreVariant::Balanced { lambda } if !(lambda.is_finite() && lambda >= 0.0) => bad(
                "regularization_strength",
                format!("expected a non-negative number, found {lambda}"),
            ),
            _ => Ok(()),
        }
    }

    /// Contrasting θ's each row needs from other rows of its batch (a batch needs at
    /// least one more row than this).
    pub fn others(&self) -> usize {
        match *self {
            NreVariant::A | NreVariant::Balanced { .. } => 1,
            NreVariant::B { num_atoms } => num_atoms - 1,
            NreVariant::C { num_classes, .. } => num_classes,
        }
    }
}

/// A ratio-estimation loss for a [`RatioClassifier`].
#[derive(Debug, Clone)]
pub struct NreLoss {
    variant: NreVariant,
    theta: DMatrix<f64>,
    x: DMatrix<f64>,
    logits: Vec<f64>,
    weights: Vec<f64>,
    choice: Vec<usize>,
}

impl NreLoss {
    /// The loss of `variant` (checked).
    pub fn new(variant: NreVariant) -> Result<Self, SnpeError> {
        variant.check()?;
        Ok(NreLoss {
            variant,
            theta: DMatrix::zeros(0, 0),
            x: DMatrix::zeros(0, 0),
            logits: Vec::new(),
            weights: Vec::new(),
            choice: Vec::new(),
        })
    }

    /// The variant.
    pub fn variant(&self) -> NreVariant {
        self.variant
    }

    /// Columns per row of the contrastive batch.
    fn per_row(&self) -> usize {
        match self.variant {
            NreVariant::A | NreVariant::Balanced { .. } => 2,
            NreVariant::B { num_atoms } => num_atoms,
            // K marginal logits of the first set, then the K atoms (joint first) of the
            // second.
            NreVariant::C { num_classes, .. } => 2 * num_classes,
        }
    }

    /// Builds the contrastive batch: per row `b`, columns `b·per_row + k`.
    fn build(&mut self, batch: &Batch<'_>, rng: &mut dyn RngCore) {
        let b = batch.len();
        let per = self.per_row();
        let (dt, dx) = (batch.theta.nrows(), batch.x.nrows());
        if self.theta.shape() != (dt, b * per) {
            self.theta = DMatrix::zeros(dt, b * per);
        }
        if self.x.shape() != (dx, b * per) {
            self.x = DMatrix::zeros(dx, b * per);
        }
        let others = self.variant.others();
        for i in 0..b {
            let mut sources = Vec::with_capacity(per);
            match self.variant {
                NreVariant::C { num_classes: k, .. } => {
                    // Two independent draws: K others (the marginal logits), then the
                    // row itself and K − 1 others.
                    sample_others(b, i, k, rng, &mut self.choice);
                    sources.extend_from_slice(&self.choice);
                    sample_others(b, i, k - 1, rng, &mut self.choice);
                    sources.push(i);
                    sources.extend_from_slice(&self.choice);
                }
                _ => {
                    sample_others(b, i, others, rng, &mut self.choice);
                    sources.push(i);
                    sources.extend_from_slice(&self.choice);
                }
            }
            for (k, &src) in sources.iter().enumerate() {
                let col = i * per + k;
                self.theta
                    .column_mut(col)
                    .copy_from(&batch.theta.column(src));
                self.x.column_mut(col).copy_from(&batch.x.column(i));
            }
        }
    }

    /// The loss of a batch of `b` rows from its logits laid out as the contrastive batch
    /// (row `i`'s columns `i·per_row ..`: for NRE-A/BNRE the joint then the marginal pair;
    /// NRE-B the row's own θ then the others; NRE-C the K marginal logits, then the joint
    /// and K − 1 marginal), and its gradient with respect to each logit.
    ///
    /// ```
    /// use simfer_snpe::{NreLoss, NreVariant};
    /// // NRE-B with 2 atoms: loss = −(f₀ − ln(e^{f₀} + e^{f₁})).
    /// let loss = NreLoss::new(NreVariant::B { num_atoms: 2 })?;
    /// let (value, grad) = loss.from_logits(&[1.0, 0.0], 1)?;
    /// assert!((value - (1f64.exp() + 1.0).ln() + 1.0).abs() < 1e-12);
    /// assert_eq!(grad.len(), 2);
    /// # Ok::<(), simfer_snpe::SnpeError>(())
    /// ```
    pub fn from_logits(&self, logits: &[f64], b: usize) -> Result<(f64, Vec<f64>), SnpeError> {
        let per = self.per_row();
        if logits.len() != b * per {
            return Err(SnpeError::DimensionMismatch {
                what: format!("logits of {b} rows ({per} per row)"),
                expected: b * per,
                found: logits.len(),
            });
        }
        let mut scratch = self.clone();
        scratch.logits = logits.to_vec();
        let value = scratch.value_and_weights(b);
        Ok((value, scratch.weights))
    }

    /// The mean loss over the rows and, into `self.weights`, its gradient with respect to
    /// every logit.
    fn value_and_weights(&mut self, b: usize) -> f64 {
        let per = self.per_row();
        let f = &self.logits;
        let w = &mut self.weights;
        w.clear();
        w.resize(b * per, 0.0);
        let inv_b = 1.0 / b as f64;
        match self.variant {
            NreVariant::B { .. } => {
                let mut total = 0.0;
                for i in 0..b {
                    let row = &f[i * per..(i + 1) * per];
                    let lse = log_sum_exp(row);
                    total -= row[0] - lse;
                    for k in 0..per {
                        w[i * per + k] = (row[k] - lse).exp() * inv_b;
                    }
                    w[i * per] -= inv_b;
                }
                total * inv_b
            }
            NreVariant::A | NreVariant::Balanced { .. } => {
                let mut total = 0.0;
                let mut balance = 0.0;
                for i in 0..b {
                    let (fj, fm) = (f[i * 2], f[i * 2 + 1]);
                    // BCE(σ(f), y) = softplus(f) − y·f.
                    total += softplus(fj) - fj + softplus(fm);
                    w[i * 2] = (sigmoid(fj) - 1.0) * 0.5 * inv_b;
                    w[i * 2 + 1] = sigmoid(fm) * 0.5 * inv_b;
                    balance += sigmoid(fj) + sigmoid(fm) - 1.0;
                }
                let mut loss = total * 0.5 * inv_b;
                if let NreVariant::Balanced { lambda } = self.variant {
                    let r = balance * inv_b;
                    loss += lambda * r * r;
                    for i in 0..b {
                        for k in 0..2 {
                            let s = sigmoid(f[i * 2 + k]);
                            w[i * 2 + k] += 2.0 * lambda * r * inv_b * s * (1.0 - s);
                        }
                    }
                }
                loss
            }
            NreVariant::C { num_classes, gamma } => {
                let k = num_classes;
                let (ln_k, ln_g) = ((k as f64).ln(), gamma.ln());
                let (cm, cj) = (1.0 / (1.0 + gamma), gamma / (1.0 + gamma));
                let mut total = 0.0;
                let mut terms = Vec::with_capacity(k + 1);
                for i in 0..b {
                    let row = &f[i * per..(i + 1) * per];
                    let (g, fj) = row.split_at(k);
                    // lp_marg = ln K − ln(K + γ Σ e^{g}).
                    terms.clear();
                    terms.push(ln_k);
                    terms.extend(g.iter().map(|v| ln_g + v));
                    let den_m = log_sum_exp(&terms);
                    let lp_marg = ln_k - den_m;
                    // lp_joint = ln γ + f₀ − ln(K + γ Σ e^{f}).
                    terms.clear();
                    terms.push(ln_k);
                    terms.extend(fj.iter().map(|v| ln_g + v));
                    let den_j = log_sum_exp(&terms);
                    let lp_joint = ln_g + fj[0] - den_j;
                    total -= cm * lp_marg + cj * lp_joint;
                    for (t, gv) in g.iter().enumerate() {
                        w[i * per + t] = cm * (ln_g + gv - den_m).exp() * inv_b;
                    }
                    for (t, fv) in fj.iter().enumerate() {
                        w[i * per + k + t] = cj * (ln_g + fv - den_j).exp() * inv_b;
                    }
                    w[i * per + k] -= cj * inv_b;
                }
                total * inv_b
            }
        }
    }
}

fn log_sum_exp(v: &[f64]) -> f64 {
    let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if max == f64::NEG_INFINITY {
        return max;
    }
    max + v.iter().map(|x| (x - max).exp()).sum::<f64>().ln()
}

impl Loss<RatioClassifier> for NreLoss {
    fn name(&self) -> &'static str {
        match self.variant {
            NreVariant::A => "NRE-A (binary cross-entropy)",
            NreVariant::B { .. } => "NRE-B (atomic, SRE)",
            NreVariant::C { .. } => "NRE-C (contrastive)",
            NreVariant::Balanced { .. } => "BNRE (balanced)",
        }
    }

    fn check(&self, classifier: &RatioClassifier, data: &TrainingData) -> Result<(), SnpeError> {
        for (what, expected, found) in [
            ("θ", classifier.theta_dim(), data.theta().nrows()),
            ("x", classifier.x_dim(), data.x().nrows()),
        ] {
            if expected != found {
                return Err(SnpeError::DimensionMismatch {
                    what: format!(
                        "dimension of {what} in the training data, to match the classifier"
                    ),
                    expected,
                    found,
                });
            }
        }
        Ok(())
    }

    fn evaluate(
        &mut self,
        classifier: &RatioClassifier,
        workspace: &mut Workspace,
        batch: &Batch<'_>,
        rng: &mut dyn RngCore,
        grad: Option<&mut [f64]>,
    ) -> Result<f64, SnpeError> {
        let b = batch.len();
        let needed = self.variant.others() + 1;
        if b < needed {
            return Err(SnpeError::NotEnoughData {
                found: b,
                needed,
                reason: format!(
                    "{} contrasts each row with {} other rows of its batch",
                    <Self as Loss<RatioClassifier>>::name(self),
                    needed - 1
                ),
            });
        }
        self.build(batch, rng);
        let cols = b * self.per_row();
        self.logits.resize(cols, 0.0);
        classifier.forward(
            workspace,
            self.theta.as_view(),
            self.x.as_view(),
            &mut self.logits,
        )?;
        let loss = self.value_and_weights(b);
        if let Some(grad) = grad
            && loss.is_finite()
        {
            classifier.backward(workspace, &self.weights, Gradients::params(grad))?;
        }
        Ok(loss)
    }
}
