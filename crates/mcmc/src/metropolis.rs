//! Adaptive random-walk Metropolis with convergence checks: the sampler behind the
//! benchmark's exact-likelihood reference posteriors (slcp, slcp_distractors,
//! bernoulli_glm, bernoulli_glm_raw in simfer-benchmark).
//!
//! # The sampler
//!
//! Random-walk Metropolis in `K` chains (default 8) with the Gaussian proposal
//! `y = x + s·L·z`, `z ~ N(0, I)`, where `L Lᵀ` approximates the posterior covariance, and
//! the acceptance probability `min(1, π(y)/π(x))` computed from the exact unnormalized log
//! posterior (exact likelihood + log prior; −∞ outside the prior's support, so proposals
//! outside a box prior are rejected).
//!
//! **Why it is exact.** During sampling the kernel is fixed (no adaptation): a
//! Metropolis–Hastings kernel with a symmetric proposal, which satisfies detailed balance
//! with respect to the exact posterior π, and is irreducible and aperiodic (the Gaussian
//! proposal reaches every set of positive π-mass in one step with positive probability).
//! The chain therefore converges to π itself; nothing is approximated except by the finite
//! length of the chains, and that error is what the convergence checks measure.
//!
//! **Warm-up (burn-in) and tuning.** Each chain starts from a point drawn by its target
//! ([`MetropolisTarget::initial_point`]; in the benchmark: importance resampling of many
//! prior draws for slcp, an over-dispersed draw around the Laplace approximation for
//! bernoulli_glm). The warm-up ([`MetropolisSettings::warmup`] iterations per chain, discarded) runs in four windows (15 %,
//! 15 %, 30 %, 40 %). Within a window each chain tunes its scale `s` by Robbins–Monro
//! towards the acceptance rate 0.234 (optimal for random-walk Metropolis); after each of
//! the first three windows `L` becomes the Cholesky factor of the covariance of the
//! second halves of all chains' windows, pooled; after the last window every chain samples
//! with that `L` and the geometric mean of the chains' scales. The initial `L` comes from
//! the target ([`MetropolisTarget::initial_covariance`]).
//!
//! **Coordinates.** A target may run its chains in other coordinates than those it returns
//! ([`MetropolisTarget::output`]; the benchmark's slcp: non-centred means and log scales),
//! with the Jacobian in its log density; the kept states, the diagnostics and the returned
//! samples are in the returned coordinates.
//!
//! **Storage and thinning.** Each chain keeps every `stride`-th state, at most `cap`
//! (`≥ 4·E/K`, `E` the ESS target below); when the store is full, every second kept state
//! is dropped and the stride doubles, so the store is always the chain observed at a
//! regular stride. The returned samples are `n/K` evenly spaced states of each chain's
//! store (ending at its last state), in a random order (shuffled with the caller's `rng`).
//!
//! **Convergence checks.** After each block of iterations the sampler computes, for every
//! coordinate, the rank-normalized split-R̂ and its folded version (the larger of the two;
//! Vehtari, Gelman, Simpson, Carpenter and Bürkner 2021), and the bulk and tail effective
//! sample sizes (multi-chain autocorrelations with Geyer's initial monotone sequence, as in
//! Stan). It stops when R̂ ≤ [`MetropolisSettings::max_rhat`] (1.01) and the smaller ESS is at
//! least `E = max(n, min_ess)`; otherwise it extends all chains (extrapolating the length
//! the ESS needs) up to [`MetropolisSettings::max_iterations`] per chain. When the budget is
//! spent it fails with [`McmcError::Convergence`], naming the failed checks and
//! their values: it never returns samples that did not pass.
//!
//! **Seeds and threads.** One `u64` drawn from the caller's `rng` seeds the chains (chain
//! `k` draws only from `derive_rng(seed, k)`); chains run in parallel with rayon between
//! synchronization points at fixed iteration counts, and pooled quantities are summed in
//! chain order, so the samples do not depend on the number of threads.
//!
//! **Invalid values.** A NaN or +∞ log density at a proposal is treated as −∞ (the
//! proposal is rejected) and counted in [`McmcDiagnostics::invalid_evaluations`].

