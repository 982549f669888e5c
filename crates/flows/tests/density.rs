//! The MAF's density: the reference formula, parameter count, standardization,
//! autoregressive structure, inversion, normalization, thread independence, errors.

use nalgebra::DMatrix;
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};
use simfer_flows::Parameterized;
use simfer_flows::maf::made::{ContextColumns, MadeActs};
use simfer_flows::{ConditionalDensityEstimator, FlowError, Gradients, Maf, MafConfig, Precision};

use crate::common::{data, direct_log_prob, flow, rng, small_config};

#[test]
fn parameter_count_matches_reference() {
    let (theta, x) = data(3, 2, 50, 1);
    let maf = Maf::new(&MafConfig::default(), &theta, &x, 0).unwrap();
    assert_eq!(maf.num_params(), 28_780);
    let maf = Maf::new_unconditional(&MafConfig::default(), &theta, 0).unwrap();
    assert_eq!(maf.num_params(), 28_780 - 5 * 150);
}

#[test]
fn log_prob_matches_direct_formula() {
    for &(d, c) in &[(1, 0), (1, 2), (2, 1), (3, 2), (5, 0), (5, 3)] {
        for cfg in [small_config(), MafConfig::default()] {
            let (maf, theta, x) = flow(&cfg, d, c, 10 + d as u64);
            let lp = maf.log_prob(&theta, &x).unwrap();
            for j in 0..theta.ncols() {
                let xc: Vec<f64> = if c > 0 {
                    x.column(j).iter().copied().collect()
                } else {
                    vec![]
                };
                let th: Vec<f64> = theta.column(j).iter().copied().collect();
                let direct = direct_log_prob(&maf, &th, &xc);
                assert!(
                    (lp[j] - direct).abs() <= 1e-12 * (1.0 + direct.abs()),
                    "D={d} C={c} column {j}: {} vs {direct}",
                    lp[j]
                );
            }
        }
    }
}

#[test]
fn standardization_uses_finite_columns_and_unbiased_std() {
    let mut theta =
        DMatrix::from_row_slice(2, 5, &[1.0, 2.0, 3.0, 4.0, 100.0, 5.0, 5.0, 5.0, 5.0, 7.0]);
    let mut x = DMatrix::from_row_slice(1, 5, &[0.0, 1.0, 2.0, 3.0, f64::NAN]);
    let maf = Maf::new(&small_config(), &theta, &x, 0).unwrap();
    let ts = maf.input_standardization();
    // Column 4 is excluded (NaN in x): θ₁ = 1..4 → mean 2.5, unbiased std √(5/3).
    assert!((ts.mean[0] - 2.5).abs() < 1e-15);
    assert!((ts.std[0] - (5.0f64 / 3.0).sqrt()).abs() < 1e-15);
    // Constant θ₂ → std floored at 1e-14.
    assert_eq!(ts.mean[1], 5.0);
    assert_eq!(ts.std[1], 1e-14);
    let xs = maf.condition_standardization();
    assert!((xs.mean[0] - 1.5).abs() < 1e-15);
    // Constant x → floored at 1e-7.
    x.fill(2.0);
    theta[(0, 4)] = f64::INFINITY;
    let maf = Maf::new(&small_config(), &theta, &x, 0).unwrap();
    assert_eq!(maf.condition_standardization().std[0], 1e-7);
    assert!((maf.input_standardization().mean[0] - 2.5).abs() < 1e-15);
    // The standardization is part of the density: log q changes by −Σ log σ_θ.
    let maf = Maf::new(
        &small_config(),
        &theta.columns(0, 4).into_owned(),
        &x.columns(0, 4).into_owned(),
        0,
    )
    .unwrap();
    let th = [2.0, 5.0];
    let direct = direct_log_prob(&maf, &th, &[2.0]);
    let lp = maf
        .log_prob(
            &DMatrix::from_column_slice(2, 1, &th),
            &DMatrix::from_element(1, 1, 2.0),
        )
        .unwrap();
    assert!((lp[0] - direct).abs() < 1e-9 * direct.abs());
}

