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
//! Layout: the element-major blocks ("structure of arrays") of [`LANES`] elements: row
//! `p` of a block array with stride `mp` (a multiple of [`LANES`]) holds value `p` of
//! every element, so each step is one vectorizable pass over the lanes with no branch
//! per element (selects instead).

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

type Lanes<T> = [T; LANES];

#[inline(always)]
fn at<T>(s: &[T], i: usize) -> &Lanes<T> {
    match s[i..i + LANES].try_into() {
        Ok(a) => a,
        Err(_) => unreachable!("a slice of LANES elements"),
    }
}

#[inline(always)]
fn at_mut<T>(s: &mut [T], i: usize) -> &mut Lanes<T> {
    match (&mut s[i..i + LANES]).try_into() {
        Ok(a) => a,
        Err(_) => unreachable!("a slice of LANES elements"),
    }
}

/// `out[p] = softmax_p(scale · raw[row0 + p])` over `p < k`, for the block at `b`.
#[inline(always)]
fn softmax_block<T: Real>(
    raw: &[T],
    row0: usize,
    k: usize,
    mp: usize,
    b: usize,
    scale: T,
    out: &mut [T],
) {
    let mut mx = [T::of(f64::NEG_INFINITY); LANES];
    for p in 0..k {
        let r = at(raw, (row0 + p) * mp + b);
        for l in 0..LANES {
            mx[l] = if r[l] > mx[l] { r[l] } else { mx[l] };
        }
    }
    let mut sum = [T::of(0.0); LANES];
    for p in 0..k {
        let r = at(raw, (row0 + p) * mp + b);
        let o = at_mut(out, p * mp + b);
        for l in 0..LANES {
            let e = (scale * (r[l] - mx[l])).fast_exp();
            o[l] = e;
            sum[l] += e;
        }
    }
    let one = T::of(1.0);
    let inv: Lanes<T> = std::array::from_fn(|l| one / sum[l]);
    for p in 0..k {
        let o = at_mut(out, p * mp + b);
        for l in 0..LANES {
            o[l] *= inv[l];
        }
    }
}

/// The knots of bin `k` of each lane, found on the `X` knots (`on_heights = false`) or on
/// the `Y` knots, for the clamped values `vc`: writes `X_k, w, Y_k, h, d_k, d_{k+1}, k`
/// into `sel`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn select_bin<T: Real>(
    sh: &Shape<T>,
    raw: &[T],
    wn: &[T],
    hn: &[T],
    mp: usize,
    b: usize,
    vc: &Lanes<T>,
    on_heights: bool,
    sel: &mut [Lanes<T>; LOCALS],
) {
    let k = sh.bins;
    let zero = T::of(0.0);
    let mut sx = [zero; LANES];
    let mut sy = [zero; LANES];
    let mut xl = [-sh.bound; LANES];
    let mut yl = [-sh.bound; LANES];
    let mut dl = [sh.edge_derivative; LANES];
    for p in 0..k {
        let mut xr = [sh.bound; LANES];
        let mut yr = [sh.bound; LANES];
        let mut dr = [sh.edge_derivative; LANES];
        if p + 1 < k {
            let (w, h) = (at(wn, p * mp + b), at(hn, p * mp + b));
            let c = at(raw, (2 * k + p) * mp + b);
            for l in 0..LANES {
                sx[l] += sh.min_width + sh.width_mult * w[l];
                sy[l] += sh.min_height + sh.height_mult * h[l];
                xr[l] = sh.two_bound * sx[l] - sh.bound;
                yr[l] = sh.two_bound * sy[l] - sh.bound;
                dr[l] = sh.min_derivative + c[l].fast_softplus();
            }
        }
        let pf = T::of(p as f64);
        let first = p == 0;
        for l in 0..LANES {
            let knot = if on_heights { yl[l] } else { xl[l] };
            let take = first | (knot <= vc[l]);
            let vals = [xl[l], xr[l] - xl[l], yl[l], yr[l] - yl[l], dl[l], dr[l], pf];
            for (s, v) in sel.iter_mut().zip(vals) {
                s[l] = if take { v } else { s[l] };
            }
            xl[l] = xr[l];
            yl[l] = yr[l];
            dl[l] = dr[l];
        }
    }
}