use std::time::Instant;

use nalgebra::DMatrix;
use rand::{Rng, RngCore};
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use simfer_distributions::{SeededRng, derive_rng};

use crate::density::sanitize;
use crate::diagnostics::{coordinate_diagnostics, split_halves};
use crate::{LogDensity, McmcDiagnostics, McmcError, SamplerKind};

/// The acceptance rate the warm-up tunes the proposal scale towards.
const TARGET_ACCEPTANCE: f64 = 0.234;
/// Warm-up windows as fractions of the warm-up.
const WINDOWS: [f64; 4] = [0.15, 0.15, 0.3, 0.4];

/// Settings of [`Metropolis`]: chains, warm-up, budget and the thresholds of the
/// convergence checks.
///
/// ```
/// use simfer_mcmc::MetropolisSettings;
/// let settings = MetropolisSettings::default().with_chains(4).with_max_iterations(50_000);
/// assert!(settings.check().is_ok());
/// assert!(MetropolisSettings::default().with_chains(1).check().is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetropolisSettings {
    /// Number of chains (at least 2). Default 8.
    pub chains: usize,
    /// Warm-up iterations per chain, discarded (at least 100). Default 4000.
    pub warmup: usize,
    /// The budget: at most this many sampling iterations per chain. `None` (the default)
    /// means `max(20 000, 4000·⌈E/K⌉)` for an ESS target `E` and `K` chains: about 7
    /// times what the hardest of 100 slcp observations needed (bernoulli_glm needs ~45).
    pub max_iterations: Option<usize>,
    /// The largest acceptable split-R̂ (> 1). Default 1.01.
    pub max_rhat: f64,
    /// The smallest ESS targeted whatever the number of samples, so that R̂ is reliable
    /// (at least 100). Default 2000.
    pub min_ess: usize,
}

impl Default for MetropolisSettings {
    fn default() -> Self {
        Self {
            chains: 8,
            warmup: 4000,
            max_iterations: None,
            max_rhat: 1.01,
            min_ess: 2000,
        }
    }
}

impl MetropolisSettings {
    /// These settings with `chains` chains.
    pub fn with_chains(mut self, chains: usize) -> Self {
        self.chains = chains;
        self
    }

    /// These settings with `warmup` warm-up iterations per chain.
    pub fn with_warmup(mut self, warmup: usize) -> Self {
        self.warmup = warmup;
        self
    }

    /// These settings with a budget of `max_iterations` sampling iterations per chain.
    pub fn with_max_iterations(mut self, max_iterations: usize) -> Self {
        self.max_iterations = Some(max_iterations);
        self
    }

    /// These settings with another R̂ threshold.
    pub fn with_max_rhat(mut self, max_rhat: f64) -> Self {
        self.max_rhat = max_rhat;
        self
    }

    /// These settings with another minimum ESS.
    pub fn with_min_ess(mut self, min_ess: usize) -> Self {
        self.min_ess = min_ess;
        self
    }

    /// Checks that the settings make sense.
    ///
    /// # Errors
    /// [`McmcError::InvalidConfig`] for fewer than 2 chains, a warm-up below 100, a
    /// budget of 0, an R̂ threshold that is not a number above 1, or a minimum ESS below 100.
    pub fn check(&self) -> Result<(), McmcError> {
        let problem = if self.chains < 2 {
            Some(format!(
                "MCMC needs at least 2 chains to check convergence, found {}",
                self.chains
            ))
        } else if self.warmup < 100 {
            Some(format!(
                "the MCMC warm-up must be at least 100 iterations, found {}",
                self.warmup
            ))
        } else if self.max_iterations == Some(0) {
            Some("the MCMC budget (max_iterations) must be at least 1, found 0".to_string())
        } else if !(self.max_rhat > 1.0 && self.max_rhat.is_finite()) {
            Some(format!(
                "the R̂ threshold must be a finite number above 1, found {}",
                self.max_rhat
            ))
        } else if self.min_ess < 100 {
            Some(format!(
                "the minimum ESS must be at least 100, found {}",
                self.min_ess
            ))
        } else {
            None
        };
        match problem {
            Some(p) => Err(McmcError::InvalidConfig(p)),
            None => Ok(()),
        }
    }
}

