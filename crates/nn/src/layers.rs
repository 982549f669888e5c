//! Building blocks with hand-written backprop: activations and the dense layer.
//!
//! Conventions shared by everything in this crate:
//! * a batch of `n` vectors of dimension `d` is a column-major `d × n` block (one sample
//!   per column), e.g. `DMatrix::as_slice()`;
//! * a model owns **one flat parameter vector**; a layer only knows the range of it that
//!   holds its weights and bias, and writes its gradients into the same range of a
//!   gradient vector of the same length;
//! * nothing here allocates: callers own the buffers and reuse them across steps.
//!
//! A two-layer perceptron, forward and backward:
//! ```
//! use simfer_nn::layers::{Activation, Dense};
//! use rand::SeedableRng;
//!
//! let (d_in, d_hid, n) = (3, 8, 5);
//! let l1 = Dense::new(d_in, d_hid, 0);
//! let l2 = Dense::new(d_hid, 1, l1.end());
//! let mut params = vec![0.0; l2.end()];
//! let mut rng = rand::rngs::StdRng::seed_from_u64(1);
//! l1.init_uniform(&mut params, &mut rng);
//! l2.init_uniform(&mut params, &mut rng);
//!
//! let x = vec![0.5; d_in * n];
//! let mut h = vec![0.0; d_hid * n];
//! let mut y = vec![0.0; n];
//! l1.forward_activated(&params, &x, n, Activation::Relu, &mut h);
//! l2.forward(&params, &h, n, &mut y);
//!
//! // Backward for the loss Σ y: dL/dy = 1.
//! let mut grad = vec![0.0; params.len()];
//! let dy = vec![1.0; n];
//! let mut dh = vec![0.0; d_hid * n];
//! l2.backward(&params, &h, &dy, n, &mut grad, Some(&mut dh));
//! Activation::Relu.backprop(&h, &mut dh);
//! l1.backward(&params, &x, &dh, n, &mut grad, None);
//! assert!(grad.iter().any(|g| *g != 0.0));
//! ```

use std::ops::Range;

use rand::{Rng, RngCore};
#[cfg(feature = "serde")]
use serde::{Deserialize, Serialize};

use crate::fastmath;
use crate::linalg::{Op, add_row_sums, gemm};
use crate::precision::Real;

/// An elementwise activation function.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub enum Activation {
    /// `tanh(x)` (the reference MAF's activation).
    #[default]
    Tanh,
    /// `max(0, x)`.
    Relu,
    /// `ln(1 + eˣ)`.
    Softplus,
    /// The logistic sigmoid `1/(1 + e^{−x})`.
    Sigmoid,
}

impl Activation {
    /// The function at one point.
    #[inline]
    pub fn eval(self, x: f64) -> f64 {
        match self {
            Activation::Tanh => fastmath::tanh(x),
            Activation::Relu => x.max(0.0),
            Activation::Softplus => fastmath::softplus(x),
            Activation::Sigmoid => fastmath::sigmoid(x),
        }
    }

