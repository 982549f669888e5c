//! The pairplot as SVG, drawn by simfer-analysis (marginal histograms or KDEs on the
//! diagonal, 2-D histograms, KDEs or highest-density contours above it).

use pyo3::prelude::*;
use simfer_analysis::{
    DiagKind, PairplotOptions, PairplotStyle, UpperKind, pairplot_data, pairplot_svg,
};

use crate::arrays;
use crate::error::{PyError, Result};
use crate::guard::guarded;

fn limits(obj: &Bound<'_, PyAny>) -> Result<Vec<[f64; 2]>> {
    let a = arrays::real_array(obj, "limits")?;
    match a.shape.as_slice() {
        [2] => Ok(vec![[a.values[0], a.values[1]]]),
        [_, 2] => Ok(a.values.chunks(2).map(|c| [c[0], c[1]]).collect()),
        shape => Err(PyError::Value(format!(
            "limits: expected [low, high] or one [low, high] per dimension (shape (d, 2)), \
             found shape {shape:?}"
        ))),
    }
}

/// The SVG text of a pairplot of `samples` (`(n, d)`, or a list of such sets), with
/// `points` (`(m, d)` or one vector) marked.
#[pyfunction]
#[pyo3(signature = (
    samples, points = None, limits = None, subset = None, labels = None, diag = "hist",
    upper = "hist", figsize = (10.0, 10.0)
))]
#[allow(clippy::too_many_arguments)]
pub fn _pairplot_svg(
    samples: &Bound<'_, PyAny>,
    points: Option<&Bound<'_, PyAny>>,
    limits: Option<&Bound<'_, PyAny>>,
    subset: Option<Vec<usize>>,
    labels: Option<Vec<String>>,
    diag: &str,
    upper: &str,
    figsize: (f64, f64),
) -> PyResult<String> {
    Ok(guarded(|| {
        let sets: Vec<Bound<'_, PyAny>> = match samples.cast::<pyo3::types::PyList>() {
            Ok(list) => list.iter().collect(),
            Err(_) => vec![samples.clone()],
        };
        let mut matrices = Vec::with_capacity(sets.len());
        let mut dim = None;
        for (i, s) in sets.iter().enumerate() {
            let m = arrays::batch(s, &format!("samples[{i}]"), dim, false, true)?;
            dim = Some(m.nrows());
            matrices.push(m);
        }
        let names: Vec<String> = (1..=matrices.len())
            .map(|i| format!("samples {i}"))
            .collect();
        let named: Vec<(&str, &nalgebra::DMatrix<f64>)> = names
            .iter()
            .map(String::as_str)
            .zip(matrices.iter())
            .collect();
        let points = match points.filter(|p| !p.is_none()) {
            Some(p) => arrays::batch(p, "points", dim, true, true)?,
            None => nalgebra::DMatrix::zeros(dim.unwrap_or(1), 0),
        };
        let point_names: Vec<String> = (1..=points.ncols()).map(|i| format!("point {i}")).collect();
        let point_values: Vec<Vec<f64>> = points
            .column_iter()
            .map(|c| c.iter().copied().collect())
            .collect();
        let named_points: Vec<(&str, &[f64])> = point_names
            .iter()
            .map(String::as_str)
            .zip(point_values.iter().map(Vec::as_slice))
            .collect();
        let options = PairplotOptions {
            limits: limits
                .filter(|l| !l.is_none())
                .map(self::limits)
                .transpose()?,
            subset,
            labels,
            diag: match diag {
                "hist" => DiagKind::Hist,
                "kde" => DiagKind::Kde,
                other => {
                    return Err(PyError::Value(format!(
                        "diag: expected \"hist\" or \"kde\", found {other:?}"
                    )));
                }
            },
            upper: match upper {
                "hist" => UpperKind::Hist,
                "kde" => UpperKind::Kde,
                "contour" => UpperKind::Contour,
                other => {
                    return Err(PyError::Value(format!(
                        "upper: expected \"hist\", \"kde\" or \"contour\", found {other:?}"
                    )));
                }
            },
            ..PairplotOptions::default()
        };
        let data = pairplot_data(&named, &named_points, &options)?;
        let d = data.num_dims().max(1) as f64;
        // figsize is in inches, as matplotlib's; one panel is a d-th of it at 96 px/inch.
        let panel = (96.0 * figsize.0.min(figsize.1) / d).clamp(60.0, 400.0) as u32;
        let style = PairplotStyle {
            panel_size: Some(panel),
            legend: Some(matrices.len() > 1 || points.ncols() > 0),
            ..PairplotStyle::default()
        };
        Ok(pairplot_svg(&data, &style)?)
    })?)
}
