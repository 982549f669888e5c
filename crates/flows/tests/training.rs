//! Maximum likelihood with Adam and clipping learns a known conditional Gaussian.

use nalgebra::DMatrix;
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};
use simfer_flows::Parameterized;
use simfer_flows::{Adam, ConditionalDensityEstimator, Gradients, Maf, MafConfig, clip_grad_norm};

use crate::common::rng;

/// θ | x ~ N((2x + 2, 2 − x), diag((0.3 + 0.2x)², 0.3²)), x ~ U(−1, 1).
fn simulate(n: usize, seed: u64) -> (DMatrix<f64>, DMatrix<f64>) {
    let mut r = rng(seed);
    let x = DMatrix::from_fn(1, n, |_, _| r.random_range(-1.0..1.0));
    let theta = DMatrix::from_fn(2, n, |i, j| {
        let xv = x[(0, j)];
        let e: f64 = StandardNormal.sample(&mut r);
        if i == 0 {
            2.0 * xv + 2.0 + (0.3 + 0.2 * xv) * e
        } else {
            2.0 - xv + 0.3 * e
        }
    });
    (theta, x)
}

#[test]
fn maximum_likelihood_recovers_a_conditional_gaussian() {
    // Standardization statistics from an initial sample; training on fresh batches
    // (no overfitting, so the fit converges to the true conditional).
    let (theta, x) = simulate(2000, 1);
    let mut maf = Maf::new(&MafConfig::default(), &theta, &x, 7).unwrap();
    let batch = 200;
    let mut adam = Adam::new(maf.num_params(), 1e-3);
    let mut ws = maf.workspace();
    let mut grad = vec![0.0; maf.num_params()];
    let mut lp = vec![0.0; batch];
    let w = vec![-1.0 / batch as f64; batch];
    for step in 0..STEPS {
        if step == STEPS * 3 / 4 {
            adam.lr = 2e-4;
        }
        let (tb, xb) = simulate(batch, 100 + step as u64);
        maf.forward(&mut ws, tb.as_view(), xb.as_view(), &mut lp)
            .unwrap();
        grad.fill(0.0);
        // Gradient of the loss −mean log q.
        maf.backward(&mut ws, &w, Gradients::params(&mut grad))
            .unwrap();
        assert!(clip_grad_norm(&mut grad, 5.0).is_finite());
        adam.step(maf.params_mut(), &grad);
    }
    for &x0 in &[-0.5, 0.5] {
        let s = maf.sample(20_000, &[x0], &mut rng(3)).unwrap();
        let expect_mean = [2.0 * x0 + 2.0, 2.0 - x0];
        let expect_std = [0.3 + 0.2 * x0, 0.3];
        for i in 0..2 {
            let row = s.row(i);
            let mean = row.mean();
            let std = row.variance().sqrt();
            eprintln!(
                "x = {x0}, θ{i}: mean {mean:.4} ({:.4}), std {std:.4} ({:.4})",
                expect_mean[i], expect_std[i]
            );
            assert!(
                (mean - expect_mean[i]).abs() < 0.05 * expect_mean[i].abs(),
                "x = {x0}, θ{i}: mean {mean} vs {}",
                expect_mean[i]
            );
            assert!(
                (std - expect_std[i]).abs() < 0.05 * expect_std[i],
                "x = {x0}, θ{i}: std {std} vs {}",
                expect_std[i]
            );
        }
    }
}

const STEPS: usize = 1600;
