//! `linalg::gemm` against a naive triple loop for every shape with each dimension in a
//! set that reaches every kernel (the register-blocked ones for a dimension ≤ 5, their
//! remainders, the tiled single-precision kernel, the general one), every transpose, in
//! both precisions, with β = 0 (C not read) and β ≠ 0.

use simfer_nn::Real;
use simfer_nn::linalg::{Op, gemm};

/// Dimensions covering 1..=5 (the small kernels), just above them, the tile remainders
/// and a hidden width of 50.
const DIMS: [usize; 11] = [1, 2, 3, 4, 5, 6, 7, 9, 17, 33, 50];

fn value(i: usize, seed: f64) -> f64 {
    ((i as f64 + 1.0) * 0.618 + seed).sin()
}

/// `α op(A) op(B) + β C` in f64, from the stored (column-major) operands.
#[allow(clippy::too_many_arguments)]
fn naive(
    (m, n, k): (usize, usize, usize),
    alpha: f64,
    a: &[f64],
    op_a: Op,
    b: &[f64],
    op_b: Op,
    beta: f64,
    c: &[f64],
) -> Vec<f64> {
    let a_at = |i: usize, l: usize| match op_a {
        Op::N => a[i + l * m],
        Op::T => a[l + i * k],
    };
    let b_at = |l: usize, j: usize| match op_b {
        Op::N => b[l + j * k],
        Op::T => b[j + l * n],
    };
    let mut out = vec![0.0; m * n];
    for j in 0..n {
        for i in 0..m {
            let s: f64 = (0..k).map(|l| a_at(i, l) * b_at(l, j)).sum();
            out[i + j * m] = alpha * s
                + if beta == 0.0 {
                    0.0
                } else {
                    beta * c[i + j * m]
                };
        }
    }
    out
}

fn check<T: Real>(tol: f64) {
    let mut cases = 0;
    for &m in &DIMS {
        for &n in &DIMS {
            for &k in &DIMS {
                let a64: Vec<f64> = (0..m * k).map(|i| value(i, 0.1)).collect();
                let b64: Vec<f64> = (0..k * n).map(|i| value(i, 0.7)).collect();
                let c64: Vec<f64> = (0..m * n).map(|i| value(i, 1.3)).collect();
                let (a, b): (Vec<T>, Vec<T>) = (
                    a64.iter().map(|v| T::of(*v)).collect(),
                    b64.iter().map(|v| T::of(*v)).collect(),
                );
                for op_a in [Op::N, Op::T] {
                    for op_b in [Op::N, Op::T] {
                        for (alpha, beta) in [(1.0, 0.0), (0.5, 2.0), (-1.0, 1.0)] {
                            let mut c: Vec<T> = if beta == 0.0 {
                                vec![T::of(f64::NAN); m * n]
                            } else {
                                c64.iter().map(|v| T::of(*v)).collect()
                            };
                            gemm(
                                m,
                                n,
                                k,
                                T::of(alpha),
                                &a,
                                op_a,
                                &b,
                                op_b,
                                T::of(beta),
                                &mut c,
                            );
                            let want = naive((m, n, k), alpha, &a64, op_a, &b64, op_b, beta, &c64);
                            for (idx, (got, w)) in c.iter().zip(&want).enumerate() {
                                let err = (got.widen() - w).abs();
                                assert!(
                                    err <= tol * (1.0 + w.abs()) * (k as f64).sqrt(),
                                    "m={m} n={n} k={k} {op_a:?}{op_b:?} α={alpha} β={beta}: \
                                     entry {idx} is {}, expected {w}",
                                    got.widen()
                                );
                            }
                            cases += 1;
                        }
                    }
                }
            }
        }
    }
    assert_eq!(cases, DIMS.len().pow(3) * 12);
}

#[test]
fn gemm_matches_the_naive_product_for_every_shape_in_f64() {
    check::<f64>(1e-13);
}

#[test]
fn gemm_matches_the_naive_product_for_every_shape_in_f32() {
    // Inputs are rounded to f32 and the products accumulate in f32: a few ulps per term.
    check::<f32>(1e-5);
}
