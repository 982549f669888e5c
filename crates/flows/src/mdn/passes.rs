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
/// The network is a function of the condition alone, so when the chunk's columns come in
/// runs of equal conditions (the atomic loss's layout, [`PassInputs::condition_runs`]) it
/// runs once per run: `c` and `acts` then hold one column per run and `outputs` the raw
/// outputs repeated for every column of the run.
#[derive(Clone, Debug, Default)]
pub struct Chunk<T> {
    len: usize,
    /// Bounds of the runs of equal conditions, or empty when the network ran per column.
    runs: Vec<usize>,
    /// Standardized condition, `C × len` (or `C × runs`).
    c: Vec<T>,
    /// The network's activations (hidden layers, then the raw outputs `R × len`, or
    /// `R × runs`).
    acts: Vec<T>,
    /// With runs: the raw outputs of every column, `R × len`.
    outputs: Vec<T>,
    /// With runs: the gradient with respect to the raw outputs summed over each run.
    g_runs: Vec<T>,
    /// Standardized input, `D × len`.
    z: Vec<T>,
    /// Factor diagonals softplus(diag), `K·D × len`, and their logarithms.
    a: Vec<T>,
    la: Vec<T>,
    /// Normalized log-weights, `K × len`.
    lw: Vec<T>,
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
    g_out: Vec<T>,
    g_z: Vec<T>,
    g_c: Vec<T>,
    scratch: Vec<T>,
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
    fn mixture_forward<T: Real>(out: &[T], z: &[T], la: &[T], a: &[T], lw: &mut [T], delta: &mut [T], y: &mut [T], resp: &mut [T], lp: &mut [T], d: usize, kk: usize, base: T) => mixture_forward_g
);

