//! The residual network of nflows (`nflows.nn.nets.resnet.ResidualNet`), with an optional
//! context that gates every block, on column batches with hand-written backprop.
//!
//! ```text
//! h = W_in · [x; c] + b_in                                (no activation)
//! for each block:
//!     t = W₁ · f(h) + b₁
//!     t = W₂ · f(t) + b₂
//!     t = t ⊙ σ(W_g · c + b_g)                            (only with a context)
//!     h = h + t
//! y = W_out · h + b_out
//! ```
//! `f` is the activation (ReLU in the reference's neural spline flow and ratio
//! classifiers), σ the logistic sigmoid. Dropout and batch normalization (off by default
//! in the reference) are not implemented.

use rand::{Rng, RngCore};
#[cfg(feature = "serde")]
use serde::{Deserialize, Serialize};

use crate::layers::{Activation, Dense};
use crate::linalg::{add_assign, mul_assign};
use crate::precision::Real;

/// Runs of consecutive columns that share a context (see
/// [`PassInputs::condition_runs`](crate::PassInputs::condition_runs)): the gates then run
/// once per run.
#[derive(Clone, Copy, Debug)]
pub struct ContextRuns<'a, T> {
    /// One context per run, `C × (bounds.len() − 1)`.
    pub c: &'a [T],
    /// Run `r` is the columns `bounds[r]..bounds[r + 1]`.
    pub bounds: &'a [usize],
}

impl<T> ContextRuns<'_, T> {
    /// The number of runs.
    pub fn len(&self) -> usize {
        self.bounds.len().saturating_sub(1)
    }

    /// Whether there are no runs.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One residual block: two `H → H` layers and, with a context, the gate layer `C → H`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct ResidualBlock {
    /// The first layer `W₁`.
    pub first: Dense,
    /// The second layer `W₂` (initialized near zero).
    pub second: Dense,
    /// The context gate `W_g`, if the network has a context.
    pub gate: Option<Dense>,
}

/// nflows' `ResidualNet`: its layout in a flat parameter vector and its passes.
///
/// Parameters, in order from `offset`: the input layer (`(in + C) → H`, the input's
/// columns of the weight before the context's), then each block's first layer, second
/// layer and gate, then the output layer.
///
/// The activation buffer ([`acts_len`](Self::acts_len) entries) holds, for `n` columns,
/// the concatenated input `[x; c]`, the input layer's output, per block `f(h)`, `f(t)`,
/// the pre-gate `t`, the gate and the block's output, and finally the network's output
/// ([`output`](Self::output)).
///
/// ```
/// use simfer_nn::{Activation, ResidualNet};
/// use rand::SeedableRng;
///
/// let net = ResidualNet::new(2, 3, 8, 4, 2, Activation::Relu, 0);
/// let mut params = vec![0.0; net.end()];
/// net.init(&mut params, &mut rand::rngs::StdRng::seed_from_u64(0));
/// let n = 5;
/// let (x, c) = (vec![0.1; 2 * n], vec![0.2; 3 * n]);
/// let mut acts = vec![0.0; net.acts_len(n)];
/// net.forward(&params, &x, &c, n, &mut acts);
/// assert_eq!(net.output(&acts, n).len(), 4 * n);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct ResidualNet {
    /// Dimension of the input `x`.
    pub in_dim: usize,
    /// Dimension of the context `c` (0: none, and no gates).
    pub context_dim: usize,
    /// Hidden width `H`.
    pub hidden: usize,
    /// Output dimension.
    pub out_dim: usize,
    /// The input layer `(in + C) → H`.
    pub input: Dense,
    /// The residual blocks.
    pub blocks: Vec<ResidualBlock>,
    /// The output layer `H → out`.
    pub output: Dense,
    /// The activation `f` inside the blocks.
    pub activation: Activation,
}

