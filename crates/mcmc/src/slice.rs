//! The vectorized per-coordinate slice sampler, the reference library's default MCMC
//! sampler (`sbi.samplers.mcmc.slice_numpy.SliceSamplerVectorized`, run as
//! `MCMCPosterior`'s `_slice_np_mcmc`).
//!
//! # One coordinate update (Neal 2003, "Slice sampling", Annals of Statistics 31(3),
//! §4: the stepping-out and shrinkage procedures)
//!
//! For coordinate `i` of the current point `x`, with value `c` and bracket width `wᵢ`:
//!
//! ```text
//! ℓ₀   = U(x)                     (the log density at the current point)
//! logu = ℓ₀ + ln(1 − U₁)          (the slice: all points with U ≥ logu)
//! lx   = c − wᵢ·U₂ ;  ux = lx + wᵢ
//! while U(…lx…) ≥ logu and c − lx < max_width:  lx −= wᵢ      (step out, no step cap)
//! while U(…ux…) ≥ logu and ux − c < max_width:  ux += wᵢ
//! loop: x' = lx + (ux − lx)·U ;  if U(…x'…) < logu: (x' < c ? lx = x' : ux = x'), retry
//! accept x' for coordinate i
//! if t < tuning:  wᵢ ← wᵢ + ((ux − lx) − wᵢ)/(t + 1)   (the bracket after shrinking)
//! ```
//!
//! with `U₁, U₂, U` uniform on [0, 1) and `t` the sweep. Each update leaves the target
//! invariant (Neal 2003, §4), and so does a sweep over the coordinates in any order. Per chain
//! and sweep the coordinates are visited in a fresh random order. During the first
//! [`SliceSettings::tuning`] (50) sweeps the widths, all [`SliceSettings::init_width`]
//! (0.01) at first, follow the running mean of the brackets (at `t = 0` the first bracket
//! replaces the initial width outright); the chain moves during these sweeps but they are
//! not stored. After them the widths are fixed and the chain is a valid Markov chain.
//!
//! **Differences from the reference, none of which changes a chain:** the reference
//! re-evaluates `U(x)` at the start of every coordinate update; the value is that
//! computed when `x` was accepted, so it is kept (one evaluation fewer per update). A
//! bracket end that a step of `wᵢ` no longer moves (a width below the rounding of `c`)
//! ends the stepping out, where the reference would loop forever; and a tuned width that
//! would be 0 or not finite keeps its previous value. NaN and +∞ values are treated as −∞
//! and counted.
//!
//! **Finite `max_width`** (not the default): the bracket's distance from `c` is capped as
//! the reference caps it; when the cap binds, the update is not exactly reversible (Neal
//! 2003 randomizes a cap on the number of steps for that), so keep it well above the
//! target's scale.
//!
//! # Chains, counts and order (as `_slice_np_mcmc`)
//!
//! All chains advance in lockstep: each step is one [`LogDensity::log_density_batch`] call
//! on the next point of every chain still stepping out or shrinking (chains that finished
//! drop out). For `N` samples, `K` chains, warm-up `W` and thinning `h`, each chain runs
//! `tuning + n` sweeps with `n = W·h + ⌈N·h/K⌉`; of the `n` stored sweeps every `h`-th is
//! kept (the first, the `h+1`-th, …), the first `W` kept ones are dropped, leaving
//! `⌈⌈N·h/K⌉/h⌉` per chain; the chains are concatenated **chain-major** (chain 0's draws,
//! then chain 1's, …) and the first `N` columns returned. With the defaults and
//! `N = 1000`: 50 + 200 + 50 sweeps per chain, 50 samples from each of 20 chains.
//!
//! # Seeds and threads
//!
//! Chain `c` draws all its randomness (initialisation, coordinate orders, uniforms) from
//! its own generator `derive_rng(seed, c)`, and the lockstep schedule only decides when a
//! chain's next value is computed, never which: results are the same bits whatever the
//! number of threads and however a batch is evaluated.
//!
//! # Budgets
//!
//! A density that does not fall off (flat, improper) makes the stepping out run forever.
//! Every run therefore has a budget of evaluations ([`SliceSettings::max_evaluations`]) and
//! of time ([`SliceSettings::max_seconds`]), and fails with [`McmcError::Budget`] when one
//! is spent.

