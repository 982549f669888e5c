//! Single-precision products for the flows' shapes on x86-64 CPUs with FMA.
//!
//! At the shapes of a MAF's training step (50 × 50 × 125 and 6 × 50 × 125 per column
//! chunk) matrixmultiply's `sgemm` spends a large part of its time copying (packing) its
//! operands: in a profile of the tutorial, 18 % packing against 28 % in its kernel.
//! Here the register kernel reads `op(B)` where it is, and `op(A)` where it is when it
//! is stored as used ([`Op::N`]) and a full tile of rows is left; only a transposed `A`
//! and a last, partial tile of rows are copied (one tile at a time, zero-padded, on the
//! stack). The kernel accumulates a tile of `C` (up to 48 rows × 8 columns in the AVX-512
//! build, 16 × 6 in the AVX2 build) in registers with fused multiply-adds: AVX-512
//! intrinsics in the first, plain Rust (`mul_add`) that the compiler vectorizes over the
//! rows in the second. Nothing is allocated.
//!
//! The result of an entry depends only on the operands (a sum over the inner dimension
//! in a fixed order, blocked by `KC`), never on the number of threads; it differs in the
//! last bits from the products of a CPU without FMA.

use crate::linalg::Op;

/// The most rows of a register tile. The AVX-512 build takes, for each block of rows,
/// the largest tile of 48, 32 or 16 rows that it fills, or a 16-row tile (zero-padded)
/// for a remainder of fewer rows; the AVX2 build tiles of 16 rows (zero-padded for a
/// remainder of 9 to 15), or 8 for a remainder of 8 or fewer.
const MR: usize = 48;
/// Inner-dimension block (bounds the stack copy of a tile of `A`).
const KC: usize = 256;

