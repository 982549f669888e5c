//! The mixture density network: architecture, the log-density against a direct evaluation,
//! gradients against central differences, normalisation, sampling, thread independence,
//! precision, save/load and errors.

use nalgebra::{DMatrix, DVector};
use rand::Rng;
use simfer_flows::mdn::{EPSILON, Mixture, OutputLayout};
use simfer_flows::testing::Conformance;
use simfer_flows::{
    ConditionalDensityEstimator, Estimator, EstimatorConfig, EstimatorKind, FlowError, Gradients,
    Mdn, MdnConfig, Parameterized, Precision,
};

use crate::common::{data, rng};

fn config(precision: Precision) -> MdnConfig {
    MdnConfig {
        hidden_features: 9,
        num_components: 3,
        precision,
        ..MdnConfig::default()
    }
}

/// An MDN whose parameters are perturbed away from the initialisation (which has near-zero
/// logit, diagonal and upper rows), so every part matters.
pub(crate) fn mdn(
    cfg: &MdnConfig,
    d: usize,
    c: usize,
    seed: u64,
) -> (Mdn, DMatrix<f64>, DMatrix<f64>) {
    let (theta, x) = data(d, c, 64, seed);
    let mut m = if c > 0 {
        Mdn::new(cfg, &theta, &x, seed).unwrap()
    } else {
        Mdn::new_unconditional(cfg, &theta, seed).unwrap()
    };
    let mut r = rng(seed + 100);
    for p in m.params_mut() {
        *p += r.random_range(-0.3..0.3);
    }
    (m, theta, x)
}

fn relu_layer(p: &[f64], l: &simfer_flows::nn::Dense, x: &[f64], relu: bool) -> Vec<f64> {
    (0..l.out_dim)
        .map(|r| {
            let mut s = p[l.bias_range().start + r];
            for (c, v) in x.iter().enumerate() {
                s += p[l.offset + r + c * l.out_dim] * v;
            }
            if relu { s.max(0.0) } else { s }
        })
        .collect()
}

fn softplus(a: f64) -> f64 {
    a.max(0.0) + (-a.abs()).exp().ln_1p()
}

/// The components of the MDN at `x` from the formulas of the reference (§2.1), with the
/// network evaluated by hand: (log-weights, means, factors A_k, precisions A_kᵀA_k + εI),
/// all in the standardized input space.
#[allow(clippy::type_complexity)]
fn direct_components(
    m: &Mdn,
    x: &[f64],
) -> (
    Vec<f64>,
    Vec<DVector<f64>>,
    Vec<DMatrix<f64>>,
    Vec<DMatrix<f64>>,
) {
    let p = m.params();
    let xs = m.condition_standardization();
    let mut h: Vec<f64> = (0..x.len())
        .map(|i| (x[i] - xs.mean[i]) / xs.std[i])
        .collect();
    let layers = &m.network().layers;
    for (i, l) in layers.iter().enumerate() {
        h = relu_layer(p, l, &h, i + 1 < layers.len());
    }
    let (d, k) = (m.input_dim(), m.num_components());
    let logits = &h[0..k];
    let lse = logits.iter().map(|v| v.exp()).sum::<f64>().ln();
    let lw = logits.iter().map(|v| v - lse).collect();
    let means = (0..k)
        .map(|c| DVector::from_iterator(d, (0..d).map(|i| h[k + c * d + i])))
        .collect();
    let u = d * (d - 1) / 2;
    let mut factors = Vec::new();
    let mut precisions = Vec::new();
    for c in 0..k {
        let mut a = DMatrix::zeros(d, d);
        for i in 0..d {
            a[(i, i)] = softplus(h[k + k * d + c * d + i]);
        }
        // Row-major upper triangle: (0,1), (0,2), …, (1,2), …
        let mut t = 0;
        for r in 0..d {
            for col in r + 1..d {
                a[(r, col)] = h[k + 2 * k * d + c * u + t];
                t += 1;
            }
        }
        precisions.push(a.transpose() * &a + DMatrix::identity(d, d) * EPSILON);
        factors.push(a);
    }
    (lw, means, factors, precisions)
}

fn logsumexp(v: &[f64]) -> f64 {
    let m = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    m + v.iter().map(|x| (x - m).exp()).sum::<f64>().ln()
}

/// log q(θ | x) with the reference's normaliser, and with the exact one (nalgebra's
/// Cholesky of the precision), written out with explicit matrices.
fn direct_log_prob(m: &Mdn, theta: &[f64], x: &[f64]) -> (f64, f64) {
    let (lw, means, factors, precisions) = direct_components(m, x);
    let ts = m.input_standardization();
    let d = theta.len();
    let z = DVector::from_iterator(d, (0..d).map(|i| (theta[i] - ts.mean[i]) / ts.std[i]));
    let ln2pi = (2.0 * std::f64::consts::PI).ln();
    let mut quirk = Vec::new();
    let mut exact = Vec::new();
    for k in 0..lw.len() {
        let delta = &z - &means[k];
        let quad = (delta.transpose() * &precisions[k] * &delta)[(0, 0)];
        let sum_log_diag: f64 = (0..d).map(|i| factors[k][(i, i)].ln()).sum();
        let chol = precisions[k].clone().cholesky().unwrap();
        let log_det: f64 = 2.0 * chol.l().diagonal().iter().map(|v| v.ln()).sum::<f64>();
        quirk.push(lw[k] - 0.5 * d as f64 * ln2pi + sum_log_diag - 0.5 * quad);
        exact.push(lw[k] - 0.5 * d as f64 * ln2pi + 0.5 * log_det - 0.5 * quad);
    }
    let jac: f64 = -ts.std.iter().map(|s| s.ln()).sum::<f64>();
    (logsumexp(&quirk) + jac, logsumexp(&exact) + jac)
}

