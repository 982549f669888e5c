//! The C2ST classifier: scikit-learn's `MLPClassifier` for two classes — two ReLU hidden
//! layers, one logistic output, binary cross-entropy with an L2 penalty on the weights,
//! Glorot-uniform initialization, and sklearn's Adam.
//!
//! Parameters live in one flat vector, `[W1, b1, W2, b2, W3, b3]`, each weight matrix
//! column-major `out × in`; batches are `D × B`, one sample per column.

use nalgebra::{DMatrixView, DMatrixViewMut};
use rand::{Rng, RngCore};

/// `C = A·B + beta·C` with `A` (`m × k`), `B` (`k × n`) and `C` contiguous column-major,
/// through nalgebra's `gemm` (matrixmultiply for all but tiny shapes). Transposed operands
/// are materialized with [`transpose`] first: nalgebra's small-shape fallback mishandles
/// strided (transposed) views, and contiguous operands are the fast path anyway.
fn gemm(c: &mut [f64], (m, n): (usize, usize), a: &[f64], b: &[f64], k: usize, beta: f64) {
    let av = DMatrixView::from_slice(a, m, k);
    let bv = DMatrixView::from_slice(b, k, n);
    let mut cv = DMatrixViewMut::from_slice(c, m, n);
    cv.gemm(1.0, &av, &bv, beta);
}

/// Writes the transpose of `a` (`rows × cols`, column-major) into `out` (`cols × rows`),
/// in 16 × 16 tiles so that neither side is walked with a cache-hostile stride for long.
fn transpose(a: &[f64], rows: usize, cols: usize, out: &mut Vec<f64>) {
    const T: usize = 16;
    out.resize(rows * cols, 0.0);
    for j0 in (0..cols).step_by(T) {
        for i0 in (0..rows).step_by(T) {
            for j in j0..(j0 + T).min(cols) {
                for i in i0..(i0 + T).min(rows) {
                    out[j + i * cols] = a[i + j * rows];
                }
            }
        }
    }
}

/// `v` where `keep`, else `+0.0`, without a branch (ReLU masks have unpredictable signs).
#[inline(always)]
fn mask(v: f64, keep: bool) -> f64 {
    f64::from_bits(v.to_bits() & u64::from(keep).wrapping_neg())
}

/// Numerically stable `log(1 + eˣ)`.
fn softplus(x: f64) -> f64 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// A `D → H → H → 1` ReLU network with a logistic output.
#[derive(Clone, Debug)]
pub(crate) struct Mlp {
    d: usize,
    h: usize,
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
    /// Transposes: of the input batch (`B × D`), of `A1` (`B × H`), of `W2` (`H × H`).
    xt: Vec<f64>,
    a1t: Vec<f64>,
    w2t: Vec<f64>,
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
    /// Offsets of `[W1, b1, W2, b2, W3, b3]` and the total length.
    fn layout(d: usize, h: usize) -> [usize; 7] {
        let w1 = 0;
        let b1 = w1 + h * d;
        let w2 = b1 + h;
        let b2 = w2 + h * h;
        let w3 = b2 + h;
        let b3 = w3 + h;
        [w1, b1, w2, b2, w3, b3, b3 + 1]
    }

    /// Glorot-uniform initialization as sklearn: weights and biases of a layer with
    /// `fan_in` inputs and `fan_out` outputs ~ U(±√(6/(fan_in + fan_out))).
    pub(crate) fn new_glorot(d: usize, h: usize, rng: &mut dyn RngCore) -> Self {
        let [w1, _, w2, _, w3, _, len] = Self::layout(d, h);
        let mut params = vec![0.0; len];
        for (range, fan_in, fan_out) in [
            (w1..w2, d, h), // W1 and b1
            (w2..w3, h, h), // W2 and b2
            (w3..len, h, 1),
        ] {
            let bound = (6.0 / (fan_in + fan_out) as f64).sqrt();
            for p in &mut params[range] {
                *p = bound * (2.0 * rng.random::<f64>() - 1.0);
            }
        }
        Self { d, h, params }
    }

    pub(crate) fn num_params(&self) -> usize {
        self.params.len()
    }

