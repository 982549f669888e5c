//! The Gaussian tasks: linear_gaussian, gaussian_linear, gaussian_linear_uniform and
//! gaussian_mixture.

use rand::{Rng, RngCore};
use rand_distr::{Distribution, StandardNormal};
use simfer_distributions::{BoxUniform, MultivariateNormal, Prior};

use super::reference::{GaussianPosterior, TruncatedGaussianMixture};
use super::{ReferencePosterior, Task, check_observation, numbered_names};
use simfer_simulators::{Simulator, SimulatorError, check_lengths};

use crate::BenchmarkError;

/// Writes `θ + shift + scale·ε`, ε ~ N(0, I), into `out`.
fn add_noise(theta: &[f64], shift: f64, scale: f64, rng: &mut dyn RngCore, out: &mut [f64]) {
    for (o, t) in out.iter_mut().zip(theta) {
        let z: f64 = StandardNormal.sample(rng);
        *o = t + shift + scale * z;
    }
}

fn boxed_reference(
    x_o: &[f64],
    x_dim: usize,
    build: impl FnOnce() -> Box<dyn ReferencePosterior>,
) -> Option<Result<Box<dyn ReferencePosterior>, BenchmarkError>> {
    Some(check_observation(x_o, x_dim).map(|()| build()))
}

/// The tutorial task in D dimensions: θ ~ U(−2, 2)^D, x = θ + 1 + 0.1·ε.
///
/// Posterior: `N(x_o − 1, 0.01·I)` truncated to the box.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinearGaussian {
    dim: usize,
}

impl LinearGaussian {
    /// The task in `dim` dimensions.
    ///
    /// # Errors
    /// [`BenchmarkError::InvalidArgument`] for `dim == 0`.
    pub fn new(dim: usize) -> Result<Self, BenchmarkError> {
        if dim == 0 {
            return Err(BenchmarkError::InvalidArgument(
                "linear_gaussian needs a dimension of at least 1, found 0".into(),
            ));
        }
        Ok(Self { dim })
    }
}

impl Default for LinearGaussian {
    /// D = 3, as in the tutorial.
    fn default() -> Self {
        Self { dim: 3 }
    }
}

impl Simulator for LinearGaussian {
    fn theta_dim(&self) -> usize {
        self.dim
    }
    fn x_dim(&self) -> usize {
        self.dim
    }
    fn simulate(
        &self,
        theta: &[f64],
        rng: &mut dyn RngCore,
        out: &mut [f64],
    ) -> Result<(), SimulatorError> {
        check_lengths(self, theta, out)?;
        add_noise(theta, 1.0, 0.1, rng, out);
        Ok(())
    }
}

impl Task for LinearGaussian {
    fn name(&self) -> &'static str {
        "linear_gaussian"
    }
    fn prior(&self) -> Box<dyn Prior> {
        Box::new(BoxUniform::uniform(self.dim, -2.0, 2.0).expect("dim >= 1 and -2 < 2"))
    }
    fn simulator(&self) -> Box<dyn Simulator> {
        Box::new(*self)
    }
    fn parameter_names(&self) -> Vec<String> {
        numbered_names(self.dim)
    }
    fn reference_posterior(
        &self,
        x_o: &[f64],
    ) -> Option<Result<Box<dyn ReferencePosterior>, BenchmarkError>> {
        boxed_reference(x_o, self.dim, || {
            Box::new(TruncatedGaussianMixture::new(
                "the linear_gaussian posterior".into(),
                vec![(1.0, x_o.iter().map(|x| x - 1.0).collect(), 0.1)],
                vec![-2.0; self.dim],
                vec![2.0; self.dim],
            ))
        })
    }
}

/// gaussian_linear: θ ~ N(0, 0.1·I) in 10 dimensions, x ~ N(θ, 0.1·I).
///
/// Posterior: `N(x_o/2, 0.05·I)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GaussianLinear;

