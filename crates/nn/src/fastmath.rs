//! Fast, accurate elementary functions that the compiler can vectorize.
//!
//! The hot loops of a flow evaluate `tanh` hundreds of thousands of times per training
//! step; the platform `tanh` (10–20 ns) would dominate. The functions here are written
//! branch-free (both branches computed, one selected) with a polynomial `exp`, so a loop
//! over a slice compiles to SIMD code. On x86-64 the slice functions switch at run time
//! to an AVX-512 or AVX2 build of the same code when the CPU has it. Those builds do the
//! same arithmetic (no fused multiply-add) and give the same bits as the scalar
//! functions, except the `tanh` slice functions, which use fused multiply-adds in their
//! polynomial where the CPU has FMA (1.5× faster; within an ulp or so of [`tanh`]).
//! Either way the result for an element never depends on the other elements or on the
//! number of threads.
//!
//! Accuracy, checked against the standard library in the tests: `exp`, `tanh`,
//! `sigmoid` and `softplus` agree to a few units in the last place (relative error
//! below 1e-15) over their whole range.
//!
//! Each function has a single-precision twin ([`exp_f32`], [`tanh_f32`], …: the same
//! algorithms with shorter polynomials, relative error below 2·`f32::EPSILON`), and the
//! slice functions are generic over the [`Real`] type (`f64` or `f32`; an AVX-512
//! register holds 16 lanes of `f32`, twice as many as of `f64`).

// The constants are written with all the digits of their sources.
#![allow(clippy::excessive_precision)]

use crate::precision::Real;

const LOG2E: f64 = std::f64::consts::LOG2_E;
// ln 2 split so that n·LN2_HI is exact for |n| < 2^11 (fdlibm's constants).
const LN2_HI: f64 = 6.931_471_803_691_238_164_9e-1;
const LN2_LO: f64 = 1.908_214_929_270_587_700_02e-10;
// 1.5·2^52: adding it rounds to an integer held in the low mantissa bits.
const MAGIC: f64 = 6_755_399_441_055_744.0;

/// `e^r · 2^k` pieces: returns (polynomial e^r, k) for `x = k ln2 + r`, |r| ≤ ln2/2.
#[inline(always)]
fn exp_reduce(x: f64) -> (f64, i64) {
    let t = x * LOG2E + MAGIC;
    let n = t - MAGIC;
    let r = (x - n * LN2_HI) - n * LN2_LO;
    // Taylor polynomial of degree 13: truncation error < 5e-18 on |r| ≤ 0.3466.
    let mut p = 1.0 / 6_227_020_800.0;
    p = p * r + 1.0 / 479_001_600.0;
    p = p * r + 1.0 / 39_916_800.0;
    p = p * r + 1.0 / 3_628_800.0;
    p = p * r + 1.0 / 362_880.0;
    p = p * r + 1.0 / 40_320.0;
    p = p * r + 1.0 / 5_040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    let k = (t.to_bits() as i64).wrapping_sub(MAGIC.to_bits() as i64);
    (p, k)
}

/// `2^k` for `-1022 ≤ k ≤ 1023`.
#[inline(always)]
fn pow2(k: i64) -> f64 {
    f64::from_bits(((k + 1023) as u64) << 52)
}

/// `e^x` for `x` in `[-708, 709]` (no range handling; internal fast path).
#[inline(always)]
fn exp_in_range(x: f64) -> f64 {
    let (p, k) = exp_reduce(x);
    p * pow2(k)
}

/// `e^x`, correct over the whole range (overflow to `inf`, gradual underflow to 0, NaN
/// propagates).
#[inline(always)]
pub fn exp(x: f64) -> f64 {
    let xc = x.clamp(-746.0, 710.0);
    let (p, k) = exp_reduce(xc);
    // Split the scaling in two so that both factors are normal numbers.
    let k1 = k >> 1;
    p * pow2(k1) * pow2(k - k1)
}

/// Hyperbolic tangent, as `−sign(x)·m/(2 + m)` with `m = e^{−2|x|} − 1` computed without
/// cancellation (`e^r − 1 = r·q(r)` on the reduced argument), so one formula is accurate
/// over the whole range.
#[inline(always)]
pub fn tanh(x: f64) -> f64 {
    tanh_impl::<false>(x)
}

/// `a·b + c`, fused (one rounding) when `FMA`.
#[inline(always)]
fn madd<const FMA: bool>(a: f64, b: f64, c: f64) -> f64 {
    if FMA { a.mul_add(b, c) } else { a * b + c }
}

