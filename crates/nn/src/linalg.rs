//! Matrix products on column-major slices, with transposes taken as strides.
//!
//! Large products go through nalgebra's `gemm` (which calls `matrixmultiply` with
//! arbitrary strides, so a transposed operand costs no copy); products with a dimension
//! of 5 or less, where that path does not apply, use a simple loop kernel.

use nalgebra::{DMatrixView, DMatrixViewMut, Dyn};

use crate::precision::Real;

/// Below or at this size in any dimension, nalgebra would fall back to per-column
/// `gemv`; we use [`small_gemm`] instead.
const SMALL: usize = 5;

/// Whether an operand is used as stored or transposed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Use the matrix as stored.
    N,
    /// Use its transpose.
    T,
}

/// `C ← α·op(A)·op(B) + β·C`, all column-major and contiguous, in `f64` or `f32`.
///
/// `C` is `m × n`; `op(A)` is `m × k` (so `A` is stored `m × k` for [`Op::N`] and `k × m`
/// for [`Op::T`]); `op(B)` is `k × n`. With `β = 0`, `C` is not read (NaNs in it are
/// overwritten).
///
/// # Panics
/// If a slice is shorter than its shape requires.
#[allow(clippy::too_many_arguments)]
pub fn gemm<T: Real>(
    m: usize,
    n: usize,
    k: usize,
    alpha: T,
    a: &[T],
    op_a: Op,
    b: &[T],
    op_b: Op,
    beta: T,
    c: &mut [T],
) {
    assert!(
        a.len() >= m * k,
        "gemm: A has {} entries, needs {}",
        a.len(),
        m * k
    );
    assert!(
        b.len() >= k * n,
        "gemm: B has {} entries, needs {}",
        b.len(),
        k * n
    );
    assert!(
        c.len() >= m * n,
        "gemm: C has {} entries, needs {}",
        c.len(),
        m * n
    );
    if m == 0 || n == 0 {
        return;
    }
    if m <= SMALL || n <= SMALL || k <= SMALL {
        small_gemm(m, n, k, alpha, a, op_a, b, op_b, beta, c);
        return;
    }
    if T::gemm_tiled(m, n, k, alpha, a, op_a, b, op_b, beta, c) {
        return;
    }
    let av = strided(a, m, k, op_a);
    let bv = strided(b, k, n, op_b);
    let mut cv = DMatrixViewMut::from_slice(&mut c[..m * n], m, n);
    cv.gemm(alpha, &av, &bv, beta);
}

/// A view of `op(X)` (`rows × cols`) over the column-major storage of `X`.
fn strided<T: Real>(x: &[T], rows: usize, cols: usize, op: Op) -> DMatrixView<'_, T, Dyn, Dyn> {
    match op {
        Op::N => DMatrixView::from_slice_with_strides(&x[..rows * cols], rows, cols, 1, rows),
        Op::T => DMatrixView::from_slice_with_strides(&x[..rows * cols], rows, cols, cols, 1),
    }
}

crate::fastmath::simd_dispatch!(
    #[allow(clippy::too_many_arguments)]
    fn small_gemm<T: Real>(m: usize, n: usize, k: usize, alpha: T, a: &[T], op_a: Op, b: &[T], op_b: Op, beta: T, c: &mut [T]) => small_gemm_g
);

crate::fastmath::simd_dispatch!(
    /// Dot product in a fixed summation order (the same bits on every CPU).
    pub fn dot<T: Real>(x: &[T], y: &[T]) -> T => dot_g
);

