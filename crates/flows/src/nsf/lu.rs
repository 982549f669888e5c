//! The LU-parametrized linear layer of the neural spline flow (Durkan et al. 2019, §3.2;
//! nflows' `LULinear` with `identity_init=True`):
//! ```text
//! y = L U v + b,      L unit lower triangular,  U upper triangular,
//! U_aa = softplus(ũ_a) + ε,  ε = 10⁻³,          ln |det| = Σ_a ln U_aa
//! ```
//! Its parameters, from [`offset`](LuLayout::offset): the bias `b` (`D`), the strictly
//! lower entries of `L` (`D(D−1)/2`, row by row: (1,0), (2,0), (2,1), …), the strictly
//! upper entries of `U` (`D(D−1)/2`, row by row: (0,1), (0,2), …, (1,2), …) and the
//! unconstrained diagonal `ũ` (`D`). At initialization `L = U = I` and `b = 0`. The
//! inverse is two triangular solves.

use std::ops::Range;

#[cfg(feature = "serde")]
use serde::{Deserialize, Serialize};
use simfer_nn::Real;
use simfer_nn::linalg::{Op, add_row_sums, gemm};

/// `ε` added to the softplus of each diagonal entry of `U`.
pub const LU_EPS: f64 = 1e-3;

/// The layout of one LU layer in the flat parameter vector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct LuLayout {
    /// The dimension `D`.
    pub dim: usize,
    /// Where its parameters start.
    pub offset: usize,
}

/// Entries of the dense matrices an LU layer keeps per pass: `L`, `U` (column-major
/// `D × D` each), the sigmoid of `ũ` and the diagonal of `U`.
pub(crate) fn mats_len(d: usize) -> usize {
    2 * d * d + 2 * d
}

impl LuLayout {
    /// A layer of dimension `dim` whose parameters start at `offset`.
    pub fn new(dim: usize, offset: usize) -> Self {
        LuLayout { dim, offset }
    }

    /// Number of parameters: `D² + D`.
    pub fn num_params(&self) -> usize {
        self.dim * self.dim + self.dim
    }

    /// One past the last parameter index.
    pub fn end(&self) -> usize {
        self.offset + self.num_params()
    }

    fn tri(&self) -> usize {
        self.dim * (self.dim - 1) / 2
    }

    /// The bias `b`.
    pub fn bias_range(&self) -> Range<usize> {
        self.offset..self.offset + self.dim
    }

    /// The strictly lower entries of `L`.
    pub fn lower_range(&self) -> Range<usize> {
        let s = self.offset + self.dim;
        s..s + self.tri()
    }

    /// The strictly upper entries of `U`.
    pub fn upper_range(&self) -> Range<usize> {
        let s = self.offset + self.dim + self.tri();
        s..s + self.tri()
    }

    /// The unconstrained diagonal `ũ` of `U`.
    pub fn diag_range(&self) -> Range<usize> {
        let s = self.offset + self.dim + 2 * self.tri();
        s..s + self.dim
    }

    /// The identity initialization: `b = 0`, `L = U = I` (`ũ = ln(e^{1−ε} − 1)`).
    pub fn init_identity(&self, params: &mut [f64]) {
        params[self.offset..self.end()].fill(0.0);
        let c = (1.0 - LU_EPS).exp_m1().ln();
        params[self.diag_range()].fill(c);
    }

    /// The index of `L[a, b]` (`a > b`) in the flat vector.
    fn lower_index(&self, a: usize, b: usize) -> usize {
        self.lower_range().start + a * (a - 1) / 2 + b
    }

    /// The index of `U[a, b]` (`a < b`) in the flat vector.
    fn upper_index(&self, a: usize, b: usize) -> usize {
        let d = self.dim;
        // Rows 0..a hold (d − 1) + (d − 2) + … + (d − a) entries.
        self.upper_range().start + a * (2 * d - a - 1) / 2 + (b - a - 1)
    }