#[test]
fn the_default_mdn_conforms() {
    let report = Conformance::for_config(EstimatorConfig::Mdn(MdnConfig::default())).run();
    println!("{report}");
    report.assert_passed();
    assert_eq!(report.kind, "mdn");
    assert!(report.checks.len() >= 25, "{report}");
}

#[test]
fn parameter_count_is_the_references() {
    let (theta, x) = data(2, 2, 50, 1);
    let m = Mdn::new(&MdnConfig::default(), &theta, &x, 0).unwrap();
    assert_eq!(m.num_params(), 5_760);
    assert_eq!(m.kind(), "mdn");
    assert_eq!(m.output_layout().len(), 60);
    // D = C = 10: 36 760, as the reference's `build_mdn` counts (checked with sbi 0.27).
    let (theta, x) = data(10, 10, 50, 1);
    let m = Mdn::new(&MdnConfig::default(), &theta, &x, 0).unwrap();
    assert_eq!(m.num_params(), 36_760);
    // General: hidden C·H + H, (L − 1)(H² + H), output H·R + R.
    let cfg = MdnConfig {
        hidden_features: 7,
        num_components: 5,
        num_hidden_layers: 3,
        ..MdnConfig::default()
    };
    let (theta, x) = data(3, 4, 50, 1);
    let m = Mdn::new(&cfg, &theta, &x, 0).unwrap();
    let r = 5 * (1 + 2 * 3 + 3);
    assert_eq!(m.output_layout().len(), r);
    assert_eq!(m.num_params(), 4 * 7 + 7 + 2 * (49 + 7) + 7 * r + r);
}

#[test]
fn output_layout_orders_the_upper_triangle_by_rows() {
    let l = OutputLayout {
        dim: 4,
        num_components: 2,
    };
    assert_eq!(l.logits(), 0..2);
    assert_eq!(l.means(), 2..10);
    assert_eq!(l.diag(), 10..18);
    assert_eq!(l.upper(), 18..30);
    let order: Vec<usize> = [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]
        .iter()
        .map(|&(r, c)| l.upper_entry(1, r, c))
        .collect();
    assert_eq!(order, (24..30).collect::<Vec<_>>());
}

#[test]
fn initialisation_gives_uniform_weights_and_identity_precisions() {
    let (theta, x) = data(3, 2, 80, 4);
    let m = Mdn::new(&MdnConfig::default(), &theta, &x, 9).unwrap();
    let mix = m.mixture(&[0.3, 1.0]).unwrap();
    for lw in mix.log_weights() {
        assert!((lw + 10f64.ln()).abs() < 1e-2, "log-weight {lw}");
    }
    for p in mix.precisions() {
        assert!((p - DMatrix::identity(3, 3)).amax() < 1e-2, "{p}");
    }
    // The means keep PyTorch's default initialization: not all near zero.
    assert!(mix.means().iter().any(|m| m.amax() > 0.05));
}

#[test]
fn log_prob_matches_a_direct_evaluation() {
    for &(d, c) in &[(1, 2), (2, 2), (4, 3), (2, 0)] {
        let (m, theta, x) = mdn(&config(Precision::F64), d, c, 3 + d as u64);
        let lp = m.log_prob(&theta, &x).unwrap();
        let mut ws = m.workspace();
        let mut fwd = vec![0.0; theta.ncols()];
        m.forward(&mut ws, theta.as_view(), x.as_view(), &mut fwd)
            .unwrap();
        for j in 0..theta.ncols() {
            let xj: Vec<f64> = x.column(j).iter().copied().collect();
            let tj: Vec<f64> = theta.column(j).iter().copied().collect();
            let (quirk, exact) = direct_log_prob(&m, &tj, &xj);
            assert!(
                (lp[j] - quirk).abs() < 1e-11 * (1.0 + quirk.abs()),
                "D={d} C={c} col {j}: {} vs {quirk}",
                lp[j]
            );
            assert!((fwd[j] - quirk).abs() < 1e-11 * (1.0 + quirk.abs()));
            // The mixture API: the same density in the standardized space, and the exact
            // normaliser.
            let mix = m.mixture(&xj).unwrap();
            let ts = m.input_standardization();
            let z: Vec<f64> = (0..d).map(|i| (tj[i] - ts.mean[i]) / ts.std[i]).collect();
            let jac: f64 = -ts.std.iter().map(|s| s.ln()).sum::<f64>();
            assert!((mix.log_prob(&z).unwrap() + jac - quirk).abs() < 1e-11 * (1.0 + quirk.abs()));
            assert!(
                (mix.log_prob_exact(&z).unwrap() + jac - exact).abs() < 1e-11 * (1.0 + exact.abs())
            );
            assert!(exact > quirk, "the exact normaliser is the larger one");
        }
    }
}

/// `Σ_j w_j log q_j` in f64.
fn weighted(m: &Mdn, theta: &DMatrix<f64>, x: &DMatrix<f64>, w: &[f64]) -> f64 {
    let lp = m.log_prob(theta, x).unwrap();
    lp.iter().zip(w).map(|(a, b)| a * b).sum()
}