use std::time::Instant;

use nalgebra::DMatrix;
use rand::Rng;
use rand::seq::SliceRandom;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use simfer_distributions::{Prior, SeededRng, derive_rng};

use crate::density::sanitize;
use crate::diagnostics::{coordinate_diagnostics, split_halves};
use crate::error::BudgetKind;
use crate::{InitStrategy, LogDensity, McmcDiagnostics, McmcError, SamplerKind};

/// Log-density evaluations per coordinate update that the automatic evaluation budget
/// allows on average (a typical update needs 3 to 8).
pub const AUTO_EVALUATIONS_PER_UPDATE: u64 = 1000;

/// Optional convergence checks of a slice-sampler run: with them the run fails with
/// [`McmcError::Convergence`] instead of returning draws that do not pass.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConvergenceCheck {
    /// The largest acceptable rank-normalized folded split-R̂ of any coordinate (> 1).
    /// Default 1.01.
    pub max_rhat: f64,
    /// The smallest acceptable bulk or tail ESS of any coordinate (≥ 0). Default 400
    /// (Vehtari et al. 2021 suggest 100 per chain for 4 chains).
    pub min_ess: f64,
}

impl Default for ConvergenceCheck {
    fn default() -> Self {
        Self {
            max_rhat: 1.01,
            min_ess: 400.0,
        }
    }
}

/// Settings of the [`SliceSampler`]. The defaults are the reference library's
/// (`MCMCPosterior` with `method="slice_np_vectorized"`), plus budgets of our own.
///
/// ```
/// use simfer_mcmc::{InitStrategy, SliceSettings};
/// let s = SliceSettings::default();
/// assert_eq!((s.chains, s.warmup, s.thin, s.tuning), (20, 200, 1, 50));
/// assert_eq!(s.init, InitStrategy::Resample { candidates: 10_000 });
/// assert_eq!((s.init_width, s.max_width), (0.01, None)); // no limit: ∞
/// assert!(s.clone().with_chains(4).with_thin(5).check().is_ok());
/// assert!(s.with_thin(0).check().is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SliceSettings {
    /// Number of chains (at least 1). Default 20.
    pub chains: usize,
    /// Warm-up per chain in kept states: `warmup·thin` sweeps after the tuning sweeps are
    /// discarded. Default 200.
    pub warmup: usize,
    /// Keep every `thin`-th sweep (at least 1). Default 1 (the reference's −1).
    pub thin: usize,
    /// How the chains start. Default `Resample` with 10 000 candidates per chain.
    pub init: InitStrategy,
    /// The bracket width of every coordinate before tuning (> 0, finite). Default 0.01.
    pub init_width: f64,
    /// Sweeps during which the widths are tuned (not stored). Default 50.
    pub tuning: usize,
    /// The largest distance a bracket may extend from the current value (> 0). Default
    /// `None`: no limit (the reference's ∞).
    pub max_width: Option<f64>,
    /// The most log-density evaluations a run may make, initialisation included. `None`
    /// (the default): the initialisation's plus [`AUTO_EVALUATIONS_PER_UPDATE`] per
    /// coordinate update of the run, about 200 times what a typical run needs.
    pub max_evaluations: Option<u64>,
    /// The most wall-clock seconds a run may take (> 0). Default `Some(3600.0)`; `None`
    /// for no limit.
    pub max_seconds: Option<f64>,
    /// Convergence checks the run must pass. Default `None` (the reference checks nothing;
    /// the diagnostics are reported either way).
    pub convergence: Option<ConvergenceCheck>,
}

