//! slcp and slcp_distractors.

use std::sync::OnceLock;

use rand::{Rng, RngCore};
use rand_distr::{Distribution, Exp1, StandardNormal};
use simfer_distributions::{BoxUniform, Prior};

use super::{Task, numbered_names, parse_csv};
use crate::simulator::check_lengths;
use crate::{Simulator, SimulatorError};

/// Writes the 8 slcp values for θ into `out[..8]`.
fn slcp_values(theta: &[f64], rng: &mut dyn RngCore, out: &mut [f64]) {
    let (m0, m1) = (theta[0], theta[1]);
    let s1 = theta[2] * theta[2];
    let s2 = theta[3] * theta[3];
    let rho = theta[4].tanh();
    // Σ = [[s1², ρ s1 s2], [ρ s1 s2, s2²]] + 1e-6 I, factorized by hand.
    let c00 = s1 * s1 + 1e-6;
    let c01 = rho * s1 * s2;
    let c11 = s2 * s2 + 1e-6;
    let l00 = c00.sqrt();
    let l10 = c01 / l00;
    let l11 = (c11 - l10 * l10).max(0.0).sqrt();
    for pair in out[..8].chunks_exact_mut(2) {
        let za: f64 = StandardNormal.sample(rng);
        let zb: f64 = StandardNormal.sample(rng);
        pair[0] = m0 + l00 * za;
        pair[1] = m1 + l10 * za + l11 * zb;
    }
}

fn slcp_prior() -> Box<dyn Prior> {
    Box::new(BoxUniform::uniform(5, -3.0, 3.0).expect("valid constants"))
}

/// slcp: θ ~ U(−3, 3)⁵; m = (θ1, θ2), s1 = θ3², s2 = θ4², ρ = tanh θ5,
/// Σ = [[s1², ρ s1 s2], [ρ s1 s2, s2²]] + 1e-6·I; x = four draws of N(m, Σ), flattened
/// `[x1a, x1b, x2a, x2b, x3a, x3b, x4a, x4b]`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Slcp;

impl Simulator for Slcp {
    fn theta_dim(&self) -> usize {
        5
    }
    fn x_dim(&self) -> usize {
        8
    }
    fn simulate(
        &self,
        theta: &[f64],
        rng: &mut dyn RngCore,
        out: &mut [f64],
    ) -> Result<(), SimulatorError> {
        check_lengths(self, theta, out)?;
        slcp_values(theta, rng, out);
        Ok(())
    }
}

impl Task for Slcp {
    fn name(&self) -> &'static str {
        "slcp"
    }
    fn prior(&self) -> Box<dyn Prior> {
        slcp_prior()
    }
    fn simulator(&self) -> Box<dyn Simulator> {
        Box::new(*self)
    }
    fn parameter_names(&self) -> Vec<String> {
        numbered_names(5)
    }
}

const NOISE_DIM: usize = 92;
const COMPONENTS: usize = 20;

/// The distractor mixture and the output permutation (embedded data files).
struct DistractorData {
    /// `COMPONENTS` location vectors.
    locs: Vec<Vec<f64>>,
    /// `COMPONENTS` lower-triangular scale matrices, row-major `NOISE_DIM × NOISE_DIM`.
    scale_tril: Vec<Vec<f64>>,
    /// `out[j] = concat(data, noise)[perm[j]]`.
    perm: Vec<usize>,
}

fn distractor_data() -> &'static DistractorData {
    static DATA: OnceLock<DistractorData> = OnceLock::new();
    DATA.get_or_init(|| {
        let locs = parse_csv(include_str!("../../data/slcp_distractors_mixture_loc.csv"));
        let scale_tril = parse_csv(include_str!(
            "../../data/slcp_distractors_mixture_scale_tril.csv"
        ));
        let perm: Vec<usize> =
            parse_csv(include_str!("../../data/slcp_distractors_permutation.csv"))
                .concat()
                .into_iter()
                .map(|v| v as usize)
                .collect();
        assert!(
            locs.len() == COMPONENTS
                && locs.iter().all(|l| l.len() == NOISE_DIM)
                && scale_tril.len() == COMPONENTS
                && scale_tril.iter().all(|s| s.len() == NOISE_DIM * NOISE_DIM)
                && perm.len() == NOISE_DIM + 8,
            "embedded slcp_distractors data has the wrong shape"
        );
        DistractorData {
            locs,
            scale_tril,
            perm,
        }
    })
}

/// slcp_distractors: the 8 slcp values followed by 92 values that do not depend on θ,
/// drawn from an equal-weight mixture of 20 multivariate Student-t distributions (2 degrees
/// of freedom, locations and lower-triangular scales from the embedded data files), the
/// 100 values then permuted: `out[j] = concat(data, noise)[perm[j]]`.
///
/// The slcp values are drawn first from the same generator, so for the same generator
/// state the slcp part equals [`Slcp`]'s output, at positions
/// [`SlcpDistractors::DATA_POSITIONS`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SlcpDistractors;

impl SlcpDistractors {
    /// Where the 8 slcp values end up in the output.
    pub const DATA_POSITIONS: [usize; 8] = [22, 33, 23, 67, 42, 21, 16, 90];
}

impl Simulator for SlcpDistractors {
    fn theta_dim(&self) -> usize {
        5
    }
    fn x_dim(&self) -> usize {
        100
    }
    fn simulate(
        &self,
        theta: &[f64],
        rng: &mut dyn RngCore,
        out: &mut [f64],
    ) -> Result<(), SimulatorError> {
        check_lengths(self, theta, out)?;
        let data = distractor_data();
        let mut values = [0.0; 8 + NOISE_DIM];
        slcp_values(theta, rng, &mut values[..8]);
        let k = rng.random_range(0..COMPONENTS);
        let mut z = [0.0; NOISE_DIM];
        for v in &mut z {
            *v = StandardNormal.sample(rng);
        }
        // Multivariate t with ν = 2: loc + L z · sqrt(ν / w), w ~ χ²(ν) = 2·Exp(1).
        let e: f64 = Exp1.sample(rng);
        let scale = 1.0 / e.sqrt();
        let (loc, l) = (&data.locs[k], &data.scale_tril[k]);
        for i in 0..NOISE_DIM {
            let row = &l[i * NOISE_DIM..i * NOISE_DIM + i + 1];
            let lz: f64 = row.iter().zip(&z).map(|(a, b)| a * b).sum();
            values[8 + i] = loc[i] + lz * scale;
        }
        for (o, &p) in out.iter_mut().zip(&data.perm) {
            *o = values[p];
        }
        Ok(())
    }
}

impl Task for SlcpDistractors {
    fn name(&self) -> &'static str {
        "slcp_distractors"
    }
    fn prior(&self) -> Box<dyn Prior> {
        slcp_prior()
    }
    fn simulator(&self) -> Box<dyn Simulator> {
        Box::new(*self)
    }
    fn parameter_names(&self) -> Vec<String> {
        numbered_names(5)
    }
}
