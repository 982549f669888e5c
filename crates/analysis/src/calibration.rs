//! Calibration diagnostics: simulation-based calibration (SBC), expected coverage and TARP.
//!
//! All three take the test pairs as matrices (`thetas`: `D × N`, `xs`: `Dx × N`, pair `i` in
//! column `i`, typically θᵢ drawn from the prior and xᵢ simulated from θᵢ) and the posterior
//! as a closure `FnMut(x, n, rng) -> Result<DMatrix<f64>, E>` returning `n` samples
//! (`D × n`) of p(θ | x). Any error type that converts into a boxed error works (anyhow's
//! included). The closure is called once per pair, in order, with the given RNG, so a seeded
//! RNG reproduces the result.
//!
//! Ranks are turned into normalized ranks `u = (r + ½)/(L + 1)` in `(0, 1)` with `L`
//! posterior samples per pair: `r` is uniform on `{0, …, L}` for a calibrated posterior, and
//! `u` is then uniform up to a discreteness of `1/(L + 1)`. (The reference compares `r/L`
//! with `U(0, 1)`; for `L = 1000` the two agree to 0.1 %.)

use nalgebra::{DMatrix, DVector};
use rand::{Rng, RngCore};
use serde::{Deserialize, Serialize};

use crate::error::{AnalysisError, Result, check_same_dim, check_samples, invalid};
use crate::stats::{KsTest, ks_uniform};

/// Boxed error of a user closure.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The result of simulation-based calibration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sbc {
    /// `ranks[d][i]`: number of posterior samples for xᵢ whose coordinate `d` is below
    /// θᵢ's, in `0..=num_posterior_samples`.
    pub ranks: Vec<Vec<usize>>,
    /// Posterior samples per pair, `L`.
    pub num_posterior_samples: usize,
    /// KS test of the normalized ranks against `U(0, 1)`, per dimension.
    pub ks: Vec<KsTest>,
    /// The first posterior sample for every xᵢ (`D × N`, "data-averaged posterior"): for a
    /// calibrated posterior it is distributed as the prior; compare with [`c2st`](crate::c2st).
    pub dap_samples: DMatrix<f64>,
}

impl Sbc {
    /// Number of (θ, x) pairs, `N`.
    pub fn num_pairs(&self) -> usize {
        self.ranks.first().map_or(0, Vec::len)
    }

    /// Number of dimensions.
    pub fn dim(&self) -> usize {
        self.ranks.len()
    }

    /// Normalized ranks `(r + ½)/(L + 1)` of dimension `d`.
    pub fn normalized_ranks(&self, d: usize) -> Vec<f64> {
        normalize(&self.ranks[d], self.num_posterior_samples)
    }

    /// Rank histogram of every dimension with `bins` equal bins over `0..=L`.
    ///
    /// # Errors
    /// `bins` is 0 or larger than `L + 1`.
    pub fn rank_histograms(&self, bins: usize) -> Result<Vec<Vec<u64>>> {
        let l = self.num_posterior_samples;
        if bins == 0 || bins > l + 1 {
            return Err(invalid(
                "number of rank bins",
                format!("in 1..={}", l + 1),
                bins,
            ));
        }
        Ok(self
            .ranks
            .iter()
            .map(|r| {
                let mut h = vec![0u64; bins];
                for &v in r {
                    // Equal bins over the L + 1 possible ranks.
                    h[(v * bins / (l + 1)).min(bins - 1)] += 1;
                }
                h
            })
            .collect())
    }

    /// The smallest KS p-value over the dimensions.
    pub fn min_p_value(&self) -> f64 {
        self.ks.iter().map(|k| k.p_value).fold(1.0, f64::min)
    }