/// [`tanh`], with fused multiply-adds in the polynomial when `FMA` (used only where the
/// CPU has FMA; results then differ from [`tanh`] by an ulp or so).
#[inline(always)]
fn tanh_impl<const FMA: bool>(x: f64) -> f64 {
    let ax = x.abs();
    // tanh(20) = 1 in f64.
    let y = -2.0 * if ax > 20.0 { 20.0 } else { ax };
    let t = y * LOG2E + MAGIC;
    let n = t - MAGIC;
    let r = (y - n * LN2_HI) - n * LN2_LO;
    // q(r) = (e^r − 1)/r, Taylor to degree 13 of e^r.
    let mut q = 1.0 / 6_227_020_800.0;
    q = madd::<FMA>(q, r, 1.0 / 479_001_600.0);
    q = madd::<FMA>(q, r, 1.0 / 39_916_800.0);
    q = madd::<FMA>(q, r, 1.0 / 3_628_800.0);
    q = madd::<FMA>(q, r, 1.0 / 362_880.0);
    q = madd::<FMA>(q, r, 1.0 / 40_320.0);
    q = madd::<FMA>(q, r, 1.0 / 5_040.0);
    q = madd::<FMA>(q, r, 1.0 / 720.0);
    q = madd::<FMA>(q, r, 1.0 / 120.0);
    q = madd::<FMA>(q, r, 1.0 / 24.0);
    q = madd::<FMA>(q, r, 1.0 / 6.0);
    q = madd::<FMA>(q, r, 0.5);
    q = madd::<FMA>(q, r, 1.0);
    let k = (t.to_bits() as i64).wrapping_sub(MAGIC.to_bits() as i64);
    let scale = pow2(k);
    // e^y − 1 = 2^k (1 + r q) − 1 = 2^k r q + (2^k − 1), both terms exact or small.
    let m = scale * (r * q) + (scale - 1.0);
    let res = (-m / (2.0 + m)).copysign(x);
    if x.is_nan() { x } else { res }
}

/// Logistic sigmoid `1 / (1 + e^{−x})`.
#[inline(always)]
pub fn sigmoid(x: f64) -> f64 {
    let xc = x.clamp(-708.0, 708.0);
    1.0 / (1.0 + exp_in_range(-xc))
}

const SQRT2_M1: f64 = std::f64::consts::SQRT_2 - 1.0;
const LN2: f64 = std::f64::consts::LN_2;

/// `ln(1 + e)` for `e` in `[0, 1]`, via `2 atanh(s)` with |s| ≤ 0.172.
#[inline(always)]
fn log1p_unit(e: f64) -> f64 {
    let big = e > SQRT2_M1;
    // e ≤ √2−1: ln(1+e) = 2 atanh(e/(2+e));  e > √2−1: ln 2 + 2 atanh((e−1)/(e+3)).
    let num = if big { e - 1.0 } else { e };
    let den = if big { e + 3.0 } else { e + 2.0 };
    let off = if big { LN2 } else { 0.0 };
    let s = num / den;
    let s2 = s * s;
    let mut p = 1.0 / 21.0;
    p = p * s2 + 1.0 / 19.0;
    p = p * s2 + 1.0 / 17.0;
    p = p * s2 + 1.0 / 15.0;
    p = p * s2 + 1.0 / 13.0;
    p = p * s2 + 1.0 / 11.0;
    p = p * s2 + 1.0 / 9.0;
    p = p * s2 + 1.0 / 7.0;
    p = p * s2 + 1.0 / 5.0;
    p = p * s2 + 1.0 / 3.0;
    p = p * s2 + 1.0;
    off + 2.0 * s * p
}

/// Natural logarithm (NaN for negative or NaN input, −∞ at 0, ∞ at ∞).
#[inline(always)]
pub fn ln(x: f64) -> f64 {
    // Subnormals are scaled into the normal range first.
    let sub = x < f64::MIN_POSITIVE;
    let xs = if sub { x * 18_014_398_509_481_984.0 } else { x }; // 2^54
    let bits = xs.to_bits() as i64;
    let mut e = ((bits >> 52) & 0x7ff) - 1023 - if sub { 54 } else { 0 };
    // Mantissa in [1, 2), then moved to [√½, √2).
    let mut m = f64::from_bits(((bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000) as u64);
    let big = m > std::f64::consts::SQRT_2;
    m = if big { 0.5 * m } else { m };
    e += i64::from(big);
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    let mut p = 1.0 / 21.0;
    p = p * s2 + 1.0 / 19.0;
    p = p * s2 + 1.0 / 17.0;
    p = p * s2 + 1.0 / 15.0;
    p = p * s2 + 1.0 / 13.0;
    p = p * s2 + 1.0 / 11.0;
    p = p * s2 + 1.0 / 9.0;
    p = p * s2 + 1.0 / 7.0;
    p = p * s2 + 1.0 / 5.0;
    p = p * s2 + 1.0 / 3.0;
    let ef = e as f64;
    // ln m = 2s + 2s³(1/3 + …); keep the leading term separate for accuracy.
    let r = ef * LN2_HI + (2.0 * s + (2.0 * s * s2 * p + ef * LN2_LO));
    let special = if x == 0.0 {
        f64::NEG_INFINITY
    } else if x == f64::INFINITY {
        x
    } else {
        f64::NAN
    };
    if x > 0.0 && x < f64::INFINITY {
        r
    } else {
        special
    }
}

/// Softplus `ln(1 + e^x)`, computed stably as `max(x, 0) + ln(1 + e^{−|x|})`.
#[inline(always)]
pub fn softplus(x: f64) -> f64 {
    let ax = x.abs();
    let e = exp(-ax);
    let pos = if x > 0.0 { x } else { 0.0 };
    let r = pos + log1p_unit(e);
    if x.is_nan() { x } else { r }
}

/// [`tanh`] with fused multiply-adds in its polynomial (for code compiled with FMA).
#[inline(always)]
pub(crate) fn tanh_fma(x: f64) -> f64 {
    tanh_impl::<true>(x)
}

// ---------------------------------------------------------------------------------------
// Single precision: the same algorithms with polynomials of the degree f32 needs.

const LOG2E_F32: f32 = std::f32::consts::LOG2_E;
// ln 2 split so that n·LN2_HI_F32 is exact for |n| < 2^14 (Cephes' constants).
const LN2_HI_F32: f32 = 0.693_359_375;
const LN2_LO_F32: f32 = -2.121_944_4e-4;
// 1.5·2^23: adding it rounds to an integer held in the low mantissa bits.
const MAGIC_F32: f32 = 12_582_912.0;

/// `(e^r, k)` for `x = k ln2 + r`, |r| ≤ ln2/2 (single precision).
#[inline(always)]
fn exp_reduce_f32(x: f32) -> (f32, i32) {
    let t = x * LOG2E_F32 + MAGIC_F32;
    let n = t - MAGIC_F32;
    let r = (x - n * LN2_HI_F32) - n * LN2_LO_F32;
    // Taylor polynomial of degree 7: truncation error < 6e-9 on |r| ≤ 0.347.
    let mut p = 1.0 / 5_040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    let k = (t.to_bits() as i32).wrapping_sub(MAGIC_F32.to_bits() as i32);
    (p, k)
}

/// `2^k` for `-126 ≤ k ≤ 127` (single precision).
#[inline(always)]
fn pow2_f32(k: i32) -> f32 {
    f32::from_bits(((k + 127) as u32) << 23)
}

/// `e^x` in single precision, correct over the whole range (overflow to `inf`, gradual
/// underflow to 0, NaN propagates).
#[inline(always)]
pub fn exp_f32(x: f32) -> f32 {
    let xc = x.clamp(-104.0, 89.0);
    let (p, k) = exp_reduce_f32(xc);
    let k1 = k >> 1;
    p * pow2_f32(k1) * pow2_f32(k - k1)
}

/// [`tanh`] in single precision (the same formula).
#[inline(always)]
pub fn tanh_f32(x: f32) -> f32 {
    tanh_f32_impl::<false>(x)
}

/// [`tanh_f32`] with fused multiply-adds in its polynomial (for code compiled with FMA).
#[inline(always)]
pub(crate) fn tanh_f32_fma(x: f32) -> f32 {
    tanh_f32_impl::<true>(x)
}

#[inline(always)]
fn madd_f32<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA { a.mul_add(b, c) } else { a * b + c }
}

