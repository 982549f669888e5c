//! Starting points of the chains, as the reference library's
//! `sbi.samplers.mcmc.init_strategy` draws them (`proposal_init`, `sir_init`,
//! `resample_given_potential_fn`): one call per chain, each with fresh candidates.

use nalgebra::DMatrix;
use rand::Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use simfer_distributions::{Prior, SeededRng, derive_rng};

use crate::density::sanitize;
use crate::error::check_finite;
use crate::{LogDensity, McmcError};

/// How each chain's starting point is chosen.
///
/// Chain `c` draws from its own generator `derive_rng(seed, c)` (and goes on sampling with
/// it), so the starts do not depend on the number of threads. Candidates whose log density
/// is −∞, NaN or +∞ get weight 0; a chain whose candidates all have weight 0 fails with
/// [`McmcError::NoValidStart`].
///
/// ```
/// use simfer_distributions::BoxUniform;
/// use simfer_mcmc::{InitStrategy, from_fn};
///
/// let prior = BoxUniform::uniform(1, -5.0, 5.0)?;
/// let target = from_fn(1, |x: &[f64]| -0.5 * (x[0] - 2.0).powi(2) / 0.01);
/// let starts = InitStrategy::Resample { candidates: 1000 }
///     .initial_points(&target, Some(&prior), 4, 7)?;
/// assert_eq!(starts.shape(), (1, 4));
/// assert!(starts.iter().all(|x| (x - 2.0).abs() < 0.5));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InitStrategy {
    /// One draw from the proposal per chain (`proposal_init`); the draw must have a
    /// finite log density.
    Proposal,
    /// Sampling–importance resampling (`sir_init`): `candidates` draws θᵢ from the
    /// proposal q, log weights `U(θᵢ) − ln q(θᵢ)`, one index picked by the inverse CDF of
    /// the normalized weights with one uniform: approximately a draw from the target.
    Sir {
        /// Candidates per chain (the reference: 10 000).
        candidates: usize,
    },
    /// The reference's default (`resample_given_potential_fn`): `candidates` draws from
    /// the proposal, weights ∝ `exp U(θᵢ)` **without** dividing by the proposal density
    /// (so with the prior as proposal the pick is ∝ prior² × likelihood, more
    /// concentrated than the posterior), one multinomial pick.
    Resample {
        /// Candidates per chain (the reference: 10 000).
        candidates: usize,
    },
    /// Explicit starting points, `dim × chains`, each with a finite log density; e.g. the
    /// [`final_states`](crate::SliceOutput::final_states) of an earlier run, to continue
    /// it (the reference's `latest_sample`).
    Given(DMatrix<f64>),
}

impl Default for InitStrategy {
    /// `Resample` with 10 000 candidates per chain, as the reference.
    fn default() -> Self {
        Self::Resample { candidates: 10_000 }
    }
}

/// A chain's starting point: the point, its log density and the evaluations it cost.
pub(crate) struct Start {
    pub(crate) x: Vec<f64>,
    pub(crate) logp: f64,
    pub(crate) evaluations: u64,
    pub(crate) invalid: u64,
}

impl InitStrategy {
    /// Checks the strategy on its own (candidate counts of at least 1, finite given
    /// points).
    ///
    /// # Errors
    /// [`McmcError::InvalidConfig`] for 0 candidates, [`McmcError::NonFinite`] for a
    /// non-finite given coordinate.
    pub fn check(&self) -> Result<(), McmcError> {
        match self {
            Self::Sir { candidates: 0 } | Self::Resample { candidates: 0 } => {
                Err(McmcError::InvalidConfig(
                    "the initialisation needs at least 1 candidate per chain, found 0".into(),
                ))
            }
            Self::Given(points) => check_finite("a given starting point", points.as_slice()),
            _ => Ok(()),
        }
    }

    /// Whether the strategy draws from a proposal.
    pub fn needs_proposal(&self) -> bool {
        !matches!(self, Self::Given(_))
    }

    /// Log-density evaluations the strategy makes for `chains` chains.
    pub fn evaluations(&self, chains: usize) -> u64 {
        match self {
            Self::Sir { candidates } | Self::Resample { candidates } => {
                (*candidates as u64).saturating_mul(chains as u64)
            }
            Self::Proposal | Self::Given(_) => chains as u64,
        }
    }

