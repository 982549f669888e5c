//! A multilayer perceptron on column batches, with hand-written backprop.

use rand::RngCore;
#[cfg(feature = "serde")]
use serde::{Deserialize, Serialize};

use crate::layers::{Activation, Dense};
use crate::precision::Real;

/// Dense layers `sizes[0] → sizes[1] → … → sizes[L]` with `activation` after every
/// hidden layer and, optionally, `output_activation` after the last one; the layers'
/// parameters are consecutive ranges of a flat vector starting at `offset`.
///
/// The passes keep every layer's (activated) output in one activation buffer of
/// [`acts_len`](Self::acts_len) entries: layer `l`'s output, `sizes[l+1] × n`, follows
/// layer `l − 1`'s. The network's output is the last block ([`output`](Self::output)).
///
/// ```
/// use simfer_nn::{Activation, Mlp};
/// use rand::SeedableRng;
///
/// let net = Mlp::new(&[3, 16, 16, 2], Activation::Relu, None, 0);
/// let mut params = vec![0.0; net.end()];
/// net.init_uniform(&mut params, &mut rand::rngs::StdRng::seed_from_u64(1));
/// let n = 4;
/// let x = vec![0.5; 3 * n];
/// let mut acts = vec![0.0; net.acts_len(n)];
/// net.forward(&params, &x, n, &mut acts);
/// assert_eq!(net.output(&acts, n).len(), 2 * n);
///
/// // Gradients of L = Σ outputs.
/// let g_out = vec![1.0; 2 * n];
/// let mut grad = vec![0.0; params.len()];
/// let mut g_x = vec![0.0; 3 * n];
/// let mut scratch = vec![0.0; net.scratch_len(n)];
/// net.backward(&params, &x, n, &acts, &g_out, Some(&mut grad), Some(&mut g_x), &mut scratch);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct Mlp {
    /// The layers, input to output.
    pub layers: Vec<Dense>,
    /// The activation after each hidden layer.
    pub activation: Activation,
    /// The activation after the output layer, if any.
    pub output_activation: Option<Activation>,
}

impl Mlp {
    /// Layers of the given widths (`sizes.len() ≥ 2`: input, hidden…, output) whose
    /// parameters start at `offset`.
    ///
    /// # Panics
    /// If fewer than two sizes are given (a programming error).
    pub fn new(
        sizes: &[usize],
        activation: Activation,
        output_activation: Option<Activation>,
        offset: usize,
    ) -> Self {
        assert!(sizes.len() >= 2, "an MLP needs an input and an output size");
        let mut end = offset;
        let layers = sizes
            .windows(2)
            .map(|w| {
                let l = Dense::new(w[0], w[1], end);
                end = l.end();
                l
            })
            .collect();
        Mlp {
            layers,
            activation,
            output_activation,
        }
    }

    /// Input dimension.
    pub fn in_dim(&self) -> usize {
        self.layers[0].in_dim
    }

    /// Output dimension.
    pub fn out_dim(&self) -> usize {
        self.layers[self.layers.len() - 1].out_dim
    }

    /// First parameter index.
    pub fn offset(&self) -> usize {
        self.layers[0].offset
    }

    /// One past the last parameter index.
    pub fn end(&self) -> usize {
        self.layers[self.layers.len() - 1].end()
    }

    /// Number of parameters.
    pub fn num_params(&self) -> usize {
        self.end() - self.offset()
    }

    /// PyTorch's default initialization of every layer (uniform on `±1/√fan_in`).
    pub fn init_uniform(&self, params: &mut [f64], rng: &mut dyn RngCore) {
        for l in &self.layers {
            l.init_uniform(params, rng);
        }
    }

    /// Entries of the activation buffer for `n` columns.
    pub fn acts_len(&self, n: usize) -> usize {
        self.layers.iter().map(|l| l.out_dim * n).sum()
    }

    /// Entries of the backward scratch buffer for `n` columns.
    pub fn scratch_len(&self, n: usize) -> usize {
        2 * self.max_width() * n
    }

    fn max_width(&self) -> usize {
        self.layers
            .iter()
            .map(|l| l.out_dim.max(l.in_dim))
            .max()
            .unwrap_or(0)
    }

    fn act_of(&self, l: usize) -> Option<Activation> {
        if l + 1 < self.layers.len() {
            Some(self.activation)
        } else {
            self.output_activation
        }
    }

