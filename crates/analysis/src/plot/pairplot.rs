//! The pairplot as SVG.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::{
    Figure, LEGEND_X, LegendEntry, OrPlot, Swatch, contour_segments, header_layout, pick,
    render_panel, tick, viridis,
};
use crate::error::{Result, invalid};
use crate::hpd::{DEFAULT_HPD_MASSES, hpd_levels};
use crate::kde::Grid2d;
use crate::pairplot::{Marginal1d, Marginal2d, PairplotData};

/// How a pairplot looks. The defaults follow the reference: sample sets in the even
/// entries of matplotlib's colour cycle, points in the odd ones.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PairplotStyle {
    /// Side of one panel in pixels; `None` → `720 / k` clamped to `120..=260` for `k`
    /// shown dimensions.
    pub panel_size: Option<u32>,
    /// Colours of the sample sets (cycled).
    pub set_colors: Vec<[u8; 3]>,
    /// Colours of the points (cycled).
    pub point_colors: Vec<[u8; 3]>,
    /// Font size of tick labels and legend, in pixels.
    pub font_size: u32,
    /// A title above the grid.
    pub title: Option<String>,
    /// Draw a legend (sets and points) above the grid; `None` → when there is more than
    /// one set or any point.
    pub legend: Option<bool>,
}

impl Default for PairplotStyle {
    fn default() -> Self {
        Self {
            panel_size: None,
            set_colors: super::MPL_CYCLE.iter().step_by(2).copied().collect(),
            point_colors: super::MPL_CYCLE
                .iter()
                .skip(1)
                .step_by(2)
                .copied()
                .collect(),
            font_size: 12,
            title: None,
            legend: None,
        }
    }
}

/// Space below the diagonal panels' plot area for tick labels and the axis label.
const DIAG_X_AREA: u32 = 38;
/// Small frame margin of every panel.
const MARGIN: u32 = 6;