/// Dot product with four interleaved accumulators (a fixed summation order, so every
/// build gives the same bits, and it vectorizes).
#[inline(always)]
pub(crate) fn dot_g<T: Real>(x: &[T], y: &[T]) -> T {
    let zero = T::of(0.0);
    let mut acc = [zero; 4];
    let xc = x.chunks_exact(4);
    let yc = y.chunks_exact(4);
    let (xr, yr) = (xc.remainder(), yc.remainder());
    for (a, b) in xc.zip(yc) {
        for t in 0..4 {
            acc[t] += a[t] * b[t];
        }
    }
    let mut tail = zero;
    for (a, b) in xr.iter().zip(yr) {
        tail += *a * *b;
    }
    ((acc[0] + acc[1]) + (acc[2] + acc[3])) + tail
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn small_gemm_g<T: Real>(
    m: usize,
    n: usize,
    k: usize,
    alpha: T,
    a: &[T],
    op_a: Op,
    b: &[T],
    op_b: Op,
    beta: T,
    c: &mut [T],
) {
    let (zero, one) = (T::of(0.0), T::of(1.0));
    // Register-blocked kernels for the shapes of the flows (an inner or outer
    // dimension equal to D or C, at most 5); the loops below handle the rest.
    macro_rules! by_const {
        ($f:ident, $v:expr, $($arg:expr),*) => {
            match $v {
                1 => return $f::<T, 1>($($arg),*),
                2 => return $f::<T, 2>($($arg),*),
                3 => return $f::<T, 3>($($arg),*),
                4 => return $f::<T, 4>($($arg),*),
                5 => return $f::<T, 5>($($arg),*),
                _ => {}
            }
        };
    }
    match op_a {
        Op::N if k <= SMALL => by_const!(small_k, k, m, n, alpha, a, b, op_b, beta, c),
        Op::N if n <= SMALL => by_const!(small_n, n, m, k, alpha, a, b, op_b, beta, c),
        Op::N if m <= SMALL => by_const!(small_rows, m, n, k, alpha, a, b, op_b, beta, c),
        Op::T if m <= SMALL && op_b == Op::N => by_const!(small_m, m, n, k, alpha, a, b, beta, c),
        Op::T if k <= SMALL && op_b == Op::N => by_const!(small_k_t, k, m, n, alpha, a, b, beta, c),
        _ => {}
    }
    let b_at = |l: usize, j: usize| match op_b {
        Op::N => b[l + j * k],
        Op::T => b[j + l * n],
    };
    for j in 0..n {
        let cj = &mut c[j * m..(j + 1) * m];
        if beta == zero {
            cj.fill(zero);
        } else if beta != one {
            cj.iter_mut().for_each(|v| *v *= beta);
        }
        match op_a {
            Op::N => {
                for l in 0..k {
                    let coef = alpha * b_at(l, j);
                    let acol = &a[l * m..(l + 1) * m];
                    for (ci, ai) in cj.iter_mut().zip(acol) {
                        *ci += coef * *ai;
                    }
                }
            }
            Op::T => {
                for (i, ci) in cj.iter_mut().enumerate() {
                    let arow = &a[i * k..(i + 1) * k];
                    let s = match op_b {
                        Op::N => dot_g(arow, &b[j * k..(j + 1) * k]),
                        Op::T => {
                            let mut s = zero;
                            for (l, x) in arow.iter().enumerate() {
                                s += *x * b[j + l * n];
                            }
                            s
                        }
                    };
                    *ci += alpha * s;
                }
            }
        }
    }
}

/// `C ← βC + α A·op(B)` with `A` (`m × K`) stored as is and `K ≤ 5`: one pass over
/// each output column.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn small_k<T: Real, const K: usize>(
    m: usize,
    n: usize,
    alpha: T,
    a: &[T],
    b: &[T],
    op_b: Op,
    beta: T,
    c: &mut [T],
) {
    let zero = T::of(0.0);
    let cols: [&[T]; K] = std::array::from_fn(|l| &a[l * m..(l + 1) * m]);
    let coef_at = |j: usize, l: usize| {
        alpha
            * match op_b {
                Op::N => b[l + j * K],
                Op::T => b[j + l * n],
            }
    };
    if beta == zero {
        // The same sums in the same order as below, one pass per term so that each
        // pass vectorizes.
        for (j, cj) in c[..m * n].chunks_exact_mut(m).enumerate() {
            cj.fill(zero);
            for (l, col) in cols.iter().enumerate() {
                let coef = coef_at(j, l);
                for (ci, ai) in cj.iter_mut().zip(*col) {
                    *ci += coef * *ai;
                }
            }
        }
        return;
    }
    for j in 0..n {
        let coef: [T; K] = std::array::from_fn(|l| coef_at(j, l));
        let cj = &mut c[j * m..(j + 1) * m];
        for (i, ci) in cj.iter_mut().enumerate() {
            let mut s = zero;
            for l in 0..K {
                s += coef[l] * cols[l][i];
            }
            *ci = beta * *ci + s;
        }
    }
}