impl ResidualNet {
    /// The layout of a network whose parameters start at `offset`.
    pub fn new(
        in_dim: usize,
        context_dim: usize,
        hidden: usize,
        out_dim: usize,
        num_blocks: usize,
        activation: Activation,
        offset: usize,
    ) -> Self {
        let input = Dense::new(in_dim + context_dim, hidden, offset);
        let mut end = input.end();
        let mut next = |i, o| {
            let l = Dense::new(i, o, end);
            end = l.end();
            l
        };
        let blocks = (0..num_blocks)
            .map(|_| ResidualBlock {
                first: next(hidden, hidden),
                second: next(hidden, hidden),
                gate: (context_dim > 0).then(|| next(context_dim, hidden)),
            })
            .collect();
        let output = next(hidden, out_dim);
        ResidualNet {
            in_dim,
            context_dim,
            hidden,
            out_dim,
            input,
            blocks,
            output,
            activation,
        }
    }

    /// First parameter index.
    pub fn offset(&self) -> usize {
        self.input.offset
    }

    /// One past the last parameter index.
    pub fn end(&self) -> usize {
        self.output.end()
    }

    /// Number of parameters.
    pub fn num_params(&self) -> usize {
        self.end() - self.offset()
    }

    /// The reference's initialization: PyTorch's default for every layer (uniform on
    /// `±1/√fan_in`), except each block's second layer, weights and bias uniform on
    /// `±10⁻³` (a near-zero residual branch).
    pub fn init(&self, params: &mut [f64], rng: &mut dyn RngCore) {
        self.input.init_uniform(params, rng);
        for b in &self.blocks {
            b.first.init_uniform(params, rng);
            for p in &mut params[b.second.offset..b.second.end()] {
                *p = rng.random_range(-1e-3..1e-3);
            }
            if let Some(g) = &b.gate {
                g.init_uniform(params, rng);
            }
        }
        self.output.init_uniform(params, rng);
    }

    fn gated(&self) -> bool {
        self.context_dim > 0
    }

    /// Entries per block in the activation buffer, in units of `H × n`.
    fn per_block(&self) -> usize {
        if self.gated() { 5 } else { 3 }
    }

    /// Entries of the activation buffer for `n` columns.
    pub fn acts_len(&self, n: usize) -> usize {
        let h = self.hidden * n;
        (self.in_dim + self.context_dim) * n
            + h
            + self.blocks.len() * self.per_block() * h
            + self.out_dim * n
    }

    /// Entries of the backward scratch buffer for `n` columns.
    pub fn scratch_len(&self, n: usize) -> usize {
        4 * self.hidden * n + (self.in_dim + self.context_dim) * n
    }

