//! Shared helpers: small flows, data, and a direct (slow, independent) evaluation of
//! the MAF log-density written from the formulas of the reference behaviour.

use nalgebra::DMatrix;
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use simfer_flows::{Maf, MafConfig, Parameterized};

pub fn rng(seed: u64) -> Xoshiro256PlusPlus {
    Xoshiro256PlusPlus::seed_from_u64(seed)
}

/// θ (`d × n`) correlated with x (`c × n`), both with non-trivial means and scales.
pub fn data(d: usize, c: usize, n: usize, seed: u64) -> (DMatrix<f64>, DMatrix<f64>) {
    let mut r = rng(seed);
    let x = DMatrix::from_fn(c, n, |i, _| {
        2.0 * i as f64 + r.random_range(-1.0..1.0) * (1.0 + i as f64)
    });
    let theta = DMatrix::from_fn(d, n, |i, j| {
        let cx = if c > 0 { x[(i % c, j)] } else { 0.0 };
        0.5 * cx - 1.0 + i as f64 + (0.5 + 0.2 * i as f64) * r.random_range(-1.5..1.5)
    });
    (theta, x)
}

pub fn small_config() -> MafConfig {
    MafConfig {
        hidden_features: 7,
        num_transforms: 3,
        num_blocks: 2,
        ..MafConfig::default()
    }
}

/// A flow whose parameters are perturbed away from the initialization, so that every
/// part of it matters (the initial output layer is small).
pub fn flow(cfg: &MafConfig, d: usize, c: usize, seed: u64) -> (Maf, DMatrix<f64>, DMatrix<f64>) {
    let (theta, x) = data(d, c, 64, seed);
    let mut maf = if c > 0 {
        Maf::new(cfg, &theta, &x, seed).unwrap()
    } else {
        Maf::new_unconditional(cfg, &theta, seed).unwrap()
    };
    let mut r = rng(seed + 100);
    for p in maf.params_mut() {
        *p += r.random_range(-0.3..0.3);
    }
    (maf, theta, x)
}

fn softplus(a: f64) -> f64 {
    a.max(0.0) + (-a.abs()).exp().ln_1p()
}

/// log q(θ | x) for one sample, from the formulas of the reference (§3.2–3.3), with
/// masks built here from the degree rules and the standard library's tanh.
// `deg ≥ j + 1` is written as in the spec (input degrees are j + 1).
#[allow(clippy::int_plus_one)]
pub fn direct_log_prob(maf: &Maf, theta: &[f64], x: &[f64]) -> f64 {
    let cfg = maf.config();
    let d = theta.len();
    let h = cfg.hidden_features;
    let p = maf.params();
    let ts = maf.input_standardization();
    let xs = maf.condition_standardization();
    let mut z: Vec<f64> = (0..d)
        .map(|i| (theta[i] - ts.mean[i]) / ts.std[i])
        .collect();
    let c: Vec<f64> = (0..x.len())
        .map(|i| (x[i] - xs.mean[i]) / xs.std[i])
        .collect();
    let mut logdet: f64 = -ts.std.iter().map(|s| s.ln()).sum::<f64>();
    let deg_h = |k: usize| (k % 1.max(d.saturating_sub(1))) + 1.min(d.saturating_sub(1));
    // A dense layer: W at `off` (column-major rows × cols), then bias.
    let dense = |off: usize,
                 rows: usize,
                 cols: usize,
                 inp: &[f64],
                 keep: &dyn Fn(usize, usize) -> bool|
     -> Vec<f64> {
        (0..rows)
            .map(|r| {
                let mut s = p[off + rows * cols + r];
                for (j, v) in inp.iter().enumerate() {
                    if keep(r, j) {
                        s += p[off + r + j * rows] * v;
                    }
                }
                s
            })
            .collect()
    };
    for (k, lay) in maf.made_layouts().iter().enumerate() {
        let mut hid = dense(lay.input.offset, h, d, &z, &|r, j| deg_h(r) >= j + 1);
        if let Some(cl) = &lay.context {
            let t = dense(cl.offset, h, c.len(), &c, &|_, _| true);
            for (hv, tv) in hid.iter_mut().zip(&t) {
                *hv += tv.tanh();
            }
        }
        hid.iter_mut().for_each(|v| *v = v.tanh());
        for b in &lay.blocks {
            hid = dense(b.offset, h, h, &hid, &|r, j| deg_h(r) >= deg_h(j));
            hid.iter_mut().for_each(|v| *v = v.tanh());
        }
        let out = dense(lay.output.offset, 2 * d, h, &hid, &|o, j| {
            o / 2 + 1 > deg_h(j)
        });
        let mut v = vec![0.0; d];
        for i in 0..d {
            let s = softplus(out[2 * i]) + 1e-3;
            v[i] = s * z[i] + out[2 * i + 1];
            logdet += s.ln();
        }
        let perm = &maf.permutations()[k];
        z = (0..d).map(|i| v[perm[i]]).collect();
    }
    -0.5 * z.iter().map(|v| v * v).sum::<f64>() - 0.5 * d as f64 * (2.0 * std::f64::consts::PI).ln()
        + logdet
}
