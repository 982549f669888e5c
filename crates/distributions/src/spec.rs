//! Serializable descriptions of priors.

use nalgebra::DMatrix;
use serde::{Deserialize, Serialize};

use crate::{BoxUniform, DistributionError, Independent, LogNormal, MultivariateNormal, Prior};

/// A serializable description of a prior, from which [`build`](Self::build) makes it again.
///
/// Matrices are lists of rows. Every prior of this crate round-trips exactly:
/// `prior.spec().build()` is the same distribution.
///
/// ```
/// use simfer_distributions::{BoxUniform, Prior, PriorSpec};
/// let spec = BoxUniform::uniform(2, 0.0, 1.0)?.spec();
/// let rebuilt = spec.build()?;
/// assert_eq!(rebuilt.spec(), spec);
/// # Ok::<(), simfer_distributions::DistributionError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PriorSpec {
    /// [`BoxUniform`].
    BoxUniform {
        /// Lower bounds.
        low: Vec<f64>,
        /// Upper bounds.
        high: Vec<f64>,
    },
    /// [`MultivariateNormal::new`].
    MultivariateNormal {
        /// Mean.
        mean: Vec<f64>,
        /// Covariance, as rows.
        covariance: Vec<Vec<f64>>,
    },
    /// [`MultivariateNormal::from_precision`].
    GaussianPrecision {
        /// Mean.
        mean: Vec<f64>,
        /// Precision matrix, as rows.
        precision: Vec<Vec<f64>>,
    },
    /// [`LogNormal`].
    LogNormal {
        /// Locations of ln θ.
        mu: Vec<f64>,
        /// Scales of ln θ.
        sigma: Vec<f64>,
    },
    /// [`Independent`].
    Independent {
        /// The components, in order.
        components: Vec<PriorSpec>,
    },
    /// A prior defined outside this crate; it cannot be rebuilt from its description.
    Custom {
        /// Its name (by default its `Debug` text).
        name: String,
    },
}

fn matrix(what: &'static str, rows: &[Vec<f64>]) -> Result<DMatrix<f64>, DistributionError> {
    let n = rows.len();
    if let Some(bad) = rows.iter().find(|r| r.len() != n) {
        return Err(DistributionError::ShapeMismatch {
            what,
            expected_rows: n,
            expected_cols: n,
            rows: n,
            cols: bad.len(),
        });
    }
    Ok(DMatrix::from_row_iterator(
        n,
        n,
        rows.iter().flatten().copied(),
    ))
}

impl PriorSpec {
    /// Builds the prior this describes, validating it as its constructor does.
    ///
    /// # Errors
    /// Whatever the constructor reports, and [`DistributionError::NotBuildable`] for
    /// [`PriorSpec::Custom`].
    pub fn build(&self) -> Result<Box<dyn Prior>, DistributionError> {
        Ok(match self {
            PriorSpec::BoxUniform { low, high } => {
                Box::new(BoxUniform::new(low.clone(), high.clone())?)
            }
            PriorSpec::MultivariateNormal { mean, covariance } => Box::new(
                MultivariateNormal::new(mean.clone(), matrix("covariance", covariance)?)?,
            ),
            PriorSpec::GaussianPrecision { mean, precision } => Box::new(
                MultivariateNormal::from_precision(mean.clone(), matrix("precision", precision)?)?,
            ),
            PriorSpec::LogNormal { mu, sigma } => {
                Box::new(LogNormal::new(mu.clone(), sigma.clone())?)
            }
            PriorSpec::Independent { components } => Box::new(Independent::new(
                components
                    .iter()
                    .map(PriorSpec::build)
                    .collect::<Result<_, _>>()?,
            )?),
            PriorSpec::Custom { name } => {
                return Err(DistributionError::NotBuildable { name: name.clone() });
            }
        })
    }
}
