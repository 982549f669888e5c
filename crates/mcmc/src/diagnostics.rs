//! Convergence diagnostics on a set of chains: the rank-normalized (folded) split-R̂ and
//! the bulk and tail effective sample sizes of Vehtari, Gelman, Simpson, Carpenter and
//! Bürkner (2021), "Rank-normalization, folding, and localization: an improved R̂ for
//! assessing convergence of MCMC", with the multi-chain autocorrelations and Geyer's
//! initial monotone sequence as Stan computes them; and [`McmcDiagnostics`], reported by
//! every run of every sampler of this crate.
//!
//! Chains are given as `&[DMatrix<f64>]`, one `dim × draws` matrix per chain (one draw per
//! column, as everywhere in the workspace), all of the same shape.
//!
//! ```
//! use nalgebra::DMatrix;
//! use simfer_mcmc::diagnostics;
//!
//! // Two chains of 100 draws of one coordinate, the second shifted far away.
//! let a = DMatrix::from_fn(1, 100, |_, j| ((j * 37) % 100) as f64);
//! let b = a.map(|v| v + 1000.0);
//! let rhat = diagnostics::split_rhat(&[a.clone(), b])?;
//! assert!(rhat[0] > 1.5);
//! // The same chain twice: no disagreement.
//! assert!(diagnostics::split_rhat(&[a.clone(), a])?[0] < 1.05);
//! # Ok::<(), simfer_mcmc::McmcError>(())
//! ```

use nalgebra::DMatrix;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::McmcError;
use crate::error::check_finite;

/// Which sampler produced a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SamplerKind {
    /// [`Metropolis`](crate::Metropolis): adaptive random-walk Metropolis.
    Metropolis,
    /// [`SliceSampler`](crate::SliceSampler): the vectorized per-coordinate slice sampler.
    Slice,
}

/// What an MCMC run did and how well it converged; every sampler of this crate reports one
/// with every run.
///
/// R̂ and ESS are per coordinate of the kept draws (for a target whose chains run in other
/// coordinates than those returned, of the returned ones), computed on the draws kept per
/// chain ([`draws_per_chain`](Self::draws_per_chain) each).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct McmcDiagnostics {
    /// The sampler.
    pub sampler: SamplerKind,
    /// Names of the coordinates.
    pub parameter_names: Vec<String>,
    /// Number of chains.
    pub chains: usize,
    /// Tuning iterations or sweeps per chain before the warm-up, not counted in
    /// [`warmup`](Self::warmup): the slice sampler's width-tuning sweeps; 0 for Metropolis,
    /// which tunes during its warm-up.
    pub tuning: usize,
    /// Warm-up (burn-in) iterations or sweeps per chain, discarded.
    pub warmup: usize,
    /// Iterations or sweeps per chain after the warm-up.
    pub iterations: usize,
    /// Each chain kept every `thin`-th state after the warm-up.
    pub thin: usize,
    /// States kept per chain (the diagnostics are computed on these).
    pub draws_per_chain: usize,
    /// Metropolis: the acceptance rate of the sampling phase, over all chains. Slice: the
    /// fraction of the points drawn in the shrinkage stage that fell inside the slice
    /// (every coordinate update is accepted; this says how tight the brackets are).
    pub acceptance_rate: f64,
    /// Metropolis: the proposal scale `s` of the sampling phase.
    pub proposal_scale: Option<f64>,
    /// Per coordinate: the larger of the rank-normalized split-R̂ and its folded version.
    pub rhat: Vec<f64>,
    /// Per coordinate: the bulk effective sample size.
    pub ess_bulk: Vec<f64>,
    /// Per coordinate: the tail effective sample size (the smaller of those of the 5 % and
    /// 95 % quantile indicators).
    pub ess_tail: Vec<f64>,
    /// The ESS the run had to reach, where it had to reach one (Metropolis: always; slice:
    /// with a [`ConvergenceCheck`](crate::ConvergenceCheck)).
    pub required_ess: Option<f64>,
    /// Log-density evaluations, initialisation and warm-up included.
    pub evaluations: u64,
    /// Evaluations that returned NaN or +∞ (treated as −∞).
    pub invalid_evaluations: u64,
    /// Wall-clock seconds of the run (the one field that differs between two runs with the
    /// same seed).
    pub seconds: f64,
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
        min_nan(self.ess_bulk.iter().chain(&self.ess_tail))
    }

    /// The smallest bulk ESS over the coordinates (NaN if any is NaN).
    pub fn min_ess_bulk(&self) -> f64 {
        min_nan(self.ess_bulk.iter())
    }

    /// The smallest tail ESS over the coordinates (NaN if any is NaN).
    pub fn min_ess_tail(&self) -> f64 {
        min_nan(self.ess_tail.iter())
    }

    /// The failed checks (R̂ above `max_rhat`, an ESS below `required_ess`), described, or
    /// `None` when all passed.
    pub fn failures(&self, max_rhat: f64, required_ess: f64) -> Option<String> {
        let mut failed = Vec::new();
        let name = |i: usize| {
            self.parameter_names
                .get(i)
                .cloned()
                .unwrap_or_else(|| format!("coordinate {i}"))
        };
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
                name(worst_r_at)
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
        if worst_e.is_nan() || worst_e < required_ess {
            let kind = if worst_e_at < d { "bulk" } else { "tail" };
            failed.push(format!(
                "{kind} ESS of {} is {worst_e:.1} (at least {required_ess} required)",
                name(worst_e_at % d.max(1))
            ));
        }
        (!failed.is_empty()).then(|| failed.join("; "))
    }
}

