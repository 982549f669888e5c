//! The posterior-predictive distance: the score of tasks without reference samples.
//!
//! `n` posterior samples are simulated (seeded). If the true θ is known, `n` simulations at
//! θ_true give the simulator's own spread there; every simulation and x_o are divided, per
//! dimension, by the standard deviation of those simulations at θ_true (by that of the
//! posterior-predictive simulations when θ_true is unknown; a dimension without spread is
//! left unscaled). We report
//!
//! - `median_distance`: the median Euclidean distance of the scaled posterior-predictive
//!   simulations to the scaled x_o;
//! - `true_median_distance`: the same median for the simulations at θ_true: the floor that a
//!   posterior concentrated on θ_true would reach (a correct posterior, being wider, lies a
//!   little above it);
//! - `mmd2`: the unbiased squared MMD (Gaussian kernel, median-heuristic bandwidth) between
//!   the scaled posterior-predictive simulations and the scaled simulations at θ_true:
//!   near 0 when the posterior predicts data like the true θ does.
//!
//! Smaller is better for all three; they compare runs of one task, not tasks.

use anyhow::Result;
use nalgebra::DMatrix;
use serde::{Deserialize, Serialize};
use simfer_analysis::{MmdBandwidth, mmd_squared};
use simfer_simulators::{SimulationOptions, Simulator, simulate_batch};

/// The posterior-predictive distance of one run (see the module documentation).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Predictive {
    /// Posterior samples simulated.
    pub simulations: usize,
    /// Of those, simulations with NaN/±∞ (left out).
    pub invalid: usize,
    /// Median scaled distance of the posterior-predictive simulations to x_o.
    pub median_distance: f64,
    /// Median scaled distance of simulations at θ_true to x_o (when θ_true is known).
    pub true_median_distance: Option<f64>,
    /// Squared MMD between posterior-predictive and true-θ simulations (scaled).
    pub mmd2: Option<f64>,
}

/// Computes the [`Predictive`] distance of `samples` (`theta_dim × m`; the first
/// `min(n, m)` are simulated) at `x_o`, with simulations seeded by `seed` (posterior
/// samples) and `seed + 1` (θ_true).
///
/// # Errors
/// Simulator errors; all posterior-predictive simulations invalid.
pub fn predictive_distance(
    simulator: &dyn Simulator,
    samples: &DMatrix<f64>,
    x_o: &[f64],
    theta_true: Option<&[f64]>,
    n: usize,
    seed: u64,
) -> Result<Predictive> {
    let n = n.min(samples.ncols());
    let options = |s: u64| SimulationOptions::with_seed(s).with_progress(false);
    let pp = simulate_batch(
        simulator,
        &samples.columns(0, n).into_owned(),
        &options(seed),
    )?;
    let invalid = pp.invalid.num_invalid();
    let (_, pp_x) = pp.valid();
    anyhow::ensure!(
        pp_x.ncols() > 1,
        "{invalid} of {n} posterior-predictive simulations are invalid"
    );
    let truth = match theta_true {
        Some(theta) => {
            let thetas = DMatrix::from_fn(theta.len(), n, |i, _| theta[i]);
            let (_, x) =
                simulate_batch(simulator, &thetas, &options(seed.wrapping_add(1)))?.valid();
            (x.ncols() > 1).then_some(x)
        }
        None => None,
    };
    let scale = std_per_row(truth.as_ref().unwrap_or(&pp_x));
    let scaled =
        |m: &DMatrix<f64>| DMatrix::from_fn(m.nrows(), m.ncols(), |i, j| m[(i, j)] / scale[i]);
    let x_o_scaled: Vec<f64> = x_o.iter().zip(&scale).map(|(v, s)| v / s).collect();
    let pp_scaled = scaled(&pp_x);
    let median_distance = median_distance_to(&pp_scaled, &x_o_scaled);
    let (true_median_distance, mmd2) = match &truth {
        Some(t) => {
            let t_scaled = scaled(t);
            (
                Some(median_distance_to(&t_scaled, &x_o_scaled)),
                mmd_squared(&pp_scaled, &t_scaled, MmdBandwidth::Median)
                    .ok()
                    .map(|m| m.mmd2),
            )
        }
        None => (None, None),
    };
    Ok(Predictive {
        simulations: n,
        invalid,
        median_distance,
        true_median_distance,
        mmd2,
    })
}

