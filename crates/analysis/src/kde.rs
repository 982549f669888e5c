//! Gaussian kernel density estimation (scipy's `gaussian_kde`) and its evaluation on grids.

use nalgebra::{DMatrix, DVector};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{
    AnalysisError, Result, check_limits, check_same_dim, check_samples, check_values, invalid,
};
use crate::hist::linspace;

/// How the kernel bandwidth is chosen. The kernel covariance is the (unbiased) data
/// covariance times `factor²`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, Default)]
pub enum Bandwidth {
    /// Scott's rule, `factor = n^(−1/(D+4))` (scipy's default).
    #[default]
    Scott,
    /// Silverman's rule, `factor = (n·(D+2)/4)^(−1/(D+4))`.
    Silverman,
    /// A given factor (> 0).
    Factor(f64),
}

/// A Gaussian kernel density estimate in `D` dimensions:
/// `p(y) = (1/n) Σᵢ N(y; xᵢ, factor²·Σ)` with `Σ` the unbiased sample covariance, exactly
/// as scipy's `gaussian_kde`.
///
/// ```
/// use nalgebra::DMatrix;
/// use simfer_analysis::GaussianKde;
/// let s = DMatrix::from_row_slice(1, 4, &[-1.0, 0.0, 0.5, 1.0]);
/// let kde = GaussianKde::new(&s).unwrap();
/// assert!(kde.density(&[0.0]).unwrap() > kde.density(&[3.0]).unwrap());
/// ```
#[derive(Clone, Debug)]
pub struct GaussianKde {
    dim: usize,
    n: usize,
    factor: f64,
    /// Inverse Cholesky factor of the kernel covariance (lower triangular).
    whiten: DMatrix<f64>,
    /// Whitened data by dimension: `n` values of dimension 0, then of dimension 1, …
    z: Vec<f64>,
    /// `1 / (n · √((2π)^D · det K))`.
    norm: f64,
    kernel_cov: DMatrix<f64>,
}

impl GaussianKde {
    /// A KDE of the columns of `samples` (`D × n`) with Scott's bandwidth.
    ///
    /// # Errors
    /// Fewer than 2 samples, non-finite values, a singular covariance.
    pub fn new(samples: &DMatrix<f64>) -> Result<Self> {
        Self::with_bandwidth(samples, Bandwidth::Scott)
    }

    /// A KDE with the given bandwidth rule.
    ///
    /// # Errors
    /// As [`new`](Self::new), and a non-positive or non-finite factor.
    pub fn with_bandwidth(samples: &DMatrix<f64>, bandwidth: Bandwidth) -> Result<Self> {
        check_samples("KDE samples", samples, 2)?;
        let (dim, n) = samples.shape();
        let nf = n as f64;
        let df = dim as f64;
        let factor = match bandwidth {
            Bandwidth::Scott => nf.powf(-1.0 / (df + 4.0)),
            Bandwidth::Silverman => (nf * (df + 2.0) / 4.0).powf(-1.0 / (df + 4.0)),
            Bandwidth::Factor(f) => {
                if !(f.is_finite() && f > 0.0) {
                    return Err(invalid("KDE bandwidth factor", "finite and > 0", f));
                }
                f
            }
        };
        for (d, row) in samples.row_iter().enumerate() {
            if row.max() == row.min() {
                return Err(AnalysisError::Degenerate {
                    what: "KDE samples".into(),
                    dim: d,
                });
            }
        }
        let mean: DVector<f64> = samples.column_mean();
        let mut centered = samples.clone();
        for mut c in centered.column_iter_mut() {
            c -= &mean;
        }
        let cov = (&centered * centered.transpose()) / (nf - 1.0);
        let kernel_cov = cov * (factor * factor);
        let singular = AnalysisError::Degenerate {
            what: "KDE samples (singular covariance: the dimensions are linearly dependent)".into(),
            dim: 0,
        };
        let Some(chol) = kernel_cov.clone().cholesky() else {
            return Err(singular);
        };
        let l = chol.l();
        // A pivot at rounding level relative to its variance means a (numerically) singular
        // covariance, e.g. exactly collinear dimensions.
        if (0..dim).any(|d| l[(d, d)] * l[(d, d)] <= 1e-12 * kernel_cov[(d, d)]) {
            return Err(singular);
        }
        let log_det: f64 = 2.0 * l.diagonal().iter().map(|v| v.ln()).sum::<f64>();
        let whiten = l
            .solve_lower_triangular(&DMatrix::identity(dim, dim))
            .ok_or(AnalysisError::Degenerate {
                what: "KDE samples (singular covariance)".into(),
                dim: 0,
            })?;
        let zm = &whiten * samples;
        let norm = (-0.5 * (df * (2.0 * std::f64::consts::PI).ln() + log_det)).exp() / nf;
        Ok(Self {
            dim,
            n,
            factor,
            whiten,
            z: zm.transpose().as_slice().to_vec(),
            norm,
            kernel_cov,
        })
    }

