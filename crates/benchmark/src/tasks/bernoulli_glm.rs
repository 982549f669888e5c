//! bernoulli_glm and bernoulli_glm_raw.

use simfer_nn::fastmath::{sigmoid, softplus};
use std::sync::OnceLock;

use nalgebra::{Cholesky, DMatrix, DVector};
use rand::{Rng, RngCore};
use rand_distr::{Distribution, StandardNormal};
use simfer_distributions::{MultivariateNormal, Prior, SeededRng};

use super::{ReferencePosterior, Task, check_observation, parse_csv};
use simfer_mcmc::{LogDensity, McmcDiagnostics, Metropolis, MetropolisSettings, MetropolisTarget};
use simfer_simulators::{Simulator, SimulatorError, check_lengths};

use crate::BenchmarkError;

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
        parameter_names()
    }
    /// The exact posterior ([`BernoulliGlmPosterior`]); for bernoulli_glm_raw `x_o` must
    /// be binary.
    fn reference_posterior(
        &self,
        x_o: &[f64],
    ) -> Option<Result<Box<dyn ReferencePosterior>, BenchmarkError>> {
        let posterior = if self.raw {
            BernoulliGlmPosterior::from_responses(x_o)
        } else {
            BernoulliGlmPosterior::new(x_o)
        };
        Some(posterior.map(|p| Box::new(p) as Box<dyn ReferencePosterior>))
    }
}

fn parameter_names() -> Vec<String> {
    std::iter::once("beta_0".to_string())
        .chain((1..P).map(|i| format!("h_{i}")))
        .collect()
}

/// The columns of X and the prior precision B as plain arrays, for the log density.
struct GlmArrays {
    /// `columns[j][t] = X[t, j]`.
    columns: [[f64; T]; P],
    precision: [[f64; P]; P],
}

fn arrays() -> &'static GlmArrays {
    static A: OnceLock<GlmArrays> = OnceLock::new();
    A.get_or_init(|| {
        let x = design();
        let b = BernoulliGlm::prior_precision();
        let mut columns = [[0.0; T]; P];
        for (t, row) in x.iter().enumerate() {
            for j in 0..P {
                columns[j][t] = row[j];
            }
        }
        let mut precision = [[0.0; P]; P];
        for i in 0..P {
            for j in 0..P {
                precision[i][j] = b[(i, j)];
            }
        }
        GlmArrays { columns, precision }
    })
}

/// The exact bernoulli_glm posterior for one observation, sampled by MCMC on the exact
/// likelihood (see [`simfer_mcmc::metropolis`] for the sampler, its checks and its
/// budget).
///
/// The Bernoulli GLM likelihood depends on the responses y only through the sufficient
/// statistics `s = Xᵀy`: `ln p(y | θ) = θᵀs − Σ_t ln(1 + exp((Xθ)_t))`. So the summary
/// observation of bernoulli_glm determines the exact likelihood, and bernoulli_glm_raw
/// (`x_o = y`) has the same posterior as bernoulli_glm with `x_o = Xᵀy`
/// ([`from_responses`](Self::from_responses)). With the Gaussian prior `N(0, B⁻¹)` the log
/// posterior `θᵀs − Σ_t ln(1 + exp((Xθ)_t)) − ½ θᵀBθ` is strictly concave: one mode, found
/// by Newton's method. The Laplace approximation there (mean at the mode, covariance the
/// inverse negative Hessian) gives the chains their first proposal covariance and their
/// over-dispersed starting points (the mode plus twice a Laplace draw's deviation).
///
/// ```
/// use simfer_benchmark::tasks::{BernoulliGlm, BernoulliGlmPosterior};
/// use simfer_simulators::Simulator;
/// use simfer_benchmark::MetropolisSettings;
/// let mut y = [0.0; 100];
/// let theta = [0.5, 0.8, -0.3, 0.2, 0.1, -0.4, 0.3, 0.0, -0.1, 0.25];
/// BernoulliGlm::raw().simulate(&theta, &mut simfer_distributions::rng_from_seed(3), &mut y)?;
/// let posterior = BernoulliGlmPosterior::from_responses(&y)?;
/// let (samples, diagnostics) =
///     posterior.sample_with_diagnostics(100, &mut simfer_distributions::rng_from_seed(1))?;
/// assert_eq!(samples.shape(), (10, 100));
/// assert!(diagnostics.max_rhat() <= 1.01);
/// # Ok::<(), simfer_benchmark::BenchmarkError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct BernoulliGlmPosterior {
    statistics: [f64; P],
    mode: DVector<f64>,
    /// The negative Hessian of the log posterior at the mode.
    precision: DMatrix<f64>,
    settings: MetropolisSettings,
}

