//! Exact-likelihood MCMC for the reference posteriors that have no closed form
//! (slcp, slcp_distractors, bernoulli_glm, bernoulli_glm_raw).
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
//! **Warm-up (burn-in) and tuning.** Each chain starts from a point drawn by its task
//! (importance resampling of many prior draws for slcp, an
//! over-dispersed draw around the Laplace approximation for bernoulli_glm). The warm-up
//! ([`McmcSettings::warmup`] iterations per chain, discarded) runs in four windows (15 %,
//! 15 %, 30 %, 40 %). Within a window each chain tunes its scale `s` by Robbins–Monro
//! towards the acceptance rate 0.234 (optimal for random-walk Metropolis); after each of
//! the first three windows `L` becomes the Cholesky factor of the covariance of the
//! second halves of all chains' windows, pooled; after the last window every chain samples
//! with that `L` and the geometric mean of the chains' scales. The initial `L` comes from
//! the task (the importance-weighted covariance of prior draws for slcp, the Laplace
//! covariance for bernoulli_glm).
//!
//! **Coordinates.** A task may run its chains in other coordinates than those it returns
//! (slcp: non-centred means and log scales, see
//! [`SlcpPosterior`](crate::tasks::SlcpPosterior)), with the Jacobian in its log density;
//! the kept states, the diagnostics and the returned samples are in the returned
//! coordinates.
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
//! Stan). It stops when R̂ ≤ [`McmcSettings::max_rhat`] (1.01) and the smaller ESS is at
//! least `E = max(n, min_ess)`; otherwise it extends all chains (extrapolating the length
//! the ESS needs) up to [`McmcSettings::max_iterations`] per chain. When the budget is
//! spent it fails with [`BenchmarkError::McmcConvergence`], naming the failed checks and
//! their values: it never returns samples that did not pass.
//!
//! **Seeds and threads.** One `u64` drawn from the caller's `rng` seeds the chains (chain
//! `k` draws only from `derive_rng(seed, k)`); chains run in parallel with rayon between
//! synchronization points at fixed iteration counts, and pooled quantities are summed in
//! chain order, so the samples do not depend on the number of threads.

use nalgebra::DMatrix;
use rand::{Rng, RngCore};
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;
use simfer_distributions::{SeededRng, derive_rng};

use crate::BenchmarkError;

/// The acceptance rate the warm-up tunes the proposal scale towards.
const TARGET_ACCEPTANCE: f64 = 0.234;
/// Warm-up windows as fractions of the warm-up.
const WINDOWS: [f64; 4] = [0.15, 0.15, 0.3, 0.4];

