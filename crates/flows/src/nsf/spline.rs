//! The monotonic rational-quadratic spline with linear tails (Durkan et al. 2019, "Neural
//! Spline Flows", §3.1; nflows' `unconstrained_rational_quadratic_spline` and
//! `rational_quadratic_spline`), on blocks of elements, forward, backward and inverse.
//!
//! One spline per element, from `3K − 1` unconstrained values: `K` width logits `a`, `K`
//! height logits `b` and `K − 1` interior derivative logits `c`. With `δ = 10⁻³` (the
//! minimum bin width, bin height and derivative), `s = 1/√H` (the conditioner's hidden
//! width `H`) and tail bound `B`:
//! ```text
//! ŵ = softmax(s·a),  w'_k = δ + (1 − Kδ) ŵ_k,  X_k = 2B Σ_{m<k} w'_m − B,  X_0 = −B, X_K = B
//! (the same with b for the heights: Y_k)
//! d_k = δ + softplus(c_{k−1}), k = 1..K−1;  d_0 = d_K = δ + softplus(ln(e^{1−δ} − 1)) = 1
//! ```
//! An input `u` with `|u| ≤ B` falls in bin `k` (the last knot with `X_k ≤ u`); with
//! `w = X_{k+1} − X_k`, `h = Y_{k+1} − Y_k`, `Δ = h/w`, `ξ = (u − X_k)/w`, `τ = ξ(1 − ξ)`:
//! ```text
//! y       = Y_k + h (Δ ξ² + d_k τ) / (Δ + (d_k + d_{k+1} − 2Δ) τ)
//! ln y'   = ln( Δ² [d_{k+1} ξ² + 2Δ τ + d_k (1 − ξ)²] ) − 2 ln(Δ + (d_k + d_{k+1} − 2Δ) τ)
//! ```
//! Outside `[−B, B]` the map is the identity with log-derivative 0 (the linear tails;
//! the boundary derivatives 1 make the map C¹ there). The inverse finds the bin on the
//! `Y` knots and solves the quadratic `a ξ² + b ξ + c = 0` with `r = y − Y_k`,
//! `g = d_k + d_{k+1} − 2Δ`, `a = r g + h (Δ − d_k)`, `b = h d_k − r g`, `c = −Δ r`
//! by the stable root `ξ = 2c / (−b − √(b² − 4ac))`.
//!
//! Layout: element-major rows ("structure of arrays"): row `p` of an array with stride
//! `mp` (the number of elements padded to a multiple of 16) holds value `p` of
//! every element. The kernels work on blocks of elements that keep their scratch rows in
//! the L1 cache, each step one vectorizable pass over the block with no branch per
//! element (selects instead).

use simfer_nn::Real;
use simfer_nn::fastmath::simd_dispatch;

/// Minimum width of a bin, as a fraction of `2B` (the reference's).
pub const MIN_BIN_WIDTH: f64 = 1e-3;
/// Minimum height of a bin, as a fraction of `2B` (the reference's).
pub const MIN_BIN_HEIGHT: f64 = 1e-3;
/// Minimum derivative at a knot (the reference's).
pub const MIN_DERIVATIVE: f64 = 1e-3;

/// Elements per block of the kernels; element arrays are padded to a multiple of it.
pub(crate) const LANES: usize = 16;

/// Rows of the per-element values the forward pass keeps for the backward pass.
pub(crate) const LOCALS: usize = 7;
const XK: usize = 0;
const W: usize = 1;
const YK: usize = 2;
const HK: usize = 3;
const D0: usize = 4;
const D1: usize = 5;
const BIN: usize = 6;

/// `n` rounded up to a multiple of [`LANES`].
pub(crate) fn padded(n: usize) -> usize {
    n.div_ceil(LANES) * LANES
}

/// The logit whose softplus plus [`MIN_DERIVATIVE`] is 1: `ln(e^{1−δ} − 1)`.
pub(crate) fn unit_derivative_logit() -> f64 {
    (1.0 - MIN_DERIVATIVE).exp_m1().ln()
}

/// The constants of the splines of one coupling layer, in the pass type.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Shape<T> {
    /// Number of bins `K`.
    pub bins: usize,
    /// `1/√H`, applied to the width and height logits.
    pub scale: T,
    /// The tail bound `B`.
    pub bound: T,
    /// `2B`.
    pub two_bound: T,
    /// `δ` for widths, heights and derivatives.
    pub min_width: T,
    pub min_height: T,
    pub min_derivative: T,
    /// `1 − Kδ`.
    pub width_mult: T,
    pub height_mult: T,
    /// The derivative at `±B`: `δ + softplus(ln(e^{1−δ} − 1))` (1 up to rounding).
    pub edge_derivative: T,
}