/// Unbiased standard deviation of each row; 1 where it is 0 or not finite.
fn std_per_row(m: &DMatrix<f64>) -> Vec<f64> {
    let n = m.ncols() as f64;
    m.row_iter()
        .map(|row| {
            let mean = row.mean();
            let sd = (row.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (n - 1.0)).sqrt();
            if sd > 0.0 && sd.is_finite() { sd } else { 1.0 }
        })
        .collect()
}

/// Median Euclidean distance of the columns of `m` to `x` (the lower middle value for an
/// even count).
fn median_distance_to(m: &DMatrix<f64>, x: &[f64]) -> f64 {
    let mut d: Vec<f64> = m
        .column_iter()
        .map(|c| {
            c.iter()
                .zip(x)
                .map(|(a, b)| (a - b) * (a - b))
                .sum::<f64>()
                .sqrt()
        })
        .collect();
    d.sort_by(f64::total_cmp);
    d[(d.len() - 1) / 2]
}

#[cfg(test)]
mod tests {
    use super::*;
    use simfer_simulators::FnSimulator;

    #[test]
    fn helpers_match_direct_formulas() {
        let m = DMatrix::from_row_slice(2, 4, &[1.0, 2.0, 3.0, 4.0, 5.0, 5.0, 5.0, 5.0]);
        let s = std_per_row(&m);
        // Unbiased std of 1..4 is sqrt(5/3); a constant row is left unscaled.
        assert!((s[0] - (5.0f64 / 3.0).sqrt()).abs() < 1e-15);
        assert_eq!(s[1], 1.0);
        // Distances to (0, 5): 1, 2, 3, 4 → lower median 2.
        assert_eq!(median_distance_to(&m, &[0.0, 5.0]), 2.0);
    }

    #[test]
    fn a_posterior_at_the_truth_scores_near_the_floor_and_a_shifted_one_does_not() {
        // x = θ + ε, ε ~ N(0, 1) in 2-D: simulations at θ_true have unit spread, so the
        // scaled distance of x ~ N(θ, I) to x_o = θ is chi-distributed with 2 degrees of
        // freedom (median √(2 ln 2) ≈ 1.177) when x_o sits at θ.
        let sim = FnSimulator::new(2, 2, |theta: &[f64], rng: &mut dyn rand::RngCore| {
            theta
                .iter()
                .map(|t| {
                    let z: f64 = rand_distr::Distribution::sample(&rand_distr::StandardNormal, rng);
                    t + z
                })
                .collect::<Vec<f64>>()
        });
        let theta = [0.5, -0.5];
        let at_truth = DMatrix::from_fn(2, 2000, |i, _| theta[i]);
        let p = predictive_distance(&sim, &at_truth, &theta, Some(&theta), 2000, 3).unwrap();
        let chi2_median = (2.0 * 2f64.ln()).sqrt();
        assert!((p.median_distance - chi2_median).abs() < 0.06, "{p:?}");
        let floor = p.true_median_distance.unwrap();
        assert!((floor - chi2_median).abs() < 0.06, "{p:?}");
        assert!(p.mmd2.unwrap().abs() < 0.01, "{p:?}");
        assert_eq!((p.simulations, p.invalid), (2000, 0));

        let shifted = at_truth.add_scalar(2.0);
        let q = predictive_distance(&sim, &shifted, &theta, Some(&theta), 2000, 3).unwrap();
        assert!(q.median_distance > 2.0 * p.median_distance, "{q:?}");
        assert!(q.mmd2.unwrap() > 0.1, "{q:?}");
    }
}