/// A log density and how to start [`Metropolis`] chains on it.
pub trait MetropolisTarget: LogDensity {
    /// A starting point for one chain, with a finite log density, drawn from `rng` (the
    /// chain's own generator).
    fn initial_point(&self, rng: &mut SeededRng) -> Vec<f64>;
    /// A first guess of the covariance of the target (symmetric; the sampler regularizes
    /// it), drawn from `rng` if it needs randomness.
    fn initial_covariance(&self, rng: &mut SeededRng) -> DMatrix<f64>;
    /// The returned coordinates of a state (of the same dimension), where the chains run
    /// in other coordinates than those returned. The identity by default.
    fn output(&self, x: &[f64], out: &mut [f64]) {
        out.copy_from_slice(x);
    }
}

/// Adaptive random-walk Metropolis in several chains, extended until its convergence
/// checks pass (see the [module docs](self)).
///
/// ```
/// use nalgebra::DMatrix;
/// use simfer_distributions::{SeededRng, rng_from_seed};
/// use simfer_mcmc::{LogDensity, Metropolis, MetropolisSettings, MetropolisTarget};
/// use rand::Rng;
///
/// struct Normal2;
/// impl LogDensity for Normal2 {
///     fn dim(&self) -> usize { 2 }
///     fn log_density(&self, x: &[f64]) -> f64 { -0.5 * (x[0] * x[0] + x[1] * x[1]) }
/// }
/// impl MetropolisTarget for Normal2 {
///     fn initial_point(&self, rng: &mut SeededRng) -> Vec<f64> {
///         vec![rng.random::<f64>() - 0.5, rng.random::<f64>() - 0.5]
///     }
///     fn initial_covariance(&self, _: &mut SeededRng) -> DMatrix<f64> {
///         DMatrix::identity(2, 2)
///     }
/// }
/// let sampler = Metropolis::new(MetropolisSettings::default().with_min_ess(400))?;
/// let names = ["a".to_string(), "b".to_string()];
/// let (samples, diagnostics) =
///     sampler.sample(&Normal2, "a normal", &names, 400, &mut rng_from_seed(1))?;
/// assert_eq!(samples.shape(), (2, 400));
/// assert!(diagnostics.max_rhat() <= 1.01 && diagnostics.min_ess() >= 400.0);
/// # Ok::<(), simfer_mcmc::McmcError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Metropolis {
    settings: MetropolisSettings,
}

impl Metropolis {
    /// The sampler with these settings.
    ///
    /// # Errors
    /// Settings that fail [`MetropolisSettings::check`].
    pub fn new(settings: MetropolisSettings) -> Result<Self, McmcError> {
        settings.check()?;
        Ok(Self { settings })
    }

    /// The settings.
    pub fn settings(&self) -> &MetropolisSettings {
        &self.settings
    }

    /// `n` samples of `target` (one per column, `dim × n`, in a random order) with the
    /// diagnostics of the run. `what` names the distribution in errors, `names` its
    /// coordinates. One `u64` drawn from `rng` seeds the chains; the samples are then
    /// shuffled with `rng`.
    ///
    /// # Errors
    /// [`McmcError::DimensionMismatch`] unless there is one name per coordinate,
    /// [`McmcError::NoValidStart`] if a chain's starting point has no finite log density,
    /// [`McmcError::Convergence`] when the checks do not pass within the budget.
    pub fn sample<T: MetropolisTarget + ?Sized>(
        &self,
        target: &T,
        what: &str,
        names: &[String],
        n: usize,
        rng: &mut dyn RngCore,
    ) -> Result<(DMatrix<f64>, McmcDiagnostics), McmcError> {
        run(target, what, names, &self.settings, n, rng)
    }
}

