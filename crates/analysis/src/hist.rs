//! 1-D and 2-D histograms.

use serde::{Deserialize, Serialize};

use crate::error::{Result, check_limits, check_same_dim, check_values, invalid};
use crate::stats::quantile_sorted;

/// Largest number of bins the Freedman–Diaconis rule may produce; heavy tails with a small
/// interquartile range would otherwise ask for millions.
pub const MAX_FD_BINS: usize = 1000;

/// Number of bins used by the Freedman–Diaconis rule when the interquartile range is 0.
pub const FD_FALLBACK_BINS: usize = 50;

/// How to choose the bins of a 1-D histogram.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
pub enum Bins {
    /// Freedman–Diaconis width `2·IQR·n^(−1/3)`, edges `lo, lo + w, …` up to the first edge
    /// `≥ hi` (the reference's pairplot default). Falls back to [`FD_FALLBACK_BINS`] equal
    /// bins when the IQR is 0, and is capped at [`MAX_FD_BINS`] bins.
    #[default]
    FreedmanDiaconis,
    /// This many equal-width bins between the limits (the reference passes an integer to
    /// `linspace` as the number of *edges*; here it is the number of bins).
    Count(usize),
    /// Explicit, strictly increasing, finite edges (at least two).
    Edges(Vec<f64>),
}

/// A 1-D histogram: `counts[i]` values in `[edges[i], edges[i+1])`, the last bin closed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Histogram1d {
    /// Bin edges, strictly increasing, `counts.len() + 1` of them.
    pub edges: Vec<f64>,
    /// Number of values in each bin.
    pub counts: Vec<u64>,
    /// Number of values outside `[edges[0], edges[last]]` (not in any bin).
    pub outside: u64,
}

impl Histogram1d {
    /// Total number of values binned (`Σ counts`).
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Bin centres.
    pub fn centers(&self) -> Vec<f64> {
        self.edges.windows(2).map(|w| 0.5 * (w[0] + w[1])).collect()
    }

    /// Density per bin, `count / (n · width)` with `n` all values including those outside,
    /// so it integrates to the fraction of values inside the edges.
    pub fn density(&self) -> Vec<f64> {
        let n = (self.total() + self.outside).max(1) as f64;
        self.counts
            .iter()
            .zip(self.edges.windows(2))
            .map(|(&c, w)| c as f64 / (n * (w[1] - w[0])))
            .collect()
    }
}

/// The edges `bins` describes for `values` within `limits`.
///
/// # Errors
/// As [`histogram_1d`].
pub fn bin_edges(values: &[f64], limits: [f64; 2], bins: &Bins) -> Result<Vec<f64>> {
    check_values("values", values, 1)?;
    check_limits("histogram limits", limits)?;
    match bins {
        Bins::Count(k) => {
            if *k == 0 {
                return Err(invalid("bin count", "at least 1", 0));
            }
            Ok(linspace(limits[0], limits[1], k + 1))
        }
        Bins::Edges(e) => {
            if e.len() < 2 || e.iter().any(|x| !x.is_finite()) || e.windows(2).any(|w| w[0] >= w[1])
            {
                return Err(invalid(
                    "bin edges",
                    "at least two finite, strictly increasing edges",
                    format!("{e:?}"),
                ));
            }
            Ok(e.clone())
        }
        Bins::FreedmanDiaconis => {
            let mut v = values.to_vec();
            v.sort_by(f64::total_cmp);
            let iqr = quantile_sorted(&v, 0.75) - quantile_sorted(&v, 0.25);
            let width = 2.0 * iqr * (v.len() as f64).powf(-1.0 / 3.0);
            let [lo, hi] = limits;
            if width <= 0.0 {
                return Ok(linspace(lo, hi, FD_FALLBACK_BINS + 1));
            }
            // numpy.arange(lo, hi + width, width): ceil((hi + width − lo) / width) edges.
            let n_edges = ((hi + width - lo) / width).ceil() as usize;
            if n_edges > MAX_FD_BINS + 1 {
                return Ok(linspace(lo, hi, MAX_FD_BINS + 1));
            }
            let mut edges: Vec<f64> = (0..n_edges).map(|k| lo + k as f64 * width).collect();
            // Rounding can leave the last edge a hair below hi; make sure hi is covered.
            if edges.len() < 2 || edges[edges.len() - 1] < hi {
                edges.push(lo + n_edges as f64 * width);
            }
            Ok(edges)
        }
    }
}

/// `n` equally spaced points from `lo` to `hi` inclusive (`n ≥ 2`).
pub(crate) fn linspace(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    let step = (hi - lo) / (n - 1) as f64;
    (0..n)
        .map(|k| if k == n - 1 { hi } else { lo + k as f64 * step })
        .collect()
}

/// Index of the bin of `v` among strictly increasing `edges` (last bin closed), or `None`.
fn bin_index(edges: &[f64], v: f64) -> Option<usize> {
    let last = edges.len() - 1;
    if v < edges[0] || v > edges[last] {
        return None;
    }
    if v == edges[last] {
        return Some(last - 1);
    }
    Some(edges.partition_point(|&e| e <= v) - 1)
}