fn assert_close(fd: f64, an: f64, what: &str) {
    let err = (fd - an).abs() / fd.abs().max(an.abs()).max(1e-2);
    assert!(err < 1e-6, "{what}: fd {fd} analytic {an} (rel {err:.2e})");
}

#[test]
fn gradients_match_central_differences() {
    for &(d, c) in &[(1, 2), (2, 3), (4, 2), (3, 0)] {
        let (mut m, theta, x) = mdn(&config(Precision::F64), d, c, 10 + d as u64);
        let n = 6;
        let theta = theta.columns(0, n).into_owned();
        let x = x.columns(0, n).into_owned();
        let mut r = rng(5);
        let w: Vec<f64> = (0..n).map(|_| r.random_range(-1.0..1.0)).collect();
        let mut ws = m.workspace();
        let mut lp = vec![0.0; n];
        m.forward(&mut ws, theta.as_view(), x.as_view(), &mut lp)
            .unwrap();
        let mut gp = vec![0.0; m.num_params()];
        let mut gi = vec![0.0; d * n];
        let mut gc = vec![0.0; c * n];
        let grads = Gradients::params(&mut gp).with_input(&mut gi);
        let grads = if c > 0 {
            grads.with_condition(&mut gc)
        } else {
            grads
        };
        m.backward(&mut ws, &w, grads).unwrap();
        let h = 1e-6;
        for i in 0..m.num_params() {
            let p0 = m.params()[i];
            m.params_mut()[i] = p0 + h;
            let lp_ = weighted(&m, &theta, &x, &w);
            m.params_mut()[i] = p0 - h;
            let lm = weighted(&m, &theta, &x, &w);
            m.params_mut()[i] = p0;
            assert_close(
                (lp_ - lm) / (2.0 * h),
                gp[i],
                &format!("D={d} C={c} param {i}"),
            );
        }
        for i in 0..d * n {
            let mut t = theta.clone();
            t.as_mut_slice()[i] += h;
            let lp_ = weighted(&m, &t, &x, &w);
            t.as_mut_slice()[i] -= 2.0 * h;
            let lm = weighted(&m, &t, &x, &w);
            assert_close((lp_ - lm) / (2.0 * h), gi[i], &format!("D={d} input {i}"));
        }
        for i in 0..c * n {
            let mut xx = x.clone();
            xx.as_mut_slice()[i] += h;
            let lp_ = weighted(&m, &theta, &xx, &w);
            xx.as_mut_slice()[i] -= 2.0 * h;
            let lm = weighted(&m, &theta, &xx, &w);
            assert_close(
                (lp_ - lm) / (2.0 * h),
                gc[i],
                &format!("D={d} condition {i}"),
            );
        }
        if c > 0 {
            let (_, gcx) = m.log_prob_grad_condition(&theta, &x).unwrap();
            let mut ws = m.workspace();
            m.forward(&mut ws, theta.as_view(), x.as_view(), &mut lp)
                .unwrap();
            let mut gc1 = vec![0.0; c * n];
            m.backward(
                &mut ws,
                &vec![1.0; n],
                Gradients::default().with_condition(&mut gc1),
            )
            .unwrap();
            for (a, b) in gcx.iter().zip(&gc1) {
                assert!((a - b).abs() < 1e-12 * (1.0 + a.abs()));
            }
        }
        // log_prob_grad_input: the same input gradient with unit weights.
        let (_, g) = m.log_prob_grad_input(&theta, &x).unwrap();
        let mut ws = m.workspace();
        m.forward(&mut ws, theta.as_view(), x.as_view(), &mut lp)
            .unwrap();
        let mut gi1 = vec![0.0; d * n];
        m.backward(&mut ws, &vec![1.0; n], Gradients::input(&mut gi1))
            .unwrap();
        for (a, b) in g.iter().zip(&gi1) {
            assert!((a - b).abs() < 1e-12 * (1.0 + a.abs()));
        }
    }
}

#[test]
fn raw_output_backprop_matches_central_differences() {
    let (mut m, _, x) = mdn(&config(Precision::F64), 3, 2, 21);
    let n = 5;
    let x = x.columns(0, n).into_owned();
    let r = m.output_layout().len();
    let mut rr = rng(8);
    let g = DMatrix::from_fn(r, n, |_, _| rr.random_range(-1.0..1.0));
    let dot = |m: &Mdn, x: &DMatrix<f64>| -> f64 {
        let mut out = vec![0.0; r * n];
        m.raw_outputs(&mut m.workspace(), x.as_view(), &mut out)
            .unwrap();
        out.iter().zip(g.iter()).map(|(a, b)| a * b).sum()
    };
    let mut ws = m.workspace();
    let mut gp = vec![0.0; m.num_params()];
    let mut gc = vec![0.0; 2 * n];
    m.backward_raw_outputs(
        &mut ws,
        x.as_view(),
        g.as_view(),
        Gradients::params(&mut gp).with_condition(&mut gc),
    )
    .unwrap();
    let h = 1e-6;
    for i in 0..m.num_params() {
        let p0 = m.params()[i];
        m.params_mut()[i] = p0 + h;
        let a = dot(&m, &x);
        m.params_mut()[i] = p0 - h;
        let b = dot(&m, &x);
        m.params_mut()[i] = p0;
        assert_close((a - b) / (2.0 * h), gp[i], &format!("param {i}"));
    }
    for i in 0..2 * n {
        let mut xx = x.clone();
        xx.as_mut_slice()[i] += h;
        let a = dot(&m, &xx);
        xx.as_mut_slice()[i] -= 2.0 * h;
        let b = dot(&m, &xx);
        assert_close((a - b) / (2.0 * h), gc[i], &format!("condition {i}"));
    }
    // A column of raw outputs decodes to the mixture at that condition.
    let mut out = vec![0.0; r * n];
    m.raw_outputs(&mut ws, x.as_view(), &mut out).unwrap();
    let xj: Vec<f64> = x.column(2).iter().copied().collect();
    assert_eq!(
        m.mixture_from_outputs(&out[2 * r..3 * r]).unwrap(),
        m.mixture(&xj).unwrap()
    );
}

