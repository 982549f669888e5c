//! The interface every conditional density estimator implements, and the estimator
//! kinds of this crate.

use std::any::Any;

use nalgebra::{DMatrix, DMatrixView, DVector};
use rand::RngCore;
use simfer_nn::driver::eval_blocks;
pub use simfer_nn::{Gradients, Parameterized, Workspace};

use crate::FlowError;

/// A conditional density estimator q(input | condition) whose parameters live in one
/// flat vector. For posterior estimation the input is θ and the condition is x; for
/// likelihood estimation the input is x and the condition is θ.
///
/// Batches hold one sample per column: the input is `input_dim × n`, the condition is
/// `condition_dim × n` (`0 × n` for an unconditional estimator). Column `j` of the input
/// is evaluated with column `j` of the condition.
///
/// Training code uses the two-phase [`forward`](Self::forward) /
/// [`backward`](Self::backward) pair on a reusable [`Workspace`], so a loss can look at
/// the log-densities before choosing the per-sample weights of the backward pass (the
/// atomic APT loss needs this) and nothing is allocated per step. The backward pass adds
/// the gradient with respect to the parameters and, when asked, with respect to the input
/// and the condition (for embedding networks, likelihood estimators and gradient-based
/// samplers). Results never depend on the number of threads.
///
/// The parameters (one flat vector) are reached through the supertrait
/// [`Parameterized`] (`num_params`, `params`, `params_mut`).
///
/// The trait is object safe: `Box<dyn ConditionalDensityEstimator>` is an estimator
/// chosen at run time, and so is the [`Estimator`](crate::Estimator) enum of this crate's
/// kinds, which also saves and loads.
pub trait ConditionalDensityEstimator: Parameterized + Send + Sync {
    /// A short name of the kind of estimator, e.g. `"maf"`; saved files record it.
    fn kind(&self) -> &'static str;
    /// Dimension of the modelled variable.
    fn input_dim(&self) -> usize;
    /// Dimension of the condition (0 when unconditional).
    fn condition_dim(&self) -> usize;

    /// A fresh workspace (an empty [`Workspace`]; it grows on first use).
    fn workspace(&self) -> Workspace {
        Workspace::new()
    }

    /// Computes `out[j] = log q(input_j | condition_j)` for every column in the
    /// estimator's training precision, and keeps in `ws` what
    /// [`backward`](Self::backward) needs. `out.len()` must equal the number of columns.
    fn forward(
        &self,
        ws: &mut Workspace,
        input: DMatrixView<'_, f64>,
        condition: DMatrixView<'_, f64>,
        out: &mut [f64],
    ) -> Result<(), FlowError>;

    /// After [`forward`](Self::forward) on the same workspace, **adds** the gradients of
    /// `Σ_j weights[j] · log q(input_j | condition_j)` that `grads` asks for: with respect
    /// to the parameters (length [`num_params`](Self::num_params)), the input
    /// (`input_dim × n`) and the condition (`condition_dim × n`).
    fn backward(
        &self,
        ws: &mut Workspace,
        weights: &[f64],
        grads: Gradients<'_>,
    ) -> Result<(), FlowError>;

    /// `log q(input_j | condition_j)` for every column. The estimators of this crate
    /// evaluate in `f64` whatever their training precision, in blocks (bounded memory).
    fn log_prob(
        &self,
        input: &DMatrix<f64>,
        condition: &DMatrix<f64>,
    ) -> Result<DVector<f64>, FlowError> {
        let mut ws = self.workspace();
        let mut out = DVector::zeros(input.ncols());
        self.forward(
            &mut ws,
            input.as_view(),
            condition.as_view(),
            out.as_mut_slice(),
        )?;
        Ok(out)
    }

    /// `log q(input_j | condition_j)` and its gradient with respect to the input (an
    /// `input_dim × n` matrix), for MAP search and gradient-based samplers.
    fn log_prob_grad_input(
        &self,
        input: &DMatrix<f64>,
        condition: &DMatrix<f64>,
    ) -> Result<(DVector<f64>, DMatrix<f64>), FlowError> {
        let n = input.ncols();
        let mut ws = self.workspace();
        let mut lp = DVector::zeros(n);
        let mut g = DMatrix::zeros(self.input_dim(), n);
        let conditional = condition.nrows() > 0;
        for (start, len) in eval_blocks(n) {
            let c = if conditional {
                condition.columns(start, len)
            } else {
                condition.columns(0, 0)
            };
            self.forward(
                &mut ws,
                input.columns(start, len),
                c,
                &mut lp.as_mut_slice()[start..start + len],
            )?;
            let d = self.input_dim();
            let block = &mut g.as_mut_slice()[start * d..(start + len) * d];
            self.backward(&mut ws, &vec![1.0; len], Gradients::input(block))?;
        }
        Ok((lp, g))
    }