    /// The derivative at the point whose **output** is `y` (all three activations are
    /// invertible enough for this, so the pre-activation need not be kept):
    /// tanh: `1 − y²`; relu: `1` if `y > 0` else `0`; softplus: `1 − e^{−y}`; sigmoid:
    /// `y (1 − y)`.
    #[inline]
    pub fn derivative_from_output(self, y: f64) -> f64 {
        match self {
            Activation::Tanh => 1.0 - y * y,
            Activation::Relu => {
                if y > 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
            Activation::Softplus => -(-y).exp_m1(),
            Activation::Sigmoid => y * (1.0 - y),
        }
    }

    /// `x ← f(x)` elementwise.
    pub fn apply<T: Real>(self, x: &mut [T]) {
        match self {
            Activation::Tanh => fastmath::tanh_inplace(x),
            Activation::Relu => {
                let zero = T::of(0.0);
                x.iter_mut().for_each(|v| *v = v.max(zero));
            }
            Activation::Softplus => fastmath::softplus_inplace(x),
            Activation::Sigmoid => fastmath::sigmoid_inplace(x),
        }
    }

    /// For a column-major block with `bias.len()` rows: `x[i, j] ← f(x[i, j] + bias[i])`.
    pub fn apply_with_bias<T: Real>(self, x: &mut [T], bias: &[T]) {
        match self {
            Activation::Tanh => fastmath::tanh_bias_inplace(x, bias),
            Activation::Relu => fastmath::relu_bias_inplace(x, bias),
            Activation::Softplus => fastmath::softplus_bias_inplace(x, bias),
            Activation::Sigmoid => fastmath::sigmoid_bias_inplace(x, bias),
        }
    }

    /// `x[i, j] ← f(x[i, j] + bias[i] + add[i, j])` (column-major, `bias.len()` rows).
    /// `add` is either a block like `x` or one column (`bias.len()` entries) added to every
    /// column; both give the same bits for equal columns.
    pub fn apply_with_bias_add<T: Real>(self, x: &mut [T], bias: &[T], add: &[T]) {
        match self {
            Activation::Tanh => fastmath::tanh_bias_add_inplace(x, bias, add),
            Activation::Relu => fastmath::relu_bias_add_inplace(x, bias, add),
            Activation::Softplus => fastmath::softplus_bias_add_inplace(x, bias, add),
            Activation::Sigmoid => fastmath::sigmoid_bias_add_inplace(x, bias, add),
        }
    }

    /// Backprop through the activation: `grad ← grad ⊙ f'(pre)`, where `out = f(pre)` is
    /// the stored output of the forward pass.
    pub fn backprop<T: Real>(self, out: &[T], grad: &mut [T]) {
        assert_eq!(
            out.len(),
            grad.len(),
            "backprop: output and gradient lengths differ"
        );
        match self {
            Activation::Tanh => tanh_backprop(out, grad),
            Activation::Relu => relu_backprop(out, grad),
            Activation::Softplus => {
                for (g, y) in grad.iter_mut().zip(out) {
                    *g *= -(-*y).exp_m1();
                }
            }
            Activation::Sigmoid => sigmoid_backprop(out, grad),
        }
    }
}

/// A fully connected layer `y = W x + b` whose parameters are a range of a flat vector.
///
/// The passes are generic over the precision ([`Real`]: `f64` or `f32`); parameters,
/// inputs, outputs and gradients of one call share it.
/// Layout inside the flat vector, starting at `offset`: the weight `W` (`out_dim ×
/// in_dim`, column-major, `out_dim · in_dim` entries), then the bias (`out_dim`
/// entries). Inputs and outputs are column-major batches (`in_dim × n`, `out_dim × n`).
///
/// The methods panic if a buffer is shorter than its shape requires (a programming
/// error, not a data error).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct Dense {
    /// Input dimension.
    pub in_dim: usize,
    /// Output dimension.
    pub out_dim: usize,
    /// Where the layer's parameters start in the flat parameter vector.
    pub offset: usize,
}

impl Dense {
    /// A layer `in_dim → out_dim` whose parameters start at `offset`.
    pub fn new(in_dim: usize, out_dim: usize, offset: usize) -> Self {
        Dense {
            in_dim,
            out_dim,
            offset,
        }
    }

    /// Number of parameters: `out_dim · in_dim + out_dim`.
    pub fn num_params(&self) -> usize {
        self.out_dim * self.in_dim + self.out_dim
    }

    /// One past the last parameter index (the offset for the next layer).
    pub fn end(&self) -> usize {
        self.offset + self.num_params()
    }

    /// Range of the weight (column-major `out_dim × in_dim`) in the flat vector.
    pub fn weight_range(&self) -> Range<usize> {
        self.offset..self.offset + self.out_dim * self.in_dim
    }

    /// Range of the bias in the flat vector.
    pub fn bias_range(&self) -> Range<usize> {
        self.offset + self.out_dim * self.in_dim..self.end()
    }

    /// PyTorch's default `nn.Linear` initialization: weight and bias uniform on
    /// `(−1/√in_dim, 1/√in_dim)`.
    pub fn init_uniform(&self, params: &mut [f64], rng: &mut dyn RngCore) {
        let bound = 1.0 / (self.in_dim.max(1) as f64).sqrt();
        for p in &mut params[self.offset..self.end()] {
            *p = rng.random_range(-bound..bound);
        }
    }

    /// `out = W·input + b` for a batch of `n` columns.
    pub fn forward<T: Real>(&self, params: &[T], input: &[T], n: usize, out: &mut [T]) {
        self.product(params, input, n, out);
        add_bias(out, &params[self.bias_range()], n);
    }

    /// `out = f(W·input + b)`.
    pub fn forward_activated<T: Real>(
        &self,
        params: &[T],
        input: &[T],
        n: usize,
        act: Activation,
        out: &mut [T],
    ) {
        self.product(params, input, n, out);
        act.apply_with_bias(&mut out[..self.out_dim * n], &params[self.bias_range()]);
    }

    /// `out = W·input` (no bias).
    pub fn product<T: Real>(&self, params: &[T], input: &[T], n: usize, out: &mut [T]) {
        gemm(
            self.out_dim,
            n,
            self.in_dim,
            T::of(1.0),
            &params[self.weight_range()],
            Op::N,
            input,
            Op::N,
            T::of(0.0),
            out,
        );
    }

