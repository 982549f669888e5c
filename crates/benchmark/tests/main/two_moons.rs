//! two_moons: the crescent, and the inverted reference posterior.

use std::f64::consts::{FRAC_1_SQRT_2, PI};

use nalgebra::DMatrix;
use simfer_benchmark::Task;
use simfer_benchmark::tasks::TwoMoons;
use simfer_distributions::{BoxUniform, Prior, rng_from_seed};
use simfer_simulators::{SimulationOptions, simulate_batch};

use crate::common::{covariance, mean_vector};

fn opts(seed: u64) -> SimulationOptions {
    SimulationOptions::with_seed(seed).with_progress(false)
}

/// The crescent point p = x − (−|z0|, z1) implied by θ and x.
fn crescent_point(theta: &[f64], x: &[f64]) -> (f64, f64) {
    let z0 = (theta[0] + theta[1]) * FRAC_1_SQRT_2;
    let z1 = (-theta[0] + theta[1]) * FRAC_1_SQRT_2;
    (x[0] + z0.abs(), x[1] - z1)
}

#[test]
fn outputs_lie_on_the_crescent() {
    let n = 100_000;
    let theta = Prior::sample_batch(
        &BoxUniform::uniform(2, -1.0, 1.0).unwrap(),
        n,
        &mut rng_from_seed(0),
    );
    let sims = simulate_batch(&TwoMoons, &theta, &opts(1)).unwrap();
    let (mut rs, mut angles) = (Vec::new(), Vec::new());
    for j in 0..n {
        let (p0, p1) = crescent_point(theta.column(j).as_slice(), sims.x.column(j).as_slice());
        let (dx, dy) = (p0 - 0.25, p1);
        // r ~ N(0.1, 0.01²) > 0 and a ∈ (−π/2, π/2): p lies right of (0.25, 0).
        assert!(dx >= 0.0, "p0 = {p0} left of the crescent's centre");
        rs.push((dx * dx + dy * dy).sqrt());
        angles.push(dy.atan2(dx));
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let var = |v: &[f64]| {
        let m = mean(v);
        v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() - 1) as f64
    };
    // r: mean 0.1 (s.e. 3e-5), sd 0.01; angle uniform: mean 0, variance π²/12.
    assert!((mean(&rs) - 0.1).abs() < 2e-4);
    assert!((var(&rs).sqrt() / 0.01 - 1.0).abs() < 0.02);
    assert!(rs.iter().all(|&r| (0.05..0.15).contains(&r)));
    assert!(mean(&angles).abs() < 0.01);
    assert!((var(&angles) / (PI * PI / 12.0) - 1.0).abs() < 0.02);
    assert!(angles.iter().all(|a| a.abs() <= PI / 2.0));
}

/// The unnormalized posterior density of θ given x_o, from the likelihood in polar
/// coordinates: p is (0.25, 0) + r(cos a, sin a) with r ~ N(0.1, 0.01²), a ~ U(−π/2, π/2),
/// so its density is N(r; 0.1, 0.01²)·(1/π)/r for a ∈ (−π/2, π/2).
fn unnormalized_posterior(theta: [f64; 2], x_o: [f64; 2]) -> f64 {
    let (p0, p1) = crescent_point(&theta, &x_o);
    let (dx, dy) = (p0 - 0.25, p1);
    if dx <= 0.0 {
        return 0.0;
    }
    let r = (dx * dx + dy * dy).sqrt();
    (-0.5 * ((r - 0.1) / 0.01).powi(2)).exp() / r
}

