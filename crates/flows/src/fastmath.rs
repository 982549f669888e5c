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

// The constants are written with all the digits of their sources.
#![allow(clippy::excessive_precision)]

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

/// Defines `$vis fn $name(args)` that runs `$generic(args)` through an AVX-512 or AVX2
/// build when the CPU has it (x86-64), else the baseline build. The generic body must be
/// `#[inline(always)]` so that it is compiled inside each build. Without fused
/// multiply-add in the source (Rust never contracts `a * b + c`), every build computes
/// bit-identical results.
macro_rules! simd_dispatch {
    ($(#[$doc:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),*) $(-> $ret:ty)? => $generic:path) => {
        $(#[$doc])*
        #[inline]
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            {
                if std::arch::is_x86_feature_detected!("avx512f") {
                    #[target_feature(enable = "avx512f")]
                    unsafe fn avx512($($arg: $ty),*) $(-> $ret)? {
                        $generic($($arg),*)
                    }
                    // SAFETY: the CPU supports AVX-512F (checked just above).
                    return unsafe { avx512($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2") {
                    #[target_feature(enable = "avx2")]
                    unsafe fn avx2($($arg: $ty),*) $(-> $ret)? {
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
pub(crate) use simd_dispatch;

/// Like `simd_dispatch!`, but the AVX-512/AVX2 builds also enable FMA and call
/// `$fma_generic` (a variant using fused multiply-adds). Results are identical for any
/// number of threads on one machine, but may differ in the last bits between CPUs.
macro_rules! simd_dispatch_fma {
    ($(#[$doc:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),*) => $generic:path, $fma_generic:path) => {
        $(#[$doc])*
        #[inline]
        $vis fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                let fma = std::arch::is_x86_feature_detected!("fma");
                if fma && std::arch::is_x86_feature_detected!("avx512f") {
                    #[target_feature(enable = "avx512f,fma")]
                    unsafe fn avx512($($arg: $ty),*) {
                        $fma_generic($($arg),*)
                    }
                    // SAFETY: the CPU supports AVX-512F and FMA (checked just above).
                    return unsafe { avx512($($arg),*) };
                }
                if fma && std::arch::is_x86_feature_detected!("avx2") {
                    #[target_feature(enable = "avx2,fma")]
                    unsafe fn avx2($($arg: $ty),*) {
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
fn map_generic<const F: u8>(x: &mut [f64]) {
    for v in x.iter_mut() {
        *v = apply_code::<F>(*v);
    }
}

#[inline(always)]
fn apply_code<const F: u8>(v: f64) -> f64 {
    match F {
        0 => tanh(v),
        1 => sigmoid(v),
        2 => softplus(v),
        3 => exp(v),
        5 => ln(v),
        6 => tanh_impl::<true>(v),
        _ => {
            if v > 0.0 {
                v
            } else {
                0.0
            }
        }
    }
}

/// Column-major `rows × n` block `x` (rows = `bias.len()`): `x[i, j] ← f(x[i, j] + bias[i])`.
#[inline(always)]
fn map_bias_generic<const F: u8>(x: &mut [f64], bias: &[f64]) {
    let rows = bias.len();
    if rows == 0 {
        return;
    }
    for col in x.chunks_exact_mut(rows) {
        for (v, b) in col.iter_mut().zip(bias) {
            *v = apply_code::<F>(*v + *b);
        }
    }
}

/// `x[i, j] ← f(x[i, j] + bias[i] + add[i, j])`.
#[inline(always)]
fn map_bias_add_generic<const F: u8>(x: &mut [f64], bias: &[f64], add: &[f64]) {
    let rows = bias.len();
    if rows == 0 {
        return;
    }
    for (col, acol) in x.chunks_exact_mut(rows).zip(add.chunks_exact(rows)) {
        for ((v, b), a) in col.iter_mut().zip(bias).zip(acol) {
            *v = apply_code::<F>(*v + *b + *a);
        }
    }
}

#[inline(always)]
fn tanh_fma_g(x: &mut [f64]) {
    map_generic::<6>(x)
}
#[inline(always)]
fn tanh_g(x: &mut [f64]) {
    map_generic::<0>(x)
}
#[inline(always)]
fn sigmoid_g(x: &mut [f64]) {
    map_generic::<1>(x)
}
#[inline(always)]
fn softplus_g(x: &mut [f64]) {
    map_generic::<2>(x)
}
#[inline(always)]
fn exp_g(x: &mut [f64]) {
    map_generic::<3>(x)
}
#[inline(always)]
fn ln_g(x: &mut [f64]) {
    map_generic::<5>(x)
}
#[inline(always)]
fn tanh_bias_fma_g(x: &mut [f64], bias: &[f64]) {
    map_bias_generic::<6>(x, bias)
}
#[inline(always)]
fn tanh_bias_g(x: &mut [f64], bias: &[f64]) {
    map_bias_generic::<0>(x, bias)
}
#[inline(always)]
fn softplus_bias_g(x: &mut [f64], bias: &[f64]) {
    map_bias_generic::<2>(x, bias)
}
#[inline(always)]
fn relu_bias_g(x: &mut [f64], bias: &[f64]) {
    map_bias_generic::<4>(x, bias)
}
#[inline(always)]
fn tanh_bias_add_fma_g(x: &mut [f64], bias: &[f64], add: &[f64]) {
    map_bias_add_generic::<6>(x, bias, add)
}
#[inline(always)]
fn tanh_bias_add_g(x: &mut [f64], bias: &[f64], add: &[f64]) {
    map_bias_add_generic::<0>(x, bias, add)
}
#[inline(always)]
fn softplus_bias_add_g(x: &mut [f64], bias: &[f64], add: &[f64]) {
    map_bias_add_generic::<2>(x, bias, add)
}
#[inline(always)]
fn relu_bias_add_g(x: &mut [f64], bias: &[f64], add: &[f64]) {
    map_bias_add_generic::<4>(x, bias, add)
}

simd_dispatch_fma!(
    /// `x ← tanh(x)` elementwise.
    pub fn tanh_inplace(x: &mut [f64]) => tanh_g, tanh_fma_g
);
simd_dispatch!(
    /// `x ← sigmoid(x)` elementwise.
    pub fn sigmoid_inplace(x: &mut [f64]) => sigmoid_g
);
simd_dispatch!(
    /// `x ← softplus(x)` elementwise.
    pub fn softplus_inplace(x: &mut [f64]) => softplus_g
);
simd_dispatch!(
    /// `x ← ln(x)` elementwise.
    pub fn ln_inplace(x: &mut [f64]) => ln_g
);
simd_dispatch!(
    /// `x ← e^x` elementwise.
    pub fn exp_inplace(x: &mut [f64]) => exp_g
);
simd_dispatch_fma!(
    /// For a column-major block with `bias.len()` rows: `x[i, j] ← tanh(x[i, j] + bias[i])`.
    pub fn tanh_bias_inplace(x: &mut [f64], bias: &[f64]) => tanh_bias_g, tanh_bias_fma_g
);
simd_dispatch!(
    /// For a column-major block with `bias.len()` rows: `x[i, j] ← softplus(x[i, j] + bias[i])`.
    pub fn softplus_bias_inplace(x: &mut [f64], bias: &[f64]) => softplus_bias_g
);
simd_dispatch!(
    /// For a column-major block with `bias.len()` rows: `x[i, j] ← max(0, x[i, j] + bias[i])`.
    pub fn relu_bias_inplace(x: &mut [f64], bias: &[f64]) => relu_bias_g
);
simd_dispatch_fma!(
    /// `x[i, j] ← tanh(x[i, j] + bias[i] + add[i, j])` (column-major, `bias.len()` rows).
    pub fn tanh_bias_add_inplace(x: &mut [f64], bias: &[f64], add: &[f64]) => tanh_bias_add_g, tanh_bias_add_fma_g
);
simd_dispatch!(
    /// `x[i, j] ← softplus(x[i, j] + bias[i] + add[i, j])` (column-major, `bias.len()` rows).
    pub fn softplus_bias_add_inplace(x: &mut [f64], bias: &[f64], add: &[f64]) => softplus_bias_add_g
);
simd_dispatch!(
    /// `x[i, j] ← max(0, x[i, j] + bias[i] + add[i, j])` (column-major, `bias.len()` rows).
    pub fn relu_bias_add_inplace(x: &mut [f64], bias: &[f64], add: &[f64]) => relu_bias_add_g
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
}