    /// Backward pass for `out = W·input + b`, given `grad_out = ∂L/∂out`:
    /// **adds** `∂L/∂W = grad_out·inputᵀ` and `∂L/∂b = Σ_columns grad_out` into the layer's
    /// range of `grad`, and if `grad_input` is given, **overwrites** it with
    /// `∂L/∂input = Wᵀ·grad_out`.
    pub fn backward<T: Real>(
        &self,
        params: &[T],
        input: &[T],
        grad_out: &[T],
        n: usize,
        grad: &mut [T],
        grad_input: Option<&mut [T]>,
    ) {
        self.backward_params(input, grad_out, n, grad);
        if let Some(gi) = grad_input {
            self.backward_input(params, grad_out, n, gi);
        }
    }

    /// The parameter part of [`backward`](Self::backward): adds `grad_out·inputᵀ` and the
    /// row sums of `grad_out` into `grad`.
    pub fn backward_params<T: Real>(&self, input: &[T], grad_out: &[T], n: usize, grad: &mut [T]) {
        let wr = self.weight_range();
        let one = T::of(1.0);
        gemm(
            self.out_dim,
            self.in_dim,
            n,
            one,
            grad_out,
            Op::N,
            input,
            Op::T,
            one,
            &mut grad[wr],
        );
        add_row_sums(&grad_out[..self.out_dim * n], &mut grad[self.bias_range()]);
    }

    /// `grad_input += Wᵀ·grad_out` (the input part of [`backward`](Self::backward),
    /// accumulated).
    pub fn backward_input_add<T: Real>(
        &self,
        params: &[T],
        grad_out: &[T],
        n: usize,
        grad_input: &mut [T],
    ) {
        gemm(
            self.in_dim,
            n,
            self.out_dim,
            T::of(1.0),
            &params[self.weight_range()],
            Op::T,
            grad_out,
            Op::N,
            T::of(1.0),
            grad_input,
        );
    }

    /// The input part of [`backward`](Self::backward): `grad_input = Wᵀ·grad_out`.
    pub fn backward_input<T: Real>(
        &self,
        params: &[T],
        grad_out: &[T],
        n: usize,
        grad_input: &mut [T],
    ) {
        gemm(
            self.in_dim,
            n,
            self.out_dim,
            T::of(1.0),
            &params[self.weight_range()],
            Op::T,
            grad_out,
            Op::N,
            T::of(0.0),
            grad_input,
        );
    }
}

fastmath::simd_dispatch!(
    fn tanh_backprop<T: Real>(out: &[T], grad: &mut [T]) => tanh_backprop_g
);

fastmath::simd_dispatch!(
    fn relu_backprop<T: Real>(out: &[T], grad: &mut [T]) => relu_backprop_g
);

fastmath::simd_dispatch!(
    fn sigmoid_backprop<T: Real>(out: &[T], grad: &mut [T]) => sigmoid_backprop_g
);

/// `grad ← grad ⊙ 1[out > 0]`, as a select rather than a branch: the signs of a hidden
/// layer are unpredictable, and a mispredicted branch per entry costs as much as the
/// layer's matrix product.
#[inline(always)]
fn relu_backprop_g<T: Real>(out: &[T], grad: &mut [T]) {
    let zero = T::of(0.0);
    for (g, y) in grad.iter_mut().zip(out) {
        *g = if *y > zero { *g } else { zero };
    }
}

#[inline(always)]
fn sigmoid_backprop_g<T: Real>(out: &[T], grad: &mut [T]) {
    let one = T::of(1.0);
    for (g, y) in grad.iter_mut().zip(out) {
        *g *= *y * (one - *y);
    }
}

#[inline(always)]
fn tanh_backprop_g<T: Real>(out: &[T], grad: &mut [T]) {
    let one = T::of(1.0);
    for (g, y) in grad.iter_mut().zip(out) {
        *g *= one - *y * *y;
    }
}

/// A dense layer whose weight is multiplied elementwise by a fixed 0/1 mask:
/// `y = (M ⊙ W) x + b`. Masked entries stay parameters (as in the reference MADE) and
/// always get a zero gradient.
///
/// The masked weight is a copy refreshed by [`refresh`](Self::refresh), once per step
/// after the parameters change, not once per product.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct MaskedDense {
    /// The underlying layer (its range in the flat vector).
    pub dense: Dense,
    mask: Vec<f64>,
    #[cfg_attr(feature = "serde", serde(skip))]
    masked: Vec<f64>,
}

