//! The MDN's passes on one column chunk, for the pass driver of simfer-nn: the
//! log-density with its backward pass ([`Mdn`] as a model), and the raw outputs with the
//! backward pass of a given gradient with respect to them (the network alone, `Net`).
//!
//! Backward through one component (weight w of the column, responsibility r_k = the
//! component's share of q, δ = z − μ_k, y = A_k δ):
//!
//! ```text
//! ∂(w log q)/∂logit_m   = w (r_m − β_m)
//! ∂(w log q)/∂μ_k       = w r_k (A_kᵀy + εδ)            (and −that for z)
//! ∂(w log q)/∂A_k,rc    = −w r_k y_r δ_c                 (r < c)
//! ∂(w log q)/∂diag_k,r  = w r_k (1/A_k,rr − y_r δ_r) · sigmoid(diag_k,r)
//! ```

use nalgebra::DMatrixView;
use simfer_nn::Real;
use simfer_nn::driver::{ChunkGrads, ChunkModel, PassInputs};
use simfer_nn::fastmath;

use super::mog::LN_2PI;

/// Mixture weights and responsibilities below this are taken as 0 in the backward pass
/// (and, for f32 passes, they would otherwise be subnormal and slow down the products).
const TINY: f64 = 1e-30;

/// `e^x` for `x ≤ 0`, with `x` floored at −80: the terms of a log-sum-exp after its
/// maximum, where anything below e^−80 cannot change the sum (which is at least 1) and
/// would only cost time as a subnormal number in single precision.
#[inline(always)]
fn floored_exp<T: Real>(x: T) -> T {
    let floor = T::of(-80.0);
    (if x < floor { floor } else { x }).fast_exp()
}
use super::{EPSILON, Mdn, Net};
use crate::standardize::Standardization;

/// The activations and scratch of one chunk of an MDN's log-density pass.
///
/// The network is a function of the condition alone, so it runs once per run of equal
/// conditions (the atomic loss's layout, [`PassInputs::condition_runs`]; without runs,
/// every column is a run of its own): the network's activations, and everything
/// computed from its raw outputs alone, have one column per run.
#[derive(Clone, Debug, Default)]
pub struct Chunk<T> {
    len: usize,
    /// Bounds of the runs: run `r` is the columns `runs[r]..runs[r + 1]`.
    runs: Vec<usize>,
    /// Standardized condition, `C × runs`.
    c: Vec<T>,
    /// The network's activations (hidden layers, then the raw outputs `R × runs`).
    acts: Vec<T>,
    /// Standardized input, `D × len`.
    z: Vec<T>,
    /// Factor diagonals softplus(diag), `K·D × runs`, and their logarithms.
    a: Vec<T>,
    la: Vec<T>,
    /// Normalized log-weights, `K × runs`.
    lw: Vec<T>,
    /// Per run and component, the part of its log-density that does not depend on the
    /// input, `K × runs`.
    cst: Vec<T>,
    /// z − μ_k and A_k (z − μ_k), `K·D × len` each.
    delta: Vec<T>,
    y: Vec<T>,
    /// Responsibilities, `K × len`.
    resp: Vec<T>,
    /// log q per column.
    lp: Vec<T>,
    // Backward scratch.
    w: Vec<T>,
    sig: Vec<T>,
    /// The gradient with respect to the raw outputs, summed over each run, `R × runs`.
    g_out: Vec<T>,
    g_z: Vec<T>,
    g_c: Vec<T>,
    scratch: Vec<T>,
    /// `K + D` entries for the mixture's backward pass.
    t: Vec<T>,
}

/// The activations and scratch of one chunk of an MDN's raw-output pass.
#[derive(Clone, Debug, Default)]
pub struct OutputChunk<T> {
    len: usize,
    c: Vec<T>,
    acts: Vec<T>,
    /// The gradient with respect to the raw outputs (the pass's input), `R × len`.
    g: Vec<T>,
    // Backward scratch.
    g_out: Vec<T>,
    g_c: Vec<T>,
    scratch: Vec<T>,
}

impl<T: Real> OutputChunk<T> {
    /// The raw outputs of the chunk's `len` columns (`R × len`).
    pub(crate) fn outputs(&self, net: &Net, len: usize) -> &[T] {
        net.mlp.output(&self.acts, len)
    }
}

