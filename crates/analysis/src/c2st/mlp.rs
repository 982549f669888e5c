//! The C2ST classifier: scikit-learn's `MLPClassifier` for two classes — two ReLU hidden
//! layers, one logistic output, binary cross-entropy with an L2 penalty on the weights,
//! Glorot-uniform initialization — built on simfer-nn's dense layers (manual backprop
//! on flat parameter slices) and trained with its Adam.
//!
//! Parameters live in one flat vector, `[W1, b1, W2, b2, W3, b3]` (the flows layout: each
//! weight column-major `out × in`, then its bias); batches are `D × B`, one sample per
//! column.

use rand::{Rng, RngCore};
use simfer_nn::fastmath::{sigmoid, softplus};
use simfer_nn::linalg::dot;
use simfer_nn::{Activation, Dense};

/// `v` where `keep`, else `+0.0`, without a branch.
#[inline(always)]
fn mask(v: f64, keep: bool) -> f64 {
    f64::from_bits(v.to_bits() & u64::from(keep).wrapping_neg())
}

/// A `D → H → H → 1` ReLU network with a logistic output.
#[derive(Clone, Debug)]
pub(crate) struct Mlp {
    layers: [Dense; 3],
    pub(crate) params: Vec<f64>,
}

/// Buffers for one batch shape; grow on demand, never shrink.
#[derive(Default)]
pub(crate) struct Workspace {
    a1: Vec<f64>,
    a2: Vec<f64>,
    out: Vec<f64>,
    d1: Vec<f64>,
    d2: Vec<f64>,
}

impl Workspace {
    fn fit(&mut self, h: usize, b: usize) {
        for v in [&mut self.a1, &mut self.a2, &mut self.d1, &mut self.d2] {
            v.resize(h * b, 0.0);
        }
        self.out.resize(b, 0.0);
    }
}

impl Mlp {
    /// Glorot-uniform initialization as scikit-learn's: a layer's weights and biases
    /// ~ U(±√(6/(fan_in + fan_out))), layer by layer, weights before biases.
    pub(crate) fn new_glorot(d: usize, h: usize, rng: &mut dyn RngCore) -> Self {
        let l1 = Dense::new(d, h, 0);
        let l2 = Dense::new(h, h, l1.end());
        let l3 = Dense::new(h, 1, l2.end());
        let mut params = vec![0.0; l3.end()];
        for l in [l1, l2, l3] {
            let bound = (6.0 / (l.in_dim + l.out_dim) as f64).sqrt();
            for p in &mut params[l.offset..l.end()] {
                *p = bound * (2.0 * rng.random::<f64>() - 1.0);
            }
        }
        Self {
            layers: [l1, l2, l3],
            params,
        }
    }

    pub(crate) fn num_params(&self) -> usize {
        self.params.len()
    }

    fn hidden(&self) -> usize {
        self.layers[0].out_dim
    }

    /// Forward pass on `x` (`D × b`): logits into `ws.out`, activations kept for backward.
    fn forward(&self, x: &[f64], b: usize, ws: &mut Workspace) {
        let [l1, l2, l3] = &self.layers;
        let h = self.hidden();
        ws.fit(h, b);
        let p = &self.params;
        l1.forward_activated(p, x, b, Activation::Relu, &mut ws.a1[..h * b]);
        l2.forward_activated(p, &ws.a1[..h * b], b, Activation::Relu, &mut ws.a2[..h * b]);
        // The single logistic unit by hand: one dot product per column (as a 1 × H product
        // it would take the general small-matrix kernel, several times slower).
        let w3 = &p[l3.weight_range()];
        let b3 = p[l3.bias_range()][0];
        for (o, col) in ws.out[..b].iter_mut().zip(ws.a2[..h * b].chunks_exact(h)) {
            *o = b3 + dot(w3, col);
        }
    }

    /// Logits of the columns of `x` (`D × b`).
    pub(crate) fn logits(&self, x: &[f64], b: usize, ws: &mut Workspace) -> Vec<f64> {
        self.forward(x, b, ws);
        ws.out[..b].to_vec()
    }