    /// Dimension `D`.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Number of data points.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Always false: a KDE has at least two points.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The bandwidth factor.
    pub fn factor(&self) -> f64 {
        self.factor
    }

    /// The kernel covariance `factor² · Σ`.
    pub fn kernel_covariance(&self) -> &DMatrix<f64> {
        &self.kernel_cov
    }

    /// Density at one point in the whitened space (`w = L⁻¹ y`), using `buf` as scratch.
    ///
    /// Samples are taken in blocks: the squared distances of a block into `buf`, then one
    /// vectorized `exp` over it (simfer-nn's `exp_inplace`, within a few ulp of the
    /// standard library's), then four partial sums in a fixed order.
    fn density_whitened(&self, w: &[f64], buf: &mut Vec<f64>) -> f64 {
        const BLOCK: usize = 1024;
        let n = self.n;
        buf.resize(BLOCK, 0.0);
        let mut acc = [0.0f64; 4];
        for start in (0..n).step_by(BLOCK) {
            let len = BLOCK.min(n - start);
            let q = &mut buf[..len];
            q.fill(0.0);
            for (k, &wk) in w.iter().enumerate() {
                let zk = &self.z[k * n + start..k * n + start + len];
                for (qi, &zi) in q.iter_mut().zip(zk) {
                    let t = wk - zi;
                    *qi += t * t;
                }
            }
            q.iter_mut().for_each(|v| *v *= -0.5);
            simfer_nn::fastmath::exp_inplace(q);
            let chunks = q.chunks_exact(4);
            let tail: f64 = chunks.remainder().iter().sum();
            for c in chunks {
                for j in 0..4 {
                    acc[j] += c[j];
                }
            }
            acc[0] += tail;
        }
        ((acc[0] + acc[1]) + (acc[2] + acc[3])) * self.norm
    }

    fn whiten_point(&self, y: &[f64]) -> Vec<f64> {
        let d = self.dim;
        (0..d)
            .map(|r| (0..=r).map(|c| self.whiten[(r, c)] * y[c]).sum())
            .collect()
    }

    /// The density at `point` (length `D`).
    ///
    /// # Errors
    /// Wrong length or non-finite values.
    pub fn density(&self, point: &[f64]) -> Result<f64> {
        check_same_dim("KDE evaluation point (length)", self.dim, point.len())?;
        check_values("KDE evaluation point", point, 1)?;
        Ok(self.density_whitened(&self.whiten_point(point), &mut Vec::new()))
    }

    /// The density at every column of `points` (`D × m`), in parallel; the result does not
    /// depend on the number of threads.
    ///
    /// # Errors
    /// Wrong number of rows or non-finite values.
    pub fn density_batch(&self, points: &DMatrix<f64>) -> Result<Vec<f64>> {
        check_same_dim("KDE evaluation points (rows)", self.dim, points.nrows())?;
        crate::error::check_finite_matrix("KDE evaluation points", points)?;
        let w = &self.whiten * points;
        Ok(w.as_slice()
            .par_chunks(self.dim)
            .map_init(Vec::new, |buf, c| self.density_whitened(c, buf))
            .collect())
    }
}

/// A density evaluated on a 1-D grid.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Grid1d {
    /// Grid points, increasing.
    pub x: Vec<f64>,
    /// Density at each point.
    pub density: Vec<f64>,
}

