//! Sampling from an NSF: the inverse of the flow (the LU layers by two triangular solves,
//! the couplings by inverting each spline on the unchanged pass-through coordinates), and
//! the forward map to the noise.

use nalgebra::DMatrix;
use simfer_nn::driver::{PassInputs, Passes, chunk_ranges};
use simfer_nn::{Precision, par};

use super::passes::to_rows;
use super::spline::{self, Shape, padded};
use super::{Conditioner, Nsf, lu};
use crate::FlowError;
use crate::estimator::{check_batch, check_condition};

impl Nsf {
    /// The flow's forward direction: the base-distribution noise `u` (`D × n`) that each
    /// column of the input maps to given its condition (the inverse of
    /// [`inverse`](Self::inverse)), in `f64`.
    pub fn transform_to_noise(
        &self,
        input: &DMatrix<f64>,
        condition: &DMatrix<f64>,
    ) -> Result<DMatrix<f64>, FlowError> {
        check_batch(
            self.data.input_dim,
            self.data.condition_dim,
            &input.as_view(),
            &condition.as_view(),
        )?;
        let mut passes = Passes::<Nsf>::default();
        let mut lp = vec![0.0; input.ncols()];
        let inputs = PassInputs {
            input: input.as_view(),
            condition: condition.as_view(),
        };
        passes.forward(self, Precision::F64, &inputs, &mut lp)?;
        let d = self.data.input_dim;
        let k = self.data.config.num_transforms;
        let mut u = DMatrix::zeros(d, input.ncols());
        for (start, len, ch) in passes.chunks_f64() {
            let dn = d * len;
            u.as_mut_slice()[d * start..d * start + dn]
                .copy_from_slice(&ch.u[k * dn..(k + 1) * dn]);
        }
        Ok(u)
    }

    /// Maps base-distribution noise `noise` (`D × n`) to the input space for the
    /// condition `condition` by inverting the flow, in `f64`.
    pub fn inverse(
        &self,
        noise: &DMatrix<f64>,
        condition: &[f64],
    ) -> Result<DMatrix<f64>, FlowError> {
        let d = self.data.input_dim;
        if noise.nrows() != d {
            return Err(FlowError::dims(
                "noise rows (the input dimension)",
                d,
                noise.nrows(),
            ));
        }
        check_condition(self.data.condition_dim, condition)?;
        let mut out = noise.clone();
        self.inverse_into(&mut out, condition);
        Ok(out)
    }

    /// The inverse in place, over column chunks in parallel (each chunk's result depends
    /// only on its columns, so not on the number of threads).
    pub(super) fn inverse_into(&self, z: &mut DMatrix<f64>, condition: &[f64]) {
        let cfg = &self.data.config;
        let d = self.data.input_dim;
        let n = z.ncols();
        let params = &self.data.params[..];
        let shape = Shape::<f64>::new(cfg.num_bins, cfg.hidden_features, cfg.tail_bound);
        let r = shape.raw_len();
        // The condition is the same for every column: standardize it once, and evaluate
        // the context-only conditioners (D = 1) and the LU matrices once.
        let xs = &self.data.condition_stats;
        let c: Vec<f64> = condition
            .iter()
            .enumerate()
            .map(|(i, v)| (v - xs.mean[i]) / xs.std[i])
            .collect();
        let mut mats = vec![Vec::new(); self.layers.len()];
        let mut fixed = vec![Vec::new(); self.layers.len()];
        for (i, layer) in self.layers.iter().enumerate() {
            if let Some(lu) = &layer.lu {
                mats[i] = vec![0.0; lu::mats_len(d)];
                lu.matrices(params, &mut mats[i]);
            }
            if let Conditioner::ContextMap(_) = layer.conditioner {
                let mut acts = vec![0.0; layer.conditioner.acts_len(1)];
                layer
                    .conditioner
                    .forward(params, &[], &c, None, 1, &mut acts);
                fixed[i] = layer.conditioner.output(&acts, 1).to_vec();
            }
        }
        let pieces = par::split_lengths(z.as_mut_slice(), chunk_ranges(n).map(|(_, l)| l * d));
        par::for_each(pieces, |piece| {
            let n = piece.len() / d;
            if n == 0 {
                return;
            }
            let ctx: Vec<f64> = (0..n).flat_map(|_| c.iter().copied()).collect();
            let max_i = self
                .layers
                .iter()
                .map(|l| l.identity.len())
                .max()
                .unwrap_or(0);
            let mut xi = vec![0.0; max_i * n];
            let mp_max = padded(d.div_ceil(2) * n);
            let mut raw = vec![0.0; r * mp_max];
            let mut y = vec![0.0; mp_max];
            let mut uo = vec![0.0; mp_max];
            let mut ld = vec![0.0; mp_max];
            let mut wn = vec![0.0; cfg.num_bins * mp_max];
            let mut hn = vec![0.0; cfg.num_bins * mp_max];
            let mut loc = vec![0.0; spline::LOCALS * mp_max];
            let mut acts = Vec::new();
            for (i, layer) in self.layers.iter().enumerate().rev() {
                if let Some(lu) = &layer.lu {
                    for col in piece.chunks_exact_mut(d) {
                        lu.inverse_column(params, &mats[i], col);
                    }
                }
                let nt = layer.transformed.len();
                let m = nt * n;
                let mp = padded(m);
                let raw = &mut raw[..r * mp];
                match &layer.conditioner {
                    Conditioner::Residual(net) => {
                        let ni = layer.identity.len();
                        for j in 0..n {
                            for (a, &id) in layer.identity.iter().enumerate() {
                                xi[a + j * ni] = piece[id + j * d];
                            }
                        }
                        acts.resize(net.acts_len(n), 0.0);
                        net.forward(params, &xi[..ni * n], &ctx, n, &mut acts);
                        to_rows(net.output(&acts, n), nt, r, n, mp, raw);
                    }
                    Conditioner::ContextMap(_) => {
                        for (p, v) in fixed[i].iter().enumerate() {
                            raw[p * mp..(p + 1) * mp].fill(*v);
                        }
                    }
                }
                for (t, &tr) in layer.transformed.iter().enumerate() {
                    for j in 0..n {
                        y[t * n + j] = piece[tr + j * d];
                    }
                }
                y[m..mp].fill(0.0);
                spline::inverse(
                    &shape,
                    raw,
                    &y[..mp],
                    mp,
                    &mut wn[..cfg.num_bins * mp],
                    &mut hn[..cfg.num_bins * mp],
                    &mut loc[..spline::LOCALS * mp],
                    &mut uo[..mp],
                    &mut ld[..mp],
                );
                for (t, &tr) in layer.transformed.iter().enumerate() {
                    for j in 0..n {
                        piece[tr + j * d] = uo[t * n + j];
                    }
                }
            }
            let ts = &self.data.input_stats;
            for col in piece.chunks_exact_mut(d) {
                for (i, v) in col.iter_mut().enumerate() {
                    *v = *v * ts.std[i] + ts.mean[i];
                }
            }
        });
    }
}
