//! Pairplot data: every marginal a pairplot shows, as plain data that serializes to JSON.

use std::path::Path;

use nalgebra::DMatrix;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{AnalysisError, Result, check_same_dim, check_samples, check_values, invalid};
use crate::hist::{Bins, Histogram1d, Histogram2d, histogram_1d, histogram_2d};
use crate::hpd::{DEFAULT_HPD_MASSES, hpd_levels};
use crate::kde::{Grid1d, Grid2d, kde_1d, kde_2d};
use crate::stats::{DEFAULT_QUANTILES, MarginalSummary, resolve_limits, summarize};

/// What the diagonal panels show.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum DiagKind {
    /// 1-D histograms (counts).
    #[default]
    Hist,
    /// 1-D Gaussian KDE (Scott's bandwidth).
    Kde,
}

/// What the upper-triangle panels show.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum UpperKind {
    /// 2-D histograms (drawn as a viridis image).
    #[default]
    Hist,
    /// 2-D Gaussian KDE on a grid (drawn as a viridis image).
    Kde,
    /// 2-D Gaussian KDE with the highest-density levels (drawn as contour lines).
    Contour,
}

/// Options of [`pairplot_data`]; the defaults are the reference's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PairplotOptions {
    /// Plot limits: `None` → sample range ± 10 % over all sets and points; a single
    /// `[lo, hi]` is used for every dimension; otherwise one per dimension of the samples.
    pub limits: Option<Vec<[f64; 2]>>,
    /// Dimensions to show (indices into the samples' rows); `None` → all.
    pub subset: Option<Vec<usize>>,
    /// Parameter labels, one per dimension of the samples; `None` → `θ₁, θ₂, …`.
    pub labels: Option<Vec<String>>,
    /// Diagonal panels.
    pub diag: DiagKind,
    /// Upper-triangle panels.
    pub upper: UpperKind,
    /// Bins of the diagonal histograms.
    pub diag_bins: Bins,
    /// Bins per axis of the 2-D histograms.
    pub bins_2d: usize,
    /// Grid points per axis of the KDEs.
    pub kde_points: usize,
    /// Masses of the highest-density contours.
    pub contour_masses: Vec<f64>,
    /// Quantile levels of the summaries.
    pub quantiles: Vec<f64>,
}

impl Default for PairplotOptions {
    fn default() -> Self {
        Self {
            limits: None,
            subset: None,
            labels: None,
            diag: DiagKind::Hist,
            upper: UpperKind::Hist,
            diag_bins: Bins::FreedmanDiaconis,
            bins_2d: 50,
            kde_points: 50,
            contour_masses: DEFAULT_HPD_MASSES.to_vec(),
            quantiles: DEFAULT_QUANTILES.to_vec(),
        }
    }
}

/// A 1-D marginal.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Marginal1d {
    /// A histogram.
    Hist(Histogram1d),
    /// A KDE on a grid.
    Kde(Grid1d),
}

/// A 2-D marginal.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Marginal2d {
    /// A histogram.
    Hist(Histogram2d),
    /// A KDE on a grid.
    Kde(Grid2d),
    /// A KDE on a grid and the density thresholds of its highest-density regions:
    /// `levels[k]` bounds the region holding `masses[k]` of the (gridded) mass.
    Contour {
        /// The KDE.
        kde: Grid2d,
        /// HPD masses, e.g. 0.68, 0.95, 0.99.
        masses: Vec<f64>,
        /// Density thresholds, one per mass.
        levels: Vec<f64>,
    },
}

/// One upper-triangle panel: dimension `col` on x, dimension `row` on y (`row < col`,
/// positions in [`PairplotData::dims`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Panel2d {
    /// Row of the panel (its y dimension).
    pub row: usize,
    /// Column of the panel (its x dimension).
    pub col: usize,
    /// The marginal.
    pub marginal: Marginal2d,
}

/// Everything shown for one sample set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SetMarginals {
    /// Name (legend entry).
    pub name: String,
    /// Number of samples.
    pub n: usize,
    /// Summary per shown dimension.
    pub summary: Vec<MarginalSummary>,
    /// Diagonal marginal per shown dimension.
    pub diag: Vec<Marginal1d>,
    /// Upper-triangle panels, row by row.
    pub upper: Vec<Panel2d>,
}

/// A named point (e.g. the true θ), restricted to the shown dimensions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NamedPoint {
    /// Name (legend entry).
    pub name: String,
    /// Coordinates, one per shown dimension.
    pub values: Vec<f64>,
}

/// The data of a pairplot: a `k × k` grid of panels for the `k` shown dimensions, the
/// diagonal with 1-D marginals and the upper triangle with 2-D marginals.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PairplotData {
    /// The shown dimensions (indices into the samples' rows).
    pub dims: Vec<usize>,
    /// Label per shown dimension.
    pub labels: Vec<String>,
    /// `[lo, hi]` per shown dimension.
    pub limits: Vec<[f64; 2]>,
    /// The sample sets.
    pub sets: Vec<SetMarginals>,
    /// Points overlaid on every panel.
    pub points: Vec<NamedPoint>,
}