impl Default for SliceSettings {
    fn default() -> Self {
        Self {
            chains: 20,
            warmup: 200,
            thin: 1,
            init: InitStrategy::default(),
            init_width: 0.01,
            tuning: 50,
            max_width: None,
            max_evaluations: None,
            max_seconds: Some(3600.0),
            convergence: None,
        }
    }
}

impl SliceSettings {
    /// These settings with `chains` chains.
    pub fn with_chains(mut self, chains: usize) -> Self {
        self.chains = chains;
        self
    }
    /// These settings with a warm-up of `warmup` kept states per chain.
    pub fn with_warmup(mut self, warmup: usize) -> Self {
        self.warmup = warmup;
        self
    }
    /// These settings keeping every `thin`-th sweep.
    pub fn with_thin(mut self, thin: usize) -> Self {
        self.thin = thin;
        self
    }
    /// These settings with another initialisation.
    pub fn with_init(mut self, init: InitStrategy) -> Self {
        self.init = init;
        self
    }
    /// These settings with another initial bracket width.
    pub fn with_init_width(mut self, init_width: f64) -> Self {
        self.init_width = init_width;
        self
    }
    /// These settings with `tuning` width-tuning sweeps.
    pub fn with_tuning(mut self, tuning: usize) -> Self {
        self.tuning = tuning;
        self
    }
    /// These settings with a maximal bracket extent.
    pub fn with_max_width(mut self, max_width: f64) -> Self {
        self.max_width = Some(max_width);
        self
    }
    /// These settings with a budget of `max_evaluations` log-density evaluations.
    pub fn with_max_evaluations(mut self, max_evaluations: u64) -> Self {
        self.max_evaluations = Some(max_evaluations);
        self
    }
    /// These settings with a time budget of `max_seconds` (`None`: no limit).
    pub fn with_max_seconds(mut self, max_seconds: Option<f64>) -> Self {
        self.max_seconds = max_seconds;
        self
    }
    /// These settings with convergence checks.
    pub fn with_convergence(mut self, check: ConvergenceCheck) -> Self {
        self.convergence = Some(check);
        self
    }

    /// Checks that the settings make sense.
    ///
    /// # Errors
    /// [`McmcError::InvalidConfig`] for 0 chains, a thinning of 0, an initial width that
    /// is not a finite number above 0, a maximal width that is not above 0, a budget of 0
    /// evaluations or a time budget that is not above 0, convergence thresholds out of
    /// range, or an initialisation that fails [`InitStrategy::check`] (which may also give
    /// [`McmcError::NonFinite`]).
    pub fn check(&self) -> Result<(), McmcError> {
        let problem = if self.chains == 0 {
            Some("the slice sampler needs at least 1 chain, found 0".to_string())
        } else if self.thin == 0 {
            Some("the thinning must be at least 1 (1 keeps every sweep), found 0".to_string())
        } else if !(self.init_width > 0.0 && self.init_width.is_finite()) {
            Some(format!(
                "the initial bracket width must be a finite number above 0, found {}",
                self.init_width
            ))
        } else if let Some(w) = self.max_width.filter(|w| w.is_nan() || *w <= 0.0) {
            Some(format!(
                "the maximal bracket width must be above 0 (None for no limit), found {w}"
            ))
        } else if self.max_evaluations == Some(0) {
            Some("the evaluation budget (max_evaluations) must be at least 1, found 0".into())
        } else if let Some(t) = self.max_seconds.filter(|t| t.is_nan() || *t <= 0.0) {
            Some(format!(
                "the time budget (max_seconds) must be above 0 (None for no limit), found {t}"
            ))
        } else if let Some(c) = &self.convergence {
            if !(c.max_rhat > 1.0 && c.max_rhat.is_finite()) {
                Some(format!(
                    "the R̂ threshold must be a finite number above 1, found {}",
                    c.max_rhat
                ))
            } else if !(c.min_ess >= 0.0 && c.min_ess.is_finite()) {
                Some(format!(
                    "the minimum ESS must be a finite number of at least 0, found {}",
                    c.min_ess
                ))
            } else {
                None
            }
        } else {
            None
        };
        match problem {
            Some(p) => Err(McmcError::InvalidConfig(p)),
            None => self.init.check(),
        }
    }