/// Settings of the MCMC reference samplers: chains, warm-up, budget and the thresholds of
/// the convergence checks.
///
/// ```
/// use simfer_benchmark::McmcSettings;
/// let settings = McmcSettings::default().with_chains(4).with_max_iterations(50_000);
/// assert!(settings.check().is_ok());
/// assert!(McmcSettings::default().with_chains(1).check().is_err());
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct McmcSettings {
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

impl Default for McmcSettings {
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

impl McmcSettings {
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
    /// [`BenchmarkError::InvalidArgument`] for fewer than 2 chains, a warm-up below 100, a
    /// budget of 0, an R̂ threshold that is not a number above 1, or a minimum ESS below 100.
    pub fn check(&self) -> Result<(), BenchmarkError> {
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
            Some(p) => Err(BenchmarkError::InvalidArgument(p)),
            None => Ok(()),
        }
    }
}

/// What an MCMC run did and how well it converged.
///
/// R̂ and ESS are per coordinate of the space the chains run in (for slcp: θ1, θ2, |θ3|,
/// |θ4|, θ5, see [`parameter_names`](Self::parameter_names)).
#[derive(Clone, Debug, PartialEq)]
pub struct McmcDiagnostics {
    /// Names of the sampled coordinates.
    pub parameter_names: Vec<String>,
    /// Number of chains.
    pub chains: usize,
    /// Warm-up iterations per chain.
    pub warmup: usize,
    /// Sampling iterations per chain.
    pub iterations: usize,
    /// Each chain kept every `stride`-th state of its sampling phase.
    pub stride: usize,
    /// States kept per chain (the diagnostics are computed on these).
    pub stored: usize,
    /// Acceptance rate of the sampling phase, over all chains.
    pub acceptance_rate: f64,
    /// The proposal scale `s` of the sampling phase.
    pub proposal_scale: f64,
    /// Per coordinate: the larger of the rank-normalized split-R̂ and its folded version.
    pub rhat: Vec<f64>,
    /// Per coordinate: the bulk effective sample size.
    pub ess_bulk: Vec<f64>,
    /// Per coordinate: the tail effective sample size (the smaller of those of the 5 % and
    /// 95 % quantile indicators).
    pub ess_tail: Vec<f64>,
    /// The ESS the run had to reach: `max(n, min_ess)`.
    pub required_ess: f64,
    /// Log-density evaluations, warm-up included.
    pub evaluations: u64,
}

impl McmcDiagnostics {
    /// The largest R̂ over the coordinates (NaN if any is NaN).
    pub fn max_rhat(&self) -> f64 {
        self.rhat.iter().fold(
            f64::NEG_INFINITY,
            |a, &b| if b.is_nan() { b } else { a.max(b) },
        )
    }

    /// The smallest bulk or tail ESS over the coordinates (NaN if any is NaN).
    pub fn min_ess(&self) -> f64 {
        self.ess_bulk
            .iter()
            .chain(&self.ess_tail)
            .fold(f64::INFINITY, |a, &b| if b.is_nan() { b } else { a.min(b) })
    }

    /// The failed checks, described, or `None` when all passed.
    fn failures(&self, max_rhat: f64) -> Option<String> {
        let mut failed = Vec::new();
        let (mut worst_r, mut worst_r_at) = (f64::NEG_INFINITY, 0);
        for (i, &r) in self.rhat.iter().enumerate() {
            if r.is_nan() || r > worst_r {
                (worst_r, worst_r_at) = (r, i);
                if r.is_nan() {
                    break;
                }
            }
        }
        if worst_r.is_nan() || worst_r > max_rhat {
            failed.push(format!(
                "split-R̂ of {} is {worst_r:.4} (at most {max_rhat} required)",
                self.parameter_names[worst_r_at]
            ));
        }
        let d = self.rhat.len();
        let (mut worst_e, mut worst_e_at) = (f64::INFINITY, 0);
        for (i, &e) in self.ess_bulk.iter().chain(&self.ess_tail).enumerate() {
            if e.is_nan() || e < worst_e {
                (worst_e, worst_e_at) = (e, i);
                if e.is_nan() {
                    break;
                }
            }
        }
        if worst_e.is_nan() || worst_e < self.required_ess {
            let kind = if worst_e_at < d { "bulk" } else { "tail" };
            failed.push(format!(
                "{kind} ESS of {} is {worst_e:.1} (at least {} required)",
                self.parameter_names[worst_e_at % d],
                self.required_ess
            ));
        }
        (!failed.is_empty()).then(|| failed.join("; "))
    }
}

/// An unnormalized log posterior and how to start chains on it.
pub(crate) trait Target: Sync {
    /// Dimension of the space the chains run in.
    fn dim(&self) -> usize;
    /// The unnormalized log posterior; −∞ outside the support.
    fn log_density(&self, x: &[f64]) -> f64;
    /// A starting point for one chain, with a finite log density.
    fn initial_point(&self, rng: &mut SeededRng) -> Vec<f64>;
    /// A first guess of the posterior covariance (symmetric; the sampler regularizes it).
    fn initial_covariance(&self, rng: &mut SeededRng) -> DMatrix<f64>;
    /// The returned coordinates of a state (of the same dimension), where the chains run
    /// in other coordinates than those returned. The identity by default.
    fn output(&self, x: &[f64], out: &mut [f64]) {
        out.copy_from_slice(x);
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
    fn step<T: Target>(&mut self, target: &T, factor: &[f64], scale: f64) -> f64 {
        let d = self.x.len();
        for z in &mut self.z {
            *z = StandardNormal.sample(&mut self.rng);
        }
        for i in 0..d {
            let row = &factor[i * d..i * d + i + 1];
            let lz: f64 = row.iter().zip(&self.z).map(|(a, b)| a * b).sum();
            self.y[i] = self.x[i] + scale * lz;
        }
        let logq = target.log_density(&self.y);
        self.evaluations += 1;
        let log_ratio = logq - self.logp;
        // −∞ (outside the support) gives 0; NaN never happens for our targets, but rejects.
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
    fn warmup_window<T: Target>(
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
    fn sample<T: Target>(
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
pub(crate) fn run<T: Target>(
    target: &T,
    what: &str,
    names: &[String],
    settings: &McmcSettings,
    n: usize,
    rng: &mut dyn RngCore,
) -> Result<(DMatrix<f64>, McmcDiagnostics), BenchmarkError> {
    settings.check()?;
    let d = target.dim();
    debug_assert_eq!(names.len(), d);
    let k = settings.chains;
    let seed = rng.next_u64();

    // Starting points and the first proposal covariance.
    let mut chains: Vec<Chain> = (0..k)
        .into_par_iter()
        .map(|c| {
            let mut chain_rng = derive_rng(seed, c as u64);
            let x = target.initial_point(&mut chain_rng);
            let logp = target.log_density(&x);
            Chain {
                rng: chain_rng,
                logp,
                log_scale: (2.38 / (d as f64).sqrt()).ln(),
                accepted: 0,
                proposed: 0,
                evaluations: 1,
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
    if let Some(c) = chains.iter().position(|c| !c.logp.is_finite()) {
        return Err(BenchmarkError::InvalidArgument(format!(
            "MCMC for {what}: chain {c} found no starting point with a finite log density"
        )));
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
        let diagnostics = diagnose(&chains, names, settings, done, scale, required, {
            let acc: u64 = chains.iter().map(|c| c.accepted).sum::<u64>() - warmup_accepted;
            let prop: u64 = chains.iter().map(|c| c.proposed).sum::<u64>() - warmup_proposed;
            acc as f64 / prop.max(1) as f64
        });
        let enough_stored = chains[0].count >= n.div_ceil(k);
        let failures = diagnostics.failures(settings.max_rhat).or_else(|| {
            (!enough_stored).then(|| format!("only {} states kept per chain", chains[0].count))
        });
        let Some(failed) = failures else {
            return Ok((select(&chains, n, rng), diagnostics));
        };
        if done >= budget {
            return Err(BenchmarkError::McmcConvergence {
                what: what.to_string(),
                failed,
                iterations: done,
                chains: k,
                max_rhat: diagnostics.max_rhat(),
                min_ess: diagnostics.min_ess(),
                required_ess: required,
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
fn diagnose(
    chains: &[Chain],
    names: &[String],
    settings: &McmcSettings,
    iterations: usize,
    scale: f64,
    required: f64,
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
        parameter_names: names.to_vec(),
        chains: chains.len(),
        warmup: settings.warmup,
        iterations,
        stride: chains[0].stride,
        stored: chains[0].count,
        acceptance_rate,
        proposal_scale: scale,
        rhat: per_coordinate.iter().map(|r| r.0).collect(),
        ess_bulk: per_coordinate.iter().map(|r| r.1).collect(),
        ess_tail: per_coordinate.iter().map(|r| r.2).collect(),
        required_ess: required,
        evaluations: chains.iter().map(|c| c.evaluations).sum(),
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

/// Each chain split into its first and second half (the middle state of an odd length is
/// dropped), so that R̂ also sees drift within chains.
pub(crate) fn split_halves(series: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let mut out = Vec::with_capacity(2 * series.len());
    for s in series {
        let half = s.len() / 2;
        out.push(s[..half].to_vec());
        out.push(s[s.len() - half..].to_vec());
    }
    out
}

/// `(R̂, bulk ESS, tail ESS)` of one coordinate from already split chains (Vehtari et al.
/// 2021): R̂ is the larger of the split-R̂ of the rank-normalized values and of the
/// rank-normalized distances to the median; bulk ESS that of the rank-normalized values;
/// tail ESS the smaller of those of the indicators of the 5 % and 95 % quantiles.
pub(crate) fn coordinate_diagnostics(series: &[Vec<f64>]) -> (f64, f64, f64) {
    let lens: Vec<usize> = series.iter().map(Vec::len).collect();
    let all: Vec<f64> = series.concat();
    if all.len() < 8 {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    let mut sorted = all.clone();
    sorted.sort_unstable_by(f64::total_cmp);
    let quantile = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
    let median = quantile(0.5);
    let (q05, q95) = (quantile(0.05), quantile(0.95));

    let chunks = |v: Vec<f64>| -> Vec<Vec<f64>> {
        let mut out = Vec::with_capacity(lens.len());
        let mut start = 0;
        for &l in &lens {
            out.push(v[start..start + l].to_vec());
            start += l;
        }
        out
    };
    let z = chunks(rank_normalize(&all));
    let folded = chunks(rank_normalize(
        &all.iter().map(|v| (v - median).abs()).collect::<Vec<_>>(),
    ));
    let (r_bulk, r_folded) = (split_rhat(&z), split_rhat(&folded));
    let rhat = if r_bulk.is_nan() || r_folded.is_nan() {
        f64::NAN
    } else {
        r_bulk.max(r_folded)
    };
    let bulk = ess(&z);
    let low = chunks(all.iter().map(|&v| f64::from(u8::from(v <= q05))).collect());
    let high = chunks(all.iter().map(|&v| f64::from(u8::from(v >= q95))).collect());
    let (el, eh) = (ess(&low), ess(&high));
    let tail = if el.is_nan() || eh.is_nan() {
        f64::NAN
    } else {
        el.min(eh)
    };
    (rhat, bulk, tail)
}

/// Normal scores of the ranks: `Φ⁻¹((r − 3/8)/(N + 1/4))`, ties getting their average rank.
pub(crate) fn rank_normalize(values: &[f64]) -> Vec<f64> {
    let n = values.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_unstable_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut out = vec![0.0; n];
    let mut i = 0;
    while i < n {
        let mut j = i + 1;
        while j < n && values[order[j]] == values[order[i]] {
            j += 1;
        }
        // Ranks i+1..=j (1-based) share their average.
        let rank = (i + 1 + j) as f64 / 2.0;
        let z = normal_quantile((rank - 0.375) / (n as f64 + 0.25));
        for &o in &order[i..j] {
            out[o] = z;
        }
        i = j;
    }
    out
}

/// The split-R̂ of chains given as series of equal length (already split):
/// `√(((L−1)/L·W + B/L) / W)` with `W` the mean within-chain variance and `B/L` the
/// variance of the chain means. NaN when `W = 0`.
pub(crate) fn split_rhat(series: &[Vec<f64>]) -> f64 {
    let m = series.len();
    let l = series.iter().map(Vec::len).min().unwrap_or(0);
    if m < 2 || l < 2 {
        return f64::NAN;
    }
    let lf = l as f64;
    let means: Vec<f64> = series
        .iter()
        .map(|s| s[..l].iter().sum::<f64>() / lf)
        .collect();
    let w = series
        .iter()
        .zip(&means)
        .map(|(s, mu)| s[..l].iter().map(|v| (v - mu).powi(2)).sum::<f64>() / (lf - 1.0))
        .sum::<f64>()
        / m as f64;
    let grand = means.iter().sum::<f64>() / m as f64;
    let b_over_l = means.iter().map(|mu| (mu - grand).powi(2)).sum::<f64>() / (m as f64 - 1.0);
    if w.is_nan() || w <= 0.0 {
        return f64::NAN;
    }
    (((lf - 1.0) / lf * w + b_over_l) / w).sqrt()
}

/// The multi-chain effective sample size of series of equal length (as Stan computes it):
/// autocorrelations `ρ_t = 1 − (W − mean_k acov_k(t)) / var⁺`, summed in pairs by
/// Geyer's initial positive sequence made monotone, `τ = −1 + 2 Σ_t (ρ_2t + ρ_2t+1)`,
/// `ESS = M·L/τ`, capped at `M·L·log₁₀(M·L)`. NaN when there is no variance.
pub(crate) fn ess(series: &[Vec<f64>]) -> f64 {
    let m = series.len();
    let l = series.iter().map(Vec::len).min().unwrap_or(0);
    if m == 0 || l < 4 {
        return f64::NAN;
    }
    let lf = l as f64;
    let centred: Vec<Vec<f64>> = series
        .iter()
        .map(|s| {
            let mu = s[..l].iter().sum::<f64>() / lf;
            s[..l].iter().map(|v| v - mu).collect()
        })
        .collect();
    let means: Vec<f64> = series
        .iter()
        .map(|s| s[..l].iter().sum::<f64>() / lf)
        .collect();
    // Mean over chains of the (biased, 1/L) autocovariance at lag t.
    let acov = |t: usize| -> f64 {
        centred
            .iter()
            .map(|c| {
                c[..l - t]
                    .iter()
                    .zip(&c[t..])
                    .map(|(a, b)| a * b)
                    .sum::<f64>()
                    / lf
            })
            .sum::<f64>()
            / m as f64
    };
    let w = acov(0) * lf / (lf - 1.0);
    let var_between = if m > 1 {
        let grand = means.iter().sum::<f64>() / m as f64;
        means.iter().map(|mu| (mu - grand).powi(2)).sum::<f64>() / (m as f64 - 1.0)
    } else {
        0.0
    };
    let var_plus = w * (lf - 1.0) / lf + var_between;
    if var_plus.is_nan() || var_plus <= 0.0 {
        return f64::NAN;
    }
    let rho = |t: usize| 1.0 - (w - acov(t)) / var_plus;
    let mut sum_pairs = 0.0;
    let mut previous = f64::INFINITY;
    let mut t = 0;
    while t + 1 < l {
        let first = if t == 0 { 1.0 } else { rho(t) };
        let pair = first + rho(t + 1);
        if pair.is_nan() || pair <= 0.0 {
            break;
        }
        let pair = pair.min(previous);
        previous = pair;
        sum_pairs += pair;
        t += 2;
    }
    let tau = (2.0 * sum_pairs - 1.0).max(1e-12);
    let total = m as f64 * lf;
    (total / tau).min(total * total.log10())
}

/// The standard normal quantile function Φ⁻¹(p) for 0 < p < 1 (Acklam's rational
/// approximation, relative error below 1.2e-9: plenty for rank normalization).
pub(crate) fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    const P_LOW: f64 = 0.02425;
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < P_LOW {
        tail((-2.0 * p.ln()).sqrt())
    } else if p <= 1.0 - P_LOW {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::special::erfc;
    use simfer_distributions::rng_from_seed;

    /// Φ(x) from the crate's erfc.
    fn normal_cdf(x: f64) -> f64 {
        0.5 * erfc(-x / std::f64::consts::SQRT_2)
    }

    #[test]
    fn normal_quantile_inverts_the_cdf() {
        for &p in &[
            1e-12, 1e-6, 0.001, 0.02, 0.02425, 0.1, 0.3, 0.5, 0.77, 0.98, 0.999_99,
        ] {
            // The error in x implied by Φ(x) − p, against Acklam's bound of 1.15e-9 relative.
            let x = normal_quantile(p);
            let density = (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt();
            let dx = (normal_cdf(x) - p) / density;
            assert!(
                dx.abs() <= 1.2e-9 * x.abs() + 1e-15,
                "p = {p}: Φ⁻¹(p) = {x}, off by {dx}"
            );
        }
        assert_eq!(normal_quantile(0.5), 0.0);
    }

    /// `m` AR(1) series `x_t = φ x_{t−1} + √(1−φ²) ε_t` (stationary N(0, 1)), shifted by
    /// `shift[k]`.
    fn ar1(m: usize, l: usize, phi: f64, shift: &[f64], seed: u64) -> Vec<Vec<f64>> {
        let mut rng = rng_from_seed(seed);
        (0..m)
            .map(|k| {
                let mut x: f64 = StandardNormal.sample(&mut rng);
                (0..l)
                    .map(|_| {
                        let e: f64 = StandardNormal.sample(&mut rng);
                        x = phi * x + (1.0 - phi * phi).sqrt() * e;
                        x + shift[k]
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn ess_of_ar1_chains_matches_the_integrated_autocorrelation_time() {
        // τ = (1 + φ)/(1 − φ) for AR(1); ESS = M·L/τ. The estimate has a relative standard
        // error of a few percent at these lengths.
        for &phi in &[0.0, 0.5, 0.9] {
            let (m, l) = (8, 20_000);
            let series = ar1(m, l, phi, &[0.0; 8], 3);
            let expected = (m * l) as f64 * (1.0 - phi) / (1.0 + phi);
            let found = ess(&series);
            assert!(
                (found / expected - 1.0).abs() < 0.1,
                "φ = {phi}: ESS {found}, expected {expected}"
            );
            let (rhat, bulk, tail) = coordinate_diagnostics(&split_halves(&series));
            assert!(rhat < 1.01, "φ = {phi}: R̂ {rhat}");
            assert!(
                (bulk / expected - 1.0).abs() < 0.1,
                "φ = {phi}: bulk {bulk}"
            );
            // Indicators of a tail quantile decorrelate faster than the values themselves.
            assert!(tail > 0.5 * expected, "φ = {phi}: tail {tail}");
        }
    }

    #[test]
    fn ess_is_capped_for_antithetic_chains() {
        // φ < 0: τ < 1, ESS above the number of draws, capped at M·L·log₁₀(M·L).
        let series = ar1(4, 5000, -0.5, &[0.0; 4], 9);
        let found = ess(&series);
        assert!(found > 20_000.0 && found <= 20_000.0 * 20_000f64.log10());
    }

    #[test]
    fn split_rhat_detects_shifted_and_drifting_chains() {
        let (m, l) = (4, 4000);
        let same = ar1(m, l, 0.5, &[0.0; 4], 1);
        assert!(split_rhat(&split_halves(&same)) < 1.01);
        // One chain off by half a standard deviation.
        let shifted = ar1(m, l, 0.5, &[0.0, 0.0, 0.0, 0.5], 1);
        assert!(split_rhat(&split_halves(&shifted)) > 1.02);
        // A drift within every chain is only seen after splitting.
        let drifting: Vec<Vec<f64>> = same
            .iter()
            .map(|s| {
                s.iter()
                    .enumerate()
                    .map(|(i, v)| v + 1.5 * i as f64 / l as f64)
                    .collect()
            })
            .collect();
        assert!(split_rhat(&drifting) < 1.01);
        assert!(split_rhat(&split_halves(&drifting)) > 1.05);
        // A different scale in one chain: only the folded R̂ sees it.
        let mut scaled = same.clone();
        for v in &mut scaled[3] {
            *v *= 2.0;
        }
        let (r, _, _) = coordinate_diagnostics(&split_halves(&scaled));
        assert!(r > 1.02, "R̂ {r}");
        // Constant chains have no variance to compare.
        assert!(split_rhat(&[vec![1.0; 10], vec![1.0; 10]]).is_nan());
    }

    #[test]
    fn rank_normalization_averages_ties() {
        let z = rank_normalize(&[3.0, 1.0, 2.0, 2.0]);
        assert!(z[1] < z[2] && z[2] == z[3] && z[3] < z[0]);
        assert!((z[2] - normal_quantile((2.5 - 0.375) / 4.25)).abs() < 1e-15);
        assert!((z[0] + z[1]).abs() < 1e-12);
    }

    /// A correlated Gaussian in 3-D, known in closed form.
    struct Gauss {
        prec: DMatrix<f64>,
    }

    impl Target for Gauss {
        fn dim(&self) -> usize {
            3
        }
        fn log_density(&self, x: &[f64]) -> f64 {
            let v = nalgebra::DVector::from_column_slice(x);
            -0.5 * (v.transpose() * &self.prec * &v)[0]
        }
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
            &McmcSettings::default(),
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
        impl Target for Counter {
            fn dim(&self) -> usize {
                1
            }
            fn log_density(&self, _: &[f64]) -> f64 {
                0.0
            }
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
        impl Target for TwoModes {
            fn dim(&self) -> usize {
                1
            }
            fn log_density(&self, x: &[f64]) -> f64 {
                let a = -0.5 * (x[0] - 1000.0).powi(2);
                let b = -0.5 * (x[0] + 1000.0).powi(2);
                a.max(b) + (-(a - b).abs()).exp().ln_1p()
            }
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
        let settings = McmcSettings::default().with_max_iterations(20_000);
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
        assert!(matches!(err, BenchmarkError::McmcConvergence { max_rhat, .. } if max_rhat > 1.5));
    }
}
