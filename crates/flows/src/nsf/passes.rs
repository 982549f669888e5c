//! The NSF's training passes on one column chunk, for the pass driver of simfer-nn.
//!
//! Per coupling layer the conditioner's output (`|T|(3K − 1) × n`, one column per sample)
//! is transposed into element-major rows (`3K − 1` rows of `|T| · n` elements, element
//! `t·n + j` for coordinate `T[t]` of column `j`, padded to a multiple of the spline
//! kernels' block), so that the spline kernels run over contiguous lanes.

use simfer_nn::driver::{ChunkGrads, ChunkModel, PassInputs};
use simfer_nn::{ContextRuns, Real};

use super::spline::{self, LOCALS, Shape, padded};
use super::{Conditioner, CouplingLayout, LN_2PI, Nsf, lu};

impl ChunkModel for Nsf {
    type Chunk<T: Real> = Chunk<T>;

    fn gradient_len(&self) -> usize {
        self.data.params.len()
    }

    fn pass_params<T: Real>(&self, out: &mut Vec<T>) {
        out.clear();
        out.extend(self.data.params.iter().map(|p| T::of(*p)));
    }

    fn forward_chunk<T: Real>(
        &self,
        params: &[T],
        chunk: &mut Chunk<T>,
        inputs: &PassInputs<'_>,
        start: usize,
        out: &mut [f64],
    ) {
        chunk.resize(self, start, out.len());
        chunk.forward(self, params, inputs);
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
        chunk.backward(self, params, weights, grads);
    }
}

/// What one coupling layer keeps from the forward pass of a chunk.
#[derive(Clone, Debug, Default)]
struct LayerState<T> {
    /// The conditioner's activations.
    acts: Vec<T>,
    /// Spline values, element-major: `3K − 1` rows of `mp` elements.
    raw: Vec<T>,
    /// Spline inputs (`mp`; pads 0).
    sv: Vec<T>,
    /// Softmaxed widths and heights (`K` rows each).
    wn: Vec<T>,
    hn: Vec<T>,
    /// The chosen bin's values ([`LOCALS`] rows).
    loc: Vec<T>,
    /// `U v` of the LU layer (`D × n`).
    uv: Vec<T>,
    /// The LU layer's matrices.
    mats: Vec<T>,
}

/// The activations and scratch of one chunk of an NSF pass.
#[derive(Clone, Debug, Default)]
pub struct Chunk<T> {
    start: usize,
    len: usize,
    /// Standardized condition, `C × len`.
    c: Vec<T>,
    /// Bounds of the runs of equal conditions ([`PassInputs::condition_runs`]), or empty.
    runs: Vec<usize>,
    /// The standardized condition of each run, `C × runs`.
    c_runs: Vec<T>,
    /// Input of each transform and the final noise: `(T + 1)` blocks of `D × len`.
    pub(super) u: Vec<T>,
    /// After each coupling, before its LU layer: `T` blocks of `D × len` (`D ≥ 2`).
    v: Vec<T>,
    /// The pass-through coordinates of a layer, `|I| × len`.
    xi: Vec<T>,
    layers: Vec<LayerState<T>>,
    /// Spline outputs and log-derivatives (`mp`).
    y: Vec<T>,
    ld: Vec<T>,
    /// log q per column.
    lp: Vec<T>,
    // Backward scratch.
    w: Vec<T>,
    g_u: Vec<T>,
    g_v: Vec<T>,
    g_uv: Vec<T>,
    g_mats: Vec<T>,
    gy: Vec<T>,
    wl: Vec<T>,
    gv: Vec<T>,
    g_raw: Vec<T>,
    g_p: Vec<T>,
    g_x: Vec<T>,
    g_c: Vec<T>,
    g_c_layer: Vec<T>,
    scratch: Vec<T>,
}

/// Elements of a layer's splines for `n` columns: `(|T| · n, padded)`.
fn elements(layer: &CouplingLayout, n: usize) -> (usize, usize) {
    let m = layer.transformed.len() * n;
    (m, padded(m))
}

