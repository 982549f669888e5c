//! bernoulli_glm(_raw), slcp and slcp_distractors.

use nalgebra::{DMatrix, DVector};
use rand::RngCore;
use simfer_benchmark::Task;
use simfer_benchmark::tasks::{BernoulliGlm, Slcp, SlcpDistractors};
use simfer_distributions::{Prior, derive_rng, rng_from_seed};
use simfer_simulators::{SimulationOptions, Simulator, simulate_batch};

use crate::common::{covariance, mean_vector};

fn opts(seed: u64) -> SimulationOptions {
    SimulationOptions::with_seed(seed).with_progress(false)
}

fn csv(text: &str) -> Vec<Vec<f64>> {
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|l| l.split(',').map(|v| v.trim().parse().unwrap()).collect())
        .collect()
}

/// X from the spec, built here from the data file with plain loops.
pub fn design_matrix() -> DMatrix<f64> {
    let stim: Vec<f64> = csv(include_str!("../../data/bernoulli_glm_stimulus.csv")).concat();
    let mut x = DMatrix::zeros(100, 10);
    for t in 0..100 {
        x[(t, 0)] = 1.0;
        for j in 0..9 {
            if t >= j {
                x[(t, j + 1)] = stim[t - j];
            }
        }
    }
    x
}

#[test]
fn bernoulli_glm_statistics_are_x_transpose_y() {
    let x = design_matrix();
    assert_eq!(BernoulliGlm::design_matrix(), x);
    let theta = [0.5, 0.8, -0.3, 0.2, 0.1, -0.4, 0.3, 0.0, -0.1, 0.25];
    for seed in 0..20 {
        let (mut raw, mut summary) = ([0.0; 100], [0.0; 10]);
        BernoulliGlm::raw()
            .simulate(&theta, &mut derive_rng(seed, 0), &mut raw)
            .unwrap();
        BernoulliGlm::summary()
            .simulate(&theta, &mut derive_rng(seed, 0), &mut summary)
            .unwrap();
        assert!(raw.iter().all(|&y| y == 0.0 || y == 1.0));
        let expected = x.transpose() * DVector::from_row_slice(&raw);
        for (a, b) in summary.iter().zip(expected.iter()) {
            assert!((a - b).abs() < 1e-12);
        }
    }
}

#[test]
fn bernoulli_glm_responses_have_the_logistic_probabilities() {
    let theta = [0.5, 0.8, -0.3, 0.2, 0.1, -0.4, 0.3, 0.0, -0.1, 0.25];
    let n = 20_000;
    let thetas = DMatrix::from_fn(10, n, |i, _| theta[i]);
    let sims = simulate_batch(&BernoulliGlm::raw(), &thetas, &opts(2)).unwrap();
    let freq = mean_vector(&sims.x);
    let eta = design_matrix() * DVector::from_row_slice(&theta);
    for t in 0..100 {
        let p = 1.0 / (1.0 + (-eta[t]).exp());
        let se = (p * (1.0 - p) / n as f64).sqrt();
        assert!(
            (freq[t] - p).abs() < 5.0 * se + 1e-9,
            "t = {t}: {} vs {p}",
            freq[t]
        );
    }
}

/// The prior precision B from the spec, with explicit loops.
pub fn prior_precision() -> DMatrix<f64> {
    let mut f = DMatrix::<f64>::zeros(9, 9);
    for i in 0..9 {
        // (D·D)[i,i] = 1, [i,i−1] = −2, [i,i−2] = 1; plus diag(√(i/9)).
        f[(i, i)] = 1.0 + (i as f64 / 9.0).sqrt();
        if i >= 1 {
            f[(i, i - 1)] = -2.0;
        }
        if i >= 2 {
            f[(i, i - 2)] = 1.0;
        }
    }
    let mut b = DMatrix::<f64>::zeros(10, 10);
    b[(0, 0)] = 0.5;
    let ftf = f.transpose() * &f;
    for i in 0..9 {
        for j in 0..9 {
            b[(i + 1, j + 1)] = ftf[(i, j)];
        }
    }
    b
}