    /// `log q(input_j | condition_j)` and its gradient with respect to the condition (a
    /// `condition_dim × n` matrix), e.g. for the potential of a likelihood estimator,
    /// whose condition is θ.
    fn log_prob_grad_condition(
        &self,
        input: &DMatrix<f64>,
        condition: &DMatrix<f64>,
    ) -> Result<(DVector<f64>, DMatrix<f64>), FlowError> {
        let n = input.ncols();
        let c = self.condition_dim();
        let mut ws = self.workspace();
        let mut lp = DVector::zeros(n);
        let mut g = DMatrix::zeros(c, n);
        for (start, len) in eval_blocks(n) {
            self.forward(
                &mut ws,
                input.columns(start, len),
                condition.columns(start, len),
                &mut lp.as_mut_slice()[start..start + len],
            )?;
            let block = &mut g.as_mut_slice()[start * c..(start + len) * c];
            self.backward(
                &mut ws,
                &vec![1.0; len],
                Gradients::default().with_condition(block),
            )?;
        }
        Ok((lp, g))
    }

    /// Draws `n` samples from q(· | condition) for one condition (length
    /// [`condition_dim`](Self::condition_dim)), returned as `input_dim × n`.
    fn sample(
        &self,
        n: usize,
        condition: &[f64],
        rng: &mut dyn RngCore,
    ) -> Result<DMatrix<f64>, FlowError>;

    /// `self` as [`Any`], to recover the concrete type (e.g. a loss that needs the
    /// mixture parameters of an [`Mdn`](crate::Mdn)).
    fn as_any(&self) -> &dyn Any;

    /// A boxed copy.
    fn clone_boxed(&self) -> Box<dyn ConditionalDensityEstimator>;
}

impl Clone for Box<dyn ConditionalDensityEstimator> {
    fn clone(&self) -> Self {
        self.clone_boxed()
    }
}

impl std::fmt::Debug for dyn ConditionalDensityEstimator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConditionalDensityEstimator")
            .field("kind", &self.kind())
            .field("input_dim", &self.input_dim())
            .field("condition_dim", &self.condition_dim())
            .field("num_params", &self.num_params())
            .finish()
    }
}

impl ConditionalDensityEstimator for Box<dyn ConditionalDensityEstimator> {
    fn kind(&self) -> &'static str {
        (**self).kind()
    }
    fn input_dim(&self) -> usize {
        (**self).input_dim()
    }
    fn condition_dim(&self) -> usize {
        (**self).condition_dim()
    }
    fn workspace(&self) -> Workspace {
        (**self).workspace()
    }
    fn forward(
        &self,
        ws: &mut Workspace,
        input: DMatrixView<'_, f64>,
        condition: DMatrixView<'_, f64>,
        out: &mut [f64],
    ) -> Result<(), FlowError> {
        (**self).forward(ws, input, condition, out)
    }
    fn backward(
        &self,
        ws: &mut Workspace,
        weights: &[f64],
        grads: Gradients<'_>,
    ) -> Result<(), FlowError> {
        (**self).backward(ws, weights, grads)
    }
    fn log_prob(
        &self,
        input: &DMatrix<f64>,
        condition: &DMatrix<f64>,
    ) -> Result<DVector<f64>, FlowError> {
        (**self).log_prob(input, condition)
    }
    fn log_prob_grad_input(
        &self,
        input: &DMatrix<f64>,
        condition: &DMatrix<f64>,
    ) -> Result<(DVector<f64>, DMatrix<f64>), FlowError> {
        (**self).log_prob_grad_input(input, condition)
    }
    fn log_prob_grad_condition(
        &self,
        input: &DMatrix<f64>,
        condition: &DMatrix<f64>,
    ) -> Result<(DVector<f64>, DMatrix<f64>), FlowError> {
        (**self).log_prob_grad_condition(input, condition)
    }
    fn sample(
        &self,
        n: usize,
        condition: &[f64],
        rng: &mut dyn RngCore,
    ) -> Result<DMatrix<f64>, FlowError> {
        (**self).sample(n, condition, rng)
    }
    fn as_any(&self) -> &dyn Any {
        (**self).as_any()
    }
    fn clone_boxed(&self) -> Box<dyn ConditionalDensityEstimator> {
        (**self).clone_boxed()
    }
}

/// Checks a batch against an estimator's dimensions: the input has `input_dim` rows, the
/// condition `condition_dim` rows and (when it has rows) one column per input column.
/// Returns the number of columns.
pub fn check_batch(
    input_dim: usize,
    condition_dim: usize,
    input: &DMatrixView<'_, f64>,
    condition: &DMatrixView<'_, f64>,
) -> Result<usize, FlowError> {
    if input.nrows() != input_dim {
        return Err(FlowError::dims(
            "input rows (the modelled variable's dimension)",
            input_dim,
            input.nrows(),
        ));
    }
    let n = input.ncols();
    if condition.nrows() != condition_dim {
        return Err(FlowError::dims(
            "condition rows (the condition's dimension)",
            condition_dim,
            condition.nrows(),
        ));
    }
    if condition_dim > 0 && condition.ncols() != n {
        return Err(FlowError::dims(
            "condition columns (one per input column)",
            n,
            condition.ncols(),
        ));
    }
    Ok(n)
}

/// Checks one condition to sample at: its length and that it is finite.
pub fn check_condition(condition_dim: usize, condition: &[f64]) -> Result<(), FlowError> {
    if condition.len() != condition_dim {
        return Err(FlowError::dims(
            "condition length (the condition's dimension)",
            condition_dim,
            condition.len(),
        ));
    }
    if condition.iter().any(|v| !v.is_finite()) {
        return Err(FlowError::NonFinite("the condition to sample at"));
    }
    Ok(())
}
