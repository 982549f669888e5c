//! The non-atomic (MDN) APT loss: its value against the reference's formulas written out
//! with explicit product components, its gradient against central differences, the
//! proposal-equals-prior case, errors, and a two-round run on a linear Gaussian problem
//! with a closed-form posterior.

use nalgebra::{DMatrix, DVector};
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, StandardNormal};
use rand_xoshiro::Xoshiro256PlusPlus;
use simfer_distributions::{BoxUniform, LogNormal, MultivariateNormal, Prior};
use simfer_flows::{
    ConditionalDensityEstimator, Mdn, MdnConfig, Mixture, Parameterized, Precision, Standardization,
};
use simfer_snpe::{
    Batch, DataSplit, Loss, MaximumLikelihood, NonAtomicLoss, PriorTerm, SnpeError, Trainer,
    TrainingConfig, TrainingData,
};

use crate::mock::Gaussian;

fn rng(seed: u64) -> Xoshiro256PlusPlus {
    Xoshiro256PlusPlus::seed_from_u64(seed)
}

fn small(precision: Precision) -> MdnConfig {
    MdnConfig {
        hidden_features: 6,
        num_components: 3,
        precision,
        ..MdnConfig::default()
    }
}

/// An MDN with perturbed parameters for θ (`d × n`) from `prior` and x = θ + noise.
fn perturbed(
    cfg: &MdnConfig,
    prior: &dyn Prior,
    n: usize,
    seed: u64,
) -> (Mdn, DMatrix<f64>, DMatrix<f64>) {
    let mut r = rng(seed);
    let theta = prior.sample_batch(n, &mut r);
    let x = theta.map(|t| t + 0.3 * r.random_range(-1.0..1.0));
    let mut m = Mdn::new(cfg, &theta, &x, seed).unwrap();
    for p in m.params_mut() {
        *p += r.random_range(-0.3..0.3);
    }
    (m, theta, x)
}

fn gaussian_prior(d: usize) -> MultivariateNormal {
    scaled_prior(d, 1.0)
}

/// The Gaussian prior of the tests with its covariance scaled: the networks are built on
/// data of a quarter of the prior's variance, so that their components (precision ≈ 1 in
/// their z space) are narrower than the prior and every Λ_ik = P_i + Q_k − P₀ is positive
/// definite, as after a round of training.
fn scaled_prior(d: usize, scale: f64) -> MultivariateNormal {
    let cov = DMatrix::from_fn(d, d, |r, c| {
        scale * if r == c { 0.5 + 0.3 * r as f64 } else { 0.15 }
    });
    MultivariateNormal::new((0..d).map(|i| 0.4 - 0.3 * i as f64).collect(), cov).unwrap()
}

fn logsumexp(v: &[f64]) -> f64 {
    let m = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    m + v.iter().map(|x| (x - m).exp()).sum::<f64>().ln()
}