/// The lower Cholesky factor of `cov`, row-major `d × d`, with as little diagonal jitter as
/// makes it positive definite; a diagonal factor if nothing else works.
fn proposal_factor(cov: &DMatrix<f64>) -> Vec<f64> {
    let d = cov.nrows();
    let sym = (cov + cov.transpose()) * 0.5;
    let scale = (0..d)
        .map(|i| sym[(i, i)].abs())
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max)
        .max(1e-12);
    let mut jitter = 1e-10 * scale;
    for _ in 0..8 {
        let m = &sym + DMatrix::identity(d, d) * jitter;
        if let Some(ch) = nalgebra::Cholesky::new(m) {
            let l = ch.l();
            if l.iter().all(|v| v.is_finite()) {
                return (0..d * d).map(|k| l[(k / d, k % d)]).collect();
            }
        }
        jitter *= 100.0;
    }
    let mut l = vec![0.0; d * d];
    for i in 0..d {
        let v = sym[(i, i)];
        l[i * d + i] = if v.is_finite() && v > 0.0 {
            v.sqrt()
        } else {
            scale.sqrt()
        };
    }
    l
}

/// One chain: its generator, state, tuning and store.
struct Chain {
    rng: SeededRng,
    x: Vec<f64>,
    logp: f64,
    log_scale: f64,
    accepted: u64,
    proposed: u64,
    evaluations: u64,
    /// Evaluations that returned NaN or +∞.
    invalid: u64,
    /// Kept states, column after column.
    stored: Vec<f64>,
    count: usize,
    stride: usize,
    since_store: usize,
    z: Vec<f64>,
    y: Vec<f64>,
}

impl Chain {
    /// One Metropolis step with proposal scale `scale`; returns the acceptance probability.
    fn step<T: MetropolisTarget + ?Sized>(
        &mut self,
        target: &T,
        factor: &[f64],
        scale: f64,
    ) -> f64 {
        let d = self.x.len();
        for z in &mut self.z {
            *z = StandardNormal.sample(&mut self.rng);
        }
        for i in 0..d {
            let row = &factor[i * d..i * d + i + 1];
            let lz: f64 = row.iter().zip(&self.z).map(|(a, b)| a * b).sum();
            self.y[i] = self.x[i] + scale * lz;
        }
        let logq = sanitize(target.log_density(&self.y), &mut self.invalid);
        self.evaluations += 1;
        let log_ratio = logq - self.logp;
        // −∞ (outside the support, or an invalid value) gives 0.
        let alpha = if log_ratio >= 0.0 {
            1.0
        } else if log_ratio.is_nan() {
            0.0
        } else {
            log_ratio.exp()
        };
        let u: f64 = self.rng.random();
        if u < alpha {
            std::mem::swap(&mut self.x, &mut self.y);
            self.logp = logq;
            self.accepted += 1;
        }
        self.proposed += 1;
        alpha
    }

    /// A warm-up window of `len` steps, tuning the scale; returns the states of its second
    /// half (column after column) when `record`.
    fn warmup_window<T: MetropolisTarget + ?Sized>(
        &mut self,
        target: &T,
        factor: &[f64],
        len: usize,
        record: bool,
    ) -> Vec<f64> {
        let mut recorded = Vec::new();
        for t in 0..len {
            let alpha = self.step(target, factor, self.log_scale.exp());
            self.log_scale += (alpha - TARGET_ACCEPTANCE) / ((t + 1) as f64).powf(0.6);
            self.log_scale = self.log_scale.clamp(-40.0, 10.0);
            if record && t >= len / 2 {
                recorded.extend_from_slice(&self.x);
            }
        }
        recorded
    }