    /// scikit-learn's batch loss — mean binary cross-entropy plus `α/2·Σ‖W‖²/b` over the
    /// weights (not the biases) — and its gradient, overwritten into `grad`, for the batch
    /// `x` (`D × b`) with labels `y` ∈ {0, 1}.
    pub(crate) fn loss_grad(
        &self,
        x: &[f64],
        y: &[f64],
        b: usize,
        alpha: f64,
        ws: &mut Workspace,
        grad: &mut [f64],
    ) -> f64 {
        let [l1, l2, l3] = &self.layers;
        let h = self.hidden();
        self.forward(x, b, ws);
        let p = &self.params;
        let bf = b as f64;
        let mut loss = 0.0;
        // ∂loss/∂logit = (σ(o) − y)/b, written over the logits.
        for (o, &t) in ws.out[..b].iter_mut().zip(y) {
            loss += softplus(*o) - t * *o;
            *o = (sigmoid(*o) - t) / bf;
        }
        loss /= bf;
        // The layers add into `grad`.
        grad.fill(0.0);
        // Output unit by hand (see `forward`): gW3 = Σ_j δ_j·a2_j, gb3 = Σ_j δ_j, and
        // δ2 = W3ᵀδ ⊙ 1[a2 > 0] in one pass.
        let w3 = &p[l3.weight_range()];
        let mut gb3 = 0.0;
        {
            let gw3 = &mut grad[l3.weight_range()];
            for ((&dj, acol), dcol) in ws.out[..b]
                .iter()
                .zip(ws.a2[..h * b].chunks_exact(h))
                .zip(ws.d2[..h * b].chunks_exact_mut(h))
            {
                gb3 += dj;
                for (((g, &a), dv), &w) in gw3.iter_mut().zip(acol).zip(dcol).zip(w3) {
                    *g += dj * a;
                    *dv = mask(w * dj, a > 0.0);
                }
            }
        }
        grad[l3.bias_range()][0] = gb3;
        l2.backward(
            p,
            &ws.a1[..h * b],
            &ws.d2[..h * b],
            b,
            grad,
            Some(&mut ws.d1[..h * b]),
        );
        Activation::Relu.backprop(&ws.a1[..h * b], &mut ws.d1[..h * b]);
        l1.backward(p, x, &ws.d1[..h * b], b, grad, None);
        // L2 penalty on the weights only.
        let c = alpha / bf;
        let mut sq = 0.0;
        for l in &self.layers {
            let r = l.weight_range();
            for (g, &w) in grad[r.clone()].iter_mut().zip(&p[r.clone()]) {
                *g += c * w;
            }
            sq += sum_sq(&p[r]);
        }
        loss + 0.5 * alpha * sq / bf
    }
}

/// `Σ v²`.
fn sum_sq(v: &[f64]) -> f64 {
    dot(v, v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_xoshiro::Xoshiro256PlusPlus;

    fn check_gradient(d: usize, h: usize, b: usize) {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
        let mut net = Mlp::new_glorot(d, h, &mut rng);
        let x: Vec<f64> = (0..d * b)
            .map(|_| 2.0 * rng.random::<f64>() - 1.0)
            .collect();
        let y: Vec<f64> = (0..b).map(|j| (j % 2) as f64).collect();
        let alpha = 0.3;
        let mut ws = Workspace::default();
        let mut grad = vec![0.0; net.num_params()];
        net.loss_grad(&x, &y, b, alpha, &mut ws, &mut grad);
        let mut scratch = vec![0.0; net.num_params()];
        let eps = 1e-6;
        for (k, &g) in grad.iter().enumerate() {
            let orig = net.params[k];
            net.params[k] = orig + eps;
            let lp = net.loss_grad(&x, &y, b, alpha, &mut ws, &mut scratch);
            net.params[k] = orig - eps;
            let lm = net.loss_grad(&x, &y, b, alpha, &mut ws, &mut scratch);
            net.params[k] = orig;
            let fd = (lp - lm) / (2.0 * eps);
            assert!(
                (fd - g).abs() < 1e-7 * (1.0 + fd.abs()),
                "param {k}: analytic {g} vs central difference {fd}"
            );
        }
    }

    #[test]
    fn gradient_matches_central_differences_small_dims() {
        // D = 2, H = 3: the products take the small-matrix kernel.
        check_gradient(2, 3, 5);
    }

    #[test]
    fn gradient_matches_central_differences_gemm_path() {
        // All dimensions > 5: the products go to matrixmultiply.
        check_gradient(7, 9, 11);
    }

    #[test]
    fn loss_is_binary_cross_entropy_plus_l2() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
        let net = Mlp::new_glorot(2, 4, &mut rng);
        let x = [0.3, -0.2, 1.0, 0.5, -0.7, 0.1];
        let y = [1.0, 0.0, 1.0];
        let mut ws = Workspace::default();
        let logits = net.logits(&x, 3, &mut ws);
        let bce: f64 = logits
            .iter()
            .zip(&y)
            .map(|(&o, &t)| {
                let p = 1.0 / (1.0 + (-o).exp());
                -(t * p.ln() + (1.0 - t) * (1.0 - p).ln())
            })
            .sum::<f64>()
            / 3.0;
        let w2: f64 = net
            .layers
            .iter()
            .flat_map(|l| net.params[l.weight_range()].iter())
            .map(|w| w * w)
            .sum();
        let mut grad = vec![0.0; net.num_params()];
        let loss = net.loss_grad(&x, &y, 3, 0.5, &mut ws, &mut grad);
        approx::assert_relative_eq!(loss, bce + 0.5 * 0.5 * w2 / 3.0, max_relative = 1e-12);
    }
}
