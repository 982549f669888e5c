//! Parameter and θ gradients of the MAF against central finite differences.

use nalgebra::DMatrix;
use rand::Rng;
use simfer_flows::Parameterized;
use simfer_flows::nn::Dense;
use simfer_flows::{ConditionalDensityEstimator, Gradients, Maf, MafConfig, Precision};

use crate::common::{flow, rng, small_config};

const H: f64 = 1e-5;

fn weighted_log_prob(maf: &Maf, theta: &DMatrix<f64>, x: &DMatrix<f64>, w: &[f64]) -> f64 {
    let lp = maf.log_prob(theta, x).unwrap();
    lp.iter().zip(w).map(|(a, b)| a * b).sum()
}

/// Checks the gradient entries `idx` of one block; returns the norm-wise relative error.
fn block_error(
    maf: &Maf,
    theta: &DMatrix<f64>,
    x: &DMatrix<f64>,
    w: &[f64],
    grad: &[f64],
    idx: &[usize],
) -> f64 {
    let mut num = 0.0f64;
    let mut den = 0.0f64;
    for &i in idx {
        let mut m = maf.clone();
        m.params_mut()[i] += H;
        let lp = weighted_log_prob(&m, theta, x, w);
        m.params_mut()[i] -= 2.0 * H;
        let lm = weighted_log_prob(&m, theta, x, w);
        let fd = (lp - lm) / (2.0 * H);
        if maf.param_mask()[i] == 0.0 {
            // Masked weights do not enter the function at all.
            assert_eq!(grad[i], 0.0);
            assert_eq!(fd, 0.0);
        }
        num += (fd - grad[i]).powi(2);
        den += grad[i].powi(2);
    }
    assert!(
        den > 0.0,
        "a block whose gradient is zero cannot be checked"
    );
    (num / den).sqrt()
}

fn blocks(maf: &Maf) -> Vec<(String, Dense)> {
    let mut out = Vec::new();
    for (k, m) in maf.made_layouts().iter().enumerate() {
        out.push((format!("MADE {k} input"), m.input));
        if let Some(c) = m.context {
            out.push((format!("MADE {k} context"), c));
        }
        for (b, l) in m.blocks.iter().enumerate() {
            out.push((format!("MADE {k} block {b}"), *l));
        }
        out.push((format!("MADE {k} output"), m.output));
    }
    out
}

fn check_params(cfg: &MafConfig, d: usize, c: usize, max_per_block: usize) {
    // Gradient checks run in f64 (the f32 passes are checked against these in
    // `precision.rs`).
    let cfg = MafConfig {
        precision: Precision::F64,
        ..cfg.clone()
    };
    let (maf, theta, x) = flow(&cfg, d, c, 20 + d as u64 + c as u64);
    let n = 6;
    let theta = theta.columns(0, n).into_owned();
    let x = x.columns(0, n).into_owned();
    let mut r = rng(3);
    let w: Vec<f64> = (0..n).map(|_| r.random_range(-1.0..1.0)).collect();
    // Backward adds into the gradient: start from a known offset and remove it after.
    let mut grad = vec![0.25; maf.num_params()];
    let mut ws = maf.workspace();
    let mut lq = vec![0.0; n];
    maf.forward(&mut ws, theta.as_view(), x.as_view(), &mut lq)
        .unwrap();
    maf.backward(&mut ws, &w, Gradients::params(&mut grad))
        .unwrap();
    grad.iter_mut().for_each(|g| *g -= 0.25);
    for (name, layer) in blocks(&maf) {
        for (part, range) in [
            ("weight", layer.weight_range()),
            ("bias", layer.bias_range()),
        ] {
            let all: Vec<usize> = range.collect();
            let idx: Vec<usize> = if all.len() <= max_per_block {
                all
            } else {
                (0..max_per_block)
                    .map(|_| all[r.random_range(0..all.len())])
                    .collect()
            };
            let free: Vec<usize> = idx
                .iter()
                .copied()
                .filter(|i| maf.param_mask()[*i] == 1.0)
                .collect();
            if free.is_empty() {
                continue;
            }
            let err = block_error(&maf, &theta, &x, &w, &grad, &idx);
            assert!(
                err < 1e-6,
                "D={d} C={c} {name} {part}: relative error {err:e}"
            );
        }
    }
}

#[test]
fn parameter_gradients_match_finite_differences() {
    for d in [1, 2, 5] {
        for c in [0, 2] {
            check_params(&small_config(), d, c, usize::MAX);
        }
    }
}

#[test]
fn parameter_gradients_of_the_default_architecture() {
    check_params(&MafConfig::default(), 3, 2, 12);
    check_params(&MafConfig::default(), 5, 0, 12);
}

#[test]
fn theta_gradient_matches_finite_differences() {
    for d in [1, 2, 5] {
        for c in [0, 2] {
            let (maf, theta, x) = flow(&small_config(), d, c, 40 + d as u64);
            let n = 5;
            let theta = theta.columns(0, n).into_owned();
            let x = x.columns(0, n).into_owned();
            let (lp, g) = maf.log_prob_grad_input(&theta, &x).unwrap();
            assert_eq!(lp, maf.log_prob(&theta, &x).unwrap());
            let mut num = 0.0f64;
            let mut den = 0.0f64;
            for j in 0..n {
                for i in 0..d {
                    let mut t = theta.clone();
                    t[(i, j)] += H;
                    let p = maf.log_prob(&t, &x).unwrap()[j];
                    t[(i, j)] -= 2.0 * H;
                    let m = maf.log_prob(&t, &x).unwrap()[j];
                    let fd = (p - m) / (2.0 * H);
                    num += (fd - g[(i, j)]).powi(2);
                    den += g[(i, j)].powi(2);
                }
            }
            let err = (num / den).sqrt();
            assert!(err < 1e-6, "D={d} C={c}: θ-gradient relative error {err:e}");
        }
    }
}
