//! SBC rank plots, expected-coverage and TARP plots.

use std::path::Path;

use plotters::prelude::*;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::{
    Figure, LEGEND_X, LegendEntry, MPL_CYCLE, OrPlot, Swatch, header_layout, pick, render_panel,
    rgb, tick,
};
use crate::calibration::{Coverage, Sbc, Tarp};
use crate::error::{Result, check_same_dim, invalid};
use crate::pairplot::default_label;

/// How an SBC result is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SbcPlotKind {
    /// One panel per dimension: the rank histogram with the 99 % band of a uniform
    /// histogram; `bins: None` → `N / 20` clamped to `1..=L + 1` (the reference's default).
    Histogram {
        /// Number of bins.
        bins: Option<usize>,
    },
    /// One panel: the empirical CDF of every dimension's normalized ranks against the
    /// uniform CDF, with the 99 % Kolmogorov–Smirnov band.
    Cdf,
}

/// How calibration plots look.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CalibrationStyle {
    /// Panel side in pixels.
    pub panel_size: u32,
    /// Panels per row (rank histograms).
    pub columns: usize,
    /// Font size in pixels.
    pub font_size: u32,
    /// Parameter labels; `None` → `θ₁, θ₂, …`.
    pub labels: Option<Vec<String>>,
    /// A title above the panels.
    pub title: Option<String>,
}

impl Default for CalibrationStyle {
    fn default() -> Self {
        Self {
            panel_size: 280,
            columns: 4,
            font_size: 12,
            labels: None,
            title: None,
        }
    }
}

/// Critical value of the two-sided KS statistic at 99 % for `n` values (asymptotic with
/// Stephens' correction, the inverse of the p-value used in [`ks_uniform`](crate::ks_uniform)).
fn ks_band(n: usize) -> f64 {
    let s = (n as f64).sqrt();
    1.627_6 / (s + 0.12 + 0.11 / s)
}

fn check_style(style: &CalibrationStyle, dim: usize) -> Result<Vec<String>> {
    if style.panel_size < 80 || style.columns == 0 {
        return Err(invalid(
            "calibration style",
            "panels of at least 80 pixels and ≥ 1 column",
            format!("{} pixels, {} columns", style.panel_size, style.columns),
        ));
    }
    match &style.labels {
        None => Ok((0..dim).map(default_label).collect()),
        Some(l) => {
            check_same_dim("labels (one per dimension)", dim, l.len())?;
            Ok(l.clone())
        }
    }
}

/// A figure `width` wide with the title and a (wrapped) legend on top of `body_height`
/// pixels of panels; returns it and the y where the panels start.
fn start_figure(
    style: &CalibrationStyle,
    width: u32,
    body_height: u32,
    entries: &[LegendEntry],
) -> (Figure, u32) {
    let fs = style.font_size.max(6);
    let (top, legend_y) = header_layout(style.title.is_some(), entries, fs, width);
    let mut fig = Figure::new(width, top + body_height);
    if let Some(t) = &style.title {
        fig.title(t, fs);
    }
    fig.legend(LEGEND_X, legend_y, fs, entries);
    (fig, top)
}