impl MaskedDense {
    /// A masked layer; `mask` is column-major `out_dim × in_dim` with entries 0 or 1.
    ///
    /// # Panics
    /// If `mask` does not have `out_dim · in_dim` entries.
    pub fn new(dense: Dense, mask: Vec<f64>) -> Self {
        assert_eq!(
            mask.len(),
            dense.out_dim * dense.in_dim,
            "MaskedDense: mask length"
        );
        MaskedDense {
            dense,
            mask,
            masked: Vec::new(),
        }
    }

    /// The mask (column-major `out_dim × in_dim`).
    pub fn mask(&self) -> &[f64] {
        &self.mask
    }

    /// Recomputes the masked weight `M ⊙ W` from `params`.
    pub fn refresh(&mut self, params: &[f64]) {
        self.masked.clear();
        self.masked.extend(
            params[self.dense.weight_range()]
                .iter()
                .zip(&self.mask)
                .map(|(w, m)| w * m),
        );
    }

    fn masked_weight(&self) -> &[f64] {
        assert_eq!(
            self.masked.len(),
            self.mask.len(),
            "MaskedDense: call refresh(params) before forward/backward"
        );
        &self.masked
    }

    /// `out = (M ⊙ W)·input + b` (after [`refresh`](Self::refresh)).
    pub fn forward(&self, params: &[f64], input: &[f64], n: usize, out: &mut [f64]) {
        let d = &self.dense;
        gemm(
            d.out_dim,
            n,
            d.in_dim,
            1.0,
            self.masked_weight(),
            Op::N,
            input,
            Op::N,
            0.0,
            out,
        );
        add_bias(out, &params[d.bias_range()], n);
    }

    /// Backward pass: **adds** `M ⊙ (grad_out·inputᵀ)` and the bias gradient into the
    /// layer's range of `grad`; if given, **overwrites** `grad_input` with
    /// `(M ⊙ W)ᵀ·grad_out`.
    pub fn backward(
        &self,
        input: &[f64],
        grad_out: &[f64],
        n: usize,
        grad: &mut [f64],
        grad_input: Option<&mut [f64]>,
    ) {
        let d = &self.dense;
        d.backward_params(input, grad_out, n, grad);
        for (g, m) in grad[d.weight_range()].iter_mut().zip(&self.mask) {
            *g *= *m;
        }
        if let Some(gi) = grad_input {
            gemm(
                d.in_dim,
                n,
                d.out_dim,
                1.0,
                self.masked_weight(),
                Op::T,
                grad_out,
                Op::N,
                0.0,
                gi,
            );
        }
    }
}