/// Column-major `rows × n` block of `(src[:, start..start+n] − mean)/std`, rounded to `T`.
fn standardize_into<T: Real>(
    src: &DMatrixView<'_, f64>,
    start: usize,
    n: usize,
    stats: &Standardization,
    out: &mut Vec<T>,
) {
    standardize_columns(src, start..start + n, stats, out);
}

/// Column-major block of `(src[:, j] − mean)/std` for the columns `cols`, rounded to `T`.
fn standardize_columns<T: Real>(
    src: &DMatrixView<'_, f64>,
    cols: impl ExactSizeIterator<Item = usize>,
    stats: &Standardization,
    out: &mut Vec<T>,
) {
    let rows = stats.mean.len();
    out.clear();
    if rows == 0 {
        return;
    }
    out.reserve(rows * cols.len());
    for j in cols {
        for i in 0..rows {
            out.push(T::of((src[(i, j)] - stats.mean[i]) / stats.std[i]));
        }
    }
}

fn resize<T: Real>(v: &mut Vec<T>, len: usize) {
    v.resize(len, T::of(0.0));
}

/// `gc[i, j] += g[i, j] / std[i]` (the standardization's chain rule), widened to `f64`.
fn add_unstandardized<T: Real>(g: &[T], std: &[f64], gc: &mut [f64]) {
    let rows = std.len();
    if rows == 0 {
        return;
    }
    for (gcol, ocol) in g.chunks_exact(rows).zip(gc.chunks_exact_mut(rows)) {
        for i in 0..rows {
            ocol[i] += gcol[i].widen() / std[i];
        }
    }
}

impl Net {
    /// The standardized condition and the network's forward pass of one chunk.
    fn network_forward<T: Real>(
        &self,
        params: &[T],
        inputs: &PassInputs<'_>,
        start: usize,
        n: usize,
        c: &mut Vec<T>,
        acts: &mut Vec<T>,
    ) {
        standardize_into(&inputs.condition, start, n, &self.data.condition_stats, c);
        resize(acts, self.mlp.acts_len(n));
        self.mlp.forward(params, c, n, acts);
    }

    /// The network's backward pass from `g_out` (`R × n`): adds the parameter gradient and
    /// the condition gradient (unstandardized) that `grads` asks for.
    #[allow(clippy::too_many_arguments)]
    fn network_backward<T: Real>(
        &self,
        params: &[T],
        n: usize,
        c: &[T],
        acts: &[T],
        g_out: &[T],
        grads: ChunkGrads<'_, T>,
        g_c: &mut Vec<T>,
        scratch: &mut Vec<T>,
    ) {
        let cdim = self.data.condition_dim;
        let want_condition = grads.condition.is_some() && cdim > 0;
        resize(scratch, self.mlp.scratch_len(n));
        if want_condition {
            resize(g_c, cdim * n);
        }
        self.mlp.backward(
            params,
            c,
            n,
            acts,
            g_out,
            grads.params,
            want_condition.then_some(&mut g_c[..]),
            scratch,
        );
        if let (true, Some(gc)) = (want_condition, grads.condition) {
            add_unstandardized(g_c, &self.data.condition_stats.std, gc);
        }
    }
}

fastmath::simd_dispatch!(
    #[allow(clippy::too_many_arguments)]
    fn mixture_forward<T: Real>(out: &[T], bounds: &[usize], z: &[T], la: &[T], a: &[T], lw: &mut [T], cst: &mut [T], delta: &mut [T], y: &mut [T], resp: &mut [T], lp: &mut [T], d: usize, kk: usize, base: T) => mixture_forward_g
);

