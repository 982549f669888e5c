//! The MAF's training passes on one column chunk, for the pass driver of simfer-nn.

use simfer_nn::Real;
use simfer_nn::driver::{ChunkGrads, ChunkModel, PassInputs};
use simfer_nn::fastmath;

use super::made::{ContextColumns, MadeActs};
use super::{LN_2PI, MIN_SCALE, Maf};

impl ChunkModel for Maf {
    type Chunk<T: Real> = Chunk<T>;

    fn gradient_len(&self) -> usize {
        self.data.params.len()
    }

    /// The masked parameters `p ⊙ mask`, rounded to `T`.
    fn pass_params<T: Real>(&self, out: &mut Vec<T>) {
        out.clear();
        out.extend(
            self.data
                .params
                .iter()
                .zip(&self.mask)
                .map(|(p, m)| T::of(p * m)),
        );
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

/// The activations and scratch of one chunk of a MAF pass.
#[derive(Clone, Debug, Default)]
pub struct Chunk<T> {
    pub(super) start: usize,
    pub(super) len: usize,
    /// Standardized condition, `C × len`, or `C` per run of equal conditions when `runs`
    /// is not empty.
    c: Vec<T>,
    /// Bounds of the runs of consecutive columns with equal conditions
    /// ([`ContextColumns::Runs`]), or empty: one condition per column.
    runs: Vec<usize>,
    /// Inputs of each transform and the final noise: `(K + 1)` blocks of `D × len`.
    pub(super) u: Vec<T>,
    /// Context-layer outputs: `K` blocks of `H × len` (of which `H` per run are used
    /// when `runs` is not empty).
    ctx: Vec<T>,
    /// Hidden outputs: `K · (B + 1)` blocks of `H × len`.
    hid: Vec<T>,
    /// MADE outputs: `K` blocks of `2D × len`.
    out: Vec<T>,
    /// Scales: `K` blocks of `D × len`.
    s: Vec<T>,
    /// Unconstrained scales `a` (de-interleaved): `K` blocks of `D × len`.
    a: Vec<T>,
    /// Scratch, `D × len` each.
    v: Vec<T>,
    tmp: Vec<T>,
    /// log q per column.
    lp: Vec<T>,
    // Backward scratch.
    w: Vec<T>,
    g_u: Vec<T>,
    g_v: Vec<T>,
    g_out: Vec<T>,
    g_made: Vec<T>,
    g_c: Vec<T>,
    gh: Vec<T>,
    gh2: Vec<T>,
}

fastmath::simd_dispatch!(
    #[allow(clippy::too_many_arguments)]
    fn affine_forward<T: Real>(out: &[T], u: &[T], a: &mut [T], s: &mut [T], v: &mut [T], tmp: &mut [T], lp: &mut [T], d: usize) => affine_forward_g
);

/// From a MADE output `out` (`2D × n`, interleaved `a, b`) and its input `u`: keeps `a`
/// (de-interleaved) and `s = softplus(a) + 1e-3`, writes `v = s ⊙ u + b` and adds
/// `Σ_i ln s_ij` to `lp[j]`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn affine_forward_g<T: Real>(
    out: &[T],
    u: &[T],
    a: &mut [T],
    s: &mut [T],
    v: &mut [T],
    tmp: &mut [T],
    lp: &mut [T],
    d: usize,
) {
    for ((oc, ac), vc) in out
        .chunks_exact(2 * d)
        .zip(a.chunks_exact_mut(d))
        .zip(v.chunks_exact_mut(d))
    {
        for i in 0..d {
            ac[i] = oc[2 * i];
            vc[i] = oc[2 * i + 1];
        }
    }
    let min_scale = T::of(MIN_SCALE);
    for (sv, av) in s.iter_mut().zip(a.iter()) {
        *sv = av.fast_softplus() + min_scale;
    }
    for ((vv, sv), uv) in v.iter_mut().zip(s.iter()).zip(u) {
        *vv += *sv * *uv;
    }
    for (t, sv) in tmp.iter_mut().zip(s.iter()) {
        *t = sv.fast_ln();
    }
    for (l, tc) in lp.iter_mut().zip(tmp.chunks_exact(d)) {
        let mut acc = T::of(0.0);
        for t in tc {
            acc += *t;
        }
        *l += acc;
    }
}

fastmath::simd_dispatch!(
    #[allow(clippy::too_many_arguments)]
    fn affine_backward<T: Real>(g_v: &[T], u: &[T], s: &[T], a: &[T], w: &[T], d: usize, tmp: &mut [T], g_out: &mut [T], g_u: &mut [T]) => affine_backward_g
);

/// Backward through `v = s ⊙ u + b` and the log-determinant `w_j Σ ln s`: from
/// `g_v = ∂L/∂v` writes `g_out = ∂L/∂(a, b)` (interleaved) and the direct part of
/// `∂L/∂u`, `g_u = g_v ⊙ s`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn affine_backward_g<T: Real>(
    g_v: &[T],
    u: &[T],
    s: &[T],
    a: &[T],
    w: &[T],
    d: usize,
    tmp: &mut [T],
    g_out: &mut [T],
    g_u: &mut [T],
) {
    for (t, av) in tmp.iter_mut().zip(a) {
        *t = av.fast_sigmoid();
    }
    for ((((tc, gvc), uc), sc), wj) in tmp
        .chunks_exact_mut(d)
        .zip(g_v.chunks_exact(d))
        .zip(u.chunks_exact(d))
        .zip(s.chunks_exact(d))
        .zip(w)
    {
        for i in 0..d {
            tc[i] *= gvc[i] * uc[i] + *wj / sc[i];
        }
    }
    for ((oc, tc), gvc) in g_out
        .chunks_exact_mut(2 * d)
        .zip(tmp.chunks_exact(d))
        .zip(g_v.chunks_exact(d))
    {
        for i in 0..d {
            oc[2 * i] = tc[i];
            oc[2 * i + 1] = gvc[i];
        }
    }
    for ((gu, gv), sv) in g_u.iter_mut().zip(g_v).zip(s) {
        *gu = *gv * *sv;
    }
}