/// `C ← βC + α A·op(B)` with `A` (`m × k`) stored as is and `N ≤ 5` output columns:
/// blocks of 8 rows accumulate all `N` columns in registers over `k`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn small_n<T: Real, const N: usize>(
    m: usize,
    k: usize,
    alpha: T,
    a: &[T],
    b: &[T],
    op_b: Op,
    beta: T,
    c: &mut [T],
) {
    const R: usize = 8;
    let zero = T::of(0.0);
    let b_at = |l: usize, j: usize| match op_b {
        Op::N => b[l + j * k],
        Op::T => b[j + l * N],
    };
    let store = |ci: &mut T, s: T| store_scaled(ci, s, alpha, beta);
    let full = m / R * R;
    for i0 in (0..full).step_by(R) {
        let mut acc = [[zero; R]; N];
        for l in 0..k {
            let base = i0 + l * m;
            let av: &[T; R] = a[base..base + R].try_into().expect("block of R rows");
            for (j, accj) in acc.iter_mut().enumerate() {
                let cf = b_at(l, j);
                for t in 0..R {
                    accj[t] += cf * av[t];
                }
            }
        }
        for (j, accj) in acc.iter().enumerate() {
            for (ci, s) in c[j * m + i0..j * m + i0 + R].iter_mut().zip(accj) {
                store(ci, *s);
            }
        }
    }
    for i in full..m {
        for j in 0..N {
            let mut s = zero;
            for l in 0..k {
                s += b_at(l, j) * a[i + l * m];
            }
            store(&mut c[j * m + i], s);
        }
    }
}

/// `C ← βC + α Aᵀ·B` with `A` stored `k × M`, `M ≤ 5`: each column of `B` is read once
/// for all `M` dot products (8 interleaved partial sums each, a fixed order).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn small_m<T: Real, const M: usize>(
    n: usize,
    k: usize,
    alpha: T,
    a: &[T],
    b: &[T],
    beta: T,
    c: &mut [T],
) {
    const R: usize = 8;
    let zero = T::of(0.0);
    let cols: [&[T]; M] = std::array::from_fn(|i| &a[i * k..(i + 1) * k]);
    for j in 0..n {
        let bj = &b[j * k..(j + 1) * k];
        let mut acc = [[zero; R]; M];
        let full = k / R * R;
        for l0 in (0..full).step_by(R) {
            let bv: [T; R] = std::array::from_fn(|t| bj[l0 + t]);
            for i in 0..M {
                for t in 0..R {
                    acc[i][t] += cols[i][l0 + t] * bv[t];
                }
            }
        }
        for i in 0..M {
            let mut tail = zero;
            for l in full..k {
                tail += cols[i][l] * bj[l];
            }
            let p = &acc[i];
            let s = (((p[0] + p[1]) + (p[2] + p[3])) + ((p[4] + p[5]) + (p[6] + p[7]))) + tail;
            store_scaled(&mut c[i + j * M], s, alpha, beta);
        }
    }
}

/// `c ← β·c + α·s`, or `α·s` when `β = 0` (then `c` is not read).
#[inline(always)]
fn store_scaled<T: Real>(c: &mut T, s: T, alpha: T, beta: T) {
    *c = if beta == T::of(0.0) {
        alpha * s
    } else {
        beta * *c + alpha * s
    };
}