impl<T: Real> Shape<T> {
    /// The constants for `bins` bins, a conditioner of hidden width `hidden` and tail
    /// bound `bound`.
    pub fn new(bins: usize, hidden: usize, bound: f64) -> Self {
        let k = bins as f64;
        let c = unit_derivative_logit();
        let softplus_c = c.max(0.0) + (-c.abs()).exp().ln_1p();
        Shape {
            bins,
            scale: T::of(1.0 / (hidden as f64).sqrt()),
            bound: T::of(bound),
            two_bound: T::of(2.0 * bound),
            min_width: T::of(MIN_BIN_WIDTH),
            min_height: T::of(MIN_BIN_HEIGHT),
            min_derivative: T::of(MIN_DERIVATIVE),
            width_mult: T::of(1.0 - MIN_BIN_WIDTH * k),
            height_mult: T::of(1.0 - MIN_BIN_HEIGHT * k),
            edge_derivative: T::of(MIN_DERIVATIVE + softplus_c),
        }
    }

    /// Unconstrained values per element: `3K − 1`.
    pub fn raw_len(&self) -> usize {
        3 * self.bins - 1
    }
}

/// Elements per block of the kernels: the scratch rows of a block stay in the L1 cache.
const BLOCK: usize = 64;
/// Scratch rows of a block: running sums, left and right knots and derivatives, the
/// clamped inputs, and the per-bin gradients.
const SCRATCH: usize = 12;

/// `out[p][e] = softmax_p(scale · raw[row0 + p][e])` over `p < k` for the elements
/// `b .. b + bl`; `mx` and `sum` (`bl` each) are scratch.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn softmax_rows<T: Real>(
    raw: &[T],
    row0: usize,
    k: usize,
    mp: usize,
    b: usize,
    bl: usize,
    scale: T,
    out: &mut [T],
    mx: &mut [T],
    sum: &mut [T],
) {
    let (mx, sum) = (&mut mx[..bl], &mut sum[..bl]);
    mx.copy_from_slice(&raw[row0 * mp + b..][..bl]);
    for p in 1..k {
        let r = &raw[(row0 + p) * mp + b..][..bl];
        for (m, v) in mx.iter_mut().zip(r) {
            *m = if *v > *m { *v } else { *m };
        }
    }
    sum.fill(T::of(0.0));
    for p in 0..k {
        let r = &raw[(row0 + p) * mp + b..][..bl];
        let o = &mut out[p * mp + b..][..bl];
        for (((o, v), m), s) in o.iter_mut().zip(r).zip(mx.iter()).zip(sum.iter_mut()) {
            let e = (scale * (*v - *m)).fast_exp();
            *o = e;
            *s += e;
        }
    }
    let one = T::of(1.0);
    for s in sum.iter_mut() {
        *s = one / *s;
    }
    for p in 0..k {
        let o = &mut out[p * mp + b..][..bl];
        for (o, s) in o.iter_mut().zip(sum.iter()) {
            *o *= *s;
        }
    }
}

/// `vc = v` clamped to `[−B, B]`.
#[inline(always)]
fn clamp_rows<T: Real>(sh: &Shape<T>, v: &[T], vc: &mut [T]) {
    let (lo, hi) = (-sh.bound, sh.bound);
    for (c, x) in vc.iter_mut().zip(v) {
        let a = if *x < lo { lo } else { *x };
        *c = if a > hi { hi } else { a };
    }
}

/// Whether `x` is in `[−B, B]` (the spline acts on it; outside, the identity).
#[inline(always)]
fn inside<T: Real>(sh: &Shape<T>, x: T) -> bool {
    (x >= -sh.bound) & (x <= sh.bound)
}