    /// Forward pass on `x` (`D × b`): logits into `ws.out`, activations kept for backward.
    fn forward(&self, x: &[f64], b: usize, ws: &mut Workspace) {
        let (d, h) = (self.d, self.h);
        let [w1, b1, w2, b2, w3, b3, _] = Self::layout(d, h);
        let p = &self.params;
        ws.fit(h, b);
        let a1 = &mut ws.a1[..h * b];
        for col in a1.chunks_exact_mut(h) {
            col.copy_from_slice(&p[b1..b1 + h]);
        }
        gemm(a1, (h, b), &p[w1..b1], x, d, 1.0);
        a1.iter_mut().for_each(|v| *v = v.max(0.0));
        let a2 = &mut ws.a2[..h * b];
        for col in a2.chunks_exact_mut(h) {
            col.copy_from_slice(&p[b2..b2 + h]);
        }
        gemm(a2, (h, b), &p[w2..b2], &ws.a1[..h * b], h, 1.0);
        a2.iter_mut().for_each(|v| *v = v.max(0.0));
        let w3s = &p[w3..b3];
        for (o, col) in ws.out[..b].iter_mut().zip(ws.a2[..h * b].chunks_exact(h)) {
            *o = p[b3] + col.iter().zip(w3s).map(|(a, w)| a * w).sum::<f64>();
        }
    }

    /// Logits of the columns of `x` (`D × b`).
    pub(crate) fn logits(&self, x: &[f64], b: usize, ws: &mut Workspace) -> Vec<f64> {
        self.forward(x, b, ws);
        ws.out[..b].to_vec()
    }

    /// sklearn's batch loss — mean binary cross-entropy plus `α/2·Σ‖W‖²/b` — and its
    /// gradient (overwritten into `grad`), for the batch `x` (`D × b`) with labels `y` ∈ {0, 1}.
    pub(crate) fn loss_grad(
        &self,
        x: &[f64],
        y: &[f64],
        b: usize,
        alpha: f64,
        ws: &mut Workspace,
        grad: &mut [f64],
    ) -> f64 {
        let (d, h) = (self.d, self.h);
        let [w1, b1, w2, b2, w3, b3, _] = Self::layout(d, h);
        self.forward(x, b, ws);
        let p = &self.params;
        let bf = b as f64;
        let mut loss = 0.0;
        // δ3 = (σ(o) − y)/b, reusing `out`.
        for (o, &t) in ws.out[..b].iter_mut().zip(y) {
            loss += softplus(*o) - t * *o;
            *o = (sigmoid(*o) - t) / bf;
        }
        loss /= bf;
        let d3 = &ws.out[..b];
        // Output layer: gW3 = δ3·A2ᵀ, gb3 = Σ δ3.
        let (gw3, rest) = grad[w3..].split_at_mut(h);
        gw3.fill(0.0);
        for (col, &dj) in ws.a2[..h * b].chunks_exact(h).zip(d3) {
            for (g, a) in gw3.iter_mut().zip(col) {
                *g += dj * a;
            }
        }
        rest[0] = d3.iter().sum();
        // δ2 = W3ᵀδ3 ⊙ 1[a2 > 0].
        let w3s = &p[w3..b3];
        for ((dcol, acol), &dj) in ws.d2[..h * b]
            .chunks_exact_mut(h)
            .zip(ws.a2[..h * b].chunks_exact(h))
            .zip(d3)
        {
            for ((dv, &a), &w) in dcol.iter_mut().zip(acol).zip(w3s) {
                *dv = mask(w * dj, a > 0.0);
            }
        }
        // gW2 = δ2·A1ᵀ, gb2 = row sums of δ2.
        transpose(&ws.a1[..h * b], h, b, &mut ws.a1t);
        gemm(&mut grad[w2..b2], (h, h), &ws.d2[..h * b], &ws.a1t, b, 0.0);
        row_sums(&ws.d2[..h * b], h, &mut grad[b2..w3]);
        // δ1 = W2ᵀδ2 ⊙ 1[a1 > 0].
        transpose(&p[w2..b2], h, h, &mut ws.w2t);
        gemm(
            &mut ws.d1[..h * b],
            (h, b),
            &ws.w2t,
            &ws.d2[..h * b],
            h,
            0.0,
        );
        for (dv, &a) in ws.d1[..h * b].iter_mut().zip(&ws.a1[..h * b]) {
            *dv = mask(*dv, a > 0.0);
        }
        // gW1 = δ1·Xᵀ, gb1 = row sums of δ1.
        transpose(x, d, b, &mut ws.xt);
        gemm(&mut grad[w1..b1], (h, d), &ws.d1[..h * b], &ws.xt, b, 0.0);
        row_sums(&ws.d1[..h * b], h, &mut grad[b1..w2]);
        // L2 penalty on the weights only.
        let mut sq = 0.0;
        let c = alpha / bf;
        for r in [w1..b1, w2..b2, w3..b3] {
            for (g, &w) in grad[r.clone()].iter_mut().zip(&p[r.clone()]) {
                *g += c * w;
            }
            sq += sum_sq(&p[r]);
        }
        loss + 0.5 * alpha * sq / bf
    }
}