    /// Empirical coverage of central marginal credible intervals, per dimension: the
    /// fraction of pairs whose θ lies in the central interval of level α of its marginal
    /// posterior (`|u − ½| < α/2`), for each α in `levels`.
    ///
    /// # Errors
    /// Levels outside `[0, 1]`.
    pub fn marginal_coverage(&self, levels: &[f64]) -> Result<Vec<Coverage>> {
        check_levels(levels)?;
        Ok((0..self.dim())
            .map(|d| {
                let u = self.normalized_ranks(d);
                let n = u.len();
                Coverage {
                    name: format!("{} (central intervals)", crate::pairplot::default_label(d)),
                    levels: levels.to_vec(),
                    empirical: levels
                        .iter()
                        .map(|&a| {
                            u.iter().filter(|&&v| (v - 0.5).abs() < 0.5 * a).count() as f64
                                / n as f64
                        })
                        .collect(),
                    n,
                }
            })
            .collect())
    }
}

/// Builds an [`Sbc`] from ranks computed elsewhere (`ranks[d][i]` in `0..=L`).
///
/// # Errors
/// No dimensions or pairs, dimensions with different numbers of pairs, ranks above `L`,
/// `dap_samples` not `D × N`.
pub fn sbc_from_ranks(
    ranks: Vec<Vec<usize>>,
    num_posterior_samples: usize,
    dap_samples: DMatrix<f64>,
) -> Result<Sbc> {
    let Some(first) = ranks.first() else {
        return Err(invalid("ranks", "at least one dimension", "none"));
    };
    let n = first.len();
    if n == 0 {
        return Err(AnalysisError::TooFewSamples {
            what: "SBC ranks".into(),
            expected: 1,
            found: 0,
        });
    }
    for (d, r) in ranks.iter().enumerate() {
        check_same_dim(&format!("ranks of dimension {d} (pairs)"), n, r.len())?;
        if let Some(&bad) = r.iter().find(|&&v| v > num_posterior_samples) {
            return Err(invalid(
                format!("rank in dimension {d}"),
                format!("≤ num_posterior_samples = {num_posterior_samples}"),
                bad,
            ));
        }
    }
    check_same_dim("dap_samples (rows)", ranks.len(), dap_samples.nrows())?;
    check_same_dim("dap_samples (columns)", n, dap_samples.ncols())?;
    let ks = ranks
        .iter()
        .map(|r| ks_uniform(&normalize(r, num_posterior_samples)))
        .collect::<Result<Vec<_>>>()?;
    Ok(Sbc {
        ranks,
        num_posterior_samples,
        ks,
        dap_samples,
    })
}

/// Expected coverage: for each credible level α, the fraction of pairs whose θ lies in
/// the α-credible region.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Coverage {
    /// What the curve is (legend entry).
    pub name: String,
    /// Credible levels α.
    pub levels: Vec<f64>,
    /// Empirical coverage at each level.
    pub empirical: Vec<f64>,
    /// Number of pairs.
    pub n: usize,
}

impl Coverage {
    /// Half-width of the central 99 % binomial band of a calibrated posterior's coverage at
    /// level α (normal approximation): `2.576·√(α(1 − α)/n)`.
    pub fn band_halfwidth(&self, alpha: f64) -> f64 {
        2.576 * (alpha * (1.0 - alpha) / self.n.max(1) as f64).sqrt()
    }

    /// The largest `|empirical − α|` over the levels.
    pub fn max_deviation(&self) -> f64 {
        self.levels
            .iter()
            .zip(&self.empirical)
            .map(|(a, e)| (a - e).abs())
            .fold(0.0, f64::max)
    }
}

/// The result of TARP (tests of accuracy with random points, Lemos et al. 2023).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tarp {
    /// Credible levels α, `0 = α₀ < … < α_B = 1`.
    pub alpha: Vec<f64>,
    /// Expected coverage probability at each α: the fraction of pairs with coverage value
    /// `fᵢ < α` (`1` at `α = 1`).
    pub ecp: Vec<f64>,
    /// Area to curve: `Σ_{α ≥ ½} (ecp − α)·Δα`; 0 when calibrated, > 0 for an
    /// underconfident (too wide) and < 0 for an overconfident (too narrow) posterior.
    pub atc: f64,
    /// KS test of the coverage values `fᵢ` against `U(0, 1)`.
    pub ks: KsTest,
    /// Coverage value per pair: the fraction of posterior samples closer to the pair's
    /// reference point than θᵢ is.
    pub coverage_values: Vec<f64>,
}