#[test]
fn made_outputs_depend_only_on_earlier_inputs() {
    for &(d, c) in &[(1, 2), (2, 0), (5, 3), (5, 0)] {
        let (maf, _, _) = flow(&MafConfig::default(), d, c, 3);
        let masked: Vec<f64> = maf
            .params()
            .iter()
            .zip(maf.param_mask())
            .map(|(p, m)| p * m)
            .collect();
        let made = &maf.made_layouts()[1];
        let h = maf.config().hidden_features;
        let nb = maf.config().num_blocks;
        let eval = |z: &[f64], cx: &[f64]| -> Vec<f64> {
            let mut ctx = vec![0.0; h];
            let mut hid = vec![0.0; (nb + 1) * h];
            let mut out = vec![0.0; 2 * d];
            made.forward(
                &masked,
                maf.config().activation,
                z,
                cx,
                1,
                MadeActs {
                    ctx: &mut ctx,
                    hid: &mut hid,
                    out: &mut out,
                },
                ContextColumns::PerColumn,
                &mut [],
            );
            out
        };
        let mut r = rng(9);
        let z: Vec<f64> = (0..d).map(|_| r.random_range(-2.0..2.0)).collect();
        let cx: Vec<f64> = (0..c).map(|_| r.random_range(-2.0..2.0)).collect();
        let base = eval(&z, &cx);
        for i in 0..d {
            // Change inputs i.. (degrees i+1..D): outputs of dimensions 0..=i are unchanged.
            let mut z2 = z.clone();
            for v in &mut z2[i..] {
                *v += r.random_range(0.5..3.0);
            }
            let out = eval(&z2, &cx);
            for dd in 0..=i {
                assert_eq!(
                    out[2 * dd].to_bits(),
                    base[2 * dd].to_bits(),
                    "D={d}: a_{dd} changed with input {i}"
                );
                assert_eq!(out[2 * dd + 1].to_bits(), base[2 * dd + 1].to_bits());
            }
            // ... and the next one does depend on input i.
            if i + 1 < d {
                assert_ne!(out[2 * (i + 1)], base[2 * (i + 1)]);
            }
        }
        if c > 0 {
            // The context reaches every output whose degree exceeds some hidden degree:
            // all outputs for D = 1 (hidden degrees 0), all but the first dimension's
            // otherwise (hidden degrees ≥ 1, so (a₁, b₁) are plain biases, as in the reference).
            let out = eval(&z, &cx.iter().map(|v| v + 1.0).collect::<Vec<_>>());
            let first = if d == 1 { 0 } else { 2 };
            assert!((first..2 * d).all(|o| out[o] != base[o]));
            assert!((0..first).all(|o| out[o] == base[o]));
        }
    }
}

#[test]
fn inverse_then_forward_returns_the_noise() {
    for &(d, c) in &[(1, 1), (2, 0), (3, 2), (5, 3)] {
        let (maf, _, x) = flow(&MafConfig::default(), d, c, 4);
        let mut r = rng(5);
        let u = DMatrix::from_fn(d, 300, |_, _| StandardNormal.sample(&mut r));
        let x0: Vec<f64> = x.column(0).iter().copied().collect();
        let theta = maf.inverse(&u, &x0).unwrap();
        let xs = DMatrix::from_fn(c, 300, |i, _| x0[i]);
        let u2 = maf.transform_to_noise(&theta, &xs).unwrap();
        let err = (&u2 - &u).abs().max();
        assert!(err < 1e-9, "D={d} C={c}: max |u − f(f⁻¹(u))| = {err:e}");
    }
}

#[test]
fn sample_is_seeded_and_consistent_with_log_prob() {
    let (maf, _, x) = flow(&MafConfig::default(), 2, 2, 6);
    let x0: Vec<f64> = x.column(3).iter().copied().collect();
    let a = maf.sample(500, &x0, &mut rng(1)).unwrap();
    let b = maf.sample(500, &x0, &mut rng(1)).unwrap();
    assert_eq!(a, b);
    assert!(a.iter().all(|v| v.is_finite()));
    // The noise these samples came from is standard normal: mean ≈ 0, variance ≈ 1.
    let u = maf
        .transform_to_noise(&a, &DMatrix::from_fn(2, 500, |i, _| x0[i]))
        .unwrap();
    let mean = u.sum() / 1000.0;
    let var = u.iter().map(|v| v * v).sum::<f64>() / 1000.0;
    assert!(
        mean.abs() < 0.15 && (var - 1.0).abs() < 0.15,
        "mean {mean}, var {var}"
    );
}