/// `raw[p·mp + t·n + j] = out[t·r + p + j·|T|r]`: the conditioner's output (one column
/// per sample) as element-major rows; pads are zeroed.
pub(super) fn to_rows<T: Real>(out: &[T], nt: usize, r: usize, n: usize, mp: usize, raw: &mut [T]) {
    let (m, rr) = (nt * n, nt * r);
    for p in 0..r {
        let row = &mut raw[p * mp..(p + 1) * mp];
        for t in 0..nt {
            let src = out[t * r + p..].iter().step_by(rr);
            for (v, x) in row[t * n..(t + 1) * n].iter_mut().zip(src) {
                *v = *x;
            }
        }
        row[m..].fill(T::of(0.0));
    }
}

/// The inverse of [`to_rows`]: `out[t·r + p + j·|T|r] = raw[p·mp + t·n + j]`.
fn from_rows<T: Real>(raw: &[T], nt: usize, r: usize, n: usize, mp: usize, out: &mut [T]) {
    let rr = nt * r;
    for p in 0..r {
        let row = &raw[p * mp..(p + 1) * mp];
        for t in 0..nt {
            let dst = out[t * r + p..].iter_mut().step_by(rr);
            for (d, v) in dst.zip(&row[t * n..(t + 1) * n]) {
                *d = *v;
            }
        }
    }
}

impl<T: Real> Chunk<T> {
    fn resize(&mut self, nsf: &Nsf, start: usize, len: usize) {
        let zero = T::of(0.0);
        let (d, c) = (nsf.data.input_dim, nsf.data.condition_dim);
        let cfg = &nsf.data.config;
        let nl = cfg.num_transforms;
        let k = cfg.num_bins;
        let r = 3 * k - 1;
        self.start = start;
        self.len = len;
        let dn = d * len;
        self.c.resize(c * len, zero);
        self.u.resize((nl + 1) * dn, zero);
        let has_lu = nsf.layers.iter().any(|l| l.lu.is_some());
        self.v.resize(if has_lu { nl * dn } else { 0 }, zero);
        self.layers.resize_with(nl, LayerState::default);
        let mut max_mp = 0;
        let mut max_i = 0;
        for (layer, st) in nsf.layers.iter().zip(&mut self.layers) {
            let (_, mp) = elements(layer, len);
            max_mp = max_mp.max(mp);
            max_i = max_i.max(layer.identity.len());
            st.acts.resize(layer.conditioner.acts_len(len), zero);
            st.raw.resize(r * mp, zero);
            st.sv.resize(mp, zero);
            st.wn.resize(k * mp, zero);
            st.hn.resize(k * mp, zero);
            st.loc.resize(LOCALS * mp, zero);
            if layer.lu.is_some() {
                st.uv.resize(dn, zero);
                st.mats.resize(lu::mats_len(d), zero);
            }
        }
        self.xi.resize(max_i * len, zero);
        self.y.resize(max_mp, zero);
        self.ld.resize(max_mp, zero);
        self.lp.resize(len, zero);
    }