/// The bin of each clamped value `vc` (elements `b .. b + bl`), found on the `X` knots or
/// (`ON_HEIGHTS`) on the `Y` knots: writes `X_k, w, Y_k, h, d_k, d_{k+1}, k` into the
/// [`LOCALS`] rows of `loc` (stride `mp`).
///
/// The bin is counted, `k = #{p ∈ 1..K−1 : X_p ≤ v}` (the reference's `searchsorted`), in a
/// first pass; a second pass recomputes the knots and adds up `[k = p]·value` (a select
/// against zero, which vectorizes, where picking between two loaded values would not).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn select_bin<T: Real, const ON_HEIGHTS: bool>(
    sh: &Shape<T>,
    raw: &[T],
    wn: &[T],
    hn: &[T],
    mp: usize,
    b: usize,
    bl: usize,
    vc: &[T],
    loc: &mut [T],
) {
    let k = sh.bins;
    let (zero, one) = (T::of(0.0), T::of(1.0));
    let mut sx = [zero; BLOCK];
    let mut bin = [zero; BLOCK];
    let (sx, bin, vc) = (&mut sx[..bl], &mut bin[..bl], &vc[..bl]);
    let (norm, min, mult) = if ON_HEIGHTS {
        (hn, sh.min_height, sh.height_mult)
    } else {
        (wn, sh.min_width, sh.width_mult)
    };
    for p in 0..k - 1 {
        let w = &norm[p * mp + b..][..bl];
        for e in 0..bl {
            sx[e] += min + mult * w[e];
            let knot = sh.two_bound * sx[e] - sh.bound;
            bin[e] += if knot <= vc[e] { one } else { zero };
        }
    }
    let mut sy = [zero; BLOCK];
    let mut xl = [-sh.bound; BLOCK];
    let mut yl = [-sh.bound; BLOCK];
    let mut dl = [sh.edge_derivative; BLOCK];
    let (sy, xl, yl, dl) = (&mut sy[..bl], &mut xl[..bl], &mut yl[..bl], &mut dl[..bl]);
    sx.fill(zero);
    let (l_xk, r) = loc.split_at_mut(mp);
    let (l_w, r) = r.split_at_mut(mp);
    let (l_yk, r) = r.split_at_mut(mp);
    let (l_h, r) = r.split_at_mut(mp);
    let (l_d0, r) = r.split_at_mut(mp);
    let (l_d1, l_bin) = r.split_at_mut(mp);
    let (s_xk, s_w, s_yk, s_h) = (
        &mut l_xk[b..b + bl],
        &mut l_w[b..b + bl],
        &mut l_yk[b..b + bl],
        &mut l_h[b..b + bl],
    );
    let (s_d0, s_d1) = (&mut l_d0[b..b + bl], &mut l_d1[b..b + bl]);
    for v in [
        &mut *s_xk, &mut *s_w, &mut *s_yk, &mut *s_h, &mut *s_d0, &mut *s_d1,
    ] {
        v.fill(zero);
    }
    l_bin[b..b + bl].copy_from_slice(bin);
    // Bin p's selected values: its left knots and derivative, its width, height and
    // right derivative; `select` adds them where the bin is p.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn select<T: Real>(take: bool, xl: T, yl: T, dl: T, xr: T, yr: T, dr: T, out: [&mut T; 6]) {
        let zero = T::of(0.0);
        let vals = [xl, xr - xl, yl, yr - yl, dl, dr];
        for (o, v) in out.into_iter().zip(vals) {
            *o += if take { v } else { zero };
        }
    }
    for p in 0..k - 1 {
        let pf = T::of(p as f64);
        let w = &wn[p * mp + b..][..bl];
        let h = &hn[p * mp + b..][..bl];
        let c = &raw[(2 * k + p) * mp + b..][..bl];
        for e in 0..bl {
            sx[e] += sh.min_width + sh.width_mult * w[e];
            sy[e] += sh.min_height + sh.height_mult * h[e];
            let xr = sh.two_bound * sx[e] - sh.bound;
            let yr = sh.two_bound * sy[e] - sh.bound;
            let dr = sh.min_derivative + c[e].fast_softplus();
            let out = [
                &mut s_xk[e],
                &mut s_w[e],
                &mut s_yk[e],
                &mut s_h[e],
                &mut s_d0[e],
                &mut s_d1[e],
            ];
            select(bin[e] == pf, xl[e], yl[e], dl[e], xr, yr, dr, out);
            xl[e] = xr;
            yl[e] = yr;
            dl[e] = dr;
        }
    }
    let pf = T::of((k - 1) as f64);
    for e in 0..bl {
        let out = [
            &mut s_xk[e],
            &mut s_w[e],
            &mut s_yk[e],
            &mut s_h[e],
            &mut s_d0[e],
            &mut s_d1[e],
        ];
        let (b_, d_) = (sh.bound, sh.edge_derivative);
        select(bin[e] == pf, xl[e], yl[e], dl[e], b_, b_, d_, out);
    }
}