/// Options of [`run_tarp`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TarpOptions {
    /// Number of α bins; `None` → `N / 10` (at least 1).
    pub num_bins: Option<usize>,
    /// Rescale θ and the posterior samples with θ's per-dimension min and max (the
    /// reference's default).
    pub normalize: bool,
    /// Reference points (`D × N`, in the normalized space when `normalize`); `None` → drawn
    /// uniformly in the bounding box of the (normalized) θ's.
    pub references: Option<DMatrix<f64>>,
}

impl Default for TarpOptions {
    fn default() -> Self {
        Self {
            num_bins: None,
            normalize: true,
            references: None,
        }
    }
}

fn normalize(r: &[usize], l: usize) -> Vec<f64> {
    let denom = (l + 1) as f64;
    r.iter().map(|&v| (v as f64 + 0.5) / denom).collect()
}

fn check_levels(levels: &[f64]) -> Result<()> {
    for &a in levels {
        crate::error::check_probability("credible level", a, false)?;
    }
    Ok(())
}

fn check_pairs(
    thetas: &DMatrix<f64>,
    xs: &DMatrix<f64>,
    num_posterior_samples: usize,
) -> Result<()> {
    check_samples("thetas", thetas, 1)?;
    check_samples("xs", xs, 1)?;
    check_same_dim("xs (columns, one per θ)", thetas.ncols(), xs.ncols())?;
    if num_posterior_samples == 0 {
        return Err(invalid("num_posterior_samples", "at least 1", 0));
    }
    Ok(())
}

/// Calls the posterior for pair `i` and checks the shape and finiteness of the samples.
fn draw<E, P>(
    posterior: &mut P,
    xs: &DMatrix<f64>,
    i: usize,
    dim: usize,
    n: usize,
    rng: &mut dyn RngCore,
) -> Result<DMatrix<f64>>
where
    E: Into<BoxError>,
    P: FnMut(&[f64], usize, &mut dyn RngCore) -> std::result::Result<DMatrix<f64>, E>,
{
    let x: Vec<f64> = xs.column(i).iter().copied().collect();
    let s = posterior(&x, n, rng).map_err(|e| AnalysisError::Posterior {
        index: i,
        source: e.into(),
    })?;
    let what = format!("posterior samples for simulation {i}");
    check_same_dim(&format!("{what} (rows)"), dim, s.nrows())?;
    check_same_dim(&format!("{what} (columns)"), n, s.ncols())?;
    crate::error::check_finite_matrix(&what, &s)?;
    Ok(s)
}

/// Simulation-based calibration (Talts et al. 2018) on the marginals: for every pair,
/// draws `L = num_posterior_samples` samples from the posterior at xᵢ and counts, per
/// dimension, the samples below θᵢ. For a calibrated posterior the ranks are uniform.
///
/// # Errors
/// Empty or non-finite inputs, `thetas` and `xs` with different numbers of columns,
/// `L = 0`, a failing closure, samples of the wrong shape or non-finite.
///
/// ```
/// use nalgebra::DMatrix;
/// use rand::{Rng, SeedableRng};
/// // θ ~ U(0, 1). A "posterior" that ignores x and returns prior samples is calibrated
/// // (though useless): SBC checks calibration, not sharpness.
/// let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(1);
/// let thetas = DMatrix::from_fn(1, 200, |_, _| rng.random::<f64>());
/// let prior = |_x: &[f64], n: usize, rng: &mut dyn rand::RngCore| {
///     Ok::<_, std::convert::Infallible>(DMatrix::from_fn(1, n, |_, _| rng.random::<f64>()))
/// };
/// let sbc = simfer_analysis::run_sbc(&thetas, &thetas, 100, prior, &mut rng).unwrap();
/// assert!(sbc.ks[0].p_value > 0.01);
/// ```
pub fn run_sbc<E, P>(
    thetas: &DMatrix<f64>,
    xs: &DMatrix<f64>,
    num_posterior_samples: usize,
    mut posterior: P,
    rng: &mut dyn RngCore,
) -> Result<Sbc>
where
    E: Into<BoxError>,
    P: FnMut(&[f64], usize, &mut dyn RngCore) -> std::result::Result<DMatrix<f64>, E>,
{
    check_pairs(thetas, xs, num_posterior_samples)?;
    let (dim, n) = thetas.shape();
    let mut ranks = vec![vec![0usize; n]; dim];
    let mut dap = DMatrix::zeros(dim, n);
    for i in 0..n {
        let s = draw(&mut posterior, xs, i, dim, num_posterior_samples, rng)?;
        for d in 0..dim {
            let t = thetas[(d, i)];
            ranks[d][i] = s.row(d).iter().filter(|&&v| v < t).count();
        }
        dap.set_column(i, &s.column(0));
    }
    sbc_from_ranks(ranks, num_posterior_samples, dap)
}

