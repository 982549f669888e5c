//! Optimizers on flat parameter slices ([`Optimizer`], [`Adam`]) and global-norm gradient
//! clipping ([`clip_grad_norm`]).

#[cfg(feature = "serde")]
use serde::{Deserialize, Serialize};

use crate::par;

/// A model whose parameters are one flat vector: what optimizers, clipping, checkpoints
/// and the trainers work on.
pub trait Parameterized {
    /// Number of parameters.
    fn num_params(&self) -> usize {
        self.params().len()
    }
    /// All parameters as one flat slice.
    fn params(&self) -> &[f64];
    /// All parameters as one flat mutable slice.
    fn params_mut(&mut self) -> &mut [f64];
}

impl<P: Parameterized + ?Sized> Parameterized for Box<P> {
    fn num_params(&self) -> usize {
        (**self).num_params()
    }
    fn params(&self) -> &[f64] {
        (**self).params()
    }
    fn params_mut(&mut self) -> &mut [f64] {
        (**self).params_mut()
    }
}

/// An optimizer: updates a flat parameter vector from the gradient of a loss to minimize.
///
/// The trainers take any optimizer; [`Adam`] is the reference library's.
pub trait Optimizer: Send {
    /// One update of `params` against `grad` (the same length).
    fn step(&mut self, params: &mut [f64], grad: &[f64]);
    /// Forgets all state (a fresh optimizer).
    fn reset(&mut self);
    /// Steps taken since creation or the last reset.
    fn steps(&self) -> u64;
}

/// The Adam optimizer with PyTorch's defaults (β₁ = 0.9, β₂ = 0.999, ε = 1e-8, no weight
/// decay, no AMSGrad) and PyTorch's exact update order:
///
/// ```text
/// t ← t + 1
/// m ← β₁ m + (1 − β₁) g
/// v ← β₂ v + (1 − β₂) g²
/// p ← p − (lr / (1 − β₁ᵗ)) · m / (√v / √(1 − β₂ᵗ) + ε)
/// ```
///
/// The update *adds* `−lr·…` for a gradient of a loss to minimize.
///
/// ```
/// use simfer_nn::Adam;
/// // Minimize (p − 3)².
/// let mut p = [0.0];
/// let mut adam = Adam::new(1, 0.1);
/// for _ in 0..500 {
///     let g = [2.0 * (p[0] - 3.0)];
///     adam.step(&mut p, &g);
/// }
/// assert!((p[0] - 3.0).abs() < 1e-3);
/// ```
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct Adam {
    /// Learning rate.
    pub lr: f64,
    /// First-moment decay β₁.
    pub beta1: f64,
    /// Second-moment decay β₂.
    pub beta2: f64,
    /// ε added to the denominator.
    pub eps: f64,
    t: u64,
    m: Vec<f64>,
    v: Vec<f64>,
}

impl Adam {
    /// An optimizer for `num_params` parameters with learning rate `lr` and the default
    /// β₁, β₂, ε.
    pub fn new(num_params: usize, lr: f64) -> Self {
        Adam {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            t: 0,
            m: vec![0.0; num_params],
            v: vec![0.0; num_params],
        }
    }

    /// Number of steps taken since creation or the last [`reset`](Self::reset).
    pub fn steps(&self) -> u64 {
        self.t
    }

    /// Number of parameters this optimizer was made for.
    pub fn num_params(&self) -> usize {
        self.m.len()
    }

    /// Forgets the moment estimates and the step count (a fresh optimizer).
    pub fn reset(&mut self) {
        self.t = 0;
        self.m.fill(0.0);
        self.v.fill(0.0);
    }

    /// One update of `params` against the gradient `grad` of the loss to minimize.
    ///
    /// # Panics
    /// If `params` or `grad` does not have [`num_params`](Self::num_params) entries.
    pub fn step(&mut self, params: &mut [f64], grad: &[f64]) {
        assert_eq!(params.len(), self.m.len(), "Adam::step: params length");
        assert_eq!(grad.len(), self.m.len(), "Adam::step: grad length");
        self.t += 1;
        let t = self.t as i32;
        let (b1, b2) = (self.beta1, self.beta2);
        let bias1 = 1.0 - b1.powi(t);
        let bias2_sqrt = (1.0 - b2.powi(t)).sqrt();
        let step_size = self.lr / bias1;
        let coefs = [b1, b2, bias2_sqrt, step_size, self.eps];
        // Elementwise, so splitting into blocks gives the same bits for any thread count.
        let items: Vec<_> = params
            .chunks_mut(PAR_BLOCK)
            .zip(grad.chunks(PAR_BLOCK))
            .zip(self.m.chunks_mut(PAR_BLOCK))
            .zip(self.v.chunks_mut(PAR_BLOCK))
            .collect();
        par::for_each(items, |(((p, g), m), v)| adam_update(p, g, m, v, &coefs));
    }
}

impl Optimizer for Adam {
    fn step(&mut self, params: &mut [f64], grad: &[f64]) {
        Adam::step(self, params, grad);
    }
    fn reset(&mut self) {
        Adam::reset(self);
    }
    fn steps(&self) -> u64 {
        Adam::steps(self)
    }
}

