//! slcp and slcp_distractors.

use std::f64::consts::PI;
use std::sync::OnceLock;

use nalgebra::DMatrix;
use rand::{Rng, RngCore};
use rand_distr::{Distribution, Exp1, StandardNormal};
use simfer_distributions::{BoxUniform, Prior, SeededRng};

use super::{ReferencePosterior, Task, check_observation, numbered_names, parse_csv};
use simfer_mcmc::{LogDensity, McmcDiagnostics, Metropolis, MetropolisSettings, MetropolisTarget};
use simfer_simulators::{Simulator, SimulatorError, check_lengths};

use crate::BenchmarkError;

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
    fn reference_posterior(
        &self,
        x_o: &[f64],
    ) -> Option<Result<Box<dyn ReferencePosterior>, BenchmarkError>> {
        Some(SlcpPosterior::new(x_o).map(|p| Box::new(p) as Box<dyn ReferencePosterior>))
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

    /// The 8 slcp values of a slcp_distractors observation (the entries at
    /// [`DATA_POSITIONS`](Self::DATA_POSITIONS)).
    ///
    /// # Errors
    /// An `x_o` whose length is not 100, or with non-finite values.
    pub fn slcp_data(x_o: &[f64]) -> Result<[f64; 8], BenchmarkError> {
        check_observation(x_o, NOISE_DIM + 8)?;
        Ok(Self::DATA_POSITIONS.map(|p| x_o[p]))
    }
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
    /// The slcp posterior of the 8 real data values ([`SlcpDistractors::slcp_data`]).
    fn reference_posterior(
        &self,
        x_o: &[f64],
    ) -> Option<Result<Box<dyn ReferencePosterior>, BenchmarkError>> {
        Some(
            Self::slcp_data(x_o)
                .and_then(|data| SlcpPosterior::new(&data))
                .map(|p| Box::new(p) as Box<dyn ReferencePosterior>),
        )
    }
}

/// The half-width of the slcp prior box.
const BOX: f64 = 3.0;
/// The jitter added to the diagonal of Σ.
const JITTER: f64 = 1e-6;

/// The exact slcp posterior for one observation, sampled by MCMC on the exact likelihood
/// (see [`simfer_mcmc::metropolis`] for the sampler, its checks and its budget).
///
/// The likelihood is that of four i.i.d. draws `x_i ~ N(m, Σ)`, exactly as
/// [`Slcp`] simulates them: `m = (θ1, θ2)`, `s1 = θ3²`, `s2 = θ4²`, `ρ = tanh θ5`,
/// `Σ = [[s1² + 10⁻⁶, ρ s1 s2], [ρ s1 s2, s2² + 10⁻⁶]]`; the prior is U(−3, 3)⁵.
///
/// **The mirror modes.** The likelihood depends on θ3 and θ4 only through their squares,
/// and the prior is symmetric, so the posterior is invariant under θ3 → −θ3 and
/// θ4 → −θ4: four mirror images of equal mass. The chains run on the folded posterior of
/// `(θ1, θ2, |θ3|, |θ4|, θ5)` on `[−3, 3]² × [0, 3]² × [−3, 3]` (density ∝ likelihood), and
/// every returned sample gets independent fair random signs for θ3 and θ4: exactly the
/// symmetric posterior, with the four modes at exactly equal mass. The chains move in the
/// coordinates `(u, ln|θ3|, ln|θ4|, θ5)` with `m = x̄ + ½ L u`, `L Lᵀ = Σ`, `x̄` the mean of
/// the four points (with the Jacobians in the density): the non-centred u removes the
/// funnel between the mean and the scales, and the log scales make the scales' heavy tail
/// easy to explore. The diagnostics are computed on `(θ1, θ2, |θ3|, |θ4|, θ5)`.
///
/// **No other modes.** On the folded space `(|θ3|, |θ4|, θ5) ↦ Σ` is one-to-one (for
/// |θ3|, |θ4| > 0), and the Gaussian likelihood of four points has a single maximum in
/// `(m, Σ)`, so the folded posterior has a single interior mode (the prior box can only cut
/// it). Each chain still starts from its own importance resample of 10 000 prior draws
/// (weights ∝ likelihood), and R̂ compares the chains, so a mode missed by some chains would
/// fail the check rather than go unnoticed.
///
/// ```
/// use simfer_benchmark::tasks::SlcpPosterior;
/// let x_o = [0.8, -1.2, 1.1, -0.4, 0.3, -0.9, 1.4, -1.6];
/// let posterior = SlcpPosterior::new(&x_o)?;
/// let (samples, diagnostics) =
///     posterior.sample_with_diagnostics(200, &mut simfer_distributions::rng_from_seed(1))?;
/// assert_eq!(samples.shape(), (5, 200));
/// assert!(diagnostics.max_rhat() <= 1.01 && diagnostics.min_ess() >= 200.0);
/// // The mirror images have the same density.
/// let theta = [0.5, -0.8, 1.2, 0.9, 0.3];
/// let mirrored = [0.5, -0.8, -1.2, 0.9, 0.3];
/// assert_eq!(posterior.log_density(&theta)?, posterior.log_density(&mirrored)?);
/// # Ok::<(), simfer_benchmark::BenchmarkError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct SlcpPosterior {
    x_o: [f64; 8],
    /// Mean of the four points.
    mean: [f64; 2],
    /// Scatter of the four points about their mean: `[Sxx, Sxy, Syy]`.
    scatter: [f64; 3],
    settings: MetropolisSettings,
}