/// A density evaluated on a 2-D grid; `density[iy][ix]` at `(x[ix], y[iy])` (rows are y,
/// an image with its origin at the lower left).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Grid2d {
    /// Grid points along x, increasing.
    pub x: Vec<f64>,
    /// Grid points along y, increasing.
    pub y: Vec<f64>,
    /// `y.len()` rows of `x.len()` values.
    pub density: Vec<Vec<f64>>,
}

fn check_grid_points(points: usize) -> Result<()> {
    if points < 2 {
        return Err(invalid("grid points", "at least 2", points));
    }
    Ok(())
}

/// The Scott-bandwidth KDE of `values` on `points` equally spaced points spanning `limits`
/// (the reference's diagonal `"kde"` uses 50).
///
/// # Errors
/// Fewer than 2 values, non-finite values, no spread, bad limits, `points < 2`.
pub fn kde_1d(values: &[f64], limits: [f64; 2], points: usize) -> Result<Grid1d> {
    check_limits("KDE limits", limits)?;
    check_grid_points(points)?;
    let kde = GaussianKde::new(&DMatrix::from_row_slice(1, values.len(), values))?;
    let x = linspace(limits[0], limits[1], points);
    let density = kde.density_batch(&DMatrix::from_row_slice(1, points, &x))?;
    Ok(Grid1d { x, density })
}

/// The Scott-bandwidth KDE of the points `(x[i], y[i])` on a `points × points` grid spanning
/// the limits (the reference's upper `"kde"`/`"contour"` uses 50 × 50).
///
/// # Errors
/// `x`, `y` of different lengths, fewer than 2 points, non-finite values, a singular
/// covariance, bad limits, `points < 2`.
pub fn kde_2d(
    x: &[f64],
    y: &[f64],
    x_limits: [f64; 2],
    y_limits: [f64; 2],
    points: usize,
) -> Result<Grid2d> {
    check_same_dim("y (length, must equal that of x)", x.len(), y.len())?;
    check_limits("KDE x limits", x_limits)?;
    check_limits("KDE y limits", y_limits)?;
    check_grid_points(points)?;
    let mut data = DMatrix::zeros(2, x.len());
    data.row_mut(0).copy_from_slice(x);
    data.row_mut(1).copy_from_slice(y);
    let kde = GaussianKde::new(&data)?;
    let gx = linspace(x_limits[0], x_limits[1], points);
    let gy = linspace(y_limits[0], y_limits[1], points);
    let mut grid = DMatrix::zeros(2, points * points);
    for (iy, &yv) in gy.iter().enumerate() {
        for (ix, &xv) in gx.iter().enumerate() {
            grid[(0, iy * points + ix)] = xv;
            grid[(1, iy * points + ix)] = yv;
        }
    }
    let flat = kde.density_batch(&grid)?;
    Ok(Grid2d {
        x: gx,
        y: gy,
        density: flat.chunks(points).map(<[f64]>::to_vec).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn density_matches_direct_formula_2d() {
        let s = DMatrix::from_row_slice(2, 4, &[0.0, 1.0, 2.0, 0.5, 1.0, 0.0, 2.5, 1.0]);
        let kde = GaussianKde::new(&s).unwrap();
        let k = kde.kernel_covariance().clone();
        let kinv = k.clone().try_inverse().unwrap();
        let det = k.determinant();
        let y = [0.7, 0.3];
        let mut want = 0.0;
        for c in s.column_iter() {
            let d = nalgebra::Vector2::new(y[0] - c[0], y[1] - c[1]);
            let q = (d.transpose() * kinv.fixed_view::<2, 2>(0, 0) * d)[(0, 0)];
            want += (-0.5 * q).exp() / (2.0 * std::f64::consts::PI * det.sqrt());
        }
        want /= 4.0;
        approx::assert_relative_eq!(kde.density(&y).unwrap(), want, max_relative = 1e-12);
        // Scott factor for n = 4, D = 2.
        approx::assert_relative_eq!(kde.factor(), 4f64.powf(-1.0 / 6.0), max_relative = 1e-15);
    }

    #[test]
    fn singular_covariance_is_an_error() {
        let s = DMatrix::from_row_slice(2, 3, &[0.0, 1.0, 2.0, 0.0, 2.0, 4.0]);
        assert!(matches!(
            GaussianKde::new(&s),
            Err(AnalysisError::Degenerate { .. })
        ));
    }
}