    /// `iterations` sampling steps with a fixed kernel, keeping every `stride`-th state in
    /// a store of at most `cap` (even) states.
    fn sample<T: MetropolisTarget + ?Sized>(
        &mut self,
        target: &T,
        factor: &[f64],
        scale: f64,
        iterations: usize,
        cap: usize,
    ) {
        let d = self.x.len();
        for _ in 0..iterations {
            self.step(target, factor, scale);
            self.since_store += 1;
            if self.since_store == self.stride {
                if self.count == cap {
                    // Keep the states at even multiples of the stride; the current state
                    // (an odd multiple) is not kept, and the next one kept comes a new
                    // stride after the last kept one.
                    for i in 0..cap / 2 {
                        let (src, dst) = ((2 * i + 1) * d, i * d);
                        self.stored.copy_within(src..src + d, dst);
                    }
                    self.count = cap / 2;
                    self.stored.truncate(self.count * d);
                    self.stride *= 2;
                } else {
                    let start = self.stored.len();
                    self.stored.resize(start + d, 0.0);
                    target.output(&self.x, &mut self.stored[start..]);
                    self.count += 1;
                    self.since_store = 0;
                }
            }
        }
    }

    /// Coordinate `p` of the kept states.
    fn coordinate(&self, p: usize) -> Vec<f64> {
        let d = self.x.len();
        (0..self.count).map(|j| self.stored[j * d + p]).collect()
    }
}

/// Runs the MCMC for `n` samples of `target` (see the module docs) and returns them, one
/// per column, with the diagnostics. `what` names the distribution in errors, `names` its
/// coordinates.
fn run<T: MetropolisTarget + ?Sized>(
    target: &T,
    what: &str,
    names: &[String],
    settings: &MetropolisSettings,
    n: usize,
    rng: &mut dyn RngCore,
) -> Result<(DMatrix<f64>, McmcDiagnostics), McmcError> {
    settings.check()?;
    let start = Instant::now();
    let d = target.dim();
    if d == 0 {
        return Err(McmcError::InvalidConfig(format!(
            "MCMC for {what}: the target has dimension 0"
        )));
    }
    if names.len() != d {
        return Err(McmcError::DimensionMismatch {
            what: "parameter names (one per coordinate of the target)",
            expected: d,
            found: names.len(),
        });
    }
    let k = settings.chains;
    let seed = rng.next_u64();

    // Starting points and the first proposal covariance.
    let mut chains: Vec<Chain> = (0..k)
        .into_par_iter()
        .map(|c| {
            let mut chain_rng = derive_rng(seed, c as u64);
            let x = target.initial_point(&mut chain_rng);
            let mut invalid = 0;
            let logp = if x.len() == d {
                sanitize(target.log_density(&x), &mut invalid)
            } else {
                f64::NAN
            };
            Chain {
                rng: chain_rng,
                logp,
                log_scale: (2.38 / (d as f64).sqrt()).ln(),
                accepted: 0,
                proposed: 0,
                evaluations: 1,
                invalid,
                stored: Vec::new(),
                count: 0,
                stride: 1,
                since_store: 0,
                z: vec![0.0; d],
                y: vec![0.0; d],
                x,
            }
        })
        .collect();
    if let Some(c) = chains.iter().position(|c| c.x.len() != d) {
        return Err(McmcError::DimensionMismatch {
            what: "length of a chain's initial point (the target's dimension)",
            expected: d,
            found: chains[c].x.len(),
        });
    }
    if let Some(c) = chains.iter().position(|c| !c.logp.is_finite()) {
        return Err(McmcError::NoValidStart {
            chain: c,
            candidates: 1,
            source_of_candidates: "given by the target's initial_point",
            hint: "",
        });
    }
    let mut factor = proposal_factor(&target.initial_covariance(&mut derive_rng(seed, k as u64)));

    // Warm-up.
    for (w, frac) in WINDOWS.iter().enumerate() {
        let len = ((settings.warmup as f64 * frac).round() as usize).max(10);
        let last = w + 1 == WINDOWS.len();
        let recorded: Vec<Vec<f64>> = chains
            .par_iter_mut()
            .map(|c| c.warmup_window(target, &factor, len, !last))
            .collect();
        if !last {
            factor = proposal_factor(&pooled_covariance(&recorded, d));
            for c in &mut chains {
                c.log_scale = (2.38 / (d as f64).sqrt()).ln();
            }
        }
    }
    let scale = (chains.iter().map(|c| c.log_scale).sum::<f64>() / k as f64).exp();
    let warmup_accepted: u64 = chains.iter().map(|c| c.accepted).sum();
    let warmup_proposed: u64 = chains.iter().map(|c| c.proposed).sum();

    // Sampling, extended until the checks pass or the budget is spent.
    let required = n.max(settings.min_ess) as f64;
    let per_chain = required / k as f64;
    let cap = (2 * (2.0 * per_chain).ceil() as usize).max(1000);
    let budget = settings
        .max_iterations
        .unwrap_or_else(|| 20_000usize.max(4000 * per_chain.ceil() as usize));
    let mut done = 0usize;
    let mut next = budget.min((10.0 * per_chain).ceil() as usize).max(1);
    loop {
        let steps = next - done;
        chains
            .par_iter_mut()
            .for_each(|c| c.sample(target, &factor, scale, steps, cap));
        done = next;
        let diagnostics = diagnose(&chains, names, settings, done, scale, required, start, {
            let acc: u64 = chains.iter().map(|c| c.accepted).sum::<u64>() - warmup_accepted;
            let prop: u64 = chains.iter().map(|c| c.proposed).sum::<u64>() - warmup_proposed;
            acc as f64 / prop.max(1) as f64
        });
        let enough_stored = chains[0].count >= n.div_ceil(k);
        let failures = diagnostics
            .failures(settings.max_rhat, required)
            .or_else(|| {
                (!enough_stored).then(|| format!("only {} states kept per chain", chains[0].count))
            });
        let Some(failed) = failures else {
            return Ok((select(&chains, n, rng), diagnostics));
        };
        if done >= budget {
            return Err(McmcError::Convergence {
                what: what.to_string(),
                failed,
                iterations: done,
                chains: k,
                max_rhat: diagnostics.max_rhat(),
                min_ess: diagnostics.min_ess(),
                required_ess: required,
                advice: format!(
                    "that was the budget of {done} iterations; raise \
                     MetropolisSettings::max_iterations, or request fewer samples"
                ),
            });
        }
        // Extrapolate the length the ESS needs (ESS grows linearly with the length), with
        // 20 % to spare; at least 1.5× longer, e.g. when only R̂ failed; at most 10×.
        let ess = diagnostics.min_ess();
        let factor_needed = if ess.is_finite() && ess > 0.0 {
            1.2 * required / ess
        } else {
            10.0
        };
        let grow = factor_needed.clamp(1.5, 10.0);
        next = budget.min((done as f64 * grow).ceil() as usize);
    }
}