    /// The starting points (`dim × chains`) this strategy picks for `chains` chains on
    /// `target` with `proposal`, chain `c` drawing from `derive_rng(seed, c)`: the same
    /// points a [`SliceSampler`](crate::SliceSampler) run with this seed starts from.
    ///
    /// # Errors
    /// [`McmcError::InvalidConfig`] for 0 chains or a missing proposal,
    /// [`McmcError::DimensionMismatch`] for a proposal or given points of another
    /// dimension (or number of chains), [`McmcError::NoValidStart`] for a chain without a
    /// candidate of finite log density, and the proposal's own errors.
    pub fn initial_points<T: LogDensity + ?Sized>(
        &self,
        target: &T,
        proposal: Option<&dyn Prior>,
        chains: usize,
        seed: u64,
    ) -> Result<DMatrix<f64>, McmcError> {
        let mut rngs: Vec<SeededRng> = (0..chains).map(|c| derive_rng(seed, c as u64)).collect();
        let starts = self.initial_states(target, proposal, &mut rngs)?;
        let d = target.dim();
        let mut out = DMatrix::zeros(d, chains);
        for (c, s) in starts.iter().enumerate() {
            out.column_mut(c).copy_from_slice(&s.x);
        }
        Ok(out)
    }

    /// The starting states of the chains, chain `c` drawing from `rngs[c]`.
    pub(crate) fn initial_states<T: LogDensity + ?Sized>(
        &self,
        target: &T,
        proposal: Option<&dyn Prior>,
        rngs: &mut [SeededRng],
    ) -> Result<Vec<Start>, McmcError> {
        self.check()?;
        let chains = rngs.len();
        let d = target.dim();
        if chains == 0 {
            return Err(McmcError::InvalidConfig(
                "MCMC needs at least 1 chain, found 0".into(),
            ));
        }
        if d == 0 {
            return Err(McmcError::InvalidConfig(
                "the target must have at least 1 coordinate to sample, found dimension 0".into(),
            ));
        }
        let proposal = match (self.needs_proposal(), proposal) {
            (true, None) => {
                return Err(McmcError::InvalidConfig(format!(
                    "the initialisation strategy {} draws from a proposal, but none was \
                     given; pass the prior (or another proposal), or use InitStrategy::Given",
                    self.name()
                )));
            }
            (true, Some(p)) => {
                if p.dim() != d {
                    return Err(McmcError::DimensionMismatch {
                        what: "dimension of the initialisation's proposal (the target's dimension)",
                        expected: d,
                        found: p.dim(),
                    });
                }
                Some(p)
            }
            (false, _) => None,
        };
        match self {
            Self::Given(points) => {
                if points.nrows() != d {
                    return Err(McmcError::DimensionMismatch {
                        what: "rows of the given starting points (the target's dimension)",
                        expected: d,
                        found: points.nrows(),
                    });
                }
                if points.ncols() != chains {
                    return Err(McmcError::DimensionMismatch {
                        what: "columns of the given starting points (one per chain)",
                        expected: chains,
                        found: points.ncols(),
                    });
                }
                one_per_chain(target, points.clone(), "given in InitStrategy::Given", "")
            }
            Self::Proposal => {
                let p = proposal.expect("checked above");
                let mut points = DMatrix::zeros(d, chains);
                for (c, rng) in rngs.iter_mut().enumerate() {
                    let x = p.sample(rng);
                    if x.len() != d {
                        return Err(proposal_shape(d, x.len()));
                    }
                    points.set_column(c, &x);
                }
                one_per_chain(
                    target,
                    points,
                    "drawn from the proposal",
                    "; InitStrategy::Resample or Sir picks among many candidates",
                )
            }
            Self::Sir { candidates } | Self::Resample { candidates } => {
                let p = proposal.expect("checked above");
                let sir = matches!(self, Self::Sir { .. });
                let results: Vec<Result<Start, McmcError>> = rngs
                    .par_iter_mut()
                    .enumerate()
                    .map(|(c, rng)| resample_one(target, p, *candidates, sir, c, rng))
                    .collect();
                // The first failure in chain order, whatever the scheduling.
                results.into_iter().collect()
            }
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Self::Proposal => "Proposal",
            Self::Sir { .. } => "Sir",
            Self::Resample { .. } => "Resample",
            Self::Given(_) => "Given",
        }
    }
}

fn proposal_shape(d: usize, found: usize) -> McmcError {
    McmcError::DimensionMismatch {
        what: "length of a draw from the initialisation's proposal",
        expected: d,
        found,
    }
}