impl SlcpPosterior {
    /// The posterior for the slcp observation `x_o` (8 values:
    /// `[x1a, x1b, x2a, x2b, x3a, x3b, x4a, x4b]`), with the default [`MetropolisSettings`].
    ///
    /// # Errors
    /// An `x_o` whose length is not 8, or with non-finite values.
    pub fn new(x_o: &[f64]) -> Result<Self, BenchmarkError> {
        check_observation(x_o, 8)?;
        let mut x = [0.0; 8];
        x.copy_from_slice(x_o);
        let mean = [
            (x[0] + x[2] + x[4] + x[6]) / 4.0,
            (x[1] + x[3] + x[5] + x[7]) / 4.0,
        ];
        let mut scatter = [0.0; 3];
        for p in x.chunks_exact(2) {
            let (a, b) = (p[0] - mean[0], p[1] - mean[1]);
            scatter[0] += a * a;
            scatter[1] += a * b;
            scatter[2] += b * b;
        }
        Ok(Self {
            x_o: x,
            mean,
            scatter,
            settings: MetropolisSettings::default(),
        })
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

    /// The observation.
    pub fn observation(&self) -> &[f64; 8] {
        &self.x_o
    }

    /// The MCMC settings.
    pub fn settings(&self) -> &MetropolisSettings {
        &self.settings
    }

    /// `ln p(x_o | θ)` for any θ ∈ ℝ⁵ (the prior plays no part).
    ///
    /// # Errors
    /// [`SimulatorError::ThetaDimension`] unless θ has 5 values.
    pub fn log_likelihood(&self, theta: &[f64]) -> Result<f64, BenchmarkError> {
        check_theta(theta)?;
        Ok(self.log_likelihood_unchecked(theta))
    }

    /// The unnormalized log posterior `ln p(x_o | θ) + ln p(θ)`: the log-likelihood minus
    /// `5 ln 6` inside the prior box, −∞ outside.
    ///
    /// # Errors
    /// [`SimulatorError::ThetaDimension`] unless θ has 5 values.
    pub fn log_density(&self, theta: &[f64]) -> Result<f64, BenchmarkError> {
        check_theta(theta)?;
        Ok(if theta.iter().all(|t| (-BOX..=BOX).contains(t)) {
            self.log_likelihood_unchecked(theta) - 5.0 * (2.0 * BOX).ln()
        } else {
            f64::NEG_INFINITY
        })
    }

    /// `n` samples (`5 × n`) and the diagnostics of the run that produced them.
    ///
    /// # Errors
    /// [`BenchmarkError::Mcmc`] with [`simfer_mcmc::McmcError::Convergence`] when the
    /// chains do not pass the convergence checks within the budget.
    pub fn sample_with_diagnostics(
        &self,
        n: usize,
        rng: &mut dyn RngCore,
    ) -> Result<(DMatrix<f64>, McmcDiagnostics), BenchmarkError> {
        let names = ["theta_1", "theta_2", "|theta_3|", "|theta_4|", "theta_5"].map(String::from);
        let (mut samples, diagnostics) = Metropolis::new(self.settings.clone())?.sample(
            &Folded(self),
            "the slcp posterior",
            &names,
            n,
            rng,
        )?;
        for mut col in samples.column_iter_mut() {
            let bits = rng.next_u32();
            if bits & 1 == 1 {
                col[2] = -col[2];
            }
            if bits & 2 == 2 {
                col[3] = -col[3];
            }
        }
        Ok((samples, diagnostics))
    }
}

fn check_theta(theta: &[f64]) -> Result<(), BenchmarkError> {
    if theta.len() != 5 {
        return Err(SimulatorError::ThetaDimension {
            expected: 5,
            found: theta.len(),
        }
        .into());
    }
    Ok(())
}

impl ReferencePosterior for SlcpPosterior {
    fn dim(&self) -> usize {
        5
    }
    fn sample(&self, n: usize, rng: &mut dyn RngCore) -> Result<DMatrix<f64>, BenchmarkError> {
        if n == 0 {
            return Ok(DMatrix::zeros(5, 0));
        }
        Ok(self.sample_with_diagnostics(n, rng)?.0)
    }
}

/// Σ for `(|θ3|, |θ4|, θ5)` = `(a3, a4, t5)`: its entries `[[a, c], [c, b]]`, determinant and
/// lower Cholesky factor `[[l00, 0], [l10, l11]]`.
struct Sigma {
    a: f64,
    b: f64,
    c: f64,
    det: f64,
    l00: f64,
    l10: f64,
    l11: f64,
}

impl Sigma {
    fn new(a3: f64, a4: f64, t5: f64) -> Self {
        let s1 = a3 * a3;
        let s2 = a4 * a4;
        let a = s1 * s1 + JITTER;
        let b = s2 * s2 + JITTER;
        let c = t5.tanh() * s1 * s2;
        // a·b ≥ 10⁻¹² + (s1 s2)² > c², so det > 0.
        let det = a * b - c * c;
        let l00 = a.sqrt();
        let l10 = c / l00;
        let l11 = (det / a).sqrt();
        Self {
            a,
            b,
            c,
            det,
            l00,
            l10,
            l11,
        }
    }