/// The covariance of all recorded states, pooled over chains (each chain's states about
/// the common mean), summed in chain order.
fn pooled_covariance(recorded: &[Vec<f64>], d: usize) -> DMatrix<f64> {
    let total: usize = recorded.iter().map(|r| r.len() / d).sum();
    let mut mean = vec![0.0; d];
    for r in recorded {
        for col in r.chunks_exact(d) {
            for (m, v) in mean.iter_mut().zip(col) {
                *m += v;
            }
        }
    }
    for m in &mut mean {
        *m /= total as f64;
    }
    let mut cov = DMatrix::zeros(d, d);
    let mut centred = vec![0.0; d];
    for r in recorded {
        for col in r.chunks_exact(d) {
            for i in 0..d {
                centred[i] = col[i] - mean[i];
            }
            for i in 0..d {
                for j in 0..=i {
                    cov[(i, j)] += centred[i] * centred[j];
                }
            }
        }
    }
    for i in 0..d {
        for j in 0..=i {
            let v = cov[(i, j)] / (total as f64 - 1.0).max(1.0);
            cov[(i, j)] = v;
            cov[(j, i)] = v;
        }
    }
    cov
}

/// R̂ and ESS of every coordinate of the chains' stores.
#[allow(clippy::too_many_arguments)]
fn diagnose(
    chains: &[Chain],
    names: &[String],
    settings: &MetropolisSettings,
    iterations: usize,
    scale: f64,
    required: f64,
    start: Instant,
    acceptance_rate: f64,
) -> McmcDiagnostics {
    let d = names.len();
    let per_coordinate: Vec<(f64, f64, f64)> = (0..d)
        .into_par_iter()
        .map(|p| {
            let series: Vec<Vec<f64>> = chains.iter().map(|c| c.coordinate(p)).collect();
            coordinate_diagnostics(&split_halves(&series))
        })
        .collect();
    McmcDiagnostics {
        sampler: SamplerKind::Metropolis,
        parameter_names: names.to_vec(),
        chains: chains.len(),
        tuning: 0,
        warmup: settings.warmup,
        iterations,
        thin: chains[0].stride,
        draws_per_chain: chains[0].count,
        acceptance_rate,
        proposal_scale: Some(scale),
        rhat: per_coordinate.iter().map(|r| r.0).collect(),
        ess_bulk: per_coordinate.iter().map(|r| r.1).collect(),
        ess_tail: per_coordinate.iter().map(|r| r.2).collect(),
        required_ess: Some(required),
        evaluations: chains.iter().map(|c| c.evaluations).sum(),
        invalid_evaluations: chains.iter().map(|c| c.invalid).sum(),
        seconds: start.elapsed().as_secs_f64(),
    }
}

