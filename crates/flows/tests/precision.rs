//! The single-precision training passes against the double-precision ones.

use nalgebra::DMatrix;
use rand::Rng;
use simfer_flows::Parameterized;
use simfer_flows::{ConditionalDensityEstimator, Gradients, Maf, MafConfig, Precision};

use crate::common::{data, flow, rng};

/// Forward + backward (random weights) in the given precision: (log q, gradient).
fn pass(maf: &Maf, theta: &DMatrix<f64>, x: &DMatrix<f64>, w: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let mut ws = maf.workspace();
    let mut lp = vec![0.0; theta.ncols()];
    maf.forward(&mut ws, theta.as_view(), x.as_view(), &mut lp)
        .unwrap();
    let mut g = vec![0.0; maf.num_params()];
    maf.backward(&mut ws, w, Gradients::params(&mut g)).unwrap();
    (lp, g)
}

fn rel_norm(a: &[f64], b: &[f64]) -> f64 {
    let num: f64 = a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum();
    let den: f64 = b.iter().map(|y| y * y).sum();
    (num / den).sqrt()
}

#[test]
fn f32_passes_agree_with_f64_passes() {
    for d in [1, 3, 5] {
        for c in [0, 3] {
            let cfg = MafConfig {
                precision: Precision::F64,
                ..MafConfig::default()
            };
            let (mut maf, _, _) = flow(&cfg, d, c, 60 + d as u64 + c as u64);
            // 300 columns: three chunks, so the reduction over chunks is exercised.
            let (theta, x) = data(d, c, 300, 70 + d as u64);
            let mut r = rng(5);
            let w: Vec<f64> = (0..300).map(|_| r.random_range(-1.0..1.0)).collect();
            let (lp64, g64) = pass(&maf, &theta, &x, &w);
            maf.set_precision(Precision::F32);
            let (lp32, g32) = pass(&maf, &theta, &x, &w);

            // Each log q to f32 accuracy (relative, or absolute near 0).
            for (j, (a, b)) in lp32.iter().zip(&lp64).enumerate() {
                assert!(
                    (a - b).abs() <= 1e-4 * b.abs().max(1.0),
                    "D={d} C={c} column {j}: log q {a} (f32) vs {b} (f64)"
                );
            }
            // The whole gradient, and each layer's weight and bias gradient, to 1e-4
            // norm-wise.
            let e = rel_norm(&g32, &g64);
            assert!(e < 1e-4, "D={d} C={c}: gradient relative error {e:e}");
            for (k, m) in maf.made_layouts().iter().enumerate() {
                let mut layers = vec![m.input, m.output];
                layers.extend(m.context);
                layers.extend(m.blocks.iter().copied());
                for l in layers {
                    for range in [l.weight_range(), l.bias_range()] {
                        if g64[range.clone()].iter().all(|g| *g == 0.0) {
                            // Fully masked (the input layer for D = 1).
                            assert!(g32[range].iter().all(|g| *g == 0.0));
                            continue;
                        }
                        let e = rel_norm(&g32[range.clone()], &g64[range.clone()]);
                        assert!(
                            e < 1e-4,
                            "D={d} C={c} MADE {k}, parameters {range:?}: relative error {e:e}"
                        );
                    }
                }
            }
            // Masked weights get exactly zero gradient in both precisions.
            for (i, m) in maf.param_mask().iter().enumerate() {
                if *m == 0.0 {
                    assert_eq!(g32[i], 0.0);
                }
            }
        }
    }
}

#[test]
fn evaluation_is_f64_whatever_the_training_precision() {
    let (maf64, theta, x) = flow(&MafConfig::default(), 3, 2, 9);
    let mut maf32 = maf64.clone();
    maf32.set_precision(Precision::F32);
    let mut maf64 = maf64;
    maf64.set_precision(Precision::F64);
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(
        bits(maf32.log_prob(&theta, &x).unwrap().as_slice()),
        bits(maf64.log_prob(&theta, &x).unwrap().as_slice())
    );
    let (lp32, tg32) = maf32.log_prob_grad_input(&theta, &x).unwrap();
    let (lp64, tg64) = maf64.log_prob_grad_input(&theta, &x).unwrap();
    assert_eq!(bits(lp32.as_slice()), bits(lp64.as_slice()));
    assert_eq!(bits(tg32.as_slice()), bits(tg64.as_slice()));
    let s32 = maf32.sample(50, &[0.3, -0.2], &mut rng(1)).unwrap();
    let s64 = maf64.sample(50, &[0.3, -0.2], &mut rng(1)).unwrap();
    assert_eq!(bits(s32.as_slice()), bits(s64.as_slice()));
    assert_eq!(
        maf32.transform_to_noise(&theta, &x).unwrap(),
        maf64.transform_to_noise(&theta, &x).unwrap()
    );
    // The log-density of the f64 training forward is the evaluation one.
    let mut ws = maf64.workspace();
    let mut lp = vec![0.0; theta.ncols()];
    maf64
        .forward(&mut ws, theta.as_view(), x.as_view(), &mut lp)
        .unwrap();
    assert_eq!(bits(&lp), bits(lp64.as_slice()));
}