    /// `ν = (ν0, ν1, ν2)ᵀ · Σ⁻¹ ·` for a symmetric `[[ν0, ν1], [ν1, ν2]]`: `tr(Σ⁻¹ N)`.
    fn trace_inv_times(&self, n: [f64; 3]) -> f64 {
        (self.b * n[0] - 2.0 * self.c * n[1] + self.a * n[2]) / self.det
    }
}

impl SlcpPosterior {
    /// The log-likelihood through the sufficient statistics:
    /// `Σ_i (x_i − m)ᵀ Σ⁻¹ (x_i − m) = tr(Σ⁻¹ S) + 4 (x̄ − m)ᵀ Σ⁻¹ (x̄ − m)`.
    fn log_likelihood_unchecked(&self, theta: &[f64]) -> f64 {
        let sigma = Sigma::new(theta[2], theta[3], theta[4]);
        let (d0, d1) = (self.mean[0] - theta[0], self.mean[1] - theta[1]);
        let n = [
            self.scatter[0] + 4.0 * d0 * d0,
            self.scatter[1] + 4.0 * d0 * d1,
            self.scatter[2] + 4.0 * d1 * d1,
        ];
        -4.0 * (2.0 * PI).ln() - 2.0 * sigma.det.ln() - 0.5 * sigma.trace_inv_times(n)
    }
}

/// The folded posterior in the coordinates `(u1, u2, ln|θ3|, ln|θ4|, θ5)` that the chains
/// run on: `m = x̄ + ½ L u` with `L Lᵀ = Σ` (non-centred), and the scales on a log scale.
///
/// Given Σ, the likelihood in m is `N(m; x̄, Σ/4)`, whose width follows |θ3|, |θ4| and θ5 (a
/// funnel that slows random-walk Metropolis down by an order of magnitude on some
/// observations). In u it is `N(u; 0, I)` whatever Σ. The scales' posterior has a
/// polynomial tail (∝ |θ3|⁻⁵ or so, up to the prior's bound): a random walk on |θ3| with
/// steps the size of the bulk visits it too rarely, one on ln|θ3| does not. With the
/// Jacobians `|∂m/∂u| = √det Σ / 4` and `|θ3| |θ4|`, the log density is
/// `−(3/2) ln det Σ − ½ tr(Σ⁻¹ S) − ½ uᵀu + ln|θ3| + ln|θ4|` (S the scatter of the four
/// points about x̄), for `ln|θ3|, ln|θ4| ≤ ln 3`, `θ5 ∈ [−3, 3]` and m in the prior box.
struct Folded<'a>(&'a SlcpPosterior);

impl Folded<'_> {
    const LOW: [f64; 5] = [-BOX, -BOX, 0.0, 0.0, -BOX];

    /// A uniform draw of `(θ1, θ2, |θ3|, |θ4|, θ5)` from the folded box (|θ3|, |θ4| in
    /// `(0, 3]`, which has the same measure).
    fn prior_draw(rng: &mut SeededRng) -> [f64; 5] {
        Self::LOW.map(|low| {
            if low == 0.0 {
                BOX * (1.0 - rng.random::<f64>())
            } else {
                low + 2.0 * BOX * rng.random::<f64>()
            }
        })
    }

    /// `(θ1, θ2, |θ3|, |θ4|, θ5)` in the chains' coordinates (|θ3|, |θ4| > 0).
    fn to_chain(&self, theta: &[f64; 5]) -> Vec<f64> {
        let sigma = Sigma::new(theta[2], theta[3], theta[4]);
        let u1 = 2.0 * (theta[0] - self.0.mean[0]) / sigma.l00;
        let u2 = (2.0 * (theta[1] - self.0.mean[1]) - sigma.l10 * u1) / sigma.l11;
        vec![u1, u2, theta[2].ln(), theta[3].ln(), theta[4]]
    }
}