fn min_nan<'a>(values: impl Iterator<Item = &'a f64>) -> f64 {
    values.fold(f64::INFINITY, |a, &b| if b.is_nan() { b } else { a.min(b) })
}

/// R̂ and ESS of every coordinate of a set of chains.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChainDiagnostics {
    /// Per coordinate: the larger of the rank-normalized split-R̂ and its folded version.
    pub rhat: Vec<f64>,
    /// Per coordinate: the bulk effective sample size.
    pub ess_bulk: Vec<f64>,
    /// Per coordinate: the tail effective sample size.
    pub ess_tail: Vec<f64>,
}

/// Checks the chains' shapes and values; returns `(dim, draws)`.
fn check_chains(chains: &[DMatrix<f64>]) -> Result<(usize, usize), McmcError> {
    let Some(first) = chains.first() else {
        return Err(McmcError::InvalidConfig(
            "convergence diagnostics need at least one chain, found none".into(),
        ));
    };
    let (d, l) = first.shape();
    for c in chains {
        if c.nrows() != d {
            return Err(McmcError::DimensionMismatch {
                what: "rows of a chain (the dimension, as in the first chain)",
                expected: d,
                found: c.nrows(),
            });
        }
        if c.ncols() != l {
            return Err(McmcError::DimensionMismatch {
                what: "draws of a chain (columns, as in the first chain)",
                expected: l,
                found: c.ncols(),
            });
        }
        check_finite("a chain's draws", c.as_slice())?;
    }
    Ok((d, l))
}

/// Coordinate `p` of every chain, each split into halves.
fn split_coordinate(chains: &[DMatrix<f64>], p: usize) -> Vec<Vec<f64>> {
    let series: Vec<Vec<f64>> = chains
        .iter()
        .map(|c| c.row(p).iter().copied().collect())
        .collect();
    split_halves(&series)
}

/// R̂ and the bulk and tail ESS of every coordinate (see the module docs), computed in
/// parallel over coordinates (the values do not depend on the number of threads).
///
/// Each chain is split into its first and second half (the middle draw of an odd length
/// is dropped), so that R̂ also sees drift within a chain; one chain is enough. A
/// coordinate with fewer than 8 draws in all, or with no variance, gets NaN.
///
/// # Errors
/// [`McmcError::InvalidConfig`] for no chains, [`McmcError::DimensionMismatch`] for chains
/// of different shapes, [`McmcError::NonFinite`] for a non-finite draw.
pub fn chain_diagnostics(chains: &[DMatrix<f64>]) -> Result<ChainDiagnostics, McmcError> {
    let (d, _) = check_chains(chains)?;
    let per: Vec<(f64, f64, f64)> = (0..d)
        .into_par_iter()
        .map(|p| coordinate_diagnostics(&split_coordinate(chains, p)))
        .collect();
    Ok(ChainDiagnostics {
        rhat: per.iter().map(|r| r.0).collect(),
        ess_bulk: per.iter().map(|r| r.1).collect(),
        ess_tail: per.iter().map(|r| r.2).collect(),
    })
}