    /// The output block of an activation buffer (`out_dim × n`).
    pub fn output<'a, T>(&self, acts: &'a [T], n: usize) -> &'a [T] {
        let len = self.acts_len(n);
        &acts[len - self.out_dim() * n..len]
    }

    /// The forward pass of `n` columns of `input` (`in_dim × n`), every layer's output
    /// into `acts` (at least [`acts_len`](Self::acts_len) entries).
    pub fn forward<T: Real>(&self, params: &[T], input: &[T], n: usize, acts: &mut [T]) {
        let mut at = 0;
        for (l, layer) in self.layers.iter().enumerate() {
            let len = layer.out_dim * n;
            let (done, rest) = acts.split_at_mut(at);
            let prev: &[T] = if l == 0 {
                input
            } else {
                &done[at - layer.in_dim * n..]
            };
            let out = &mut rest[..len];
            match self.act_of(l) {
                Some(a) => layer.forward_activated(params, prev, n, a, out),
                None => layer.forward(params, prev, n, out),
            }
            at += len;
        }
    }

    /// The backward pass after [`forward`](Self::forward) on the same `input` and `acts`:
    /// given `g_out = ∂L/∂output` (`out_dim × n`, of the activated output when there is an
    /// output activation), **adds** the parameter gradients into `grad` (the full-length
    /// vector) if given, and **overwrites** `g_in` with `∂L/∂input` if given. `scratch`
    /// needs [`scratch_len`](Self::scratch_len) entries.
    #[allow(clippy::too_many_arguments)]
    pub fn backward<T: Real>(
        &self,
        params: &[T],
        input: &[T],
        n: usize,
        acts: &[T],
        g_out: &[T],
        mut grad: Option<&mut [T]>,
        g_in: Option<&mut [T]>,
        scratch: &mut [T],
    ) {
        let w = self.max_width() * n;
        let (mut g, mut g2) = scratch[..2 * w].split_at_mut(w);
        let last = self.layers.len() - 1;
        let out_len = self.out_dim() * n;
        g[..out_len].copy_from_slice(&g_out[..out_len]);
        let mut end = self.acts_len(n);
        for l in (0..=last).rev() {
            let layer = &self.layers[l];
            let len = layer.out_dim * n;
            let out = &acts[end - len..end];
            if let Some(a) = self.act_of(l) {
                a.backprop(out, &mut g[..len]);
            }
            let prev: &[T] = if l == 0 {
                input
            } else {
                &acts[end - len - layer.in_dim * n..end - len]
            };
            if let Some(gr) = grad.as_deref_mut() {
                layer.backward_params(prev, &g[..len], n, gr);
            }
            if l > 0 {
                layer.backward_input(params, &g[..len], n, &mut g2[..layer.in_dim * n]);
                std::mem::swap(&mut g, &mut g2);
            } else if let Some(gi) = g_in {
                layer.backward_input(params, &g[..len], n, gi);
                break;
            }
            end -= len;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn loss(net: &Mlp, p: &[f64], x: &[f64], c: &[f64], n: usize) -> f64 {
        let mut acts = vec![0.0; net.acts_len(n)];
        net.forward(p, x, n, &mut acts);
        net.output(&acts, n).iter().zip(c).map(|(a, b)| a * b).sum()
    }

    #[test]
    fn gradients_match_central_differences() {
        for (act, out_act) in [
            (Activation::Tanh, None),
            (Activation::Relu, Some(Activation::Relu)),
            (Activation::Softplus, Some(Activation::Tanh)),
        ] {
            let net = Mlp::new(&[3, 6, 5, 2], act, out_act, 4);
            let mut rng = rand::rngs::StdRng::seed_from_u64(2);
            let mut p = vec![0.0; net.end() + 1];
            net.init_uniform(&mut p, &mut rng);
            let n = 5;
            let x: Vec<f64> = (0..3 * n).map(|_| rng.random_range(-2.0..2.0)).collect();
            let c: Vec<f64> = (0..2 * n).map(|_| rng.random_range(-1.0..1.0)).collect();
            let mut acts = vec![0.0; net.acts_len(n)];
            net.forward(&p, &x, n, &mut acts);
            let mut grad = vec![0.0; p.len()];
            let mut gx = vec![f64::NAN; 3 * n];
            let mut scratch = vec![0.0; net.scratch_len(n)];
            net.backward(
                &p,
                &x,
                n,
                &acts,
                &c,
                Some(&mut grad),
                Some(&mut gx),
                &mut scratch,
            );
            let h = 1e-6;
            for i in 0..p.len() {
                let mut q = p.clone();
                q[i] += h;
                let lp = loss(&net, &q, &x, &c, n);
                q[i] -= 2.0 * h;
                let lm = loss(&net, &q, &x, &c, n);
                let fd = (lp - lm) / (2.0 * h);
                assert!(
                    (fd - grad[i]).abs() < 1e-7 * (1.0 + fd.abs()),
                    "{act:?} p{i}: {fd} vs {}",
                    grad[i]
                );
            }
            for i in 0..x.len() {
                let mut y = x.clone();
                y[i] += h;
                let lp = loss(&net, &p, &y, &c, n);
                y[i] -= 2.0 * h;
                let lm = loss(&net, &p, &y, &c, n);
                let fd = (lp - lm) / (2.0 * h);
                assert!(
                    (fd - gx[i]).abs() < 1e-7 * (1.0 + fd.abs()),
                    "{act:?} x{i}: {fd} vs {}",
                    gx[i]
                );
            }
            assert_eq!(
                grad[0..4],
                [0.0; 4],
                "parameters before the offset are untouched"
            );
        }
    }
}
