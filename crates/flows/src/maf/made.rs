//! MADE (masked autoencoder for distribution estimation) as the reference MAF uses it:
//! the layout of one MADE's parameters, its degrees and masks, and its forward and
//! backward passes on a column chunk.
//!
//! ```text
//! h₀ = f((M₀⊙W₀) z + b₀ + f(W_c c + b_c))      input layer (+ context, if any)
//! hᵢ = f((Mᵢ⊙Wᵢ) hᵢ₋₁ + bᵢ)                   i = 1..num_blocks
//! o  = (M_f⊙W_f) h_B + b_f                     o = (a₁, b₁, a₂, b₂, …, a_D, b_D)
//! ```
//! Degrees: inputs `1..=D`; hidden units `(k mod max(1, D−1)) + min(1, D−1)`; outputs
//! `⌊o/2⌋ + 1`. Hidden masks keep `m_out ≥ m_in`, the output mask keeps `m_out > m_in`.

#[cfg(feature = "serde")]
use serde::{Deserialize, Serialize};
use simfer_nn::{Activation, Dense, Real};

/// Parameter layout of one MADE inside the flat parameter vector.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct MadeLayout {
    /// Dimension D of the modelled variable.
    pub dim: usize,
    /// Dimension C of the context (0: no context layer).
    pub context_dim: usize,
    /// Hidden width H.
    pub hidden: usize,
    /// Masked input layer `D → H`.
    pub input: Dense,
    /// Context layer `C → H` (unmasked), if `C > 0`.
    pub context: Option<Dense>,
    /// Masked hidden blocks `H → H`.
    pub blocks: Vec<Dense>,
    /// Masked output layer `H → 2D`.
    pub output: Dense,
}