/// For each run of columns that share the raw outputs `out` (`R × runs`; `la`, `a`:
/// `K·D × runs`): the normalized log-weights (`lw`) and the input-free part of each
/// component's log-density (`cst`), then for each of the run's columns δ = z − μ_k,
/// y = A_k δ, the log-density (plus `base`, the standardization's log-determinant) and
/// the responsibilities.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn mixture_forward_g<T: Real>(
    out: &[T],
    bounds: &[usize],
    z: &[T],
    la: &[T],
    a: &[T],
    lw: &mut [T],
    cst: &mut [T],
    delta: &mut [T],
    y: &mut [T],
    resp: &mut [T],
    lp: &mut [T],
    d: usize,
    kk: usize,
    base: T,
) {
    let runs = bounds.len().saturating_sub(1);
    if lp.is_empty() || runs == 0 {
        return;
    }
    let r = out.len() / runs;
    let u = d * (d - 1) / 2;
    let (mo, uo) = (kk, kk + 2 * kk * d);
    let zero = T::of(0.0);
    let (eps, half) = (T::of(EPSILON), T::of(0.5));
    let norm = T::of(0.5 * d as f64 * LN_2PI);
    for (run, b) in bounds.windows(2).enumerate() {
        let oc = &out[run * r..(run + 1) * r];
        let lwc = &mut lw[run * kk..(run + 1) * kk];
        let mut mx = oc[0];
        for &v in &oc[1..kk] {
            if v > mx {
                mx = v;
            }
        }
        let mut s = zero;
        for &v in &oc[..kk] {
            s += floored_exp(v - mx);
        }
        let lse = mx + s.fast_ln();
        for k in 0..kk {
            lwc[k] = oc[k] - lse;
        }
        let cc = &mut cst[run * kk..(run + 1) * kk];
        for k in 0..kk {
            let mut ld = zero;
            for v in &la[(run * kk + k) * d..(run * kk + k + 1) * d] {
                ld += *v;
            }
            cc[k] = lwc[k] + ld - norm;
        }
        let means = &oc[mo..mo + kk * d];
        let ups = &oc[uo..uo + kk * u];
        let a_run = &a[run * kk * d..(run + 1) * kk * d];
        for j in b[0]..b[1] {
            let zc = &z[j * d..(j + 1) * d];
            let rc = &mut resp[j * kk..(j + 1) * kk];
            let dj = &mut delta[j * kk * d..(j + 1) * kk * d];
            let yj = &mut y[j * kk * d..(j + 1) * kk * d];
            let comps = means
                .chunks_exact(d)
                .zip(a_run.chunks_exact(d))
                .zip(dj.chunks_exact_mut(d).zip(yj.chunks_exact_mut(d)));
            for (k, ((m, ak), (dl, yk))) in comps.enumerate() {
                let up = &ups[k * u..(k + 1) * u];
                for ((dv, zv), mv) in dl.iter_mut().zip(zc).zip(m) {
                    *dv = *zv - *mv;
                }
                let (mut quad, mut sq) = (zero, zero);
                let mut row = 0;
                for rr in 0..d {
                    let mut v = ak[rr] * dl[rr];
                    for c in rr + 1..d {
                        v += up[row + c - rr - 1] * dl[c];
                    }
                    row += d - rr - 1;
                    yk[rr] = v;
                    quad += v * v;
                    sq += dl[rr] * dl[rr];
                }
                rc[k] = cc[k] - half * (quad + eps * sq);
            }
            let mut mx = rc[0];
            for &v in &rc[1..] {
                if v > mx {
                    mx = v;
                }
            }
            let mut s = zero;
            for v in rc.iter_mut() {
                *v = floored_exp(*v - mx);
                s += *v;
            }
            // Responsibilities below TINY are kept as 0: their share of the gradient is
            // far below rounding, and subnormal numbers would slow every later product.
            let (inv, tiny) = (T::of(1.0) / s, T::of(TINY));
            for v in rc.iter_mut() {
                let r = *v * inv;
                *v = if r < tiny { zero } else { r };
            }
            lp[j] = mx + s.fast_ln() + base;
        }
    }
}

fastmath::simd_dispatch!(
    #[allow(clippy::too_many_arguments)]
    fn mixture_backward<T: Real>(out: &[T], bounds: &[usize], a: &[T], sig: &[T], lw: &[T], delta: &[T], y: &[T], resp: &[T], w: &[T], g_out: &mut [T], g_z: &mut [T], t: &mut [T], d: usize, kk: usize) => mixture_backward_g
);