/// −log MoG_pp(z) as the reference computes it (§2.5): explicit product components with
/// inverses and determinants, normalized logits, and the components' log-densities from
/// the Cholesky factor of Λ. Everything in the estimator's z space; the proposal mixture is
/// mapped there from its own z space, the Gaussian prior z-scored with covariance
/// Σ/(σσᵀ).
fn direct_loss(
    est: &Mdn,
    proposal: &Mixture,
    proposal_stats: &Standardization,
    prior: Option<&MultivariateNormal>,
    theta: &[f64],
    x: &[f64],
) -> f64 {
    let d = theta.len();
    let st = est.input_standardization();
    let z = DVector::from_iterator(d, (0..d).map(|i| (theta[i] - st.mean[i]) / st.std[i]));
    let q = est.mixture(x).unwrap();
    let s = DMatrix::from_diagonal(&DVector::from_iterator(
        d,
        (0..d).map(|i| proposal_stats.std[i] / st.std[i]),
    ));
    let t = DVector::from_iterator(
        d,
        (0..d).map(|i| (proposal_stats.mean[i] - st.mean[i]) / st.std[i]),
    );
    let s_inv = s.clone().try_inverse().unwrap();
    let (p0, m0) = match prior {
        Some(p) => {
            let sig = DMatrix::from_diagonal(&DVector::from_column_slice(&st.std));
            let sig_inv = sig.clone().try_inverse().unwrap();
            let cov_z = &sig_inv * p.covariance() * &sig_inv;
            let m0 = &sig_inv * (p.loc() - DVector::from_column_slice(&st.mean));
            (cov_z.try_inverse().unwrap(), m0)
        }
        None => (DMatrix::zeros(d, d), DVector::zeros(d)),
    };
    let mut logits = Vec::new();
    let mut comps = Vec::new();
    for i in 0..proposal.num_components() {
        let mi = &s * &proposal.means()[i] + &t;
        let pi = &s_inv * &proposal.precisions()[i] * &s_inv;
        for k in 0..q.num_components() {
            let (mk, qk) = (&q.means()[k], &q.precisions()[k]);
            let lam = &pi + qk - &p0;
            let cov = lam.clone().try_inverse().unwrap();
            let c = &cov * (&pi * &mi + qk * mk - &p0 * &m0);
            let quad = |m: &DVector<f64>, p: &DMatrix<f64>| (m.transpose() * p * m)[(0, 0)];
            logits.push(
                proposal.log_weights()[i]
                    + q.log_weights()[k]
                    + 0.5
                        * (cov.determinant().ln() + pi.determinant().ln() + qk.determinant().ln())
                    - 0.5 * (quad(&mi, &pi) + quad(mk, qk) - quad(&c, &lam)),
            );
            comps.push((c, lam));
        }
    }
    let lse = logsumexp(&logits);
    let terms: Vec<f64> = logits
        .iter()
        .zip(&comps)
        .map(|(lw, (c, lam))| {
            let u = lam.clone().cholesky().unwrap().l().transpose();
            let y = &u * (&z - c);
            let sum_log_diag: f64 = u.diagonal().iter().map(|v| v.ln()).sum();
            lw - lse - 0.5 * d as f64 * (2.0 * std::f64::consts::PI).ln() + sum_log_diag
                - 0.5 * y.norm_squared()
        })
        .collect();
    -logsumexp(&terms)
}

fn batch<'a>(
    theta: &'a DMatrix<f64>,
    x: &'a DMatrix<f64>,
    lp: &'a [f64],
    flags: &'a [bool],
) -> Batch<'a> {
    Batch {
        theta: theta.as_view(),
        x: x.as_view(),
        prior_log_prob: lp,
        from_prior: flags,
    }
}

fn evaluate(
    loss: &mut NonAtomicLoss,
    est: &Mdn,
    theta: &DMatrix<f64>,
    x: &DMatrix<f64>,
    grad: Option<&mut [f64]>,
) -> f64 {
    let n = theta.ncols();
    let (lp, flags) = (vec![0.0; n], vec![false; n]);
    let mut ws = est.workspace();
    loss.evaluate(
        est,
        &mut ws,
        &batch(theta, x, &lp, &flags),
        &mut rng(0),
        grad,
    )
    .unwrap()
}