#[inline(always)]
fn tanh_f32_impl<const FMA: bool>(x: f32) -> f32 {
    let ax = x.abs();
    // tanh(10) = 1 in f32.
    let y = -2.0 * if ax > 10.0 { 10.0 } else { ax };
    let t = y * LOG2E_F32 + MAGIC_F32;
    let n = t - MAGIC_F32;
    let r = (y - n * LN2_HI_F32) - n * LN2_LO_F32;
    // q(r) = (e^r − 1)/r, Taylor to degree 8 of e^r.
    let mut q = 1.0 / 40_320.0;
    q = madd_f32::<FMA>(q, r, 1.0 / 5_040.0);
    q = madd_f32::<FMA>(q, r, 1.0 / 720.0);
    q = madd_f32::<FMA>(q, r, 1.0 / 120.0);
    q = madd_f32::<FMA>(q, r, 1.0 / 24.0);
    q = madd_f32::<FMA>(q, r, 1.0 / 6.0);
    q = madd_f32::<FMA>(q, r, 0.5);
    q = madd_f32::<FMA>(q, r, 1.0);
    let k = (t.to_bits() as i32).wrapping_sub(MAGIC_F32.to_bits() as i32);
    let scale = pow2_f32(k);
    let m = scale * (r * q) + (scale - 1.0);
    let res = (-m / (2.0 + m)).copysign(x);
    if x.is_nan() { x } else { res }
}

/// [`sigmoid`] in single precision.
#[inline(always)]
pub fn sigmoid_f32(x: f32) -> f32 {
    let xc = x.clamp(-87.0, 87.0);
    let (p, k) = exp_reduce_f32(-xc);
    1.0 / (1.0 + p * pow2_f32(k))
}

/// `ln(1 + e)` for `e` in `[0, 1]` (single precision), as [`log1p_unit`].
#[inline(always)]
fn log1p_unit_f32(e: f32) -> f32 {
    let big = e > std::f32::consts::SQRT_2 - 1.0;
    let num = if big { e - 1.0 } else { e };
    let den = if big { e + 3.0 } else { e + 2.0 };
    let off = if big { std::f32::consts::LN_2 } else { 0.0 };
    let s = num / den;
    atanh_series_f32(s, off)
}

/// `off + 2 atanh(s)` for |s| ≤ 0.172 (series to s¹¹: truncation below 2e-10).
#[inline(always)]
fn atanh_series_f32(s: f32, off: f32) -> f32 {
    let s2 = s * s;
    let mut p = 1.0 / 11.0;
    p = p * s2 + 1.0 / 9.0;
    p = p * s2 + 1.0 / 7.0;
    p = p * s2 + 1.0 / 5.0;
    p = p * s2 + 1.0 / 3.0;
    off + (2.0 * s + 2.0 * s * s2 * p)
}