/// Renders an SBC result (see [`SbcPlotKind`]).
///
/// # Errors
/// Bad style or bins, labels of the wrong length, plotting failures.
pub fn sbc_rank_svg(sbc: &Sbc, kind: SbcPlotKind, style: &CalibrationStyle) -> Result<String> {
    let dim = sbc.dim();
    let labels = check_style(style, dim)?;
    let fs = style.font_size.max(6);
    let p = style.panel_size;
    let n = sbc.num_pairs();
    let grey = rgb(MPL_CYCLE[7]);
    match kind {
        SbcPlotKind::Histogram { bins } => {
            let l = sbc.num_posterior_samples;
            let bins = bins.unwrap_or((n / 20).clamp(1, l + 1));
            let hists = sbc.rank_histograms(bins)?;
            let cols = style.columns.min(dim);
            let nrows = dim.div_ceil(cols);
            let entries: Vec<LegendEntry> = vec![
                ("rank counts".into(), rgb(MPL_CYCLE[0]), Swatch::Band),
                ("99 % band of uniform ranks".into(), grey, Swatch::Band),
            ];
            let (mut fig, top) = start_figure(style, p * cols as u32, p * nrows as u32, &entries);
            // Expected count per bin and its binomial 99 % band (normal approximation).
            let panels = hists
                .par_iter()
                .enumerate()
                .map(|(d, h)| {
                    render_panel(p, p, |root| {
                        let edges: Vec<f64> = (0..=bins)
                            .map(|b| (b * (l + 1)) as f64 / bins as f64)
                            .collect();
                        let prob: Vec<f64> = edges
                            .windows(2)
                            .map(|w| (w[1] - w[0]) / (l + 1) as f64)
                            .collect();
                        let hi_band: Vec<f64> = prob
                            .iter()
                            .map(|&q| n as f64 * q + 2.576 * (n as f64 * q * (1.0 - q)).sqrt())
                            .collect();
                        let ymax = h
                            .iter()
                            .map(|&c| c as f64)
                            .chain(hi_band.iter().copied())
                            .fold(1.0, f64::max)
                            * 1.1;
                        let mut chart = ChartBuilder::on(root)
                            .caption(
                                format!("{}  (KS p = {:.3})", labels[d], sbc.ks[d].p_value),
                                ("sans-serif", fs as f64),
                            )
                            .margin(8)
                            .x_label_area_size(fs * 3)
                            .y_label_area_size(fs * 3)
                            .build_cartesian_2d(0.0..(l + 1) as f64, 0.0..ymax)
                            .or_plot()?;
                        chart
                            .configure_mesh()
                            .disable_mesh()
                            .x_labels(5)
                            .y_labels(4)
                            .x_label_formatter(&tick)
                            .y_label_formatter(&tick)
                            .x_desc("rank")
                            .label_style(("sans-serif", fs as f64 * 0.85))
                            .axis_desc_style(("sans-serif", fs as f64))
                            .draw()
                            .or_plot()?;
                        chart
                            .draw_series(prob.iter().enumerate().map(|(b, &q)| {
                                let m = n as f64 * q;
                                let s = 2.576 * (m * (1.0 - q)).sqrt();
                                Rectangle::new(
                                    [(edges[b], (m - s).max(0.0)), (edges[b + 1], m + s)],
                                    grey.mix(0.35).filled(),
                                )
                            }))
                            .or_plot()?;
                        chart
                            .draw_series(h.iter().enumerate().map(|(b, &c)| {
                                Rectangle::new(
                                    [(edges[b], 0.0), (edges[b + 1], c as f64)],
                                    rgb(MPL_CYCLE[0]).mix(0.6).filled(),
                                )
                            }))
                            .or_plot()?;
                        Ok(())
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            for (d, svg) in panels.iter().enumerate() {
                let (row, col) = (d / cols, d % cols);
                fig.panel(
                    col as u32 * p,
                    top + row as u32 * p,
                    &format!(r#"data-row="{row}" data-col="{col}" data-dim="{d}""#),
                    svg,
                );
            }
            Ok(fig.finish())
        }
        SbcPlotKind::Cdf => {
            let mut entries: Vec<LegendEntry> = labels
                .iter()
                .enumerate()
                .map(|(d, lab)| (lab.clone(), pick(&[], d), Swatch::Line))
                .collect();
            entries.push(("99 % KS band".into(), grey, Swatch::Band));
            let (mut fig, top) = start_figure(style, p + 40, p, &entries);
            let band = ks_band(n);
            let svg = render_panel(p + 40, p, |root| {
                let mut chart = unit_square(root, fs, "normalized rank", "empirical CDF")?;
                band_around_diagonal(&mut chart, |_| band, grey)?;
                for d in 0..dim {
                    let mut u = sbc.normalized_ranks(d);
                    u.sort_by(f64::total_cmp);
                    let nf = u.len() as f64;
                    let mut pts = vec![(0.0, 0.0)];
                    for (i, &v) in u.iter().enumerate() {
                        pts.push((v, i as f64 / nf));
                        pts.push((v, (i + 1) as f64 / nf));
                    }
                    pts.push((1.0, 1.0));
                    chart
                        .draw_series(std::iter::once(PathElement::new(
                            pts,
                            pick(&[], d).stroke_width(2),
                        )))
                        .or_plot()?;
                }
                Ok(())
            })?;
            fig.panel(0, top, r#"data-row="0" data-col="0""#, &svg);
            Ok(fig.finish())
        }
    }
}

type UnitChart<'a, 'b> = ChartContext<
    'a,
    SVGBackend<'b>,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

fn unit_square<'a, 'b>(
    root: &'a DrawingArea<SVGBackend<'b>, plotters::coord::Shift>,
    fs: u32,
    x_desc: &str,
    y_desc: &str,
) -> Result<UnitChart<'a, 'b>> {
    let mut chart = ChartBuilder::on(root)
        .margin(10)
        .x_label_area_size(fs * 3)
        .y_label_area_size(fs * 4)
        .build_cartesian_2d(0.0..1.0, 0.0..1.0)
        .or_plot()?;
    chart
        .configure_mesh()
        .light_line_style(WHITE)
        .x_labels(6)
        .y_labels(6)
        .x_label_formatter(&tick)
        .y_label_formatter(&tick)
        .x_desc(x_desc)
        .y_desc(y_desc)
        .label_style(("sans-serif", fs as f64 * 0.85))
        .axis_desc_style(("sans-serif", fs as f64))
        .draw()
        .or_plot()?;
    chart
        .draw_series(std::iter::once(PathElement::new(
            vec![(0.0, 0.0), (1.0, 1.0)],
            BLACK.mix(0.6).stroke_width(1),
        )))
        .or_plot()?;
    Ok(chart)
}

/// A shaded band `diagonal ± halfwidth(α)`, clipped to the unit square.
fn band_around_diagonal(
    chart: &mut UnitChart<'_, '_>,
    halfwidth: impl Fn(f64) -> f64,
    color: RGBColor,
) -> Result<()> {
    let a: Vec<f64> = (0..=100).map(|k| k as f64 / 100.0).collect();
    let mut poly: Vec<(f64, f64)> = a
        .iter()
        .map(|&x| (x, (x + halfwidth(x)).min(1.0)))
        .collect();
    poly.extend(a.iter().rev().map(|&x| (x, (x - halfwidth(x)).max(0.0))));
    chart
        .draw_series(std::iter::once(Polygon::new(
            poly,
            color.mix(0.25).filled(),
        )))
        .or_plot()?;
    Ok(())
}

/// Renders expected-coverage curves (empirical coverage against credible level) with the
/// diagonal and the 99 % binomial band of a calibrated posterior (for the first curve's `n`).
///
/// # Errors
/// No curves, a curve with levels and values of different lengths, bad style, plotting
/// failures.
pub fn coverage_svg(curves: &[Coverage], style: &CalibrationStyle) -> Result<String> {
    let Some(first) = curves.first() else {
        return Err(invalid("coverage curves", "at least one", 0));
    };
    for c in curves {
        check_same_dim(
            &format!("coverage '{}' (values per level)", c.name),
            c.levels.len(),
            c.empirical.len(),
        )?;
    }
    if style.panel_size < 80 {
        return Err(invalid(
            "panel size",
            "at least 80 pixels",
            style.panel_size,
        ));
    }
    let fs = style.font_size.max(6);
    let p = style.panel_size;
    let grey = rgb(MPL_CYCLE[7]);
    let mut entries: Vec<LegendEntry> = curves
        .iter()
        .enumerate()
        .map(|(i, c)| (c.name.clone(), pick(&[], i), Swatch::Line))
        .collect();
    entries.push(("99 % band".into(), grey, Swatch::Band));
    let (mut fig, top) = start_figure(style, p + 40, p, &entries);
    let svg = render_panel(p + 40, p, |root| {
        let mut chart = unit_square(root, fs, "credible level", "empirical coverage")?;
        band_around_diagonal(&mut chart, |a| first.band_halfwidth(a), grey)?;
        for (i, c) in curves.iter().enumerate() {
            let mut pts: Vec<(f64, f64)> = c
                .levels
                .iter()
                .copied()
                .zip(c.empirical.iter().copied())
                .collect();
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            chart
                .draw_series(std::iter::once(PathElement::new(
                    pts,
                    pick(&[], i).stroke_width(2),
                )))
                .or_plot()?;
        }
        Ok(())
    })?;
    fig.panel(0, top, r#"data-row="0" data-col="0""#, &svg);
    Ok(fig.finish())
}

/// Renders a TARP result: expected coverage probability against credible level, the
/// diagonal, the 99 % KS band, and ATC and the KS p-value in the caption.
///
/// # Errors
/// Bad style, plotting failures.
pub fn tarp_svg(tarp: &Tarp, style: &CalibrationStyle) -> Result<String> {
    if style.panel_size < 80 {
        return Err(invalid(
            "panel size",
            "at least 80 pixels",
            style.panel_size,
        ));
    }
    let fs = style.font_size.max(6);
    let p = style.panel_size;
    let grey = rgb(MPL_CYCLE[7]);
    let entries: Vec<LegendEntry> = vec![
        ("TARP ECP".into(), rgb(MPL_CYCLE[0]), Swatch::Line),
        ("99 % KS band".into(), grey, Swatch::Band),
    ];
    let (mut fig, top) = start_figure(style, p + 40, p + fs + 8, &entries);
    let band = ks_band(tarp.ks.n);
    let svg = render_panel(p + 40, p + fs + 8, |root| {
        let (cap, rest) = root.split_vertically(fs + 8);
        cap.draw_text(
            &format!("ATC = {:.3}, KS p = {:.3}", tarp.atc, tarp.ks.p_value),
            &("sans-serif", fs as f64).into_text_style(&cap),
            (10, 2),
        )
        .or_plot()?;
        let mut chart = unit_square(&rest, fs, "credible level α", "expected coverage")?;
        band_around_diagonal(&mut chart, |_| band, grey)?;
        chart
            .draw_series(std::iter::once(PathElement::new(
                tarp.alpha
                    .iter()
                    .copied()
                    .zip(tarp.ecp.iter().copied())
                    .collect::<Vec<_>>(),
                rgb(MPL_CYCLE[0]).stroke_width(2),
            )))
            .or_plot()?;
        Ok(())
    })?;
    fig.panel(0, top, r#"data-row="0" data-col="0""#, &svg);
    Ok(fig.finish())
}

/// Renders with [`sbc_rank_svg`] and writes the SVG to `path`.
///
/// # Errors
/// As [`sbc_rank_svg`], and I/O errors.
pub fn write_sbc_rank_svg(
    path: impl AsRef<Path>,
    sbc: &Sbc,
    kind: SbcPlotKind,
    style: &CalibrationStyle,
) -> Result<()> {
    crate::write_file(path.as_ref(), &sbc_rank_svg(sbc, kind, style)?)
}

/// Renders with [`coverage_svg`] and writes the SVG to `path`.
///
/// # Errors
/// As [`coverage_svg`], and I/O errors.
pub fn write_coverage_svg(
    path: impl AsRef<Path>,
    curves: &[Coverage],
    style: &CalibrationStyle,
) -> Result<()> {
    crate::write_file(path.as_ref(), &coverage_svg(curves, style)?)
}

/// Renders with [`tarp_svg`] and writes the SVG to `path`.
///
/// # Errors
/// As [`tarp_svg`], and I/O errors.
pub fn write_tarp_svg(path: impl AsRef<Path>, tarp: &Tarp, style: &CalibrationStyle) -> Result<()> {
    crate::write_file(path.as_ref(), &tarp_svg(tarp, style)?)
}