impl<T: Real> Chunk<T> {
    fn resize(&mut self, maf: &Maf, start: usize, len: usize) {
        let zero = T::of(0.0);
        let (d, c, h) = (
            maf.data.input_dim,
            maf.data.condition_dim,
            maf.data.config.hidden_features,
        );
        let k = maf.data.config.num_transforms;
        let b = maf.data.config.num_blocks;
        self.start = start;
        self.len = len;
        self.c.resize(c * len, zero);
        self.u.resize((k + 1) * d * len, zero);
        self.ctx.resize(k * h * len, zero);
        self.hid.resize(k * (b + 1) * h * len, zero);
        self.out.resize(k * 2 * d * len, zero);
        self.s.resize(k * d * len, zero);
        self.a.resize(k * d * len, zero);
        self.v.resize(d * len, zero);
        self.tmp.resize(d * len, zero);
        self.lp.resize(len, zero);
    }

    /// The forward pass of this chunk's columns; the input and the condition are
    /// standardized in `f64`, then rounded to `T`.
    fn forward(&mut self, maf: &Maf, masked: &[T], inputs: &PassInputs<'_>) {
        let (theta, x) = (&inputs.input, &inputs.condition);
        let cfg = &maf.data.config;
        let (d, cdim, h) = (
            maf.data.input_dim,
            maf.data.condition_dim,
            cfg.hidden_features,
        );
        let (n, start) = (self.len, self.start);
        let (dn, hn) = (d * n, h * n);
        let hidn = (cfg.num_blocks + 1) * hn;
        let ts = &maf.data.input_stats;
        for j in 0..n {
            for i in 0..d {
                self.u[i + j * d] = T::of((theta[(i, start + j)] - ts.mean[i]) / ts.std[i]);
            }
        }
        // Runs of equal conditions (the atomic loss repeats each row's x across its
        // atoms): the context layers then run once per run.
        inputs.condition_runs(start, n, &mut self.runs);
        let xs = &maf.data.condition_stats;
        let slots = if self.runs.is_empty() {
            n
        } else {
            self.runs.len() - 1
        };
        for slot in 0..slots {
            // Slot r holds the first column of run r.
            let j = if self.runs.is_empty() {
                slot
            } else {
                self.runs[slot]
            };
            for i in 0..cdim {
                self.c[i + slot * cdim] = T::of((x[(i, start + j)] - xs.mean[i]) / xs.std[i]);
            }
        }
        let columns = if self.runs.is_empty() {
            ContextColumns::PerColumn
        } else {
            ContextColumns::Runs(&self.runs)
        };
        self.lp.fill(T::of(maf.log_det_std));
        for (k, made) in maf.mades.iter().enumerate() {
            let (u_prev, u_rest) = self.u[k * dn..].split_at_mut(dn);
            let out = &mut self.out[k * 2 * dn..(k + 1) * 2 * dn];
            made.forward(
                masked,
                cfg.activation,
                u_prev,
                &self.c,
                n,
                MadeActs {
                    ctx: &mut self.ctx[k * hn..(k + 1) * hn],
                    hid: &mut self.hid[k * hidn..(k + 1) * hidn],
                    out,
                },
                columns,
                &mut [],
            );
            let s = &mut self.s[k * dn..(k + 1) * dn];
            let a = &mut self.a[k * dn..(k + 1) * dn];
            affine_forward(
                out,
                u_prev,
                a,
                s,
                &mut self.v,
                &mut self.tmp,
                &mut self.lp,
                d,
            );
            // Stored permuted: u_next[p] = v[perm[p]].
            let u_next = &mut u_rest[..dn];
            let inv = &maf.inv_perms[k];
            for (vc, uc) in self.v.chunks_exact(d).zip(u_next.chunks_exact_mut(d)) {
                for (vi, &pi) in vc.iter().zip(inv) {
                    uc[pi] = *vi;
                }
            }
        }
        let uk = &self.u[cfg.num_transforms * dn..(cfg.num_transforms + 1) * dn];
        let (minus_half, norm) = (T::of(-0.5), T::of(0.5 * d as f64 * LN_2PI));
        for j in 0..n {
            let mut sq = T::of(0.0);
            for v in &uk[j * d..(j + 1) * d] {
                sq += *v * *v;
            }
            self.lp[j] += minus_half * sq - norm;
        }
    }