/// [`ln`] in single precision (NaN for negative or NaN input, −∞ at 0, ∞ at ∞).
#[inline(always)]
pub fn ln_f32(x: f32) -> f32 {
    let sub = x < f32::MIN_POSITIVE;
    let xs = if sub { x * 33_554_432.0 } else { x }; // 2^25
    let bits = xs.to_bits() as i32;
    let mut e = ((bits >> 23) & 0xff) - 127 - if sub { 25 } else { 0 };
    let mut m = f32::from_bits(((bits & 0x007f_ffff) | 0x3f80_0000) as u32);
    let big = m > std::f32::consts::SQRT_2;
    m = if big { 0.5 * m } else { m };
    e += i32::from(big);
    let s = (m - 1.0) / (m + 1.0);
    let ef = e as f32;
    // ln m = 2 atanh(s); the exponent part is added last, split for accuracy.
    let r = ef * LN2_HI_F32 + atanh_series_f32(s, ef * LN2_LO_F32);
    let special = if x == 0.0 {
        f32::NEG_INFINITY
    } else if x == f32::INFINITY {
        x
    } else {
        f32::NAN
    };
    if x > 0.0 && x < f32::INFINITY {
        r
    } else {
        special
    }
}

/// [`softplus`] in single precision.
#[inline(always)]
pub fn softplus_f32(x: f32) -> f32 {
    let ax = x.abs();
    let e = exp_f32(-ax);
    let pos = if x > 0.0 { x } else { 0.0 };
    let r = pos + log1p_unit_f32(e);
    if x.is_nan() { x } else { r }
}

// ---------------------------------------------------------------------------------------
// Slice functions, generic over the precision, with run-time SIMD dispatch.