/// Prior draws behind each chain's starting point.
const INIT_DRAWS: usize = 10_000;
/// Prior draws behind the first proposal covariance.
const COVARIANCE_DRAWS: usize = 20_000;

impl LogDensity for Folded<'_> {
    fn dim(&self) -> usize {
        5
    }

    fn log_density(&self, x: &[f64]) -> f64 {
        let inside = x[2] <= BOX.ln() && x[3] <= BOX.ln() && (-BOX..=BOX).contains(&x[4]);
        if !inside {
            return f64::NEG_INFINITY;
        }
        let sigma = Sigma::new(x[2].exp(), x[3].exp(), x[4]);
        let m0 = self.0.mean[0] + 0.5 * sigma.l00 * x[0];
        let m1 = self.0.mean[1] + 0.5 * (sigma.l10 * x[0] + sigma.l11 * x[1]);
        if !((-BOX..=BOX).contains(&m0) && (-BOX..=BOX).contains(&m1)) {
            return f64::NEG_INFINITY;
        }
        -1.5 * sigma.det.ln()
            - 0.5 * sigma.trace_inv_times(self.0.scatter)
            - 0.5 * (x[0] * x[0] + x[1] * x[1])
            + x[2]
            + x[3]
    }
}

impl MetropolisTarget for Folded<'_> {
    fn output(&self, x: &[f64], out: &mut [f64]) {
        let (a3, a4) = (x[2].exp(), x[3].exp());
        let sigma = Sigma::new(a3, a4, x[4]);
        out[0] = self.0.mean[0] + 0.5 * sigma.l00 * x[0];
        out[1] = self.0.mean[1] + 0.5 * (sigma.l10 * x[0] + sigma.l11 * x[1]);
        out[2] = a3;
        out[3] = a4;
        out[4] = x[4];
    }

    /// Sampling–importance resampling: one of 10 000 prior draws, picked with probability
    /// ∝ likelihood (in one pass, keeping the pick with probability `w_i / Σ_{j≤i} w_j`).
    fn initial_point(&self, rng: &mut SeededRng) -> Vec<f64> {
        let mut pick = Self::prior_draw(rng);
        let mut log_total = self.0.log_likelihood_unchecked(&pick);
        for _ in 1..INIT_DRAWS {
            let draw = Self::prior_draw(rng);
            let lw = self.0.log_likelihood_unchecked(&draw);
            let hi = log_total.max(lw);
            log_total = hi + ((log_total - hi).exp() + (lw - hi).exp()).ln();
            if rng.random::<f64>() < (lw - log_total).exp() {
                pick = draw;
            }
        }
        self.to_chain(&pick)
    }

    /// The importance-weighted covariance (in the chains' coordinates) of 20 000 prior
    /// draws (weights ∝ likelihood), or `diag(1, 1, 0.5², 0.5², 0.3²)` when fewer than 20
    /// effective draws carry the weight.
    fn initial_covariance(&self, rng: &mut SeededRng) -> DMatrix<f64> {
        let draws: Vec<[f64; 5]> = (0..COVARIANCE_DRAWS)
            .map(|_| Self::prior_draw(rng))
            .collect();
        let lw: Vec<f64> = draws
            .iter()
            .map(|d| self.0.log_likelihood_unchecked(d))
            .collect();
        let max = lw.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let w: Vec<f64> = lw.iter().map(|l| (l - max).exp()).collect();
        let sum: f64 = w.iter().sum();
        let ess = sum * sum / w.iter().map(|v| v * v).sum::<f64>();
        if ess.is_nan() || ess < 20.0 {
            return DMatrix::from_diagonal(&nalgebra::DVector::from_column_slice(&[
                1.0, 1.0, 0.25, 0.25, 0.09,
            ]));
        }
        let chain: Vec<Vec<f64>> = draws.iter().map(|d| self.to_chain(d)).collect();
        let mut mean = [0.0; 5];
        for (d, wi) in chain.iter().zip(&w) {
            for i in 0..5 {
                mean[i] += wi * d[i] / sum;
            }
        }
        let mut cov = DMatrix::zeros(5, 5);
        for (d, wi) in chain.iter().zip(&w) {
            for i in 0..5 {
                for j in 0..5 {
                    cov[(i, j)] += wi * (d[i] - mean[i]) * (d[j] - mean[j]) / sum;
                }
            }
        }
        cov
    }
}
