//! Sampling from a MAF: the inverse of the flow (D fixed-point passes per MADE, as the
//! reference's `MaskedAffineAutoregressiveTransform.inverse`) and the forward map to the
//! noise.

use nalgebra::DMatrix;
use simfer_nn::driver::{ChunkModel, PassInputs, Passes, chunk_ranges};
use simfer_nn::{Precision, fastmath, par};

use super::made::{ContextColumns, MadeActs};
use super::{MIN_SCALE, Maf};
use crate::FlowError;
use crate::estimator::{check_batch, check_condition};

impl Maf {
    /// The flow's forward direction: the base-distribution noise `u` (`D × n`) that each
    /// column of θ maps to given its context (the inverse of [`inverse`](Self::inverse)),
    /// in `f64`.
    pub fn transform_to_noise(
        &self,
        theta: &DMatrix<f64>,
        x: &DMatrix<f64>,
    ) -> Result<DMatrix<f64>, FlowError> {
        check_batch(
            self.data.input_dim,
            self.data.condition_dim,
            &theta.as_view(),
            &x.as_view(),
        )?;
        let mut passes = Passes::<Maf>::default();
        let mut lp = vec![0.0; theta.ncols()];
        let inputs = PassInputs {
            input: theta.as_view(),
            condition: x.as_view(),
        };
        passes.forward(self, Precision::F64, &inputs, &mut lp)?;
        let d = self.data.input_dim;
        let k = self.data.config.num_transforms;
        let mut u = DMatrix::zeros(d, theta.ncols());
        for (start, len, ch) in passes.chunks_f64() {
            let dn = d * len;
            u.as_mut_slice()[d * start..d * start + dn]
                .copy_from_slice(&ch.u[k * dn..(k + 1) * dn]);
        }
        Ok(u)
    }

    /// Maps base-distribution noise `u` (`D × n`) to θ for the context `x`
    /// by inverting the flow (§3.5: D fixed-point passes per MADE).
    pub fn inverse(&self, u: &DMatrix<f64>, x: &[f64]) -> Result<DMatrix<f64>, FlowError> {
        let d = self.data.input_dim;
        if u.nrows() != d {
            return Err(FlowError::dims(
                "noise rows (the input dimension)",
                d,
                u.nrows(),
            ));
        }
        check_condition(self.data.condition_dim, x)?;
        let mut out = u.clone();
        self.inverse_into(&mut out, x);
        Ok(out)
    }

    pub(super) fn inverse_into(&self, u: &mut DMatrix<f64>, x: &[f64]) {
        let cfg = &self.data.config;
        let (d, h) = (self.data.input_dim, cfg.hidden_features);
        let n = u.ncols();
        let mut masked = Vec::new();
        self.pass_params(&mut masked);
        // The context is the same for every column: evaluate each context layer once.
        let xs = &self.data.condition_stats;
        let c: Vec<f64> = x
            .iter()
            .enumerate()
            .map(|(i, v)| (v - xs.mean[i]) / xs.std[i])
            .collect();
        let ctxs: Vec<Vec<f64>> = self
            .mades
            .iter()
            .map(|m| {
                let mut t = vec![0.0; h];
                if let Some(cl) = &m.context {
                    cl.forward_activated(&masked, &c, 1, cfg.activation, &mut t);
                }
                t
            })
            .collect();
        let pieces = par::split_lengths(u.as_mut_slice(), chunk_ranges(n).map(|(_, len)| len * d));
        par::for_each(pieces, |piece| {
            let n = piece.len() / d.max(1);
            let dn = d * n;
            let mut y = vec![0.0; dn];
            let mut v = vec![0.0; dn];
            let mut hid = vec![0.0; (cfg.num_blocks + 1) * h * n];
            let mut out = vec![0.0; 2 * dn];
            let mut ctx_copy = vec![0.0; h];
            let mut bias = vec![0.0; h];
            let mut tmp = vec![0.0; dn];
            for k in (0..self.mades.len()).rev() {
                let made = &self.mades[k];
                let perm = &self.data.permutations[k];
                // Undo the permutation: v[perm[p]] = u[p].
                for j in 0..n {
                    for (p, &pp) in perm.iter().enumerate() {
                        v[pp + j * d] = piece[p + j * d];
                    }
                }
                y.fill(0.0);
                ctx_copy.copy_from_slice(&ctxs[k]);
                for _ in 0..d {
                    made.forward(
                        &masked,
                        cfg.activation,
                        &y,
                        &[],
                        n,
                        MadeActs {
                            ctx: &mut ctx_copy,
                            hid: &mut hid,
                            out: &mut out,
                        },
                        ContextColumns::Shared,
                        &mut bias,
                    );
                    inverse_step(&out, &v, &mut y, &mut tmp, d);
                }
                piece.copy_from_slice(&y);
            }
            let ts = &self.data.input_stats;
            for j in 0..n {
                for i in 0..d {
                    piece[i + j * d] = piece[i + j * d] * ts.std[i] + ts.mean[i];
                }
            }
        });
    }
}

fastmath::simd_dispatch!(
    fn inverse_step(out: &[f64], v: &[f64], y: &mut [f64], tmp: &mut [f64], d: usize) => inverse_step_g
);

/// One fixed-point pass of the MADE inverse: `y = (v − b) / (softplus(a) + 1e-3)`.
#[inline(always)]
fn inverse_step_g(out: &[f64], v: &[f64], y: &mut [f64], tmp: &mut [f64], d: usize) {
    for ((oc, tc), yc) in out
        .chunks_exact(2 * d)
        .zip(tmp.chunks_exact_mut(d))
        .zip(y.chunks_exact_mut(d))
    {
        for i in 0..d {
            tc[i] = oc[2 * i];
            yc[i] = oc[2 * i + 1];
        }
    }
    for t in tmp.iter_mut() {
        *t = fastmath::softplus(*t) + MIN_SCALE;
    }
    for ((yv, vv), t) in y.iter_mut().zip(v).zip(tmp.iter()) {
        *yv = (*vv - *yv) / *t;
    }
}