/// `n` kept states, `⌈n/K⌉` or `⌊n/K⌋` evenly spaced ones from each chain (ending at its
/// last), in an order shuffled with `rng`.
fn select(chains: &[Chain], n: usize, rng: &mut dyn RngCore) -> DMatrix<f64> {
    let k = chains.len();
    let d = chains[0].x.len();
    let mut out = DMatrix::zeros(d, n);
    let mut col = 0;
    for (c, chain) in chains.iter().enumerate() {
        let take = n / k + usize::from(c < n % k);
        let s = chain.count;
        for i in 0..take {
            let j = s - 1 - i * s / take;
            out.column_mut(col)
                .copy_from_slice(&chain.stored[j * d..(j + 1) * d]);
            col += 1;
        }
    }
    for i in (1..n).rev() {
        let j = rng.random_range(0..=i);
        out.swap_columns(i, j);
    }
    out
}
#[cfg(test)]
mod tests {
    use super::*;
    use simfer_distributions::rng_from_seed;

    /// A correlated Gaussian in 3-D, known in closed form.
    struct Gauss {
        prec: DMatrix<f64>,
    }

    impl LogDensity for Gauss {
        fn dim(&self) -> usize {
            3
        }
        fn log_density(&self, x: &[f64]) -> f64 {
            let v = nalgebra::DVector::from_column_slice(x);
            -0.5 * (v.transpose() * &self.prec * &v)[0]
        }
    }

    impl MetropolisTarget for Gauss {
        fn initial_point(&self, rng: &mut SeededRng) -> Vec<f64> {
            (0..3)
                .map(|_| {
                    let v: f64 = StandardNormal.sample(&mut *rng);
                    3.0 * v
                })
                .collect()
        }
        fn initial_covariance(&self, _: &mut SeededRng) -> DMatrix<f64> {
            DMatrix::identity(3, 3)
        }
    }

    fn gauss() -> (Gauss, DMatrix<f64>) {
        let cov = DMatrix::from_row_slice(3, 3, &[1.0, 0.9, 0.0, 0.9, 1.0, 0.3, 0.0, 0.3, 4.0]);
        let prec = cov.clone().try_inverse().unwrap();
        (Gauss { prec }, cov)
    }