/// `C ← βC + α A·op(B)` with `A` (`M × k`) stored as is and `M ≤ 5` output rows (an
/// output layer's product, `op(B)` = its input, and its weight gradient, `op(B)` = the
/// input transposed). Each entry is one sequential sum over `k`; blocks of columns of
/// `C` accumulate in registers.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn small_rows<T: Real, const M: usize>(
    n: usize,
    k: usize,
    alpha: T,
    a: &[T],
    b: &[T],
    op_b: Op,
    beta: T,
    c: &mut [T],
) {
    let zero = T::of(0.0);
    match op_b {
        Op::T => {
            // B is stored n × k: row l of op(B) is B's column l, contiguous.
            const R: usize = 16;
            let full = n / R * R;
            for j0 in (0..full).step_by(R) {
                let mut acc = [[zero; R]; M];
                for l in 0..k {
                    let bv: &[T; R] = b[j0 + l * n..j0 + l * n + R]
                        .try_into()
                        .expect("block of R columns");
                    let av = &a[l * M..(l + 1) * M];
                    for (acci, ai) in acc.iter_mut().zip(av) {
                        for t in 0..R {
                            acci[t] += *ai * bv[t];
                        }
                    }
                }
                for (i, acci) in acc.iter().enumerate() {
                    for (t, s) in acci.iter().enumerate() {
                        store_scaled(&mut c[i + (j0 + t) * M], *s, alpha, beta);
                    }
                }
            }
            for j in full..n {
                for i in 0..M {
                    let mut s = zero;
                    for l in 0..k {
                        s += a[i + l * M] * b[j + l * n];
                    }
                    store_scaled(&mut c[i + j * M], s, alpha, beta);
                }
            }
        }
        Op::N => {
            // B is stored k × n: column j of op(B) is contiguous.
            const R: usize = 8;
            let full = n / R * R;
            for j0 in (0..full).step_by(R) {
                let mut acc = [[zero; M]; R];
                for l in 0..k {
                    let av: [T; M] = std::array::from_fn(|i| a[i + l * M]);
                    for (t, acct) in acc.iter_mut().enumerate() {
                        let bv = b[l + (j0 + t) * k];
                        for i in 0..M {
                            acct[i] += av[i] * bv;
                        }
                    }
                }
                for (t, acct) in acc.iter().enumerate() {
                    for (i, s) in acct.iter().enumerate() {
                        store_scaled(&mut c[i + (j0 + t) * M], *s, alpha, beta);
                    }
                }
            }
            for j in full..n {
                let bj = &b[j * k..(j + 1) * k];
                for i in 0..M {
                    let mut s = zero;
                    for (l, bl) in bj.iter().enumerate() {
                        s += a[i + l * M] * *bl;
                    }
                    store_scaled(&mut c[i + j * M], s, alpha, beta);
                }
            }
        }
    }
}

/// `C ← βC + α Aᵀ·B` with `A` stored `K × m`, `K ≤ 5`, and `B` stored `K × n` (the
/// input gradient of an output layer): blocks of 64 of `A`'s columns are copied once into
/// `K` contiguous rows, then every column of `C` is a sequential sum of `K` scaled rows.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn small_k_t<T: Real, const K: usize>(
    m: usize,
    n: usize,
    alpha: T,
    a: &[T],
    b: &[T],
    beta: T,
    c: &mut [T],
) {
    const R: usize = 64;
    let zero = T::of(0.0);
    let mut at = [[zero; R]; K];
    for i0 in (0..m).step_by(R) {
        let rb = R.min(m - i0);
        for t in 0..rb {
            for (l, row) in at.iter_mut().enumerate() {
                row[t] = a[l + (i0 + t) * K];
            }
        }
        for j in 0..n {
            let coef: [T; K] = std::array::from_fn(|l| b[l + j * K]);
            let cj = &mut c[j * m + i0..j * m + i0 + rb];
            if beta == zero {
                for (t, ci) in cj.iter_mut().enumerate() {
                    let mut s = zero;
                    for l in 0..K {
                        s += coef[l] * at[l][t];
                    }
                    *ci = alpha * s;
                }
            } else {
                for (t, ci) in cj.iter_mut().enumerate() {
                    let mut s = zero;
                    for l in 0..K {
                        s += coef[l] * at[l][t];
                    }
                    *ci = beta * *ci + alpha * s;
                }
            }
        }
    }
}

crate::fastmath::simd_dispatch!(
    /// `out[i] += Σ_j x[i, j]` for a column-major block with `out.len()` rows.
    pub fn add_row_sums<T: Real>(x: &[T], out: &mut [T]) => add_row_sums_g
);

crate::fastmath::simd_dispatch!(
    /// `a[i] += b[i]`.
    pub fn add_assign<T: Real>(a: &mut [T], b: &[T]) => add_assign_g
);

crate::fastmath::simd_dispatch!(
    /// `a[i] *= b[i]`.
    pub fn mul_assign<T: Real>(a: &mut [T], b: &[T]) => mul_assign_g
);

#[inline(always)]
fn mul_assign_g<T: Real>(a: &mut [T], b: &[T]) {
    for (x, y) in a.iter_mut().zip(b) {
        *x *= *y;
    }
}