impl BernoulliGlmPosterior {
    /// The posterior for the bernoulli_glm observation `x_o = Xᵀy` (10 values), with the
    /// default [`MetropolisSettings`].
    ///
    /// # Errors
    /// An `x_o` whose length is not 10, or with non-finite values;
    /// [`BenchmarkError::InvalidArgument`] if Newton's method finds no mode (only for
    /// statistics far beyond anything 100 binary responses give).
    pub fn new(x_o: &[f64]) -> Result<Self, BenchmarkError> {
        check_observation(x_o, P)?;
        let mut statistics = [0.0; P];
        statistics.copy_from_slice(x_o);
        let (mode, precision) = newton_mode(&statistics)?;
        Ok(Self {
            statistics,
            mode,
            precision,
            settings: MetropolisSettings::default(),
        })
    }

    /// The posterior for the bernoulli_glm_raw observation `y` (100 values, each 0 or 1):
    /// the same as [`new`](Self::new) with `Xᵀy`.
    ///
    /// # Errors
    /// A `y` whose length is not 100, or with a value other than 0 and 1.
    pub fn from_responses(y: &[f64]) -> Result<Self, BenchmarkError> {
        check_observation(y, T)?;
        if let Some(t) = y.iter().position(|&v| v != 0.0 && v != 1.0) {
            return Err(BenchmarkError::InvalidArgument(format!(
                "bernoulli_glm_raw observations are binary, but y[{t}] = {}",
                y[t]
            )));
        }
        let cols = &arrays().columns;
        let statistics: Vec<f64> = cols
            .iter()
            .map(|c| c.iter().zip(y).map(|(a, b)| a * b).sum())
            .collect();
        Self::new(&statistics)
    }

    /// This posterior sampled with other MCMC settings.
    ///
    /// # Errors
    /// Settings that fail [`MetropolisSettings::check`].
    pub fn with_settings(mut self, settings: MetropolisSettings) -> Result<Self, BenchmarkError> {
        settings.check()?;
        self.settings = settings;
        Ok(self)
    }

    /// The sufficient statistics `Xᵀy` the posterior is conditioned on.
    pub fn statistics(&self) -> &[f64; 10] {
        &self.statistics
    }

    /// The MCMC settings.
    pub fn settings(&self) -> &MetropolisSettings {
        &self.settings
    }

    /// The posterior mode (maximum a posteriori), by Newton's method.
    pub fn mode(&self) -> &DVector<f64> {
        &self.mode
    }

    /// The covariance of the Laplace approximation: the inverse of the negative Hessian of
    /// the log posterior at the mode.
    pub fn laplace_covariance(&self) -> DMatrix<f64> {
        Cholesky::new(self.precision.clone())
            .map(|c| c.inverse())
            .expect("the negative Hessian of a strictly concave function is positive definite")
    }

    /// The unnormalized log posterior `θᵀs − Σ_t ln(1 + exp((Xθ)_t)) − ½ θᵀBθ` (the log
    /// likelihood plus the log prior, without their constants).
    ///
    /// # Errors
    /// [`SimulatorError::ThetaDimension`] unless θ has 10 values.
    pub fn log_density(&self, theta: &[f64]) -> Result<f64, BenchmarkError> {
        if theta.len() != P {
            return Err(SimulatorError::ThetaDimension {
                expected: P,
                found: theta.len(),
            }
            .into());
        }
        Ok(log_posterior(&self.statistics, theta))
    }

    /// `n` samples (`10 × n`) and the diagnostics of the run that produced them.
    ///
    /// # Errors
    /// [`BenchmarkError::Mcmc`] with [`simfer_mcmc::McmcError::Convergence`] when the
    /// chains do not pass the convergence checks within the budget.
    pub fn sample_with_diagnostics(
        &self,
        n: usize,
        rng: &mut dyn RngCore,
    ) -> Result<(DMatrix<f64>, McmcDiagnostics), BenchmarkError> {
        Ok(Metropolis::new(self.settings.clone())?.sample(
            self,
            "the bernoulli_glm posterior",
            &parameter_names(),
            n,
            rng,
        )?)
    }
}