    #[test]
    fn samples_a_correlated_gaussian() {
        let (target, cov) = gauss();
        let names: Vec<String> = (0..3).map(|i| format!("x{i}")).collect();
        let n = 4000;
        let (s, diag) = run(
            &target,
            "a test Gaussian",
            &names,
            &MetropolisSettings::default(),
            n,
            &mut rng_from_seed(1),
        )
        .unwrap();
        assert_eq!(s.shape(), (3, n));
        assert!(diag.max_rhat() <= 1.01 && diag.min_ess() >= n as f64);
        assert!((0.1..0.5).contains(&diag.acceptance_rate), "{diag:?}");
        let mean = s.column_mean();
        for i in 0..3 {
            // The samples are close to independent; 5 standard errors.
            assert!(mean[i].abs() < 5.0 * (cov[(i, i)] / n as f64).sqrt());
        }
        let mut centred = s.clone();
        for mut c in centred.column_iter_mut() {
            c -= &mean;
        }
        let emp = &centred * centred.transpose() / (n as f64 - 1.0);
        for i in 0..3 {
            for j in 0..3 {
                let se = ((cov[(i, i)] * cov[(j, j)] + cov[(i, j)].powi(2)) / n as f64).sqrt();
                assert!((emp[(i, j)] - cov[(i, j)]).abs() < 5.0 * se, "({i},{j})");
            }
        }
    }

    #[test]
    fn the_store_is_the_chain_at_a_regular_stride() {
        // A flat target: every proposal is accepted, so the state changes at every step.
        struct Counter;
        impl LogDensity for Counter {
            fn dim(&self) -> usize {
                1
            }
            fn log_density(&self, _: &[f64]) -> f64 {
                0.0
            }
        }
        impl MetropolisTarget for Counter {
            fn initial_point(&self, _: &mut SeededRng) -> Vec<f64> {
                vec![0.0]
            }
            fn initial_covariance(&self, _: &mut SeededRng) -> DMatrix<f64> {
                DMatrix::identity(1, 1)
            }
        }
        let mut chain = Chain {
            rng: rng_from_seed(0),
            x: vec![0.0],
            logp: 0.0,
            log_scale: 0.0,
            accepted: 0,
            proposed: 0,
            evaluations: 0,
            invalid: 0,
            stored: Vec::new(),
            count: 0,
            stride: 1,
            since_store: 0,
            z: vec![0.0],
            y: vec![0.0],
        };
        // Record the state after every step.
        let cap = 8;
        let mut iteration_of_state = Vec::new();
        for _ in 0..100 {
            chain.sample(&Counter, &[1.0], 1.0, 1, cap);
            iteration_of_state.push(chain.x[0]);
        }
        assert_eq!(chain.proposed, 100);
        assert!(chain.count <= cap && chain.count >= cap / 2);
        // Kept states are those at iterations stride, 2·stride, …
        let x = iteration_of_state;
        for j in 0..chain.count {
            let it = (j + 1) * chain.stride;
            assert_eq!(chain.stored[j], x[it - 1], "kept state {j}");
        }
        assert_eq!(chain.stride, 16);
    }

    #[test]
    fn a_bimodal_target_fails_the_rhat_check() {
        // Two unit-variance modes 2000 standard deviations apart: chains started in both
        // cannot cross, so R̂ is far above 1 and the run must fail instead of returning
        // samples.
        struct TwoModes;
        impl LogDensity for TwoModes {
            fn dim(&self) -> usize {
                1
            }
            fn log_density(&self, x: &[f64]) -> f64 {
                let a = -0.5 * (x[0] - 1000.0).powi(2);
                let b = -0.5 * (x[0] + 1000.0).powi(2);
                a.max(b) + (-(a - b).abs()).exp().ln_1p()
            }
        }
        impl MetropolisTarget for TwoModes {
            fn initial_point(&self, rng: &mut SeededRng) -> Vec<f64> {
                let side = if rng.random::<bool>() {
                    1000.0
                } else {
                    -1000.0
                };
                vec![side]
            }
            fn initial_covariance(&self, _: &mut SeededRng) -> DMatrix<f64> {
                DMatrix::identity(1, 1)
            }
        }
        let names = vec!["a".to_string()];
        let settings = MetropolisSettings::default().with_max_iterations(20_000);
        let err = run(
            &TwoModes,
            "two modes",
            &names,
            &settings,
            1000,
            &mut rng_from_seed(2),
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("split-R̂ of a"), "{msg}");
        assert!(matches!(err, McmcError::Convergence { max_rhat, .. } if max_rhat > 1.5));
    }
}