/// The gradient of `Σ_j w_j log q_j` with respect to the raw outputs (`g_out`,
/// `R × runs`, each run's columns summed) and the standardized input (`g_z`,
/// overwritten). `t` is scratch of `K + D` entries.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn mixture_backward_g<T: Real>(
    out: &[T],
    bounds: &[usize],
    a: &[T],
    sig: &[T],
    lw: &[T],
    delta: &[T],
    y: &[T],
    resp: &[T],
    w: &[T],
    g_out: &mut [T],
    g_z: &mut [T],
    t: &mut [T],
    d: usize,
    kk: usize,
) {
    let runs = bounds.len().saturating_sub(1);
    if w.is_empty() || runs == 0 {
        return;
    }
    let r = out.len() / runs;
    let u = d * (d - 1) / 2;
    let (mo, uo) = (kk, kk + 2 * kk * d);
    let zero = T::of(0.0);
    let (eps, one, tiny) = (T::of(EPSILON), T::of(1.0), T::of(TINY));
    let (beta, tt) = t.split_at_mut(kk);
    for (run, b) in bounds.windows(2).enumerate() {
        let oc = &out[run * r..(run + 1) * r];
        let goc = &mut g_out[run * r..(run + 1) * r];
        goc.fill(zero);
        for k in 0..kk {
            let bk = floored_exp(lw[run * kk + k]);
            beta[k] = if bk < tiny { zero } else { bk };
        }
        let ups = &oc[uo..uo + kk * u];
        let a_run = &a[run * kk * d..(run + 1) * kk * d];
        let s_run = &sig[run * kk * d..(run + 1) * kk * d];
        let (g_logits, g_rest) = goc.split_at_mut(mo);
        let (g_means, g_rest) = g_rest.split_at_mut(kk * d);
        let (g_diag, g_up) = g_rest.split_at_mut(kk * d);
        let tt = &mut tt[..d];
        for j in b[0]..b[1] {
            let wj = w[j];
            let gz = &mut g_z[j * d..(j + 1) * d];
            gz.fill(zero);
            let comps = a_run
                .chunks_exact(d)
                .zip(s_run.chunks_exact(d))
                .zip(delta[j * kk * d..(j + 1) * kk * d].chunks_exact(d))
                .zip(y[j * kk * d..(j + 1) * kk * d].chunks_exact(d))
                .zip(g_means.chunks_exact_mut(d).zip(g_diag.chunks_exact_mut(d)));
            for (k, ((((ak, sk), dl), yk), (gm, gd))) in comps.enumerate() {
                let rk = wj * resp[j * kk + k];
                g_logits[k] += rk - wj * beta[k];
                let up = &ups[k * u..(k + 1) * u];
                // t = A_kᵀ y + ε δ.
                for c in 0..d {
                    tt[c] = ak[c] * yk[c] + eps * dl[c];
                }
                let mut row = 0;
                for rr in 0..d {
                    for c in rr + 1..d {
                        tt[c] += up[row + c - rr - 1] * yk[rr];
                    }
                    row += d - rr - 1;
                }
                for ((g, gzc), tv) in gm.iter_mut().zip(gz.iter_mut()).zip(tt.iter()) {
                    let v = *tv * rk;
                    *g += v;
                    *gzc -= v;
                }
                for c in 0..d {
                    gd[c] += rk * (one / ak[c] - yk[c] * dl[c]) * sk[c];
                }
                let gu = &mut g_up[k * u..(k + 1) * u];
                let mut row = 0;
                for rr in 0..d {
                    let ry = rk * yk[rr];
                    for c in rr + 1..d {
                        gu[row + c - rr - 1] -= ry * dl[c];
                    }
                    row += d - rr - 1;
                }
            }
        }
    }
}

/// Copies the diagonal rows of the raw outputs (`R × n`) into `dst` (`K·D × n`).
fn gather_diag<T: Real>(
    out: &[T],
    n: usize,
    r: usize,
    diag: std::ops::Range<usize>,
    dst: &mut Vec<T>,
) {
    dst.clear();
    for j in 0..n {
        dst.extend_from_slice(&out[j * r + diag.start..j * r + diag.end]);
    }
}