/// A 1-D histogram of `values` within `limits` (numpy's `histogram` conventions: bins
/// half-open, the last one closed; values outside are counted in `outside`).
///
/// # Errors
/// Empty or non-finite values, limits not finite with `lo < hi`, zero bins, bad edges.
///
/// ```
/// let h = simfer_analysis::histogram_1d(&[0.0, 0.5, 1.0, 2.0], [0.0, 1.0], &simfer_analysis::Bins::Count(2)).unwrap();
/// assert_eq!(h.counts, vec![1, 2]);
/// assert_eq!(h.outside, 1);
/// ```
pub fn histogram_1d(values: &[f64], limits: [f64; 2], bins: &Bins) -> Result<Histogram1d> {
    let edges = bin_edges(values, limits, bins)?;
    let mut counts = vec![0u64; edges.len() - 1];
    let mut outside = 0;
    for &v in values {
        match bin_index(&edges, v) {
            Some(i) => counts[i] += 1,
            None => outside += 1,
        }
    }
    Ok(Histogram1d {
        edges,
        counts,
        outside,
    })
}

/// A 2-D histogram with equal-width bins.
///
/// `counts[iy][ix]` is the number of points with x in bin `ix` and y in bin `iy`: rows are y
/// bins from low to high, so the matrix is an image with its origin at the lower left
/// (numpy's `histogram2d` returns the transpose).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Histogram2d {
    /// Edges along x (`nx + 1`).
    pub x_edges: Vec<f64>,
    /// Edges along y (`ny + 1`).
    pub y_edges: Vec<f64>,
    /// `ny` rows of `nx` counts.
    pub counts: Vec<Vec<u64>>,
    /// Points outside the limits in x or y.
    pub outside: u64,
}

impl Histogram2d {
    /// Total number of points binned.
    pub fn total(&self) -> u64 {
        self.counts.iter().flatten().sum()
    }

    /// Largest bin count.
    pub fn max_count(&self) -> u64 {
        self.counts.iter().flatten().copied().max().unwrap_or(0)
    }
}

/// A 2-D histogram of the points `(x[i], y[i])` with `bins = (nx, ny)` equal bins within the
/// limits (the reference's pairplot uses 50 × 50).
///
/// # Errors
/// `x` and `y` of different lengths, empty or non-finite values, bad limits, zero bins.
pub fn histogram_2d(
    x: &[f64],
    y: &[f64],
    x_limits: [f64; 2],
    y_limits: [f64; 2],
    bins: (usize, usize),
) -> Result<Histogram2d> {
    check_same_dim("y (length, must equal that of x)", x.len(), y.len())?;
    check_values("x", x, 1)?;
    check_values("y", y, 1)?;
    check_limits("x limits", x_limits)?;
    check_limits("y limits", y_limits)?;
    if bins.0 == 0 || bins.1 == 0 {
        return Err(invalid(
            "2-D bins",
            "at least 1 in each direction",
            format!("{bins:?}"),
        ));
    }
    let x_edges = linspace(x_limits[0], x_limits[1], bins.0 + 1);
    let y_edges = linspace(y_limits[0], y_limits[1], bins.1 + 1);
    let mut counts = vec![vec![0u64; bins.0]; bins.1];
    let mut outside = 0;
    for (&a, &b) in x.iter().zip(y) {
        match (bin_index(&x_edges, a), bin_index(&y_edges, b)) {
            (Some(ix), Some(iy)) => counts[iy][ix] += 1,
            _ => outside += 1,
        }
    }
    Ok(Histogram2d {
        x_edges,
        y_edges,
        counts,
        outside,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fd_edges_follow_numpy_arange() {
        // values 0..=99: IQR = 49.5, n^(-1/3) = 0.21544, width = 21.329…
        let v: Vec<f64> = (0..100).map(f64::from).collect();
        let e = bin_edges(&v, [0.0, 99.0], &Bins::FreedmanDiaconis).unwrap();
        let w = 2.0 * 49.5 * 100f64.powf(-1.0 / 3.0);
        // arange(0, 99 + w, w) has ceil((99 + w) / w) = 6 edges: 0, w, …, 5w ≥ 99.
        assert_eq!(e.len(), 6);
        approx::assert_relative_eq!(e[5], 5.0 * w, epsilon = 1e-9);
        assert!(e[5] >= 99.0);
    }

    #[test]
    fn last_bin_is_closed_and_outside_counted() {
        let h = histogram_1d(&[0.0, 1.0, -0.1, 1.1], [0.0, 1.0], &Bins::Count(4)).unwrap();
        assert_eq!(h.counts, vec![1, 0, 0, 1]);
        assert_eq!(h.outside, 2);
    }

    #[test]
    fn fd_zero_iqr_falls_back() {
        let v = [1.0; 10];
        let e = bin_edges(&v, [0.5, 1.5], &Bins::FreedmanDiaconis).unwrap();
        assert_eq!(e.len(), FD_FALLBACK_BINS + 1);
    }
}