    /// Fills `mats` ([`mats_len`] entries: `L`, `U`, `σ(ũ)`, `diag U`) from the
    /// parameters and returns `ln |det| = Σ ln U_aa`.
    pub(crate) fn matrices<T: Real>(&self, params: &[T], mats: &mut [T]) -> T {
        let d = self.dim;
        let (zero, one) = (T::of(0.0), T::of(1.0));
        let (l, rest) = mats.split_at_mut(d * d);
        let (u, rest) = rest.split_at_mut(d * d);
        let (sig, diag) = rest.split_at_mut(d);
        l.fill(zero);
        u.fill(zero);
        let mut log_det = zero;
        let eps = T::of(LU_EPS);
        for a in 0..d {
            l[a + a * d] = one;
            let raw = params[self.diag_range().start + a];
            let s = raw.fast_softplus() + eps;
            u[a + a * d] = s;
            diag[a] = s;
            sig[a] = raw.fast_sigmoid();
            log_det += s.fast_ln();
            for b in 0..a {
                l[a + b * d] = params[self.lower_index(a, b)];
            }
            for b in a + 1..d {
                u[a + b * d] = params[self.upper_index(a, b)];
            }
        }
        log_det
    }

    /// `uv = U v` and `w = L uv + b` for `n` columns (`D × n` each), with `mats` from
    /// [`matrices`](Self::matrices).
    pub(crate) fn forward<T: Real>(
        &self,
        params: &[T],
        mats: &[T],
        v: &[T],
        n: usize,
        uv: &mut [T],
        w: &mut [T],
    ) {
        let d = self.dim;
        let (one, zero) = (T::of(1.0), T::of(0.0));
        let (l, u) = (&mats[..d * d], &mats[d * d..2 * d * d]);
        let bias = &params[self.bias_range()];
        match d {
            2 => return forward_small::<T, 2>(l, u, bias, v, n, uv, w),
            3 => return forward_small::<T, 3>(l, u, bias, v, n, uv, w),
            4 => return forward_small::<T, 4>(l, u, bias, v, n, uv, w),
            _ => {}
        }
        gemm(d, n, d, one, u, Op::N, v, Op::N, zero, uv);
        gemm(d, n, d, one, l, Op::N, uv, Op::N, zero, w);
        for col in w[..d * n].chunks_exact_mut(d) {
            for (x, b) in col.iter_mut().zip(bias) {
                *x += *b;
            }
        }
    }