    /// The output block of an activation buffer (`out_dim × n`).
    pub fn output<'a, T>(&self, acts: &'a [T], n: usize) -> &'a [T] {
        let len = self.acts_len(n);
        &acts[len - self.out_dim * n..len]
    }

    /// The forward pass of `n` columns: `x` is `in_dim × n`, `c` is `context_dim × n`
    /// (empty without a context); `acts` needs [`acts_len`](Self::acts_len) entries.
    pub fn forward<T: Real>(&self, params: &[T], x: &[T], c: &[T], n: usize, acts: &mut [T]) {
        self.forward_runs(params, x, c, None, n, acts);
    }

    /// [`forward`](Self::forward), with the gates evaluated once per run of equal
    /// contexts when `runs` is given (the same bits as once per column).
    pub fn forward_runs<T: Real>(
        &self,
        params: &[T],
        x: &[T],
        c: &[T],
        runs: Option<ContextRuns<'_, T>>,
        n: usize,
        acts: &mut [T],
    ) {
        let (di, dc, h) = (self.in_dim, self.context_dim, self.hidden);
        let (xc, rest) = acts.split_at_mut((di + dc) * n);
        concat_rows(x, di, c, dc, n, xc);
        let hn = h * n;
        let (mut h_cur, mut rest) = rest.split_at_mut(hn);
        self.input.forward(params, xc, n, h_cur);
        let act = self.activation;
        for b in &self.blocks {
            let (a1, r) = rest.split_at_mut(hn);
            let (a2, r) = r.split_at_mut(hn);
            a1.copy_from_slice(h_cur);
            act.apply(a1);
            b.first.forward_activated(params, a1, n, act, a2);
            let r = if let Some(g) = &b.gate {
                let (t2, r) = r.split_at_mut(hn);
                let (gate, r) = r.split_at_mut(hn);
                b.second.forward(params, a2, n, t2);
                match runs {
                    None => g.forward_activated(params, c, n, Activation::Sigmoid, gate),
                    Some(r) => {
                        let nr = r.len();
                        g.forward_activated(
                            params,
                            r.c,
                            nr,
                            Activation::Sigmoid,
                            &mut gate[..nr * h],
                        );
                        // Run ri's gate to each of its columns, from the last run down
                        // (slot ri ≤ its first column: no slot is read after it is written).
                        for (ri, w) in r.bounds.windows(2).enumerate().rev() {
                            for j in (w[0]..w[1]).rev() {
                                gate.copy_within(ri * h..(ri + 1) * h, j * h);
                            }
                        }
                    }
                }
                mul_assign(t2, gate);
                let (h_next, r) = r.split_at_mut(hn);
                h_next.copy_from_slice(h_cur);
                add_assign(h_next, t2);
                (h_next, r)
            } else {
                let (h_next, r) = r.split_at_mut(hn);
                b.second.forward(params, a2, n, h_next);
                add_assign(h_next, h_cur);
                (h_next, r)
            };
            let (h_next, r) = r;
            h_cur = h_next;
            rest = r;
        }
        self.output
            .forward(params, h_cur, n, &mut rest[..self.out_dim * n]);
    }

    /// The backward pass after [`forward`](Self::forward) on the same inputs and `acts`:
    /// from `g_out = ∂L/∂y` (`out_dim × n`) **adds** the parameter gradients into `grad`
    /// (full length) if given, **overwrites** `g_x` with `∂L/∂x` and **adds** `∂L/∂c`
    /// into `g_c`, if given. `scratch` needs [`scratch_len`](Self::scratch_len) entries.
    #[allow(clippy::too_many_arguments)]
    pub fn backward<T: Real>(
        &self,
        params: &[T],
        c: &[T],
        n: usize,
        acts: &[T],
        g_out: &[T],
        grad: Option<&mut [T]>,
        g_x: Option<&mut [T]>,
        g_c: Option<&mut [T]>,
        scratch: &mut [T],
    ) {
        self.backward_runs(params, c, None, n, acts, g_out, grad, g_x, g_c, scratch);
    }

    /// [`backward`](Self::backward) after [`forward_runs`](Self::forward_runs) with the
    /// same `runs`: the gates' parameter gradients are taken once per run, from the
    /// run's summed gradient (`Σ_j g_j c_rᵀ = (Σ_j g_j) c_rᵀ`); `c` stays one context
    /// per column, for `∂L/∂c`.
    #[allow(clippy::too_many_arguments)]
    pub fn backward_runs<T: Real>(
        &self,
        params: &[T],
        c: &[T],
        runs: Option<ContextRuns<'_, T>>,
        n: usize,
        acts: &[T],
        g_out: &[T],
        mut grad: Option<&mut [T]>,
        g_x: Option<&mut [T]>,
        mut g_c: Option<&mut [T]>,
        scratch: &mut [T],
    ) {
        let (di, dc, h) = (self.in_dim, self.context_dim, self.hidden);
        let hn = h * n;
        let act = self.activation;
        let (gh, s) = scratch.split_at_mut(hn);
        let (gt, s) = s.split_at_mut(hn);
        let (ga, s) = s.split_at_mut(hn);
        let (gg, s) = s.split_at_mut(hn);
        let g_xc = &mut s[..(di + dc) * n];
        let xc = &acts[..(di + dc) * n];
        let h0_at = (di + dc) * n;
        let block_at = |i: usize| h0_at + hn + i * self.per_block() * hn;
        // The input of block i (or of the output layer, i = number of blocks).
        let h_in = |i: usize| {
            if i == 0 {
                &acts[h0_at..h0_at + hn]
            } else {
                let e = block_at(i);
                &acts[e - hn..e]
            }
        };
        let nb = self.blocks.len();
        if let Some(gr) = grad.as_deref_mut() {
            self.output.backward_params(h_in(nb), g_out, n, gr);
        }
        self.output.backward_input(params, g_out, n, gh);
        for i in (0..nb).rev() {
            let b = &self.blocks[i];
            let at = block_at(i);
            let a1 = &acts[at..at + hn];
            let a2 = &acts[at + hn..at + 2 * hn];
            // ∂L/∂t (the second layer's output) into gt.
            gt.copy_from_slice(gh);
            if let Some(g) = &b.gate {
                let t2 = &acts[at + 2 * hn..at + 3 * hn];
                let gate = &acts[at + 3 * hn..at + 4 * hn];
                // y = t ⊙ s: ∂y/∂t = s, ∂y/∂(pre-gate) = t ⊙ s (1 − s), with t ⊙ s stored.
                gate_backward(gh, t2, gate, gt, gg);
                if let Some(gr) = grad.as_deref_mut() {
                    match runs {
                        None => g.backward_params(c, gg, n, gr),
                        Some(r) => {
                            // `ga` is free until the second layer's input gradient.
                            let nr = r.len();
                            for (ri, w) in r.bounds.windows(2).enumerate() {
                                let sum = &mut ga[ri * h..(ri + 1) * h];
                                sum.copy_from_slice(&gg[w[0] * h..(w[0] + 1) * h]);
                                for col in gg[(w[0] + 1) * h..w[1] * h].chunks_exact(h) {
                                    add_assign(sum, col);
                                }
                            }
                            g.backward_params(r.c, &ga[..nr * h], nr, gr);
                        }
                    }
                }
                if let Some(gc) = g_c.as_deref_mut() {
                    g.backward_input_add(params, gg, n, gc);
                }
            }
            if let Some(gr) = grad.as_deref_mut() {
                b.second.backward_params(a2, gt, n, gr);
            }
            b.second.backward_input(params, gt, n, ga);
            act.backprop(a2, ga);
            if let Some(gr) = grad.as_deref_mut() {
                b.first.backward_params(a1, ga, n, gr);
            }
            b.first.backward_input(params, ga, n, gt);
            act.backprop(a1, gt);
            add_assign(gh, gt);
        }
        if let Some(gr) = grad {
            self.input.backward_params(xc, gh, n, gr);
        }
        if g_x.is_none() && g_c.is_none() {
            return;
        }
        self.input.backward_input(params, gh, n, g_xc);
        if let Some(gc) = g_c {
            for j in 0..n {
                let col = &g_xc[j * (di + dc) + di..(j + 1) * (di + dc)];
                for (a, b) in gc[j * dc..(j + 1) * dc].iter_mut().zip(col) {
                    *a += *b;
                }
            }
        }
        if let Some(gx) = g_x {
            for j in 0..n {
                gx[j * di..(j + 1) * di].copy_from_slice(&g_xc[j * (di + dc)..j * (di + dc) + di]);
            }
        }
    }
}