/// For each column: the normalized log-weights, δ = z − μ_k, y = A_k δ, the log-density
/// (plus `base`, the standardization's log-determinant) and the responsibilities.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn mixture_forward_g<T: Real>(
    out: &[T],
    z: &[T],
    la: &[T],
    a: &[T],
    lw: &mut [T],
    delta: &mut [T],
    y: &mut [T],
    resp: &mut [T],
    lp: &mut [T],
    d: usize,
    kk: usize,
    base: T,
) {
    let n = lp.len();
    if n == 0 {
        return;
    }
    let r = out.len() / n;
    let u = d * (d - 1) / 2;
    let (mo, uo) = (kk, kk + 2 * kk * d);
    let zero = T::of(0.0);
    let (eps, half) = (T::of(EPSILON), T::of(0.5));
    let norm = T::of(0.5 * d as f64 * LN_2PI);
    for j in 0..n {
        let oc = &out[j * r..(j + 1) * r];
        let zc = &z[j * d..(j + 1) * d];
        let lwc = &mut lw[j * kk..(j + 1) * kk];
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
        let rc = &mut resp[j * kk..(j + 1) * kk];
        for k in 0..kk {
            let base_kd = (j * kk + k) * d;
            let m = &oc[mo + k * d..mo + (k + 1) * d];
            let up = &oc[uo + k * u..uo + (k + 1) * u];
            let ak = &a[base_kd..base_kd + d];
            let dl = &mut delta[base_kd..base_kd + d];
            for i in 0..d {
                dl[i] = zc[i] - m[i];
            }
            let yk = &mut y[base_kd..base_kd + d];
            let (mut quad, mut sq, mut ld) = (zero, zero, zero);
            let mut row = 0;
            for rr in 0..d {
                let mut v = ak[rr] * dl[rr];
                for cc in rr + 1..d {
                    v += up[row + cc - rr - 1] * dl[cc];
                }
                row += d - rr - 1;
                yk[rr] = v;
                quad += v * v;
                sq += dl[rr] * dl[rr];
                ld += la[base_kd + rr];
            }
            rc[k] = lwc[k] + ld - half * (quad + eps * sq) - norm;
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
        // Responsibilities below TINY are kept as 0: their share of the gradient is far
        // below rounding, and subnormal numbers would slow every later product down.
        let (inv, tiny) = (T::of(1.0) / s, T::of(TINY));
        for v in rc.iter_mut() {
            let r = *v * inv;
            *v = if r < tiny { zero } else { r };
        }
        lp[j] = mx + s.fast_ln() + base;
    }
}

fastmath::simd_dispatch!(
    #[allow(clippy::too_many_arguments)]
    fn mixture_backward<T: Real>(out: &[T], a: &[T], sig: &[T], lw: &[T], delta: &[T], y: &[T], resp: &[T], w: &[T], g_out: &mut [T], g_z: &mut [T], d: usize, kk: usize) => mixture_backward_g
);

/// The gradient of `Σ_j w_j log q_j` with respect to the raw outputs (`g_out`, `R × n`)
/// and the standardized input (`g_z`, overwritten).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn mixture_backward_g<T: Real>(
    out: &[T],
    a: &[T],
    sig: &[T],
    lw: &[T],
    delta: &[T],
    y: &[T],
    resp: &[T],
    w: &[T],
    g_out: &mut [T],
    g_z: &mut [T],
    d: usize,
    kk: usize,
) {
    let n = w.len();
    if n == 0 {
        return;
    }
    let r = out.len() / n;
    let u = d * (d - 1) / 2;
    let (mo, dgo, uo) = (kk, kk + kk * d, kk + 2 * kk * d);
    let zero = T::of(0.0);
    let (eps, one) = (T::of(EPSILON), T::of(1.0));
    for j in 0..n {
        let wj = w[j];
        let oc = &out[j * r..(j + 1) * r];
        let goc = &mut g_out[j * r..(j + 1) * r];
        let gz = &mut g_z[j * d..(j + 1) * d];
        for v in gz.iter_mut() {
            *v = zero;
        }
        for k in 0..kk {
            let rk = wj * resp[j * kk + k];
            let beta = floored_exp(lw[j * kk + k]);
            goc[k] = rk - wj * if beta < T::of(TINY) { zero } else { beta };
            let base_kd = (j * kk + k) * d;
            let up = &oc[uo + k * u..uo + (k + 1) * u];
            let (ak, sk) = (&a[base_kd..base_kd + d], &sig[base_kd..base_kd + d]);
            let (dl, yk) = (&delta[base_kd..base_kd + d], &y[base_kd..base_kd + d]);
            // t = A_kᵀ y + ε δ, built in the means' slots.
            let gm = &mut goc[mo + k * d..mo + (k + 1) * d];
            for c in 0..d {
                gm[c] = ak[c] * yk[c] + eps * dl[c];
            }
            let mut row = 0;
            for rr in 0..d {
                for cc in rr + 1..d {
                    gm[cc] += up[row + cc - rr - 1] * yk[rr];
                }
                row += d - rr - 1;
            }
            for c in 0..d {
                gm[c] *= rk;
                gz[c] -= gm[c];
            }
            let gd = &mut goc[dgo + k * d..dgo + (k + 1) * d];
            for c in 0..d {
                gd[c] = rk * (one / ak[c] - yk[c] * dl[c]) * sk[c];
            }
            let gu = &mut goc[uo + k * u..uo + (k + 1) * u];
            let mut row = 0;
            for rr in 0..d {
                let ry = rk * yk[rr];
                for cc in rr + 1..d {
                    gu[row + cc - rr - 1] = -ry * dl[cc];
                }
                row += d - rr - 1;
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

impl<T: Real> Chunk<T> {
    /// The network's forward pass, once per run of equal conditions when there are runs.
    fn network_forward(
        &mut self,
        net: &Net,
        params: &[T],
        inputs: &PassInputs<'_>,
        start: usize,
        n: usize,
    ) {
        if !inputs.condition_runs(start, n, &mut self.runs) {
            net.network_forward(params, inputs, start, n, &mut self.c, &mut self.acts);
            return;
        }
        let m = self.runs.len() - 1;
        let firsts = self.runs[..m].iter().map(|&j| start + j);
        standardize_columns(
            &inputs.condition,
            firsts,
            &net.data.condition_stats,
            &mut self.c,
        );
        resize(&mut self.acts, net.mlp.acts_len(m));
        net.mlp.forward(params, &self.c, m, &mut self.acts);
        let r = net.layout.len();
        let o = net.mlp.output(&self.acts, m);
        self.outputs.clear();
        self.outputs.reserve(r * n);
        for (run, w) in self.runs.windows(2).enumerate() {
            for _ in w[0]..w[1] {
                self.outputs.extend_from_slice(&o[run * r..(run + 1) * r]);
            }
        }
    }

    /// The raw outputs of every column, `R × len`.
    fn outputs<'a>(
        runs: &[usize],
        outputs: &'a [T],
        acts: &'a [T],
        net: &Net,
        n: usize,
    ) -> &'a [T] {
        if runs.is_empty() {
            net.mlp.output(acts, n)
        } else {
            outputs
        }
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
        self.network_forward(net, params, inputs, start, n);
        standardize_into(&inputs.input, start, n, &net.data.input_stats, &mut self.z);
        let out = Self::outputs(&self.runs, &self.outputs, &self.acts, net, n);
        gather_diag(out, n, r, net.layout.diag(), &mut self.a);
        fastmath::softplus_inplace(&mut self.a);
        self.la.clear();
        self.la.extend_from_slice(&self.a);
        fastmath::ln_inplace(&mut self.la);
        resize(&mut self.lw, kk * n);
        resize(&mut self.delta, kk * d * n);
        resize(&mut self.y, kk * d * n);
        resize(&mut self.resp, kk * n);
        resize(&mut self.lp, n);
        mixture_forward(
            out,
            &self.z,
            &self.la,
            &self.a,
            &mut self.lw,
            &mut self.delta,
            &mut self.y,
            &mut self.resp,
            &mut self.lp,
            d,
            kk,
            T::of(net.log_det_std),
        );
    }

    fn backward(&mut self, net: &Net, params: &[T], w: &[f64], grads: ChunkGrads<'_, T>) {
        let (d, kk) = (net.layout.dim, net.layout.num_components);
        let r = net.layout.len();
        let n = self.len;
        self.w.clear();
        self.w.extend(w.iter().map(|v| T::of(*v)));
        let out = Self::outputs(&self.runs, &self.outputs, &self.acts, net, n);
        gather_diag(out, n, r, net.layout.diag(), &mut self.sig);
        fastmath::sigmoid_inplace(&mut self.sig);
        resize(&mut self.g_out, r * n);
        resize(&mut self.g_z, d * n);
        mixture_backward(
            out,
            &self.a,
            &self.sig,
            &self.lw,
            &self.delta,
            &self.y,
            &self.resp,
            &self.w,
            &mut self.g_out,
            &mut self.g_z,
            d,
            kk,
        );
        let ChunkGrads {
            params: gp,
            input: gi,
            condition: gc,
        } = grads;
        if let Some(gi) = gi {
            add_unstandardized(&self.g_z, &net.data.input_stats.std, gi);
        }
        if !self.runs.is_empty() && gc.is_some() && net.data.condition_dim > 0 {
            // Every column needs its own condition gradient: run the network per column.
            self.expand_runs(net, params);
        }
        let grads = ChunkGrads {
            params: gp,
            input: None,
            condition: gc,
        };
        if self.runs.is_empty() {
            net.network_backward(
                params,
                n,
                &self.c,
                &self.acts,
                &self.g_out,
                grads,
                &mut self.g_c,
                &mut self.scratch,
            );
            return;
        }
        // The network's output feeds every column of its run: its gradient is their sum.
        let m = self.runs.len() - 1;
        resize(&mut self.g_runs, r * m);
        for (run, b) in self.runs.windows(2).enumerate() {
            let g = &mut self.g_runs[run * r..(run + 1) * r];
            g.copy_from_slice(&self.g_out[b[0] * r..(b[0] + 1) * r]);
            for j in b[0] + 1..b[1] {
                for (gi, go) in g.iter_mut().zip(&self.g_out[j * r..(j + 1) * r]) {
                    *gi += *go;
                }
            }
        }
        net.network_backward(
            params,
            m,
            &self.c,
            &self.acts,
            &self.g_runs,
            grads,
            &mut self.g_c,
            &mut self.scratch,
        );
    }

    /// Turns a forward pass made once per run into the per-column one: the standardized
    /// condition repeated for every column of its run, and the network run on all columns.
    fn expand_runs(&mut self, net: &Net, params: &[T]) {
        let (cdim, n) = (net.data.condition_dim, self.len);
        let per_run = std::mem::take(&mut self.c);
        self.c.reserve(cdim * n);
        for (run, b) in self.runs.windows(2).enumerate() {
            for _ in b[0]..b[1] {
                self.c
                    .extend_from_slice(&per_run[run * cdim..(run + 1) * cdim]);
            }
        }
        resize(&mut self.acts, net.mlp.acts_len(n));
        net.mlp.forward(params, &self.c, n, &mut self.acts);
        self.runs.clear();
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