#[test]
fn value_matches_the_references_formulas_with_explicit_components() {
    for d in [1usize, 2, 3] {
        let gauss = gaussian_prior(d);
        let narrow = scaled_prior(d, 0.25);
        let uniform = BoxUniform::uniform(d, -2.0, 2.0).unwrap();
        for (name, prior, data, g) in [
            (
                "gaussian",
                &gauss as &dyn Prior,
                &narrow as &dyn Prior,
                Some(&gauss),
            ),
            (
                "uniform",
                &uniform as &dyn Prior,
                &uniform as &dyn Prior,
                None,
            ),
        ] {
            let (est, theta, x) = perturbed(&small(Precision::F64), data, 50, 10 + d as u64);
            // The proposal: another network, trained on other data (other z-scoring).
            let (prop, _, _) = perturbed(
                &MdnConfig {
                    num_components: 2,
                    ..small(Precision::F64)
                },
                data,
                80,
                20 + d as u64,
            );
            assert_ne!(prop.input_standardization(), est.input_standardization());
            let x_o: Vec<f64> = (0..d).map(|i| 0.2 - 0.1 * i as f64).collect();
            let mut loss = NonAtomicLoss::from_proposal(&prop, &x_o, prior).unwrap();
            let value = evaluate(&mut loss, &est, &theta, &x, None);
            assert!(value.is_finite(), "D={d} {name}");
            let mix = prop.mixture(&x_o).unwrap();
            let direct: f64 = (0..theta.ncols())
                .map(|j| {
                    let t: Vec<f64> = theta.column(j).iter().copied().collect();
                    let xj: Vec<f64> = x.column(j).iter().copied().collect();
                    direct_loss(&est, &mix, prop.input_standardization(), g, &t, &xj)
                })
                .sum::<f64>()
                / theta.ncols() as f64;
            assert!(
                (value - direct).abs() < 1e-9 * (1.0 + direct.abs()),
                "D={d} {name}: {value} vs {direct}"
            );
            // The same proposal given as its mixture.
            let mut again = NonAtomicLoss::new(
                mix.clone(),
                prop.input_standardization().clone(),
                PriorTerm::from_prior(prior).unwrap(),
            )
            .unwrap();
            assert_eq!(evaluate(&mut again, &est, &theta, &x, None), value);
        }
    }
}

#[test]
fn gradient_matches_central_differences() {
    for d in [1usize, 2, 3] {
        let gauss = gaussian_prior(d);
        let narrow = scaled_prior(d, 0.25);
        let uniform = BoxUniform::uniform(d, -2.0, 2.0).unwrap();
        for (prior, data) in [
            (&gauss as &dyn Prior, &narrow as &dyn Prior),
            (&uniform, &uniform),
        ] {
            let (mut est, theta, x) = perturbed(&small(Precision::F64), data, 7, 30 + d as u64);
            let (prop, _, _) = perturbed(&small(Precision::F64), data, 40, 40 + d as u64);
            let x_o = vec![0.1; d];
            let mut loss = NonAtomicLoss::from_proposal(&prop, &x_o, prior).unwrap();
            let mut grad = vec![0.0; est.num_params()];
            assert!(evaluate(&mut loss, &est, &theta, &x, Some(&mut grad)).is_finite());
            let h = 1e-6;
            for i in 0..est.num_params() {
                let p0 = est.params()[i];
                est.params_mut()[i] = p0 + h;
                let a = evaluate(&mut loss, &est, &theta, &x, None);
                est.params_mut()[i] = p0 - h;
                let b = evaluate(&mut loss, &est, &theta, &x, None);
                est.params_mut()[i] = p0;
                let fd = (a - b) / (2.0 * h);
                let err = (fd - grad[i]).abs() / fd.abs().max(grad[i].abs()).max(1e-2);
                assert!(
                    err < 1e-6,
                    "D={d} param {i}: fd {fd} analytic {} ({err:.1e})",
                    grad[i]
                );
            }
        }
    }
}

#[test]
fn gradient_is_added_and_f32_passes_agree() {
    let prior = gaussian_prior(2);
    let narrow = scaled_prior(2, 0.25);
    let (est, theta, x) = perturbed(&small(Precision::F64), &narrow, 300, 50);
    let (prop, _, _) = perturbed(&small(Precision::F64), &narrow, 60, 51);
    let mut loss = NonAtomicLoss::from_proposal(&prop, &[0.0, 0.1], &prior).unwrap();
    let mut g64 = vec![0.0; est.num_params()];
    let v64 = evaluate(&mut loss, &est, &theta, &x, Some(&mut g64));
    let mut twice = g64.clone();
    evaluate(&mut loss, &est, &theta, &x, Some(&mut twice));
    for (a, b) in twice.iter().zip(&g64) {
        assert!((a - 2.0 * b).abs() <= 1e-12 * b.abs().max(1e-300));
    }
    let mut est32 = est.clone();
    est32.set_precision(Precision::F32);
    let mut g32 = vec![0.0; est.num_params()];
    let v32 = evaluate(&mut loss, &est32, &theta, &x, Some(&mut g32));
    assert_eq!(v32, v64, "the loss value is computed in f64");
    let num: f64 = g32
        .iter()
        .zip(&g64)
        .map(|(a, b)| (a - b).powi(2))
        .sum::<f64>()
        .sqrt();
    let den: f64 = g64.iter().map(|b| b * b).sum::<f64>().sqrt();
    assert!(num / den < 1e-4, "{}", num / den);
}