/// Expected coverage of the highest-posterior-density regions: for every pair, draws `L`
/// posterior samples at xᵢ, evaluates `log_prob(samples, xᵢ)` and `log_prob(θᵢ, xᵢ)`, and
/// counts the samples less probable than θᵢ (rank `r`). θᵢ lies in the α-HPD region when
/// the normalized rank `u > 1 − α`; the curve is the fraction of pairs where it does, for
/// each α in `levels` (e.g. 0, 0.05, …, 1). A calibrated posterior gives the diagonal.
///
/// `log_prob` gets a `D × m` matrix of θ's and one x and returns `m` log-densities.
///
/// # Errors
/// As [`run_sbc`], levels outside `[0, 1]`, log-probs of the wrong length or NaN.
pub fn expected_coverage<E, P, F, G>(
    thetas: &DMatrix<f64>,
    xs: &DMatrix<f64>,
    num_posterior_samples: usize,
    levels: &[f64],
    mut posterior: P,
    mut log_prob: G,
    rng: &mut dyn RngCore,
) -> Result<Coverage>
where
    E: Into<BoxError>,
    F: Into<BoxError>,
    P: FnMut(&[f64], usize, &mut dyn RngCore) -> std::result::Result<DMatrix<f64>, E>,
    G: FnMut(&DMatrix<f64>, &[f64]) -> std::result::Result<DVector<f64>, F>,
{
    check_pairs(thetas, xs, num_posterior_samples)?;
    check_levels(levels)?;
    let (dim, n) = thetas.shape();
    let l = num_posterior_samples;
    let mut u = Vec::with_capacity(n);
    for i in 0..n {
        let mut s = draw(&mut posterior, xs, i, dim, l, rng)?;
        // Evaluate samples and θᵢ in one call: θᵢ is the last column.
        s = s.insert_column(l, 0.0);
        s.set_column(l, &thetas.column(i));
        let x: Vec<f64> = xs.column(i).iter().copied().collect();
        let lp = log_prob(&s, &x).map_err(|e| AnalysisError::Posterior {
            index: i,
            source: e.into(),
        })?;
        check_same_dim(
            &format!("log-probs for simulation {i} (length)"),
            l + 1,
            lp.len(),
        )?;
        if let Some(k) = lp.iter().position(|v| v.is_nan()) {
            return Err(AnalysisError::NonFinite {
                what: format!("log-probs for simulation {i}"),
                dim: 0,
                sample: k,
                value: f64::NAN,
            });
        }
        let lt = lp[l];
        let r = lp.iter().take(l).filter(|&&v| v < lt).count();
        u.push((r as f64 + 0.5) / (l + 1) as f64);
    }
    Ok(Coverage {
        name: "HPD regions".into(),
        levels: levels.to_vec(),
        empirical: levels
            .iter()
            .map(|&a| u.iter().filter(|&&v| v > 1.0 - a).count() as f64 / n as f64)
            .collect(),
        n,
    })
}