/// Sets the output layer's weights to 0 and its biases so that the mixture is the same
/// for every condition: logits, means (K × D), diagonal factors (K × D, after softplus)
/// and strict-upper entries (K × D(D−1)/2).
fn fix_mixture(m: &mut Mdn, logits: &[f64], means: &[f64], diag: &[f64], upper: &[f64]) {
    let out = *m.network().layers.last().unwrap();
    let l = m.output_layout();
    let p = m.params_mut();
    p[out.weight_range()].fill(0.0);
    let b = out.bias_range().start;
    let inv_softplus = |a: f64| a.exp_m1().ln();
    for (i, v) in logits.iter().enumerate() {
        p[b + l.logits().start + i] = *v;
    }
    for (i, v) in means.iter().enumerate() {
        p[b + l.means().start + i] = *v;
    }
    for (i, v) in diag.iter().enumerate() {
        p[b + l.diag().start + i] = inv_softplus(*v);
    }
    for (i, v) in upper.iter().enumerate() {
        p[b + l.upper().start + i] = *v;
    }
}

#[test]
fn normalisation_is_the_references_and_exactly_one_with_the_exact_normaliser() {
    // 1-D: three components, two of them wide (small factors), where the ε of the
    // precision matters: mass = Σ_k β_k a_k / √(a_k² + ε).
    let (_, x) = data(1, 2, 64, 5);
    let theta = DMatrix::from_fn(1, 64, |_, j| 0.3 * j as f64 - 5.0);
    let mut m = Mdn::new(&config(Precision::F64), &theta, &x, 5).unwrap();
    let logits = [1.0, 0.5, -0.5];
    let a = [0.05, 0.12, 1.5];
    fix_mixture(&mut m, &logits, &[-1.0, 2.0, 0.5], &a, &[]);
    let lse = logsumexp(&logits);
    let expected: f64 = (0..3)
        .map(|k| (logits[k] - lse).exp() * a[k] / (a[k] * a[k] + EPSILON).sqrt())
        .sum();
    assert!(expected < 0.99, "the quirk is visible: {expected}");
    let ts = m.input_standardization().clone();
    // Grid over ±40 standard deviations of the widest component (in z), spacing ≤ 1/20
    // of the narrowest: the rectangle rule is exact to ~1e-12 for Gaussians.
    let (lo, hi, step) = (-800.0, 800.0, 0.02);
    let zs: Vec<f64> = (0..((hi - lo) / step) as usize)
        .map(|i| lo + step * i as f64)
        .collect();
    let grid = DMatrix::from_fn(1, zs.len(), |_, j| ts.std[0] * zs[j] + ts.mean[0]);
    let xs = DMatrix::from_fn(2, zs.len(), |i, _| x[(i, 0)]);
    let lp = m.log_prob(&grid, &xs).unwrap();
    let mass: f64 = lp.iter().map(|v| v.exp()).sum::<f64>() * step * ts.std[0];
    assert!((mass - expected).abs() < 1e-9, "1-D: {mass} vs {expected}");
    let mix = m.mixture(&[x[(0, 0)], x[(1, 0)]]).unwrap();
    assert!((mix.reference_mass() - expected).abs() < 1e-12);
    let exact: f64 = zs
        .iter()
        .map(|z| mix.log_prob_exact(&[*z]).unwrap().exp())
        .sum::<f64>()
        * step;
    assert!((exact - 1.0).abs() < 1e-3, "1-D exact: {exact}");

    // 2-D: mass = Σ_k β_k det(A_k) / √det(A_kᵀA_k + εI).
    let (theta, x) = data(2, 2, 64, 6);
    let mut m = Mdn::new(&config(Precision::F64), &theta, &x, 6).unwrap();
    let logits = [0.0, 0.7, -0.3];
    let diag = [0.08, 0.1, 0.15, 0.06, 0.5, 0.4];
    let upper = [0.02, -0.05, 0.1];
    fix_mixture(
        &mut m,
        &logits,
        &[0.0, 1.0, -2.0, 0.5, 1.0, 1.0],
        &diag,
        &upper,
    );
    let lse = logsumexp(&logits);
    let expected: f64 = (0..3)
        .map(|k| {
            let a = DMatrix::from_row_slice(2, 2, &[diag[2 * k], upper[k], 0.0, diag[2 * k + 1]]);
            let p = a.transpose() * &a + DMatrix::identity(2, 2) * EPSILON;
            (logits[k] - lse).exp() * a.determinant() / p.determinant().sqrt()
        })
        .sum();
    assert!(expected < 0.99, "the quirk is visible: {expected}");
    let ts = m.input_standardization().clone();
    let (lo, hi, step) = (-300.0, 300.0, 0.5);
    let nz = ((hi - lo) / step) as usize;
    let x0 = [x[(0, 0)], x[(1, 0)]];
    let mix = m.mixture(&x0).unwrap();
    let mut mass = 0.0;
    let mut exact = 0.0;
    for a in 0..nz {
        let z0 = lo + step * a as f64;
        let grid = DMatrix::from_fn(2, nz, |i, b| {
            let z = if i == 0 { z0 } else { lo + step * b as f64 };
            ts.std[i] * z + ts.mean[i]
        });
        let xs = DMatrix::from_fn(2, nz, |i, _| x0[i]);
        let lp = m.log_prob(&grid, &xs).unwrap();
        mass += lp.iter().map(|v| v.exp()).sum::<f64>();
        for b in 0..nz {
            exact += mix
                .log_prob_exact(&[z0, lo + step * b as f64])
                .unwrap()
                .exp();
        }
    }
    mass *= step * step * ts.std[0] * ts.std[1];
    exact *= step * step;
    assert!((mass - expected).abs() < 1e-6, "2-D: {mass} vs {expected}");
    assert!((mix.reference_mass() - expected).abs() < 1e-12);
    assert!((exact - 1.0).abs() < 1e-3, "2-D exact: {exact}");
}