/// `out = [x; c]` column by column (`x` has `dx` rows, `c` has `dc`).
fn concat_rows<T: Real>(x: &[T], dx: usize, c: &[T], dc: usize, n: usize, out: &mut [T]) {
    let d = dx + dc;
    for j in 0..n {
        out[j * d..j * d + dx].copy_from_slice(&x[j * dx..(j + 1) * dx]);
        out[j * d + dx..(j + 1) * d].copy_from_slice(&c[j * dc..(j + 1) * dc]);
    }
}

crate::fastmath::simd_dispatch!(
    fn gate_backward<T: Real>(gy: &[T], t_gated: &[T], gate: &[T], gt: &mut [T], gg: &mut [T]) => gate_backward_g
);

/// For `y = t ⊙ s` with `s = σ(z)`, stored `t ⊙ s` and `s`: `gt = gy ⊙ s`,
/// `gg = gy ⊙ t ⊙ s ⊙ (1 − s) = gy ⊙ (t ⊙ s) ⊙ (1 − s)`.
#[inline(always)]
fn gate_backward_g<T: Real>(gy: &[T], t_gated: &[T], gate: &[T], gt: &mut [T], gg: &mut [T]) {
    let one = T::of(1.0);
    for ((((a, b), ts), s), g) in gt
        .iter_mut()
        .zip(gg.iter_mut())
        .zip(t_gated)
        .zip(gate)
        .zip(gy)
    {
        *a = *g * *s;
        *b = *g * *ts * (one - *s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn loss(net: &ResidualNet, p: &[f64], x: &[f64], c: &[f64], w: &[f64], n: usize) -> f64 {
        let mut acts = vec![0.0; net.acts_len(n)];
        net.forward(p, x, c, n, &mut acts);
        net.output(&acts, n).iter().zip(w).map(|(a, b)| a * b).sum()
    }

    #[test]
    fn gradients_match_central_differences_with_and_without_context() {
        for (dc, act) in [
            (0, Activation::Relu),
            (3, Activation::Relu),
            (2, Activation::Tanh),
        ] {
            let (di, h, out, n) = (2, 6, 3, 4);
            let net = ResidualNet::new(di, dc, h, out, 2, act, 1);
            let mut rng = rand::rngs::StdRng::seed_from_u64(5);
            let mut p = vec![0.0; net.end()];
            net.init(&mut p, &mut rng);
            for v in &mut p[1..] {
                *v += rng.random_range(-0.5..0.5);
            }
            let x: Vec<f64> = (0..di * n).map(|_| rng.random_range(-2.0..2.0)).collect();
            let c: Vec<f64> = (0..dc * n).map(|_| rng.random_range(-2.0..2.0)).collect();
            let w: Vec<f64> = (0..out * n).map(|_| rng.random_range(-1.0..1.0)).collect();
            let mut acts = vec![0.0; net.acts_len(n)];
            net.forward(&p, &x, &c, n, &mut acts);
            let mut grad = vec![0.0; p.len()];
            let mut gx = vec![f64::NAN; di * n];
            let mut gc = vec![0.5; dc * n];
            let mut scratch = vec![0.0; net.scratch_len(n)];
            net.backward(
                &p,
                &c,
                n,
                &acts,
                &w,
                Some(&mut grad),
                Some(&mut gx),
                Some(&mut gc),
                &mut scratch,
            );
            assert_eq!(grad[0], 0.0, "the parameter before the offset is untouched");
            let h_ = 1e-6;
            let fd = |f: &dyn Fn(f64) -> f64| (f(h_) - f(-h_)) / (2.0 * h_);
            for i in 1..p.len() {
                let d = fd(&|e| {
                    let mut q = p.clone();
                    q[i] += e;
                    loss(&net, &q, &x, &c, &w, n)
                });
                assert!(
                    (d - grad[i]).abs() < 1e-6 * (1.0 + d.abs()),
                    "dc {dc} p{i}: {d} vs {}",
                    grad[i]
                );
            }
            for i in 0..x.len() {
                let d = fd(&|e| {
                    let mut y = x.clone();
                    y[i] += e;
                    loss(&net, &p, &y, &c, &w, n)
                });
                assert!(
                    (d - gx[i]).abs() < 1e-6 * (1.0 + d.abs()),
                    "dc {dc} x{i}: {d} vs {}",
                    gx[i]
                );
            }
            for i in 0..c.len() {
                let d = fd(&|e| {
                    let mut y = c.clone();
                    y[i] += e;
                    loss(&net, &p, &x, &y, &w, n)
                });
                // g_c is added to its initial 0.5.
                assert!(
                    (d + 0.5 - gc[i]).abs() < 1e-6 * (1.0 + d.abs()),
                    "dc {dc} c{i}: {d} vs {}",
                    gc[i] - 0.5
                );
            }
        }
    }

    #[test]
    fn parameter_count_matches_the_reference() {
        // The NSF conditioner of the reference for D = 2, C = 2: ResidualNet(1 → 29, ctx 2,
        // H 50, 2 blocks) has 200 + 2·5 250 + 1 479 = 12 179 parameters.
        assert_eq!(
            ResidualNet::new(1, 2, 50, 29, 2, Activation::Relu, 0).num_params(),
            12_179
        );
        // The ratio classifier for dθ = dx = 2: 250 + 2·5 100 + 51 = 10 501.
        assert_eq!(
            ResidualNet::new(4, 0, 50, 1, 2, Activation::Relu, 0).num_params(),
            10_501
        );
    }
}
