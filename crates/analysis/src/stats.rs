//! Summary statistics of marginals, plot limits and the one-sample Kolmogorov–Smirnov test.

use nalgebra::DMatrix;
use serde::{Deserialize, Serialize};

use crate::error::{
    Result, check_limits, check_probability, check_same_dim, check_samples, check_values,
};

/// Quantile levels reported by [`summarize`] unless others are asked for.
pub const DEFAULT_QUANTILES: [f64; 5] = [0.025, 0.25, 0.5, 0.75, 0.975];

/// Summary statistics of one marginal.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MarginalSummary {
    /// Number of samples.
    pub n: usize,
    /// Sample mean.
    pub mean: f64,
    /// Unbiased standard deviation (divisor `n − 1`; 0 when `n = 1`).
    pub std: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// `(level, value)` pairs, linear interpolation between order statistics
    /// (numpy's default `quantile` method).
    pub quantiles: Vec<(f64, f64)>,
}

/// Mean, standard deviation, range and quantiles of every row of a `D × n` sample matrix.
///
/// # Errors
/// No samples, no dimensions, non-finite values, quantile levels outside `[0, 1]`.
///
/// ```
/// use nalgebra::DMatrix;
/// let s = DMatrix::from_row_slice(1, 5, &[1.0, 2.0, 3.0, 4.0, 5.0]);
/// let sum = simfer_analysis::summarize(&s, &[0.5]).unwrap();
/// assert_eq!(sum[0].mean, 3.0);
/// assert_eq!(sum[0].quantiles[0], (0.5, 3.0));
/// ```
pub fn summarize(samples: &DMatrix<f64>, quantiles: &[f64]) -> Result<Vec<MarginalSummary>> {
    check_samples("samples", samples, 1)?;
    for &q in quantiles {
        check_probability("quantile level", q, false)?;
    }
    let n = samples.ncols();
    Ok((0..samples.nrows())
        .map(|d| {
            let mut v: Vec<f64> = samples.row(d).iter().copied().collect();
            let (mean, std) = mean_std(&v);
            v.sort_by(f64::total_cmp);
            MarginalSummary {
                n,
                mean,
                std,
                min: v[0],
                max: v[n - 1],
                quantiles: quantiles
                    .iter()
                    .map(|&q| (q, quantile_sorted(&v, q)))
                    .collect(),
            }
        })
        .collect())
}

/// Mean and unbiased standard deviation (0 for a single value); two-pass for accuracy.
pub(crate) fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    if v.len() < 2 {
        return (mean, 0.0);
    }
    let ss: f64 = v.iter().map(|x| (x - mean) * (x - mean)).sum();
    (mean, (ss / (n - 1.0)).sqrt())
}

/// The `q`-quantile of sorted values, linear interpolation between order statistics
/// (numpy's default). `sorted` must be non-empty and sorted ascending.
pub(crate) fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    let frac = pos - lo as f64;
    sorted[lo] + frac * (sorted[hi] - sorted[lo])
}

/// The `q`-quantile of `values` (linear interpolation, numpy's default).
///
/// # Errors
/// Empty or non-finite values, `q` outside `[0, 1]`.
pub fn quantile(values: &[f64], q: f64) -> Result<f64> {
    check_values("values", values, 1)?;
    check_probability("quantile level", q, false)?;
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    Ok(quantile_sorted(&v, q))
}

/// Default plot limits per dimension: `[min − 0.1·range, max + 0.1·range]` over all sample
/// sets and points (the reference's pairplot default). A dimension without spread gets
/// `[v − 0.5, v + 0.5]`.
///
/// # Errors
/// No sample set, sets or points of different dimensions, empty sets, non-finite values.
pub fn default_limits(sets: &[&DMatrix<f64>], points: &[&[f64]]) -> Result<Vec<[f64; 2]>> {
    let Some(first) = sets.first() else {
        return Err(crate::error::AnalysisError::TooFewSamples {
            what: "sample sets".into(),
            expected: 1,
            found: 0,
        });
    };
    let dim = first.nrows();
    for (k, s) in sets.iter().enumerate() {
        check_samples(&format!("sample set {k}"), s, 1)?;
        check_same_dim(&format!("sample set {k} (rows)"), dim, s.nrows())?;
    }
    for (k, p) in points.iter().enumerate() {
        check_same_dim(&format!("point {k} (length)"), dim, p.len())?;
        check_values(&format!("point {k}"), p, 1)?;
    }
    Ok((0..dim)
        .map(|d| {
            let mut lo = f64::INFINITY;
            let mut hi = f64::NEG_INFINITY;
            for s in sets {
                for &v in s.row(d).iter() {
                    lo = lo.min(v);
                    hi = hi.max(v);
                }
            }
            for p in points {
                lo = lo.min(p[d]);
                hi = hi.max(p[d]);
            }
            let range = hi - lo;
            if range > 0.0 {
                [lo - 0.1 * range, hi + 0.1 * range]
            } else {
                [lo - 0.5, hi + 0.5]
            }
        })
        .collect())
}

/// Resolves user limits: `None` → [`default_limits`]; one pair → broadcast to all `dim`
/// dimensions; otherwise one pair per dimension.
pub(crate) fn resolve_limits(
    given: Option<&[[f64; 2]]>,
    dim: usize,
    sets: &[&DMatrix<f64>],
    points: &[&[f64]],
) -> Result<Vec<[f64; 2]>> {
    let limits = match given {
        None => return default_limits(sets, points),
        Some([one]) => vec![*one; dim],
        Some(all) => {
            check_same_dim(
                "limits (one [lo, hi] per dimension, or a single one)",
                dim,
                all.len(),
            )?;
            all.to_vec()
        }
    };
    for (d, l) in limits.iter().enumerate() {
        check_limits(&format!("limits of dimension {d}"), *l)?;
    }
    Ok(limits)
}