#[inline(always)]
fn add_assign_g<T: Real>(a: &mut [T], b: &[T]) {
    for (x, y) in a.iter_mut().zip(b) {
        *x += *y;
    }
}

#[inline(always)]
fn add_row_sums_g<T: Real>(x: &[T], out: &mut [T]) {
    let rows = out.len();
    if rows == 0 {
        return;
    }
    for col in x.chunks_exact(rows) {
        for (o, v) in out.iter_mut().zip(col) {
            *o += *v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::DMatrix;

    fn mat(r: usize, c: usize, seed: f64) -> DMatrix<f64> {
        DMatrix::from_fn(r, c, |i, j| ((i * 31 + j * 17) as f64 * 0.37 + seed).sin())
    }

    #[test]
    fn gemm_matches_naive_product_for_all_shapes_and_transposes() {
        for &(m, n, k) in &[
            (13, 4, 21),
            (4, 9, 13),
            (5, 5, 5),
            (17, 5, 7),
            (9, 7, 5),
            (7, 9, 11),
            (3, 40, 6),
            (40, 3, 50),
            (50, 60, 2),
            (1, 1, 1),
            (6, 8, 50),
            // The output-layer shapes: few rows, many columns, blocks plus remainders.
            (4, 50, 125),
            (1, 50, 203),
            (5, 37, 19),
            (2, 23, 64),
            (50, 125, 4),
            (70, 9, 3),
            (130, 6, 1),
        ] {
            for op_a in [Op::N, Op::T] {
                for op_b in [Op::N, Op::T] {
                    let a = mat(m, k, 0.1);
                    let b = mat(k, n, 0.7);
                    let a_store = if op_a == Op::N {
                        a.clone()
                    } else {
                        a.transpose()
                    };
                    let b_store = if op_b == Op::N {
                        b.clone()
                    } else {
                        b.transpose()
                    };
                    let c0 = mat(m, n, 1.3);
                    let mut c = c0.clone();
                    gemm(
                        m,
                        n,
                        k,
                        0.5,
                        a_store.as_slice(),
                        op_a,
                        b_store.as_slice(),
                        op_b,
                        2.0,
                        c.as_mut_slice(),
                    );
                    let expect = &a * &b * 0.5 + &c0 * 2.0;
                    approx::assert_relative_eq!(c, expect, epsilon = 1e-12);
                    let mut c = DMatrix::from_element(m, n, f64::NAN);
                    gemm(
                        m,
                        n,
                        k,
                        1.0,
                        a_store.as_slice(),
                        op_a,
                        b_store.as_slice(),
                        op_b,
                        0.0,
                        c.as_mut_slice(),
                    );
                    approx::assert_relative_eq!(c, &a * &b, epsilon = 1e-12);
                }
            }
        }
    }

    #[test]
    fn f32_gemm_matches_f64_gemm_to_single_precision() {
        for &(m, n, k) in &[
            (13, 4, 21),
            (4, 9, 13),
            (50, 125, 50),
            (6, 50, 125),
            (50, 7, 3),
        ] {
            for op_a in [Op::N, Op::T] {
                for op_b in [Op::N, Op::T] {
                    let (a, b, c0) = (mat(m, k, 0.1), mat(k, n, 0.7), mat(m, n, 1.3));
                    let mut c = c0.clone();
                    gemm(
                        m,
                        n,
                        k,
                        0.5,
                        a.as_slice(),
                        op_a,
                        b.as_slice(),
                        op_b,
                        2.0,
                        c.as_mut_slice(),
                    );
                    let (a32, b32) = (a.map(|v| v as f32), b.map(|v| v as f32));
                    let mut c32 = c0.map(|v| v as f32);
                    gemm(
                        m,
                        n,
                        k,
                        0.5f32,
                        a32.as_slice(),
                        op_a,
                        b32.as_slice(),
                        op_b,
                        2.0,
                        c32.as_mut_slice(),
                    );
                    // Sums of k products of entries of size ≤ 1: absolute error ≲ k·ε₃₂.
                    let err = (c32.map(f64::from) - &c).amax();
                    assert!(
                        err < 1e-6 * k as f64,
                        "{m}x{n}x{k} {op_a:?}{op_b:?}: {err:e}"
                    );
                }
            }
        }
    }
}