/// Φ(x) by the complementary error function (Numerical Recipes' erfcc, |error| < 1.2e-7).
fn normal_cdf(x: f64) -> f64 {
    let z = x.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t
        * (-z * z - 1.265_512_23
            + t * (1.000_023_68
                + t * (0.374_091_96
                    + t * (0.096_784_18
                        + t * (-0.186_288_06
                            + t * (0.278_868_07
                                + t * (-1.135_203_98
                                    + t * (1.488_515_87
                                        + t * (-0.822_152_23 + t * 0.170_872_77)))))))))
            .exp();
    if x >= 0.0 { 1.0 - 0.5 * r } else { 0.5 * r }
}

#[test]
fn samples_match_the_mixtures_moments_and_cdf() {
    // 2-D: sample mean and covariance against the closed form, computed here from the
    // components (covariance (A_kᵀA_k)⁻¹, the reference's sampling law), in θ space.
    let (m, _, x) = mdn(&MdnConfig::default(), 2, 2, 31);
    let x0: Vec<f64> = x.column(0).iter().copied().collect();
    let (lw, means, factors, _) = direct_components(&m, &x0);
    let ts = m.input_standardization();
    let s = DMatrix::from_diagonal(&DVector::from_column_slice(&ts.std));
    let mu = DVector::from_column_slice(&ts.mean);
    let mut mean = DVector::zeros(2);
    let mut second = DMatrix::zeros(2, 2);
    for k in 0..lw.len() {
        let w = lw[k].exp();
        let mk = &s * &means[k] + &mu;
        let ck = &s
            * (factors[k].transpose() * &factors[k])
                .try_inverse()
                .unwrap()
            * &s;
        mean += &mk * w;
        second += (ck + &mk * mk.transpose()) * w;
    }
    let cov = second - &mean * mean.transpose();
    let n = 400_000;
    let samples = m.sample(n, &x0, &mut rng(3)).unwrap();
    let sm = samples.column_mean();
    let centered = &samples - &sm * DMatrix::from_element(1, n, 1.0);
    let sc = &centered * centered.transpose() / (n as f64 - 1.0);
    for i in 0..2 {
        let se = (cov[(i, i)] / n as f64).sqrt();
        assert!(
            (sm[i] - mean[i]).abs() < 5.0 * se,
            "mean {i}: {} vs {}",
            sm[i],
            mean[i]
        );
        for j in 0..2 {
            // SE of a covariance entry ≲ √((σ_ii σ_jj + σ_ij²)/n) times a kurtosis factor.
            let se = (3.0 * (cov[(i, i)] * cov[(j, j)] + cov[(i, j)].powi(2)) / n as f64).sqrt();
            assert!(
                (sc[(i, j)] - cov[(i, j)]).abs() < 5.0 * se,
                "cov ({i},{j}): {} vs {}",
                sc[(i, j)],
                cov[(i, j)]
            );
        }
    }
    let mix = m.mixture(&x0).unwrap();
    let s_mix = mix.affine(&ts.std, &ts.mean).unwrap();
    assert!((s_mix.mean() - &mean).amax() < 1e-10);
    assert!((s_mix.covariance() - &cov).amax() < 1e-10);

    // 1-D: Kolmogorov–Smirnov against the mixture's CDF Σ_k w_k Φ(a_k (z − m_k)).
    let (m, _, x) = mdn(&MdnConfig::default(), 1, 2, 32);
    let x0: Vec<f64> = x.column(3).iter().copied().collect();
    let (lw, means, factors, _) = direct_components(&m, &x0);
    let ts = m.input_standardization();
    let n = 100_000;
    let samples = m.sample(n, &x0, &mut rng(4)).unwrap();
    let mut z: Vec<f64> = samples
        .iter()
        .map(|t| (t - ts.mean[0]) / ts.std[0])
        .collect();
    z.sort_by(f64::total_cmp);
    let cdf = |v: f64| -> f64 {
        (0..lw.len())
            .map(|k| lw[k].exp() * normal_cdf(factors[k][(0, 0)] * (v - means[k][0])))
            .sum()
    };
    let ks = z
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let f = cdf(*v);
            (f - i as f64 / n as f64)
                .abs()
                .max(((i + 1) as f64 / n as f64 - f).abs())
        })
        .fold(0.0, f64::max);
    // The 0.1 % critical value of the KS statistic is 1.95/√n.
    assert!(ks < 1.95 / (n as f64).sqrt(), "KS statistic {ks}");
}