#[test]
fn reference_posterior_matches_the_likelihood_on_a_grid() {
    let x_o = [0.05, -0.1];
    let post = TwoMoons.reference_posterior(&x_o).unwrap().unwrap();
    let n = 40_000;
    let s = post.sample(n, &mut rng_from_seed(6)).unwrap();
    assert!(s.iter().all(|v| (-1.0..=1.0).contains(v)));
    // Exact moments by midpoint quadrature over the prior box (h = 5e-4, 20 points per
    // standard deviation of r).
    let m = 4000;
    let h = 2.0 / m as f64;
    let (mut z, mut s1, mut s2) = (0.0, [0.0; 2], [0.0; 3]);
    for i in 0..m {
        let a = -1.0 + (i as f64 + 0.5) * h;
        for j in 0..m {
            let b = -1.0 + (j as f64 + 0.5) * h;
            let p = unnormalized_posterior([a, b], x_o);
            z += p;
            s1[0] += p * a;
            s1[1] += p * b;
            s2[0] += p * a * a;
            s2[1] += p * a * b;
            s2[2] += p * b * b;
        }
    }
    let qm = [s1[0] / z, s1[1] / z];
    let qc = [
        s2[0] / z - qm[0] * qm[0],
        s2[1] / z - qm[0] * qm[1],
        s2[2] / z - qm[1] * qm[1],
    ];
    let sm = mean_vector(&s);
    let sc = covariance(&s);
    for d in 0..2 {
        let var = [qc[0], qc[2]][d];
        assert!(
            (sm[d] - qm[d]).abs() < 5.0 * (var / n as f64).sqrt(),
            "mean {d}: {} vs {}",
            sm[d],
            qm[d]
        );
    }
    // Relative 5 % on the (co)variances: > 5 standard errors at n = 4e4.
    assert!(
        (sc[(0, 0)] / qc[0] - 1.0).abs() < 0.05,
        "{} vs {}",
        sc[(0, 0)],
        qc[0]
    );
    assert!(
        (sc[(1, 1)] / qc[2] - 1.0).abs() < 0.05,
        "{} vs {}",
        sc[(1, 1)],
        qc[2]
    );
    assert!((sc[(0, 1)] - qc[1]).abs() < 0.05 * (qc[0] * qc[2]).sqrt());
}

#[test]
fn simulating_from_reference_samples_reproduces_x_o() {
    let x_o = [-0.3, 0.2];
    let post = TwoMoons.reference_posterior(&x_o).unwrap().unwrap();
    let n = 20_000;
    let theta = post.sample(n, &mut rng_from_seed(8)).unwrap();
    // Every sample is an exact preimage: x_o − (−|z0|, z1) lies on the crescent.
    for j in 0..n {
        let (p0, p1) = crescent_point(theta.column(j).as_slice(), &x_o);
        let r = ((p0 - 0.25).powi(2) + p1 * p1).sqrt();
        assert!(
            p0 >= 0.25 && (0.04..0.16).contains(&r),
            "sample {j}: r = {r}"
        );
    }
    // Simulating them lands around x_o: closer than for prior draws, and within the
    // crescent's diameter (0.2 + noise).
    let dist = |theta: &DMatrix<f64>| {
        let x = simulate_batch(&TwoMoons, theta, &opts(9)).unwrap().x;
        let d: Vec<f64> = x
            .column_iter()
            .map(|c| ((c[0] - x_o[0]).powi(2) + (c[1] - x_o[1]).powi(2)).sqrt())
            .collect();
        let mut sorted = d.clone();
        sorted.sort_by(f64::total_cmp);
        (sorted[sorted.len() / 2], sorted[sorted.len() * 99 / 100])
    };
    let (median, p99) = dist(&theta);
    assert!(median < 0.2 && p99 < 0.3, "median {median}, 99 % {p99}");
    let prior_theta = Prior::sample_batch(
        &BoxUniform::uniform(2, -1.0, 1.0).unwrap(),
        n,
        &mut rng_from_seed(10),
    );
    let (prior_median, _) = dist(&prior_theta);
    assert!(prior_median > 2.0 * median, "{prior_median} vs {median}");
}

#[test]
fn impossible_observations_fail_with_the_budget_error() {
    let post = TwoMoons.reference_posterior(&[5.0, 5.0]).unwrap().unwrap();
    let err = post.sample(3, &mut rng_from_seed(0)).unwrap_err();
    assert!(err.to_string().contains("accepted 0 of 1000000"), "{err}");
}