/// One start per column of `points`, evaluated in one batch call.
fn one_per_chain<T: LogDensity + ?Sized>(
    target: &T,
    points: DMatrix<f64>,
    source_of_candidates: &'static str,
    hint: &'static str,
) -> Result<Vec<Start>, McmcError> {
    let chains = points.ncols();
    let mut values = vec![0.0; chains];
    target.log_density_batch(&points, &mut values);
    let mut out = Vec::with_capacity(chains);
    for (c, v) in values.into_iter().enumerate() {
        let mut invalid = 0;
        let logp = sanitize(v, &mut invalid);
        if logp == f64::NEG_INFINITY {
            return Err(McmcError::NoValidStart {
                chain: c,
                candidates: 1,
                source_of_candidates,
                hint,
            });
        }
        out.push(Start {
            x: points.column(c).iter().copied().collect(),
            logp,
            evaluations: 1,
            invalid,
        });
    }
    Ok(out)
}

/// `Sir` (`sir` = true) or `Resample` for chain `chain`: `k` candidates from the proposal,
/// evaluated in one batch call, one picked with one uniform.
fn resample_one<T: LogDensity + ?Sized>(
    target: &T,
    proposal: &dyn Prior,
    k: usize,
    sir: bool,
    chain: usize,
    rng: &mut SeededRng,
) -> Result<Start, McmcError> {
    let d = target.dim();
    let candidates = proposal.sample_batch(k, rng);
    if candidates.shape() != (d, k) {
        return Err(proposal_shape(d, candidates.nrows()));
    }
    let mut u = vec![0.0; k];
    target.log_density_batch(&candidates, &mut u);
    let mut invalid = 0;
    for v in &mut u {
        *v = sanitize(*v, &mut invalid);
    }
    let log_w: Vec<f64> = if sir {
        let log_q = proposal.log_prob_batch(&candidates)?;
        u.iter().zip(log_q.iter()).map(|(a, b)| a - b).collect()
    } else {
        u.clone()
    };
    let pick = pick_index(&log_w, rng.random::<f64>()).ok_or(McmcError::NoValidStart {
        chain,
        candidates: k,
        source_of_candidates: "drawn from the proposal",
        hint: "",
    })?;
    Ok(Start {
        x: candidates.column(pick).iter().copied().collect(),
        logp: u[pick],
        evaluations: k as u64,
        invalid,
    })
}

/// The index picked by the inverse CDF of the weights `exp(log_w − max)` at `u ∈ [0, 1)`;
/// NaN and +∞ log weights count as weight 0. `None` when every weight is 0.
pub(crate) fn pick_index(log_w: &[f64], u: f64) -> Option<usize> {
    let valid = |v: f64| v.is_finite();
    let max = log_w
        .iter()
        .copied()
        .filter(|&v| valid(v))
        .fold(f64::NEG_INFINITY, f64::max);
    if max == f64::NEG_INFINITY {
        return None;
    }
    let weight = |v: f64| if valid(v) { (v - max).exp() } else { 0.0 };
    let total: f64 = log_w.iter().map(|&v| weight(v)).sum();
    let threshold = u * total;
    let mut acc = 0.0;
    let mut last = None;
    for (i, &v) in log_w.iter().enumerate() {
        let w = weight(v);
        if w > 0.0 {
            acc += w;
            last = Some(i);
            if acc > threshold {
                return Some(i);
            }
        }
    }
    // Rounding left the threshold at the total: the last index with positive weight.
    last
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_inverse_cdf_pick() {
        let lw = [
            0.0,
            f64::NEG_INFINITY,
            (3.0f64).ln(),
            f64::NAN,
            f64::INFINITY,
        ];
        // Weights 1, 0, 3, 0, 0 → cumulative 1, 1, 4 of 4.
        assert_eq!(pick_index(&lw, 0.0), Some(0));
        assert_eq!(pick_index(&lw, 0.2499), Some(0));
        assert_eq!(pick_index(&lw, 0.25), Some(2));
        assert_eq!(pick_index(&lw, 0.999_999), Some(2));
        assert_eq!(pick_index(&[f64::NEG_INFINITY, f64::NAN], 0.5), None);
        // Large log weights do not overflow.
        assert_eq!(pick_index(&[1000.0, 1000.0 + (3.0f64).ln()], 0.3), Some(1));
    }
}