/// Block size for parallel elementwise updates.
const PAR_BLOCK: usize = 8192;

crate::fastmath::simd_dispatch!(
    fn adam_update(params: &mut [f64], grad: &[f64], m: &mut [f64], v: &mut [f64], coefs: &[f64; 5]) => adam_update_g
);

#[inline(always)]
fn adam_update_g(params: &mut [f64], grad: &[f64], m: &mut [f64], v: &mut [f64], coefs: &[f64; 5]) {
    let [b1, b2, bias2_sqrt, step_size, eps] = *coefs;
    for (((p, g), m), v) in params.iter_mut().zip(grad).zip(m).zip(v) {
        *m = b1 * *m + (1.0 - b1) * *g;
        *v = b2 * *v + (1.0 - b2) * *g * *g;
        let denom = v.sqrt() / bias2_sqrt + eps;
        *p -= step_size * *m / denom;
    }
}

crate::fastmath::simd_dispatch!(
    fn scale(x: &mut [f64], c: f64) => scale_g
);

#[inline(always)]
fn scale_g(x: &mut [f64], c: f64) {
    x.iter_mut().for_each(|g| *g *= c);
}

/// Global L2-norm clipping as in PyTorch's `clip_grad_norm_`:
/// `g ← g · min(1, max_norm / (‖g‖ + 1e-6))`. Returns `‖g‖` before clipping (callers
/// should check it is finite: a non-finite norm means training diverged).
///
/// ```
/// let mut g = [3.0, 4.0];
/// let norm = simfer_nn::clip_grad_norm(&mut g, 1.0);
/// assert_eq!(norm, 5.0);
/// assert!((g[0] - 0.6).abs() < 1e-6 && (g[1] - 0.8).abs() < 1e-6);
/// ```
pub fn clip_grad_norm(grad: &mut [f64], max_norm: f64) -> f64 {
    let norm = crate::linalg::dot(grad, grad).sqrt();
    let coef = max_norm / (norm + 1e-6);
    if coef < 1.0 {
        scale(grad, coef);
    }
    norm
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Adam written out with explicit bias-corrected moments (the textbook form), which
    /// equals PyTorch's form up to rounding.
    #[test]
    fn adam_matches_textbook_formula() {
        let n = 4;
        let mut p = vec![0.5, -1.0, 2.0, 0.0];
        let mut q = p.clone();
        let mut m = vec![0.0; n];
        let mut v = vec![0.0; n];
        let mut adam = Adam::new(n, 0.01);
        for t in 1..=50 {
            let g: Vec<f64> = (0..n)
                .map(|i| ((t * 7 + i * 3) as f64).sin() + p[i])
                .collect();
            adam.step(&mut p, &g);
            for i in 0..n {
                m[i] = 0.9 * m[i] + 0.1 * g[i];
                v[i] = 0.999 * v[i] + 0.001 * g[i] * g[i];
                let mh = m[i] / (1.0 - 0.9f64.powi(t as i32));
                let vh = v[i] / (1.0 - 0.999f64.powi(t as i32));
                q[i] -= 0.01 * mh / (vh.sqrt() + 1e-8);
            }
            // Same iterate sequence up to rounding; the gradients use p, so compare p and q.
            for i in 0..n {
                assert!(
                    (p[i] - q[i]).abs() < 1e-12,
                    "step {t}: {} vs {}",
                    p[i],
                    q[i]
                );
            }
            q.copy_from_slice(&p);
        }
        assert_eq!(adam.steps(), 50);
    }

    #[test]
    fn first_adam_step_moves_by_lr_times_sign() {
        let mut p = vec![1.0, 1.0, 1.0];
        let mut adam = Adam::new(3, 0.001);
        adam.step(&mut p, &[10.0, -0.5, 0.0]);
        // m̂ = g and v̂ = g² after one step, so the move is lr·g/(|g| + ε).
        assert!((p[0] - (1.0 - 0.001 * 10.0 / (10.0 + 1e-8))).abs() < 1e-15);
        assert!((p[1] - (1.0 + 0.001 * 0.5 / (0.5 + 1e-8))).abs() < 1e-15);
        assert_eq!(p[2], 1.0);
        adam.reset();
        assert_eq!(adam.steps(), 0);
        let mut p2 = vec![1.0, 1.0, 1.0];
        adam.step(&mut p2, &[10.0, -0.5, 0.0]);
        assert_eq!(p2, p);
    }

    #[test]
    fn clipping_scales_only_large_gradients() {
        let mut g = vec![0.3, 0.4];
        let norm = clip_grad_norm(&mut g, 5.0);
        assert_eq!(norm, 0.5);
        assert_eq!(g, vec![0.3, 0.4]);
        let mut g = vec![30.0, 40.0];
        let norm = clip_grad_norm(&mut g, 5.0);
        assert_eq!(norm, 50.0);
        let new_norm = (g[0] * g[0] + g[1] * g[1]).sqrt();
        assert!((new_norm - 5.0 * 50.0 / (50.0 + 1e-6)).abs() < 1e-12);
        assert!((g[0] / g[1] - 0.75).abs() < 1e-15);
    }
}