impl MadeLayout {
    /// The layout of a MADE whose parameters start at `offset`, in the order input
    /// layer, context layer, hidden blocks, output layer.
    pub fn new(
        dim: usize,
        context_dim: usize,
        hidden: usize,
        num_blocks: usize,
        offset: usize,
    ) -> Self {
        let input = Dense::new(dim, hidden, offset);
        let mut end = input.end();
        let context = (context_dim > 0).then(|| {
            let l = Dense::new(context_dim, hidden, end);
            end = l.end();
            l
        });
        let mut blocks = Vec::with_capacity(num_blocks);
        for _ in 0..num_blocks {
            let l = Dense::new(hidden, hidden, end);
            end = l.end();
            blocks.push(l);
        }
        let output = Dense::new(hidden, 2 * dim, end);
        MadeLayout {
            dim,
            context_dim,
            hidden,
            input,
            context,
            blocks,
            output,
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

    /// Number of parameters (masked entries included, as in the reference).
    pub fn num_params(&self) -> usize {
        self.end() - self.offset()
    }

    /// Degree of hidden unit `k`.
    pub fn hidden_degree(&self, k: usize) -> usize {
        let d = self.dim;
        (k % 1.max(d.saturating_sub(1))) + 1.min(d.saturating_sub(1))
    }

    /// Writes the masks into `mask` (the full-length parameter mask): 0 for masked
    /// weight entries, 1 for every other parameter of this MADE.
    pub fn write_mask(&self, mask: &mut [f64]) {
        mask[self.offset()..self.end()].fill(1.0);
        let hdeg: Vec<usize> = (0..self.hidden).map(|k| self.hidden_degree(k)).collect();
        // Input layer: hidden degree ≥ input degree (j + 1).
        let w = &mut mask[self.input.weight_range()];
        for j in 0..self.dim {
            for (k, &dk) in hdeg.iter().enumerate() {
                w[k + j * self.hidden] = f64::from(u8::from(dk > j));
            }
        }
        for b in &self.blocks {
            let w = &mut mask[b.weight_range()];
            for (j, &dj) in hdeg.iter().enumerate() {
                for (k, &dk) in hdeg.iter().enumerate() {
                    w[k + j * self.hidden] = f64::from(u8::from(dk >= dj));
                }
            }
        }
        let w = &mut mask[self.output.weight_range()];
        let rows = 2 * self.dim;
        for (j, &dj) in hdeg.iter().enumerate() {
            for o in 0..rows {
                w[o + j * rows] = f64::from(u8::from(o / 2 + 1 > dj));
            }
        }
    }
}

/// Per-chunk activations of one MADE, as slices of the chunk's buffers (in the
/// precision `T` of the pass).
pub struct MadeActs<'a, T = f64> {
    /// Context layer output `f(W_c c + b_c)`: `H × n`, or `H` per run of equal contexts
    /// ([`ContextColumns`]).
    pub ctx: &'a mut [T],
    /// Hidden outputs, `(num_blocks + 1)` blocks of `H × n`.
    pub hid: &'a mut [T],
    /// Raw outputs `2D × n`.
    pub out: &'a mut [T],
}

/// How the columns of a MADE pass relate to the columns of its context.
#[derive(Clone, Copy, Debug)]
pub enum ContextColumns<'a> {
    /// One context per column: `c` is `C × n` and the context layer runs on every column.
    PerColumn,
    /// One context for all columns, whose context-layer output (`H`) is already in
    /// `acts.ctx`; `c` is not read. The context output is folded into the bias.
    Shared,
    /// Runs of consecutive columns with equal contexts, as the atomic loss lays them out
    /// (every atom of a row shares the row's x): run `r` covers the columns
    /// `bounds[r]..bounds[r + 1]`, and `c` holds one context per run
    /// (`C × (bounds.len() − 1)`). The context layer runs once per run; the results are
    /// those of [`PerColumn`](Self::PerColumn) to the bit.
    Runs(&'a [usize]),
}

impl MadeLayout {
    /// Forward pass on `n` columns. `params` must be the **masked** parameter vector.
    /// `c` is the standardized context, laid out as `columns` says; with
    /// [`ContextColumns::Shared`], `bias_scratch` needs `H` entries.
    #[allow(clippy::too_many_arguments)]
    pub fn forward<T: Real>(
        &self,
        params: &[T],
        act: Activation,
        z: &[T],
        c: &[T],
        n: usize,
        acts: MadeActs<'_, T>,
        columns: ContextColumns<'_>,
        bias_scratch: &mut [T],
    ) {
        let h = self.hidden;
        let hn = h * n;
        let MadeActs { ctx, hid, out } = acts;
        let (h0, rest) = hid.split_at_mut(hn);
        self.input.product(params, z, n, h0);
        let bias = &params[self.input.bias_range()];
        match (&self.context, columns) {
            (None, _) => act.apply_with_bias(&mut h0[..hn], bias),
            (Some(_), ContextColumns::Shared) => {
                // The same context for all columns: fold it into the bias.
                for ((s, b), t) in bias_scratch.iter_mut().zip(bias).zip(ctx.iter()) {
                    *s = *b + *t;
                }
                act.apply_with_bias(&mut h0[..hn], &bias_scratch[..h]);
            }
            (Some(cl), ContextColumns::PerColumn) => {
                cl.forward_activated(params, c, n, act, ctx);
                act.apply_with_bias_add(&mut h0[..hn], bias, &ctx[..hn]);
            }
            (Some(cl), ContextColumns::Runs(bounds)) => {
                let runs = bounds.len() - 1;
                cl.forward_activated(params, c, runs, act, &mut ctx[..runs * h]);
                for (r, w) in bounds.windows(2).enumerate() {
                    act.apply_with_bias_add(
                        &mut h0[w[0] * h..w[1] * h],
                        bias,
                        &ctx[r * h..(r + 1) * h],
                    );
                }
            }
        }
        let mut prev: &[T] = h0;
        let mut rest = rest;
        for b in &self.blocks {
            let (cur, r) = rest.split_at_mut(hn);
            b.forward_activated(params, prev, n, act, cur);
            prev = cur;
            rest = r;
        }
        self.output.forward(params, prev, n, out);
    }