#[test]
fn with_the_prior_as_proposal_it_is_maximum_likelihood_up_to_a_constant() {
    let d = 2;
    let prior = gaussian_prior(d);
    let (mut est, theta, x) = perturbed(&small(Precision::F64), &prior, 40, 60);
    // The proposal: two components, both the prior, in the estimator's z space.
    let st = est.input_standardization().clone();
    let sig = DMatrix::from_diagonal(&DVector::from_column_slice(&st.std));
    let p0 = &sig * prior.precision() * &sig;
    let m0 = DVector::from_iterator(d, (0..d).map(|i| (prior.loc()[i] - st.mean[i]) / st.std[i]));
    let proposal =
        Mixture::from_precisions(vec![0.3, -0.2], vec![m0.clone(), m0], vec![p0.clone(), p0])
            .unwrap();
    let mut loss =
        NonAtomicLoss::new(proposal, st.clone(), PriorTerm::from_prior(&prior).unwrap()).unwrap();
    let n = theta.ncols();
    let (lp, flags) = (vec![0.0; n], vec![false; n]);
    let log_det_std: f64 = st.std.iter().map(|s| s.ln()).sum();
    let mut diffs = Vec::new();
    for step in 0..3 {
        let value = evaluate(&mut loss, &est, &theta, &x, None);
        // Exactly −mean log q with the exact normaliser, in z space.
        let exact: f64 = (0..n)
            .map(|j| {
                let z: Vec<f64> = (0..d)
                    .map(|i| (theta[(i, j)] - st.mean[i]) / st.std[i])
                    .collect();
                let xj: Vec<f64> = x.column(j).iter().copied().collect();
                -est.mixture(&xj).unwrap().log_prob_exact(&z).unwrap()
            })
            .sum::<f64>()
            / n as f64;
        assert!(
            (value - exact).abs() < 1e-10 * (1.0 + exact.abs()),
            "{value} vs {exact}"
        );
        let mut ws = est.workspace();
        let ml = MaximumLikelihood::new()
            .evaluate(
                &est,
                &mut ws,
                &batch(&theta, &x, &lp, &flags),
                &mut rng(0),
                None,
            )
            .unwrap();
        // ML: −mean log q(θ | x) = −mean log q_ref(z | x) + Σ log σ; the reference
        // normaliser differs from the exact one by ½ log det(AᵀA + εI) − Σ log A_dd > 0,
        // of order ε tr((AᵀA)⁻¹).
        let diff = value - (ml - log_det_std);
        assert!((-1e-2..=0.0).contains(&diff), "step {step}: {diff}");
        diffs.push(diff);
        let mut r = rng(70 + step);
        for p in est.params_mut() {
            *p += r.random_range(-0.1..0.1);
        }
    }
    for w in diffs.windows(2) {
        assert!((w[0] - w[1]).abs() < 1e-3, "not a constant: {diffs:?}");
    }
}

