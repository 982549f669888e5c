//! bernoulli_glm and bernoulli_glm_raw.

use std::sync::OnceLock;

use nalgebra::DMatrix;
use rand::{Rng, RngCore};
use simfer_distributions::{MultivariateNormal, Prior};

use super::{Task, parse_csv};
use crate::simulator::check_lengths;
use crate::{Simulator, SimulatorError};

const T: usize = 100;
const P: usize = 10;

/// The design matrix X (100 × 10), row-major: `X[t,0] = 1`, `X[t,j+1] = I[t−j]` for t ≥ j.
fn design() -> &'static [[f64; P]; T] {
    static X: OnceLock<[[f64; P]; T]> = OnceLock::new();
    X.get_or_init(|| {
        let stimulus = parse_csv(include_str!("../../data/bernoulli_glm_stimulus.csv")).concat();
        assert_eq!(
            stimulus.len(),
            T,
            "embedded bernoulli_glm stimulus has the wrong length"
        );
        let mut x = [[0.0; P]; T];
        for (t, row) in x.iter_mut().enumerate() {
            row[0] = 1.0;
            for j in 0..P - 1 {
                if t >= j {
                    row[j + 1] = stimulus[t - j];
                }
            }
        }
        x
    })
}

/// bernoulli_glm (summary statistics `x = Xᵀy`, 10 values) and bernoulli_glm_raw
/// (`x = y`, 100 binary values).
///
/// θ = (β0, h1..h9) ~ N(0, B⁻¹) with precision B: `B[0,0] = 0.5`, `B[1:,1:] = FᵀF`,
/// F = D·D + diag(√(i/9)), i = 0..8, D = I₉ − (ones on the first subdiagonal).
/// y_t ~ Bernoulli(σ((Xθ)_t)), t = 1..100, with the design matrix X built from the embedded
/// stimulus: `X[t,0] = 1`, `X[t,j+1] = I[t−j]` for t ≥ j, else 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BernoulliGlm {
    raw: bool,
}

impl BernoulliGlm {
    /// bernoulli_glm: the 10 sufficient statistics `Xᵀy`.
    pub fn summary() -> Self {
        Self { raw: false }
    }

    /// bernoulli_glm_raw: the 100 binary responses `y`.
    pub fn raw() -> Self {
        Self { raw: true }
    }

    /// The prior precision matrix B (10 × 10).
    pub fn prior_precision() -> DMatrix<f64> {
        let m = P - 1;
        let d = DMatrix::from_fn(m, m, |i, j| {
            if i == j {
                1.0
            } else if i == j + 1 {
                -1.0
            } else {
                0.0
            }
        });
        let diag = DMatrix::from_fn(m, m, |i, j| {
            if i == j {
                (i as f64 / m as f64).sqrt()
            } else {
                0.0
            }
        });
        let f = &d * &d + diag;
        let ftf = f.transpose() * f;
        let mut b = DMatrix::zeros(P, P);
        b[(0, 0)] = 0.5;
        b.view_mut((1, 1), (m, m)).copy_from(&ftf);
        b
    }

    /// The design matrix X (100 × 10).
    pub fn design_matrix() -> DMatrix<f64> {
        DMatrix::from_row_iterator(T, P, design().iter().flatten().copied())
    }
}

impl Default for BernoulliGlm {
    /// bernoulli_glm (summary statistics).
    fn default() -> Self {
        Self::summary()
    }
}

impl Simulator for BernoulliGlm {
    fn theta_dim(&self) -> usize {
        P
    }
    fn x_dim(&self) -> usize {
        if self.raw { T } else { P }
    }
    fn simulate(
        &self,
        theta: &[f64],
        rng: &mut dyn RngCore,
        out: &mut [f64],
    ) -> Result<(), SimulatorError> {
        check_lengths(self, theta, out)?;
        if !self.raw {
            out.fill(0.0);
        }
        for (t, row) in design().iter().enumerate() {
            let eta: f64 = row.iter().zip(theta).map(|(a, b)| a * b).sum();
            let p = 1.0 / (1.0 + (-eta).exp());
            let y = if rng.random::<f64>() < p { 1.0 } else { 0.0 };
            if self.raw {
                out[t] = y;
            } else if y == 1.0 {
                for (o, a) in out.iter_mut().zip(row) {
                    *o += a;
                }
            }
        }
        Ok(())
    }
}

impl Task for BernoulliGlm {
    fn name(&self) -> &'static str {
        if self.raw {
            "bernoulli_glm_raw"
        } else {
            "bernoulli_glm"
        }
    }
    fn prior(&self) -> Box<dyn Prior> {
        Box::new(
            MultivariateNormal::from_precision(vec![0.0; P], Self::prior_precision())
                .expect("the bernoulli_glm precision is positive definite"),
        )
    }
    fn simulator(&self) -> Box<dyn Simulator> {
        Box::new(*self)
    }
    fn parameter_names(&self) -> Vec<String> {
        std::iter::once("beta_0".to_string())
            .chain((1..P).map(|i| format!("h_{i}")))
            .collect()
    }
}