    /// The backward pass after [`forward`](Self::forward): from `g_w = ∂L/∂w` and the sum
    /// `w_sum` of the weights of the log-determinant (one per column), **adds** the
    /// parameter gradients into `grad` (if given) and **overwrites** `g_v` with `∂L/∂v`.
    /// `g_uv` (`D × n`) and `g_mats` (`2D²`) are scratch.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn backward<T: Real>(
        &self,
        mats: &[T],
        v: &[T],
        uv: &[T],
        g_w: &[T],
        n: usize,
        w_sum: T,
        grad: Option<&mut [T]>,
        g_v: &mut [T],
        g_uv: &mut [T],
        g_mats: &mut [T],
    ) {
        let d = self.dim;
        let (one, zero) = (T::of(1.0), T::of(0.0));
        let (l, u) = (&mats[..d * d], &mats[d * d..2 * d * d]);
        let (sig, diag) = (&mats[2 * d * d..2 * d * d + d], &mats[2 * d * d + d..]);
        let (gl, gu) = g_mats[..2 * d * d].split_at_mut(d * d);
        let want = grad.is_some();
        match d {
            2 => backward_small::<T, 2>(l, u, v, uv, g_w, n, want, g_v, gl, gu),
            3 => backward_small::<T, 3>(l, u, v, uv, g_w, n, want, g_v, gl, gu),
            4 => backward_small::<T, 4>(l, u, v, uv, g_w, n, want, g_v, gl, gu),
            _ => {
                gemm(d, n, d, one, l, Op::T, g_w, Op::N, zero, g_uv);
                gemm(d, n, d, one, u, Op::T, g_uv, Op::N, zero, g_v);
                if want {
                    gemm(d, d, n, one, g_w, Op::N, uv, Op::T, zero, gl);
                    gemm(d, d, n, one, g_uv, Op::N, v, Op::T, zero, gu);
                }
            }
        }
        let Some(grad) = grad else { return };
        add_row_sums(&g_w[..d * n], &mut grad[self.bias_range()]);
        for a in 0..d {
            for b in 0..a {
                grad[self.lower_index(a, b)] += gl[a + b * d];
            }
            for b in a + 1..d {
                grad[self.upper_index(a, b)] += gu[a + b * d];
            }
            grad[self.diag_range().start + a] += (gu[a + a * d] + w_sum / diag[a]) * sig[a];
        }
    }

    /// The inverse for one column in place: `v = U⁻¹ L⁻¹ (w − b)` (forward then back
    /// substitution), with `mats` from [`matrices`](Self::matrices) in `f64`.
    pub(crate) fn inverse_column(&self, params: &[f64], mats: &[f64], col: &mut [f64]) {
        let d = self.dim;
        let (l, u) = (&mats[..d * d], &mats[d * d..2 * d * d]);
        for (x, b) in col.iter_mut().zip(&params[self.bias_range()]) {
            *x -= *b;
        }
        for a in 1..d {
            let mut s = col[a];
            for b in 0..a {
                s -= l[a + b * d] * col[b];
            }
            col[a] = s;
        }
        for a in (0..d).rev() {
            let mut s = col[a];
            for b in a + 1..d {
                s -= u[a + b * d] * col[b];
            }
            col[a] = s / u[a + a * d];
        }
    }
}

/// [`LuLayout::forward`] for a small dimension `D`: per column, `uv = U v` and
/// `w = L uv + b` over the triangles only.
#[inline(always)]
fn forward_small<T: Real, const D: usize>(
    l: &[T],
    u: &[T],
    bias: &[T],
    v: &[T],
    n: usize,
    uv: &mut [T],
    w: &mut [T],
) {
    let lm: [[T; D]; D] = std::array::from_fn(|a| std::array::from_fn(|b| l[a + b * D]));
    let um: [[T; D]; D] = std::array::from_fn(|a| std::array::from_fn(|b| u[a + b * D]));
    let bias: [T; D] = std::array::from_fn(|a| bias[a]);
    let cols = v[..D * n]
        .chunks_exact(D)
        .zip(uv[..D * n].chunks_exact_mut(D))
        .zip(w[..D * n].chunks_exact_mut(D));
    for ((vc, uc), wc) in cols {
        for a in 0..D {
            let mut s = um[a][a] * vc[a];
            for b in a + 1..D {
                s += um[a][b] * vc[b];
            }
            uc[a] = s;
        }
        for a in 0..D {
            let mut s = uc[a];
            for b in 0..a {
                s += lm[a][b] * uc[b];
            }
            wc[a] = s + bias[a];
        }
    }
}