#[test]
fn errors_are_clear() {
    let prior = gaussian_prior(2);
    let (est, theta, x) = perturbed(&small(Precision::F64), &prior, 20, 80);
    let mut loss = NonAtomicLoss::from_proposal(&est, &[0.0, 0.0], &prior).unwrap();
    let n = theta.ncols();
    let (lp, flags) = (vec![0.0; n], vec![false; n]);
    // Another kind of estimator.
    let gauss = Gaussian::new(2, 2, vec![0.0; 8]);
    let mut ws = gauss.workspace();
    let e = Loss::<Gaussian>::evaluate(
        &mut loss,
        &gauss,
        &mut ws,
        &batch(&theta, &x, &lp, &flags),
        &mut rng(0),
        None,
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            SnpeError::InvalidConfig {
                name: "estimator",
                ..
            }
        ) && e.to_string().contains("`test-gaussian`"),
        "{e}"
    );
    // Unsupported priors.
    let lognormal = LogNormal::new(vec![0.0, 0.0], vec![1.0, 1.0]).unwrap();
    assert!(!NonAtomicLoss::supports_prior(&lognormal));
    let e = NonAtomicLoss::from_proposal(&est, &[0.0, 0.0], &lognormal).unwrap_err();
    assert!(
        matches!(e, SnpeError::InvalidConfig { name: "prior", .. }),
        "{e}"
    );
    let boxes = simfer_distributions::Independent::new(vec![
        Box::new(BoxUniform::uniform(1, 0.0, 1.0).unwrap()),
        Box::new(BoxUniform::uniform(1, -1.0, 1.0).unwrap()),
    ])
    .unwrap();
    assert_eq!(
        PriorTerm::from_prior(&boxes),
        Some(PriorTerm::Uniform { dim: 2 })
    );
    let mixed = simfer_distributions::Independent::new(vec![
        Box::new(BoxUniform::uniform(1, 0.0, 1.0).unwrap()),
        Box::new(lognormal.clone()),
    ])
    .unwrap();
    assert!(!NonAtomicLoss::supports_prior(&mixed));
    // Dimensions.
    let prior3 = gaussian_prior(3);
    let e = NonAtomicLoss::from_proposal(&est, &[0.0, 0.0], &prior3).unwrap_err();
    assert!(matches!(e, SnpeError::DimensionMismatch { .. }), "{e}");
    let e = NonAtomicLoss::from_proposal(&est, &[0.0], &prior).unwrap_err();
    assert!(matches!(e, SnpeError::Flow(_)), "{e}");
    let theta3 = DMatrix::zeros(3, n);
    let e = loss
        .evaluate(
            &est,
            &mut est.workspace(),
            &batch(&theta3, &x, &lp, &flags),
            &mut rng(0),
            None,
        )
        .unwrap_err();
    assert!(matches!(e, SnpeError::DimensionMismatch { .. }), "{e}");
}

/// The closed-form posterior of θ ~ N(m, Σ), x | θ ~ N(θ, s² I) at x_o.
fn exact_posterior(
    prior: &MultivariateNormal,
    s: f64,
    x_o: &DVector<f64>,
) -> (DVector<f64>, DMatrix<f64>) {
    let d = x_o.len();
    let p = prior.precision() + DMatrix::identity(d, d) / (s * s);
    let cov = p.try_inverse().unwrap();
    let mean = &cov * (prior.precision() * prior.loc() + x_o / (s * s));
    (mean, cov)
}

fn simulate(theta: &DMatrix<f64>, s: f64, r: &mut Xoshiro256PlusPlus) -> DMatrix<f64> {
    theta.map(|t| {
        let e: f64 = StandardNormal.sample(r);
        t + s * e
    })
}