#[test]
fn sampling_is_reproducible_and_uses_only_the_callers_rng() {
    let (m, _, _) = mdn(&MdnConfig::default(), 3, 2, 40);
    let a = m.sample(1000, &[0.2, 0.1], &mut rng(1)).unwrap();
    let b = m.sample(1000, &[0.2, 0.1], &mut rng(1)).unwrap();
    assert_eq!(a, b);
    let c = m.sample(1000, &[0.2, 0.1], &mut rng(2)).unwrap();
    assert_ne!(a, c);
}

#[test]
fn results_do_not_depend_on_the_number_of_threads() {
    for precision in [Precision::F64, Precision::F32] {
        let cfg = MdnConfig {
            precision,
            ..MdnConfig::default()
        };
        let (m, _, _) = mdn(&cfg, 3, 2, 50);
        let (theta, x) = data(3, 2, 700, 51);
        let r = m.output_layout().len();
        let g = DMatrix::from_fn(r, 700, |i, j| ((i * 7 + j) as f64).sin());
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let mut ws = m.workspace();
                let mut lp = vec![0.0; 700];
                m.forward(&mut ws, theta.as_view(), x.as_view(), &mut lp)
                    .unwrap();
                let w: Vec<f64> = (0..700).map(|j| (j as f64).cos()).collect();
                let mut gp = vec![0.0; m.num_params()];
                let mut gi = vec![0.0; 3 * 700];
                let mut gc = vec![0.0; 2 * 700];
                m.backward(
                    &mut ws,
                    &w,
                    Gradients::params(&mut gp)
                        .with_input(&mut gi)
                        .with_condition(&mut gc),
                )
                .unwrap();
                let mut out = vec![0.0; r * 700];
                m.raw_outputs(&mut ws, x.as_view(), &mut out).unwrap();
                let mut gr = vec![0.0; m.num_params()];
                m.backward_raw_outputs(
                    &mut ws,
                    x.as_view(),
                    g.as_view(),
                    Gradients::params(&mut gr),
                )
                .unwrap();
                let lpf = m.log_prob(&theta, &x).unwrap();
                let s = m.sample(500, &[0.0, 1.0], &mut rng(9)).unwrap();
                (lp, gp, gi, gc, out, gr, lpf, s)
            })
        };
        let one = run(1);
        let two = run(2);
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&one.0), bits(&two.0));
        assert_eq!(bits(&one.1), bits(&two.1));
        assert_eq!(bits(&one.2), bits(&two.2));
        assert_eq!(bits(&one.3), bits(&two.3));
        assert_eq!(bits(&one.4), bits(&two.4));
        assert_eq!(bits(&one.5), bits(&two.5));
        assert_eq!(bits(one.6.as_slice()), bits(two.6.as_slice()));
        assert_eq!(bits(one.7.as_slice()), bits(two.7.as_slice()));
    }
}

#[test]
fn f32_passes_agree_with_f64_passes() {
    let (m64, theta, x) = mdn(&config(Precision::F64), 3, 2, 60);
    let mut m32 = m64.clone();
    m32.set_precision(Precision::F32);
    let n = theta.ncols();
    let w: Vec<f64> = (0..n)
        .map(|j| -1.0 / n as f64 * (1.0 + (j % 3) as f64))
        .collect();
    let pass = |m: &Mdn| {
        let mut ws = m.workspace();
        let mut lp = vec![0.0; n];
        m.forward(&mut ws, theta.as_view(), x.as_view(), &mut lp)
            .unwrap();
        let mut gp = vec![0.0; m.num_params()];
        let mut gi = vec![0.0; 3 * n];
        m.backward(&mut ws, &w, Gradients::params(&mut gp).with_input(&mut gi))
            .unwrap();
        (lp, gp, gi)
    };
    let (l64, g64, i64_) = pass(&m64);
    let (l32, g32, i32_) = pass(&m32);
    let rel = |a: &[f64], b: &[f64]| {
        let num: f64 = a
            .iter()
            .zip(b)
            .map(|(x, y)| (x - y).powi(2))
            .sum::<f64>()
            .sqrt();
        num / b.iter().map(|y| y * y).sum::<f64>().sqrt()
    };
    for (a, b) in l32.iter().zip(&l64) {
        assert!((a - b).abs() < 1e-4 * (1.0 + b.abs()), "{a} vs {b}");
    }
    assert!(rel(&g32, &g64) < 1e-4, "{}", rel(&g32, &g64));
    assert!(rel(&i32_, &i64_) < 1e-4, "{}", rel(&i32_, &i64_));
    // Evaluation is f64 whatever the training precision.
    assert_eq!(
        m32.log_prob(&theta, &x).unwrap(),
        m64.log_prob(&theta, &x).unwrap()
    );
}

#[test]
fn unconditional_mdn_is_a_trainable_mixture() {
    let (m, theta, _) = mdn(&config(Precision::F64), 2, 0, 70);
    let none = DMatrix::zeros(0, theta.ncols());
    let lp = m.log_prob(&theta, &none).unwrap();
    assert!(lp.iter().all(|v| v.is_finite()));
    let s = m.sample(10, &[], &mut rng(1)).unwrap();
    assert_eq!(s.shape(), (2, 10));
    assert_eq!(m.mixture(&[]).unwrap().num_components(), 3);
}