#[test]
fn bernoulli_glm_prior_is_the_specified_gaussian() {
    let b = prior_precision();
    assert!((BernoulliGlm::prior_precision() - &b).amax() < 1e-14);
    let prior = BernoulliGlm::summary().prior();
    let theta = [0.3, -0.2, 0.1, 0.0, 0.4, -0.5, 0.2, 0.1, -0.1, 0.05];
    let t = DVector::from_row_slice(&theta);
    let exact = -5.0 * (2.0 * std::f64::consts::PI).ln() + 0.5 * b.determinant().ln()
        - 0.5 * (t.transpose() * &b * &t)[0];
    assert!((prior.log_prob(&theta).unwrap() - exact).abs() < 1e-10);
    let n = 200_000;
    let s = Prior::sample_batch(&prior, n, &mut rng_from_seed(5));
    let cov = covariance(&s);
    let exact_cov = b.try_inverse().unwrap();
    for i in 0..10 {
        for j in 0..10 {
            // Standard error of a covariance entry: √((Σii Σjj + Σij²)/n); 5 of them.
            let se = ((exact_cov[(i, i)] * exact_cov[(j, j)] + exact_cov[(i, j)].powi(2))
                / n as f64)
                .sqrt();
            assert!(
                (cov[(i, j)] - exact_cov[(i, j)]).abs() < 5.0 * se,
                "({i}, {j})"
            );
        }
    }
}

#[test]
fn slcp_draws_four_iid_gaussians_with_the_specified_covariance() {
    let theta = [0.7, -1.5, 1.2, -0.9, 0.6];
    let (s1, s2, rho) = (1.2f64.powi(2), 0.9f64.powi(2), 0.6f64.tanh());
    let sigma = [
        [s1 * s1 + 1e-6, rho * s1 * s2],
        [rho * s1 * s2, s2 * s2 + 1e-6],
    ];
    let n = 50_000;
    let thetas = DMatrix::from_fn(5, n, |i, _| theta[i]);
    let x = simulate_batch(&Slcp, &thetas, &opts(4)).unwrap().x;
    // All 4n draws as one 2 × 4n sample.
    let pairs = DMatrix::from_column_slice(2, 4 * n, x.as_slice());
    let m = mean_vector(&pairs);
    let c = covariance(&pairs);
    let nn = (4 * n) as f64;
    for i in 0..2 {
        assert!(
            (m[i] - theta[i]).abs() < 5.0 * (sigma[i][i] / nn).sqrt(),
            "mean {i}"
        );
        for j in 0..2 {
            let se = ((sigma[i][i] * sigma[j][j] + sigma[i][j].powi(2)) / nn).sqrt();
            assert!((c[(i, j)] - sigma[i][j]).abs() < 5.0 * se, "cov ({i}, {j})");
        }
    }
    // The four draws of one simulation are independent: draws 1 and 3 uncorrelated.
    let x1 = x.row(0);
    let x3 = x.row(4);
    let cross = x1
        .iter()
        .zip(x3.iter())
        .map(|(a, b)| (a - theta[0]) * (b - theta[0]))
        .sum::<f64>()
        / n as f64;
    assert!(cross.abs() < 5.0 * sigma[0][0] / (n as f64).sqrt());
}