impl PairplotData {
    /// Number of shown dimensions.
    pub fn num_dims(&self) -> usize {
        self.dims.len()
    }

    /// Pretty-printed JSON.
    ///
    /// # Errors
    /// Serialization errors (there are none for data built by [`pairplot_data`]).
    pub fn to_json(&self) -> Result<String> {
        Ok(serde_json::to_string_pretty(self)?)
    }

    /// Parses JSON written by [`to_json`](Self::to_json). (Floats come back bit for bit
    /// when serde_json's `float_roundtrip` feature is on, as it is in this workspace.)
    ///
    /// # Errors
    /// Malformed JSON.
    pub fn from_json(s: &str) -> Result<Self> {
        Ok(serde_json::from_str(s)?)
    }

    /// Writes [`to_json`](Self::to_json) to `path`.
    ///
    /// # Errors
    /// I/O errors.
    pub fn write_json(&self, path: impl AsRef<Path>) -> Result<()> {
        crate::write_file(path.as_ref(), &self.to_json()?)
    }
}

/// Computes the pairplot of named sample sets (each `D × n`, one sample per column) with
/// optional named points (length `D`, e.g. the true θ).
///
/// Panels are computed in parallel; the result does not depend on the number of threads.
///
/// # Errors
/// No sets, sets or points of different dimensions, empty sets, non-finite values, bad
/// limits, subset indices or labels; for KDE panels, fewer than 2 samples or a degenerate
/// marginal.
///
/// ```
/// use nalgebra::DMatrix;
/// use simfer_analysis::{PairplotOptions, pairplot_data};
/// let s = DMatrix::from_fn(2, 100, |i, j| ((i + 1) * j) as f64 % 7.0);
/// let data = pairplot_data(&[("posterior", &s)], &[("θ_o", &[3.0, 3.0])], &PairplotOptions::default()).unwrap();
/// assert_eq!(data.sets[0].upper.len(), 1);
/// let json = data.to_json().unwrap();
/// let back = simfer_analysis::PairplotData::from_json(&json).unwrap();
/// assert_eq!(back.sets[0].diag, data.sets[0].diag);
/// ```
pub fn pairplot_data(
    sets: &[(&str, &DMatrix<f64>)],
    points: &[(&str, &[f64])],
    options: &PairplotOptions,
) -> Result<PairplotData> {
    let Some((_, first)) = sets.first() else {
        return Err(AnalysisError::TooFewSamples {
            what: "sample sets".into(),
            expected: 1,
            found: 0,
        });
    };
    let dim = first.nrows();
    for (name, s) in sets {
        check_samples(&format!("sample set '{name}'"), s, 1)?;
        check_same_dim(&format!("sample set '{name}' (rows)"), dim, s.nrows())?;
    }
    for (name, p) in points {
        check_same_dim(&format!("point '{name}' (length)"), dim, p.len())?;
        check_values(&format!("point '{name}'"), p, 1)?;
    }
    if options.bins_2d == 0 {
        return Err(invalid("bins_2d", "at least 1", 0));
    }
    if options.kde_points < 2 {
        return Err(invalid("kde_points", "at least 2", options.kde_points));
    }
    let dims: Vec<usize> = match &options.subset {
        None => (0..dim).collect(),
        Some(s) => {
            if s.is_empty() {
                return Err(invalid("subset", "at least one dimension", "[]"));
            }
            if let Some(&bad) = s.iter().find(|&&d| d >= dim) {
                return Err(invalid("subset index", format!("< {dim}"), bad));
            }
            s.clone()
        }
    };
    let labels: Vec<String> = match &options.labels {
        None => dims.iter().map(|&d| default_label(d)).collect(),
        Some(l) => {
            check_same_dim("labels (one per dimension of the samples)", dim, l.len())?;
            dims.iter().map(|&d| l[d].clone()).collect()
        }
    };
    let mats: Vec<&DMatrix<f64>> = sets.iter().map(|(_, s)| *s).collect();
    let pts: Vec<&[f64]> = points.iter().map(|(_, p)| *p).collect();
    let all_limits = if options.limits.is_none() && options.subset.is_some() {
        // Only the shown dimensions need limits; compute them on those rows.
        let sub_mats: Vec<DMatrix<f64>> = mats.iter().map(|m| m.select_rows(&dims)).collect();
        let sub_refs: Vec<&DMatrix<f64>> = sub_mats.iter().collect();
        let sub_pts: Vec<Vec<f64>> = pts
            .iter()
            .map(|p| dims.iter().map(|&d| p[d]).collect())
            .collect();
        let sub_pt_refs: Vec<&[f64]> = sub_pts.iter().map(Vec::as_slice).collect();
        let l = resolve_limits(None, dims.len(), &sub_refs, &sub_pt_refs)?;
        let mut full = vec![[0.0, 1.0]; dim];
        for (k, &d) in dims.iter().enumerate() {
            full[d] = l[k];
        }
        full
    } else {
        resolve_limits(options.limits.as_deref(), dim, &mats, &pts)?
    };
    let limits: Vec<[f64; 2]> = dims.iter().map(|&d| all_limits[d]).collect();

    let set_data = sets
        .iter()
        .map(|(name, s)| set_marginals(name, s, &dims, &limits, options))
        .collect::<Result<Vec<_>>>()?;
    Ok(PairplotData {
        dims: dims.clone(),
        labels,
        limits,
        sets: set_data,
        points: points
            .iter()
            .map(|(name, p)| NamedPoint {
                name: (*name).to_string(),
                values: dims.iter().map(|&d| p[d]).collect(),
            })
            .collect(),
    })
}