    /// Backward pass on `n` columns given `g_out = ∂L/∂o` (`2D × n`). **Adds** parameter
    /// gradients into `grad` if given; **overwrites** `g_z` with `∂L/∂z` and **adds**
    /// `∂L/∂c` into `g_c`, if given. `params` is the masked parameter vector (gradients
    /// of masked entries are removed by the caller). `gh`, `gh2` are `H × n` scratch
    /// buffers. `runs` are the bounds of [`ContextColumns::Runs`] if the forward pass
    /// had them (then `c` and `ctx` hold one column per run and `g_c` must be `None`):
    /// the context layer's gradient is taken once per run, from the run's summed
    /// gradient, since `Σ_j g_j ⊙ f'(ctx_r) = f'(ctx_r) ⊙ Σ_j g_j`.
    #[allow(clippy::too_many_arguments)]
    pub fn backward<T: Real>(
        &self,
        params: &[T],
        act: Activation,
        z: &[T],
        c: &[T],
        n: usize,
        ctx: &[T],
        hid: &[T],
        g_out: &[T],
        mut grad: Option<&mut [T]>,
        g_z: Option<&mut [T]>,
        g_c: Option<&mut [T]>,
        gh: &mut [T],
        gh2: &mut [T],
        runs: Option<&[usize]>,
    ) {
        let hn = self.hidden * n;
        let nb = self.blocks.len();
        let hid_at = |i: usize| &hid[i * hn..(i + 1) * hn];
        if let Some(gr) = grad.as_deref_mut() {
            self.output.backward_params(hid_at(nb), g_out, n, gr);
        }
        let (mut g, mut g2) = (&mut gh[..hn], &mut gh2[..hn]);
        self.output.backward_input(params, g_out, n, g);
        for i in (0..nb).rev() {
            act.backprop(hid_at(i + 1), g);
            let b = &self.blocks[i];
            if let Some(gr) = grad.as_deref_mut() {
                b.backward_params(hid_at(i), g, n, gr);
            }
            b.backward_input(params, g, n, g2);
            std::mem::swap(&mut g, &mut g2);
        }
        act.backprop(hid_at(0), g);
        if let Some(gr) = grad.as_deref_mut() {
            self.input.backward_params(z, g, n, gr);
        }
        if let (Some(cl), Some(bounds)) = (&self.context, runs) {
            assert!(
                g_c.is_none(),
                "MADE backward: the condition's gradient needs one context per column"
            );
            if let Some(gr) = grad {
                let h = self.hidden;
                let nr = bounds.len() - 1;
                let gs = &mut g2[..nr * h];
                for (r, w) in bounds.windows(2).enumerate() {
                    let sum = &mut gs[r * h..(r + 1) * h];
                    sum.copy_from_slice(&g[w[0] * h..(w[0] + 1) * h]);
                    for col in g[(w[0] + 1) * h..w[1] * h].chunks_exact(h) {
                        for (s, v) in sum.iter_mut().zip(col) {
                            *s += *v;
                        }
                    }
                }
                act.backprop(&ctx[..nr * h], gs);
                cl.backward_params(c, gs, nr, gr);
            }
        } else if let Some(cl) = &self.context
            && (grad.is_some() || g_c.is_some())
        {
            g2.copy_from_slice(g);
            act.backprop(&ctx[..hn], g2);
            if let Some(gr) = grad {
                cl.backward_params(c, g2, n, gr);
            }
            if let Some(gc) = g_c {
                cl.backward_input_add(params, g2, n, gc);
            }
        }
        if let Some(gz) = g_z {
            self.input.backward_input(params, g, n, gz);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_count_matches_reference_formula() {
        // D·H + H + C·H + H + 2(H² + H) + H·2D + 2D = 5,756 for D = 3, C = 2, H = 50.
        let l = MadeLayout::new(3, 2, 50, 2, 0);
        assert_eq!(l.num_params(), 5_756);
        let u = MadeLayout::new(3, 0, 50, 2, 10);
        assert_eq!(u.num_params(), 5_756 - 150);
        assert_eq!(u.offset(), 10);
    }

    #[test]
    fn degrees_cycle_and_are_zero_for_one_dimension() {
        let l = MadeLayout::new(3, 0, 6, 1, 0);
        let d: Vec<usize> = (0..6).map(|k| l.hidden_degree(k)).collect();
        assert_eq!(d, vec![1, 2, 1, 2, 1, 2]);
        let l1 = MadeLayout::new(1, 2, 4, 1, 0);
        assert!((0..4).all(|k| l1.hidden_degree(k) == 0));
        let l5 = MadeLayout::new(5, 0, 9, 1, 0);
        let d5: Vec<usize> = (0..9).map(|k| l5.hidden_degree(k)).collect();
        assert_eq!(d5, vec![1, 2, 3, 4, 1, 2, 3, 4, 1]);
    }

    #[test]
    fn masks_follow_the_degree_rules() {
        let l = MadeLayout::new(3, 2, 4, 1, 0);
        let mut mask = vec![f64::NAN; l.end()];
        l.write_mask(&mut mask);
        // Input layer: hidden degrees 1,2,1,2 vs input degrees 1,2,3 (≥).
        let w = &mask[l.input.weight_range()];
        let expect_in = [[1., 1., 1., 1.], [0., 1., 0., 1.], [0., 0., 0., 0.]];
        for j in 0..3 {
            for k in 0..4 {
                assert_eq!(w[k + 4 * j], expect_in[j][k], "input mask ({k},{j})");
            }
        }
        // Output layer: output degrees 1,1,2,2,3,3 vs hidden degrees (>).
        let w = &mask[l.output.weight_range()];
        for (j, dj) in [1, 2, 1, 2].into_iter().enumerate() {
            for o in 0..6 {
                assert_eq!(w[o + 6 * j], f64::from(u8::from(o / 2 + 1 > dj)));
            }
        }
        assert!(
            mask[l.context.as_ref().unwrap().offset..l.context.as_ref().unwrap().end()]
                .iter()
                .all(|m| *m == 1.0)
        );
        assert!(mask.iter().all(|m| *m == 0.0 || *m == 1.0));
    }
}