/// `C ← α·op(A)·op(B) + β·C` as [`gemm`](crate::linalg::gemm) (shapes already checked),
/// if the CPU has FMA and AVX-512F or AVX2; returns `false` (nothing done) otherwise.
#[allow(clippy::too_many_arguments)]
pub(crate) fn sgemm_fma(
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: &[f32],
    op_a: Op,
    b: &[f32],
    op_b: Op,
    beta: f32,
    c: &mut [f32],
) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("fma") {
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: the CPU supports AVX-512F and FMA (checked just above).
                unsafe { x86::sgemm_avx512(m, n, k, alpha, a, op_a, b, op_b, beta, c) };
                return true;
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU supports AVX2 and FMA (checked just above).
                unsafe { x86::sgemm_avx2(m, n, k, alpha, a, op_a, b, op_b, beta, c) };
                return true;
            }
        }
    }
    let _ = (m, n, k, alpha, a, op_a, b, op_b, beta, c);
    false
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{KC, MR, Op};

    /// The blocked product with tiles of `NR ≤ 8` columns; see the module docs. With
    /// `ZMM` (the AVX-512 build) the tiles are [`Panels::tile_zmm`]'s, written with the
    /// intrinsics; otherwise they are plain Rust with `mul_add`, vectorized by the
    /// compiler (16 rows are two AVX2 registers).
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn sgemm<const NR: usize, const ZMM: bool>(
        m: usize,
        n: usize,
        k: usize,
        alpha: f32,
        a: &[f32],
        op_a: Op,
        b: &[f32],
        op_b: Op,
        beta: f32,
        c: &mut [f32],
    ) {
        // op(B)[l, j] = b[l·b_ls + j·b_js].
        let (b_ls, b_js) = match op_b {
            Op::N => (1, k),
            Op::T => (n, 1),
        };
        // The copy of a tile of A, written before it is read: left uninitialized, so that
        // a product that copies nothing (most of them) does not clear 48 KiB first.
        let mut ap = [std::mem::MaybeUninit::<f32>::uninit(); MR * KC];
        let mut acc = [0.0f32; MR * 8];
        for k0 in (0..k).step_by(KC) {
            let kc = KC.min(k - k0);
            // Later inner blocks add to what the first one wrote.
            let beta = if k0 == 0 { beta } else { 1.0 };
            let mut i0 = 0;
            while i0 < m {
                let left = m - i0;
                let mr = match (ZMM, left) {
                    (true, 48..) => 48,
                    (true, 32..) => 32,
                    (true, _) | (false, 9..) => 16,
                    (false, _) => 8,
                };
                let rows = mr.min(left);
                // Column l of the tile of A: a_tile[l·a_ls..][..mr].
                let (a_tile, a_ls): (&[f32], usize) = if op_a == Op::N && rows == mr {
                    (&a[i0 + k0 * m..i0 + (k0 + kc - 1) * m + mr], m)
                } else {
                    let panel = &mut ap[..kc * mr];
                    for v in panel.iter_mut() {
                        v.write(0.0);
                    }
                    // SAFETY: every entry of `panel` was just initialized, and
                    // `MaybeUninit<f32>` has the layout of `f32`.
                    let panel: &mut [f32] =
                        unsafe { &mut *(std::ptr::from_mut(panel) as *mut [f32]) };
                    for t in 0..rows {
                        let i = i0 + t;
                        for (l, v) in panel.iter_mut().skip(t).step_by(mr).enumerate() {
                            *v = match op_a {
                                Op::N => a[i + (k0 + l) * m],
                                Op::T => a[k0 + l + i * k],
                            };
                        }
                    }
                    (&*panel, mr)
                };
                for j0 in (0..n).step_by(NR) {
                    let cols = NR.min(n - j0);
                    let start = k0 * b_ls + j0 * b_js;
                    let b_tile = &b[start..start + (kc - 1) * b_ls + (cols - 1) * b_js + 1];
                    let p = Panels {
                        kc,
                        a: a_tile,
                        a_ls,
                        b: b_tile,
                        b_ls,
                        b_js,
                    };
                    macro_rules! run {
                        ($($nc:literal)*) => {
                            match (mr, cols) {
                                $(
                                    // SAFETY: ZMM only in the AVX-512 build, whose CPU
                                    // has AVX-512F and FMA.
                                    (48, $nc) if ZMM => unsafe { p.tile_zmm::<3, $nc>(&mut acc) },
                                    (32, $nc) if ZMM => unsafe { p.tile_zmm::<2, $nc>(&mut acc) },
                                    (16, $nc) if ZMM => unsafe { p.tile_zmm::<1, $nc>(&mut acc) },
                                    (16, $nc) => p.tile::<16, $nc>(&mut acc),
                                    (8, $nc) => p.tile::<8, $nc>(&mut acc),
                                )*
                                _ => unreachable!("a tile of {mr} × {cols}"),
                            }
                        };
                    }
                    run!(1 2 3 4 5 6 7 8);
                    for (j, accj) in acc.chunks_exact(mr).take(cols).enumerate() {
                        let col = &mut c[i0 + (j0 + j) * m..][..rows];
                        for (cv, s) in col.iter_mut().zip(accj) {
                            *cv = if beta == 0.0 {
                                alpha * *s
                            } else {
                                beta * *cv + alpha * *s
                            };
                        }
                    }
                }
                i0 += rows;
            }
        }
    }

    /// The operands of one tile: column `l` of the `A` tile is `a[l·a_ls..][..R]`, entry
    /// `j` of row `l` of the `B` tile is `b[l·b_ls + j·b_js]`, for `l < kc`.
    struct Panels<'a> {
        kc: usize,
        a: &'a [f32],
        a_ls: usize,
        b: &'a [f32],
        b_ls: usize,
        b_js: usize,
    }

    impl Panels<'_> {
        /// `out[j·R + t] = Σ_l A[t, l]·B[l, j]` for a tile of `R` rows and `N ≤ 8`
        /// columns. The columns are written out one by one (no loop over `j`), so the
        /// compiler vectorizes over the rows and keeps the accumulators in registers.
        /// Checks that the panels hold a tile of `rows` rows and `cols` columns.
        #[inline(always)]
        fn check(&self, rows: usize, cols: usize) {
            let Panels {
                kc,
                a,
                a_ls,
                b,
                b_ls,
                b_js,
            } = *self;
            assert!(
                (1..=8).contains(&cols) && rows <= MR && kc > 0,
                "tile: shape"
            );
            assert!(a.len() >= (kc - 1) * a_ls + rows, "tile: A is too short");
            assert!(
                b.len() > (kc - 1) * b_ls + (cols - 1) * b_js,
                "tile: B is too short"
            );
        }

        /// [`tile`](Self::tile) for `16·V` rows in AVX-512 registers, written with the
        /// intrinsics: `V` loads of `A` and `N` broadcasts of `B` per `V·N` fused
        /// multiply-adds, the accumulators in registers. Each entry is the same sum, in
        /// the same order and rounding, as in `tile`.
        ///
        /// # Safety
        /// The CPU must support AVX-512F and FMA.
        #[target_feature(enable = "avx512f,fma")]
        #[inline]
        unsafe fn tile_zmm<const V: usize, const N: usize>(&self, out: &mut [f32; MR * 8]) {
            use std::arch::x86_64::{
                __m512, _mm512_fmadd_ps, _mm512_loadu_ps, _mm512_set1_ps, _mm512_setzero_ps,
                _mm512_storeu_ps,
            };
            self.check(16 * V, N);
            let Panels {
                kc,
                a,
                a_ls,
                b,
                b_ls,
                b_js,
            } = *self;
            let mut acc: [[__m512; V]; 8] = [[_mm512_setzero_ps(); V]; 8];
            for l in 0..kc {
                // SAFETY: rows l·a_ls .. l·a_ls + 16·V of `a` and entries l·b_ls + j·b_js
                // (j < N) of `b` are in bounds for l < kc (checked above).
                unsafe {
                    let ap = a.as_ptr().add(l * a_ls);
                    let mut av: [__m512; V] = [_mm512_setzero_ps(); V];
                    for (v, x) in av.iter_mut().enumerate() {
                        *x = _mm512_loadu_ps(ap.add(16 * v));
                    }
                    let bp = b.as_ptr().add(l * b_ls);
                    for (j, accj) in acc.iter_mut().enumerate().take(N) {
                        let bj = _mm512_set1_ps(*bp.add(j * b_js));
                        for (x, s) in av.iter().zip(accj.iter_mut()) {
                            *s = _mm512_fmadd_ps(*x, bj, *s);
                        }
                    }
                }
            }
            for (j, accj) in acc.iter().enumerate().take(N) {
                for (v, s) in accj.iter().enumerate() {
                    // SAFETY: j·16V + 16v + 16 ≤ 8·MR for j < N ≤ 8, v < V, 16V ≤ MR.
                    unsafe { _mm512_storeu_ps(out.as_mut_ptr().add(j * 16 * V + 16 * v), *s) };
                }
            }
        }

        #[inline(always)]
        fn tile<const R: usize, const N: usize>(&self, out: &mut [f32; MR * 8]) {
            let Panels {
                kc,
                a,
                a_ls,
                b,
                b_ls,
                b_js,
            } = *self;
            self.check(R, N);
            let mut acc = [[0.0f32; R]; 8];
            for l in 0..kc {
                let av: &[f32; R] = a[l * a_ls..l * a_ls + R].try_into().expect("R rows");
                macro_rules! column {
                    ($($j:literal)*) => {$(
                        if $j < N {
                            // SAFETY: l·b_ls + j·b_js < b.len() for l < kc, j < N
                            // (asserted above).
                            let bj = unsafe { *b.get_unchecked(l * b_ls + $j * b_js) };
                            for t in 0..R {
                                acc[$j][t] = av[t].mul_add(bj, acc[$j][t]);
                            }
                        }
                    )*};
                }
                column!(0 1 2 3 4 5 6 7);
            }
            for (o, s) in out.chunks_exact_mut(R).zip(&acc[..N]) {
                o.copy_from_slice(s);
            }
        }
    }

    /// The product in an AVX-512 build, tiles of up to `48 × 8` (24 accumulator
    /// registers; 3 loads of `A` and 8 broadcasts of `B` per 24 multiply-adds).
    ///
    /// # Safety
    /// The CPU must support AVX-512F and FMA.
    #[target_feature(enable = "avx512f,fma")]
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn sgemm_avx512(
        m: usize,
        n: usize,
        k: usize,
        alpha: f32,
        a: &[f32],
        op_a: Op,
        b: &[f32],
        op_b: Op,
        beta: f32,
        c: &mut [f32],
    ) {
        sgemm::<8, true>(m, n, k, alpha, a, op_a, b, op_b, beta, c)
    }

    /// The product in an AVX2 build, tiles of up to `16 × 6`.
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn sgemm_avx2(
        m: usize,
        n: usize,
        k: usize,
        alpha: f32,
        a: &[f32],
        op_a: Op,
        b: &[f32],
        op_b: Op,
        beta: f32,
        c: &mut [f32],
    ) {
        sgemm::<6, false>(m, n, k, alpha, a, op_a, b, op_b, beta, c)
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;
    use crate::linalg::gemm;

    type Build = unsafe fn(usize, usize, usize, f32, &[f32], Op, &[f32], Op, f32, &mut [f32]);

    /// Test entries: an irregular pattern in [−1, 1], shifted by `s` per operand.
    fn val(i: usize, s: f64) -> f64 {
        ((i * 37 % 101) as f64 * 0.37 + s).sin()
    }

    /// Runs `check(m, n, k, op_a, op_b)` on every shape with every pair of transpositions.
    fn each_case(
        shapes: &[(usize, usize, usize)],
        mut check: impl FnMut(usize, usize, usize, Op, Op),
    ) {
        for &(m, n, k) in shapes {
            for op_a in [Op::N, Op::T] {
                for op_b in [Op::N, Op::T] {
                    check(m, n, k, op_a, op_b);
                }
            }
        }
    }

    /// Both builds (whichever this CPU can run) against the f64 product.
    #[test]
    fn avx512_and_avx2_builds_match_the_f64_product() {
        if !std::arch::is_x86_feature_detected!("fma") {
            return;
        }
        let builds: [(&str, bool, Build); 2] = [
            (
                "avx512",
                std::arch::is_x86_feature_detected!("avx512f"),
                x86::sgemm_avx512,
            ),
            (
                "avx2",
                std::arch::is_x86_feature_detected!("avx2"),
                x86::sgemm_avx2,
            ),
        ];
        let shapes = [
            (50, 125, 50),
            (6, 50, 125),
            (50, 125, 6),
            (29, 17, 300),
            (9, 8, 7),
            (16, 6, 6),
            (64, 10, 20),
            (33, 7, 5),
            (40, 3, 9),
            (101, 9, 17),
            (48, 8, 3),
        ];
        each_case(&shapes, |m, n, k, op_a, op_b| {
            let a: Vec<f64> = (0..m * k).map(|i| val(i, 0.1)).collect();
            let b: Vec<f64> = (0..k * n).map(|i| val(i, 0.7)).collect();
            let c0: Vec<f64> = (0..m * n).map(|i| val(i, 1.3)).collect();
            let mut c = c0.clone();
            gemm(m, n, k, 0.5, &a, op_a, &b, op_b, 2.0, &mut c);
            let a32: Vec<f32> = a.iter().map(|v| *v as f32).collect();
            let b32: Vec<f32> = b.iter().map(|v| *v as f32).collect();
            for (name, available, f) in builds {
                if !available {
                    continue;
                }
                for beta in [0.0f32, 2.0] {
                    let mut c32: Vec<f32> = if beta == 0.0 {
                        vec![f32::NAN; m * n]
                    } else {
                        c0.iter().map(|v| *v as f32).collect()
                    };
                    // SAFETY: the CPU has the features of this build (checked).
                    unsafe { f(m, n, k, 0.5, &a32, op_a, &b32, op_b, beta, &mut c32) };
                    for (i, (x, y)) in c32.iter().zip(&c).enumerate() {
                        let expect = if beta == 0.0 { y - 2.0 * c0[i] } else { *y };
                        // Sums of k products of entries of size ≤ 1: error ≲ k·ε₃₂.
                        assert!(
                            (f64::from(*x) - expect).abs() < 1e-6 * k as f64,
                            "{name} {m}x{n}x{k} {op_a:?}{op_b:?} β={beta} entry {i}: {x} vs {expect}"
                        );
                    }
                }
            }
        });
    }

    /// Each entry is the same sum of fused multiply-adds in the same order in both builds,
    /// so an AVX-512 machine and an AVX2 machine compute the same bits (the inner
    /// dimension spans two `KC` blocks in one shape).
    #[test]
    fn avx512_and_avx2_builds_give_the_same_bits() {
        if !(std::arch::is_x86_feature_detected!("fma")
            && std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx2"))
        {
            return;
        }
        let shapes = [
            (50, 125, 50),
            (50, 50, 125),
            (6, 50, 125),
            (101, 9, 300),
            (13, 17, 5),
        ];
        each_case(&shapes, |m, n, k, op_a, op_b| {
            let a: Vec<f32> = (0..m * k).map(|i| val(i, 0.1) as f32).collect();
            let b: Vec<f32> = (0..k * n).map(|i| val(i, 0.7) as f32).collect();
            for beta in [0.0f32, 0.5] {
                let c0: Vec<f32> = (0..m * n).map(|i| val(i, 1.3) as f32).collect();
                let (mut c512, mut c2) = (c0.clone(), c0);
                // SAFETY: the CPU has AVX-512F, AVX2 and FMA (checked above).
                unsafe {
                    x86::sgemm_avx512(m, n, k, 0.7, &a, op_a, &b, op_b, beta, &mut c512);
                    x86::sgemm_avx2(m, n, k, 0.7, &a, op_a, &b, op_b, beta, &mut c2);
                }
                let same = c512
                    .iter()
                    .zip(&c2)
                    .all(|(x, y)| x.to_bits() == y.to_bits());
                assert!(
                    same,
                    "{m}x{n}x{k} {op_a:?}{op_b:?} β={beta}: the builds differ"
                );
            }
        });
    }
}