simd_dispatch!(
    /// The splines forward on `mp` elements (a multiple of [`LANES`]): `raw` holds the
    /// `3K − 1` rows of unconstrained values, `v` the inputs; writes the outputs `y`,
    /// the log-derivatives `ld`, and keeps the softmaxed widths `wn` and heights `hn`
    /// (`K` rows each) and the chosen bin's values `loc` ([`LOCALS`] rows) for
    /// [`backward`].
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn forward<T: Real>(sh: &Shape<T>, raw: &[T], v: &[T], mp: usize, wn: &mut [T], hn: &mut [T], loc: &mut [T], y: &mut [T], ld: &mut [T]) => forward_g
);

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn forward_g<T: Real>(
    sh: &Shape<T>,
    raw: &[T],
    v: &[T],
    mp: usize,
    wn: &mut [T],
    hn: &mut [T],
    loc: &mut [T],
    y: &mut [T],
    ld: &mut [T],
) {
    debug_assert_eq!(mp % LANES, 0);
    let k = sh.bins;
    let (zero, one, two) = (T::of(0.0), T::of(1.0), T::of(2.0));
    let mut buf = [zero; SCRATCH * BLOCK];
    for b in (0..mp).step_by(BLOCK) {
        let bl = BLOCK.min(mp - b);
        let (vc, rest) = buf.split_at_mut(BLOCK);
        let (mx, rest) = rest.split_at_mut(BLOCK);
        let sum = &mut rest[..BLOCK];
        softmax_rows(raw, 0, k, mp, b, bl, sh.scale, wn, mx, sum);
        softmax_rows(raw, k, k, mp, b, bl, sh.scale, hn, mx, sum);
        let vb = &v[b..b + bl];
        let vc = &mut vc[..bl];
        clamp_rows(sh, vb, vc);
        select_bin::<T, false>(sh, raw, wn, hn, mp, b, bl, vc, loc);
        let l = |r: usize| &loc[r * mp + b..][..bl];
        let (xk, w, yk, h, d0, d1) = (l(XK), l(W), l(YK), l(HK), l(D0), l(D1));
        let (yo, lo) = (&mut y[b..b + bl], &mut ld[b..b + bl]);
        for e in 0..bl {
            let xi = (vc[e] - xk[e]) / w[e];
            let delta = h[e] / w[e];
            let omx = one - xi;
            let tau = xi * omx;
            let den = delta + (d0[e] + d1[e] - two * delta) * tau;
            let inv = one / den;
            let num = delta * xi * xi + d0[e] * tau;
            let out = yk[e] + h[e] * num * inv;
            let m = d1[e] * xi * xi + two * delta * tau + d0[e] * omx * omx;
            // ln y' = ln(Δ² m / den²), finite for the clamped values.
            let lv = (delta * delta * m * inv * inv).fast_ln();
            let ins = inside(sh, vb[e]);
            yo[e] = if ins { out } else { vb[e] };
            lo[e] = if ins { lv } else { zero };
        }
    }
}

simd_dispatch!(
    /// The backward pass of [`forward`] on the same elements: from `gy = ∂L/∂y` and the
    /// weights `wl` of the log-derivatives in `L`, **overwrites** `g_raw` (the `3K − 1`
    /// rows) with `∂L/∂raw` and `gv` with `∂L/∂v`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn backward<T: Real>(sh: &Shape<T>, raw: &[T], v: &[T], mp: usize, wn: &[T], hn: &[T], loc: &[T], gy: &[T], wl: &[T], g_raw: &mut [T], gv: &mut [T]) => backward_g
);