impl ReferencePosterior for BernoulliGlmPosterior {
    fn dim(&self) -> usize {
        P
    }
    fn sample(&self, n: usize, rng: &mut dyn RngCore) -> Result<DMatrix<f64>, BenchmarkError> {
        if n == 0 {
            return Ok(DMatrix::zeros(P, 0));
        }
        Ok(self.sample_with_diagnostics(n, rng)?.0)
    }
}

impl LogDensity for BernoulliGlmPosterior {
    fn dim(&self) -> usize {
        P
    }

    fn log_density(&self, x: &[f64]) -> f64 {
        log_posterior(&self.statistics, x)
    }
}

impl MetropolisTarget for BernoulliGlmPosterior {
    /// The mode plus twice the deviation of a draw from the Laplace approximation.
    fn initial_point(&self, rng: &mut SeededRng) -> Vec<f64> {
        let z = DVector::from_fn(P, |_, _| {
            let v: f64 = StandardNormal.sample(&mut *rng);
            2.0 * v
        });
        // θ = mode + U⁻¹ z with H = Uᵀ U (U = Lᵀ): covariance 4 H⁻¹.
        let l = Cholesky::new(self.precision.clone())
            .expect("the negative Hessian at the mode is positive definite")
            .l();
        let dev = l
            .transpose()
            .solve_upper_triangular(&z)
            .expect("a Cholesky factor has a positive diagonal");
        (&self.mode + dev).iter().copied().collect()
    }

    fn initial_covariance(&self, _: &mut SeededRng) -> DMatrix<f64> {
        self.laplace_covariance()
    }
}

/// `θᵀs − Σ_t softplus((Xθ)_t) − ½ θᵀBθ`.
fn log_posterior(statistics: &[f64; P], theta: &[f64]) -> f64 {
    let a = arrays();
    let mut eta = [0.0; T];
    for (column, &th) in a.columns.iter().zip(theta) {
        for (e, x) in eta.iter_mut().zip(column) {
            *e += th * x;
        }
    }
    let mut value: f64 = statistics.iter().zip(theta).map(|(s, t)| s * t).sum();
    value -= eta.iter().map(|&e| softplus(e)).sum::<f64>();
    let mut quad = 0.0;
    for (row, &ti) in a.precision.iter().zip(theta) {
        quad += ti * row.iter().zip(theta).map(|(b, t)| b * t).sum::<f64>();
    }
    value - 0.5 * quad
}

/// The mode of the log posterior and the negative Hessian there, by Newton's method with
/// backtracking (the log posterior is strictly concave, so this converges from θ = 0).
fn newton_mode(statistics: &[f64; P]) -> Result<(DVector<f64>, DMatrix<f64>), BenchmarkError> {
    let x = BernoulliGlm::design_matrix();
    let b = BernoulliGlm::prior_precision();
    let s = DVector::from_column_slice(statistics);
    let mut theta = DVector::zeros(P);
    let mut value = log_posterior(statistics, theta.as_slice());
    for _ in 0..200 {
        let eta = &x * &theta;
        let p = eta.map(sigmoid);
        let gradient = &s - x.transpose() * &p - &b * &theta;
        let mut weighted = x.clone();
        for (t, mut row) in weighted.row_iter_mut().enumerate() {
            row *= p[t] * (1.0 - p[t]);
        }
        let hessian = &b + x.transpose() * weighted;
        let Some(chol) = Cholesky::new(hessian.clone()) else {
            break;
        };
        let step = chol.solve(&gradient);
        let decrement = gradient.dot(&step);
        if !decrement.is_finite() {
            break;
        }
        // The decrement is the squared length of the Newton step in the metric of the
        // Hessian: below 1e-18, θ is within 1e-9 posterior standard deviations of the mode.
        if decrement < 1e-18 {
            return Ok((theta, hessian));
        }
        // Backtracking (Armijo) along the Newton direction; near the mode, where the
        // change of the value is lost in rounding, the full step.
        let mut t = 1.0;
        if decrement > 1e-8 {
            for _ in 0..60 {
                let v = log_posterior(statistics, (&theta + &step * t).as_slice());
                if v >= value + 0.25 * t * decrement {
                    break;
                }
                t *= 0.5;
            }
        }
        theta += &step * t;
        value = log_posterior(statistics, theta.as_slice());
    }
    Err(BenchmarkError::InvalidArgument(format!(
        "Newton's method found no mode of the bernoulli_glm posterior for x_o = \
         {statistics:?}; the statistics Xᵀy of 100 binary responses are far smaller"
    )))
}