    /// The sweep counts of a run for `n` samples (see the [module docs](self)).
    ///
    /// # Errors
    /// [`McmcError::InvalidConfig`] for `n = 0`, or for counts that overflow.
    pub fn plan(&self, n: usize) -> Result<SlicePlan, McmcError> {
        if n == 0 {
            return Err(McmcError::InvalidConfig(
                "the slice sampler needs at least 1 sample to draw, found 0".into(),
            ));
        }
        let overflow = || {
            McmcError::InvalidConfig(format!(
                "{n} samples with {} chains, warm-up {} and thinning {} need more sweeps than fit \
             in a usize",
                self.chains, self.warmup, self.thin
            ))
        };
        let per_chain_sweeps = n
            .checked_mul(self.thin)
            .ok_or_else(overflow)?
            .div_ceil(self.chains.max(1));
        let warmup_sweeps = self.warmup.checked_mul(self.thin).ok_or_else(overflow)?;
        let stored_sweeps = warmup_sweeps
            .checked_add(per_chain_sweeps)
            .ok_or_else(overflow)?;
        let total_sweeps = stored_sweeps
            .checked_add(self.tuning)
            .ok_or_else(overflow)?;
        Ok(SlicePlan {
            tuning_sweeps: self.tuning,
            warmup_sweeps,
            sampling_sweeps: per_chain_sweeps,
            total_sweeps,
            draws_per_chain: per_chain_sweeps.div_ceil(self.thin),
        })
    }
}

/// The sweep counts of one run, per chain (see [`SliceSettings::plan`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlicePlan {
    /// Width-tuning sweeps (not stored).
    pub tuning_sweeps: usize,
    /// Warm-up sweeps after the tuning, discarded: `warmup·thin`.
    pub warmup_sweeps: usize,
    /// Sweeps after the warm-up: `⌈N·thin/chains⌉`.
    pub sampling_sweeps: usize,
    /// All sweeps: tuning + warm-up + sampling.
    pub total_sweeps: usize,
    /// Draws kept per chain after the warm-up: `⌈sampling_sweeps/thin⌉`.
    pub draws_per_chain: usize,
}

/// What a [`SliceSampler`] run returns.
#[derive(Clone, Debug, PartialEq)]
pub struct SliceOutput {
    /// The `N` samples, `dim × N`: the chains' kept draws concatenated chain-major, the
    /// first `N` columns.
    pub samples: DMatrix<f64>,
    /// Each chain's kept draws after the warm-up, `dim × draws_per_chain` (all of them,
    /// also those beyond the first `N` samples); the diagnostics are computed on these.
    pub chains: Vec<DMatrix<f64>>,
    /// The chains' states after their last sweep, `dim × chains`: pass them as
    /// [`InitStrategy::Given`] to continue the chains (the reference's `latest_sample`).
    pub final_states: DMatrix<f64>,
    /// The tuned bracket widths, `dim × chains`.
    pub widths: DMatrix<f64>,
    /// What the run did and how well it converged.
    pub diagnostics: McmcDiagnostics,
}