/// [`LuLayout::backward`] for a small dimension `D`: `g_v = Uᵀ Lᵀ g_w` per column and, if
/// `want`, the sums over the columns `gl = g_w uvᵀ` (strictly lower part) and
/// `gu = (Lᵀ g_w) vᵀ` (upper part), column-major `D × D`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn backward_small<T: Real, const D: usize>(
    l: &[T],
    u: &[T],
    v: &[T],
    uv: &[T],
    g_w: &[T],
    n: usize,
    want: bool,
    g_v: &mut [T],
    gl: &mut [T],
    gu: &mut [T],
) {
    let zero = T::of(0.0);
    let lm: [[T; D]; D] = std::array::from_fn(|a| std::array::from_fn(|b| l[a + b * D]));
    let um: [[T; D]; D] = std::array::from_fn(|a| std::array::from_fn(|b| u[a + b * D]));
    let mut acc_l = [[zero; D]; D];
    let mut acc_u = [[zero; D]; D];
    let cols = v[..D * n]
        .chunks_exact(D)
        .zip(uv[..D * n].chunks_exact(D))
        .zip(g_w[..D * n].chunks_exact(D))
        .zip(g_v[..D * n].chunks_exact_mut(D));
    for (((vc, uc), gc), gvc) in cols {
        let mut g_uv = [zero; D];
        for b in 0..D {
            let mut s = gc[b];
            for a in b + 1..D {
                s += lm[a][b] * gc[a];
            }
            g_uv[b] = s;
        }
        for b in 0..D {
            let mut s = zero;
            for a in 0..=b {
                s += um[a][b] * g_uv[a];
            }
            gvc[b] = s;
        }
        if want {
            for a in 0..D {
                for b in 0..a {
                    acc_l[a][b] += gc[a] * uc[b];
                }
                for b in a..D {
                    acc_u[a][b] += g_uv[a] * vc[b];
                }
            }
        }
    }
    for a in 0..D {
        for b in 0..D {
            gl[a + b * D] = acc_l[a][b];
            gu[a + b * D] = acc_u[a][b];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::DMatrix;
    use rand::{Rng, SeedableRng};

    fn layer(d: usize, seed: u64) -> (LuLayout, Vec<f64>) {
        let lu = LuLayout::new(d, 3);
        let mut p = vec![0.0; lu.end() + 2];
        let mut r = rand::rngs::StdRng::seed_from_u64(seed);
        p.iter_mut().for_each(|v| *v = r.random_range(-1.0..1.0));
        (lu, p)
    }

    #[test]
    fn ranges_cover_the_parameters_once() {
        for d in [1, 2, 3, 5, 10] {
            let lu = LuLayout::new(d, 7);
            let mut seen = vec![0; lu.num_params()];
            for r in [
                lu.bias_range(),
                lu.lower_range(),
                lu.upper_range(),
                lu.diag_range(),
            ] {
                r.for_each(|i| seen[i - 7] += 1);
            }
            assert!(seen.iter().all(|s| *s == 1));
            let mut idx: Vec<usize> = (0..d)
                .flat_map(|a| (0..a).map(move |b| (a, b)))
                .map(|(a, b)| lu.lower_index(a, b))
                .chain(
                    (0..d)
                        .flat_map(|a| (a + 1..d).map(move |b| (a, b)))
                        .map(|(a, b)| lu.upper_index(a, b)),
                )
                .collect();
            let n = idx.len();
            idx.sort();
            idx.dedup();
            assert_eq!(idx.len(), n);
            assert!(
                idx.iter()
                    .all(|i| lu.lower_range().start <= *i && *i < lu.upper_range().end)
            );
        }
        assert_eq!(LuLayout::new(2, 0).num_params(), 6);
    }

    #[test]
    fn log_det_and_inverse_match_the_explicit_matrix() {
        for d in [1, 2, 3, 6] {
            let (lu, p) = layer(d, d as u64);
            let mut mats = vec![0.0; mats_len(d)];
            let log_det = lu.matrices(&p, &mut mats);
            let l = DMatrix::from_column_slice(d, d, &mats[..d * d]);
            let u = DMatrix::from_column_slice(d, d, &mats[d * d..2 * d * d]);
            for a in 0..d {
                assert_eq!(l[(a, a)], 1.0);
                for b in a + 1..d {
                    assert_eq!(l[(a, b)], 0.0);
                    assert_eq!(u[(b, a)], 0.0);
                }
            }
            let a = &l * &u;
            assert!((a.determinant().abs().ln() - log_det).abs() < 1e-12);
            let n = 9;
            let v = DMatrix::from_fn(d, n, |i, j| ((i * 5 + j * 3) as f64).sin());
            let (mut uv, mut w) = (vec![0.0; d * n], vec![0.0; d * n]);
            lu.forward(&p, &mats, v.as_slice(), n, &mut uv, &mut w);
            let b = nalgebra::DVector::from_column_slice(&p[lu.bias_range()]);
            for j in 0..n {
                let expect = &a * v.column(j) + &b;
                for i in 0..d {
                    assert!((w[i + j * d] - expect[i]).abs() < 1e-12);
                }
                let mut col = w[j * d..(j + 1) * d].to_vec();
                lu.inverse_column(&p, &mats, &mut col);
                for i in 0..d {
                    assert!((col[i] - v[(i, j)]).abs() < 1e-12);
                }
            }
        }
        // The identity initialization is the identity.
        let lu = LuLayout::new(3, 0);
        let mut p = vec![0.5; lu.end()];
        lu.init_identity(&mut p);
        let mut mats = vec![0.0; mats_len(3)];
        let log_det = lu.matrices(&p, &mut mats);
        assert!(log_det.abs() < 1e-15);
        assert!((mats[9] - 1.0).abs() < 1e-15 && mats[12] == 0.0);
    }

    #[test]
    fn gradients_match_central_differences() {
        for d in [1, 2, 3, 4, 7] {
            let (lu, p) = layer(d, 10 + d as u64);
            let n = 6;
            let mut r = rand::rngs::StdRng::seed_from_u64(1);
            let v: Vec<f64> = (0..d * n).map(|_| r.random_range(-2.0..2.0)).collect();
            let c: Vec<f64> = (0..d * n).map(|_| r.random_range(-1.0..1.0)).collect();
            let w_sum = 0.7;
            // f = Σ c ⊙ w + w_sum · ln |det|.
            let f = |p: &[f64], v: &[f64]| {
                let mut mats = vec![0.0; mats_len(d)];
                let ld = lu.matrices(p, &mut mats);
                let (mut uv, mut w) = (vec![0.0; d * n], vec![0.0; d * n]);
                lu.forward(p, &mats, v, n, &mut uv, &mut w);
                w.iter().zip(&c).map(|(a, b)| a * b).sum::<f64>() + w_sum * ld
            };
            let mut mats = vec![0.0; mats_len(d)];
            lu.matrices(&p, &mut mats);
            let (mut uv, mut w) = (vec![0.0; d * n], vec![0.0; d * n]);
            lu.forward(&p, &mats, &v, n, &mut uv, &mut w);
            let mut grad = vec![0.0; p.len()];
            let mut g_v = vec![f64::NAN; d * n];
            let (mut g_uv, mut g_mats) = (vec![0.0; d * n], vec![0.0; 2 * d * d]);
            lu.backward(
                &mats,
                &v,
                &uv,
                &c,
                n,
                w_sum,
                Some(&mut grad),
                &mut g_v,
                &mut g_uv,
                &mut g_mats,
            );
            let h = 1e-6;
            for i in 0..p.len() {
                let mut q = p.clone();
                q[i] += h;
                let fp = f(&q, &v);
                q[i] -= 2.0 * h;
                let fd = (fp - f(&q, &v)) / (2.0 * h);
                assert!(
                    (fd - grad[i]).abs() < 1e-7 * (1.0 + fd.abs()),
                    "D={d} p{i}: {fd} vs {}",
                    grad[i]
                );
            }
            for i in 0..v.len() {
                let mut q = v.clone();
                q[i] += h;
                let fp = f(&p, &q);
                q[i] -= 2.0 * h;
                let fd = (fp - f(&p, &q)) / (2.0 * h);
                assert!((fd - g_v[i]).abs() < 1e-7 * (1.0 + fd.abs()), "D={d} v{i}");
            }
        }
    }
}