/// `x[i, j] += bias[i]` for a column-major block of `n` columns.
fn add_bias<T: Real>(x: &mut [T], bias: &[T], n: usize) {
    let rows = bias.len();
    if rows == 0 {
        return;
    }
    for col in x[..rows * n].chunks_exact_mut(rows) {
        for (v, b) in col.iter_mut().zip(bias) {
            *v += *b;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_xoshiro::Xoshiro256PlusPlus;

    /// Loss L = Σ c ⊙ f(W x + b) of a single layer, for finite differences.
    fn loss(layer: &Dense, act: Activation, params: &[f64], x: &[f64], c: &[f64], n: usize) -> f64 {
        let mut out = vec![0.0; layer.out_dim * n];
        layer.forward_activated(params, x, n, act, &mut out);
        out.iter().zip(c).map(|(a, b)| a * b).sum()
    }

    #[test]
    fn dense_gradients_match_finite_differences() {
        for act in [Activation::Tanh, Activation::Softplus, Activation::Relu] {
            for &(din, dout, n) in &[(3, 7, 4), (8, 9, 11), (1, 2, 3)] {
                let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
                let layer = Dense::new(din, dout, 3);
                let mut params = vec![0.0; layer.end() + 2];
                layer.init_uniform(&mut params, &mut rng);
                let x: Vec<f64> = (0..din * n).map(|_| rng.random_range(-2.0..2.0)).collect();
                let c: Vec<f64> = (0..dout * n).map(|_| rng.random_range(-1.0..1.0)).collect();

                let mut out = vec![0.0; dout * n];
                layer.forward_activated(&params, &x, n, act, &mut out);
                let mut g_out = c.clone();
                act.backprop(&out, &mut g_out);
                let mut grad = vec![0.0; params.len()];
                let mut g_in = vec![f64::NAN; din * n];
                layer.backward(&params, &x, &g_out, n, &mut grad, Some(&mut g_in));

                let h = 1e-6;
                for i in 0..params.len() {
                    let mut p = params.clone();
                    p[i] += h;
                    let lp = loss(&layer, act, &p, &x, &c, n);
                    p[i] -= 2.0 * h;
                    let lm = loss(&layer, act, &p, &x, &c, n);
                    let fd = (lp - lm) / (2.0 * h);
                    assert!(
                        (fd - grad[i]).abs() <= 1e-7 * (1.0 + fd.abs()),
                        "{act:?} param {i}: fd {fd} analytic {}",
                        grad[i]
                    );
                }
                for i in 0..x.len() {
                    let mut xp = x.clone();
                    xp[i] += h;
                    let lp = loss(&layer, act, &params, &xp, &c, n);
                    xp[i] -= 2.0 * h;
                    let lm = loss(&layer, act, &params, &xp, &c, n);
                    let fd = (lp - lm) / (2.0 * h);
                    assert!(
                        (fd - g_in[i]).abs() <= 1e-7 * (1.0 + fd.abs()),
                        "{act:?} input {i}: fd {fd} analytic {}",
                        g_in[i]
                    );
                }
            }
        }
    }

    #[test]
    fn masked_dense_gradients_match_finite_differences() {
        let (din, dout, n) = (4, 6, 5);
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(11);
        let dense = Dense::new(din, dout, 0);
        let mask: Vec<f64> = (0..din * dout)
            .map(|i| f64::from(u8::from(i % 3 != 0)))
            .collect();
        let mut layer = MaskedDense::new(dense, mask.clone());
        let mut params = vec![0.0; dense.end()];
        dense.init_uniform(&mut params, &mut rng);
        let x: Vec<f64> = (0..din * n).map(|_| rng.random_range(-2.0..2.0)).collect();
        let c: Vec<f64> = (0..dout * n).map(|_| rng.random_range(-1.0..1.0)).collect();
        let loss = |layer: &mut MaskedDense, p: &[f64], x: &[f64]| -> f64 {
            layer.refresh(p);
            let mut out = vec![0.0; dout * n];
            layer.forward(p, x, n, &mut out);
            out.iter().zip(&c).map(|(a, b)| a * b).sum()
        };
        layer.refresh(&params);
        let mut grad = vec![0.0; params.len()];
        let mut g_in = vec![0.0; din * n];
        layer.backward(&x, &c, n, &mut grad, Some(&mut g_in));
        let h = 1e-6;
        for i in 0..params.len() {
            let mut p = params.clone();
            p[i] += h;
            let lp = loss(&mut layer, &p, &x);
            p[i] -= 2.0 * h;
            let lm = loss(&mut layer, &p, &x);
            let fd = (lp - lm) / (2.0 * h);
            assert!(
                (fd - grad[i]).abs() < 1e-8 * (1.0 + fd.abs()),
                "param {i}: {fd} vs {}",
                grad[i]
            );
            if i < din * dout && mask[i] == 0.0 {
                assert_eq!(grad[i], 0.0);
            }
        }
        layer.refresh(&params);
        for i in 0..x.len() {
            let mut xp = x.clone();
            xp[i] += h;
            let lp = loss(&mut layer, &params, &xp);
            xp[i] -= 2.0 * h;
            let lm = loss(&mut layer, &params, &xp);
            let fd = (lp - lm) / (2.0 * h);
            assert!(
                (fd - g_in[i]).abs() < 1e-8 * (1.0 + fd.abs()),
                "input {i}: {fd} vs {}",
                g_in[i]
            );
        }
    }

    #[test]
    fn derivative_from_output_matches_difference_quotient() {
        for act in [Activation::Tanh, Activation::Softplus] {
            for &x in &[-3.0, -0.4, 0.0, 0.3, 2.5] {
                let h = 1e-6;
                let fd = (act.eval(x + h) - act.eval(x - h)) / (2.0 * h);
                let an = act.derivative_from_output(act.eval(x));
                assert!((fd - an).abs() < 1e-8, "{act:?} at {x}: {fd} vs {an}");
            }
        }
        assert_eq!(Activation::Relu.derivative_from_output(0.5), 1.0);
        assert_eq!(Activation::Relu.derivative_from_output(0.0), 0.0);
    }

    #[test]
    fn init_is_within_pytorch_bounds() {
        let layer = Dense::new(25, 4, 0);
        let mut params = vec![0.0; layer.end()];
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
        layer.init_uniform(&mut params, &mut rng);
        assert!(params.iter().all(|p| p.abs() < 0.2 && *p != 0.0));
        let max = params.iter().fold(0.0f64, |m, p| m.max(p.abs()));
        assert!(
            max > 0.15,
            "draws should fill the interval, max |p| = {max}"
        );
    }
}