/// The vectorized per-coordinate slice sampler (see the [module docs](self)).
///
/// ```
/// use simfer_distributions::BoxUniform;
/// use simfer_mcmc::{SliceSampler, SliceSettings, from_fn};
///
/// // A correlated Gaussian; the chains start from the prior by resampling.
/// let target = from_fn(2, |x: &[f64]| {
///     let (a, b) = (x[0], x[1]);
///     -(a * a - 1.8 * a * b + b * b) / (2.0 * 0.19)
/// });
/// let prior = BoxUniform::uniform(2, -5.0, 5.0)?;
/// let sampler = SliceSampler::new(SliceSettings::default().with_chains(4))?;
/// let run = sampler.sample(&target, Some(&prior), 1000, 42)?;
/// assert_eq!(run.samples.shape(), (2, 1000));
/// assert_eq!(run.chains.len(), 4);
/// assert!(run.diagnostics.max_rhat() < 1.05);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct SliceSampler {
    settings: SliceSettings,
    names: Option<Vec<String>>,
}

impl SliceSampler {
    /// The sampler with these settings.
    ///
    /// # Errors
    /// Settings that fail [`SliceSettings::check`].
    pub fn new(settings: SliceSettings) -> Result<Self, McmcError> {
        settings.check()?;
        Ok(Self {
            settings,
            names: None,
        })
    }

    /// This sampler naming the coordinates `names` in its diagnostics (`x[0]`, `x[1]`, …
    /// otherwise); their number is checked against the target's dimension when sampling.
    pub fn with_parameter_names(mut self, names: Vec<String>) -> Self {
        self.names = Some(names);
        self
    }

    /// The settings.
    pub fn settings(&self) -> &SliceSettings {
        &self.settings
    }