/// Defines `$vis fn $name(args)` (optionally generic over one type parameter) that runs
/// `$generic(args)` through an AVX-512 or AVX2 build when the CPU has it (x86-64), else
/// the baseline build. The generic body must be `#[inline(always)]` so that it is
/// compiled inside each build. Without fused multiply-add in the source (Rust never
/// contracts `a * b + c`), every build computes bit-identical results.
///
/// Exported for the kernels of other crates (the flows' model-specific elementwise
/// passes); use it as `simfer_nn::fastmath::simd_dispatch!`.
#[doc(hidden)]
#[macro_export]
macro_rules! simd_dispatch {
    ($(#[$doc:meta])* $vis:vis fn $name:ident $(<$t:ident: $bound:path>)? ($($arg:ident: $ty:ty),*) $(-> $ret:ty)? => $generic:path) => {
        $(#[$doc])*
        #[inline]
        $vis fn $name $(<$t: $bound>)? ($($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            {
                if std::arch::is_x86_feature_detected!("avx512f") {
                    #[target_feature(enable = "avx512f")]
                    unsafe fn avx512 $(<$t: $bound>)? ($($arg: $ty),*) $(-> $ret)? {
                        $generic($($arg),*)
                    }
                    // SAFETY: the CPU supports AVX-512F (checked just above).
                    return unsafe { avx512($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2") {
                    #[target_feature(enable = "avx2")]
                    unsafe fn avx2 $(<$t: $bound>)? ($($arg: $ty),*) $(-> $ret)? {
                        $generic($($arg),*)
                    }
                    // SAFETY: the CPU supports AVX2 (checked just above).
                    return unsafe { avx2($($arg),*) };
                }
            }
            $generic($($arg),*)
        }
    };
}
#[doc(hidden)]
pub use crate::simd_dispatch;

/// Like `simd_dispatch!`, but the AVX-512/AVX2 builds also enable FMA and call
/// `$fma_generic` (a variant using fused multiply-adds). Results are identical for any
/// number of threads on one machine, but may differ in the last bits between CPUs.
macro_rules! simd_dispatch_fma {
    ($(#[$doc:meta])* $vis:vis fn $name:ident $(<$t:ident: $bound:path>)? ($($arg:ident: $ty:ty),*) => $generic:path, $fma_generic:path) => {
        $(#[$doc])*
        #[inline]
        $vis fn $name $(<$t: $bound>)? ($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                let fma = std::arch::is_x86_feature_detected!("fma");
                if fma && std::arch::is_x86_feature_detected!("avx512f") {
                    #[target_feature(enable = "avx512f,fma")]
                    unsafe fn avx512 $(<$t: $bound>)? ($($arg: $ty),*) {
                        $fma_generic($($arg),*)
                    }
                    // SAFETY: the CPU supports AVX-512F and FMA (checked just above).
                    return unsafe { avx512($($arg),*) };
                }
                if fma && std::arch::is_x86_feature_detected!("avx2") {
                    #[target_feature(enable = "avx2,fma")]
                    unsafe fn avx2 $(<$t: $bound>)? ($($arg: $ty),*) {
                        $fma_generic($($arg),*)
                    }
                    // SAFETY: the CPU supports AVX2 and FMA (checked just above).
                    return unsafe { avx2($($arg),*) };
                }
            }
            $generic($($arg),*)
        }
    };
}

#[inline(always)]
fn map_generic<T: Real, const F: u8>(x: &mut [T]) {
    for v in x.iter_mut() {
        *v = apply_code::<T, F>(*v);
    }
}

#[inline(always)]
fn apply_code<T: Real, const F: u8>(v: T) -> T {
    match F {
        0 => v.fast_tanh(),
        1 => v.fast_sigmoid(),
        2 => v.fast_softplus(),
        3 => v.fast_exp(),
        5 => v.fast_ln(),
        6 => v.fast_tanh_fma(),
        _ => {
            let zero = T::of(0.0);
            if v > zero { v } else { zero }
        }
    }
}

/// Column-major `rows × n` block `x` (rows = `bias.len()`): `x[i, j] ← f(x[i, j] + bias[i])`.
#[inline(always)]
fn map_bias_generic<T: Real, const F: u8>(x: &mut [T], bias: &[T]) {
    let rows = bias.len();
    if rows == 0 {
        return;
    }
    for col in x.chunks_exact_mut(rows) {
        for (v, b) in col.iter_mut().zip(bias) {
            *v = apply_code::<T, F>(*v + *b);
        }
    }
}

/// `x[i, j] ← f(x[i, j] + bias[i] + add[i, j])`, or `f(x[i, j] + bias[i] + add[i])` when
/// `add` holds one column (the same for every column of `x`).
#[inline(always)]
fn map_bias_add_generic<T: Real, const F: u8>(x: &mut [T], bias: &[T], add: &[T]) {
    let rows = bias.len();
    if rows == 0 {
        return;
    }
    if add.len() == rows {
        for col in x.chunks_exact_mut(rows) {
            for ((v, b), a) in col.iter_mut().zip(bias).zip(add) {
                *v = apply_code::<T, F>(*v + *b + *a);
            }
        }
        return;
    }
    for (col, acol) in x.chunks_exact_mut(rows).zip(add.chunks_exact(rows)) {
        for ((v, b), a) in col.iter_mut().zip(bias).zip(acol) {
            *v = apply_code::<T, F>(*v + *b + *a);
        }
    }
}

/// Names the monomorphic bodies the dispatchers below call.
macro_rules! bodies {
    ($($name:ident = $map:ident::<$code:literal>($($arg:ident: $ty:ty),*);)*) => {
        $(
            #[inline(always)]
            fn $name<T: Real>($($arg: $ty),*) {
                $map::<T, $code>($($arg),*)
            }
        )*
    };
}

bodies! {
    tanh_g = map_generic::<0>(x: &mut [T]);
    tanh_fma_g = map_generic::<6>(x: &mut [T]);
    sigmoid_g = map_generic::<1>(x: &mut [T]);
    softplus_g = map_generic::<2>(x: &mut [T]);
    exp_g = map_generic::<3>(x: &mut [T]);
    ln_g = map_generic::<5>(x: &mut [T]);
    tanh_bias_g = map_bias_generic::<0>(x: &mut [T], bias: &[T]);
    tanh_bias_fma_g = map_bias_generic::<6>(x: &mut [T], bias: &[T]);
    softplus_bias_g = map_bias_generic::<2>(x: &mut [T], bias: &[T]);
    sigmoid_bias_g = map_bias_generic::<1>(x: &mut [T], bias: &[T]);
    sigmoid_bias_add_g = map_bias_add_generic::<1>(x: &mut [T], bias: &[T], add: &[T]);
    relu_bias_g = map_bias_generic::<4>(x: &mut [T], bias: &[T]);
    tanh_bias_add_g = map_bias_add_generic::<0>(x: &mut [T], bias: &[T], add: &[T]);
    tanh_bias_add_fma_g = map_bias_add_generic::<6>(x: &mut [T], bias: &[T], add: &[T]);
    softplus_bias_add_g = map_bias_add_generic::<2>(x: &mut [T], bias: &[T], add: &[T]);
    relu_bias_add_g = map_bias_add_generic::<4>(x: &mut [T], bias: &[T], add: &[T]);
}

simd_dispatch_fma!(
    /// `x ← tanh(x)` elementwise.
    pub fn tanh_inplace<T: Real>(x: &mut [T]) => tanh_g, tanh_fma_g
);
simd_dispatch!(
    /// `x ← sigmoid(x)` elementwise.
    pub fn sigmoid_inplace<T: Real>(x: &mut [T]) => sigmoid_g
);
simd_dispatch!(
    /// `x ← softplus(x)` elementwise.
    pub fn softplus_inplace<T: Real>(x: &mut [T]) => softplus_g
);
simd_dispatch!(
    /// `x ← ln(x)` elementwise.
    pub fn ln_inplace<T: Real>(x: &mut [T]) => ln_g
);
simd_dispatch!(
    /// `x ← e^x` elementwise.
    pub fn exp_inplace<T: Real>(x: &mut [T]) => exp_g
);
simd_dispatch_fma!(
    /// For a column-major block with `bias.len()` rows: `x[i, j] ← tanh(x[i, j] + bias[i])`.
    pub fn tanh_bias_inplace<T: Real>(x: &mut [T], bias: &[T]) => tanh_bias_g, tanh_bias_fma_g
);
simd_dispatch!(
    /// For a column-major block with `bias.len()` rows: `x[i, j] ← softplus(x[i, j] + bias[i])`.
    pub fn softplus_bias_inplace<T: Real>(x: &mut [T], bias: &[T]) => softplus_bias_g
);
simd_dispatch!(
    /// For a column-major block with `bias.len()` rows: `x[i, j] ← sigmoid(x[i, j] + bias[i])`.
    pub fn sigmoid_bias_inplace<T: Real>(x: &mut [T], bias: &[T]) => sigmoid_bias_g
);
simd_dispatch!(
    /// `x[i, j] ← sigmoid(x[i, j] + bias[i] + add[i, j])` (column-major, `bias.len()` rows);
    /// `add` is `bias.len() × n` like `x`, or one column added to every column.
    pub fn sigmoid_bias_add_inplace<T: Real>(x: &mut [T], bias: &[T], add: &[T]) => sigmoid_bias_add_g
);
simd_dispatch!(
    /// For a column-major block with `bias.len()` rows: `x[i, j] ← max(0, x[i, j] + bias[i])`.
    pub fn relu_bias_inplace<T: Real>(x: &mut [T], bias: &[T]) => relu_bias_g
);
simd_dispatch_fma!(
    /// `x[i, j] ← tanh(x[i, j] + bias[i] + add[i, j])` (column-major, `bias.len()` rows);
    /// `add` is `bias.len() × n` like `x`, or one column added to every column.
    pub fn tanh_bias_add_inplace<T: Real>(x: &mut [T], bias: &[T], add: &[T]) => tanh_bias_add_g, tanh_bias_add_fma_g
);
simd_dispatch!(
    /// `x[i, j] ← softplus(x[i, j] + bias[i] + add[i, j])` (column-major, `bias.len()` rows);
    /// `add` is `bias.len() × n` like `x`, or one column added to every column.
    pub fn softplus_bias_add_inplace<T: Real>(x: &mut [T], bias: &[T], add: &[T]) => softplus_bias_add_g
);
simd_dispatch!(
    /// `x[i, j] ← max(0, x[i, j] + bias[i] + add[i, j])` (column-major, `bias.len()` rows);
    /// `add` is `bias.len() × n` like `x`, or one column added to every column.
    pub fn relu_bias_add_inplace<T: Real>(x: &mut [T], bias: &[T], add: &[T]) => relu_bias_add_g
);

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(a: f64, b: f64) -> f64 {
        if a == b {
            0.0
        } else {
            (a - b).abs() / b.abs().max(f64::MIN_POSITIVE)
        }
    }

    fn grid(lo: f64, hi: f64, n: usize) -> Vec<f64> {
        (0..=n)
            .map(|i| lo + (hi - lo) * i as f64 / n as f64)
            .collect()
    }

    #[test]
    fn exp_matches_std() {
        let mut worst: f64 = 0.0;
        for x in grid(-745.0, 709.7, 200_003) {
            if x < -708.0 {
                // Subnormal results: compare absolutely (they carry fewer bits).
                assert!(
                    (exp(x) - x.exp()).abs() <= 2.0 * f64::from_bits(1),
                    "x = {x}"
                );
                continue;
            }
            worst = worst.max(rel(exp(x), x.exp()));
        }
        assert!(worst < 1e-15, "worst relative error {worst:e}");
        assert_eq!(exp(800.0), f64::INFINITY);
        assert_eq!(exp(-800.0), 0.0);
        assert!(exp(f64::NAN).is_nan());
        assert_eq!(exp(0.0), 1.0);
    }

    #[test]
    fn tanh_matches_std() {
        let mut worst: f64 = 0.0;
        let mut pts = grid(-25.0, 25.0, 400_001);
        pts.extend(grid(-1e-3, 1e-3, 10_001));
        pts.extend([
            1e-300,
            -1e-300,
            5e-324,
            0.625,
            -0.625,
            0.624_999_999_999_999_9,
        ]);
        let mut worst_fma: f64 = 0.0;
        for x in pts {
            worst = worst.max(rel(tanh(x), x.tanh()));
            worst_fma = worst_fma.max(rel(tanh_impl::<true>(x), x.tanh()));
        }
        assert!(worst < 1e-15, "worst relative error {worst:e}");
        assert!(
            worst_fma < 1e-15,
            "worst relative error with FMA {worst_fma:e}"
        );
        assert_eq!(tanh(f64::INFINITY), 1.0);
        assert_eq!(tanh(f64::NEG_INFINITY), -1.0);
        assert!(tanh(f64::NAN).is_nan());
        assert_eq!(tanh(0.0), 0.0);
    }

    #[test]
    fn sigmoid_and_softplus_match_std() {
        let mut worst_sig: f64 = 0.0;
        let mut worst_sp: f64 = 0.0;
        for x in grid(-700.0, 700.0, 400_001)
            .into_iter()
            .chain(grid(-2.0, 2.0, 100_001))
        {
            let sig_ref = if x >= 0.0 {
                1.0 / (1.0 + (-x).exp())
            } else {
                x.exp() / (1.0 + x.exp())
            };
            worst_sig = worst_sig.max(rel(sigmoid(x), sig_ref));
            let sp_ref = x.max(0.0) + (-x.abs()).exp().ln_1p();
            worst_sp = worst_sp.max(rel(softplus(x), sp_ref));
        }
        assert!(worst_sig < 1e-15, "sigmoid worst {worst_sig:e}");
        assert!(worst_sp < 1e-15, "softplus worst {worst_sp:e}");
        assert!(softplus(f64::NAN).is_nan());
        assert!(sigmoid(f64::NAN).is_nan());
        assert_eq!(softplus(f64::INFINITY), f64::INFINITY);
        assert_eq!(softplus(f64::NEG_INFINITY), 0.0);
    }

    #[test]
    fn ln_matches_std() {
        let mut worst: f64 = 0.0;
        let pts = grid(-700.0, 700.0, 200_001)
            .into_iter()
            .map(f64::exp)
            .chain(grid(0.5, 2.0, 100_001))
            .chain([
                5e-324,
                1e-310,
                f64::MAX,
                1.0,
                1.0 + f64::EPSILON,
                1.0 - f64::EPSILON / 2.0,
            ]);
        for x in pts {
            let (a, b) = (ln(x), x.ln());
            // Relative error, or absolute near ln x = 0.
            worst = worst.max((a - b).abs() / b.abs().max(1.0));
        }
        assert!(worst < 1e-15, "worst error {worst:e}");
        assert_eq!(ln(0.0), f64::NEG_INFINITY);
        assert_eq!(ln(f64::INFINITY), f64::INFINITY);
        assert!(ln(-1.0).is_nan() && ln(f64::NAN).is_nan());
        assert_eq!(ln(1.0), 0.0);
    }

    #[test]
    fn slice_versions_equal_scalar_versions() {
        let xs = grid(-30.0, 30.0, 1001);
        let bias: Vec<f64> = (0..7).map(|i| 0.1 * i as f64 - 0.3).collect();
        let n = 7 * 143;
        let x: Vec<f64> = xs[..n].to_vec();
        let add: Vec<f64> = x.iter().map(|v| 0.5 * v.sin()).collect();

        let mut t = x.clone();
        tanh_inplace(&mut t);
        let mut s = x.clone();
        sigmoid_inplace(&mut s);
        let mut sp = x.clone();
        softplus_inplace(&mut sp);
        let mut e = x.clone();
        exp_inplace(&mut e);
        let mut l: Vec<f64> = x.iter().map(|v| v.abs()).collect();
        ln_inplace(&mut l);
        for i in 0..n {
            // The slice version may use fused multiply-adds: equal to within rounding.
            assert!(rel(t[i], tanh(x[i])) < 1e-15);
            assert_eq!(s[i].to_bits(), sigmoid(x[i]).to_bits());
            assert_eq!(sp[i].to_bits(), softplus(x[i]).to_bits());
            assert_eq!(e[i].to_bits(), exp(x[i]).to_bits());
            assert_eq!(l[i].to_bits(), ln(x[i].abs()).to_bits());
        }
        let mut tb = x.clone();
        tanh_bias_add_inplace(&mut tb, &bias, &add);
        let mut rb = x.clone();
        relu_bias_inplace(&mut rb, &bias);
        for i in 0..n {
            let b = bias[i % 7];
            assert!(rel(tb[i], tanh(x[i] + b + add[i])) < 1e-15);
            assert_eq!(rb[i], (x[i] + b).max(0.0));
        }
    }

    #[test]
    fn one_added_column_gives_the_bits_of_that_column_repeated() {
        let rows = 7;
        let n = 13;
        let bias: Vec<f32> = (0..rows).map(|i| 0.1 * i as f32 - 0.3).collect();
        let col: Vec<f32> = (0..rows).map(|i| 0.7 - 0.23 * i as f32).collect();
        let repeated: Vec<f32> = (0..n).flat_map(|_| col.iter().copied()).collect();
        let x: Vec<f32> = (0..rows * n)
            .map(|i| (i as f32 * 0.37).sin() * 3.0)
            .collect();
        type Op = fn(&mut [f32], &[f32], &[f32]);
        let ops: [(&str, Op); 4] = [
            ("tanh", tanh_bias_add_inplace),
            ("sigmoid", sigmoid_bias_add_inplace),
            ("softplus", softplus_bias_add_inplace),
            ("relu", relu_bias_add_inplace),
        ];
        for (name, op) in ops {
            let (mut a, mut b) = (x.clone(), x.clone());
            op(&mut a, &bias, &col);
            op(&mut b, &bias, &repeated);
            assert!(
                a.iter().zip(&b).all(|(p, q)| p.to_bits() == q.to_bits()),
                "{name}"
            );
            // And the column is really added: a different column changes the result.
            let mut c = x.clone();
            let shifted: Vec<f32> = col.iter().map(|v| v + 0.5).collect();
            op(&mut c, &bias, &shifted);
            assert!(a.iter().zip(&c).any(|(p, q)| p != q), "{name}");
        }
    }

    /// Relative error of an f32 result against an f64 reference, in units of f32's
    /// machine epsilon (2^-23); results of 0.5 or so are correctly rounded.
    fn ulps32(a: f32, b: f64) -> f64 {
        if f64::from(a) == b {
            0.0
        } else {
            (f64::from(a) - b).abs() / b.abs() / f64::from(f32::EPSILON)
        }
    }

    fn grid32(lo: f32, hi: f32, n: usize) -> Vec<f32> {
        grid(f64::from(lo), f64::from(hi), n)
            .into_iter()
            .map(|v| v as f32)
            .collect()
    }

    #[test]
    fn f32_functions_are_accurate_to_a_few_ulps() {
        let (mut w_exp, mut w_tanh, mut w_tanh_fma, mut w_sig, mut w_sp, mut w_ln) =
            (0.0f64, 0.0f64, 0.0f64, 0.0f64, 0.0f64, 0.0f64);
        for x in grid32(-87.0, 88.0, 200_003) {
            w_exp = w_exp.max(ulps32(exp_f32(x), f64::from(x).exp()));
        }
        let mut pts = grid32(-12.0, 12.0, 200_001);
        pts.extend(grid32(-1e-3, 1e-3, 10_001));
        pts.extend([1e-30, -1e-30, 1e-40, 0.625, -0.625]);
        for x in pts {
            let r = f64::from(x).tanh();
            w_tanh = w_tanh.max(ulps32(tanh_f32(x), r));
            w_tanh_fma = w_tanh_fma.max(ulps32(tanh_f32_fma(x), r));
        }
        for x in grid32(-80.0, 80.0, 200_001)
            .into_iter()
            .chain(grid32(-2.0, 2.0, 100_001))
        {
            let xd = f64::from(x);
            let sig = if xd >= 0.0 {
                1.0 / (1.0 + (-xd).exp())
            } else {
                xd.exp() / (1.0 + xd.exp())
            };
            w_sig = w_sig.max(ulps32(sigmoid_f32(x), sig));
            w_sp = w_sp.max(ulps32(
                softplus_f32(x),
                xd.max(0.0) + (-xd.abs()).exp().ln_1p(),
            ));
        }
        let lpts = grid(-87.0, 88.0, 200_001)
            .into_iter()
            .map(|v| v.exp() as f32)
            .chain(grid32(0.5, 2.0, 100_001))
            .chain([
                1e-45,
                1e-40,
                f32::MAX,
                1.0,
                1.0 + f32::EPSILON,
                1.0 - f32::EPSILON / 2.0,
            ]);
        for x in lpts {
            let (a, b) = (ln_f32(x), f64::from(x).ln());
            // Relative error, or absolute near ln x = 0.
            let e = (f64::from(a) - b).abs() / b.abs().max(1.0) / f64::from(f32::EPSILON);
            w_ln = w_ln.max(e);
        }
        eprintln!(
            "f32 worst ulps: exp {w_exp:.2} tanh {w_tanh:.2} (fma {w_tanh_fma:.2}) sigmoid {w_sig:.2} softplus {w_sp:.2} ln {w_ln:.2}"
        );
        for (name, w) in [
            ("exp", w_exp),
            ("tanh", w_tanh),
            ("tanh (fma)", w_tanh_fma),
            ("sigmoid", w_sig),
            ("softplus", w_sp),
            ("ln", w_ln),
        ] {
            assert!(w < 2.0, "{name}: worst error {w:.2} ulps");
        }
        assert_eq!(exp_f32(100.0), f32::INFINITY);
        assert_eq!(exp_f32(-200.0), 0.0);
        assert!(exp_f32(-100.0) > 0.0, "gradual underflow");
        assert!(exp_f32(f32::NAN).is_nan());
        assert_eq!(tanh_f32(f32::INFINITY), 1.0);
        assert_eq!(tanh_f32(f32::NEG_INFINITY), -1.0);
        assert!(tanh_f32(f32::NAN).is_nan());
        assert_eq!(tanh_f32(0.0), 0.0);
        assert_eq!(softplus_f32(f32::INFINITY), f32::INFINITY);
        assert_eq!(softplus_f32(f32::NEG_INFINITY), 0.0);
        assert!(softplus_f32(f32::NAN).is_nan() && sigmoid_f32(f32::NAN).is_nan());
        assert_eq!(sigmoid_f32(200.0), 1.0);
        assert!(sigmoid_f32(-200.0) < 2e-38);
        assert_eq!(ln_f32(0.0), f32::NEG_INFINITY);
        assert_eq!(ln_f32(f32::INFINITY), f32::INFINITY);
        assert!(ln_f32(-1.0).is_nan() && ln_f32(f32::NAN).is_nan());
        assert_eq!(ln_f32(1.0), 0.0);
    }

    #[test]
    fn f32_slice_versions_equal_scalar_versions() {
        let bias: Vec<f32> = (0..7).map(|i| 0.1 * i as f32 - 0.3).collect();
        let x = grid32(-30.0, 30.0, 7 * 143 - 1);
        let n = x.len();
        let add: Vec<f32> = x.iter().map(|v| 0.5 * v.sin()).collect();
        let mut t = x.clone();
        tanh_inplace(&mut t);
        let mut sp = x.clone();
        softplus_inplace(&mut sp);
        let mut s = x.clone();
        sigmoid_inplace(&mut s);
        let mut tb = x.clone();
        tanh_bias_add_inplace(&mut tb, &bias, &add);
        for i in 0..n {
            // The slice version may use fused multiply-adds: equal to within rounding.
            assert!((t[i] - tanh_f32(x[i])).abs() <= 2.0 * f32::EPSILON * t[i].abs());
            let tbi = tanh_f32(x[i] + bias[i % 7] + add[i]);
            assert!((tb[i] - tbi).abs() <= 2.0 * f32::EPSILON * tbi.abs());
            assert_eq!(sp[i].to_bits(), softplus_f32(x[i]).to_bits());
            assert_eq!(s[i].to_bits(), sigmoid_f32(x[i]).to_bits());
        }
    }
}