/// Renders a pairplot: a `k × k` grid with the 1-D marginals on the diagonal (each set a
/// step histogram or KDE line in its colour, normalized to a density so sets of different
/// sizes compare) and the 2-D marginals in the upper triangle (dimension of the column on
/// x, of the row on y). 2-D histograms and KDEs show the first set as a viridis image and
/// further sets as their 68/95/99 % highest-density contours; `Contour` panels show every
/// set as contours. Points are vertical lines on the diagonal and dots elsewhere.
///
/// Each panel is a `<g class="panel" data-row=".." data-col="..">`: `k(k + 1)/2` of them.
///
/// # Errors
/// Inconsistent data (e.g. edited JSON), a zero panel size, plotting failures.
pub fn pairplot_svg(data: &PairplotData, style: &PairplotStyle) -> Result<String> {
    let k = data.num_dims();
    check_consistent(data)?;
    let p = style
        .panel_size
        .unwrap_or((720 / k.max(1) as u32).clamp(120, 260));
    if p < 40 {
        return Err(invalid("panel size", "at least 40 pixels", p));
    }
    let fs = style.font_size.max(6);
    let show_legend = style
        .legend
        .unwrap_or(data.sets.len() > 1 || !data.points.is_empty());
    let mut entries: Vec<LegendEntry> = Vec::new();
    if show_legend {
        entries.extend(
            data.sets
                .iter()
                .enumerate()
                .map(|(i, s)| (s.name.clone(), pick(&style.set_colors, i), Swatch::Line)),
        );
        entries.extend(
            data.points
                .iter()
                .enumerate()
                .map(|(i, pt)| (pt.name.clone(), pick(&style.point_colors, i), Swatch::Dot)),
        );
    }
    let width = p * k as u32;
    let (top, legend_y) = header_layout(style.title.is_some(), &entries, fs, width);
    let mut fig = Figure::new(width, top + p * k as u32);
    if let Some(t) = &style.title {
        fig.title(t, fs);
    }
    if show_legend {
        fig.legend(LEGEND_X, legend_y, fs, &entries);
    }
    let cells: Vec<(usize, usize)> = (0..k).flat_map(|r| (r..k).map(move |c| (r, c))).collect();
    let panels = cells
        .par_iter()
        .map(|&(r, c)| {
            render_panel(p, p, |root| {
                if r == c {
                    draw_diag(root, data, style, r, fs)
                } else {
                    draw_upper(root, data, style, r, c)
                }
            })
        })
        .collect::<Result<Vec<_>>>()?;
    for (&(r, c), svg) in cells.iter().zip(&panels) {
        let kind = if r == c { "diag" } else { "upper" };
        fig.panel(
            c as u32 * p,
            top + r as u32 * p,
            &format!(r#"data-row="{r}" data-col="{c}" data-kind="{kind}""#),
            svg,
        );
    }
    Ok(fig.finish())
}

/// Renders with [`pairplot_svg`] and writes the SVG to `path`.
///
/// # Errors
/// As [`pairplot_svg`], and I/O errors.
pub fn write_pairplot_svg(
    path: impl AsRef<Path>,
    data: &PairplotData,
    style: &PairplotStyle,
) -> Result<()> {
    crate::write_file(path.as_ref(), &pairplot_svg(data, style)?)
}

fn check_consistent(data: &PairplotData) -> Result<()> {
    let k = data.num_dims();
    let bad = |what: &str| {
        Err(invalid(
            "pairplot data",
            "consistent dimensions",
            what.to_string(),
        ))
    };
    if k == 0 {
        return bad("no dimensions");
    }
    if data.labels.len() != k || data.limits.len() != k {
        return bad("labels or limits of another length than dims");
    }
    for l in &data.limits {
        crate::error::check_limits("pairplot limits", *l)?;
    }
    for s in &data.sets {
        if s.diag.len() != k || s.upper.iter().any(|u| u.row >= u.col || u.col >= k) {
            return bad(&format!("set '{}' with panels outside the grid", s.name));
        }
    }
    if data.points.iter().any(|pt| pt.values.len() != k) {
        return bad("a point of another length than dims");
    }
    Ok(())
}

/// Step outline of a histogram density: `(edge, height)` pairs.
fn step_points(edges: &[f64], heights: &[f64]) -> Vec<(f64, f64)> {
    let mut pts = Vec::with_capacity(2 * heights.len() + 2);
    pts.push((edges[0], 0.0));
    for (i, &h) in heights.iter().enumerate() {
        pts.push((edges[i], h));
        pts.push((edges[i + 1], h));
    }
    pts.push((edges[edges.len() - 1], 0.0));
    pts
}

fn draw_diag(
    root: &DrawingArea<SVGBackend<'_>, Shift>,
    data: &PairplotData,
    style: &PairplotStyle,
    d: usize,
    fs: u32,
) -> Result<()> {
    let [lo, hi] = data.limits[d];
    let curves: Vec<Vec<(f64, f64)>> = data
        .sets
        .iter()
        .map(|s| match &s.diag[d] {
            Marginal1d::Hist(h) => step_points(&h.edges, &h.density()),
            Marginal1d::Kde(g) => g.x.iter().copied().zip(g.density.iter().copied()).collect(),
        })
        .collect();
    let ymax = curves
        .iter()
        .flatten()
        .map(|p| p.1)
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max);
    let ymax = if ymax > 0.0 { 1.08 * ymax } else { 1.0 };
    let mut chart = ChartBuilder::on(root)
        .margin(MARGIN)
        .x_label_area_size(DIAG_X_AREA)
        .y_label_area_size(2)
        .build_cartesian_2d(lo..hi, 0.0..ymax)
        .or_plot()?;
    chart
        .configure_mesh()
        .disable_mesh()
        .y_labels(0)
        .x_labels(4)
        .x_label_formatter(&tick)
        .x_desc(data.labels[d].as_str())
        .label_style(("sans-serif", fs as f64 * 0.85))
        .axis_desc_style(("sans-serif", fs as f64))
        .draw()
        .or_plot()?;
    for (i, c) in curves.into_iter().enumerate() {
        let color = pick(&style.set_colors, i);
        let clipped = c.into_iter().map(|(x, y)| (x.clamp(lo, hi), y));
        chart
            .draw_series(std::iter::once(PathElement::new(
                clipped.collect::<Vec<_>>(),
                color.stroke_width(2),
            )))
            .or_plot()?;
    }
    for (i, pt) in data.points.iter().enumerate() {
        let v = pt.values[d];
        if (lo..=hi).contains(&v) {
            let color = pick(&style.point_colors, i);
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(v, 0.0), (v, ymax)],
                    color.stroke_width(2),
                )))
                .or_plot()?;
        }
    }
    Ok(())
}