/// `g_raw[row0 + q] = s · ŵ_q (g_q − Σ_m ŵ_m g_m)` with `g_q = 2B (1 − Kδ) Σ_{p > q}
/// ∂L/∂X_p`, where knot `X_p` (`1 ≤ p ≤ K − 1`) gets `g_left − g_size` from bin `p` and
/// `g_size` from bin `p − 1` (the widths from `X_k` and `w`, or the heights from `Y_k`
/// and `h`).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn knots_backward<T: Real>(
    sh: &Shape<T>,
    mult: T,
    norm: &[T],
    bin: &[T],
    g_left: &[T],
    g_size: &[T],
    row0: usize,
    mp: usize,
    b: usize,
    bl: usize,
    acc: &mut [T],
    dot: &mut [T],
    g_raw: &mut [T],
) {
    let k = sh.bins;
    let zero = T::of(0.0);
    let (acc, dot) = (&mut acc[..bl], &mut dot[..bl]);
    let (bin, g_left, g_size) = (&bin[..bl], &g_left[..bl], &g_size[..bl]);
    acc.fill(zero);
    dot.fill(zero);
    let c = sh.two_bound * mult;
    for q in (0..k).rev() {
        let o = &mut g_raw[(row0 + q) * mp + b..][..bl];
        let wq = &norm[q * mp + b..][..bl];
        for e in 0..bl {
            o[e] = c * acc[e];
            dot[e] += wq[e] * o[e];
        }
        if q >= 1 {
            let (qf, qm) = (T::of(q as f64), T::of((q - 1) as f64));
            for e in 0..bl {
                let a = if bin[e] == qf {
                    g_left[e] - g_size[e]
                } else {
                    zero
                };
                let s = if bin[e] == qm { g_size[e] } else { zero };
                acc[e] += a + s;
            }
        }
    }
    for q in 0..k {
        let wq = &norm[q * mp + b..][..bl];
        let o = &mut g_raw[(row0 + q) * mp + b..][..bl];
        for e in 0..bl {
            o[e] = sh.scale * wq[e] * (o[e] - dot[e]);
        }
    }
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn backward_g<T: Real>(
    sh: &Shape<T>,
    raw: &[T],
    v: &[T],
    mp: usize,
    wn: &[T],
    hn: &[T],
    loc: &[T],
    gy: &[T],
    wl: &[T],
    g_raw: &mut [T],
    gv: &mut [T],
) {
    let k = sh.bins;
    let (zero, one, two) = (T::of(0.0), T::of(1.0), T::of(2.0));
    let mut buf = [zero; SCRATCH * BLOCK];
    for b in (0..mp).step_by(BLOCK) {
        let bl = BLOCK.min(mp - b);
        let mut rows = buf.chunks_exact_mut(BLOCK);
        let mut next = || match rows.next() {
            Some(r) => &mut r[..bl],
            None => unreachable!("SCRATCH rows"),
        };
        let (vc, g_xk, g_w, g_yk) = (next(), next(), next(), next());
        let (g_h, g_d0, g_d1, acc, dot) = (next(), next(), next(), next(), next());
        let vb = &v[b..b + bl];
        clamp_rows(sh, vb, vc);
        let l = |r: usize| &loc[r * mp + b..][..bl];
        let (xk, w, h, d0, d1, bin) = (l(XK), l(W), l(HK), l(D0), l(D1), l(BIN));
        let (gyb, wlb) = (&gy[b..b + bl], &wl[b..b + bl]);
        let gvo = &mut gv[b..b + bl];
        // Gradients with respect to X_k, w, Y_k, h, d_k, d_{k+1} (0 outside [−B, B]).
        for e in 0..bl {
            let (gyl, wll) = (gyb[e], wlb[e]);
            let inv_w = one / w[e];
            let xi = (vc[e] - xk[e]) * inv_w;
            let delta = h[e] * inv_w;
            let omx = one - xi;
            let tau = xi * omx;
            let g = d0[e] + d1[e] - two * delta;
            let den = delta + g * tau;
            let inv_d = one / den;
            let num = delta * xi * xi + d0[e] * tau;
            let r = num * inv_d;
            let m = d1[e] * xi * xi + two * delta * tau + d0[e] * omx * omx;
            let inv_m = one / m;
            let one_m2xi = one - two * xi;
            // ∂/∂ξ of num, den and m.
            let dn_xi = two * delta * xi + d0[e] * one_m2xi;
            let dd_xi = g * one_m2xi;
            let dm_xi = two * (d1[e] * xi + delta * one_m2xi - d0[e] * omx);
            let gh = gyl * h[e];
            let g_xi =
                gh * (dn_xi - r * dd_xi) * inv_d + wll * (dm_xi * inv_m - two * dd_xi * inv_d);
            // ∂/∂Δ: num ξ², den 1 − 2τ, m 2τ, and 2 ln Δ.
            let dd_del = one - two * tau;
            let g_del = gh * (xi * xi - r * dd_del) * inv_d
                + wll * (two / delta + two * tau * inv_m - two * dd_del * inv_d);
            let two_tau_inv_d = two * tau * inv_d;
            let gd0 = gh * (tau - r * tau) * inv_d + wll * (omx * omx * inv_m - two_tau_inv_d);
            let gd1 = -gh * r * tau * inv_d + wll * (xi * xi * inv_m - two_tau_inv_d);
            let g_v = g_xi * inv_w;
            let gw = -(g_xi * xi + g_del * delta) * inv_w;
            let ghh = gyl * r + g_del * inv_w;
            let ins = inside(sh, vb[e]);
            gvo[e] = if ins { g_v } else { gyl };
            g_xk[e] = if ins { -g_v } else { zero };
            g_w[e] = if ins { gw } else { zero };
            g_yk[e] = if ins { gyl } else { zero };
            g_h[e] = if ins { ghh } else { zero };
            g_d0[e] = if ins { gd0 } else { zero };
            g_d1[e] = if ins { gd1 } else { zero };
        }
        knots_backward(
            sh,
            sh.width_mult,
            wn,
            bin,
            g_xk,
            g_w,
            0,
            mp,
            b,
            bl,
            acc,
            dot,
            g_raw,
        );
        knots_backward(
            sh,
            sh.height_mult,
            hn,
            bin,
            g_yk,
            g_h,
            k,
            mp,
            b,
            bl,
            acc,
            dot,
            g_raw,
        );
        // Interior derivatives d_q = δ + softplus(c_{q−1}), q = 1..K−1.
        for q in 1..k {
            let row = (2 * k + q - 1) * mp + b;
            let c = &raw[row..row + bl];
            let o = &mut g_raw[row..row + bl];
            let (qf, qm) = (T::of(q as f64), T::of((q - 1) as f64));
            for e in 0..bl {
                let a = if bin[e] == qf { g_d0[e] } else { zero };
                let s = if bin[e] == qm { g_d1[e] } else { zero };
                o[e] = (a + s) * c[e].fast_sigmoid();
            }
        }
    }
}

simd_dispatch!(
    /// The inverse of [`forward`] on `mp` elements: from the outputs `y` writes the
    /// inputs `u` and `ld` = ln |∂u/∂y| (the negated forward log-derivative);
    /// `wn`, `hn` (`K` rows each) and `loc` ([`LOCALS`] rows) are scratch.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn inverse<T: Real>(sh: &Shape<T>, raw: &[T], y: &[T], mp: usize, wn: &mut [T], hn: &mut [T], loc: &mut [T], u: &mut [T], ld: &mut [T]) => inverse_g
);

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn inverse_g<T: Real>(
    sh: &Shape<T>,
    raw: &[T],
    y: &[T],
    mp: usize,
    wn: &mut [T],
    hn: &mut [T],
    loc: &mut [T],
    u: &mut [T],
    ld: &mut [T],
) {
    let k = sh.bins;
    let (zero, one, two, four) = (T::of(0.0), T::of(1.0), T::of(2.0), T::of(4.0));
    let mut buf = [zero; SCRATCH * BLOCK];
    for b in (0..mp).step_by(BLOCK) {
        let bl = BLOCK.min(mp - b);
        let (yc, rest) = buf.split_at_mut(BLOCK);
        let (mx, rest) = rest.split_at_mut(BLOCK);
        let sum = &mut rest[..BLOCK];
        softmax_rows(raw, 0, k, mp, b, bl, sh.scale, wn, mx, sum);
        softmax_rows(raw, k, k, mp, b, bl, sh.scale, hn, mx, sum);
        let yb = &y[b..b + bl];
        let yc = &mut yc[..bl];
        clamp_rows(sh, yb, yc);
        select_bin::<T, true>(sh, raw, wn, hn, mp, b, bl, yc, loc);
        let l = |r: usize| &loc[r * mp + b..][..bl];
        let (xk, w, yk, h, d0, d1) = (l(XK), l(W), l(YK), l(HK), l(D0), l(D1));
        let (uo, lo) = (&mut u[b..b + bl], &mut ld[b..b + bl]);
        for e in 0..bl {
            let delta = h[e] / w[e];
            let r = yc[e] - yk[e];
            let g = d0[e] + d1[e] - two * delta;
            let qa = r * g + h[e] * (delta - d0[e]);
            let qb = h[e] * d0[e] - r * g;
            let qc = -delta * r;
            let disc = qb * qb - four * qa * qc;
            let disc = if disc > zero { disc } else { zero };
            let xi = two * qc / (-qb - disc.sqrt());
            let omx = one - xi;
            let tau = xi * omx;
            let den = delta + g * tau;
            let m = d1[e] * xi * xi + two * delta * tau + d0[e] * omx * omx;
            let lv = (den * den / (delta * delta * m)).fast_ln();
            let ins = inside(sh, yb[e]);
            uo[e] = if ins { xk[e] + xi * w[e] } else { yb[e] };
            lo[e] = if ins { lv } else { zero };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    const K: usize = 10;

    /// Random unconstrained values for `m` elements (padded), of a size that makes the
    /// bins clearly uneven.
    fn raw_values(m: usize, seed: u64, spread: f64) -> (Vec<f64>, usize) {
        let mp = padded(m);
        let mut r = rand::rngs::StdRng::seed_from_u64(seed);
        let raw = (0..(3 * K - 1) * mp)
            .map(|_| r.random_range(-spread..spread))
            .collect();
        (raw, mp)
    }

    fn fwd(sh: &Shape<f64>, raw: &[f64], v: &[f64], mp: usize) -> (Vec<f64>, Vec<f64>) {
        let mut wn = vec![0.0; K * mp];
        let mut hn = vec![0.0; K * mp];
        let mut loc = vec![0.0; LOCALS * mp];
        let mut y = vec![0.0; mp];
        let mut ld = vec![0.0; mp];
        forward(sh, raw, v, mp, &mut wn, &mut hn, &mut loc, &mut y, &mut ld);
        (y, ld)
    }

    /// The same raw values for every element (one spline evaluated at many points).
    fn broadcast(raw1: &[f64], mp: usize) -> Vec<f64> {
        let rows = raw1.len();
        let mut out = vec![0.0; rows * mp];
        for p in 0..rows {
            out[p * mp..(p + 1) * mp].fill(raw1[p]);
        }
        out
    }

    fn shape() -> Shape<f64> {
        Shape::new(K, 50, 3.0)
    }

    #[test]
    fn inverse_of_forward_is_the_identity() {
        let sh = shape();
        let m = 1000;
        let (raw, mp) = raw_values(m, 1, 8.0);
        let mut r = rand::rngs::StdRng::seed_from_u64(2);
        let v: Vec<f64> = (0..mp).map(|_| r.random_range(-4.0..4.0)).collect();
        let (y, ld) = fwd(&sh, &raw, &v, mp);
        let mut wn = vec![0.0; K * mp];
        let mut hn = vec![0.0; K * mp];
        let mut u = vec![0.0; mp];
        let mut ldi = vec![0.0; mp];
        let mut loc = vec![0.0; LOCALS * mp];
        inverse(
            &sh, &raw, &y, mp, &mut wn, &mut hn, &mut loc, &mut u, &mut ldi,
        );
        for e in 0..mp {
            assert!((u[e] - v[e]).abs() < 1e-9, "{e}: {} vs {}", u[e], v[e]);
            assert!(
                (ldi[e] + ld[e]).abs() < 1e-9,
                "{e}: {} vs {}",
                ldi[e],
                -ld[e]
            );
        }
        // Also for inputs on the knots and at the bounds.
        let (raw1, _) = raw_values(1, 3, 5.0);
        let mut pts = vec![-3.0, 3.0, 0.0, -2.999_999, 2.999_999];
        // The knots themselves: the images of the ends of each bin.
        let mp1 = padded(pts.len());
        pts.resize(mp1, 0.5);
        let raw_b = broadcast(&raw1, mp1);
        let (y, _) = fwd(&sh, &raw_b, &pts, mp1);
        assert_eq!(y[0], -3.0);
        assert!((y[1] - 3.0).abs() < 1e-14, "{}", y[1]);
        let (mut wn, mut hn) = (vec![0.0; K * mp1], vec![0.0; K * mp1]);
        let (mut u, mut ldi) = (vec![0.0; mp1], vec![0.0; mp1]);
        let mut loc = vec![0.0; LOCALS * mp1];
        inverse(
            &sh, &raw_b, &y, mp1, &mut wn, &mut hn, &mut loc, &mut u, &mut ldi,
        );
        for e in 0..mp1 {
            assert!((u[e] - pts[e]).abs() < 1e-9, "{}: {}", pts[e], u[e]);
        }
    }

    #[test]
    fn log_derivative_matches_central_difference_and_map_is_monotone() {
        let sh = shape();
        for seed in 0..5 {
            let (raw1, _) = raw_values(1, 10 + seed, 6.0);
            let n = 4001;
            let mp = padded(n);
            let raw = broadcast(&raw1, mp);
            let v: Vec<f64> = (0..mp)
                .map(|i| -3.5 + 7.0 * (i.min(n - 1)) as f64 / (n - 1) as f64)
                .collect();
            let (y, ld) = fwd(&sh, &raw, &v, mp);
            let h = 1e-6;
            let vp: Vec<f64> = v.iter().map(|x| x + h).collect();
            let vm: Vec<f64> = v.iter().map(|x| x - h).collect();
            let (yp, _) = fwd(&sh, &raw, &vp, mp);
            let (ym, _) = fwd(&sh, &raw, &vm, mp);
            for i in 0..n {
                // Skip points within h of a tail bound (the difference straddles it).
                if (v[i].abs() - 3.0).abs() < 2.0 * h {
                    continue;
                }
                let fd = (yp[i] - ym[i]) / (2.0 * h);
                assert!(fd > 0.0, "not increasing at {}", v[i]);
                assert!(
                    (fd.ln() - ld[i]).abs() < 1e-6,
                    "seed {seed} at {}: ln fd {} vs {}",
                    v[i],
                    fd.ln(),
                    ld[i]
                );
            }
            for i in 0..n - 1 {
                assert!(y[i + 1] > y[i], "not strictly increasing at {}", v[i]);
            }
        }
    }

    #[test]
    fn tails_are_the_identity_and_the_boundary_derivative_is_one() {
        let sh = shape();
        let (raw1, _) = raw_values(1, 7, 6.0);
        let pts = [-10.0, -3.000_001, 3.000_001, 7.5, 1e6, -1e-300 - 3.5];
        let mp = padded(pts.len());
        let raw = broadcast(&raw1, mp);
        let mut v = pts.to_vec();
        v.resize(mp, 0.0);
        let (y, ld) = fwd(&sh, &raw, &v, mp);
        for i in 0..pts.len() {
            assert_eq!(y[i], pts[i]);
            assert_eq!(ld[i], 0.0);
        }
        // At ±B the spline's derivative is 1 (the padded boundary derivatives), so the
        // map is C¹ with its identity tails: ln y' → 0 at the bounds.
        let v = {
            let mut v = vec![-3.0, 3.0, -3.0 + 1e-9, 3.0 - 1e-9];
            v.resize(mp, 0.0);
            v
        };
        let (y, ld) = fwd(&sh, &raw, &v, mp);
        assert_eq!(y[0], -3.0);
        assert!((y[1] - 3.0).abs() < 1e-14);
        for i in 0..4 {
            assert!(ld[i].abs() < 1e-7, "ln y' at {} = {}", v[i], ld[i]);
        }
        assert!((sh.edge_derivative - 1.0).abs() < 1e-15);
    }

    /// `Σ_e gy_e y_e + wl_e ld_e` of one set of raw values and inputs.
    fn objective(
        sh: &Shape<f64>,
        raw: &[f64],
        v: &[f64],
        mp: usize,
        gy: &[f64],
        wl: &[f64],
    ) -> f64 {
        let (y, ld) = fwd(sh, raw, v, mp);
        (0..mp).map(|e| gy[e] * y[e] + wl[e] * ld[e]).sum()
    }

    #[test]
    fn gradients_match_central_differences() {
        for (bins, hidden) in [(K, 50), (1, 4), (2, 9)] {
            let sh = Shape::<f64>::new(bins, hidden, 3.0);
            let m = 37;
            let mp = padded(m);
            let mut r = rand::rngs::StdRng::seed_from_u64(4 + bins as u64);
            let raw: Vec<f64> = (0..sh.raw_len() * mp)
                .map(|_| r.random_range(-3.0..3.0))
                .collect();
            // Inputs inside and outside the bounds; the pads are zero.
            let v: Vec<f64> = (0..mp)
                .map(|e| {
                    if e < m {
                        r.random_range(-3.6..3.6)
                    } else {
                        0.0
                    }
                })
                .collect();
            let gy: Vec<f64> = (0..mp).map(|_| r.random_range(-1.0..1.0)).collect();
            let wl: Vec<f64> = (0..mp).map(|_| r.random_range(-1.0..1.0)).collect();
            let mut wn = vec![0.0; bins * mp];
            let mut hn = vec![0.0; bins * mp];
            let mut loc = vec![0.0; LOCALS * mp];
            let (mut y, mut ld) = (vec![0.0; mp], vec![0.0; mp]);
            forward(
                &sh, &raw, &v, mp, &mut wn, &mut hn, &mut loc, &mut y, &mut ld,
            );
            let mut g_raw = vec![f64::NAN; sh.raw_len() * mp];
            let mut gv = vec![f64::NAN; mp];
            backward(
                &sh, &raw, &v, mp, &wn, &hn, &loc, &gy, &wl, &mut g_raw, &mut gv,
            );
            let h = 1e-6;
            let (mut num, mut den) = (0.0f64, 0.0f64);
            for i in 0..raw.len() {
                let mut q = raw.clone();
                q[i] += h;
                let fp = objective(&sh, &q, &v, mp, &gy, &wl);
                q[i] -= 2.0 * h;
                let fm = objective(&sh, &q, &v, mp, &gy, &wl);
                let fd = (fp - fm) / (2.0 * h);
                num += (fd - g_raw[i]).powi(2);
                den += fd * fd;
                assert!(
                    (fd - g_raw[i]).abs() < 1e-6 * (1.0 + fd.abs()),
                    "K={bins} raw {i}: {fd} vs {}",
                    g_raw[i]
                );
            }
            // (With one bin the spline is the identity: no gradient at all.)
            assert!(num.sqrt() <= 1e-7 * den.sqrt(), "K={bins}: {num} vs {den}");
            for e in 0..mp {
                let mut q = v.clone();
                q[e] += h;
                let fp = objective(&sh, &raw, &q, mp, &gy, &wl);
                q[e] -= 2.0 * h;
                let fm = objective(&sh, &raw, &q, mp, &gy, &wl);
                let fd = (fp - fm) / (2.0 * h);
                assert!(
                    (fd - gv[e]).abs() < 1e-6 * (1.0 + fd.abs()),
                    "K={bins} input {e} at {}: {fd} vs {}",
                    v[e],
                    gv[e]
                );
            }
        }
    }

    #[test]
    fn f32_kernels_agree_with_f64() {
        let sh64 = shape();
        let sh32 = Shape::<f32>::new(K, 50, 3.0);
        let m = 300;
        let (raw, mp) = raw_values(m, 8, 5.0);
        let mut r = rand::rngs::StdRng::seed_from_u64(9);
        let v: Vec<f64> = (0..mp).map(|_| r.random_range(-3.5..3.5)).collect();
        let (y, ld) = fwd(&sh64, &raw, &v, mp);
        let raw32: Vec<f32> = raw.iter().map(|x| *x as f32).collect();
        let v32: Vec<f32> = v.iter().map(|x| *x as f32).collect();
        let mut wn = vec![0.0f32; K * mp];
        let mut hn = vec![0.0f32; K * mp];
        let mut loc = vec![0.0f32; LOCALS * mp];
        let (mut y32, mut ld32) = (vec![0.0f32; mp], vec![0.0f32; mp]);
        forward(
            &sh32, &raw32, &v32, mp, &mut wn, &mut hn, &mut loc, &mut y32, &mut ld32,
        );
        for e in 0..mp {
            assert!((f64::from(y32[e]) - y[e]).abs() < 1e-5, "{e}");
            assert!((f64::from(ld32[e]) - ld[e]).abs() < 1e-4, "{e}");
        }
    }
}