/// Two rounds as SNPE-C runs them with an MDN: maximum likelihood on prior draws, then the
/// non-atomic loss on draws from the round-0 posterior at x_o (that round's data only).
/// The posterior at x_o is compared with the closed form through the mixture's moments
/// (no sampling noise).
#[test]
fn two_rounds_recover_a_linear_gaussian_posterior() {
    let d = 2;
    let prior = MultivariateNormal::new(
        vec![0.5, -0.5],
        DMatrix::from_row_slice(2, 2, &[1.0, 0.3, 0.3, 0.8]),
    )
    .unwrap();
    let s = 0.5;
    let x_o = DVector::from_column_slice(&[1.2, -0.9]);
    let (mean, cov) = exact_posterior(&prior, s, &x_o);
    let n = 4000;
    let seed = 1;
    let mut r = rng(seed);
    let trainer = Trainer::new(TrainingConfig::default()).unwrap();
    let theta0 = prior.sample_batch(n, &mut r);
    let x0 = simulate(&theta0, s, &mut r);
    let data0 = TrainingData::with_prior(theta0, x0, &prior, vec![true; n]).unwrap();
    let split0 = DataSplit::random(n, 0.1, &mut r).unwrap();
    let (tt, xt) = data0.gather(&split0.train);
    let mut mdn = Mdn::new(&MdnConfig::default(), &tt, &xt, seed + 7).unwrap();
    let h0 = trainer
        .train(
            &mut mdn,
            &mut MaximumLikelihood::new(),
            &data0,
            &split0,
            0,
            &mut r,
            None,
        )
        .unwrap();
    let proposal = mdn.clone();
    let theta1 = proposal.sample(n, x_o.as_slice(), &mut r).unwrap();
    let x1 = simulate(&theta1, s, &mut r);
    let data1 = TrainingData::with_prior(theta1, x1, &prior, vec![false; n]).unwrap();
    let split1 = DataSplit::random(n, 0.1, &mut r).unwrap();
    let mut loss = NonAtomicLoss::from_proposal(&proposal, x_o.as_slice(), &prior).unwrap();
    let h1 = trainer
        .train(&mut mdn, &mut loss, &data1, &split1, 1, &mut r, None)
        .unwrap();
    assert_eq!(h1.loss, "non-atomic (APT, MDN)");
    let st = mdn.input_standardization();
    let post = mdn
        .mixture(x_o.as_slice())
        .unwrap()
        .affine(&st.std, &st.mean)
        .unwrap();
    let (m_hat, c_hat) = (post.mean(), post.covariance());
    let sd: Vec<f64> = (0..d).map(|i| cov[(i, i)].sqrt()).collect();
    eprintln!(
        "epochs {} + {}; mean {:?} vs {:?}; cov {:?} vs {:?}",
        h0.epochs_trained,
        h1.epochs_trained,
        m_hat.as_slice(),
        mean.as_slice(),
        c_hat.as_slice(),
        cov.as_slice()
    );
    // Tolerances, from 12 seeds of this test at 4000 simulations per round: the largest
    // error of the posterior mean was 0.18 posterior standard deviations, of the
    // covariance 0.11 sd_i·sd_j. Training round 1 by maximum likelihood instead (no
    // proposal correction) gave covariance errors of 0.33–0.46 sd_i·sd_j on 6 of those
    // seeds, so 0.2 separates a corrected from an uncorrected posterior; the mean is held
    // to 0.3 sd.
    for i in 0..d {
        assert!(
            (m_hat[i] - mean[i]).abs() < 0.3 * sd[i],
            "mean {i}: {} vs {}",
            m_hat[i],
            mean[i]
        );
        for j in 0..d {
            assert!(
                (c_hat[(i, j)] - cov[(i, j)]).abs() < 0.2 * sd[i] * sd[j],
                "cov ({i},{j}): {} vs {}",
                c_hat[(i, j)],
                cov[(i, j)]
            );
        }
    }
}

#[test]
fn value_and_gradient_do_not_depend_on_the_number_of_threads() {
    let prior = gaussian_prior(3);
    let narrow = scaled_prior(3, 0.25);
    let (est, _, _) = perturbed(&small(Precision::F32), &narrow, 100, 90);
    let (prop, _, _) = perturbed(&small(Precision::F32), &narrow, 100, 91);
    let (_, theta, x) = perturbed(&small(Precision::F64), &narrow, 450, 92);
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let mut loss = NonAtomicLoss::from_proposal(&prop, &[0.1, 0.0, -0.1], &prior).unwrap();
            let mut grad = vec![0.0; est.num_params()];
            let v = evaluate(&mut loss, &est, &theta, &x, Some(&mut grad));
            (
                v.to_bits(),
                grad.iter().map(|g| g.to_bits()).collect::<Vec<_>>(),
            )
        })
    };
    let one = run(1);
    assert!(f64::from_bits(one.0).is_finite());
    assert_eq!(one, run(2));
}