/// `v` clamped to `[−B, B]`, and whether it was inside.
#[inline(always)]
fn clamp_block<T: Real>(sh: &Shape<T>, v: &Lanes<T>) -> (Lanes<T>, [bool; LANES]) {
    let (lo, hi) = (-sh.bound, sh.bound);
    let mut vc = *v;
    let mut inside = [false; LANES];
    for l in 0..LANES {
        inside[l] = (v[l] >= lo) & (v[l] <= hi);
        let c = if v[l] < lo { lo } else { v[l] };
        vc[l] = if c > hi { hi } else { c };
    }
    (vc, inside)
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
    for b in (0..mp).step_by(LANES) {
        softmax_block(raw, 0, k, mp, b, sh.scale, wn);
        softmax_block(raw, k, k, mp, b, sh.scale, hn);
        let vb = at(v, b);
        let (vc, inside) = clamp_block(sh, vb);
        let mut sel = [[zero; LANES]; LOCALS];
        select_bin(sh, raw, wn, hn, mp, b, &vc, false, &mut sel);
        let yo = at_mut(y, b);
        let mut arg = [zero; LANES];
        for l in 0..LANES {
            let (xk, w, yk, h, d0, d1) = (
                sel[XK][l], sel[W][l], sel[YK][l], sel[HK][l], sel[D0][l], sel[D1][l],
            );
            let xi = (vc[l] - xk) / w;
            let delta = h / w;
            let omx = one - xi;
            let tau = xi * omx;
            let den = delta + (d0 + d1 - two * delta) * tau;
            let inv = one / den;
            let num = delta * xi * xi + d0 * tau;
            let out = yk + h * num * inv;
            yo[l] = if inside[l] { out } else { vb[l] };
            let m = d1 * xi * xi + two * delta * tau + d0 * omx * omx;
            // ln y' = ln(Δ² m / den²), finite for the clamped values; masked below.
            arg[l] = delta * delta * m * inv * inv;
        }
        let lo = at_mut(ld, b);
        for l in 0..LANES {
            let lv = arg[l].fast_ln();
            lo[l] = if inside[l] { lv } else { zero };
        }
        for (r, s) in sel.iter().enumerate() {
            *at_mut(loc, r * mp + b) = *s;
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
    for b in (0..mp).step_by(LANES) {
        let (vc, inside) = clamp_block(sh, at(v, b));
        let s: [&Lanes<T>; LOCALS] = std::array::from_fn(|r| at(loc, r * mp + b));
        let (gyb, wlb) = (at(gy, b), at(wl, b));
        // Gradients with respect to X_k, w, Y_k, h, d_k, d_{k+1} (0 outside [−B, B]).
        let mut g_xk = [zero; LANES];
        let mut g_w = [zero; LANES];
        let mut g_yk = [zero; LANES];
        let mut g_h = [zero; LANES];
        let mut g_d0 = [zero; LANES];
        let mut g_d1 = [zero; LANES];
        let gvo = at_mut(gv, b);
        for l in 0..LANES {
            let (xk, w, h, d0, d1) = (s[XK][l], s[W][l], s[HK][l], s[D0][l], s[D1][l]);
            let (gyl, wll) = (gyb[l], wlb[l]);
            let inv_w = one / w;
            let xi = (vc[l] - xk) * inv_w;
            let delta = h * inv_w;
            let omx = one - xi;
            let tau = xi * omx;
            let g = d0 + d1 - two * delta;
            let den = delta + g * tau;
            let inv_d = one / den;
            let num = delta * xi * xi + d0 * tau;
            let r = num * inv_d;
            let m = d1 * xi * xi + two * delta * tau + d0 * omx * omx;
            let inv_m = one / m;
            let one_m2xi = one - two * xi;
            // ∂/∂ξ of num, den and m.
            let dn_xi = two * delta * xi + d0 * one_m2xi;
            let dd_xi = g * one_m2xi;
            let dm_xi = two * (d1 * xi + delta * one_m2xi - d0 * omx);
            let gh = gyl * h;
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
            let ins = inside[l];
            gvo[l] = if ins { g_v } else { gyl };
            g_xk[l] = if ins { -g_v } else { zero };
            g_w[l] = if ins { gw } else { zero };
            g_yk[l] = if ins { gyl } else { zero };
            g_h[l] = if ins { ghh } else { zero };
            g_d0[l] = if ins { gd0 } else { zero };
            g_d1[l] = if ins { gd1 } else { zero };
        }
        let bin = s[BIN];
        // Widths (rows 0..K) from X_k and w, heights (rows K..2K) from Y_k and h: knot
        // X_p (1 ≤ p ≤ K − 1) gets g_xk − g_w from bin p and g_w from bin p − 1; w'_q
        // moves every knot after it by 2B.
        for (row0, g_left, g_size, norm, mult) in [
            (0, &g_xk, &g_w, wn, sh.width_mult),
            (k, &g_yk, &g_h, hn, sh.height_mult),
        ] {
            let mut acc = [zero; LANES];
            for q in (0..k).rev() {
                let o = at_mut(g_raw, (row0 + q) * mp + b);
                for l in 0..LANES {
                    o[l] = sh.two_bound * mult * acc[l];
                }
                if q >= 1 {
                    let (qf, qm) = (T::of(q as f64), T::of((q - 1) as f64));
                    for l in 0..LANES {
                        let a = if bin[l] == qf {
                            g_left[l] - g_size[l]
                        } else {
                            zero
                        };
                        let c = if bin[l] == qm { g_size[l] } else { zero };
                        acc[l] += a + c;
                    }
                }
            }
            // Softmax backward: ∂/∂z_q = ŵ_q (g_q − Σ_m ŵ_m g_m), times the scale 1/√H.
            let mut dot = [zero; LANES];
            for q in 0..k {
                let (o, wq) = (at(g_raw, (row0 + q) * mp + b), at(norm, q * mp + b));
                for l in 0..LANES {
                    dot[l] += wq[l] * o[l];
                }
            }
            for q in 0..k {
                let wq = at(norm, q * mp + b);
                let o = at_mut(g_raw, (row0 + q) * mp + b);
                for l in 0..LANES {
                    o[l] = sh.scale * wq[l] * (o[l] - dot[l]);
                }
            }
        }
        // Interior derivatives d_q = δ + softplus(c_{q−1}), q = 1..K−1.
        for q in 1..k {
            let row = (2 * k + q - 1) * mp + b;
            let c = *at(raw, row);
            let (qf, qm) = (T::of(q as f64), T::of((q - 1) as f64));
            let o = at_mut(g_raw, row);
            for l in 0..LANES {
                let a = if bin[l] == qf { g_d0[l] } else { zero };
                let e = if bin[l] == qm { g_d1[l] } else { zero };
                o[l] = (a + e) * c[l].fast_sigmoid();
            }
        }
    }
}

simd_dispatch!(
    /// The inverse of [`forward`] on `mp` elements: from the outputs `y` writes the
    /// inputs `u` and `ld` = ln |∂u/∂y| (the negated forward log-derivative);
    /// `wn` and `hn` (`K` rows each) are scratch.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn inverse<T: Real>(sh: &Shape<T>, raw: &[T], y: &[T], mp: usize, wn: &mut [T], hn: &mut [T], u: &mut [T], ld: &mut [T]) => inverse_g
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
    u: &mut [T],
    ld: &mut [T],
) {
    let k = sh.bins;
    let (zero, one, two, four) = (T::of(0.0), T::of(1.0), T::of(2.0), T::of(4.0));
    for b in (0..mp).step_by(LANES) {
        softmax_block(raw, 0, k, mp, b, sh.scale, wn);
        softmax_block(raw, k, k, mp, b, sh.scale, hn);
        let yb = at(y, b);
        let (yc, inside) = clamp_block(sh, yb);
        let mut sel = [[zero; LANES]; LOCALS];
        select_bin(sh, raw, wn, hn, mp, b, &yc, true, &mut sel);
        let uo = at_mut(u, b);
        let lo = at_mut(ld, b);
        for l in 0..LANES {
            let (xk, w, yk, h, d0, d1) = (
                sel[XK][l], sel[W][l], sel[YK][l], sel[HK][l], sel[D0][l], sel[D1][l],
            );
            let delta = h / w;
            let r = yc[l] - yk;
            let g = d0 + d1 - two * delta;
            let qa = r * g + h * (delta - d0);
            let qb = h * d0 - r * g;
            let qc = -delta * r;
            let disc = qb * qb - four * qa * qc;
            let disc = if disc > zero { disc } else { zero };
            let xi = two * qc / (-qb - disc.sqrt());
            let omx = one - xi;
            let tau = xi * omx;
            let den = delta + g * tau;
            let m = d1 * xi * xi + two * delta * tau + d0 * omx * omx;
            uo[l] = if inside[l] { xk + xi * w } else { yb[l] };
            lo[l] = den * den / (delta * delta * m);
        }
        for l in 0..LANES {
            let lv = lo[l].fast_ln();
            lo[l] = if inside[l] { lv } else { zero };
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
        inverse(&sh, &raw, &y, mp, &mut wn, &mut hn, &mut u, &mut ldi);
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
        inverse(&sh, &raw_b, &y, mp1, &mut wn, &mut hn, &mut u, &mut ldi);
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