/// Per coordinate, the larger of the split-R̂ of the rank-normalized draws and of the
/// rank-normalized distances to the median (the folded R̂, which sees chains that differ
/// in scale only). Near 1 for chains that agree; 1.01 is the usual threshold.
///
/// # Errors
/// As [`chain_diagnostics`].
pub fn split_rhat(chains: &[DMatrix<f64>]) -> Result<Vec<f64>, McmcError> {
    Ok(chain_diagnostics(chains)?.rhat)
}

/// Per coordinate, the bulk effective sample size: the multi-chain ESS of the
/// rank-normalized split chains.
///
/// # Errors
/// As [`chain_diagnostics`].
pub fn ess_bulk(chains: &[DMatrix<f64>]) -> Result<Vec<f64>, McmcError> {
    Ok(chain_diagnostics(chains)?.ess_bulk)
}

/// Per coordinate, the tail effective sample size: the smaller of the multi-chain ESS of
/// the indicators `x ≤ q₀.₀₅` and `x ≥ q₀.₉₅` on the split chains.
///
/// # Errors
/// As [`chain_diagnostics`].
pub fn ess_tail(chains: &[DMatrix<f64>]) -> Result<Vec<f64>, McmcError> {
    Ok(chain_diagnostics(chains)?.ess_tail)
}

