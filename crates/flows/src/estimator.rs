//! The interface every conditional density estimator implements.

use nalgebra::{DMatrix, DMatrixView, DVector};
use rand::RngCore;

use crate::FlowError;

/// A conditional density estimator q(θ | x) whose parameters live in one flat vector.
///
/// Batches are stored one sample per column: θ is `theta_dim × n`, the context x is
/// `context_dim × n` (`0 × n` for an unconditional estimator). Column `j` of θ is
/// evaluated with column `j` of x.
///
/// Training code uses the two-phase [`forward`](Self::forward) /
/// [`backward`](Self::backward) pair on a reusable [`Workspace`](Self::Workspace), so a
/// loss can look at the log-densities before choosing the per-sample weights of the
/// backward pass (the APT loss needs this) and nothing is allocated per step.
/// Results never depend on the number of threads.
pub trait ConditionalDensityEstimator: Send + Sync {
    /// Scratch space for forward/backward; grows to the largest batch it has seen.
    type Workspace: Send;

    /// Dimension of θ, the modelled variable.
    fn theta_dim(&self) -> usize;
    /// Dimension of the context x (0 when unconditional).
    fn context_dim(&self) -> usize;
    /// Number of parameters (length of [`params`](Self::params)).
    fn num_params(&self) -> usize;
    /// All parameters as one flat slice.
    fn params(&self) -> &[f64];
    /// All parameters as one flat mutable slice (for optimizers and checkpoints).
    fn params_mut(&mut self) -> &mut [f64];

    /// A fresh workspace.
    fn workspace(&self) -> Self::Workspace;

    /// Computes `out[j] = log q(θ_j | x_j)` for every column and keeps in `ws` what
    /// [`backward`](Self::backward) needs. `out.len()` must equal the number of columns.
    fn forward(
        &self,
        ws: &mut Self::Workspace,
        theta: DMatrixView<'_, f64>,
        x: DMatrixView<'_, f64>,
        out: &mut [f64],
    ) -> Result<(), FlowError>;

    /// After [`forward`](Self::forward) on the same workspace, **adds**
    /// `∇_params Σ_j weights[j] · log q(θ_j | x_j)` into `grad` (length
    /// [`num_params`](Self::num_params)).
    fn backward(
        &self,
        ws: &mut Self::Workspace,
        weights: &[f64],
        grad: &mut [f64],
    ) -> Result<(), FlowError>;

    /// `log q(θ_j | x_j)` and its gradient with respect to θ_j (a `theta_dim × n` matrix),
    /// for MAP search and gradient-based samplers.
    fn log_prob_grad_theta(
        &self,
        theta: &DMatrix<f64>,
        x: &DMatrix<f64>,
    ) -> Result<(DVector<f64>, DMatrix<f64>), FlowError>;

    /// Draws `n` samples θ ~ q(θ | x) for one context `x` (length `context_dim`),
    /// returned as `theta_dim × n`.
    fn sample(&self, n: usize, x: &[f64], rng: &mut dyn RngCore)
    -> Result<DMatrix<f64>, FlowError>;

    /// `log q(θ_j | x_j)` for every column (a convenience over
    /// [`forward`](Self::forward)).
    fn log_prob(&self, theta: &DMatrix<f64>, x: &DMatrix<f64>) -> Result<DVector<f64>, FlowError> {
        let mut ws = self.workspace();
        let mut out = DVector::zeros(theta.ncols());
        self.forward(&mut ws, theta.as_view(), x.as_view(), out.as_mut_slice())?;
        Ok(out)
    }

    /// Returns `log q(θ_j | x_j)` per column and **adds** `∇_params Σ_j w_j log q_j`
    /// into `grad` (a convenience over forward + backward).
    fn log_prob_grad(
        &self,
        theta: &DMatrix<f64>,
        x: &DMatrix<f64>,
        weights: &[f64],
        grad: &mut [f64],
    ) -> Result<DVector<f64>, FlowError> {
        let mut ws = self.workspace();
        let mut out = DVector::zeros(theta.ncols());
        self.forward(&mut ws, theta.as_view(), x.as_view(), out.as_mut_slice())?;
        self.backward(&mut ws, weights, grad)?;
        Ok(out)
    }
}