    /// `n` samples of `target`, the run seeded by `seed`. `proposal` is the distribution
    /// the initialisation draws candidates from (usually the prior); `None` only with
    /// [`InitStrategy::Given`].
    ///
    /// # Errors
    /// [`McmcError::InvalidConfig`] for `n = 0`, a target of dimension 0 or a missing
    /// proposal; [`McmcError::DimensionMismatch`] for a proposal, given starting points or
    /// parameter names that do not match the target; [`McmcError::NoValidStart`] when a
    /// chain finds no starting point with a finite log density;
    /// [`McmcError::Budget`] when the evaluation or time budget is spent;
    /// [`McmcError::Convergence`] when [`SliceSettings::convergence`] is set and a check
    /// fails; the proposal's errors.
    pub fn sample<T: LogDensity + ?Sized>(
        &self,
        target: &T,
        proposal: Option<&dyn Prior>,
        n: usize,
        seed: u64,
    ) -> Result<SliceOutput, McmcError> {
        let start = Instant::now();
        let s = &self.settings;
        let plan = s.plan(n)?;
        let d = target.dim();
        if d == 0 {
            return Err(McmcError::InvalidConfig(
                "the target must have at least 1 coordinate to sample, found dimension 0".into(),
            ));
        }
        let names = match &self.names {
            Some(names) if names.len() != d => {
                return Err(McmcError::DimensionMismatch {
                    what: "parameter names (one per coordinate of the target)",
                    expected: d,
                    found: names.len(),
                });
            }
            Some(names) => names.clone(),
            None => (0..d).map(|i| format!("x[{i}]")).collect(),
        };
        let k = s.chains;
        let max_seconds = s.max_seconds.unwrap_or(f64::INFINITY);
        let updates = (k as u64)
            .saturating_mul(plan.total_sweeps as u64)
            .saturating_mul(d as u64);
        let init_evaluations = s.init.evaluations(k);
        let limit = s.max_evaluations.unwrap_or_else(|| {
            init_evaluations.saturating_add(updates.saturating_mul(AUTO_EVALUATIONS_PER_UPDATE))
        });
        let budget = |kind: BudgetKind, evaluations: u64, done: usize| McmcError::Budget {
            sampler: "slice sampling",
            kind,
            limit: match kind {
                BudgetKind::Evaluations => limit as f64,
                BudgetKind::Seconds => max_seconds,
            },
            evaluations,
            seconds: start.elapsed().as_secs_f64(),
            done,
            total: plan.total_sweeps,
            advice: match kind {
                BudgetKind::Evaluations => {
                    "a stepping out that does not end means a density that does not fall \
                     off (flat or improper); otherwise raise SliceSettings::max_evaluations, \
                     or set max_width"
                        .into()
                }
                BudgetKind::Seconds => {
                    "raise SliceSettings::max_seconds, request fewer samples, or make the \
                     log density's batch evaluation faster"
                        .into()
                }
            },
        };
        if init_evaluations > limit {
            return Err(budget(BudgetKind::Evaluations, 0, 0));
        }

        // Starting points, each chain from its own generator.
        let mut rngs: Vec<SeededRng> = (0..k).map(|c| derive_rng(seed, c as u64)).collect();
        let starts = s.init.initial_states(target, proposal, &mut rngs)?;
        let mut evaluations: u64 = starts.iter().map(|c| c.evaluations).sum();
        let mut invalid: u64 = starts.iter().map(|c| c.invalid).sum();
        if start.elapsed().as_secs_f64() > max_seconds {
            return Err(budget(BudgetKind::Seconds, evaluations, 0));
        }
        let config = Config {
            tuning: s.tuning,
            warmup_sweeps: plan.warmup_sweeps,
            thin: s.thin,
            warmup: s.warmup,
            total_sweeps: plan.total_sweeps,
            max_width: s.max_width.unwrap_or(f64::INFINITY),
        };
        let mut chains: Vec<Chain> = starts
            .into_iter()
            .zip(rngs)
            .map(|(st, rng)| Chain::new(st.x, st.logp, rng, s.init_width, plan.draws_per_chain))
            .collect();
        for c in &mut chains {
            c.begin_sweep(&config);
        }

        // Lockstep: one batch call per step on the chains still running.
        let mut active: Vec<usize> = (0..k).collect();
        let mut batch = DMatrix::zeros(d, k);
        let mut values = vec![0.0; k];
        while !active.is_empty() {
            let m = active.len();
            if evaluations.saturating_add(m as u64) > limit {
                let done = chains.iter().map(|c| c.sweep).min().unwrap_or(0);
                return Err(budget(BudgetKind::Evaluations, evaluations, done));
            }
            if batch.ncols() != m {
                batch.resize_mut(d, m, 0.0);
            }
            for (j, &c) in active.iter().enumerate() {
                batch.column_mut(j).copy_from_slice(&chains[c].y);
            }
            target.log_density_batch(&batch, &mut values[..m]);
            evaluations += m as u64;
            for (j, &c) in active.iter().enumerate() {
                let v = sanitize(values[j], &mut invalid);
                chains[c].advance(v, &config);
            }
            active.retain(|&c| !chains[c].done);
            if start.elapsed().as_secs_f64() > max_seconds {
                let done = chains.iter().map(|c| c.sweep).min().unwrap_or(0);
                return Err(budget(BudgetKind::Seconds, evaluations, done));
            }
        }

        // Outputs: chain-major samples, per-chain draws, final states, widths.
        let per = plan.draws_per_chain;
        let chain_draws: Vec<DMatrix<f64>> = chains
            .iter()
            .map(|c| DMatrix::from_column_slice(d, per, &c.stored))
            .collect();
        let mut samples = DMatrix::zeros(d, n);
        for j in 0..n {
            let (c, i) = (j / per, j % per);
            samples
                .column_mut(j)
                .copy_from_slice(&chains[c].stored[i * d..(i + 1) * d]);
        }
        let mut final_states = DMatrix::zeros(d, k);
        let mut widths = DMatrix::zeros(d, k);
        for (c, chain) in chains.iter().enumerate() {
            final_states.column_mut(c).copy_from_slice(&chain.x);
            widths.column_mut(c).copy_from_slice(&chain.widths);
        }
        let per_coordinate: Vec<(f64, f64, f64)> = (0..d)
            .into_par_iter()
            .map(|p| {
                let series: Vec<Vec<f64>> = chain_draws
                    .iter()
                    .map(|m| m.row(p).iter().copied().collect())
                    .collect();
                coordinate_diagnostics(&split_halves(&series))
            })
            .collect();
        let (drawn, inside) = chains.iter().fold((0u64, 0u64), |(a, b), c| {
            (a + c.shrink_draws, b + c.shrink_inside)
        });
        let diagnostics = McmcDiagnostics {
            sampler: SamplerKind::Slice,
            parameter_names: names,
            chains: k,
            tuning: plan.tuning_sweeps,
            warmup: plan.warmup_sweeps,
            iterations: plan.sampling_sweeps,
            thin: s.thin,
            draws_per_chain: per,
            acceptance_rate: inside as f64 / drawn.max(1) as f64,
            proposal_scale: None,
            rhat: per_coordinate.iter().map(|r| r.0).collect(),
            ess_bulk: per_coordinate.iter().map(|r| r.1).collect(),
            ess_tail: per_coordinate.iter().map(|r| r.2).collect(),
            required_ess: s.convergence.map(|c| c.min_ess),
            evaluations,
            invalid_evaluations: invalid,
            seconds: start.elapsed().as_secs_f64(),
        };
        let failure = s.convergence.and_then(|check| {
            diagnostics
                .failures(check.max_rhat, check.min_ess)
                .map(|failed| (check, failed))
        });
        if let Some((check, failed)) = failure {
            return Err(McmcError::Convergence {
                what: "the target".into(),
                failed,
                iterations: plan.sampling_sweeps,
                chains: k,
                max_rhat: diagnostics.max_rhat(),
                min_ess: diagnostics.min_ess(),
                required_ess: check.min_ess,
                advice: "request more samples (longer chains), raise the warm-up or the \
                         thinning, or start the chains closer to the target's mass"
                    .into(),
            });
        }
        Ok(SliceOutput {
            samples,
            chains: chain_draws,
            final_states,
            widths,
            diagnostics,
        })
    }
}