    /// The forward pass of this chunk's columns; the input and the condition are
    /// standardized in `f64`, then rounded to `T`.
    fn forward(&mut self, nsf: &Nsf, params: &[T], inputs: &PassInputs<'_>) {
        let (theta, x) = (&inputs.input, &inputs.condition);
        let cfg = &nsf.data.config;
        let (d, cdim) = (nsf.data.input_dim, nsf.data.condition_dim);
        let (n, start) = (self.len, self.start);
        let dn = d * n;
        let shape = Shape::<T>::new(cfg.num_bins, cfg.hidden_features, cfg.tail_bound);
        let r = shape.raw_len();
        let ts = &nsf.data.input_stats;
        for j in 0..n {
            for i in 0..d {
                self.u[i + j * d] = T::of((theta[(i, start + j)] - ts.mean[i]) / ts.std[i]);
            }
        }
        let xs = &nsf.data.condition_stats;
        for j in 0..n {
            for i in 0..cdim {
                self.c[i + j * cdim] = T::of((x[(i, start + j)] - xs.mean[i]) / xs.std[i]);
            }
        }
        self.c_runs.clear();
        if inputs.condition_runs(start, n, &mut self.runs) {
            for &j in &self.runs[..self.runs.len() - 1] {
                self.c_runs
                    .extend_from_slice(&self.c[j * cdim..(j + 1) * cdim]);
            }
        }
        self.lp.fill(T::of(nsf.log_det_std));
        let runs = (!self.runs.is_empty()).then_some(ContextRuns {
            c: &self.c_runs,
            bounds: &self.runs,
        });
        let Chunk {
            c,
            u,
            v,
            xi,
            layers,
            y,
            ld,
            lp,
            ..
        } = self;
        for (i, (layer, st)) in nsf.layers.iter().zip(layers.iter_mut()).enumerate() {
            let (u_in, u_rest) = u[i * dn..].split_at_mut(dn);
            let u_next = &mut u_rest[..dn];
            let out: &mut [T] = if layer.lu.is_some() {
                &mut v[i * dn..(i + 1) * dn]
            } else {
                &mut *u_next
            };
            out.copy_from_slice(u_in);
            let ni = layer.identity.len();
            if let Conditioner::Residual(_) = layer.conditioner {
                for j in 0..n {
                    for (a, &id) in layer.identity.iter().enumerate() {
                        xi[a + j * ni] = u_in[id + j * d];
                    }
                }
            }
            layer
                .conditioner
                .forward(params, &xi[..ni * n], c, runs, n, &mut st.acts);
            let nt = layer.transformed.len();
            let (m, mp) = elements(layer, n);
            to_rows(
                layer.conditioner.output(&st.acts, n),
                nt,
                r,
                n,
                mp,
                &mut st.raw,
            );
            for (t, &tr) in layer.transformed.iter().enumerate() {
                for j in 0..n {
                    st.sv[t * n + j] = u_in[tr + j * d];
                }
            }
            st.sv[m..].fill(T::of(0.0));
            spline::forward(
                &shape,
                &st.raw,
                &st.sv,
                mp,
                &mut st.wn,
                &mut st.hn,
                &mut st.loc,
                &mut y[..mp],
                &mut ld[..mp],
            );
            for (t, &tr) in layer.transformed.iter().enumerate() {
                for j in 0..n {
                    out[tr + j * d] = y[t * n + j];
                    lp[j] += ld[t * n + j];
                }
            }
            if let Some(lu) = &layer.lu {
                let log_det = lu.matrices(params, &mut st.mats);
                let vi = &v[i * dn..(i + 1) * dn];
                lu.forward(params, &st.mats, vi, n, &mut st.uv, u_next);
                lp.iter_mut().for_each(|l| *l += log_det);
            }
        }
        let nl = nsf.layers.len();
        let uk = &u[nl * dn..(nl + 1) * dn];
        let (minus_half, norm) = (T::of(-0.5), T::of(0.5 * d as f64 * LN_2PI));
        for (j, l) in lp.iter_mut().enumerate() {
            let mut sq = T::of(0.0);
            for z in &uk[j * d..(j + 1) * d] {
                sq += *z * *z;
            }
            *l += minus_half * sq - norm;
        }
    }