/// `θ₁`, `θ₂`, … (1-based, subscript digits).
pub(crate) fn default_label(d: usize) -> String {
    const SUB: [char; 10] = ['₀', '₁', '₂', '₃', '₄', '₅', '₆', '₇', '₈', '₉'];
    let digits: String = (d + 1)
        .to_string()
        .chars()
        .map(|c| SUB[c.to_digit(10).unwrap_or(0) as usize])
        .collect();
    format!("θ{digits}")
}

fn set_marginals(
    name: &str,
    s: &DMatrix<f64>,
    dims: &[usize],
    limits: &[[f64; 2]],
    options: &PairplotOptions,
) -> Result<SetMarginals> {
    let rows: Vec<Vec<f64>> = dims
        .iter()
        .map(|&d| s.row(d).iter().copied().collect())
        .collect();
    let sub = s.select_rows(dims);
    let summary = summarize(&sub, &options.quantiles)?;
    let diag = rows
        .par_iter()
        .zip(limits)
        .enumerate()
        .map(|(k, (v, lim))| -> Result<Marginal1d> {
            Ok(match options.diag {
                DiagKind::Hist => Marginal1d::Hist(histogram_1d(v, *lim, &options.diag_bins)?),
                DiagKind::Kde => Marginal1d::Kde(
                    kde_1d(v, *lim, options.kde_points).map_err(|e| in_dim(e, name, dims[k]))?,
                ),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let pairs: Vec<(usize, usize)> = (0..dims.len())
        .flat_map(|r| (r + 1..dims.len()).map(move |c| (r, c)))
        .collect();
    let upper = pairs
        .par_iter()
        .map(|&(row, col)| -> Result<Panel2d> {
            let (x, y) = (&rows[col], &rows[row]);
            let (xl, yl) = (limits[col], limits[row]);
            let marginal = match options.upper {
                UpperKind::Hist => Marginal2d::Hist(histogram_2d(
                    x,
                    y,
                    xl,
                    yl,
                    (options.bins_2d, options.bins_2d),
                )?),
                UpperKind::Kde => Marginal2d::Kde(
                    kde_2d(x, y, xl, yl, options.kde_points)
                        .map_err(|e| in_pair(e, name, dims[row], dims[col]))?,
                ),
                UpperKind::Contour => {
                    let kde = kde_2d(x, y, xl, yl, options.kde_points)
                        .map_err(|e| in_pair(e, name, dims[row], dims[col]))?;
                    let flat: Vec<f64> = kde.density.iter().flatten().copied().collect();
                    let levels = hpd_levels(&flat, &options.contour_masses)?;
                    Marginal2d::Contour {
                        kde,
                        masses: options.contour_masses.clone(),
                        levels,
                    }
                }
            };
            Ok(Panel2d { row, col, marginal })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(SetMarginals {
        name: name.to_string(),
        n: s.ncols(),
        summary,
        diag,
        upper,
    })
}

fn in_dim(e: AnalysisError, set: &str, d: usize) -> AnalysisError {
    match e {
        AnalysisError::Degenerate { what, .. } => AnalysisError::Degenerate {
            what: format!("{what} of sample set '{set}'"),
            dim: d,
        },
        other => other,
    }
}

fn in_pair(e: AnalysisError, set: &str, r: usize, c: usize) -> AnalysisError {
    match e {
        AnalysisError::Degenerate { what, .. } => AnalysisError::Degenerate {
            what: format!("{what} of sample set '{set}', pair ({r}, {c})"),
            dim: r,
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_use_subscripts() {
        assert_eq!(default_label(0), "θ₁");
        assert_eq!(default_label(11), "θ₁₂");
    }

    #[test]
    fn subset_selects_dims_labels_and_limits() {
        let s = DMatrix::from_fn(3, 50, |i, j| (i * 10) as f64 + (j % 10) as f64);
        let opts = PairplotOptions {
            subset: Some(vec![2, 0]),
            labels: Some(vec!["a".into(), "b".into(), "c".into()]),
            ..Default::default()
        };
        let d = pairplot_data(&[("s", &s)], &[], &opts).unwrap();
        assert_eq!(d.labels, vec!["c", "a"]);
        assert_eq!(d.dims, vec![2, 0]);
        // Row 2 spans 20..29: limits 20 − 0.9 .. 29 + 0.9.
        approx::assert_relative_eq!(d.limits[0][0], 19.1, epsilon = 1e-12);
        approx::assert_relative_eq!(d.limits[1][1], 9.9, epsilon = 1e-12);
        assert_eq!(d.sets[0].upper.len(), 1);
        assert_eq!((d.sets[0].upper[0].row, d.sets[0].upper[0].col), (0, 1));
    }
}