/// What every chain needs to know about the run.
struct Config {
    tuning: usize,
    warmup_sweeps: usize,
    thin: usize,
    warmup: usize,
    total_sweeps: usize,
    max_width: f64,
}

/// Where a chain is in its coordinate update.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Phase {
    /// Stepping the lower end out; `y` holds `lx`.
    Lower,
    /// Stepping the upper end out; `y` holds `ux`.
    Upper,
    /// Shrinking; `y` holds the candidate.
    Shrink,
}

/// One chain of the slice sampler: a state machine that asks for one log-density value at
/// a time (the point `y`).
struct Chain {
    rng: SeededRng,
    /// The current state and its log density.
    x: Vec<f64>,
    logp: f64,
    /// The point to evaluate next: `x` with coordinate `order[pos]` changed.
    y: Vec<f64>,
    widths: Vec<f64>,
    order: Vec<usize>,
    pos: usize,
    /// The sweep `t` (0-based; the tuning sweeps come first).
    sweep: usize,
    phase: Phase,
    logu: f64,
    lx: f64,
    ux: f64,
    /// Kept draws, column after column.
    stored: Vec<f64>,
    shrink_draws: u64,
    shrink_inside: u64,
    done: bool,
}

impl Chain {
    fn new(x: Vec<f64>, logp: f64, rng: SeededRng, width: f64, per_chain: usize) -> Self {
        let d = x.len();
        Self {
            rng,
            y: x.clone(),
            logp,
            widths: vec![width; d],
            order: (0..d).collect(),
            pos: 0,
            sweep: 0,
            phase: Phase::Lower,
            logu: 0.0,
            lx: 0.0,
            ux: 0.0,
            stored: Vec::with_capacity(per_chain * d),
            shrink_draws: 0,
            shrink_inside: 0,
            done: false,
            x,
        }
    }