    /// Copies the condition and the context layers' outputs of each run to every column
    /// of the run, so that the chunk holds one of each per column (as the condition's
    /// gradient needs).
    fn expand_runs(&mut self, c: usize, h: usize, kk: usize) {
        let n = self.len;
        let hn = h * n;
        let bounds = std::mem::take(&mut self.runs);
        for (r, w) in bounds.windows(2).enumerate().rev() {
            // Run r's slot is r ≤ w[0]: filling the columns from the last run down reads
            // no slot that was already written.
            for j in (w[0]..w[1]).rev() {
                self.c.copy_within(r * c..(r + 1) * c, j * c);
                for k in 0..kk {
                    let base = k * hn;
                    self.ctx
                        .copy_within(base + r * h..base + (r + 1) * h, base + j * h);
                }
            }
        }
    }

    /// The backward pass of this chunk for the per-column weights `w`: adds the
    /// gradients `grads` asks for.
    fn backward(&mut self, maf: &Maf, masked: &[T], w: &[f64], grads: ChunkGrads<'_, T>) {
        let zero = T::of(0.0);
        let cfg = &maf.data.config;
        let (d, c, h) = (
            maf.data.input_dim,
            maf.data.condition_dim,
            cfg.hidden_features,
        );
        let n = self.len;
        let (dn, hn) = (d * n, h * n);
        let hidn = (cfg.num_blocks + 1) * hn;
        let kk = cfg.num_transforms;
        let ChunkGrads {
            params: mut grad,
            input: g_input,
            condition: g_condition,
        } = grads;
        let want_input = g_input.is_some();
        let want_condition = g_condition.is_some() && c > 0;
        self.g_u.resize(dn, zero);
        self.g_v.resize(dn, zero);
        self.g_out.resize(2 * dn, zero);
        self.g_made.resize(dn, zero);
        self.gh.resize(hn, zero);
        self.gh2.resize(hn, zero);
        if want_condition {
            self.g_c.clear();
            self.g_c.resize(c * n, zero);
        }
        if want_condition && !self.runs.is_empty() {
            self.expand_runs(c, h, kk);
        }
        self.w.clear();
        self.w.extend(w.iter().map(|v| T::of(*v)));
        // ∂/∂u_K of Σ w_j (−½‖u_K‖²).
        let uk = &self.u[kk * dn..(kk + 1) * dn];
        for j in 0..n {
            for i in 0..d {
                self.g_u[i + j * d] = -self.w[j] * uk[i + j * d];
            }
        }
        for k in (0..kk).rev() {
            let perm = &maf.data.permutations[k];
            let u = &self.u[k * dn..(k + 1) * dn];
            let s = &self.s[k * dn..(k + 1) * dn];
            let a = &self.a[k * dn..(k + 1) * dn];
            for (gvc, guc) in self.g_v.chunks_exact_mut(d).zip(self.g_u.chunks_exact(d)) {
                for (gu, &pp) in guc.iter().zip(perm) {
                    gvc[pp] = *gu;
                }
            }
            affine_backward(
                &self.g_v,
                u,
                s,
                a,
                &self.w,
                d,
                &mut self.tmp,
                &mut self.g_out,
                &mut self.g_u,
            );
            let need_gz = k > 0 || want_input;
            maf.mades[k].backward(
                masked,
                cfg.activation,
                u,
                &self.c,
                n,
                &self.ctx[k * hn..(k + 1) * hn],
                &self.hid[k * hidn..(k + 1) * hidn],
                &self.g_out,
                grad.as_deref_mut(),
                need_gz.then_some(&mut self.g_made[..]),
                want_condition.then_some(&mut self.g_c[..]),
                &mut self.gh,
                &mut self.gh2,
                (!self.runs.is_empty()).then_some(&self.runs[..]),
            );
            if need_gz {
                for (g, m) in self.g_u.iter_mut().zip(&self.g_made) {
                    *g += *m;
                }
            }
        }
        if let Some(gi) = g_input {
            let std = &maf.data.input_stats.std;
            for j in 0..n {
                for i in 0..d {
                    gi[i + j * d] += self.g_u[i + j * d].widen() / std[i];
                }
            }
        }
        if let (true, Some(gc)) = (want_condition, g_condition) {
            let std = &maf.data.condition_stats.std;
            for j in 0..n {
                for i in 0..c {
                    gc[i + j * c] += self.g_c[i + j * c].widen() / std[i];
                }
            }
        }
    }
}
