//! two_moons.

use std::f64::consts::{FRAC_1_SQRT_2, PI};

use nalgebra::DMatrix;
use rand::{Rng, RngCore};
use rand_distr::{Distribution, StandardNormal};
use simfer_distributions::{BoxUniform, Prior};

use super::{ReferencePosterior, Task, check_observation, numbered_names, rejection_sample};
use simfer_simulators::{Simulator, SimulatorError, check_lengths};

use crate::BenchmarkError;

/// Draws the crescent point `p = (r·cos a + 0.25, r·sin a)`, a ~ U(−π/2, π/2),
/// r ~ N(0.1, 0.01²).
fn crescent_point(rng: &mut dyn RngCore) -> (f64, f64) {
    let a = PI * (rng.random::<f64>() - 0.5);
    let z: f64 = StandardNormal.sample(rng);
    let r = 0.1 + 0.01 * z;
    (r * a.cos() + 0.25, r * a.sin())
}

/// two_moons: θ ~ U(−1, 1)²; with the crescent point p (see the spec),
/// z0 = (θ1 + θ2)/√2, z1 = (−θ1 + θ2)/√2, x = p + (−|z0|, z1).
///
/// The posterior is sampled exactly by inverting the simulator ([`TwoMoonsPosterior`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TwoMoons;

impl Simulator for TwoMoons {
    fn theta_dim(&self) -> usize {
        2
    }
    fn x_dim(&self) -> usize {
        2
    }
    fn simulate(
        &self,
        theta: &[f64],
        rng: &mut dyn RngCore,
        out: &mut [f64],
    ) -> Result<(), SimulatorError> {
        check_lengths(self, theta, out)?;
        let (p0, p1) = crescent_point(rng);
        let z0 = (theta[0] + theta[1]) * FRAC_1_SQRT_2;
        let z1 = (-theta[0] + theta[1]) * FRAC_1_SQRT_2;
        out[0] = p0 - z0.abs();
        out[1] = p1 + z1;
        Ok(())
    }
}

impl Task for TwoMoons {
    fn name(&self) -> &'static str {
        "two_moons"
    }
    fn prior(&self) -> Box<dyn Prior> {
        Box::new(BoxUniform::uniform(2, -1.0, 1.0).expect("valid constants"))
    }
    fn simulator(&self) -> Box<dyn Simulator> {
        Box::new(*self)
    }
    fn parameter_names(&self) -> Vec<String> {
        numbered_names(2)
    }
    fn reference_posterior(
        &self,
        x_o: &[f64],
    ) -> Option<Result<Box<dyn ReferencePosterior>, BenchmarkError>> {
        Some(check_observation(x_o, 2).map(|()| {
            Box::new(TwoMoonsPosterior {
                x_o: [x_o[0], x_o[1]],
            }) as Box<dyn ReferencePosterior>
        }))
    }
}

/// The exact two_moons posterior for one observation, by inverting the simulator: draw the
/// crescent point p, set q = x_o − p, so that −|z0| = q0 and z1 = q1; pick the sign of z0
/// with probability ½ each, rotate back to θ, and keep θ if it lies in the prior box.
///
/// The map θ ↦ (−|z0|, z1) is a rotation (unit Jacobian) folded once, so each accepted θ
/// has density ∝ p_p(x_o − (−|z0|, z1)) on the box: exactly the posterior. Choosing the
/// sign at random (instead of keeping both roots) makes the samples independent.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TwoMoonsPosterior {
    x_o: [f64; 2],
}

impl ReferencePosterior for TwoMoonsPosterior {
    fn dim(&self) -> usize {
        2
    }

    fn sample(&self, n: usize, rng: &mut dyn RngCore) -> Result<DMatrix<f64>, BenchmarkError> {
        rejection_sample("the two_moons posterior", 2, n, rng, |rng, theta| {
            let (p0, p1) = crescent_point(rng);
            let positive = rng.random::<f64>() < 0.5;
            let (q0, q1) = (self.x_o[0] - p0, self.x_o[1] - p1);
            if q0 > 0.0 {
                return false;
            }
            let z0 = if positive { -q0 } else { q0 };
            let z1 = q1;
            theta[0] = (z0 - z1) * FRAC_1_SQRT_2;
            theta[1] = (z0 + z1) * FRAC_1_SQRT_2;
            theta.iter().all(|t| (-1.0..=1.0).contains(t))
        })
    }
}