#[test]
fn density_integrates_to_one() {
    // D = 1: trapezoid rule on a fine grid.
    let (maf, theta, x) = flow(&MafConfig::default(), 1, 2, 7);
    let x0: Vec<f64> = x.column(0).iter().copied().collect();
    let s = maf.sample(4000, &x0, &mut rng(2)).unwrap();
    let (lo, hi) = (
        s.min() - 10.0 * theta.row(0).variance().sqrt(),
        s.max() + 10.0 * theta.row(0).variance().sqrt(),
    );
    let n = 200_001;
    let grid = DMatrix::from_fn(1, n, |_, j| lo + (hi - lo) * j as f64 / (n - 1) as f64);
    let xs = DMatrix::from_fn(2, n, |i, _| x0[i]);
    let lp = maf.log_prob(&grid, &xs).unwrap();
    let hstep = (hi - lo) / (n - 1) as f64;
    let total: f64 = lp.iter().map(|v| v.exp()).sum::<f64>() * hstep
        - 0.5 * hstep * (lp[0].exp() + lp[n - 1].exp());
    assert!((total - 1.0).abs() < 1e-3, "D=1 integral {total}");

    // D = 2: midpoint rule on a 700 × 700 grid covering the samples with margin.
    let (maf, _, x) = flow(&MafConfig::default(), 2, 1, 8);
    let x0: Vec<f64> = x.column(0).iter().copied().collect();
    let s = maf.sample(4000, &x0, &mut rng(3)).unwrap();
    let m = 700;
    let mut bounds = Vec::new();
    for i in 0..2 {
        let row = s.row(i);
        let w = row.max() - row.min();
        bounds.push((row.min() - 0.75 * w, row.max() + 0.75 * w));
    }
    let (dx, dy) = (
        (bounds[0].1 - bounds[0].0) / m as f64,
        (bounds[1].1 - bounds[1].0) / m as f64,
    );
    let grid = DMatrix::from_fn(2, m * m, |i, j| {
        let idx = if i == 0 { j % m } else { j / m };
        bounds[i].0 + (idx as f64 + 0.5) * if i == 0 { dx } else { dy }
    });
    let xs = DMatrix::from_element(1, m * m, x0[0]);
    let lp = maf.log_prob(&grid, &xs).unwrap();
    let total: f64 = lp.iter().map(|v| v.exp()).sum::<f64>() * dx * dy;
    assert!((total - 1.0).abs() < 1e-3, "D=2 integral {total}");
}

#[test]
fn results_do_not_depend_on_the_number_of_threads() {
    for precision in [Precision::F64, Precision::F32] {
        let (mut maf, _, _) = flow(&MafConfig::default(), 3, 2, 11);
        maf.set_precision(precision);
        same_results_for_1_and_2_threads(&maf);
    }
}

fn same_results_for_1_and_2_threads(maf: &Maf) {
    let (theta, x) = data(3, 2, 1000, 12);
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let mut ws = maf.workspace();
            let mut lp = vec![0.0; 1000];
            maf.forward(&mut ws, theta.as_view(), x.as_view(), &mut lp)
                .unwrap();
            let w: Vec<f64> = (0..1000).map(|j| (j as f64).sin()).collect();
            let mut g = vec![0.0; maf.num_params()];
            maf.backward(&mut ws, &w, Gradients::params(&mut g))
                .unwrap();
            let s = maf.sample(700, &[0.1, 0.2], &mut rng(4)).unwrap();
            let (_, tg) = maf.log_prob_grad_input(&theta, &x).unwrap();
            (lp, g, s, tg)
        })
    };
    let (a, b) = (run(1), run(2));
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&a.0), bits(&b.0));
    assert_eq!(bits(&a.1), bits(&b.1));
    assert_eq!(bits(a.2.as_slice()), bits(b.2.as_slice()));
    assert_eq!(bits(a.3.as_slice()), bits(b.3.as_slice()));
}

#[test]
fn user_errors_are_reported() {
    let (theta, x) = data(2, 3, 20, 1);
    let maf = Maf::new(&small_config(), &theta, &x, 0).unwrap();
    let err = maf
        .log_prob(&DMatrix::zeros(3, 4), &DMatrix::zeros(3, 4))
        .unwrap_err();
    assert!(matches!(err, FlowError::DimensionMismatch { .. }), "{err}");
    assert!(err.to_string().contains("expected 2, found 3"), "{err}");
    assert!(
        maf.log_prob(&DMatrix::zeros(2, 4), &DMatrix::zeros(3, 5))
            .is_err()
    );
    assert!(maf.sample(3, &[0.0], &mut rng(0)).is_err());
    assert!(maf.sample(3, &[0.0, f64::NAN, 1.0], &mut rng(0)).is_err());
    let mut ws = maf.workspace();
    assert!(
        maf.backward(
            &mut ws,
            &[1.0],
            Gradients::params(&mut vec![0.0; maf.num_params()])
        )
        .is_err()
    );
    assert!(Maf::new(&small_config(), &theta, &DMatrix::zeros(3, 19), 0).is_err());
    let nan = DMatrix::from_element(2, 5, f64::NAN);
    assert!(matches!(
        Maf::new(&small_config(), &nan, &DMatrix::zeros(1, 5), 0),
        Err(FlowError::InsufficientData {
            found: 0,
            total: 5,
            ..
        })
    ));
    let bad = MafConfig {
        num_transforms: 0,
        ..MafConfig::default()
    };
    assert!(matches!(
        Maf::new(&bad, &theta, &x, 0),
        Err(FlowError::InvalidConfig(_))
    ));
}