#[test]
fn save_then_load_is_bit_identical() {
    let (m, theta, x) = mdn(&MdnConfig::default(), 3, 2, 80);
    let lp = m.log_prob(&theta, &x).unwrap();
    let bits = |v: &DVector<f64>| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    let back = Mdn::from_bytes(&m.to_bytes().unwrap()).unwrap();
    assert_eq!(back.params(), m.params());
    assert_eq!(back.config(), m.config());
    assert_eq!(bits(&back.log_prob(&theta, &x).unwrap()), bits(&lp));
    let back = Mdn::from_json(&m.to_json().unwrap()).unwrap();
    assert_eq!(bits(&back.log_prob(&theta, &x).unwrap()), bits(&lp));
    let dir = std::env::temp_dir().join(format!("simfer-flows-mdn-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("mdn.bin");
    m.save(&path).unwrap();
    let back = Mdn::load(&path).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(bits(&back.log_prob(&theta, &x).unwrap()), bits(&lp));
    let mut buf = Vec::new();
    m.write_to(&mut buf).unwrap();
    assert_eq!(Mdn::read_from(buf.as_slice()).unwrap().params(), m.params());

    // As an estimator chosen at run time: bytes, JSON, and inside a serde document.
    let e = Estimator::from(m.clone());
    assert_eq!(e.kind(), "mdn");
    assert_eq!(e.estimator_kind(), EstimatorKind::Mdn);
    let back = Estimator::from_bytes(&e.to_bytes().unwrap()).unwrap();
    assert!(back.downcast_ref::<Mdn>().is_some());
    assert_eq!(bits(&back.log_prob(&theta, &x).unwrap()), bits(&lp));
    let back = Estimator::from_json(&e.to_json().unwrap()).unwrap();
    assert_eq!(bits(&back.log_prob(&theta, &x).unwrap()), bits(&lp));
    let doc = serde_json::to_string(&e).unwrap();
    let back: Estimator = serde_json::from_str(&doc).unwrap();
    assert_eq!(bits(&back.log_prob(&theta, &x).unwrap()), bits(&lp));
    assert!(e.to_json().unwrap().contains("\"kind\":\"mdn\""));
}

#[test]
fn kind_and_config_are_chosen_at_run_time() {
    let kind: EstimatorKind = "MDN".parse().unwrap();
    assert_eq!(kind, EstimatorKind::Mdn);
    assert_eq!(
        kind.default_config(),
        EstimatorConfig::Mdn(MdnConfig::default())
    );
    let cfg: EstimatorConfig =
        serde_json::from_str(r#"{"kind": "mdn", "hidden_features": 8, "num_components": 4, "num_hidden_layers": 1, "standardize_input": true, "standardize_condition": false}"#)
            .unwrap();
    let (theta, x) = data(2, 3, 40, 1);
    let e = cfg.build(&theta, &x, 1).unwrap();
    let m = e.downcast_ref::<Mdn>().unwrap();
    assert_eq!(m.config().num_components, 4);
    assert_eq!(m.config().precision, Precision::F32);
    assert_eq!(m.condition_standardization().std, vec![1.0; 3]);
    m.check_architecture(
        &MdnConfig {
            hidden_features: 8,
            num_components: 4,
            num_hidden_layers: 1,
            standardize_condition: false,
            precision: Precision::F64,
            ..MdnConfig::default()
        },
        2,
        3,
    )
    .unwrap();
    assert!(matches!(
        m.check_architecture(&MdnConfig::default(), 2, 3),
        Err(FlowError::ArchitectureMismatch(_))
    ));
}

#[test]
fn bad_inputs_are_clear_errors() {
    let (theta, x) = data(2, 2, 40, 1);
    for bad in [
        MdnConfig {
            num_components: 0,
            ..MdnConfig::default()
        },
        MdnConfig {
            hidden_features: 0,
            ..MdnConfig::default()
        },
        MdnConfig {
            num_hidden_layers: 0,
            ..MdnConfig::default()
        },
    ] {
        let e = Mdn::new(&bad, &theta, &x, 0).unwrap_err();
        assert!(
            matches!(e, FlowError::InvalidConfig(ref s) if s.contains("at least 1")),
            "{e}"
        );
    }
    let m = Mdn::new(&MdnConfig::default(), &theta, &x, 0).unwrap();
    let wrong = DMatrix::zeros(3, 40);
    assert!(matches!(
        m.log_prob(&wrong, &x),
        Err(FlowError::DimensionMismatch { .. })
    ));
    assert!(matches!(
        m.log_prob(&theta, &wrong),
        Err(FlowError::DimensionMismatch { .. })
    ));
    let e = m.sample(5, &[0.0], &mut rng(0)).unwrap_err();
    assert!(e.to_string().contains("expected 2, found 1"), "{e}");
    assert!(matches!(
        m.sample(5, &[0.0, f64::NAN], &mut rng(0)),
        Err(FlowError::NonFinite(_))
    ));
    let mut ws = m.workspace();
    assert!(matches!(
        m.backward(&mut ws, &[1.0; 40], Gradients::default()),
        Err(FlowError::OutOfOrder(_))
    ));
    let mut out = vec![0.0; 3];
    assert!(matches!(
        m.raw_outputs(&mut ws, x.as_view(), &mut out),
        Err(FlowError::DimensionMismatch { .. })
    ));
    let r = m.output_layout().len();
    let g = DMatrix::zeros(r, 40);
    let mut gi = vec![0.0; 80];
    assert!(matches!(
        m.backward_raw_outputs(&mut ws, x.as_view(), g.as_view(), Gradients::input(&mut gi)),
        Err(FlowError::InvalidConfig(_))
    ));
    let g = DMatrix::zeros(r, 39);
    assert!(matches!(
        m.backward_raw_outputs(&mut ws, x.as_view(), g.as_view(), Gradients::default()),
        Err(FlowError::DimensionMismatch { .. })
    ));
    assert!(m.mixture_from_outputs(&[0.0; 5]).is_err());
    // A file whose parameters do not fit its architecture, or of another kind.
    let json = m.to_json().unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&json).unwrap();
    v["model"]["params"].as_array_mut().unwrap().pop();
    // (Sealed again: a changed file fails its checksum first.)
    simfer_flows::io::seal_json(&mut v);
    let e = Mdn::from_json(&v.to_string()).unwrap_err();
    assert!(
        matches!(e, FlowError::ArchitectureMismatch(ref s) if s.contains("5760")),
        "{e}"
    );
    let e = simfer_flows::Maf::from_bytes(&m.to_bytes().unwrap()).unwrap_err();
    assert!(matches!(e, FlowError::UnknownKind { .. }), "{e}");
    // Mixtures check their pieces.
    let lower = DMatrix::from_row_slice(2, 2, &[1.0, 0.0, 0.5, 1.0]);
    let mean = DVector::zeros(2);
    assert!(Mixture::new(vec![0.0], vec![mean.clone()], vec![lower], EPSILON).is_err());
    let neg = DMatrix::from_row_slice(2, 2, &[-1.0, 0.0, 0.0, 1.0]);
    assert!(Mixture::new(vec![0.0], vec![mean.clone()], vec![neg], EPSILON).is_err());
    let indefinite = DMatrix::from_row_slice(2, 2, &[1.0, 2.0, 2.0, 1.0]);
    assert!(Mixture::from_precisions(vec![0.0], vec![mean.clone()], vec![indefinite]).is_err());
    assert!(Mixture::new(vec![], vec![], vec![], EPSILON).is_err());
    let mix = Mixture::new(
        vec![0.0],
        vec![mean],
        vec![DMatrix::identity(2, 2)],
        EPSILON,
    )
    .unwrap();
    assert!(matches!(
        mix.log_prob(&[0.0]),
        Err(FlowError::DimensionMismatch { .. })
    ));
}

/// A small fit: θ | x is an equal mixture of N(x, 0.1²) and N(−x, 0.1²), which a mixture
/// density network represents exactly. After maximum-likelihood training with Adam, the
/// mixture at x = 1 puts about half its weight near each of ±1, with spreads near 0.1.
#[test]
fn a_small_fit_learns_a_bimodal_conditional() {
    let n = 2000;
    let mut r = rng(3);
    let x = DMatrix::from_fn(1, n, |_, _| r.random_range(0.5..1.5));
    let theta = DMatrix::from_fn(1, n, |_, j| {
        let sign = if r.random_bool(0.5) { 1.0 } else { -1.0 };
        let e: f64 = rand_distr::Distribution::sample(&rand_distr::StandardNormal, &mut r);
        sign * x[(0, j)] + 0.1 * e
    });
    let cfg = MdnConfig {
        hidden_features: 20,
        num_components: 2,
        ..MdnConfig::default()
    };
    let mut m = Mdn::new(&cfg, &theta, &x, 1).unwrap();
    let mut adam = simfer_flows::Adam::new(m.num_params(), 5e-3);
    let mut ws = m.workspace();
    let (b, mut lp) = (200, vec![0.0; 200]);
    let w = vec![-1.0 / b as f64; b];
    let mut grad = vec![0.0; m.num_params()];
    for step in 0..1500 {
        let start = (step * b) % n;
        let (t, c) = (theta.columns(start, b), x.columns(start, b));
        m.forward(&mut ws, t, c, &mut lp).unwrap();
        grad.fill(0.0);
        m.backward(&mut ws, &w, Gradients::params(&mut grad))
            .unwrap();
        simfer_flows::clip_grad_norm(&mut grad, 5.0);
        simfer_flows::Optimizer::step(&mut adam, m.params_mut(), &grad);
    }
    let ts = m.input_standardization().clone();
    let mix = m
        .mixture(&[1.0])
        .unwrap()
        .affine(&ts.std, &ts.mean)
        .unwrap();
    let mut comps: Vec<(f64, f64, f64)> = (0..2)
        .map(|k| {
            let sd = mix.sample_covariance_of(k)[(0, 0)].sqrt();
            (mix.means()[k][0], mix.weights()[k], sd)
        })
        .collect();
    comps.sort_by(|a, b| a.0.total_cmp(&b.0));
    eprintln!("(mean, weight, sd) at x = 1: {comps:?}");
    for ((mean, weight, sd), target) in comps.iter().zip([-1.0, 1.0]) {
        assert!((mean - target).abs() < 0.05, "{comps:?}");
        assert!((weight - 0.5).abs() < 0.05, "{comps:?}");
        assert!((sd - 0.1).abs() < 0.02, "{comps:?}");
    }
}