impl Simulator for GaussianLinear {
    fn theta_dim(&self) -> usize {
        10
    }
    fn x_dim(&self) -> usize {
        10
    }
    fn simulate(
        &self,
        theta: &[f64],
        rng: &mut dyn RngCore,
        out: &mut [f64],
    ) -> Result<(), SimulatorError> {
        check_lengths(self, theta, out)?;
        add_noise(theta, 0.0, 0.1f64.sqrt(), rng, out);
        Ok(())
    }
}

impl Task for GaussianLinear {
    fn name(&self) -> &'static str {
        "gaussian_linear"
    }
    fn prior(&self) -> Box<dyn Prior> {
        Box::new(MultivariateNormal::isotropic(vec![0.0; 10], 0.1).expect("valid constants"))
    }
    fn simulator(&self) -> Box<dyn Simulator> {
        Box::new(*self)
    }
    fn parameter_names(&self) -> Vec<String> {
        numbered_names(10)
    }
    fn reference_posterior(
        &self,
        x_o: &[f64],
    ) -> Option<Result<Box<dyn ReferencePosterior>, BenchmarkError>> {
        boxed_reference(x_o, 10, || {
            let mean = x_o.iter().map(|x| 0.5 * x).collect();
            Box::new(GaussianPosterior::new(
                MultivariateNormal::isotropic(mean, 0.05).expect("x_o checked finite"),
            ))
        })
    }
}

/// gaussian_linear_uniform: θ ~ U(−1, 1)^10, x ~ N(θ, 0.1·I).
///
/// Posterior: `N(x_o, 0.1·I)` truncated to the box.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GaussianLinearUniform;

impl Simulator for GaussianLinearUniform {
    fn theta_dim(&self) -> usize {
        10
    }
    fn x_dim(&self) -> usize {
        10
    }
    fn simulate(
        &self,
        theta: &[f64],
        rng: &mut dyn RngCore,
        out: &mut [f64],
    ) -> Result<(), SimulatorError> {
        check_lengths(self, theta, out)?;
        add_noise(theta, 0.0, 0.1f64.sqrt(), rng, out);
        Ok(())
    }
}

impl Task for GaussianLinearUniform {
    fn name(&self) -> &'static str {
        "gaussian_linear_uniform"
    }
    fn prior(&self) -> Box<dyn Prior> {
        Box::new(BoxUniform::uniform(10, -1.0, 1.0).expect("valid constants"))
    }
    fn simulator(&self) -> Box<dyn Simulator> {
        Box::new(*self)
    }
    fn parameter_names(&self) -> Vec<String> {
        numbered_names(10)
    }
    fn reference_posterior(
        &self,
        x_o: &[f64],
    ) -> Option<Result<Box<dyn ReferencePosterior>, BenchmarkError>> {
        boxed_reference(x_o, 10, || {
            Box::new(TruncatedGaussianMixture::new(
                "the gaussian_linear_uniform posterior".into(),
                vec![(1.0, x_o.to_vec(), 0.1f64.sqrt())],
                vec![-1.0; 10],
                vec![1.0; 10],
            ))
        })
    }
}

/// gaussian_mixture: θ ~ U(−10, 10)², x ~ 0.5·N(θ, I) + 0.5·N(θ, 0.01·I), the component
/// drawn once per simulation.
///
/// Posterior: `0.5·N(x_o, I) + 0.5·N(x_o, 0.01·I)` truncated to the box.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GaussianMixture;

impl Simulator for GaussianMixture {
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
        let scale = if rng.random::<f64>() < 0.5 { 1.0 } else { 0.1 };
        add_noise(theta, 0.0, scale, rng, out);
        Ok(())
    }
}

impl Task for GaussianMixture {
    fn name(&self) -> &'static str {
        "gaussian_mixture"
    }
    fn prior(&self) -> Box<dyn Prior> {
        Box::new(BoxUniform::uniform(2, -10.0, 10.0).expect("valid constants"))
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
        boxed_reference(x_o, 2, || {
            Box::new(TruncatedGaussianMixture::new(
                "the gaussian_mixture posterior".into(),
                vec![(0.5, x_o.to_vec(), 1.0), (0.5, x_o.to_vec(), 0.1)],
                vec![-10.0; 2],
                vec![10.0; 2],
            ))
        })
    }
}