/// TARP (Lemos et al. 2023): for every pair, draws `L` posterior samples at xᵢ and computes
/// the coverage value `fᵢ` = fraction of samples closer (Euclidean distance) to a reference
/// point `rᵢ` than θᵢ is; the expected coverage probability at α is the fraction of pairs
/// with `fᵢ < α`. Calibrated posteriors give the diagonal; `atc` and the KS test of the `fᵢ`
/// against `U(0, 1)` summarize the deviation. (The reference's `check_tarp` instead runs a
/// two-sample KS test between the `ecp` and `alpha` arrays.)
///
/// Reference points not given are drawn with `rng` before any posterior call.
///
/// # Errors
/// As [`run_sbc`], bad references (shape, non-finite), `num_bins = 0`.
pub fn run_tarp<E, P>(
    thetas: &DMatrix<f64>,
    xs: &DMatrix<f64>,
    num_posterior_samples: usize,
    options: &TarpOptions,
    mut posterior: P,
    rng: &mut dyn RngCore,
) -> Result<Tarp>
where
    E: Into<BoxError>,
    P: FnMut(&[f64], usize, &mut dyn RngCore) -> std::result::Result<DMatrix<f64>, E>,
{
    check_pairs(thetas, xs, num_posterior_samples)?;
    let (dim, n) = thetas.shape();
    let bins = options.num_bins.unwrap_or((n / 10).max(1));
    if bins == 0 {
        return Err(invalid("num_bins", "at least 1", 0));
    }
    // Per-dimension affine map θ ↦ (θ − lo)/(hi − lo + 1e-10), as the reference.
    let (lo, scale): (Vec<f64>, Vec<f64>) = (0..dim)
        .map(|d| {
            if options.normalize {
                let r = thetas.row(d);
                let (a, b) = (r.min(), r.max());
                (a, 1.0 / (b - a + 1e-10))
            } else {
                (0.0, 1.0)
            }
        })
        .unzip();
    let map = |d: usize, v: f64| (v - lo[d]) * scale[d];
    let references = match &options.references {
        Some(r) => {
            check_same_dim("TARP references (rows)", dim, r.nrows())?;
            check_same_dim("TARP references (columns)", n, r.ncols())?;
            crate::error::check_finite_matrix("TARP references", r)?;
            r.clone()
        }
        None => {
            let (blo, bhi): (Vec<f64>, Vec<f64>) = (0..dim)
                .map(|d| {
                    let m: Vec<f64> = thetas.row(d).iter().map(|&v| map(d, v)).collect();
                    (
                        m.iter().copied().fold(f64::INFINITY, f64::min),
                        m.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                    )
                })
                .unzip();
            let mut r = DMatrix::zeros(dim, n);
            for i in 0..n {
                for d in 0..dim {
                    r[(d, i)] = blo[d] + (bhi[d] - blo[d]) * rng.random::<f64>();
                }
            }
            r
        }
    };
    let mut f = Vec::with_capacity(n);
    for i in 0..n {
        let s = draw(&mut posterior, xs, i, dim, num_posterior_samples, rng)?;
        let dist2 = |col: &mut dyn Iterator<Item = f64>| -> f64 {
            col.enumerate()
                .map(|(d, v)| {
                    let t = map(d, v) - references[(d, i)];
                    t * t
                })
                .sum()
        };
        let dt = dist2(&mut thetas.column(i).iter().copied());
        let closer = s
            .column_iter()
            .filter(|c| dist2(&mut c.iter().copied()) < dt)
            .count();
        f.push(closer as f64 / num_posterior_samples as f64);
    }
    let alpha: Vec<f64> = crate::hist::linspace(0.0, 1.0, bins + 1);
    let ecp: Vec<f64> = alpha
        .iter()
        .enumerate()
        .map(|(k, &a)| {
            if k == bins {
                1.0
            } else {
                f.iter().filter(|&&v| v < a).count() as f64 / n as f64
            }
        })
        .collect();
    let da = 1.0 / bins as f64;
    let atc = alpha
        .iter()
        .zip(&ecp)
        .skip(alpha.len() / 2)
        .map(|(a, e)| (e - a) * da)
        .sum();
    let ks = ks_uniform(&f)?;
    Ok(Tarp {
        alpha,
        ecp,
        atc,
        ks,
        coverage_values: f,
    })
}