/// A grid of values on cells: centres and values (`v[iy][ix]`), for images and contours.
struct CellGrid {
    x: Vec<f64>,
    y: Vec<f64>,
    v: Vec<Vec<f64>>,
}

impl CellGrid {
    fn from_kde(g: &Grid2d) -> Self {
        Self {
            x: g.x.clone(),
            y: g.y.clone(),
            v: g.density.clone(),
        }
    }

    fn flat(&self) -> Vec<f64> {
        self.v.iter().flatten().copied().collect()
    }

    /// Boundaries of cell `i` along an axis of centres `c`, within `[lo, hi]`.
    fn bounds(c: &[f64], i: usize, lo: f64, hi: f64) -> (f64, f64) {
        let a = if i == 0 { lo } else { 0.5 * (c[i - 1] + c[i]) };
        let b = if i + 1 == c.len() {
            hi
        } else {
            0.5 * (c[i] + c[i + 1])
        };
        (a.max(lo), b.min(hi))
    }
}

fn cell_grid(m: &Marginal2d) -> CellGrid {
    match m {
        Marginal2d::Hist(h) => CellGrid {
            x: h.x_edges.windows(2).map(|w| 0.5 * (w[0] + w[1])).collect(),
            y: h.y_edges.windows(2).map(|w| 0.5 * (w[0] + w[1])).collect(),
            v: h.counts
                .iter()
                .map(|r| r.iter().map(|&c| c as f64).collect())
                .collect(),
        },
        Marginal2d::Kde(g) | Marginal2d::Contour { kde: g, .. } => CellGrid::from_kde(g),
    }
}

fn draw_upper(
    root: &DrawingArea<SVGBackend<'_>, Shift>,
    data: &PairplotData,
    style: &PairplotStyle,
    r: usize,
    c: usize,
) -> Result<()> {
    let [xlo, xhi] = data.limits[c];
    let [ylo, yhi] = data.limits[r];
    let mut chart = ChartBuilder::on(root)
        .margin(MARGIN)
        .x_label_area_size(2)
        .y_label_area_size(2)
        .build_cartesian_2d(xlo..xhi, ylo..yhi)
        .or_plot()?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_labels(0)
        .y_labels(0)
        .draw()
        .or_plot()?;
    for (i, s) in data.sets.iter().enumerate() {
        let Some(panel) = s.upper.iter().find(|u| u.row == r && u.col == c) else {
            continue;
        };
        let mut grid = cell_grid(&panel.marginal);
        let is_image = !matches!(panel.marginal, Marginal2d::Contour { .. });
        if i == 0 && is_image {
            draw_image(&mut chart, &grid, [xlo, xhi], [ylo, yhi])?;
            continue;
        }
        let (masses, levels) = match &panel.marginal {
            Marginal2d::Contour { masses, levels, .. } => (masses.clone(), levels.clone()),
            _ => {
                if matches!(panel.marginal, Marginal2d::Hist(_)) {
                    // Counts are noisy: contour them after a light [1 2 1]² smoothing.
                    grid.v = smooth_121(&grid.v);
                }
                let flat = grid.flat();
                if flat.iter().sum::<f64>() <= 0.0 {
                    continue;
                }
                (
                    DEFAULT_HPD_MASSES.to_vec(),
                    hpd_levels(&flat, &DEFAULT_HPD_MASSES)?,
                )
            }
        };
        let color = pick(&style.set_colors, i);
        for (m, t) in masses.iter().zip(&levels) {
            // Thicker lines for the inner (smaller-mass) regions.
            let width = if *m <= 0.7 { 2 } else { 1 };
            let segs = contour_segments(&grid.x, &grid.y, &grid.v, *t);
            chart
                .draw_series(
                    segs.into_iter()
                        .map(|s| PathElement::new(vec![s[0], s[1]], color.stroke_width(width))),
                )
                .or_plot()?;
        }
    }
    for (i, pt) in data.points.iter().enumerate() {
        let (px, py) = (pt.values[c], pt.values[r]);
        if (xlo..=xhi).contains(&px) && (ylo..=yhi).contains(&py) {
            let color = pick(&style.point_colors, i);
            chart
                .draw_series([
                    Circle::new((px, py), 5, WHITE.filled()),
                    Circle::new((px, py), 4, color.filled()),
                ])
                .or_plot()?;
        }
    }
    Ok(())
}

