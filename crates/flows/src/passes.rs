//! Evaluation helpers shared by the estimators built on the pass driver: log-densities
//! and their input gradients in `f64`, in blocks of bounded size.

use nalgebra::{DMatrix, DVector};
use simfer_nn::driver::{ChunkModel, PassInputs, Passes, eval_blocks};
use simfer_nn::{Gradients, Precision};

use crate::FlowError;

/// `log q` of every column in `f64`, in blocks (the passes' memory stays bounded).
pub(crate) fn log_prob_f64<M: ChunkModel>(
    model: &M,
    input: &DMatrix<f64>,
    condition: &DMatrix<f64>,
) -> Result<DVector<f64>, FlowError> {
    let mut passes = Passes::<M>::default();
    let mut out = DVector::zeros(input.ncols());
    let inputs = PassInputs {
        input: input.as_view(),
        condition: condition.as_view(),
    };
    passes.evaluate(model, &inputs, out.as_mut_slice())?;
    Ok(out)
}

/// `log q` of every column and its gradient with respect to the input, in `f64`, in
/// blocks.
pub(crate) fn log_prob_grad_input_f64<M: ChunkModel>(
    model: &M,
    input: &DMatrix<f64>,
    condition: &DMatrix<f64>,
) -> Result<(DVector<f64>, DMatrix<f64>), FlowError> {
    log_prob_grad_f64(model, input, condition, false)
}

/// `log q` of every column and its gradient with respect to the condition, in `f64`, in
/// blocks.
pub(crate) fn log_prob_grad_condition_f64<M: ChunkModel>(
    model: &M,
    input: &DMatrix<f64>,
    condition: &DMatrix<f64>,
) -> Result<(DVector<f64>, DMatrix<f64>), FlowError> {
    log_prob_grad_f64(model, input, condition, true)
}

fn log_prob_grad_f64<M: ChunkModel>(
    model: &M,
    input: &DMatrix<f64>,
    condition: &DMatrix<f64>,
    of_condition: bool,
) -> Result<(DVector<f64>, DMatrix<f64>), FlowError> {
    let n = input.ncols();
    let d = if of_condition {
        condition.nrows()
    } else {
        input.nrows()
    };
    let mut passes = Passes::<M>::default();
    let mut lp = DVector::zeros(n);
    let mut g = DMatrix::zeros(d, n);
    let conditional = condition.nrows() > 0;
    for (start, len) in eval_blocks(n) {
        let inputs = PassInputs {
            input: input.columns(start, len),
            condition: if conditional {
                condition.columns(start, len)
            } else {
                condition.columns(0, 0)
            },
        };
        passes.forward(
            model,
            Precision::F64,
            &inputs,
            &mut lp.as_mut_slice()[start..start + len],
        )?;
        let block = &mut g.as_mut_slice()[start * d..(start + len) * d];
        let grads = if of_condition {
            Gradients::default().with_condition(block)
        } else {
            Gradients::input(block)
        };
        passes.backward(model, &vec![1.0; len], grads, None)?;
    }
    Ok((lp, g))
}