/// Replaces `v` (`rows × runs`) by its columns repeated for every column of their run
/// (`rows × bounds[runs]`).
fn repeat_runs<T: Real>(v: &mut Vec<T>, rows: usize, bounds: &[usize]) {
    let per_run = std::mem::take(v);
    v.reserve(rows * bounds.last().copied().unwrap_or(0));
    for (run, b) in bounds.windows(2).enumerate() {
        for _ in b[0]..b[1] {
            v.extend_from_slice(&per_run[run * rows..(run + 1) * rows]);
        }
    }
}

impl<T: Real> Chunk<T> {
    /// The number of runs.
    fn num_runs(&self) -> usize {
        self.runs.len().saturating_sub(1)
    }

    fn forward(
        &mut self,
        net: &Net,
        params: &[T],
        inputs: &PassInputs<'_>,
        start: usize,
        n: usize,
    ) {
        let (d, kk) = (net.layout.dim, net.layout.num_components);
        let r = net.layout.len();
        self.len = n;
        if !inputs.condition_runs(start, n, &mut self.runs) {
            self.runs.clear();
            self.runs.extend(0..=n);
        }
        let m = self.num_runs();
        let firsts = self.runs[..m].iter().map(|&j| start + j);
        standardize_columns(
            &inputs.condition,
            firsts,
            &net.data.condition_stats,
            &mut self.c,
        );
        resize(&mut self.acts, net.mlp.acts_len(m));
        net.mlp.forward(params, &self.c, m, &mut self.acts);
        standardize_into(&inputs.input, start, n, &net.data.input_stats, &mut self.z);
        let out = net.mlp.output(&self.acts, m);
        gather_diag(out, m, r, net.layout.diag(), &mut self.a);
        fastmath::softplus_inplace(&mut self.a);
        self.la.clear();
        self.la.extend_from_slice(&self.a);
        fastmath::ln_inplace(&mut self.la);
        resize(&mut self.lw, kk * m);
        resize(&mut self.cst, kk * m);
        resize(&mut self.delta, kk * d * n);
        resize(&mut self.y, kk * d * n);
        resize(&mut self.resp, kk * n);
        resize(&mut self.lp, n);
        mixture_forward(
            out,
            &self.runs,
            &self.z,
            &self.la,
            &self.a,
            &mut self.lw,
            &mut self.cst,
            &mut self.delta,
            &mut self.y,
            &mut self.resp,
            &mut self.lp,
            d,
            kk,
            T::of(net.log_det_std),
        );
    }

    /// Turns a forward pass made once per run into the per-column one (every column a
    /// run of its own), for a condition gradient per column: the per-run state repeated
    /// for every column of its run, and the network run on all columns.
    fn expand_runs(&mut self, net: &Net, params: &[T]) {
        let (d, kk, n) = (net.layout.dim, net.layout.num_components, self.len);
        repeat_runs(&mut self.c, net.data.condition_dim, &self.runs);
        repeat_runs(&mut self.a, kk * d, &self.runs);
        repeat_runs(&mut self.lw, kk, &self.runs);
        self.runs.clear();
        self.runs.extend(0..=n);
        resize(&mut self.acts, net.mlp.acts_len(n));
        net.mlp.forward(params, &self.c, n, &mut self.acts);
    }

    fn backward(&mut self, net: &Net, params: &[T], w: &[f64], grads: ChunkGrads<'_, T>) {
        let (d, kk) = (net.layout.dim, net.layout.num_components);
        let r = net.layout.len();
        let n = self.len;
        let ChunkGrads {
            params: gp,
            input: gi,
            condition: gc,
        } = grads;
        if self.num_runs() < n && gc.is_some() && net.data.condition_dim > 0 {
            // Every column needs its own condition gradient: run the network per column.
            self.expand_runs(net, params);
        }
        let m = self.num_runs();
        self.w.clear();
        self.w.extend(w.iter().map(|v| T::of(*v)));
        let out = net.mlp.output(&self.acts, m);
        gather_diag(out, m, r, net.layout.diag(), &mut self.sig);
        fastmath::sigmoid_inplace(&mut self.sig);
        resize(&mut self.g_out, r * m);
        resize(&mut self.g_z, d * n);
        resize(&mut self.t, kk + d);
        mixture_backward(
            out,
            &self.runs,
            &self.a,
            &self.sig,
            &self.lw,
            &self.delta,
            &self.y,
            &self.resp,
            &self.w,
            &mut self.g_out,
            &mut self.g_z,
            &mut self.t,
            d,
            kk,
        );
        if let Some(gi) = gi {
            add_unstandardized(&self.g_z, &net.data.input_stats.std, gi);
        }
        net.network_backward(
            params,
            m,
            &self.c,
            &self.acts,
            &self.g_out,
            ChunkGrads {
                params: gp,
                input: None,
                condition: gc,
            },
            &mut self.g_c,
            &mut self.scratch,
        );
    }
}