/// Per coordinate, the multi-chain effective sample size of the draws themselves (no rank
/// normalization; the ESS of the mean), on the split chains: what the standard error of a
/// posterior mean is computed with, `sd / √ESS`.
///
/// # Errors
/// As [`chain_diagnostics`].
pub fn ess_mean(chains: &[DMatrix<f64>]) -> Result<Vec<f64>, McmcError> {
    let (d, _) = check_chains(chains)?;
    Ok((0..d)
        .into_par_iter()
        .map(|p| ess(&split_coordinate(chains, p)))
        .collect())
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
    let (r_bulk, r_folded) = (split_rhat_of_series(&z), split_rhat_of_series(&folded));
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
pub(crate) fn split_rhat_of_series(series: &[Vec<f64>]) -> f64 {
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
pub fn normal_quantile(p: f64) -> f64 {
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
    use rand_distr::{Distribution, StandardNormal};
    use simfer_distributions::rng_from_seed;
    use std::f64::consts::PI;

    /// The complementary error function (Taylor series of erf below 2, a continued
    /// fraction beyond), accurate to ~1e-15: an independent check of the quantile.
    fn erfc(x: f64) -> f64 {
        if x < 0.0 {
            return 2.0 - erfc(-x);
        }
        if x < 2.0 {
            let x2 = x * x;
            let (mut term, mut sum) = (x, x);
            for n in 1..200 {
                term *= -x2 / n as f64;
                let add = term / (2 * n + 1) as f64;
                sum += add;
                if add.abs() < 1e-17 * sum.abs() {
                    break;
                }
            }
            return 1.0 - 2.0 / PI.sqrt() * sum;
        }
        let mut f = x;
        for k in (1..=200).rev() {
            f = x + 0.5 * k as f64 / f;
        }
        (-x * x).exp() / (PI.sqrt() * f)
    }

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
        assert!(split_rhat_of_series(&split_halves(&same)) < 1.01);
        // One chain off by half a standard deviation.
        let shifted = ar1(m, l, 0.5, &[0.0, 0.0, 0.0, 0.5], 1);
        assert!(split_rhat_of_series(&split_halves(&shifted)) > 1.02);
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
        assert!(split_rhat_of_series(&drifting) < 1.01);
        assert!(split_rhat_of_series(&split_halves(&drifting)) > 1.05);
        // A different scale in one chain: only the folded R̂ sees it.
        let mut scaled = same.clone();
        for v in &mut scaled[3] {
            *v *= 2.0;
        }
        let (r, _, _) = coordinate_diagnostics(&split_halves(&scaled));
        assert!(r > 1.02, "R̂ {r}");
        // Constant chains have no variance to compare.
        assert!(split_rhat_of_series(&[vec![1.0; 10], vec![1.0; 10]]).is_nan());
    }

    #[test]
    fn rank_normalization_averages_ties() {
        let z = rank_normalize(&[3.0, 1.0, 2.0, 2.0]);
        assert!(z[1] < z[2] && z[2] == z[3] && z[3] < z[0]);
        assert!((z[2] - normal_quantile((2.5 - 0.375) / 4.25)).abs() < 1e-15);
        assert!((z[0] + z[1]).abs() < 1e-12);
    }

    /// The chains of `ar1` as `1 × l` matrices.
    fn as_matrices(series: &[Vec<f64>]) -> Vec<DMatrix<f64>> {
        series
            .iter()
            .map(|s| DMatrix::from_row_slice(1, s.len(), s))
            .collect()
    }

    #[test]
    fn the_public_functions_agree_with_the_per_coordinate_ones() {
        let a = ar1(4, 1000, 0.5, &[0.0; 4], 5);
        let b = ar1(4, 1000, 0.8, &[0.0, 0.0, 0.0, 1.0], 6);
        let chains: Vec<DMatrix<f64>> = (0..4)
            .map(|k| {
                let mut m = DMatrix::zeros(2, 1000);
                m.row_mut(0)
                    .iter_mut()
                    .zip(&a[k])
                    .for_each(|(o, v)| *o = *v);
                m.row_mut(1)
                    .iter_mut()
                    .zip(&b[k])
                    .for_each(|(o, v)| *o = *v);
                m
            })
            .collect();
        let all = chain_diagnostics(&chains).unwrap();
        for (p, series) in [a, b].iter().enumerate() {
            let (r, bulk, tail) = coordinate_diagnostics(&split_halves(series));
            assert_eq!(
                (all.rhat[p], all.ess_bulk[p], all.ess_tail[p]),
                (r, bulk, tail)
            );
            assert_eq!(ess_mean(&chains).unwrap()[p], ess(&split_halves(series)));
            let single = chain_diagnostics(&as_matrices(series)).unwrap();
            assert_eq!(single.rhat[0], r);
        }
        assert!(all.rhat[0] < 1.01 && all.rhat[1] > 1.05, "{all:?}");
        assert_eq!(split_rhat(&chains).unwrap(), all.rhat);
        assert_eq!(ess_bulk(&chains).unwrap(), all.ess_bulk);
        assert_eq!(ess_tail(&chains).unwrap(), all.ess_tail);
    }

    #[test]
    fn bad_chains_are_errors() {
        assert!(matches!(
            chain_diagnostics(&[]),
            Err(McmcError::InvalidConfig(_))
        ));
        let a = DMatrix::<f64>::zeros(2, 10);
        let fewer_rows = DMatrix::<f64>::zeros(1, 10);
        let shorter = DMatrix::<f64>::zeros(2, 9);
        assert!(matches!(
            chain_diagnostics(&[a.clone(), fewer_rows]),
            Err(McmcError::DimensionMismatch {
                expected: 2,
                found: 1,
                ..
            })
        ));
        assert!(matches!(
            chain_diagnostics(&[a.clone(), shorter]),
            Err(McmcError::DimensionMismatch {
                expected: 10,
                found: 9,
                ..
            })
        ));
        let mut nan = a.clone();
        nan[(1, 3)] = f64::NAN;
        assert!(matches!(
            chain_diagnostics(&[a, nan]),
            Err(McmcError::NonFinite { index: 7, .. })
        ));
        // Too few draws or no variance: NaN, not an error.
        let short = DMatrix::from_fn(1, 3, |_, j| j as f64);
        assert!(split_rhat(&[short.clone(), short]).unwrap()[0].is_nan());
        let flat = DMatrix::from_element(1, 100, 2.0);
        assert!(ess_bulk(&[flat.clone(), flat]).unwrap()[0].is_nan());
    }
}