/// `Σ v²` with four partial sums (vectorizes; a single running sum cannot).
fn sum_sq(v: &[f64]) -> f64 {
    let mut acc = [0.0; 4];
    let chunks = v.chunks_exact(4);
    let tail: f64 = chunks.remainder().iter().map(|x| x * x).sum();
    for c in chunks {
        for k in 0..4 {
            acc[k] += c[k] * c[k];
        }
    }
    acc.iter().sum::<f64>() + tail
}

fn row_sums(m: &[f64], rows: usize, out: &mut [f64]) {
    out.fill(0.0);
    for col in m.chunks_exact(rows) {
        for (o, v) in out.iter_mut().zip(col) {
            *o += v;
        }
    }
}

/// scikit-learn's Adam: `lr_t = lr·√(1 − β₂ᵗ)/(1 − β₁ᵗ)`, `θ −= lr_t·m/(√v + ε)`.
pub(crate) struct Adam {
    lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    t: i32,
    m: Vec<f64>,
    v: Vec<f64>,
}

impl Adam {
    pub(crate) fn new(n: usize, lr: f64) -> Self {
        Self {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            t: 0,
            m: vec![0.0; n],
            v: vec![0.0; n],
        }
    }

    pub(crate) fn step(&mut self, params: &mut [f64], grad: &[f64]) {
        self.t += 1;
        let lr_t =
            self.lr * (1.0 - self.beta2.powi(self.t)).sqrt() / (1.0 - self.beta1.powi(self.t));
        for ((p, g), (m, v)) in params
            .iter_mut()
            .zip(grad)
            .zip(self.m.iter_mut().zip(self.v.iter_mut()))
        {
            *m = self.beta1 * *m + (1.0 - self.beta1) * g;
            *v = self.beta2 * *v + (1.0 - self.beta2) * g * g;
            *p -= lr_t * *m / (v.sqrt() + self.eps);
        }
    }
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
        // D = 2, H = 3: nalgebra's gemm takes its per-column (gemv) path.
        check_gradient(2, 3, 5);
    }

    #[test]
    fn gradient_matches_central_differences_gemm_path() {
        // All dimensions > 5: nalgebra hands the products to matrixmultiply.
        check_gradient(7, 9, 11);
    }

    #[test]
    fn transpose_and_mask() {
        let a: Vec<f64> = (0..35).map(f64::from).collect(); // 5 × 7
        let mut t = Vec::new();
        transpose(&a, 5, 7, &mut t);
        for i in 0..5 {
            for j in 0..7 {
                assert_eq!(t[j + i * 7], a[i + j * 5]);
            }
        }
        assert_eq!(mask(-2.5, true), -2.5);
        assert_eq!(mask(-2.5, false), 0.0);
    }

    #[test]
    fn adam_first_step_is_lr_times_sign() {
        // With m̂ = g and v̂ = g², the first step is −lr·g/(|g| + ε·…) ≈ −lr·sign(g).
        let mut a = Adam::new(2, 0.1);
        let mut p = [1.0, 1.0];
        a.step(&mut p, &[0.5, -2.0]);
        approx::assert_relative_eq!(p[0], 0.9, epsilon = 1e-6);
        approx::assert_relative_eq!(p[1], 1.1, epsilon = 1e-6);
    }
}