    /// The backward pass of this chunk for the per-column weights `w`: adds the
    /// gradients `grads` asks for.
    fn backward(&mut self, nsf: &Nsf, params: &[T], w: &[f64], grads: ChunkGrads<'_, T>) {
        let zero = T::of(0.0);
        let cfg = &nsf.data.config;
        let (d, c) = (nsf.data.input_dim, nsf.data.condition_dim);
        let n = self.len;
        let dn = d * n;
        let shape = Shape::<T>::new(cfg.num_bins, cfg.hidden_features, cfg.tail_bound);
        let r = shape.raw_len();
        let nl = nsf.layers.len();
        let ChunkGrads {
            params: mut grad,
            input: g_input,
            condition: g_condition,
        } = grads;
        let want_input = g_input.is_some();
        let want_condition = g_condition.is_some() && c > 0;
        let max_mp = self.y.len();
        let max_i = nsf
            .layers
            .iter()
            .map(|l| l.identity.len())
            .max()
            .unwrap_or(0);
        let max_out = nsf
            .layers
            .iter()
            .map(|l| l.transformed.len() * r)
            .max()
            .unwrap_or(0);
        let max_scratch = nsf
            .layers
            .iter()
            .map(|l| l.conditioner.scratch_len(n))
            .max()
            .unwrap_or(0);
        self.g_u.resize(dn, zero);
        self.g_v.resize(dn, zero);
        self.g_uv.resize(dn, zero);
        self.g_mats.resize(2 * d * d, zero);
        self.gy.resize(max_mp, zero);
        self.wl.resize(max_mp, zero);
        self.gv.resize(max_mp, zero);
        self.g_raw.resize(r * max_mp, zero);
        self.g_p.resize(max_out * n, zero);
        self.g_x.resize(max_i * n, zero);
        self.scratch.resize(max_scratch, zero);
        if want_condition {
            self.g_c.clear();
            self.g_c.resize(c * n, zero);
            self.g_c_layer.resize(c * n, zero);
        }
        self.w.clear();
        self.w.extend(w.iter().map(|v| T::of(*v)));
        let w_sum = self.w.iter().fold(zero, |a, b| a + *b);
        let runs = (!self.runs.is_empty()).then_some(ContextRuns {
            c: &self.c_runs,
            bounds: &self.runs,
        });
        let Chunk {
            c: ctx,
            u,
            v,
            layers,
            w: wt,
            g_u,
            g_v,
            g_uv,
            g_mats,
            gy,
            wl,
            gv,
            g_raw,
            g_p,
            g_x,
            g_c,
            g_c_layer,
            scratch,
            ..
        } = self;
        // ∂/∂u_T of Σ w_j (−½‖u_T‖²).
        let uk = &u[nl * dn..(nl + 1) * dn];
        for j in 0..n {
            for i in 0..d {
                g_u[i + j * d] = -wt[j] * uk[i + j * d];
            }
        }
        for (i, (layer, st)) in nsf.layers.iter().zip(layers.iter()).enumerate().rev() {
            if let Some(lu) = &layer.lu {
                lu.backward(
                    &st.mats,
                    &v[i * dn..(i + 1) * dn],
                    &st.uv,
                    g_u,
                    n,
                    w_sum,
                    grad.as_deref_mut(),
                    g_v,
                    g_uv,
                    g_mats,
                );
            } else {
                g_v.copy_from_slice(g_u);
            }
            let nt = layer.transformed.len();
            let (m, mp) = elements(layer, n);
            for (t, &tr) in layer.transformed.iter().enumerate() {
                for j in 0..n {
                    gy[t * n + j] = g_v[tr + j * d];
                    wl[t * n + j] = wt[j];
                }
            }
            gy[m..mp].fill(zero);
            wl[m..mp].fill(zero);
            spline::backward(
                &shape,
                &st.raw,
                &st.sv,
                mp,
                &st.wn,
                &st.hn,
                &st.loc,
                &gy[..mp],
                &wl[..mp],
                &mut g_raw[..r * mp],
                &mut gv[..mp],
            );
            from_rows(&g_raw[..r * mp], nt, r, n, mp, &mut g_p[..nt * r * n]);
            g_u.copy_from_slice(g_v);
            for (t, &tr) in layer.transformed.iter().enumerate() {
                for j in 0..n {
                    g_u[tr + j * d] = gv[t * n + j];
                }
            }
            let g_out = &g_p[..nt * r * n];
            match &layer.conditioner {
                Conditioner::Residual(net) => {
                    let ni = layer.identity.len();
                    let need_x = i > 0 || want_input;
                    net.backward_runs(
                        params,
                        ctx,
                        runs,
                        n,
                        &st.acts,
                        g_out,
                        grad.as_deref_mut(),
                        need_x.then_some(&mut g_x[..ni * n]),
                        want_condition.then_some(&mut g_c[..]),
                        scratch,
                    );
                    if need_x {
                        for j in 0..n {
                            for (a, &id) in layer.identity.iter().enumerate() {
                                g_u[id + j * d] += g_x[a + j * ni];
                            }
                        }
                    }
                }
                Conditioner::ContextMap(mlp) => {
                    mlp.backward(
                        params,
                        ctx,
                        n,
                        &st.acts,
                        g_out,
                        grad.as_deref_mut(),
                        want_condition.then_some(&mut g_c_layer[..]),
                        scratch,
                    );
                    if want_condition {
                        for (a, b) in g_c.iter_mut().zip(g_c_layer.iter()) {
                            *a += *b;
                        }
                    }
                }
            }
        }
        if let Some(gi) = g_input {
            let std = &nsf.data.input_stats.std;
            for j in 0..n {
                for i in 0..d {
                    gi[i + j * d] += g_u[i + j * d].widen() / std[i];
                }
            }
        }
        if let (true, Some(gc)) = (want_condition, g_condition) {
            let std = &nsf.data.condition_stats.std;
            for j in 0..n {
                for i in 0..c {
                    gc[i + j * c] += g_c[i + j * c].widen() / std[i];
                }
            }
        }
    }
}
