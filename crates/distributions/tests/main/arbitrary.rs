//! Strategies of random priors for the property tests: every kind of prior of the crate,
//! with random dimensions and parameters, and products of them.

use nalgebra::DMatrix;
use proptest::collection::vec;
use proptest::prelude::*;
use simfer_distributions::{BoxUniform, Independent, LogNormal, MultivariateNormal, Prior};

/// The parameters of one prior; [`build`](Self::build) makes it.
#[derive(Clone, Debug)]
pub enum PriorParams {
    /// `BoxUniform` with bounds `low` and `low + width`.
    Box { low: Vec<f64>, width: Vec<f64> },
    /// `MultivariateNormal::new(mean, A Aᵀ + εI)`.
    Covariance {
        mean: Vec<f64>,
        a: Vec<f64>,
        eps: f64,
    },
    /// `MultivariateNormal::from_precision(mean, A Aᵀ + εI)`.
    Precision {
        mean: Vec<f64>,
        a: Vec<f64>,
        eps: f64,
    },
    /// `MultivariateNormal::diagonal(mean, variance)`.
    Diagonal { mean: Vec<f64>, variance: Vec<f64> },
    /// `LogNormal::new(mu, sigma)`.
    LogNormal { mu: Vec<f64>, sigma: Vec<f64> },
    /// A product of independent priors.
    Independent(Vec<PriorParams>),
}

/// `A Aᵀ + εI` for the `d × d` matrix `A` given column-major.
fn spd(d: usize, a: &[f64], eps: f64) -> DMatrix<f64> {
    let a = DMatrix::from_column_slice(d, d, a);
    &a * a.transpose() + DMatrix::identity(d, d) * eps
}

impl PriorParams {
    /// The prior.
    pub fn build(&self) -> Box<dyn Prior> {
        match self {
            PriorParams::Box { low, width } => {
                let high = low.iter().zip(width).map(|(l, w)| l + w).collect();
                Box::new(BoxUniform::new(low.clone(), high).unwrap())
            }
            PriorParams::Covariance { mean, a, eps } => {
                Box::new(MultivariateNormal::new(mean.clone(), spd(mean.len(), a, *eps)).unwrap())
            }
            PriorParams::Precision { mean, a, eps } => Box::new(
                MultivariateNormal::from_precision(mean.clone(), spd(mean.len(), a, *eps)).unwrap(),
            ),
            PriorParams::Diagonal { mean, variance } => {
                Box::new(MultivariateNormal::diagonal(mean.clone(), variance.clone()).unwrap())
            }
            PriorParams::LogNormal { mu, sigma } => {
                Box::new(LogNormal::new(mu.clone(), sigma.clone()).unwrap())
            }
            PriorParams::Independent(parts) => {
                Box::new(Independent::new(parts.iter().map(PriorParams::build).collect()).unwrap())
            }
        }
    }
}

/// One prior that is not a product, of dimension 1 to 3.
///
/// A box's lower bounds lie in `±50` and its widths in `[10⁻², 50)`, so that its bounds
/// are at most 10⁴ widths from 0 (the transform's finite-difference checks lose a factor
/// `|bound| / width` to rounding).
pub fn simple_prior() -> impl Strategy<Value = PriorParams> {
    (1usize..=3).prop_flat_map(|d| {
        prop_oneof![
            (vec(-50.0f64..50.0, d), vec(1e-2f64..50.0, d))
                .prop_map(|(low, width)| PriorParams::Box { low, width }),
            (
                vec(-10.0f64..10.0, d),
                vec(-2.0f64..2.0, d * d),
                0.05f64..2.0
            )
                .prop_map(|(mean, a, eps)| PriorParams::Covariance { mean, a, eps }),
            (
                vec(-10.0f64..10.0, d),
                vec(-2.0f64..2.0, d * d),
                0.05f64..2.0
            )
                .prop_map(|(mean, a, eps)| PriorParams::Precision { mean, a, eps }),
            (vec(-10.0f64..10.0, d), vec(1e-2f64..20.0, d))
                .prop_map(|(mean, variance)| PriorParams::Diagonal { mean, variance }),
            (vec(-3.0f64..3.0, d), vec(0.05f64..2.0, d))
                .prop_map(|(mu, sigma)| PriorParams::LogNormal { mu, sigma }),
        ]
    })
}

/// Any prior: one of [`simple_prior`], or a product of one to three of them.
pub fn any_prior() -> impl Strategy<Value = PriorParams> {
    prop_oneof![
        2 => simple_prior(),
        1 => vec(simple_prior(), 1..=3).prop_map(PriorParams::Independent),
    ]
}