    /// The coordinate being updated.
    fn coordinate(&self) -> usize {
        self.order[self.pos]
    }

    /// A new sweep: a fresh random order, then the first coordinate's update.
    fn begin_sweep(&mut self, config: &Config) {
        if self.sweep == config.total_sweeps {
            self.done = true;
            return;
        }
        self.order.shuffle(&mut self.rng);
        self.pos = 0;
        self.begin_coordinate(config);
    }

    /// The slice and the initial bracket of the current coordinate.
    fn begin_coordinate(&mut self, config: &Config) {
        let i = self.coordinate();
        let w = self.widths[i];
        let u1: f64 = self.rng.random();
        self.logu = self.logp + (1.0 - u1).ln();
        let u2: f64 = self.rng.random();
        self.lx = self.x[i] - w * u2;
        self.ux = self.lx + w;
        self.step_lower(config);
    }

    /// Asks for `U(lx)` if the lower end may step out further, else moves on.
    fn step_lower(&mut self, config: &Config) {
        let i = self.coordinate();
        if self.x[i] - self.lx < config.max_width {
            self.phase = Phase::Lower;
            self.y[i] = self.lx;
        } else {
            self.step_upper(config);
        }
    }

    /// Asks for `U(ux)` if the upper end may step out further, else starts shrinking.
    fn step_upper(&mut self, config: &Config) {
        let i = self.coordinate();
        if self.ux - self.x[i] < config.max_width {
            self.phase = Phase::Upper;
            self.y[i] = self.ux;
        } else {
            self.draw_candidate();
        }
    }

    /// A uniform candidate in the bracket.
    fn draw_candidate(&mut self) {
        let i = self.coordinate();
        self.phase = Phase::Shrink;
        let u: f64 = self.rng.random();
        self.y[i] = self.lx + (self.ux - self.lx) * u;
        self.shrink_draws += 1;
    }

    /// Takes the log density `value` at `y` and moves on to the next point to evaluate.
    fn advance(&mut self, value: f64, config: &Config) {
        let i = self.coordinate();
        let w = self.widths[i];
        match self.phase {
            Phase::Lower => {
                let next = self.lx - w;
                if value >= self.logu && next != self.lx {
                    self.lx = next;
                    self.step_lower(config);
                } else {
                    self.step_upper(config);
                }
            }
            Phase::Upper => {
                let next = self.ux + w;
                if value >= self.logu && next != self.ux {
                    self.ux = next;
                    self.step_upper(config);
                } else {
                    self.draw_candidate();
                }
            }
            Phase::Shrink => {
                let candidate = self.y[i];
                if value < self.logu {
                    if candidate < self.x[i] {
                        self.lx = candidate;
                    } else {
                        self.ux = candidate;
                    }
                    self.draw_candidate();
                } else {
                    self.shrink_inside += 1;
                    self.x[i] = candidate;
                    self.logp = value;
                    if self.sweep < config.tuning {
                        let t = self.sweep as f64;
                        let tuned = w + ((self.ux - self.lx) - w) / (t + 1.0);
                        if tuned > 0.0 && tuned.is_finite() {
                            self.widths[i] = tuned;
                        }
                    }
                    self.pos += 1;
                    if self.pos < self.x.len() {
                        self.begin_coordinate(config);
                    } else {
                        self.end_sweep(config);
                    }
                }
            }
        }
    }

    /// After the last coordinate: store the state if it is kept, then the next sweep.
    fn end_sweep(&mut self, config: &Config) {
        if self.sweep >= config.tuning {
            let stored_index = self.sweep - config.tuning;
            if stored_index.is_multiple_of(config.thin)
                && stored_index / config.thin >= config.warmup
            {
                self.stored.extend_from_slice(&self.x);
            }
        }
        debug_assert!(config.warmup_sweeps == config.warmup * config.thin);
        self.sweep += 1;
        self.begin_sweep(config);
    }
}
