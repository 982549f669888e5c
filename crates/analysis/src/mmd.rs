//! Maximum mean discrepancy with a Gaussian kernel.

use nalgebra::DMatrix;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{AnalysisError, Result, check_same_dim, check_samples, invalid};

/// At most this many points (taken at an even stride from the pooled samples) enter the
/// median heuristic.
pub const MEDIAN_MAX_POINTS: usize = 1000;

/// Bandwidth `σ` of the kernel `k(a, b) = exp(−‖a − b‖² / (2σ²))`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, Default)]
pub enum MmdBandwidth {
    /// The median of the pairwise Euclidean distances within the pooled samples (at most
    /// [`MEDIAN_MAX_POINTS`] of them, taken at an even stride; the lower middle value for
    /// an even number of distances).
    #[default]
    Median,
    /// A given `σ > 0`.
    Fixed(f64),
}

/// The result of [`mmd_squared`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Mmd {
    /// The unbiased estimate of MMD² (can be slightly negative when the distributions agree).
    pub mmd2: f64,
    /// The bandwidth `σ` used.
    pub bandwidth: f64,
}

fn sq_dist(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(u, v)| (u - v) * (u - v)).sum()
}

/// Unbiased estimate of the squared maximum mean discrepancy between the samples `x`
/// (`D × m`) and `y` (`D × n`) with a Gaussian kernel (Gretton et al. 2012, eq. 3):
///
/// `MMD² = Σ_{i≠j} k(xᵢ,xⱼ)/(m(m−1)) + Σ_{i≠j} k(yᵢ,yⱼ)/(n(n−1)) − 2 Σ_{i,j} k(xᵢ,yⱼ)/(mn)`.
///
/// `O((m + n)²·D)`; rows are summed in parallel and combined in a fixed order, so the result
/// does not depend on the number of threads.
///
/// # Errors
/// Fewer than 2 samples in a set, sets of different dimensions, non-finite values, a
/// non-positive fixed bandwidth, all pooled points identical (median distance 0).
///
/// ```
/// use nalgebra::DMatrix;
/// use simfer_analysis::{MmdBandwidth, mmd_squared};
/// let x = DMatrix::from_row_slice(1, 3, &[0.0, 1.0, 2.0]);
/// let m = mmd_squared(&x, &x, MmdBandwidth::Fixed(1.0)).unwrap();
/// // Identical sets: the unbiased estimate is slightly negative, −2·(1 − mean k) / … ≤ 0.
/// assert!(m.mmd2 <= 0.0);
/// ```
pub fn mmd_squared(x: &DMatrix<f64>, y: &DMatrix<f64>, bandwidth: MmdBandwidth) -> Result<Mmd> {
    check_samples("MMD first sample set", x, 2)?;
    check_samples("MMD second sample set", y, 2)?;
    check_same_dim("MMD second sample set (rows)", x.nrows(), y.nrows())?;
    let d = x.nrows();
    let xs = x.as_slice();
    let ys = y.as_slice();
    let sigma = match bandwidth {
        MmdBandwidth::Fixed(s) => {
            if !(s.is_finite() && s > 0.0) {
                return Err(invalid("MMD bandwidth", "finite and > 0", s));
            }
            s
        }
        MmdBandwidth::Median => median_distance(xs, ys, d)?,
    };
    let gamma = 1.0 / (2.0 * sigma * sigma);
    let k = |a: &[f64], b: &[f64]| (-gamma * sq_dist(a, b)).exp();
    let within = |s: &[f64]| -> f64 {
        let n = s.len() / d;
        let rows: Vec<f64> = (0..n)
            .into_par_iter()
            .map(|i| {
                let a = &s[i * d..(i + 1) * d];
                s[(i + 1) * d..].chunks_exact(d).map(|b| k(a, b)).sum()
            })
            .collect();
        2.0 * rows.iter().sum::<f64>() / (n * (n - 1)) as f64
    };
    let (m, n) = (x.ncols(), y.ncols());
    let cross: Vec<f64> = xs
        .par_chunks_exact(d)
        .map(|a| ys.chunks_exact(d).map(|b| k(a, b)).sum())
        .collect();
    let mmd2 = within(xs) + within(ys) - 2.0 * cross.iter().sum::<f64>() / (m * n) as f64;
    Ok(Mmd {
        mmd2,
        bandwidth: sigma,
    })
}

fn median_distance(xs: &[f64], ys: &[f64], d: usize) -> Result<f64> {
    let pooled: Vec<&[f64]> = xs.chunks_exact(d).chain(ys.chunks_exact(d)).collect();
    let stride = pooled.len().div_ceil(MEDIAN_MAX_POINTS);
    let pts: Vec<&[f64]> = pooled.into_iter().step_by(stride).collect();
    let mut dists: Vec<f64> = (0..pts.len())
        .flat_map(|i| (i + 1..pts.len()).map(move |j| (i, j)))
        .map(|(i, j)| sq_dist(pts[i], pts[j]).sqrt())
        .collect();
    // The lower middle element for an even count (torch.median's convention).
    let mid = (dists.len() - 1) / 2;
    let (_, &mut med, _) = dists.select_nth_unstable_by(mid, f64::total_cmp);
    if med > 0.0 {
        Ok(med)
    } else {
        Err(AnalysisError::Degenerate {
            what: "MMD samples (median pairwise distance is 0)".into(),
            dim: 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_direct_formula() {
        let x = DMatrix::from_row_slice(2, 3, &[0.0, 1.0, 0.5, 0.2, -0.3, 1.0]);
        let y = DMatrix::from_row_slice(2, 4, &[1.0, 2.0, 0.0, 1.5, 1.0, 0.0, 0.5, -1.0]);
        let s: f64 = 0.8;
        let k = |a: nalgebra::DVectorView<f64>, b: nalgebra::DVectorView<f64>| {
            (-(a - b).norm_squared() / (2.0 * s * s)).exp()
        };
        let mut kxx = 0.0;
        for i in 0..3 {
            for j in 0..3 {
                if i != j {
                    kxx += k(x.column(i), x.column(j));
                }
            }
        }
        let mut kyy = 0.0;
        for i in 0..4 {
            for j in 0..4 {
                if i != j {
                    kyy += k(y.column(i), y.column(j));
                }
            }
        }
        let mut kxy = 0.0;
        for i in 0..3 {
            for j in 0..4 {
                kxy += k(x.column(i), y.column(j));
            }
        }
        let want = kxx / 6.0 + kyy / 12.0 - 2.0 * kxy / 12.0;
        let got = mmd_squared(&x, &y, MmdBandwidth::Fixed(s)).unwrap();
        approx::assert_relative_eq!(got.mmd2, want, max_relative = 1e-12);
    }

    #[test]
    fn median_of_pairwise_distances() {
        // Points 0, 1, 3 (pooled): distances 1, 3, 2 → median 2.
        let x = DMatrix::from_row_slice(1, 2, &[0.0, 1.0]);
        let y = DMatrix::from_row_slice(1, 2, &[3.0, 3.0]);
        // Pooled 0, 1, 3, 3: distances 1, 3, 3, 2, 2, 0 → sorted 0 1 2 2 3 3, element 3 → 2.
        let m = mmd_squared(&x, &y, MmdBandwidth::Median).unwrap();
        assert_eq!(m.bandwidth, 2.0);
    }
}