/// Not a check: times a training step (loss, gradient, clipping, Adam) of the default MDN
/// with maximum likelihood and with the non-atomic loss (batch 200, D = C = 2 and 10,
/// proposal = the estimator at x_o = 0, prior N(0, I)), for comparison with
/// `benches/reference/mdn_step.py --non-atomic`. Run it alone, in release:
/// `cargo test --release -p simfer-snpe --test it timing -- --ignored --nocapture`.
#[test]
#[ignore]
fn timing_non_atomic_step() {
    use simfer_flows::{Adam, clip_grad_norm};
    for d in [2usize, 10] {
        for threads in [1usize, 2] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let prior = MultivariateNormal::isotropic(vec![0.0; d], 1.0).unwrap();
                let mut r = rng(1);
                let theta = prior.sample_batch(200, &mut r);
                let x = theta.map(|t| t + 0.1 * r.random_range(-1.0..1.0));
                let mut est = Mdn::new(&MdnConfig::default(), &theta, &x, 1).unwrap();
                let prop = est.clone();
                let mut loss = NonAtomicLoss::from_proposal(&prop, &vec![0.0; d], &prior).unwrap();
                let mut ml = MaximumLikelihood::new();
                let (lp, flags) = (vec![0.0; 200], vec![false; 200]);
                let mut ws = est.workspace();
                let mut adam = Adam::new(est.num_params(), 5e-4);
                let mut grad = vec![0.0; est.num_params()];
                for (name, non_atomic) in [("ml", false), ("non-atomic", true)] {
                    let mut times = Vec::new();
                    for rep in 0..250 {
                        let t0 = std::time::Instant::now();
                        grad.fill(0.0);
                        let b = batch(&theta, &x, &lp, &flags);
                        let v = if non_atomic {
                            loss.evaluate(&est, &mut ws, &b, &mut rng(0), Some(&mut grad))
                                .unwrap()
                        } else {
                            Loss::<Mdn>::evaluate(
                                &mut ml,
                                &est,
                                &mut ws,
                                &b,
                                &mut rng(0),
                                Some(&mut grad),
                            )
                            .unwrap()
                        };
                        clip_grad_norm(&mut grad, 5.0);
                        adam.step(est.params_mut(), &grad);
                        assert!(v.is_finite());
                        if rep >= 50 {
                            times.push(t0.elapsed().as_secs_f64());
                        }
                    }
                    times.sort_by(f64::total_cmp);
                    eprintln!(
                        "D={d} {threads}thr {name}: median {:.1} us",
                        times[times.len() / 2] * 1e6
                    );
                }
            });
        }
    }
}

/// A one-component proposal N(0, diag(1/p)) in its standardized space (statistics mean 0,
/// std `s`), as a mixture.
fn one_component(p: &[f64]) -> Mixture {
    let d = p.len();
    let a = DMatrix::from_fn(d, d, |r, c| if r == c { p[r].sqrt() } else { 0.0 });
    Mixture::new(vec![0.0], vec![DVector::zeros(d)], vec![a], 0.0).unwrap()
}

#[test]
fn a_proposal_broader_than_the_gaussian_prior_is_detected() {
    let d = 2;
    // Prior N(0, I) in θ; the proposal's statistics std 0.5, so in its space the prior's
    // precision is 0.25·I.
    let prior = MultivariateNormal::isotropic(vec![0.0; d], 1.0).unwrap();
    let term = PriorTerm::from_prior(&prior).unwrap();
    let stats = Standardization {
        mean: vec![0.0; d],
        std: vec![0.5; d],
    };
    // Narrower than the prior in both directions (precision 1 > 0.25), or equal: proper.
    for p in [[1.0, 1.0], [0.25, 4.0]] {
        let loss = NonAtomicLoss::new(one_component(&p), stats.clone(), term.clone()).unwrap();
        assert!(loss.proposal_within_prior(), "{p:?}");
    }
    // Broader along the second axis (precision 0.1 < 0.25): improper.
    let broad = NonAtomicLoss::new(one_component(&[1.0, 0.1]), stats.clone(), term).unwrap();
    assert!(!broad.proposal_within_prior());
    // A box-uniform prior has no precision: always proper.
    let uniform = BoxUniform::uniform(d, -1.0, 1.0).unwrap();
    let loss = NonAtomicLoss::new(
        one_component(&[1.0, 0.1]),
        stats,
        PriorTerm::from_prior(&uniform).unwrap(),
    )
    .unwrap();
    assert!(loss.proposal_within_prior());
}