/// Separable `[1 2 1]/4` smoothing in both directions (edges replicated).
fn smooth_121(v: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let pass = |row: &[f64]| -> Vec<f64> {
        let n = row.len();
        (0..n)
            .map(|i| {
                let a = row[i.saturating_sub(1)];
                let c = row[(i + 1).min(n - 1)];
                0.25 * a + 0.5 * row[i] + 0.25 * c
            })
            .collect()
    };
    let rows: Vec<Vec<f64>> = v.iter().map(|r| pass(r)).collect();
    let (ny, nx) = (rows.len(), rows.first().map_or(0, Vec::len));
    let mut out = vec![vec![0.0; nx]; ny];
    for ix in 0..nx {
        let col: Vec<f64> = rows.iter().map(|r| r[ix]).collect();
        for (iy, val) in pass(&col).into_iter().enumerate() {
            out[iy][ix] = val;
        }
    }
    out
}

type Chart<'a, 'b> = ChartContext<
    'a,
    SVGBackend<'b>,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

/// A viridis image of the grid (min–max normalized), the zero level as background and
/// runs of equal colour along a row merged into one rectangle to keep the SVG small.
fn draw_image(chart: &mut Chart<'_, '_>, g: &CellGrid, xl: [f64; 2], yl: [f64; 2]) -> Result<()> {
    let (vmin, vmax) =
        g.v.iter()
            .flatten()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
                (a.min(v), b.max(v))
            });
    let span = if vmax > vmin { vmax - vmin } else { 1.0 };
    chart
        .draw_series(std::iter::once(Rectangle::new(
            [(xl[0], yl[0]), (xl[1], yl[1])],
            viridis(0.0).filled(),
        )))
        .or_plot()?;
    let mut rects = Vec::new();
    for (iy, row) in g.v.iter().enumerate() {
        let (y0, y1) = CellGrid::bounds(&g.y, iy, yl[0], yl[1]);
        // Colour index 0..=255 per cell; 0 is the background.
        let idx: Vec<u8> = row
            .iter()
            .map(|&v| (((v - vmin) / span) * 255.0).round().clamp(0.0, 255.0) as u8)
            .collect();
        let mut ix = 0;
        while ix < idx.len() {
            let mut jx = ix + 1;
            while jx < idx.len() && idx[jx] == idx[ix] {
                jx += 1;
            }
            if idx[ix] > 0 {
                let (x0, _) = CellGrid::bounds(&g.x, ix, xl[0], xl[1]);
                let (_, x1) = CellGrid::bounds(&g.x, jx - 1, xl[0], xl[1]);
                rects.push(Rectangle::new(
                    [(x0, y0), (x1, y1)],
                    viridis(idx[ix] as f64 / 255.0).filled(),
                ));
            }
            ix = jx;
        }
    }
    chart.draw_series(rects).or_plot()?;
    Ok(())
}