fn copy_params<T: Real>(params: &[f64], out: &mut Vec<T>) {
    out.clear();
    out.extend(params.iter().map(|p| T::of(*p)));
}

impl ChunkModel for Mdn {
    type Chunk<T: Real> = Chunk<T>;

    fn gradient_len(&self) -> usize {
        self.net.data.params.len()
    }

    fn pass_params<T: Real>(&self, out: &mut Vec<T>) {
        copy_params(&self.net.data.params, out);
    }

    fn forward_chunk<T: Real>(
        &self,
        params: &[T],
        chunk: &mut Chunk<T>,
        inputs: &PassInputs<'_>,
        start: usize,
        out: &mut [f64],
    ) {
        chunk.forward(&self.net, params, inputs, start, out.len());
        for (o, l) in out.iter_mut().zip(&chunk.lp) {
            *o = l.widen();
        }
    }

    fn backward_chunk<T: Real>(
        &self,
        params: &[T],
        chunk: &mut Chunk<T>,
        weights: &[f64],
        grads: ChunkGrads<'_, T>,
    ) {
        chunk.backward(&self.net, params, weights, grads);
    }
}

/// The network as a model of its own: its pass's input is a gradient `g` with respect to
/// the raw outputs (`R × n`, or no rows for the outputs alone), its value per column
/// ⟨g_j, o_j⟩, so its backward pass backpropagates `g` through the network.
impl ChunkModel for Net {
    type Chunk<T: Real> = OutputChunk<T>;

    fn gradient_len(&self) -> usize {
        self.data.params.len()
    }

    fn pass_params<T: Real>(&self, out: &mut Vec<T>) {
        copy_params(&self.data.params, out);
    }

    fn forward_chunk<T: Real>(
        &self,
        params: &[T],
        chunk: &mut OutputChunk<T>,
        inputs: &PassInputs<'_>,
        start: usize,
        out: &mut [f64],
    ) {
        let n = out.len();
        let r = self.layout.len();
        chunk.len = n;
        self.network_forward(params, inputs, start, n, &mut chunk.c, &mut chunk.acts);
        chunk.g.clear();
        if inputs.input.nrows() == r {
            for j in 0..n {
                chunk
                    .g
                    .extend(inputs.input.column(start + j).iter().map(|v| T::of(*v)));
            }
            let o = self.mlp.output(&chunk.acts, n);
            for (j, v) in out.iter_mut().enumerate() {
                let mut s = T::of(0.0);
                for i in 0..r {
                    s += chunk.g[j * r + i] * o[j * r + i];
                }
                *v = s.widen();
            }
        } else {
            out.fill(0.0);
        }
    }

    fn backward_chunk<T: Real>(
        &self,
        params: &[T],
        chunk: &mut OutputChunk<T>,
        weights: &[f64],
        grads: ChunkGrads<'_, T>,
    ) {
        let n = chunk.len;
        let r = self.layout.len();
        resize(&mut chunk.g_out, r * n);
        if chunk.g.len() == r * n {
            for j in 0..n {
                let wj = T::of(weights[j]);
                for i in 0..r {
                    chunk.g_out[j * r + i] = wj * chunk.g[j * r + i];
                }
            }
        } else {
            chunk.g_out.fill(T::of(0.0));
        }
        let OutputChunk {
            c,
            acts,
            g_out,
            g_c,
            scratch,
            ..
        } = chunk;
        self.network_backward(
            params,
            n,
            c,
            acts,
            g_out,
            ChunkGrads {
                params: grads.params,
                input: None,
                condition: grads.condition,
            },
            g_c,
            scratch,
        );
    }
}
