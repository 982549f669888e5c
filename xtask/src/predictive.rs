//! The posterior-predictive distance: the score of tasks without reference samples.
//!
//! `n` posterior samples are simulated (seeded), and so are `n` draws from the prior (the
//! prior predictive) and, if the true θ is known, `n` simulations at θ_true. Every
//! simulation and x_o are divided, per dimension, by the standard deviation of the
//! prior-predictive simulations (a dimension without spread is left unscaled), a yardstick
//! that depends on the task only. We report
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
use simfer_benchmark::Task;
use simfer_distributions::derive_rng;
use simfer_simulators::{SimulationOptions, simulate_batch};

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
/// `min(n, m)` are simulated) at `x_o` for `task`. The posterior-predictive simulations
/// use the seed `seed`, those at θ_true `seed + 1`, and the prior draws and their
/// simulations the generator `derive_rng(seed, 2)` and the seed `seed + 2`.
///
/// # Errors
/// Simulator errors; all posterior-predictive simulations invalid.
pub fn predictive_distance(
    task: &dyn Task,
    samples: &DMatrix<f64>,
    x_o: &[f64],
    theta_true: Option<&[f64]>,
    n: usize,
    seed: u64,
) -> Result<Predictive> {
    let n = n.min(samples.ncols());
    let simulator = task.simulator();
    let simulate = |theta: &DMatrix<f64>, s: u64| {
        simulate_batch(
            simulator.as_ref(),
            theta,
            &SimulationOptions::with_seed(s).with_progress(false),
        )
    };
    let pp = simulate(&samples.columns(0, n).into_owned(), seed)?;
    let invalid = pp.invalid.num_invalid();
    let (_, pp_x) = pp.valid();
    anyhow::ensure!(
        pp_x.ncols() > 1,
        "{invalid} of {n} posterior-predictive simulations are invalid"
    );
    let prior_theta = task.prior().sample_batch(n, &mut derive_rng(seed, 2));
    let (_, prior_x) = simulate(&prior_theta, seed.wrapping_add(2))?.valid();
    let scale = if prior_x.ncols() > 1 {
        std_per_row(&prior_x)
    } else {
        vec![1.0; x_o.len()]
    };
    let scaled =
        |m: &DMatrix<f64>| DMatrix::from_fn(m.nrows(), m.ncols(), |i, j| m[(i, j)] / scale[i]);
    let x_o_scaled: Vec<f64> = x_o.iter().zip(&scale).map(|(v, s)| v / s).collect();
    let pp_scaled = scaled(&pp_x);
    let median_distance = median_distance_to(&pp_scaled, &x_o_scaled);
    let truth = match theta_true {
        Some(theta) => {
            let thetas = DMatrix::from_fn(theta.len(), n, |i, _| theta[i]);
            let (_, x) = simulate(&thetas, seed.wrapping_add(1))?.valid();
            (x.ncols() > 1).then_some(x)
        }
        None => None,
    };
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
        // linear_gaussian (3-D): x = θ + 1 + 0.1·ε with θ ~ U(−2, 2)³, so the prior
        // predictive has the variance 4/3 + 0.01 per dimension, and the scaled distance of a
        // simulation at θ to x_o = θ + 1 is 0.1·‖ε‖/√(4/3 + 0.01): 0.1/√(4/3 + 0.01) times a
        // chi variable with 3 degrees of freedom (median 1.5382).
        let task = simfer_benchmark::task("linear_gaussian").unwrap();
        let theta = [0.5, -0.5, 1.0];
        let x_o: Vec<f64> = theta.iter().map(|t| t + 1.0).collect();
        let at_truth = DMatrix::from_fn(3, 2000, |i, _| theta[i]);
        let p = predictive_distance(task.as_ref(), &at_truth, &x_o, Some(&theta), 2000, 3).unwrap();
        let expected = 0.1 / (4.0f64 / 3.0 + 0.01).sqrt() * 1.5382;
        // Sampling error of a median of 2000 draws, and of the estimated scale: ~3 %.
        assert!(
            (p.median_distance / expected - 1.0).abs() < 0.05,
            "{p:?} vs {expected}"
        );
        let floor = p.true_median_distance.unwrap();
        assert!((floor / expected - 1.0).abs() < 0.05, "{p:?} vs {expected}");
        assert!(p.mmd2.unwrap().abs() < 0.01, "{p:?}");
        assert_eq!((p.simulations, p.invalid), (2000, 0));

        let shifted = at_truth.add_scalar(0.3);
        let q = predictive_distance(task.as_ref(), &shifted, &x_o, Some(&theta), 2000, 3).unwrap();
        assert!(q.median_distance > 3.0 * p.median_distance, "{q:?}");
        assert!(q.mmd2.unwrap() > 0.1, "{q:?}");
        // Without θ_true: no floor, no MMD.
        let r = predictive_distance(task.as_ref(), &shifted, &x_o, None, 500, 3).unwrap();
        assert_eq!((r.true_median_distance, r.mmd2), (None, None));
        assert_eq!(r.simulations, 500);
    }
}