#[test]
fn slcp_distractors_embed_slcp_at_the_documented_positions() {
    let perm: Vec<usize> = csv(include_str!("../../data/slcp_distractors_permutation.csv"))
        .concat()
        .into_iter()
        .map(|v| v as usize)
        .collect();
    let mut sorted = perm.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..100).collect::<Vec<_>>());
    let positions: Vec<usize> = (0..8)
        .map(|k| perm.iter().position(|&p| p == k).unwrap())
        .collect();
    assert_eq!(positions, SlcpDistractors::DATA_POSITIONS);
    let theta = [0.7, -1.5, 1.2, -0.9, 0.6];
    let other = [-2.0, 2.5, 0.1, 2.9, -1.0];
    for seed in 0..10 {
        let (mut d, mut s, mut d_other) = ([0.0; 100], [0.0; 8], [0.0; 100]);
        SlcpDistractors
            .simulate(&theta, &mut derive_rng(seed, 0), &mut d)
            .unwrap();
        Slcp.simulate(&theta, &mut derive_rng(seed, 0), &mut s)
            .unwrap();
        SlcpDistractors
            .simulate(&other, &mut derive_rng(seed, 0), &mut d_other)
            .unwrap();
        for (k, &pos) in SlcpDistractors::DATA_POSITIONS.iter().enumerate() {
            assert_eq!(d[pos], s[k]);
        }
        // The distractors do not depend on θ.
        for j in 0..100 {
            if !SlcpDistractors::DATA_POSITIONS.contains(&j) {
                assert_eq!(d[j], d_other[j]);
            }
        }
    }
}

/// CDF of a Student-t with 2 degrees of freedom: ½ + t / (2√(2 + t²)).
fn t2_cdf(t: f64) -> f64 {
    0.5 + t / (2.0 * (2.0 + t * t).sqrt())
}

#[test]
fn slcp_distractor_marginals_match_the_student_t_mixture() {
    let locs = csv(include_str!("../../data/slcp_distractors_mixture_loc.csv"));
    let trils = csv(include_str!(
        "../../data/slcp_distractors_mixture_scale_tril.csv"
    ));
    let perm: Vec<usize> = csv(include_str!("../../data/slcp_distractors_permutation.csv"))
        .concat()
        .into_iter()
        .map(|v| v as usize)
        .collect();
    // Marginal k of component c is loc + √(Σ_kk)·t₂ with Σ = L Lᵀ, Σ_kk = ‖row k of L‖².
    let scale = |c: usize, k: usize| -> f64 {
        (0..92)
            .map(|j| trils[c][k * 92 + j].powi(2))
            .sum::<f64>()
            .sqrt()
    };
    for (c, tril) in trils.iter().enumerate() {
        for k in 0..92 {
            for j in k + 1..92 {
                assert_eq!(
                    tril[k * 92 + j],
                    0.0,
                    "scale matrix {c} is lower triangular"
                );
            }
        }
    }
    let n = 40_000;
    let thetas = DMatrix::from_element(5, n, 0.5);
    let x = simulate_batch(&SlcpDistractors, &thetas, &opts(7))
        .unwrap()
        .x;
    let mut rng = rng_from_seed(1);
    let mut worst: f64 = 0.0;
    for (j, &source) in perm.iter().enumerate() {
        if source < 8 {
            continue;
        }
        let k = source - 8;
        // Compare the empirical CDF with the exact mixture CDF at three points.
        let centre = (0..20).map(|c| locs[c][k]).sum::<f64>() / 20.0;
        let spread = (0..20).map(|c| scale(c, k)).sum::<f64>() / 20.0;
        let u = (rng.next_u32() % 3) as f64 - 1.0;
        for point in [centre - spread, centre + u * spread, centre + 2.0 * spread] {
            let exact = (0..20)
                .map(|c| t2_cdf((point - locs[c][k]) / scale(c, k)))
                .sum::<f64>()
                / 20.0;
            let empirical = x.row(j).iter().filter(|&&v| v <= point).count() as f64 / n as f64;
            let se = (exact * (1.0 - exact) / n as f64).sqrt().max(1e-4);
            worst = worst.max((empirical - exact).abs() / se);
        }
    }
    // 276 comparisons: the largest deviation of that many standard normals stays below 5.
    assert!(worst < 5.0, "largest deviation {worst} standard errors");
}