/// The result of a Kolmogorov–Smirnov test.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct KsTest {
    /// The statistic `D = sup |F_n − F|`.
    pub statistic: f64,
    /// The p-value (asymptotic Kolmogorov distribution with Stephens' small-sample
    /// correction, accurate to about 1 % for n ≥ 10).
    pub p_value: f64,
    /// Number of values tested.
    pub n: usize,
}

/// One-sample two-sided KS test of `values` against the uniform distribution on `[0, 1]`.
///
/// The p-value uses Kolmogorov's limiting distribution at `(√n + 0.12 + 0.11/√n)·D`
/// (Stephens 1970), which is accurate to about 1 % for `n ≥ 10`; scipy's default
/// `kstest` uses the exact finite-n distribution instead.
///
/// # Errors
/// Empty or non-finite values.
pub fn ks_uniform(values: &[f64]) -> Result<KsTest> {
    check_values("values", values, 1)?;
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let nf = n as f64;
    let mut d = 0.0f64;
    for (i, &x) in v.iter().enumerate() {
        let f = x.clamp(0.0, 1.0);
        d = d.max((i + 1) as f64 / nf - f).max(f - i as f64 / nf);
    }
    let sq = nf.sqrt();
    let p_value = kolmogorov_sf((sq + 0.12 + 0.11 / sq) * d);
    Ok(KsTest {
        statistic: d,
        p_value,
        n,
    })
}

/// Survival function of Kolmogorov's distribution, `P(K > t)`.
pub(crate) fn kolmogorov_sf(t: f64) -> f64 {
    if t <= 0.0 {
        return 1.0;
    }
    if t < 1.0 {
        // Small t: the theta-function form converges fast here.
        // P(K ≤ t) = √(2π)/t · Σ_{k≥1} exp(−(2k−1)²π²/(8t²)).
        let c = std::f64::consts::PI * std::f64::consts::PI / (8.0 * t * t);
        let mut s = 0.0;
        for k in 1..=20 {
            let m = (2 * k - 1) as f64;
            s += (-m * m * c).exp();
        }
        return (1.0 - (2.0 * std::f64::consts::PI).sqrt() / t * s).clamp(0.0, 1.0);
    }
    // P(K > t) = 2 Σ_{k≥1} (−1)^{k−1} exp(−2k²t²).
    let mut s = 0.0;
    for k in 1..=100 {
        let kf = k as f64;
        let term = (-2.0 * kf * kf * t * t).exp();
        s += if k % 2 == 1 { term } else { -term };
        if term < 1e-17 {
            break;
        }
    }
    (2.0 * s).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_match_numpy_linear() {
        // numpy.quantile([3, 1, 4, 1, 5], [0, .1, .5, .9, 1]) = [1, 1, 3, 4.6, 5]
        let v = [3.0, 1.0, 4.0, 1.0, 5.0];
        for (q, want) in [(0.0, 1.0), (0.1, 1.0), (0.5, 3.0), (0.9, 4.6), (1.0, 5.0)] {
            approx::assert_relative_eq!(quantile(&v, q).unwrap(), want, epsilon = 1e-12);
        }
    }

    #[test]
    fn kolmogorov_branches_agree_and_match_table() {
        // Both series are valid for all t; they must agree where we switch.
        let t = 1.0;
        let c = std::f64::consts::PI.powi(2) / (8.0 * t * t);
        let small: f64 = 1.0
            - (2.0 * std::f64::consts::PI).sqrt() / t
                * (1..=20)
                    .map(|k| (-((2 * k - 1) as f64).powi(2) * c).exp())
                    .sum::<f64>();
        approx::assert_relative_eq!(small, kolmogorov_sf(t), epsilon = 1e-12);
        // Classical critical values: P(K > 1.3581) = 0.05, P(K > 1.6276) = 0.01.
        approx::assert_relative_eq!(kolmogorov_sf(1.3581), 0.05, epsilon = 1e-4);
        approx::assert_relative_eq!(kolmogorov_sf(1.6276), 0.01, epsilon = 1e-4);
        approx::assert_relative_eq!(kolmogorov_sf(0.5), 0.9639, epsilon = 1e-4);
    }

    #[test]
    fn ks_statistic_by_hand() {
        // Values 0.1, 0.2, 0.9: D = max(1/3-0.1, 2/3-0.2, 1-0.9, 0.1, 0.2-1/3, 0.9-2/3) = 0.4667
        let t = ks_uniform(&[0.9, 0.1, 0.2]).unwrap();
        approx::assert_relative_eq!(t.statistic, 2.0 / 3.0 - 0.2, epsilon = 1e-12);
    }

    #[test]
    fn limits_add_ten_percent() {
        let s = DMatrix::from_row_slice(2, 3, &[0.0, 1.0, 2.0, 5.0, 5.0, 5.0]);
        let l = default_limits(&[&s], &[&[3.0, 5.0]]).unwrap();
        approx::assert_relative_eq!(l[0][0], -0.3, epsilon = 1e-12);
        approx::assert_relative_eq!(l[0][1], 3.3, epsilon = 1e-12);
        assert_eq!(l[1], [4.5, 5.5]);
    }
}
