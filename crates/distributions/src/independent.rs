//! Products of independent priors.

use nalgebra::DVector;
use rand::RngCore;

use crate::error::check_len;
use crate::{DistributionError, Prior, PriorSpec, Support};

/// The product of independent priors of any kinds: θ is the concatenation of one draw of
/// each component, and `ln p(θ)` is the sum of the components' log-densities.
///
/// The usual case is a list of 1-D priors of mixed kinds (the reference library's
/// `MultipleIndependent`), but components of any dimension work.
///
/// ```
/// use simfer_distributions::{BoxUniform, Independent, LogNormal, Prior, Support};
/// let prior = Independent::new(vec![
///     Box::new(BoxUniform::new(vec![0.0], vec![1.0])?),
///     Box::new(LogNormal::new(vec![0.0], vec![1.0])?),
/// ])?;
/// assert_eq!(prior.dim(), 2);
/// assert_eq!(prior.support()[1], Support::Positive);
/// # Ok::<(), simfer_distributions::DistributionError>(())
/// ```
#[doc(alias = "MultipleIndependent")]
#[derive(Debug)]
pub struct Independent {
    components: Vec<Box<dyn Prior>>,
    /// `offsets[k]..offsets[k + 1]` are the dimensions of component k.
    offsets: Vec<usize>,
}

impl Independent {
    /// The product of `components`, in order.
    ///
    /// # Errors
    /// [`DistributionError::Empty`] for an empty list or a component of dimension 0.
    pub fn new(components: Vec<Box<dyn Prior>>) -> Result<Self, DistributionError> {
        if components.is_empty() || components.iter().any(|c| c.dim() == 0) {
            return Err(DistributionError::Empty {
                what: "Independent components",
            });
        }
        let mut offsets = vec![0];
        for c in &components {
            offsets.push(offsets[offsets.len() - 1] + c.dim());
        }
        Ok(Self {
            components,
            offsets,
        })
    }

    /// The components, in order.
    pub fn components(&self) -> &[Box<dyn Prior>] {
        &self.components
    }

    fn parts<'a>(&'a self, theta: &'a [f64]) -> impl Iterator<Item = (&'a dyn Prior, &'a [f64])> {
        self.components
            .iter()
            .zip(self.offsets.windows(2))
            .map(move |(c, w)| (c.as_ref(), &theta[w[0]..w[1]]))
    }

    fn concat(&self, f: impl Fn(&dyn Prior) -> Option<DVector<f64>>) -> Option<DVector<f64>> {
        let mut out = DVector::zeros(self.dim());
        for (c, w) in self.components.iter().zip(self.offsets.windows(2)) {
            out.rows_mut(w[0], w[1] - w[0]).copy_from(&f(c.as_ref())?);
        }
        Some(out)
    }
}

impl Prior for Independent {
    fn dim(&self) -> usize {
        self.offsets[self.offsets.len() - 1]
    }

    fn sample(&self, rng: &mut dyn RngCore) -> DVector<f64> {
        let mut out = DVector::zeros(self.dim());
        for (c, w) in self.components.iter().zip(self.offsets.windows(2)) {
            out.rows_mut(w[0], w[1] - w[0]).copy_from(&c.sample(rng));
        }
        out
    }

    fn log_prob(&self, theta: &[f64]) -> Result<f64, DistributionError> {
        check_len("θ", self.dim(), theta.len())?;
        let mut lp = 0.0;
        for (c, part) in self.parts(theta) {
            lp += c.log_prob(part)?;
        }
        Ok(lp)
    }

    fn grad_log_prob(&self, theta: &[f64]) -> Result<Vec<f64>, DistributionError> {
        check_len("θ", self.dim(), theta.len())?;
        let mut g = Vec::with_capacity(theta.len());
        for (c, part) in self.parts(theta) {
            g.extend(c.grad_log_prob(part)?);
        }
        Ok(g)
    }

    fn support(&self) -> Vec<Support> {
        self.components.iter().flat_map(|c| c.support()).collect()
    }

    fn in_support(&self, theta: &[f64]) -> bool {
        theta.len() == self.dim() && self.parts(theta).all(|(c, part)| c.in_support(part))
    }

    fn mean(&self) -> Option<DVector<f64>> {
        self.concat(|c| c.mean())
    }

    fn variance(&self) -> Option<DVector<f64>> {
        self.concat(|c| c.variance())
    }

    fn spec(&self) -> PriorSpec {
        PriorSpec::Independent {
            components: self.components.iter().map(|c| c.spec()).collect(),
        }
    }
}
